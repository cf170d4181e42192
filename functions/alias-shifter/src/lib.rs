//! alias-shifter: moves a Lambda alias from its version to a new one step by step (linear, canary,
//! exponential, all at once or custom weights), judges each step in CloudWatch, and rolls back on failure.
//!
//! Trigger: a manual `aws lambda invoke` with a rollout payload (the whole rollout runs in that invocation
//! if it fits in the time left, and is refused before any change otherwise), or the stack's Step
//! Functions state machine, which calls it with `{"mode": "start" | "step" | "rollback", ...}` and waits
//! between steps in a `Wait` state (see [`input`]).
//!
//! AWS APIs: `lambda:GetFunctionConfiguration`, `lambda:GetAlias`, `lambda:UpdateAlias` (always with the
//! `RevisionId` read before), `lambda:PublishVersion` (only with `"publish": true`),
//! `cloudwatch:GetMetricData`, `cloudwatch:DescribeAlarms` (only with `alarms`), `sns:Publish` (only with
//! a notification topic).
//!
//! Returns the rollout's [`State`]: its status (`succeeded`, `rolled-back`, `left-as-found`, `dry-run`, or
//! `shifting` between state machine steps), the reason, and a report of every step (weight, times,
//! invocations, errors, error rate, throttles, alarms, decision). Errors are bad input (the field named,
//! nothing changed), a rollout too long for one invocation, AWS failures before any change, and a failed
//! rollback.
//!
//! Settings (environment): `ALLOWED_FUNCTIONS` (the functions it may shift; the IAM policy matches),
//! `NOTIFICATION_TOPIC_ARN` (default topic for reports; a payload's `notification-topic-arn` wins).

pub mod health;
pub mod input;
pub mod schedule;
pub mod shift;
pub mod state;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::AwsError;
use shared::config::{ConfigError, Env};
use shared::events::InvalidEvent;
use shared::metrics::Metrics;
use shared::notify::{Notification, Notifier};

pub use crate::input::{Request, Rollout};
pub use crate::state::{State, Status};

/// Time kept free at the end of a manual run for a rollback and the reply.
const SAFETY_MARGIN_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub allowed_functions: Vec<String>,
    pub notification_topic_arn: Option<String>,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let allowed_functions = env.list("ALLOWED_FUNCTIONS");
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        env.finish()?;
        Ok(Config { allowed_functions, notification_topic_arn })
    }
}

#[derive(Debug, Clone)]
pub struct Deps {
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Deps {
            lambda: aws_sdk_lambda::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            config,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidInput(#[from] InvalidEvent),
    #[error(
        "the rollout needs about {needed} s ({steps} step(s) of {step_seconds} s plus a {SAFETY_MARGIN_SECONDS} s margin) and this invocation has {left} s left: start it with the state machine instead (nothing was changed)"
    )]
    TooLongForOneInvocation { needed: i64, left: i64, steps: usize, step_seconds: u64 },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "rollback failed ({error}) after: {reason}; the alias may still route traffic to the new version"
    )]
    RollbackFailed { reason: String, error: AwsError },
}

impl Error {
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "InvalidInput",
            Error::TooLongForOneInvocation { .. } => "TooLongForOneInvocation",
            Error::Aws(_) => "AwsApiError",
            Error::RollbackFailed { .. } => "RollbackFailed",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<State, Error> {
    let request = Request::parse(&event.payload)?;
    let deadline = lambda_deadline(event.context.deadline);
    let before = match &request {
        Request::Step(s) | Request::Rollback(s, _) => Some((s.status, s.steps.len())),
        Request::Run(_) | Request::Start(_) => None,
    };
    let state = match request {
        Request::Run(r) => run(deps, &r, deadline).await?,
        Request::Start(r) => shift::start(deps, &r).await?,
        Request::Step(s) => shift::step(deps, *s).await?,
        Request::Rollback(s, _) if s.is_final() => *s,
        Request::Rollback(s, why) => shift::rollback(deps, *s, why).await?,
    };
    let mut metrics = Metrics::for_function("alias-shifter");
    record(&state, before, &mut metrics);
    metrics.emit();
    Ok(finish(deps, state).await)
}

/// `ShiftSteps` (steps judged or switched in this invocation), `ShiftsSucceeded` and `Rollbacks` (EMF),
/// counted once: when this invocation made the change, not when a finished state is passed again.
pub fn record(state: &State, before: Option<(Status, usize)>, m: &mut Metrics) {
    if state.status == Status::DryRun || before.is_some_and(|(status, _)| status != Status::Shifting) {
        return;
    }
    let steps_before = before.map_or(0, |(_, n)| n);
    m.count("ShiftSteps", state.steps.len().saturating_sub(steps_before));
    m.count("ShiftsSucceeded", usize::from(state.status == Status::Succeeded));
    m.count("Rollbacks", usize::from(state.status == Status::RolledBack));
}

fn lambda_deadline(deadline_ms: u64) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(deadline_ms).ok().filter(|ms| *ms > 0)?;
    DateTime::from_timestamp_millis(ms)
}

/// A whole rollout in this invocation: refused before any change if it cannot finish in the time left.
pub async fn run(deps: &Deps, r: &Rollout, deadline: Option<DateTime<Utc>>) -> Result<State, Error> {
    let step_seconds = r.step_seconds();
    let needed =
        i64::try_from(r.weights.len() as u64 * step_seconds).unwrap_or(i64::MAX) + SAFETY_MARGIN_SECONDS;
    if let Some(d) = deadline
        && !r.dry_run
    {
        let left = (d - Utc::now()).num_seconds();
        if needed > left {
            return Err(Error::TooLongForOneInvocation {
                needed,
                left,
                steps: r.weights.len(),
                step_seconds,
            });
        }
    }
    let mut state = shift::start(deps, r).await?;
    while !state.is_final() {
        if let Some(d) = deadline {
            let left = (d - Utc::now()).num_seconds();
            if i64::try_from(state.wait_seconds).unwrap_or(i64::MAX) + SAFETY_MARGIN_SECONDS > left {
                return shift::rollback(deps, state, "ran out of time in this invocation".into()).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(state.wait_seconds)).await;
        state = shift::step(deps, state).await?;
    }
    Ok(state)
}

/// Sends the report when the rollout has ended (not between state machine steps, not for a dry run).
async fn finish(deps: &Deps, mut state: State) -> State {
    if !state.is_final() || state.status == Status::DryRun {
        return state;
    }
    let topic =
        state.rollout.notification_topic_arn.clone().or_else(|| deps.config.notification_topic_arn.clone());
    let notifier = Notifier::new(deps.sns.clone(), topic);
    let notification = if notifier.enabled() {
        let subject = format!(
            "shipshape alias-shifter: {} -> version {}: {}",
            state.rollout.resource(),
            state.new_version,
            match state.status {
                Status::Succeeded => "succeeded",
                Status::RolledBack => "rolled back",
                _ => "left as found",
            }
        );
        let body = serde_json::to_string_pretty(&state).unwrap_or_default();
        notifier.send(&subject, &body).await
    } else {
        Notification::Off
    };
    tracing::info!(report = %serde_json::to_string(&state).unwrap_or_default(), "rollout finished");
    state.notification = Some(notification);
    state
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn metrics_count_what_this_invocation_did() {
        let payload = serde_json::json!({"function-name": "api", "alias-name": "live", "new-version": "2"});
        let rollout = Rollout::parse(&payload).unwrap_or_else(|e| panic!("{e}"));
        let now = Utc::now();
        let mut state = State {
            status: Status::RolledBack,
            function_name: "api".into(),
            alias_name: "live".into(),
            new_version: "2".into(),
            original_version: "1".into(),
            revision_id: "r".into(),
            step: 1,
            step_started_at: now,
            extensions: 0,
            wait_seconds: 0,
            started_at: now,
            finished_at: Some(now),
            reason: None,
            steps: Vec::new(),
            rollout,
            notification: None,
        };
        let recorded = |state: &State, before| {
            let mut m = shared::metrics::Metrics::new("f");
            record(state, before, &mut m);
            m
        };
        let m = recorded(&state, Some((Status::Shifting, 0)));
        assert_eq!((m.get("Rollbacks"), m.get("ShiftsSucceeded")), (Some(1.0), Some(0.0)));
        assert!(recorded(&state, Some((Status::RolledBack, 0))).is_empty(), "passed again: counted once");
        state.status = Status::DryRun;
        assert!(recorded(&state, None).is_empty());
    }

    #[test]
    fn config() {
        let map = HashMap::from([("ALLOWED_FUNCTIONS", "api, worker"), ("NOTIFICATION_TOPIC_ARN", "nope")]);
        let err = Config::from_env(Env::from_map(&map)).err().map(|e| e.problems[0].variable.clone());
        assert_eq!(err.as_deref(), Some("NOTIFICATION_TOPIC_ARN"));
        let map = HashMap::from([("ALLOWED_FUNCTIONS", "api, worker")]);
        let c = Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.allowed_functions, ["api", "worker"]);
    }
}
