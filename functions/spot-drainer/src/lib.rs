//! spot-drainer: sets an ECS container instance DRAINING before its EC2 instance goes away, and undoes its
//! own drains once EC2 shows their reason gone.
//!
//! Triggers (EventBridge):
//! - `aws.ec2` "EC2 Spot Instance Interruption Warning" (drained by default) and "EC2 Instance Rebalance
//!   Recommendation" (only when `DRAIN_ON` includes `rebalance`; with `REBALANCE_MODE=careful` only while
//!   the cluster keeps its spare capacity without the instance): every registration of the instance is
//!   drained at once, within the warning's two minutes;
//! - `aws.health` "AWS Health Event", EC2 `scheduledChange` (when `DRAIN_ON` includes `scheduled`): each
//!   instance named (by id or ARN) that EC2 confirms (an open scheduled event) is drained and, with
//!   `REPLACE_ON_SCHEDULED`, replaced by its group before the date, once no task would be stopped
//!   un-drained; `statusCode` `closed` never drains, and has our drains of its instances looked at;
//! - `aws.ec2` "EC2 Instance State-change Notification", state `running`: our drain of that instance is
//!   looked at;
//! - a schedule (the reconcile): every drain of ours is looked at against what EC2 says now (undone for a
//!   stop or hibernation once the instance runs again, launched after our drain; for maintenance EC2
//!   cancelled or completed while it runs; for a careful rebalance no warning followed), replacements are
//!   asked for again, instances EC2 schedules maintenance for are drained, and markers that stand for no
//!   drain are cleared.
//!
//! Only a drain of ours is ever undone (a held marker of ours, [`shared::drain`]), never for an instance its
//! group is removing, and only when EC2 confirms what the event claims: a forged or replayed event can only
//! cause a look. The rules are account-wide, so most instances are not ECS container instances of ours;
//! that is a normal outcome, not an error.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:ListContainerInstances`,
//! `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes` and
//! `ecs:DeleteAttributes` (the marker), `ecs:ListTasks` and `ecs:DescribeTasks` (before a replacement),
//! `ec2:DescribeInstances` and `ec2:DescribeInstanceStatus`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:DescribeLifecycleHooks` and `autoscaling:TerminateInstanceInAutoScalingGroup`
//! (replacement, only with `REPLACE_ON_SCHEDULED`), `sns:Publish` (only with `NOTIFICATION_TOPIC_ARN`).
//!
//! Returns a [`Reply`]: one [`Outcome`] for a warning, a recommendation or a state change, a list of them
//! for a Health event or the reconcile; each says where the instance was found, its status before, the
//! tasks on it and what was done. Errors ([`Error`]) are reserved for events we cannot handle and for AWS
//! failures that outlasted the SDK's retries; EventBridge's asynchronous invoke then retries the event.
//!
//! Settings (environment, [`config`]): `CLUSTERS`, `DRAIN_ON`, `REPLACE_ON_SCHEDULED`, `REBALANCE_MODE`,
//! `REBALANCE_UNDO_MINUTES`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`, `AUTO_SCALING_GROUPS`,
//! `LIFECYCLE_HOOK_NAMES`, `LIFECYCLE_TOPIC_ARN`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.
//!
//! Rooms: [`input`] (the event, typed), [`decide`] (pure), [`flow`] (the events that drain), [`reconcile`]
//! (the schedule), [`aws`] (the calls), [`report`] (message and metrics).

pub mod aws;
pub mod config;
pub mod decide;
pub mod flow;
pub mod input;
pub mod reconcile;
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
    pub ec2: aws_sdk_ec2::Client,
    pub notifier: Notifier,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let notifier = Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone());
        Deps {
            ecs: aws_sdk_ecs::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
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
    /// The reason we drained it for is gone (it runs again after a stop, its maintenance was cancelled, no
    /// warning followed a rebalance recommendation): set ACTIVE again.
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
    /// The instance's other registrations in the clusters (an agent that registered again leaves its
    /// earlier one behind); each is drained with the first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_registrations: Vec<String>,
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
            other_registrations: Vec::new(),
            status_before: None,
            tasks_remaining: None,
            reason: None,
            missing_clusters: Vec::new(),
            maintenance: None,
            replacement: None,
            notification,
        }
    }

    /// The instance as found: `live`, the registration that counts, among all of them.
    pub fn found(&mut self, live: &Found, all: &[Found]) {
        self.cluster = Some(live.cluster.clone());
        self.container_instance_arn = Some(live.container_instance_arn.clone());
        self.other_registrations = all
            .iter()
            .filter(|f| f.container_instance_arn != live.container_instance_arn)
            .map(|f| f.container_instance_arn.clone())
            .collect();
        self.status_before = Some(live.status);
        self.tasks_remaining = Some(all.iter().map(|f| f.running_tasks + f.pending_tasks).sum());
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
        Input::Sweep => reconcile::sweep(deps).await?,
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
