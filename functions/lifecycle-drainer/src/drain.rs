//! The drain, step by step: check the message against the configuration and against AWS, find the
//! instance, set it DRAINING, poll until no task is left (heartbeats keep the hook alive), hand over to a
//! fresh invocation at the window's end, complete the lifecycle action. Its AWS side is behind [`Effects`]
//! and its time comes from tokio, so a test runs a 15-minute drain in paused time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::autoscaling::InGroup;
use shared::ecs::{Found, InstanceStatus, Search, TaskLeft};
use shared::edge::{Budget, Clock};
use shared::events::InvalidEvent;
use tracing::warn;

use crate::decide::{self, Decision, Poll, TimeoutCause};
use crate::input::{DrainState, STATE_KEY, Work};
use crate::{Action, Config, Error, LifecycleResult, Outcome};

/// Stop polling this long before Lambda's own deadline, to leave time to publish the continuation.
mod admit;
use admit::{Admitted, admit};

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

/// The hook, as `DescribeLifecycleHooks` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookRead {
    Found {
        heartbeat_timeout: u32,
        global_timeout: u32,
    },
    /// The group has no hook of the message's name.
    Missing,
    /// It could not be read (after the SDK's retries): heartbeats every 15 s, and the smallest lifetime
    /// AWS allows is assumed.
    Unreadable,
}

/// The drain's effects on AWS, for one lifecycle message ([`crate::aws::Hook`]).
#[allow(
    async_fn_in_trait,
    reason = "implemented only here (AWS, and the tests); run on one thread, Send not needed"
)]
pub trait Effects {
    /// The message's instance in the configured clusters.
    async fn find(&self) -> Result<Search, Error>;
    async fn hook(&self) -> HookRead;
    /// The Auto Scaling group and lifecycle state of the message's instance; `None` when it is in no group.
    async fn lifecycle_state(&self) -> Result<Option<InGroup>, Error>;
    /// The container instance a drain state names, as ECS describes it now; `None` when it is not there.
    async fn describe(&self, state: &DrainState) -> Result<Option<Found>, Error>;
    /// Marks the container instance as drained by us for this lifecycle action ([`crate::aws::MARKER`]):
    /// an instance back from the warm pool is set ACTIVE again only with it, and a stopped task's event
    /// finds the action by it.
    async fn mark(&self, state: &DrainState) -> Result<(), Error>;
    async fn set_draining(&self, state: &DrainState) -> Result<(), Error>;
    /// Sets a container instance we drained ACTIVE again and takes our marker off.
    async fn reactivate(&self, found: &Found) -> Result<(), Error>;
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
    let started = clock.now();
    let mut outcome = Outcome::for_message(&work.message, work.state.as_ref().map_or(0, |s| s.hop));
    let (heartbeat_timeout, global_timeout) = match admit(fx, config, work, &mut outcome, started).await? {
        Admitted::Proceed { heartbeat_timeout, global_timeout } => (heartbeat_timeout, global_timeout),
        Admitted::Over(outcome) => return Ok(*outcome),
    };
    if work.launching() {
        return crate::launch::run(
            fx,
            config,
            work,
            outcome,
            budget,
            clock,
            (heartbeat_timeout, global_timeout),
        )
        .await;
    }
    let m = &work.message;

    let mut state = match &work.state {
        Some(state) => state.clone(),
        None => {
            let Some(found) = fx.find().await?.found else {
                outcome.reason = Some("not a container instance of the configured clusters".into());
                if config.dry_run {
                    outcome.action = Action::DryRun;
                    return Ok(outcome);
                }
                let done = Ended { action: Action::NotAnEcsInstance, result: LifecycleResult::Continue };
                return finish(fx, outcome, done, started, clock).await;
            };
            let (deadline, _) =
                decide::deadline(started, config.drain_timeout, work.began_at, global_timeout);
            DrainState {
                started_at: started,
                deadline,
                hop: 0,
                cluster: found.cluster,
                container_instance_arn: found.container_instance_arn,
                heartbeat_timeout,
                last_heartbeat_at: started,
            }
        }
    };
    // The hook's lifetime bounds every invocation's deadline, a continuation's too.
    let (bound, cause) =
        decide::deadline(state.started_at, config.drain_timeout, work.began_at, global_timeout);
    let deadline_cause = if bound <= state.deadline { cause } else { TimeoutCause::Deadline };
    state.deadline = state.deadline.min(bound);
    if deadline_cause == TimeoutCause::HookLifetime {
        let said = format!(
            "DRAIN_TIMEOUT_SECONDS={} cannot be honoured: the hook's GlobalTimeout ({global_timeout} s from {}) ends this drain at {}",
            config.drain_timeout.as_secs(),
            work.began_at,
            state.deadline
        );
        warn!(instance_id = %m.ec2_instance_id, "{said}");
        outcome.warnings.push(said);
    }
    outcome.cluster = Some(state.cluster.clone());
    outcome.container_instance_arn = Some(state.container_instance_arn.clone());

    let found = match locate(fx, work, &state).await? {
        Some(found) => found,
        None if config.dry_run => {
            outcome.action = Action::DryRun;
            outcome.reason = Some("the container instance is gone".into());
            return Ok(outcome);
        }
        None => {
            outcome.reason = Some("the container instance is gone".into());
            let done = Ended { action: Action::Completed, result: LifecycleResult::Continue };
            return finish(fx, outcome, done, state.started_at, clock).await;
        }
    };
    if config.dry_run {
        outcome.set_tasks(&fx.tasks_left(&state).await?);
        outcome.action = Action::DryRun;
        return Ok(outcome);
    }
    if found.attributes.get(crate::aws::MARKER)
        != Some(&decide::marker_value(&m.lifecycle_hook_name, state.started_at))
    {
        fx.mark(&state).await?;
    }
    if found.status == InstanceStatus::Active {
        fx.set_draining(&state).await?;
    }

    let window_end =
        decide::window_end(started, config.poll_window, budget.remaining(), LAMBDA_DEADLINE_MARGIN);
    let topic = config.continuation_topic_arn.clone().or_else(|| work.topic_arn.clone());
    let heartbeat_interval = decide::heartbeat_interval(heartbeat_timeout);
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
        let poll = Poll {
            // After a failed poll nothing is known to have stopped: never complete on it.
            tasks_left: if failed_polls > 0 { outcome.tasks_left.max(1) } else { outcome.tasks_left },
            now: clock.now(),
            deadline: state.deadline,
            window_end,
            last_heartbeat_at: state.last_heartbeat_at,
            heartbeat_interval,
            hop: state.hop,
            max_hops: config.max_hops,
            can_continue: topic.is_some(),
            first_poll: outcome.polls == 1,
        };
        let decision = decide::decide(&poll);
        let heartbeat = match decision {
            Decision::Complete => {
                let done = Ended { action: Action::Completed, result: LifecycleResult::Continue };
                return finish(fx, outcome, done, state.started_at, clock).await;
            }
            Decision::TimeOut(cause) => {
                let cause = if cause == TimeoutCause::Deadline { deadline_cause } else { cause };
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
            Decision::Continue => true,
            Decision::Wait { heartbeat } => heartbeat,
        };
        if heartbeat {
            if let Completion::NoActiveAction(_) = fx.heartbeat().await? {
                return Ok(gone(outcome, None, state.started_at, clock.now()));
            }
            outcome.heartbeats += 1;
            state.last_heartbeat_at = clock.now();
        }
        // decide() only continues when a topic is known.
        if let (Decision::Continue, Some(topic)) = (decision, &topic) {
            state.hop += 1;
            fx.continue_on(topic, &state).await?;
            outcome.action = Action::Continued;
            outcome.elapsed_seconds = (clock.now() - state.started_at).num_seconds();
            return Ok(outcome);
        }
        let jittered = decide::jittered(config.poll_interval, m.ec2_instance_id.as_str(), outcome.polls);
        let poll = Poll { now: clock.now(), last_heartbeat_at: state.last_heartbeat_at, ..poll };
        tokio::time::sleep(decide::pause(&poll, jittered)).await;
    }
}

/// The container instance the drain state names, if it is still there and is the message's EC2 instance.
/// When it is not there, the instance is gone only if ECS has no container instance for it in any
/// configured cluster: a continuation naming the wrong cluster must never complete a drain early.
async fn locate<E: Effects>(fx: &E, work: &Work, state: &DrainState) -> Result<Option<Found>, Error> {
    let id = &work.message.ec2_instance_id;
    match fx.describe(state).await? {
        Some(found) if found.ec2_instance_id == id.as_str() => return Ok(Some(found)),
        Some(found) => {
            return Err(InvalidEvent::new(
                format!("{STATE_KEY}.container_instance_arn"),
                format!(
                    "{} is EC2 instance {}, not {id}; nothing was changed",
                    state.container_instance_arn, found.ec2_instance_id
                ),
            )
            .into());
        }
        None => {}
    }
    match fx.find().await?.found {
        None => Ok(None),
        Some(found) => Err(InvalidEvent::new(
            format!("{STATE_KEY}.cluster"),
            format!(
                "{id} is container instance {} in cluster {}, not {} in {}; nothing was changed",
                found.container_instance_arn, found.cluster, state.container_instance_arn, state.cluster
            ),
        )
        .into()),
    }
}

/// How a drain ends: what the summary says, and the result sent to Auto Scaling.
pub(crate) struct Ended {
    pub action: Action,
    pub result: LifecycleResult,
}

/// Completes the lifecycle action and fills in the outcome; "no active lifecycle action" means the work
/// is already done (a duplicate delivery completed it, or it expired), which ends the drain quietly.
pub(crate) async fn finish<E: Effects>(
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

pub(crate) fn gone(
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
