//! lifecycle-drainer: drains an ECS container instance before its Auto Scaling group terminates it, and
//! (opt-in) holds a launch until ECS can place tasks on the instance. Level-triggered: what to do comes from
//! AWS's state at the time of acting, never from an event.
//!
//! Triggers: a schedule (every `RECONCILE_PERIOD_SECONDS`, reserved concurrency 1): reconcile every open
//! lifecycle action of our hooks in the configured groups ([`reconcile`]). Hints that make it look at one
//! instance at once: Auto Scaling's lifecycle messages (SNS, or EventBridge "EC2 Instance-terminate/launch
//! Lifecycle Action") and "ECS Task State Change" to STOPPED (the last task's stop completes the action
//! without waiting for the schedule). A hint names an instance; nothing else in it is used, so a forged,
//! late or repeated one can only cause a look.
//!
//! A termination: every registration of the instance is set DRAINING and marked ([`shared::drain`]), then
//! the action is completed with CONTINUE once no task is left on any of them, or with `TIMEOUT_RESULT` at
//! the deadline (`DRAIN_TIMEOUT_SECONDS` from when the instance began to wait, always before the hook's
//! `GlobalTimeout`), saying which tasks were left. Heartbeats keep the hook alive until then. A launch:
//! CONTINUE once a registration is ACTIVE with its agent connected, ABANDON after `LAUNCH_TIMEOUT_SECONDS`;
//! a launch into the warm pool goes on at once. Actions are completed by instance id and hook name.
//!
//! AWS APIs: `autoscaling:DescribeAutoScalingGroups`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:DescribeWarmPool`, `autoscaling:DescribeLifecycleHooks`,
//! `autoscaling:DescribeScalingActivities`, `autoscaling:RecordLifecycleActionHeartbeat`,
//! `autoscaling:CompleteLifecycleAction`, `ecs:ListClusters` (only with `CLUSTERS` empty),
//! `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`,
//! `ecs:PutAttributes` and `ecs:DeleteAttributes` (our marker), `ecs:ListTasks`, `ecs:DescribeTasks`,
//! `sns:Publish` (notifications, if configured).
//!
//! Returns an [`Outcome`]: the trigger, and for each lifecycle action looked at what was done (`drained`,
//! `waiting`, `completed`, `timed-out`, `already-completed`, `not-an-ecs-instance`, `ready`, `not-yet`,
//! `not-ready`, `entered-warm-pool`, `dry-run`, `failed`), with its container instances and tasks left.
//!
//! Settings ([`config`]): `CLUSTERS`, `LIFECYCLE_HOOK_NAMES`, `LIFECYCLE_TOPIC_ARN`, `AUTO_SCALING_GROUPS`,
//! `DRAIN_TIMEOUT_SECONDS`, `TIMEOUT_RESULT`, `LAUNCH_TIMEOUT_SECONDS`, `RECONCILE_PERIOD_SECONDS`,
//! `SETTLE_SECONDS`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`. Rooms: [`input`], [`decide`] (pure),
//! [`reconcile`] (the pass), [`aws`], [`memory`], [`report`].

pub mod aws;
pub mod config;
pub mod decide;
pub mod input;
pub mod memory;
pub mod reconcile;
pub mod report;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::ecs::TaskLeft;
use shared::edge::Clock;
use shared::events::InstanceId;
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

pub use crate::config::{Config, LifecycleResult};
use crate::decide::Kind;
use crate::input::{Hint, Input};
use crate::reconcile::Scope;
/// The drainers share their error type; see [`shared::error::DrainError`].
pub use shared::error::DrainError as Error;

/// Tasks listed by name in a report and a notification; the count is always complete.
const TASKS_SHOWN: usize = 20;

#[derive(Debug)]
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub notifier: Notifier,
    pub config: Config,
    /// What this sandbox remembers between invocations: hints, never the truth.
    pub memory: memory::Shared,
    /// Our share of ECS's cluster resource reads ([`shared::pace`]).
    pub reads: shared::pace::Pace,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Deps {
            ecs: aws_sdk_ecs::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            notifier: Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone()),
            config,
            memory: memory::Shared::default(),
            reads: shared::pace::Pace::new(shared::pace::ECS_CLUSTER_READS),
        }
    }
}

/// What made the function look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Trigger {
    Schedule,
    Lifecycle,
    TaskStopped,
    /// An event acknowledged and not acted on.
    Ignored,
}

/// What became of one lifecycle action in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Step {
    /// Its container instances were set DRAINING (or marked, when someone else had): the drain began.
    Drained,
    /// Tasks are still on it (or the drain has not settled): the next look decides.
    Waiting,
    /// No task left: completed with CONTINUE.
    Completed,
    /// Its deadline passed: completed with `TIMEOUT_RESULT`, naming the tasks left.
    TimedOut,
    /// The action was over already (completed elsewhere, expired, or the instance is gone).
    AlreadyCompleted,
    /// The action ended while this function was still waiting on it, not by its answer: the hook expired,
    /// or another tool completed it. Auto Scaling went on with whatever was left on the instance.
    Lost,
    /// Not a container instance of the configured clusters: completed with CONTINUE.
    NotAnEcsInstance,
    /// A launch ECS can place tasks on: completed with CONTINUE.
    Ready,
    /// A launch not ready yet.
    NotYet,
    /// A launch not ready by its deadline: completed with ABANDON; Auto Scaling replaces it.
    NotReady,
    /// A launch into the warm pool: completed with CONTINUE at once.
    EnteredWarmPool,
    /// `DRY_RUN`: what would have been done is in `reason`.
    DryRun,
    /// An AWS call for it failed (after the SDK's retries); the next pass tries again.
    Failed,
}

impl Step {
    /// Whether the action is over after this step.
    pub fn ends_action(self) -> bool {
        matches!(
            self,
            Step::Completed
                | Step::TimedOut
                | Step::AlreadyCompleted
                | Step::Lost
                | Step::NotAnEcsInstance
                | Step::Ready
                | Step::NotReady
                | Step::EnteredWarmPool
        )
    }
}

/// One lifecycle action, as this invocation found and left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionReport {
    pub instance_id: String,
    pub auto_scaling_group: String,
    pub lifecycle_hook: String,
    pub kind: &'static str,
    pub step: Step,
    /// The result sent with `CompleteLifecycleAction`, when this invocation sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<LifecycleResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub container_instances: Vec<String>,
    pub tasks_left: usize,
    /// Up to 20 of the tasks left, when they were listed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskLeft>,
    /// Whether a heartbeat was sent.
    pub heartbeat: bool,
    /// Seconds since the instance began to wait, when the action ended.
    pub waited_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub notification: Notification,
}

impl ActionReport {
    pub fn new(instance_id: &InstanceId, hook: &shared::drain::hooks::Hook, kind: Kind) -> Self {
        ActionReport {
            instance_id: instance_id.to_string(),
            auto_scaling_group: hook.group.clone(),
            lifecycle_hook: hook.name.clone(),
            kind: match kind {
                Kind::Terminating => "terminating",
                Kind::Launching => "launching",
                Kind::IntoWarmPool => "into-warm-pool",
            },
            step: Step::Waiting,
            result: None,
            container_instances: Vec::new(),
            tasks_left: 0,
            tasks: Vec::new(),
            heartbeat: false,
            waited_seconds: 0,
            reason: None,
            warnings: Vec::new(),
            notification: Notification::Skipped,
        }
    }

    pub fn set_tasks(&mut self, tasks: &[TaskLeft]) {
        self.tasks_left = tasks.len();
        self.tasks = tasks.iter().take(TASKS_SHOWN).cloned().collect();
    }

    /// "No active lifecycle action": completed elsewhere, expired, or the instance is gone.
    pub fn over(&mut self, message: String) {
        self.step = Step::AlreadyCompleted;
        self.reason = Some(format!("no active lifecycle action: {message}"));
    }

    /// Over, though we were still waiting on it: not ended by us.
    pub fn lost(&mut self, message: &str) {
        warn!(instance_id = %self.instance_id, hook = %self.lifecycle_hook, message, "lifecycle action ended without our answer");
        self.step = Step::Lost;
        self.reason = Some(format!(
            "the lifecycle action ended while the drainer was still waiting on it, without its answer (the hook expired, or another tool completed it): {message}"
        ));
    }

    pub fn failed(&mut self, error: &Error) {
        warn!(instance_id = %self.instance_id, error = %error, "failed; the next pass tries again");
        self.step = Step::Failed;
        self.reason = Some(error.to_string());
    }

    /// `DRY_RUN`: what `step` would have done.
    pub fn would(&mut self, step: Step, result: LifecycleResult) {
        let what: &str = step.into();
        self.reason = Some(match &self.reason {
            Some(why) => format!("would complete with {} ({what}): {why}", result.as_str()),
            None => format!("would complete with {} ({what})", result.as_str()),
        });
        self.step = Step::DryRun;
    }
}

/// What an invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub trigger: Trigger,
    pub actions: Vec<ActionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Outcome {
    pub fn ignored(reason: String) -> Self {
        Outcome { trigger: Trigger::Ignored, actions: Vec::new(), reason: Some(reason), warnings: Vec::new() }
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Outcome, Error> {
    let input = input::parse(&event.payload).inspect_err(|e| warn!(error = %e, "event rejected"))?;
    let (trigger, scope) = match input {
        Input::Ignore(reason) => return Ok(done(Outcome::ignored(reason))),
        Input::Reconcile => (Trigger::Schedule, Scope::All),
        Input::Lifecycle(hint) => match lifecycle_scope(&deps.config, &hint) {
            Ok(scope) => match widen(&deps.memory, scope, &hint.hook, chrono::Utc::now()) {
                Some(scope) => (Trigger::Lifecycle, scope),
                None => return Ok(done(Outcome::ignored(FOLLOWED.into()))),
            },
            Err(reason) => return Ok(done(Outcome::ignored(reason))),
        },
        Input::TaskStopped(stopped) => match aws::stopped_scope(deps, &stopped).await? {
            Ok(scope) => (Trigger::TaskStopped, scope),
            Err(reason) => return Ok(done(Outcome::ignored(reason))),
        },
    };
    let fx = aws::Aws { deps };
    let pass = reconcile::run(&fx, &deps.config, &deps.memory, &scope, Clock::start()).await?;
    let mut outcome = Outcome { trigger, actions: pass.actions, reason: None, warnings: pass.warnings };
    if outcome.actions.is_empty() && trigger != Trigger::Schedule {
        outcome.reason = Some("no open lifecycle action of our hooks waits for this instance".into());
    }
    for action in &mut outcome.actions {
        if let Some(message) = report::ended(action) {
            action.notification = deps.notifier.send(&message).await;
        }
    }
    Ok(done(outcome))
}

/// A lifecycle message's instance, if its hook and group are ours (decided from the configuration alone,
/// before any AWS call); why not, otherwise.
fn lifecycle_scope(config: &Config, hint: &Hint) -> Result<Scope, String> {
    if !config.hooks.answers(&hint.hook) {
        return Err(format!("hook {} is not in LIFECYCLE_HOOK_NAMES", hint.hook));
    }
    if !config.serves(&hint.group) {
        return Err(format!("group {} is not in AUTO_SCALING_GROUPS", hint.group));
    }
    Ok(Scope::Instance(hint.instance_id.clone()))
}

/// A lifecycle message for an action this sandbox already follows needs no look.
pub const FOLLOWED: &str = "the drainer follows this lifecycle action already; the reconcile goes on with it";

/// Auto Scaling sends one message per instance, and a scale-in or a refresh batch sends many at once: the
/// first of a burst looks at every group (one read of them all, every new drain in one batch), those that
/// follow find their instance followed already, and a message for an action not seen yet, within
/// [`FULL_PASS_SPACING`] of a full pass, looks at its instance alone. `None`: followed, no look.
fn widen(
    memory: &memory::Shared,
    scope: Scope,
    hook: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Scope> {
    let Scope::Instance(id) = &scope else { return Some(scope) };
    let (followed, last) =
        memory.with(|m| (m.following(id.as_str()).iter().any(|(k, _)| k.1 == hook), m.last_full_pass));
    if followed {
        return None;
    }
    let recent = last.is_some_and(|at| now - at < FULL_PASS_SPACING);
    Some(if recent { scope } else { Scope::All })
}

/// How soon after a full pass a message looks at its instance alone.
const FULL_PASS_SPACING: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Logs and records an outcome.
fn done(outcome: Outcome) -> Outcome {
    for a in &outcome.actions {
        info!(
            trigger = <&str>::from(outcome.trigger),
            instance_id = %a.instance_id,
            auto_scaling_group = %a.auto_scaling_group,
            lifecycle_hook = %a.lifecycle_hook,
            step = <&str>::from(a.step),
            tasks_left = a.tasks_left,
            heartbeat = a.heartbeat,
            reason = a.reason.as_deref(),
            "handled"
        );
    }
    if outcome.actions.is_empty() {
        info!(trigger = <&str>::from(outcome.trigger), reason = outcome.reason.as_deref(), "handled");
    }
    shared::metrics::emit("lifecycle-drainer", &outcome);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_match_the_summary() {
        for s in [
            Step::Drained,
            Step::Waiting,
            Step::Completed,
            Step::TimedOut,
            Step::AlreadyCompleted,
            Step::Lost,
            Step::NotAnEcsInstance,
            Step::Ready,
            Step::NotYet,
            Step::NotReady,
            Step::EnteredWarmPool,
            Step::DryRun,
            Step::Failed,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), <&str>::from(s));
        }
    }

    #[test]
    fn a_message_for_a_hook_or_group_not_ours_is_ignored_without_a_call() {
        let map = std::collections::HashMap::from([
            ("LIFECYCLE_HOOK_NAMES", "drain"),
            ("AUTO_SCALING_GROUPS", "web"),
        ]);
        let config = Config::from_env(shared::config::Env::from_map(&map)).unwrap();
        let id = InstanceId::parse("x", "i-12345678").unwrap();
        let hint = |group: &str, hook: &str| Hint {
            instance_id: id.clone(),
            group: group.into(),
            hook: hook.into(),
        };
        assert_eq!(lifecycle_scope(&config, &hint("web", "drain")), Ok(Scope::Instance(id.clone())));
        assert!(
            lifecycle_scope(&config, &hint("web", "other")).unwrap_err().contains("LIFECYCLE_HOOK_NAMES")
        );
        assert!(
            lifecycle_scope(&config, &hint("payments", "drain")).unwrap_err().contains("AUTO_SCALING_GROUPS")
        );
    }

    #[test]
    fn the_first_message_of_a_burst_looks_at_every_group_and_a_followed_one_at_nothing() {
        let memory = memory::Shared::default();
        let id = InstanceId::parse("x", "i-12345678").unwrap();
        let now = chrono::Utc::now();
        let one = Scope::Instance(id.clone());
        assert_eq!(widen(&memory, one.clone(), "drain", now), Some(Scope::All), "no full pass yet");
        memory.with(|m| m.last_full_pass = Some(now - chrono::TimeDelta::seconds(3)));
        assert_eq!(widen(&memory, one.clone(), "drain", now), Some(one.clone()), "a full pass just ran");
        let later = now + chrono::TimeDelta::seconds(30);
        assert_eq!(widen(&memory, one.clone(), "drain", later), Some(Scope::All));
        let hook = shared::drain::hooks::Hook {
            group: "web".into(),
            name: "drain".into(),
            transition: shared::drain::hooks::Transition::Terminating,
            heartbeat_timeout: 300,
            global_timeout: 30_000,
            default_result: "CONTINUE".into(),
            target: None,
        };
        let key = ("web".to_owned(), "drain".to_owned(), id.to_string(), "Terminating:Wait");
        memory.with(|m| m.open.insert(key, hook));
        assert_eq!(widen(&memory, one.clone(), "drain", later), None, "followed already");
        assert_eq!(widen(&memory, one, "launch", later), Some(Scope::All), "another hook's action is new");
    }
}
