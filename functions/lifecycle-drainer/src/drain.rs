//! The drain, step by step: find the instance, set it DRAINING, poll until no task is left (heartbeats
//! keep the hook alive), hand over to a fresh invocation at the window's end, complete the lifecycle action.
//! Its AWS side is behind [`Effects`] and its time comes from tokio, so a test runs a 15-minute drain in
//! paused time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::ecs::{Search, TaskLeft};
use shared::edge::{Budget, Clock};
use tracing::warn;

use crate::decide::{self, Decision, Poll};
use crate::input::{DrainState, Work};
use crate::{Action, Config, Error, LifecycleResult, Outcome};

/// Stop polling this long before Lambda's own deadline, to leave time to publish the continuation.
const LAMBDA_DEADLINE_MARGIN: Duration = Duration::from_secs(30);
/// Polls in a row that may fail (after the SDK's own retries) before the invocation gives up with an error.
const MAX_FAILED_POLLS: u32 = 3;

/// What a heartbeat or a completion found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    Done,
    /// "No active Lifecycle Action found": completed by a duplicate delivery, expired, or the instance is
    /// gone.
    NoActiveAction(String),
}

/// The drain's effects on AWS, for one lifecycle message ([`crate::aws::Hook`]).
#[allow(
    async_fn_in_trait,
    reason = "implemented only here (AWS, and the tests); run on one thread, Send not needed"
)]
pub trait Effects {
    /// The message's instance in the configured clusters.
    async fn find(&self) -> Result<Search, Error>;
    /// The hook's heartbeat timeout in seconds, if it can be read.
    async fn heartbeat_timeout(&self) -> Option<u32>;
    /// Sets the instance DRAINING unless it is; `false` if its container instance is gone.
    async fn ensure_draining(&self, state: &DrainState) -> Result<bool, Error>;
    async fn tasks_left(&self, state: &DrainState) -> Result<Vec<TaskLeft>, AwsError>;
    async fn heartbeat(&self) -> Result<Completion, Error>;
    async fn complete(&self, result: LifecycleResult) -> Result<Completion, Error>;
    /// Publishes the continuation (the message and `state`) to `topic`.
    async fn continue_on(&self, topic: &str, state: &DrainState) -> Result<(), Error>;
}

/// One invocation's part of a drain. `budget` is Lambda's deadline; `clock` dates everything.
pub async fn run<E: Effects>(
    fx: &E,
    config: &Config,
    work: &Work,
    budget: Budget,
    clock: Clock,
) -> Result<Outcome, Error> {
    let m = &work.message;
    let started = clock.now();
    let mut outcome = Outcome::for_message(m, work.state.as_ref().map_or(0, |s| s.hop));
    if !config.answers(&m.lifecycle_hook_name) {
        outcome.reason = Some(format!("hook {} is not in LIFECYCLE_HOOK_NAMES", m.lifecycle_hook_name));
        return Ok(outcome);
    }
    let mut state = match &work.state {
        Some(state) => state.clone(),
        None => {
            let Some(state) = begin(fx, config, started).await? else {
                outcome.reason = Some("not a container instance of the configured clusters".into());
                if config.dry_run {
                    outcome.action = Action::DryRun;
                    return Ok(outcome);
                }
                let done = Ended { action: Action::NotAnEcsInstance, result: LifecycleResult::Continue };
                return finish(fx, outcome, done, started, clock).await;
            };
            state
        }
    };
    outcome.cluster = Some(state.cluster.clone());
    outcome.container_instance_arn = Some(state.container_instance_arn.clone());

    if config.dry_run {
        outcome.set_tasks(&fx.tasks_left(&state).await?);
        outcome.action = Action::DryRun;
        return Ok(outcome);
    }
    if !fx.ensure_draining(&state).await? {
        outcome.reason = Some("the container instance is gone".into());
        let done = Ended { action: Action::Completed, result: LifecycleResult::Continue };
        return finish(fx, outcome, done, state.started_at, clock).await;
    }

    let window_end =
        decide::window_end(started, config.poll_window, budget.remaining(), LAMBDA_DEADLINE_MARGIN);
    let topic = config.continuation_topic_arn.clone().or_else(|| work.topic_arn.clone());
    let heartbeat_interval = decide::heartbeat_interval(state.heartbeat_timeout);
    let mut failed_polls = 0;
    loop {
        outcome.polls += 1;
        match fx.tasks_left(&state).await {
            Ok(tasks) => {
                failed_polls = 0;
                outcome.set_tasks(&tasks);
            }
            // Under an instance refresh dozens of drains poll at once and ECS throttles some of them past the
            // SDK's retries. One failed poll is not a failed drain: keep the last count and poll again.
            Err(e) if failed_polls < MAX_FAILED_POLLS => {
                failed_polls += 1;
                warn!(instance_id = %m.ec2_instance_id, error = %e, failed_polls, "poll failed; trying again");
            }
            Err(e) => return Err(e.into()),
        }
        // After a failed poll nothing is known to have stopped: never complete on it.
        let tasks_left = if failed_polls > 0 { outcome.tasks_left.max(1) } else { outcome.tasks_left };
        let decision = decide::decide(&Poll {
            tasks_left,
            now: clock.now(),
            deadline: state.deadline,
            window_end,
            last_heartbeat_at: state.last_heartbeat_at,
            heartbeat_interval,
            hop: state.hop,
            max_hops: config.max_hops,
            can_continue: topic.is_some(),
        });
        let heartbeat = match decision {
            Decision::Complete => {
                let done = Ended { action: Action::Completed, result: LifecycleResult::Continue };
                return finish(fx, outcome, done, state.started_at, clock).await;
            }
            Decision::TimeOut(cause) => {
                outcome.reason = Some(cause.reason().into());
                warn!(
                    instance_id = %m.ec2_instance_id,
                    tasks_left = outcome.tasks_left,
                    tasks = ?outcome.tasks.iter().map(|t| &t.task_arn).collect::<Vec<_>>(),
                    reason = outcome.reason.as_deref(),
                    "drain timed out"
                );
                let done = Ended { action: Action::TimedOut, result: config.timeout_result };
                return finish(fx, outcome, done, state.started_at, clock).await;
            }
            Decision::Continue { heartbeat } | Decision::Wait { heartbeat } => heartbeat,
        };
        if heartbeat {
            if let Completion::NoActiveAction(_) = fx.heartbeat().await? {
                return Ok(gone(outcome, None, state.started_at, clock.now()));
            }
            outcome.heartbeats += 1;
            state.last_heartbeat_at = clock.now();
        }
        // decide() only continues when a topic is known.
        if let (Decision::Continue { .. }, Some(topic)) = (decision, &topic) {
            state.hop += 1;
            fx.continue_on(topic, &state).await?;
            outcome.action = Action::Continued;
            outcome.elapsed_seconds = (clock.now() - state.started_at).num_seconds();
            return Ok(outcome);
        }
        let poll = decide::jittered(config.poll_interval, m.ec2_instance_id.as_str(), outcome.polls);
        let now = clock.now();
        tokio::time::sleep(decide::pause(now, poll, window_end, state.last_heartbeat_at, heartbeat_interval))
            .await;
    }
}

/// A new drain: where the instance is, and the hook's heartbeat timeout. `None` when the instance is in no
/// configured cluster.
async fn begin<E: Effects>(
    fx: &E,
    config: &Config,
    started: DateTime<Utc>,
) -> Result<Option<DrainState>, Error> {
    let Some(found) = fx.find().await?.found else { return Ok(None) };
    let heartbeat_timeout = fx.heartbeat_timeout().await;
    if heartbeat_timeout.is_some_and(|t| u64::from(t) < config.poll_window.as_secs()) {
        warn!(
            heartbeat_timeout = heartbeat_timeout,
            poll_window = config.poll_window.as_secs(),
            "the hook's heartbeat timeout is shorter than the poll window; heartbeats keep it alive"
        );
    }
    Ok(Some(DrainState {
        started_at: started,
        deadline: started + chrono::Duration::from_std(config.drain_timeout).unwrap_or(chrono::Duration::MAX),
        hop: 0,
        cluster: found.cluster,
        container_instance_arn: found.container_instance_arn,
        heartbeat_timeout,
        last_heartbeat_at: started,
    }))
}

/// How a drain ends: what the summary says, and the result sent to Auto Scaling.
struct Ended {
    action: Action,
    result: LifecycleResult,
}

/// Completes the lifecycle action and fills in the outcome; "no active lifecycle action" means the work
/// is already done (a duplicate delivery completed it, or it expired), which ends the drain quietly.
async fn finish<E: Effects>(
    fx: &E,
    mut outcome: Outcome,
    ended: Ended,
    started_at: DateTime<Utc>,
    clock: Clock,
) -> Result<Outcome, Error> {
    match fx.complete(ended.result).await? {
        Completion::Done => {
            outcome.action = ended.action;
            outcome.result = Some(ended.result);
            outcome.elapsed_seconds = (clock.now() - started_at).num_seconds();
            Ok(outcome)
        }
        Completion::NoActiveAction(message) => Ok(gone(outcome, Some(message), started_at, clock.now())),
    }
}

fn gone(
    mut outcome: Outcome,
    message: Option<String>,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Outcome {
    outcome.action = Action::AlreadyCompleted;
    outcome.result = None;
    outcome.reason = Some(match message {
        Some(m) => format!("no active lifecycle action: {m}"),
        None => "no active lifecycle action: completed elsewhere, expired, or the instance is gone".into(),
    });
    outcome.elapsed_seconds = (now - started_at).num_seconds();
    outcome
}

#[cfg(test)]
mod tests;
