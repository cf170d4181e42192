//! alias-shifter: moves a Lambda alias from its version to a new one step by step (linear, canary,
//! exponential, all at once or custom weights), judges each step in CloudWatch, and rolls back on failure.
//!
//! Trigger: a manual `aws lambda invoke` with a rollout payload (the whole rollout runs in that invocation
//! if it fits in the time left, and is refused before any change otherwise), or the stack's Step
//! Functions state machine, which calls it with `{"mode": "start" | "step" | "rollback", ...}` and waits
//! between steps in a `Wait` state (see [`input`]).
//!
//! AWS APIs: `lambda:GetFunctionConfiguration`, `lambda:GetAlias`, `lambda:UpdateAlias` (always
//! with the `RevisionId` read before), `lambda:PublishVersion` (only with `"publish": true`),
//! `cloudwatch:GetMetricData`, `cloudwatch:DescribeAlarms` (only with `alarms`), `sns:Publish` (only with
//! a notification topic).
//!
//! Returns the rollout's [`State`]: its status (`succeeded`, `rolled-back`, `left-as-found`, `dry-run`, or
//! `shifting` between state machine steps), the reason, and a report of every step (weight, times,
//! invocations, errors, error rate, throttles, alarms, decision). Errors are bad input (the field named,
//! nothing changed), a rollout too long for one invocation, AWS failures before any change, and a failed
//! rollback.
//!
//! Settings ([`config`]): `ALLOWED_FUNCTIONS` (the functions it may shift; the IAM policy matches),
//! `NOTIFICATION_TOPIC_ARN` (default topic for reports; a payload's `notification-topic-arn` wins).
//! Rooms: [`input`], [`schedule`], [`health`] and [`routing`] (pure), [`shift`] (the rollout), [`aws`], [`state`],
//! [`report`].

pub mod aws;
pub mod config;
pub mod health;
pub mod input;
pub mod report;
pub mod routing;
pub mod schedule;
pub mod shift;
pub mod state;

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::AwsError;
use shared::edge::{Budget, Internal};
use shared::events::InvalidEvent;
use shared::notify::Notifier;

pub use crate::config::Config;
pub use crate::input::{Request, Rollout};
pub use crate::state::{State, Status, StepDecision};

/// Time kept free at the end of a manual run for a rollback and the reply.
const SAFETY_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Deps {
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub notifier: Notifier,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Deps {
            lambda: aws_sdk_lambda::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            notifier: Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone()),
            config,
        }
    }
}

#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum Error {
    #[error(transparent)]
    InvalidInput(#[from] InvalidEvent),
    #[error(
        "the rollout needs about {needed} s ({steps} step(s) of {step_seconds} s plus a {} s margin) and this invocation has {left} s left: start it with the state machine instead (nothing was changed)",
        SAFETY_MARGIN.as_secs()
    )]
    TooLongForOneInvocation { needed: u64, left: u64, steps: usize, step_seconds: u64 },
    #[error(transparent)]
    #[strum(serialize = "AwsApiError")]
    Aws(#[from] AwsError),
    #[error(
        "rollback failed ({error}) after: {reason}; the alias may still route traffic to the new version"
    )]
    RollbackFailed { reason: String, error: AwsError },
    #[error(transparent)]
    Internal(#[from] Internal),
}

shared::error_type!(Error);

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<State, Error> {
    let request = Request::parse(&event.payload)?;
    let before = match &request {
        Request::Step(s) | Request::Rollback(s, _) => Some((s.status, s.steps.len())),
        Request::Run(_) | Request::Start(_) => None,
    };
    let mut state = match request {
        Request::Run(r) => run(deps, &r, Budget::from_context(&event.context)).await?,
        Request::Start(r) => shift::start(deps, &r).await?,
        Request::Step(s) => shift::step(deps, *s).await?,
        Request::Rollback(s, _) if s.is_final() => *s,
        Request::Rollback(s, why) => shift::rollback(deps, *s, why).await?,
    };
    shared::metrics::emit("alias-shifter", &report::Invocation { state: &state, before });
    if let Some(message) = report::finished(&state) {
        let notifier = deps.notifier.to(state.rollout.notification_topic_arn.clone());
        state.notification = Some(notifier.send(&message).await);
        tracing::info!(report = %serde_json::to_string(&state).unwrap_or_default(), "rollout finished");
    }
    Ok(state)
}

/// A whole rollout in this invocation: refused before any change if it cannot finish in the time left.
pub async fn run(deps: &Deps, r: &Rollout, budget: Budget) -> Result<State, Error> {
    let step_seconds = r.step_seconds();
    let needed = Duration::from_secs(r.weights.len() as u64 * step_seconds) + SAFETY_MARGIN;
    if let Some(left) = budget.remaining()
        && !r.dry_run
        && needed > left
    {
        return Err(Error::TooLongForOneInvocation {
            needed: needed.as_secs(),
            left: left.as_secs(),
            steps: r.weights.len(),
            step_seconds,
        });
    }
    let mut state = shift::start(deps, r).await?;
    while !state.is_final() {
        let wait = Duration::from_secs(state.wait_seconds);
        if !budget.has_more_than(wait + SAFETY_MARGIN) {
            return shift::rollback(deps, state, "ran out of time in this invocation".into()).await;
        }
        tokio::time::sleep(wait).await;
        state = shift::step(deps, state).await?;
    }
    Ok(state)
}
