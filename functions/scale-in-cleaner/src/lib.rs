//! scale-in-cleaner: removes idle ECS container instances while enough spare CPU and memory stay.
//!
//! Trigger: an EventBridge schedule (`rate(30 minutes)` by default), or a manual invoke with `{}` (or
//! `{"dry-run": true}` to see the plan without acting). Reserved concurrency 1: two runs must never plan
//! at once.
//!
//! Each run, per cluster: read the inventory ([`inventory`]), plan ([`plan::plan`], a pure function),
//! then act ([`act`]) in this order: instances this function drained earlier and that are needed again go
//! back to ACTIVE; its drain marker leaves instances someone else set back to ACTIVE; new removals are
//! marked and set DRAINING; drained instances that run nothing (daemon tasks aside, re-checked task by
//! task) are terminated through their Auto Scaling group with the desired capacity decremented, so the
//! group's lifecycle hooks still run. Empty instances are drained before they are terminated too, so a task
//! placed on one meanwhile is moved, not killed.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:DescribeClusters`,
//! `ecs:DescribeCapacityProviders`, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`,
//! `ecs:ListServices`, `ecs:ListTasks`, `ecs:DescribeTasks`, `ecs:PutAttributes`, `ecs:DeleteAttributes`,
//! `ecs:UpdateContainerInstancesState`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:DescribeAutoScalingGroups`, `autoscaling:TerminateInstanceInAutoScalingGroup`,
//! `sns:Publish` (only with `NOTIFICATION_TOPIC_ARN`, one message per run that changed something).
//!
//! Returns an [`Outcome`]: per cluster, the capacity before and after and every instance considered with
//! its decision, the reason and how far it got. An [`Error`] means some cluster could not be read or some
//! change failed; the run is idempotent, so the next one (or the asynchronous retry) picks up where this
//! one stopped.
//!
//! Settings ([`config`]): `CLUSTERS`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`,
//! `MAX_REMOVALS_PER_RUN`, `MIN_INSTANCE_AGE_MINUTES`, `AUTO_SCALING_GROUPS`, `NOTIFICATION_TOPIC_ARN`,
//! `DRY_RUN`. Rooms: [`input`], [`plan`] (pure), [`inventory`] and [`act`] (AWS), [`report`].

pub mod act;
pub mod config;
pub mod input;
pub mod inventory;
pub mod plan;
pub mod report;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::AwsError;
use shared::edge::{Budget, Internal};
use shared::events::InvalidEvent;
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

pub use crate::config::Config;
pub use crate::input::Request;
use crate::inventory::Read;
use crate::plan::{Capacity, Entry, Plan, Progress};

/// No cluster is read with less than this left: reading a large one takes a few seconds.
const CLUSTER_MARGIN: Duration = Duration::from_secs(20);

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
        Deps {
            ecs: aws_sdk_ecs::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            notifier: Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone()),
            config,
        }
    }
}

/// One cluster's part of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterOutcome {
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Capacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Capacity>,
    pub instances: Vec<Entry>,
    /// Why the cluster was not (fully) handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ClusterOutcome {
    pub fn entry(&self, ec2_instance_id: &str) -> Option<&Entry> {
        self.instances.iter().find(|e| e.ec2_instance_id == ec2_instance_id)
    }
}

/// Instances per decision carried out (planned, in a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    pub terminated: usize,
    pub drained: usize,
    pub reaped: usize,
    pub reactivated: usize,
    pub waiting: usize,
}

/// The summary returned to the caller and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub dry_run: bool,
    pub totals: Totals,
    pub clusters: Vec<ClusterOutcome>,
    /// Configured clusters that do not exist.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_clusters: Vec<String>,
    /// Lambda's deadline came near: the clusters or changes left were not started.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
    pub notification: Notification,
}

impl Outcome {
    pub fn cluster(&self, name: &str) -> Option<&ClusterOutcome> {
        self.clusters.iter().find(|c| c.cluster == name)
    }
}

#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum Error {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    #[error(transparent)]
    #[strum(serialize = "AwsApiError")]
    Aws(#[from] AwsError),
    /// The run went through every cluster, but some could not be read or some change failed.
    #[error("scale-in run incomplete: {}", failures.join("; "))]
    Incomplete { failures: Vec<String>, outcome: Box<Outcome> },
    #[error(transparent)]
    Internal(#[from] Internal),
}

shared::error_type!(Error);

impl From<shared::ecs::Failure> for Error {
    fn from(f: shared::ecs::Failure) -> Self {
        match f {
            shared::ecs::Failure::Aws(e) => Error::Aws(e),
            shared::ecs::Failure::Internal(e) => Error::Internal(e),
        }
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Outcome, Error> {
    let request = input::parse(&event.payload)?;
    let dry_run = request.dry_run || deps.config.dry_run;
    let result = run(deps, dry_run, Utc::now(), Budget::from_context(&event.context)).await;
    match &result {
        Ok(outcome) => shared::metrics::emit("scale-in-cleaner", outcome),
        Err(Error::Incomplete { outcome, .. }) => shared::metrics::emit("scale-in-cleaner", outcome.as_ref()),
        Err(_) => {}
    }
    result
}

/// One run over every configured cluster; `now` dates instance ages and drain markers.
pub async fn run(deps: &Deps, dry_run: bool, now: DateTime<Utc>, budget: Budget) -> Result<Outcome, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    let mut outcome = Outcome {
        dry_run,
        totals: Totals::default(),
        clusters: Vec::new(),
        missing_clusters: Vec::new(),
        stopped_early: false,
        notification: Notification::Skipped,
    };
    let mut failures = Vec::new();
    for cluster in &clusters {
        if !budget.has_more_than(CLUSTER_MARGIN) {
            warn!(cluster = %cluster, "Lambda deadline near: cluster not started");
            outcome.stopped_early = true;
            break;
        }
        let inventory = match inventory::read(&deps.ecs, &deps.autoscaling, cluster).await {
            Ok(Read::Found(inv)) => inv,
            Ok(Read::NoSuchCluster) => {
                warn!(cluster = %cluster, "configured cluster does not exist");
                outcome.missing_clusters.push(cluster.clone());
                continue;
            }
            Err(e) => {
                warn!(cluster = %cluster, error = %e, "cannot read the cluster");
                failures.push(format!("{cluster}: {e}"));
                let error = Some(e.to_string());
                outcome.clusters.push(ClusterOutcome {
                    cluster: cluster.clone(),
                    before: None,
                    after: None,
                    instances: Vec::new(),
                    error,
                });
                continue;
            }
        };
        let Plan { before, after, mut entries } = plan::plan(&inventory, &deps.config.settings, now);
        let mut error = None;
        if !dry_run {
            let act = act::Act { deps, cluster, daemon_groups: &inventory.daemon_groups, budget, now };
            match act.all(&mut entries).await {
                Ok(stopped) => outcome.stopped_early |= stopped,
                Err(e) => {
                    failures.push(format!("{cluster}: {e}"));
                    error = Some(e.to_string());
                }
            }
            for e in &entries {
                if let Progress::Failed(why) = &e.progress {
                    failures.push(format!("{cluster}: {}: {why}", e.ec2_instance_id));
                }
            }
        }
        for e in &entries {
            info!(cluster = %cluster, instance_id = %e.ec2_instance_id, group = e.group.as_deref().unwrap_or(""),
                decision = <&str>::from(e.decision), reason = %e.reason, progress = ?e.progress, dry_run, "instance considered");
        }
        report::add_totals(&mut outcome.totals, &entries, dry_run);
        let before = Some(before);
        outcome.clusters.push(ClusterOutcome {
            cluster: cluster.clone(),
            before,
            after: Some(after),
            instances: entries,
            error,
        });
    }
    outcome.notification = match report::changes(&outcome) {
        Some(message) => deps.notifier.send(&message).await,
        None => deps.notifier.silent(),
    };
    info!(outcome = %serde_json::to_string(&outcome).unwrap_or_default(), "scale-in run finished");
    if failures.is_empty() {
        Ok(outcome)
    } else {
        Err(Error::Incomplete { failures, outcome: Box::new(outcome) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::edge::ErrorType;

    #[test]
    fn error_types_are_stable() {
        assert_eq!(Error::from(InvalidEvent::new("dry-run", "x")).error_type(), "InvalidEvent");
        let aws = AwsError { operation: "ListClusters", code: None, message: "x".into() };
        assert_eq!(Error::from(aws).error_type(), "AwsApiError");
        assert_eq!(Error::from(Internal::new("testing", "x")).error_type(), "Internal");
    }
}
