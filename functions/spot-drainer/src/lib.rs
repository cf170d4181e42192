//! spot-drainer: sets an ECS container instance DRAINING before its EC2 instance goes away.
//!
//! Triggers (EventBridge):
//! - `aws.ec2` "EC2 Spot Instance Interruption Warning" (drained by default) and "EC2 Instance Rebalance
//!   Recommendation" (only when `DRAIN_ON` includes `rebalance`; with `REBALANCE_MODE=careful` only while
//!   the cluster keeps its spare capacity without the instance);
//! - `aws.health` "AWS Health Event", EC2 `scheduledChange` (when `DRAIN_ON` includes `scheduled`): the
//!   instances named are drained and, with `REPLACE_ON_SCHEDULED`, replaced by their Auto Scaling group
//!   before the date, once no task would be stopped un-drained; every other Health event is acknowledged;
//! - `aws.ec2` "EC2 Instance State-change Notification", state `running`: an instance drained for a stop,
//!   hibernation or scheduled stop that runs again is set back to ACTIVE;
//! - a schedule (the sweep): careful rebalance drains no interruption warning followed within
//!   `REBALANCE_UNDO_MINUTES` are undone, waiting replacements asked for again.
//!
//! Only a drain of ours is ever undone: it carries a marker attribute with its reason and time. The rules
//! are account-wide, so most instances are not ECS container instances of ours; that is a normal outcome,
//! not an error.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:ListContainerInstances`,
//! `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes` and
//! `ecs:DeleteAttributes` (the marker), `autoscaling:DescribeAutoScalingInstances` (before undoing a drain
//! or replacing an instance), `autoscaling:DescribeLifecycleHooks` and
//! `autoscaling:TerminateInstanceInAutoScalingGroup` (replacement, only with `REPLACE_ON_SCHEDULED`),
//! `sns:Publish` (only with `NOTIFICATION_TOPIC_ARN`). With one configured cluster a drain takes three
//! calls, four with the marker.
//!
//! Returns a [`Reply`]: one [`Outcome`] for a warning, a recommendation or a state change, a list of them
//! for a Health event or a sweep; each says where the instance was found, its status before, the tasks
//! still on it and what was done. Errors ([`Error`]) are reserved for events we cannot handle and for AWS
//! failures that outlasted the SDK's retries; EventBridge's asynchronous invoke then retries the event.
//!
//! Settings (environment, [`config`]): `CLUSTERS`, `DRAIN_ON`, `REPLACE_ON_SCHEDULED`, `REBALANCE_MODE`,
//! `REBALANCE_UNDO_MINUTES`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`, `AUTO_SCALING_GROUPS`,
//! `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.
//!
//! Rooms: [`input`] (the event, typed), [`decide`] (pure), [`aws`] (the calls), [`report`] (message and
//! metrics).

pub mod aws;
pub mod config;
pub mod decide;
pub mod flow;
pub mod input;
pub mod report;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::ecs::{Found, InstanceStatus};

use crate::aws::Replacement;
use crate::input::{Input, MaintenanceKind};
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

pub use crate::config::Config;
pub use crate::input::{SpotEvent, Trigger};
/// The drainers share their error type; see [`shared::error::DrainError`].
pub use shared::error::DrainError as Error;

/// What the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub notifier: Notifier,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let notifier = Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone());
        Deps {
            ecs: aws_sdk_ecs::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            notifier,
            config,
        }
    }
}

/// What the handler did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Action {
    /// Set DRAINING now.
    Drained,
    /// Was DRAINING already (a duplicate event, or someone else drained it): nothing to do.
    AlreadyDraining,
    /// No container instance for this EC2 instance in the clusters searched.
    NotAnEcsInstance,
    /// An event kind `DRAIN_ON` does not include.
    Ignored,
    /// `DRY_RUN=true`: would have set DRAINING.
    DryRun,
    /// Found, but in a status that cannot be drained (REGISTERING, DEREGISTERING, REGISTRATION_FAILED).
    NotDrainable,
    /// Back from a stop or hibernation we drained it for: set ACTIVE again.
    Reactivated,
}

/// The summary returned to the caller and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub instance_id: String,
    pub trigger: Trigger,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_before: Option<InstanceStatus>,
    /// Running plus pending tasks when the event arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_remaining: Option<i32>,
    /// Why nothing was done, for `ignored` and `not-drainable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Configured clusters that do not exist.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_clusters: Vec<String>,
    /// Scheduled maintenance: what AWS Health announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceKind>,
    /// Scheduled maintenance with `REPLACE_ON_SCHEDULED`: what became of the replacement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    pub notification: Notification,
}

impl Outcome {
    pub fn new(spot: &SpotEvent, notification: Notification) -> Self {
        Outcome {
            instance_id: spot.instance_id.to_string(),
            trigger: spot.trigger,
            action: Action::Ignored,
            cluster: None,
            container_instance_arn: None,
            status_before: None,
            tasks_remaining: None,
            reason: None,
            missing_clusters: Vec::new(),
            maintenance: None,
            replacement: None,
            notification,
        }
    }

    pub fn found(&mut self, found: &Found) {
        self.cluster = Some(found.cluster.clone());
        self.container_instance_arn = Some(found.container_instance_arn.clone());
        self.status_before = Some(found.status);
        self.tasks_remaining = Some(found.running_tasks + found.pending_tasks);
    }
}

/// What an invocation returns: one instance's outcome, or several (scheduled maintenance, the sweep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    One(Box<Outcome>),
    Many {
        trigger: Trigger,
        instances: Vec<Outcome>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Reply {
    /// The outcomes it holds.
    pub fn outcomes(&self) -> &[Outcome] {
        match self {
            Reply::One(o) => std::slice::from_ref(o),
            Reply::Many { instances, .. } => instances,
        }
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Reply, Error> {
    let input = input::parse(&event.payload).inspect_err(|e| warn!(error = %e, "event rejected"))?;
    let reply = match input {
        Input::Event(spot) => Reply::One(Box::new(flow::event(deps, &spot).await?)),
        Input::Maintenance(m) => flow::maintenance(deps, &m).await?,
        Input::Sweep => flow::sweep(deps).await?,
        Input::Ignore(reason) => {
            Reply::Many { trigger: Trigger::Scheduled, instances: Vec::new(), reason: Some(reason) }
        }
    };
    for outcome in reply.outcomes() {
        info!(
            instance_id = %outcome.instance_id,
            trigger = outcome.trigger.name(),
            action = <&str>::from(outcome.action),
            cluster = outcome.cluster.as_deref(),
            container_instance_arn = outcome.container_instance_arn.as_deref(),
            status_before = outcome.status_before.map(<&str>::from),
            tasks_remaining = outcome.tasks_remaining,
            reason = outcome.reason.as_deref(),
            "handled"
        );
    }
    shared::metrics::emit("spot-drainer", &reply);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_match_the_summary() {
        for a in [
            Action::Drained,
            Action::AlreadyDraining,
            Action::NotAnEcsInstance,
            Action::Ignored,
            Action::DryRun,
            Action::NotDrainable,
            Action::Reactivated,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), <&str>::from(a));
        }
    }
}
