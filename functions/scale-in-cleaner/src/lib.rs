//! scale-in-cleaner: removes idle and under-used ECS container instances while enough spare capacity
//! stays, moving only tasks that can be placed elsewhere.
//!
//! Trigger: an EventBridge schedule (`rate(30 minutes)` by default), or a manual invoke with `{}` (or
//! `{"dry-run": true}` to see the plan without acting). Reserved concurrency 1: two runs must never plan
//! at once.
//!
//! Each run, per cluster: read the inventory ([`inventory`]), plan ([`plan::plan`], a pure function; the
//! tasks of the instances it examines are read and it plans again), then act ([`act`]) in this order:
//! instances this function drained earlier and that are needed again, or whose drain stalled, go back to
//! ACTIVE; its drain marker leaves instances someone else set back to ACTIVE; new removals are described
//! again (a change since the plan cancels them), marked and set DRAINING; drained instances that run
//! nothing (daemon tasks aside, checked right before) are terminated through their Auto Scaling group
//! with the desired capacity decremented, so the group's lifecycle hooks still run. Empty instances are
//! drained before they are terminated too, so a task placed on one meanwhile is moved, not killed.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:DescribeClusters`,
//! `ecs:DescribeCapacityProviders`, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`,
//! `ecs:ListServices`, `ecs:DescribeServices`, `ecs:DescribeTaskDefinition`, `ecs:ListTasks`,
//! `ecs:DescribeTasks`, `ecs:GetTaskProtection`, `ecs:PutAttributes`, `ecs:DeleteAttributes`,
//! `ecs:UpdateContainerInstancesState`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:DescribeAutoScalingGroups`, `autoscaling:TerminateInstanceInAutoScalingGroup`,
//! `sns:Publish` (only with `NOTIFICATION_TOPIC_ARN`, one message per run that changed something).
//!
//! Returns an [`Outcome`]: per cluster, the capacity before and after and every instance considered with
//! its decision, the reason (a stable name and a sentence) and how far it got. An [`Error`] means some
//! cluster could not be read or some change failed; the run is idempotent, so the next one (or the
//! asynchronous retry) picks up where this one stopped.
//!
//! Settings ([`config`]): `CLUSTERS`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`,
//! `MAX_REMOVALS_PER_RUN`, `MIN_INSTANCE_AGE_MINUTES`, `AUTO_SCALING_GROUPS`, `SCALE_IN_COOLDOWN_MINUTES`,
//! `SCALE_IN_WINDOWS`, `SCALE_IN_BUDGET_PERCENT`, `STALLED_DRAIN_MINUTES`, `NOTIFICATION_TOPIC_ARN`,
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
use serde_json::Value;
use shared::AwsError;
use shared::edge::{Budget, Internal};
use shared::events::InvalidEvent;
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

pub use crate::config::Config;
pub use crate::input::Request;
use crate::inventory::Read;
use crate::inventory::definitions::Definitions;
use crate::plan::Progress;
pub use crate::report::{ClusterOutcome, Outcome, Totals};

/// No cluster is read with less than this left: reading a large one takes a few seconds.
const CLUSTER_MARGIN: Duration = Duration::from_secs(20);
/// At most this many plans of one cluster per run, each after reading the tasks the previous one wanted.
/// The look-ahead doubles each round, so a few rounds reach every candidate of the largest cluster;
/// Lambda's deadline stops them sooner if reading is slow.
const PLAN_ROUNDS: usize = 24;

/// What the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub notifier: Notifier,
    pub config: Config,
    /// Task definitions read by earlier runs in this sandbox: a revision never changes.
    pub definitions: Definitions,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        Deps {
            ecs: aws_sdk_ecs::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            notifier: Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone()),
            config,
            definitions: Definitions::default(),
        }
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

/// One run over every configured cluster; `now` dates instance ages, windows and drain markers.
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
        let mut done = ClusterOutcome {
            cluster: cluster.clone(),
            before: None,
            after: None,
            instances: Vec::new(),
            error: None,
        };
        match one_cluster(deps, cluster, dry_run, now, budget, &mut done).await {
            Ok(Some(stopped)) => outcome.stopped_early |= stopped,
            Ok(None) => {
                warn!(cluster = %cluster, "configured cluster does not exist");
                outcome.missing_clusters.push(cluster.clone());
                continue;
            }
            Err(e) => {
                warn!(cluster = %cluster, error = %e, "cluster not fully handled");
                failures.push(format!("{cluster}: {e}"));
                done.error = Some(e.to_string());
            }
        }
        for e in &done.instances {
            if let Progress::Failed(why) = &e.progress {
                failures.push(format!("{cluster}: {}: {why}", e.ec2_instance_id));
            }
            info!(cluster = %cluster, instance_id = %e.ec2_instance_id, group = e.group.as_deref().unwrap_or(""),
                decision = <&str>::from(e.decision), reason = <&str>::from(e.reason), detail = %e.detail,
                progress = ?e.progress, dry_run, "instance considered");
        }
        report::add_totals(&mut outcome.totals, &done.instances, dry_run);
        outcome.clusters.push(done);
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

/// Reads, plans and (unless a dry run) acts on one cluster, filling `done`. `Ok(None)`: the cluster does
/// not exist; `Ok(Some(true))`: Lambda's deadline stopped the changes before the end.
async fn one_cluster(
    deps: &Deps,
    cluster: &str,
    dry_run: bool,
    now: DateTime<Utc>,
    budget: Budget,
    done: &mut ClusterOutcome,
) -> Result<Option<bool>, Error> {
    let mut read = match inventory::read(&deps.ecs, &deps.autoscaling, cluster, &deps.definitions).await? {
        Read::Found(read) => read,
        Read::NoSuchCluster => return Ok(None),
    };
    let settings = &deps.config.settings;
    let mut plan = plan::plan(&read.inventory, settings, now);
    // Look ahead as far as has been read: when every candidate read so far was kept, the next round reads
    // twice as many, so that blocked ones never starve the rest.
    let mut examined = 0;
    for _ in 1..PLAN_ROUNDS {
        if plan.wanted.is_empty() || !budget.has_more_than(CLUSTER_MARGIN) {
            break;
        }
        // A round's reads stop short of the deadline (a large one reads thousands of instances): the run
        // then acts on the plan it has, which wants the rest examined by a later run.
        let reading = read.read_tasks(&deps.ecs, &plan.wanted);
        let left = budget.remaining().map(|l| l.saturating_sub(CLUSTER_MARGIN));
        let in_time = match left {
            Some(left) => tokio::time::timeout(left, reading).await.ok(),
            None => Some(reading.await),
        };
        let Some(done) = in_time else {
            warn!(
                cluster,
                wanted = plan.wanted.len(),
                "Lambda deadline near: planning with the tasks read so far"
            );
            break;
        };
        done?;
        examined += plan.wanted.len();
        plan = plan::plan_ahead(&read.inventory, settings, now, examined);
    }
    done.before = Some(plan.before);
    done.after = Some(plan.after);
    done.instances = plan.entries;
    if dry_run {
        return Ok(Some(false));
    }
    let inv = &read.inventory;
    let act = act::Act {
        deps,
        cluster,
        daemon_groups: &inv.daemon_groups,
        fingerprints: &read.fingerprints,
        found: &inv.found(cluster),
        budget,
        now,
    };
    Ok(Some(act.all(&mut done.instances).await?))
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
