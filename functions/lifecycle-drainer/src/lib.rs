//! lifecycle-drainer: drains an ECS container instance before its Auto Scaling group terminates it.
//!
//! Trigger: an Auto Scaling termination lifecycle hook, delivered by its SNS topic (the SNS envelope's
//! `Message` is the lifecycle JSON) or by EventBridge ("EC2 Instance-terminate Lifecycle Action"). Test
//! notifications, launch transitions, other messages and hooks not in `LIFECYCLE_HOOK_NAMES` are
//! acknowledged and ignored.
//!
//! Flow: find the container instance, set it DRAINING, poll until no task is left (every task not
//! STOPPED counts), then `CompleteLifecycleAction(CONTINUE)` with the token and the instance id. A drain
//! longer than one invocation's poll window continues in a fresh invocation: the lifecycle message plus
//! our state (start, own deadline, hop count, where the instance is) is published back to the topic.
//! Heartbeats keep the hook alive until our own deadline (`DRAIN_TIMEOUT_SECONDS`), when the action is
//! completed with `TIMEOUT_RESULT` and the tasks still there are logged and notified.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:ListContainerInstances`,
//! `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`, `ecs:ListTasks`,
//! `ecs:DescribeTasks`, `autoscaling:DescribeLifecycleHooks`, `autoscaling:RecordLifecycleActionHeartbeat`,
//! `autoscaling:CompleteLifecycleAction`, `sns:Publish` (continuations, and notifications if configured).
//!
//! Returns an [`Outcome`]: what was done (`completed`, `continued`, `timed-out`, `already-completed`,
//! `not-an-ecs-instance`, `ignored`, `dry-run`), the instance, group, hook, tasks left, hop and elapsed time.

pub mod decide;
pub mod input;

use std::time::Duration;

use aws_sdk_ecs::types::ContainerInstanceStatus;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::AwsError;
use shared::config::{ConfigError, Env};
use shared::ecs::{self, ClusterScope, TaskLeft};
use shared::error::aws;
use shared::events::LifecycleMessage;
use shared::metrics::{Metrics, Unit};
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

use crate::decide::{Decision, Poll, TimeoutCause, decide, heartbeat_interval};
use crate::input::{DrainState, Input, Work};

/// Stop polling this long before Lambda's own deadline, to leave time to publish the continuation.
const LAMBDA_DEADLINE_MARGIN: Duration = Duration::from_secs(30);
/// Polls in a row that may fail (after the SDK's own retries) before the invocation gives up with an error.
const MAX_FAILED_POLLS: u32 = 3;
/// Tasks listed by name in the summary and the notification; the count is always complete.
const TASKS_SHOWN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LifecycleResult {
    #[serde(rename = "CONTINUE")]
    Continue,
    #[serde(rename = "ABANDON")]
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleResult::Continue => "CONTINUE",
            LifecycleResult::Abandon => "ABANDON",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    /// Empty: answer every hook that reaches us.
    pub hook_names: Vec<String>,
    pub drain_timeout: Duration,
    pub timeout_result: LifecycleResult,
    pub poll_interval: Duration,
    pub poll_window: Duration,
    pub max_hops: u32,
    /// Where continuations go; without it, the SNS topic the message came from.
    pub continuation_topic_arn: Option<String>,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let hook_names = env.list("LIFECYCLE_HOOK_NAMES");
        let drain_timeout = Duration::from_secs(env.number("DRAIN_TIMEOUT_SECONDS", 900, 1, 172_800));
        let timeout_result = match env.get("TIMEOUT_RESULT").map(|v| v.to_ascii_uppercase()).as_deref() {
            None | Some("CONTINUE") => LifecycleResult::Continue,
            Some("ABANDON") => LifecycleResult::Abandon,
            Some(other) => {
                env.problem("TIMEOUT_RESULT", Some(other), "expected CONTINUE or ABANDON");
                LifecycleResult::Continue
            }
        };
        let poll_interval = Duration::from_secs(env.number("POLL_INTERVAL_SECONDS", 15, 1, 300));
        let poll_window = Duration::from_secs(env.number("POLL_WINDOW_SECONDS", 600, 1, 870));
        let max_hops = env.number("MAX_HOPS", 300, 0, 10_000);
        // The hop cap is a safety net, not a second timeout: it must let the drain reach its deadline.
        let needed = drain_timeout.as_secs().div_ceil(poll_window.as_secs().max(1));
        if u64::from(max_hops) < needed {
            env.problem(
                "MAX_HOPS",
                Some(&max_hops.to_string()),
                format!("too low: DRAIN_TIMEOUT_SECONDS / POLL_WINDOW_SECONDS needs at least {needed}"),
            );
        }
        let continuation_topic_arn = env.topic_arn("CONTINUATION_TOPIC_ARN");
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config {
            clusters,
            hook_names,
            drain_timeout,
            timeout_result,
            poll_interval,
            poll_window,
            max_hops,
            continuation_topic_arn,
            notification_topic_arn,
            dry_run,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub sns: aws_sdk_sns::Client,
    pub notifier: Notifier,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let sns = aws_sdk_sns::Client::new(sdk);
        Deps {
            ecs: aws_sdk_ecs::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            notifier: Notifier::new(sns.clone(), config.notification_topic_arn.clone()),
            sns,
            config,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// No task left: the lifecycle action was completed with CONTINUE.
    Completed,
    /// Tasks still running at the end of this invocation's window: handed to a fresh invocation.
    Continued,
    /// Our deadline (or hop cap) passed: completed with `TIMEOUT_RESULT`.
    TimedOut,
    /// The lifecycle action no longer exists (completed by a duplicate delivery, expired, instance gone).
    AlreadyCompleted,
    /// The instance is in none of the clusters: completed with CONTINUE at once.
    NotAnEcsInstance,
    Ignored,
    DryRun,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Completed => "completed",
            Action::Continued => "continued",
            Action::TimedOut => "timed-out",
            Action::AlreadyCompleted => "already-completed",
            Action::NotAnEcsInstance => "not-an-ecs-instance",
            Action::Ignored => "ignored",
            Action::DryRun => "dry-run",
        }
    }
}

impl Outcome {
    /// `DrainsStarted` (the first invocation of a drain), `DrainsCompleted`, `DrainsTimedOut`,
    /// `DrainDuration` (seconds, when the drain ended) and `InstancesNotFound` (EMF). Ignored messages,
    /// dry runs and duplicates of an ended action record nothing.
    pub fn record(&self, m: &mut Metrics) {
        let drain = matches!(self.action, Action::Completed | Action::Continued | Action::TimedOut);
        if !drain && self.action != Action::NotAnEcsInstance {
            return;
        }
        m.count("DrainsStarted", usize::from(drain && self.hop == 0));
        m.count("DrainsCompleted", usize::from(self.action == Action::Completed));
        m.count("DrainsTimedOut", usize::from(self.action == Action::TimedOut));
        m.count("InstancesNotFound", usize::from(self.action == Action::NotAnEcsInstance));
        if matches!(self.action, Action::Completed | Action::TimedOut) {
            m.add("DrainDuration", self.elapsed_seconds as f64, Unit::Seconds);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_hook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    /// The result sent with `CompleteLifecycleAction`, when this invocation sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<LifecycleResult>,
    pub tasks_left: usize,
    /// Up to 20 of the tasks still there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskLeft>,
    pub hop: u32,
    pub polls: u32,
    pub heartbeats: u32,
    pub elapsed_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub notification: Notification,
}

impl Outcome {
    fn ignored(reason: String) -> Self {
        Outcome {
            action: Action::Ignored,
            instance_id: None,
            auto_scaling_group: None,
            lifecycle_hook: None,
            cluster: None,
            container_instance_arn: None,
            result: None,
            tasks_left: 0,
            tasks: Vec::new(),
            hop: 0,
            polls: 0,
            heartbeats: 0,
            elapsed_seconds: 0,
            reason: Some(reason),
            notification: Notification::Skipped,
        }
    }

    fn for_message(m: &LifecycleMessage, hop: u32) -> Self {
        Outcome {
            action: Action::Ignored,
            instance_id: Some(m.ec2_instance_id.clone()),
            auto_scaling_group: Some(m.auto_scaling_group_name.clone()),
            lifecycle_hook: Some(m.lifecycle_hook_name.clone()),
            hop,
            reason: None,
            ..Outcome::ignored(String::new())
        }
    }

    fn set_tasks(&mut self, tasks: &[TaskLeft]) {
        self.tasks_left = tasks.len();
        self.tasks = tasks.iter().take(TASKS_SHOWN).cloned().collect();
    }
}

/// The drainers share their error type; see [`shared::error::DrainError`].
pub use shared::error::DrainError as Error;

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Outcome, Error> {
    let input = input::parse(&event.payload).inspect_err(|e| warn!(error = %e, "event rejected"))?;
    let outcome = match input {
        Input::Ignore(reason) => Outcome::ignored(reason),
        Input::Work(work) => drain(deps, &work, lambda_deadline(event.context.deadline)).await?,
    };
    info!(
        action = outcome.action.as_str(),
        instance_id = outcome.instance_id.as_deref(),
        auto_scaling_group = outcome.auto_scaling_group.as_deref(),
        lifecycle_hook = outcome.lifecycle_hook.as_deref(),
        cluster = outcome.cluster.as_deref(),
        tasks_left = outcome.tasks_left,
        hop = outcome.hop,
        elapsed_seconds = outcome.elapsed_seconds,
        reason = outcome.reason.as_deref(),
        "handled"
    );
    let mut metrics = Metrics::for_function("lifecycle-drainer");
    outcome.record(&mut metrics);
    metrics.emit();
    Ok(outcome)
}

/// The invocation's deadline from the runtime; 0 (no deadline given, as in tests) means none.
fn lambda_deadline(deadline_ms: u64) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(deadline_ms).ok().filter(|ms| *ms > 0)?;
    DateTime::<Utc>::from_timestamp_millis(ms)
}

async fn drain(deps: &Deps, work: &Work, lambda_deadline: Option<DateTime<Utc>>) -> Result<Outcome, Error> {
    let config = &deps.config;
    let m = &work.message;
    let started = Utc::now();
    let mut outcome = Outcome::for_message(m, work.state.as_ref().map_or(0, |s| s.hop));
    if !config.hook_names.is_empty() && !config.hook_names.contains(&m.lifecycle_hook_name) {
        outcome.reason = Some(format!("hook {} is not in LIFECYCLE_HOOK_NAMES", m.lifecycle_hook_name));
        return Ok(outcome);
    }

    let mut state = match &work.state {
        Some(state) => state.clone(),
        None => {
            let clusters = config.clusters.resolve(&deps.ecs).await?;
            let search = ecs::find_container_instance(&deps.ecs, &clusters, &m.ec2_instance_id).await?;
            let Some(found) = search.found else {
                outcome.reason = Some("not a container instance of the configured clusters".into());
                if config.dry_run {
                    outcome.action = Action::DryRun;
                    return Ok(outcome);
                }
                return finish(deps, m, outcome, Action::NotAnEcsInstance, LifecycleResult::Continue, None)
                    .await;
            };
            let heartbeat_timeout = hook_heartbeat_timeout(deps, m).await;
            if heartbeat_timeout.is_some_and(|t| u64::from(t) < config.poll_window.as_secs()) {
                warn!(
                    lifecycle_hook = %m.lifecycle_hook_name,
                    heartbeat_timeout = heartbeat_timeout,
                    poll_window = config.poll_window.as_secs(),
                    "the hook's heartbeat timeout is shorter than the poll window; heartbeats keep it alive"
                );
            }
            DrainState {
                started_at: started,
                deadline: started
                    + chrono::Duration::from_std(config.drain_timeout).unwrap_or(chrono::Duration::MAX),
                hop: 0,
                cluster: found.cluster,
                container_instance_arn: found.container_instance_arn,
                heartbeat_timeout,
                last_heartbeat_at: started,
            }
        }
    };
    outcome.cluster = Some(state.cluster.clone());
    outcome.container_instance_arn = Some(state.container_instance_arn.clone());

    if config.dry_run {
        let tasks = ecs::tasks_left(&deps.ecs, &state.cluster, &state.container_instance_arn).await?;
        outcome.set_tasks(&tasks);
        outcome.action = Action::DryRun;
        return Ok(outcome);
    }
    if !ensure_draining(deps, &state).await? {
        outcome.reason = Some("the container instance is gone".into());
        return finish(deps, m, outcome, Action::Completed, LifecycleResult::Continue, Some(&state)).await;
    }

    let window_end = {
        let own = started + chrono::Duration::from_std(config.poll_window).unwrap_or(chrono::Duration::MAX);
        match lambda_deadline {
            Some(d) => own.min(d - chrono::Duration::from_std(LAMBDA_DEADLINE_MARGIN).unwrap_or_default()),
            None => own,
        }
    };
    let topic = config.continuation_topic_arn.clone().or_else(|| work.topic_arn.clone());
    let mut failed_polls = 0;
    loop {
        outcome.polls += 1;
        match ecs::tasks_left(&deps.ecs, &state.cluster, &state.container_instance_arn).await {
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
        let now = Utc::now();
        let decision = decide(&Poll {
            tasks_left,
            now,
            deadline: state.deadline,
            window_end,
            last_heartbeat_at: state.last_heartbeat_at,
            heartbeat_interval: heartbeat_interval(state.heartbeat_timeout),
            hop: state.hop,
            max_hops: config.max_hops,
            can_continue: topic.is_some(),
        });
        match decision {
            Decision::Complete => {
                return finish(deps, m, outcome, Action::Completed, LifecycleResult::Continue, Some(&state))
                    .await;
            }
            Decision::TimeOut(cause) => {
                outcome.reason = Some(
                    match cause {
                        TimeoutCause::Deadline => "DRAIN_TIMEOUT_SECONDS reached",
                        TimeoutCause::HopCap => "MAX_HOPS reached",
                        TimeoutCause::NoContinuationTopic => {
                            "poll window over and no topic to continue on (set CONTINUATION_TOPIC_ARN)"
                        }
                    }
                    .into(),
                );
                warn!(
                    instance_id = %m.ec2_instance_id,
                    tasks_left = outcome.tasks_left,
                    tasks = ?outcome.tasks.iter().map(|t| &t.task_arn).collect::<Vec<_>>(),
                    reason = outcome.reason.as_deref(),
                    "drain timed out"
                );
                let result = config.timeout_result;
                return finish(deps, m, outcome, Action::TimedOut, result, Some(&state)).await;
            }
            Decision::Continue { heartbeat } | Decision::Wait { heartbeat } => {
                if heartbeat {
                    if !record_heartbeat(deps, m).await? {
                        return Ok(gone(outcome, state.started_at));
                    }
                    outcome.heartbeats += 1;
                    state.last_heartbeat_at = Utc::now();
                }
                // decide() only continues when a topic is known.
                if let (Decision::Continue { .. }, Some(topic)) = (decision, &topic) {
                    state.hop += 1;
                    publish_continuation(deps, topic, m, &state).await?;
                    outcome.action = Action::Continued;
                    outcome.elapsed_seconds = (Utc::now() - state.started_at).num_seconds();
                    return Ok(outcome);
                }
                // Wake for whichever comes first: the next poll, the window's end, the next heartbeat.
                let now = Utc::now();
                let until_window_end = (window_end - now).to_std().unwrap_or_default();
                let next_heartbeat = state.last_heartbeat_at
                    + chrono::Duration::from_std(heartbeat_interval(state.heartbeat_timeout))
                        .unwrap_or_default();
                let until_heartbeat = (next_heartbeat - now).to_std().unwrap_or_default();
                let pause = jittered(config.poll_interval, &m.ec2_instance_id, outcome.polls)
                    .min(until_window_end)
                    .min(until_heartbeat);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

fn gone(mut outcome: Outcome, started_at: DateTime<Utc>) -> Outcome {
    outcome.action = Action::AlreadyCompleted;
    outcome.result = None;
    outcome.reason =
        Some("no active lifecycle action: completed elsewhere, expired, or the instance is gone".into());
    outcome.elapsed_seconds = (Utc::now() - started_at).num_seconds();
    outcome
}

/// Completes the lifecycle action and fills in the outcome; "no active lifecycle action" means the work
/// is already done (a duplicate delivery completed it, or it expired), which ends the drain quietly.
async fn finish(
    deps: &Deps,
    m: &LifecycleMessage,
    mut outcome: Outcome,
    action: Action,
    result: LifecycleResult,
    state: Option<&DrainState>,
) -> Result<Outcome, Error> {
    let done = deps
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(&m.auto_scaling_group_name)
        .lifecycle_hook_name(&m.lifecycle_hook_name)
        .lifecycle_action_token(&m.lifecycle_action_token)
        .instance_id(&m.ec2_instance_id)
        .lifecycle_action_result(result.as_str())
        .send()
        .await
        .map_err(aws("CompleteLifecycleAction"));
    let started_at = state.map_or_else(Utc::now, |s| s.started_at);
    match done {
        Ok(_) => {
            outcome.action = action;
            outcome.result = Some(result);
            outcome.elapsed_seconds = (Utc::now() - started_at).num_seconds();
        }
        Err(e) if no_active_action(&e) => {
            let mut gone = gone(outcome, started_at);
            gone.reason = Some(format!("no active lifecycle action: {}", e.message));
            return Ok(gone);
        }
        Err(e) => return Err(e.into()),
    }
    if matches!(action, Action::Completed | Action::TimedOut) {
        outcome.notification = deps.notifier.send(&subject(&outcome, m), &message(&outcome, m)).await;
    }
    Ok(outcome)
}

fn no_active_action(e: &AwsError) -> bool {
    e.code_is("ValidationError") && e.message.contains("No active Lifecycle Action")
}

/// The hook's heartbeat timeout; `None` if it cannot be read (heartbeats then go out every 15 s).
async fn hook_heartbeat_timeout(deps: &Deps, m: &LifecycleMessage) -> Option<u32> {
    let result = deps
        .autoscaling
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(&m.auto_scaling_group_name)
        .lifecycle_hook_names(&m.lifecycle_hook_name)
        .send()
        .await
        .map_err(aws("DescribeLifecycleHooks"));
    match result {
        Ok(out) => out
            .lifecycle_hooks()
            .first()
            .and_then(|h| h.heartbeat_timeout())
            .and_then(|t| u32::try_from(t).ok()),
        Err(e) => {
            warn!(error = %e, "cannot read the hook's heartbeat timeout; heartbeats every 15 s");
            None
        }
    }
}

/// `false` when the lifecycle action is gone.
async fn record_heartbeat(deps: &Deps, m: &LifecycleMessage) -> Result<bool, Error> {
    let result = deps
        .autoscaling
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&m.auto_scaling_group_name)
        .lifecycle_hook_name(&m.lifecycle_hook_name)
        .lifecycle_action_token(&m.lifecycle_action_token)
        .instance_id(&m.ec2_instance_id)
        .send()
        .await
        .map_err(aws("RecordLifecycleActionHeartbeat"));
    match result {
        Ok(_) => Ok(true),
        Err(e) if no_active_action(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets the instance DRAINING unless it already is (someone may have set it back to ACTIVE between
/// invocations). `false` if the container instance no longer exists.
async fn ensure_draining(deps: &Deps, state: &DrainState) -> Result<bool, Error> {
    let arns = std::slice::from_ref(&state.container_instance_arn);
    let described = match ecs::describe_container_instances(&deps.ecs, &state.cluster, arns).await {
        Ok(d) => d,
        Err(e) if e.code_is("ClusterNotFoundException") => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let Some(found) = described.first() else { return Ok(false) };
    if found.status != "ACTIVE" {
        return Ok(true);
    }
    let change = ecs::set_status(&deps.ecs, &state.cluster, arns, ContainerInstanceStatus::Draining).await?;
    if let Some(failure) = change.failures.into_iter().next() {
        return Err(Error::DrainRejected {
            container_instance_arn: state.container_instance_arn.clone(),
            reason: failure.reason,
        });
    }
    info!(instance_id = %found.ec2_instance_id, cluster = %state.cluster, "set DRAINING");
    Ok(true)
}

async fn publish_continuation(
    deps: &Deps,
    topic: &str,
    m: &LifecycleMessage,
    state: &DrainState,
) -> Result<(), Error> {
    let body = input::continuation(m, state).map_err(|e| AwsError {
        operation: "Publish",
        code: None,
        message: format!("cannot encode: {e}"),
    })?;
    deps.sns.publish().topic_arn(topic).message(body).send().await.map_err(aws("Publish"))?;
    info!(instance_id = %m.ec2_instance_id, hop = state.hop, topic_arn = %topic, "drain continues in a new invocation");
    Ok(())
}

/// Spreads polls of many simultaneous drains (an instance refresh) by ±10 %, so they do not hit ECS in
/// lockstep.
fn jittered(interval: Duration, instance_id: &str, poll: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(instance_id.as_bytes());
    h.write_u32(poll);
    let fraction = (h.finish() % 2001) as f64 / 10_000.0 - 0.1; // -0.1 ..= 0.1
    interval.mul_f64(1.0 + fraction)
}

fn subject(o: &Outcome, m: &LifecycleMessage) -> String {
    match o.action {
        Action::TimedOut => {
            format!("shipshape: drain of {} timed out with {} task(s) left", m.ec2_instance_id, o.tasks_left)
        }
        _ => format!("shipshape: {} drained, termination continues", m.ec2_instance_id),
    }
}

fn message(o: &Outcome, m: &LifecycleMessage) -> String {
    let result = o.result.map_or("-", LifecycleResult::as_str);
    let mut text = format!(
        "Instance: {}\nAuto Scaling group: {}\nLifecycle hook: {}\nCluster: {}\nDrain took: {} s over {} invocation(s)\n\
         Lifecycle action completed with: {result}\n",
        m.ec2_instance_id,
        m.auto_scaling_group_name,
        m.lifecycle_hook_name,
        o.cluster.as_deref().unwrap_or("-"),
        o.elapsed_seconds,
        o.hop + 1,
    );
    if o.tasks_left > 0 {
        text.push_str(&format!(
            "\nThe drain timed out ({}); {} task(s) were still on the instance:\n",
            o.reason.as_deref().unwrap_or("deadline"),
            o.tasks_left
        ));
        for t in &o.tasks {
            text.push_str(&format!(
                "  {} ({}, {})\n",
                t.task_arn,
                t.last_status,
                t.group.as_deref().unwrap_or("no group")
            ));
        }
        text.push_str(
            "\nStandalone tasks (not in a service) are never stopped by draining; service tasks that stay may mean \
             their replacements could not be placed.\n",
        );
    } else {
        text.push_str("\nNo task was left on the instance; Auto Scaling now terminates it.\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn metrics_count_a_drain_once_and_its_end() {
        let at = |action: Action, hop: u32| {
            let mut o = Outcome::ignored(String::new());
            (o.action, o.hop, o.elapsed_seconds) = (action, hop, 312);
            let mut m = Metrics::new("f");
            o.record(&mut m);
            m
        };
        let first = at(Action::Continued, 0);
        assert_eq!((first.get("DrainsStarted"), first.get("DrainsCompleted")), (Some(1.0), Some(0.0)));
        assert_eq!(first.get("DrainDuration"), None);
        let done = at(Action::Completed, 3);
        assert_eq!((done.get("DrainsStarted"), done.get("DrainsCompleted")), (Some(0.0), Some(1.0)));
        assert_eq!(done.get("DrainDuration"), Some(312.0));
        assert_eq!(at(Action::TimedOut, 9).get("DrainsTimedOut"), Some(1.0));
        assert_eq!(at(Action::NotAnEcsInstance, 0).get("InstancesNotFound"), Some(1.0));
        assert!(at(Action::AlreadyCompleted, 0).is_empty(), "a duplicate records nothing");
        assert!(at(Action::DryRun, 0).is_empty());
    }

    #[test]
    fn config_defaults() {
        let map = HashMap::new();
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        assert_eq!(c.drain_timeout, Duration::from_secs(900));
        assert_eq!(c.timeout_result, LifecycleResult::Continue);
        assert_eq!(c.poll_interval, Duration::from_secs(15));
        assert_eq!(c.poll_window, Duration::from_secs(600));
        assert!(c.hook_names.is_empty());
        assert!(!c.dry_run);
    }

    #[test]
    fn config_names_every_bad_variable() {
        let map = HashMap::from([
            ("TIMEOUT_RESULT", "retry"),
            ("DRAIN_TIMEOUT_SECONDS", "0"),
            ("POLL_INTERVAL_SECONDS", "often"),
            ("CONTINUATION_TOPIC_ARN", "hooks"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            ["DRAIN_TIMEOUT_SECONDS", "TIMEOUT_RESULT", "POLL_INTERVAL_SECONDS", "CONTINUATION_TOPIC_ARN"]
        );
    }

    #[test]
    fn hop_cap_must_reach_the_deadline() {
        let map = HashMap::from([
            ("DRAIN_TIMEOUT_SECONDS", "3600"),
            ("POLL_WINDOW_SECONDS", "600"),
            ("MAX_HOPS", "5"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        assert_eq!(err.problems[0].variable, "MAX_HOPS");
        let map = HashMap::from([
            ("DRAIN_TIMEOUT_SECONDS", "3600"),
            ("POLL_WINDOW_SECONDS", "600"),
            ("MAX_HOPS", "6"),
        ]);
        assert!(Config::from_env(Env::from_map(&map)).is_ok());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for poll in 0..200 {
            let d = jittered(Duration::from_secs(10), "i-12345678", poll);
            assert!(d >= Duration::from_secs(9) && d <= Duration::from_secs(11), "{d:?}");
        }
    }

    #[test]
    fn action_names_match_the_summary() {
        for a in [
            Action::Completed,
            Action::Continued,
            Action::TimedOut,
            Action::AlreadyCompleted,
            Action::NotAnEcsInstance,
            Action::Ignored,
            Action::DryRun,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}
