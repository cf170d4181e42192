//! lifecycle-drainer: drains an ECS container instance before its Auto Scaling group terminates it, and
//! (opt-in) holds a launch until ECS can place tasks on the instance.
//!
//! Triggers: Auto Scaling lifecycle hooks, delivered by their SNS topic (the SNS envelope's `Message` is the
//! lifecycle JSON) or by EventBridge ("EC2 Instance-terminate Lifecycle Action", "EC2 Instance-launch
//! Lifecycle Action"); optionally EventBridge "ECS Task State Change" (a task STOPPED). Test notifications,
//! other messages and hooks not in `LIFECYCLE_HOOK_NAMES` are acknowledged and ignored.
//!
//! Termination ([`drain`]), also of an instance going back to the warm pool: find the container instance,
//! mark it ours and set it DRAINING, poll until no task is left (every task not STOPPED counts), then
//! `CompleteLifecycleAction(CONTINUE)`. A drain longer than one invocation's poll window continues in a
//! fresh invocation: the lifecycle message plus our state is published back to the topic. Heartbeats keep
//! the hook alive until our own deadline (`DRAIN_TIMEOUT_SECONDS`, bounded by the hook's lifetime), when
//! the action is completed with `TIMEOUT_RESULT` and the tasks still there are logged and notified. With
//! the task state change rule ([`stopped`]), the last task's stop completes the action at once.
//!
//! Launch ([`launch`]): `CONTINUE` once the instance's container instance is ACTIVE with its agent
//! connected (one we drained on its way into the warm pool is set ACTIVE first), `ABANDON` after
//! `LAUNCH_TIMEOUT_SECONDS`; a launch into the warm pool is completed at once.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:ListContainerInstances`,
//! `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes` and
//! `ecs:DeleteAttributes` (our drain marker), `ecs:ListTasks`, `ecs:DescribeTasks`,
//! `autoscaling:DescribeLifecycleHooks`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:RecordLifecycleActionHeartbeat`, `autoscaling:CompleteLifecycleAction`, `sns:Publish`
//! (continuations, and notifications if configured).
//!
//! Returns an [`Outcome`]: what was done (`completed`, `continued`, `timed-out`, `already-completed`,
//! `not-an-ecs-instance`, `ready`, `not-ready`, `entered-warm-pool`, `ignored`, `dry-run`), the instance,
//! group, hook, tasks left, hop and elapsed time.
//!
//! Settings ([`config`]): `CLUSTERS`, `LIFECYCLE_HOOK_NAMES`, `AUTO_SCALING_GROUPS`, `DRAIN_TIMEOUT_SECONDS`,
//! `TIMEOUT_RESULT`, `POLL_INTERVAL_SECONDS`, `POLL_WINDOW_SECONDS`, `MAX_HOPS`, `LAUNCH_TIMEOUT_SECONDS`,
//! `CONTINUATION_TOPIC_ARN`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`. Rooms: [`input`], [`decide`] (pure),
//! [`drain`] (the loop), [`launch`], [`stopped`], [`aws`], [`report`].

pub mod aws;
pub mod config;
pub mod decide;
pub mod drain;
pub mod input;
pub mod launch;
pub mod report;
pub mod stopped;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::ecs::TaskLeft;
use shared::edge::{Budget, Clock};
use shared::events::LifecycleMessage;
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

pub use crate::config::{Config, LifecycleResult};
use crate::input::Input;
/// The drainers share their error type; see [`shared::error::DrainError`].
pub use shared::error::DrainError as Error;

/// Tasks listed by name in the summary and the notification; the count is always complete.
const TASKS_SHOWN: usize = 20;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
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
    /// A launch: its container instance is ACTIVE with its agent connected; completed with CONTINUE.
    Ready,
    /// A launch not ready within `LAUNCH_TIMEOUT_SECONDS`: completed with ABANDON, Auto Scaling replaces it.
    NotReady,
    /// A launch into the warm pool: completed with CONTINUE at once (it is checked when it leaves the pool).
    EnteredWarmPool,
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
    /// What the operator should know: a `DRAIN_TIMEOUT_SECONDS` the hook's lifetime cuts short, a hook that
    /// could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub notification: Notification,
}

impl Outcome {
    pub fn ignored(reason: String) -> Self {
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
            warnings: Vec::new(),
            notification: Notification::Skipped,
        }
    }

    fn for_message(m: &LifecycleMessage, hop: u32) -> Self {
        Outcome {
            instance_id: Some(m.ec2_instance_id.to_string()),
            auto_scaling_group: Some(m.auto_scaling_group_name.clone()),
            lifecycle_hook: Some(m.lifecycle_hook_name.clone()),
            hop,
            reason: None,
            ..Outcome::ignored(String::new())
        }
    }

    pub(crate) fn set_tasks(&mut self, tasks: &[TaskLeft]) {
        self.tasks_left = tasks.len();
        self.tasks = tasks.iter().take(TASKS_SHOWN).cloned().collect();
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Outcome, Error> {
    let input = input::parse(&event.payload).inspect_err(|e| warn!(error = %e, "event rejected"))?;
    let mut outcome = match input {
        Input::Ignore(reason) => Outcome::ignored(reason),
        Input::TaskStopped(stopped) => stopped::run(deps, &stopped).await?,
        Input::Work(work) => {
            let hook = aws::Hook { deps, message: &work.message };
            drain::run(&hook, &deps.config, &work, Budget::from_context(&event.context), Clock::start())
                .await?
        }
    };
    if let Some(message) = report::ended(&outcome) {
        outcome.notification = deps.notifier.send(&message).await;
    }
    info!(
        action = <&str>::from(outcome.action),
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
    shared::metrics::emit("lifecycle-drainer", &outcome);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Action::Ready,
            Action::NotReady,
            Action::EnteredWarmPool,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), <&str>::from(a));
        }
    }
}
