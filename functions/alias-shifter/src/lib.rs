//! alias-shifter: moves a Lambda alias from its version to a new one step by step (linear, canary,
//! exponential, all at once or custom weights), judges each step's traffic in CloudWatch once it is
//! complete, against thresholds and against the old version at the same time, and rolls back on failure.
//!
//! Trigger: a manual `aws lambda invoke` with a rollout payload (the rollout runs in that invocation while
//! it has the time, then continues in new asynchronous invocations of this function, `{"mode":
//! "continue"}`), or the stack's Step
//! Functions state machine, which calls it with `{"mode": "start" | "step" | "request-approval" |
//! "approved" | "rollback", ...}` and waits between steps in a `Wait` state; and a person's `{"mode":
//! "abort" | "promote", ...}` (see [`input`]).
//!
//! AWS APIs: `lambda:GetFunctionConfiguration`, `lambda:GetAlias`, `lambda:UpdateAlias` (always
//! with the `RevisionId` read before), `lambda:PublishVersion` (only with `"publish": true`),
//! `lambda:InvokeFunction` (the validation hooks, functions in `HOOK_FUNCTIONS`; and this function, to
//! continue a rollout by hand that does not fit in one invocation),
//! `cloudwatch:GetMetricData`, `cloudwatch:DescribeAlarms` (only with `alarms`), `sns:Publish` (only with
//! a notification topic).
//!
//! Returns the rollout's [`State`]: its status (`succeeded`, `rolled-back`, `left-as-found`, `stopped`,
//! `dry-run`, or `shifting`, `awaiting-approval`, `baking` between state machine calls), the reason, the
//! hooks' results and a report of every step (window, new and old versions' figures, decision, reason); a
//! [`ControlReport`] for `abort` and `promote`. Errors: bad input (the field named, nothing changed), a
//! state that does not match the alias (`StateMismatch`, nothing changed), a rollout too long for one
//! invocation, AWS failures before any change, an approval request not sent, and a failed rollback.
//!
//! Settings ([`config`]): `ALLOWED_FUNCTIONS`, `HOOK_FUNCTIONS`, `NOTIFICATION_TOPIC_ARN`,
//! `METRIC_PERIOD_SECONDS`. Rooms, pure: [`input`] (the modes), [`rollout`] (the payload and its weights),
//! [`judge`] (windows, series, statistics, verdict), [`state`], [`marker`], [`routing`]; against AWS:
//! [`shift`] (the rollout: validation, judging, the alias's moves and the rollback), [`control`] (a
//! person's requests), [`aws`]; and [`report`].

pub mod aws;
pub mod config;
pub mod control;
pub mod input;
pub mod judge;
pub mod manual;
pub mod marker;
pub mod report;
pub mod rollout;
pub mod routing;
pub mod shift;
pub mod simulate;
pub mod state;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::AwsError;
use shared::edge::{Budget, Clock, Internal};
use shared::events::InvalidEvent;
use shared::notify::Notifier;

pub use crate::config::Config;
pub use crate::control::ControlReport;
pub use crate::input::Request;
pub use crate::manual::drive;
pub use crate::rollout::Rollout;
pub use crate::shift::switch::rollback;
pub use crate::state::{State, Status, StepDecision};

/// Time kept free at the end of an invocation for a rollback and the reply.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(30);
/// The longest a validation hook may take to answer.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(240);
/// The state machine's `TimeoutSeconds` on the tasks that call the shifter after `start`: past it, Step
/// Functions runs the rollback while the call may still be running, so a call plans within it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct Deps {
    pub lambda: aws_sdk_lambda::Client,
    /// For the hooks: a hook may run for minutes, longer than any other call may take.
    pub hooks: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub notifier: Notifier,
    pub config: Config,
    /// For the console links.
    pub region: String,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        // A hook is invoked once: a failed or timed-out invocation may have run, and a hook is not
        // idempotent. Each call is also bounded by the invocation's time left (shift::hooks).
        let hooks = aws_sdk_lambda::config::Builder::from(sdk)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(HOOK_TIMEOUT)
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        Deps {
            lambda: aws_sdk_lambda::Client::new(sdk),
            hooks: aws_sdk_lambda::Client::from_conf(hooks),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            notifier: Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone()),
            region: sdk.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string),
            config,
        }
    }
}

/// One invocation: the dependencies, its clock (tokio's, so that tests can pause it) and its time left.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub deps: &'a Deps,
    pub clock: Clock,
    pub budget: Budget,
}

impl Call<'_> {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum Error {
    #[error(transparent)]
    InvalidInput(#[from] InvalidEvent),
    #[error("a state that does not match the alias: {0}")]
    StateMismatch(String),
    #[error(
        "the rollout needs up to {needed} s ({steps} step(s), each judged once its traffic is complete, up to {} s for each hook, plus a {} s margin) and this invocation has {left} s left: start it with the state machine instead (nothing was changed)",
        HOOK_TIMEOUT.as_secs(),
        SAFETY_MARGIN.as_secs()
    )]
    TooLongForOneInvocation { needed: u64, left: u64, steps: usize },
    #[error(transparent)]
    #[strum(serialize = "AwsApiError")]
    Aws(#[from] AwsError),
    #[error("the approval request could not be sent: {0}")]
    ApprovalNotSent(String),
    #[error(
        "rollback failed ({error}) after: {reason}; the alias may still route traffic to the new version"
    )]
    RollbackFailed { reason: String, error: AwsError },
    #[error(transparent)]
    Internal(#[from] Internal),
}

shared::error_type!(Error);

/// What an invocation returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    State(Box<State>),
    Control(ControlReport),
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Reply, Error> {
    let request = Request::parse(&event.payload)?;
    let before = match &request {
        Request::Step(s)
        | Request::Continue(s)
        | Request::Rollback(s, _)
        | Request::RequestApproval(s, _)
        | Request::Approved(s, _) => Some((s.status, s.steps.len())),
        _ => None,
    };
    let shifter = Some(event.context.env_config.function_name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "<AliasShifterFunction output>".to_owned());
    let budget = Budget::from_context(&event.context);
    let budget = match &request {
        Request::Run(_)
        | Request::Continue(_)
        | Request::Start(_)
        | Request::Abort(..)
        | Request::Promote(_) => budget,
        _ => budget.capped(STEP_TIMEOUT),
    };
    let c = Call { deps, clock: Clock::start(), budget };
    let mut state = match request {
        Request::Run(r) => manual::run(&c, &r, &myself(&event.context)).await?,
        Request::Continue(s) => manual::carry_on(&c, *s, &myself(&event.context)).await?,
        Request::Start(r) => shift::start(&c, &r).await?,
        Request::Step(s) => shift::step(&c, *s).await?,
        Request::Rollback(s, why) => rollback(&c, *s, why).await?,
        Request::RequestApproval(s, token) => control::request_approval(&c, *s, &token, &shifter).await?,
        Request::Approved(s, approval) => control::approved(&c, *s, &approval).await?,
        Request::Abort(target, why) => return Ok(Reply::Control(control::abort(deps, &target, &why).await?)),
        Request::Promote(target) => return Ok(Reply::Control(control::promote(deps, &target).await?)),
    };
    shared::metrics::emit("alias-shifter", &report::Invocation { state: &state, before });
    // A finished state handed back again is not reported again.
    let newly_final = before.is_none_or(|(status, _)| status.in_progress());
    if newly_final && let Some(message) = report::finished(&state, &deps.region) {
        let notifier = deps.notifier.to(state.rollout.notification_topic_arn.clone());
        state.notification = Some(notifier.send(&message).await);
        tracing::info!(report = %serde_json::to_string(&state).unwrap_or_default(), "rollout finished");
    }
    Ok(Reply::State(Box::new(state)))
}

/// This function's ARN, as invoked (empty when not known, as in tests).
fn myself(context: &lambda_runtime::Context) -> String {
    context.invoked_function_arn.clone()
}
