//! scale-in-cleaner: removes idle ECS container instances while enough spare CPU and memory stay.
//!
//! Trigger: an EventBridge schedule (`rate(30 minutes)` by default), or a manual invoke with `{}` (or
//! `{"dry-run": true}` to see the plan without acting). Reserved concurrency 1: two runs must never plan
//! at once.
//!
//! Each run, per cluster: read the inventory ([`inventory`]), plan ([`plan::plan`], a pure function),
//! then act in this order: instances this function drained earlier and that are needed again go back to
//! ACTIVE; its drain marker leaves instances someone else set back to ACTIVE; new removals are marked and
//! set DRAINING; drained instances that run nothing (daemon tasks aside, re-checked task by task) are
//! terminated through their Auto Scaling group with the desired capacity decremented, so the group's
//! lifecycle hooks still run. Empty instances are drained before they are terminated too, so a task placed
//! on one meanwhile is moved, not killed.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:DescribeClusters`,
//! `ecs:DescribeCapacityProviders`, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`,
//! `ecs:ListServices`, `ecs:ListTasks`, `ecs:DescribeTasks`, `ecs:PutAttributes`, `ecs:DeleteAttributes`,
//! `ecs:UpdateContainerInstancesState`, `autoscaling:DescribeAutoScalingInstances`,
//! `autoscaling:DescribeAutoScalingGroups`, `autoscaling:TerminateInstanceInAutoScalingGroup`,
//! `sns:Publish` (only with `NOTIFICATION_TOPIC_ARN`, one message per run that changed something).
//!
//! Returns an [`Outcome`]: per cluster, the capacity before and after and every instance considered with
//! its decision and the reason. An [`Error`] means some cluster could not be read or some change failed;
//! the run is idempotent, so the next one (or the asynchronous retry) picks up where this one stopped.
//!
//! Settings (environment): `CLUSTERS`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`,
//! `MAX_REMOVALS_PER_RUN`, `MIN_INSTANCE_AGE_MINUTES`, `AUTO_SCALING_GROUPS`, `NOTIFICATION_TOPIC_ARN`,
//! `DRY_RUN`.

pub mod inventory;
pub mod plan;

use std::collections::BTreeSet;

use aws_sdk_ecs::types::{Attribute, ContainerInstanceStatus, TargetType};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::AwsError;
use shared::config::{ConfigError, Env};
use shared::ecs::{self, ClusterScope};
use shared::error::aws;
use shared::events::InvalidEvent;
use shared::metrics::Metrics;
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

use crate::inventory::{MARKER, Read};
use crate::plan::{Capacity, Decision, Entry, Plan, Settings};

/// No new change is started with less than this left before Lambda's deadline.
const DEADLINE_MARGIN: Duration = Duration::seconds(10);
/// No cluster is read with less than this left: reading a large one takes a few seconds.
const CLUSTER_MARGIN: Duration = Duration::seconds(20);
/// `PutAttributes` and `DeleteAttributes` take up to 10 attributes per call.
const ATTRIBUTE_BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    pub settings: Settings,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let settings = Settings {
            reserve_cpu_percent: env.number("RESERVE_CPU_PERCENT", 20, 0, 100),
            reserve_memory_percent: env.number("RESERVE_MEMORY_PERCENT", 20, 0, 100),
            max_removals: env.number("MAX_REMOVALS_PER_RUN", 2, 0, 100),
            min_instance_age: Duration::minutes(env.number("MIN_INSTANCE_AGE_MINUTES", 30, 0, 10_080)),
            groups: env.list("AUTO_SCALING_GROUPS"),
        };
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config { clusters, settings, notification_topic_arn, dry_run })
    }
}

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
    /// `ScaleInRemovals` (terminated, reaped included), `ScaleInDrains` and `ScaleInReactivations` (EMF);
    /// a dry run records nothing.
    pub fn record(&self, m: &mut Metrics) {
        if self.dry_run {
            return;
        }
        m.count("ScaleInRemovals", self.totals.terminated + self.totals.reaped);
        m.count("ScaleInDrains", self.totals.drained);
        m.count("ScaleInReactivations", self.totals.reactivated);
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterOutcome> {
        self.clusters.iter().find(|c| c.cluster == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The run went through every cluster, but some could not be read or some change failed.
    #[error("scale-in run incomplete: {}", failures.join("; "))]
    Incomplete { failures: Vec<String>, outcome: Box<Outcome> },
}

impl Error {
    /// Stable names for the Lambda error response (`errorType`), for alarms and log queries.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidEvent(_) => "InvalidEvent",
            Error::Aws(_) => "AwsApiError",
            Error::Incomplete { .. } => "Incomplete",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// The invocation: a scheduled event, or a manual payload (`{}` or `{"dry-run": true}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Plan only, whatever `DRY_RUN` says.
    pub dry_run: bool,
}

impl Request {
    pub fn parse(event: &Value) -> Result<Self, InvalidEvent> {
        let Some(obj) = event.as_object() else {
            return Err(InvalidEvent::new(
                "(payload)",
                "expected a JSON object: a scheduled event, {} or {\"dry-run\": true}",
            ));
        };
        if let Some(source) = obj.get("source") {
            let detail_type = obj.get("detail-type").and_then(Value::as_str);
            return match (source.as_str(), detail_type) {
                (Some("aws.events" | "aws.scheduler"), Some("Scheduled Event")) => {
                    Ok(Request { dry_run: false })
                }
                (Some(s), _) if s != "aws.events" && s != "aws.scheduler" => Err(InvalidEvent::new(
                    "source",
                    format!("is {s:?}; this function runs on a schedule (aws.events) or by hand"),
                )),
                _ => Err(InvalidEvent::new("detail-type", "expected \"Scheduled Event\"")),
            };
        }
        let mut request = Request { dry_run: false };
        for (key, value) in obj {
            match key.as_str() {
                "dry-run" => {
                    request.dry_run = value
                        .as_bool()
                        .ok_or_else(|| InvalidEvent::new("dry-run", "expected true or false"))?;
                }
                other => {
                    return Err(InvalidEvent::new(
                        other,
                        "unknown field (a manual run takes only \"dry-run\")",
                    ));
                }
            }
        }
        Ok(request)
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Outcome, Error> {
    let request = Request::parse(&event.payload)?;
    let deadline = lambda_deadline(event.context.deadline);
    let result = run(deps, request.dry_run || deps.config.dry_run, Utc::now(), deadline).await;
    let mut metrics = Metrics::for_function("scale-in-cleaner");
    match &result {
        Ok(outcome) => outcome.record(&mut metrics),
        Err(Error::Incomplete { outcome, .. }) => outcome.record(&mut metrics),
        Err(_) => {}
    }
    metrics.emit();
    result
}

/// The invocation's deadline from the runtime; 0 (no deadline given, as in tests) means none.
fn lambda_deadline(deadline_ms: u64) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(deadline_ms).ok().filter(|ms| *ms > 0)?;
    DateTime::from_timestamp_millis(ms)
}

fn time_left(deadline: Option<DateTime<Utc>>, margin: Duration) -> bool {
    deadline.is_none_or(|d| d - Utc::now() > margin)
}

/// One run over every configured cluster; `now` dates instance ages and drain markers.
pub async fn run(
    deps: &Deps,
    dry_run: bool,
    now: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
) -> Result<Outcome, Error> {
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
        if !time_left(deadline, CLUSTER_MARGIN) {
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
                outcome.clusters.push(ClusterOutcome {
                    cluster: cluster.clone(),
                    before: None,
                    after: None,
                    instances: Vec::new(),
                    error: Some(e.to_string()),
                });
                continue;
            }
        };
        let mut plan = plan::plan(&inventory, &deps.config.settings, now);
        let mut error = None;
        if !dry_run {
            let acted = Act { deps, cluster, daemon_groups: &inventory.daemon_groups, deadline, now };
            match acted.all(&mut plan.entries).await {
                Ok(stopped) => outcome.stopped_early |= stopped,
                Err(e) => {
                    failures.push(format!("{cluster}: {e}"));
                    error = Some(e.to_string());
                }
            }
            for e in plan.entries.iter().filter(|e| e.error.is_some()) {
                if !e.error.as_deref().is_some_and(is_refusal) {
                    failures.push(format!(
                        "{cluster}: {}: {}",
                        e.ec2_instance_id,
                        e.error.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        log_plan(cluster, &plan, dry_run);
        add_totals(&mut outcome.totals, &plan.entries, dry_run);
        let Plan { before, after, entries } = plan;
        outcome.clusters.push(ClusterOutcome {
            cluster: cluster.clone(),
            before: Some(before),
            after: Some(after),
            instances: entries,
            error,
        });
    }
    outcome.notification = notify(deps, &outcome).await;
    info!(outcome = %serde_json::to_string(&outcome).unwrap_or_default(), "scale-in run finished");
    if failures.is_empty() {
        Ok(outcome)
    } else {
        Err(Error::Incomplete { failures, outcome: Box::new(outcome) })
    }
}

/// A refusal that is part of normal operation (the group reached its minimum size meanwhile), not a
/// failure of the run.
fn is_refusal(error: &str) -> bool {
    error.starts_with("skipped:")
}

fn log_plan(cluster: &str, plan: &Plan, dry_run: bool) {
    for e in &plan.entries {
        info!(
            cluster = %cluster,
            instance_id = %e.ec2_instance_id,
            group = e.group.as_deref().unwrap_or(""),
            decision = ?e.decision,
            reason = %e.reason,
            done = e.done,
            error = e.error.as_deref().unwrap_or(""),
            dry_run,
            "instance considered"
        );
    }
}

fn add_totals(totals: &mut Totals, entries: &[Entry], dry_run: bool) {
    for e in entries.iter().filter(|e| dry_run || e.done || e.decision == Decision::Wait) {
        match e.decision {
            Decision::Terminate => totals.terminated += 1,
            Decision::Drain => totals.drained += 1,
            Decision::Reap => totals.reaped += 1,
            Decision::Reactivate => totals.reactivated += 1,
            Decision::Wait => totals.waiting += 1,
            Decision::Keep | Decision::Skip => {}
        }
    }
}

/// Carries out one cluster's plan.
struct Act<'a> {
    deps: &'a Deps,
    cluster: &'a str,
    daemon_groups: &'a BTreeSet<String>,
    deadline: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl Act<'_> {
    /// `Ok(true)` when Lambda's deadline stopped it before the end.
    async fn all(&self, entries: &mut [Entry]) -> Result<bool, AwsError> {
        // Capacity first: what comes back to ACTIVE is what later steps may lean on.
        let reactivate = arns_of(entries, |e| e.decision == Decision::Reactivate);
        let change =
            ecs::set_status(&self.deps.ecs, self.cluster, &reactivate, ContainerInstanceStatus::Active)
                .await?;
        record(entries, &change, |e| e.decision == Decision::Reactivate);
        let done = arns_of(entries, |e| e.decision == Decision::Reactivate && e.done);
        let stale = arns_of(entries, |e| e.clear_marker);
        self.unmark(&[done, stale].concat()).await?;

        if !time_left(self.deadline, DEADLINE_MARGIN) {
            return Ok(true);
        }
        // Marked before DRAINING: if we stop in between, an ACTIVE instance carries a marker (cleared next
        // run), never a DRAINING instance without one (which no run would ever reap).
        let leaving = |e: &Entry| matches!(e.decision, Decision::Drain | Decision::Terminate);
        let drain = arns_of(entries, leaving);
        self.mark(&drain).await?;
        let change =
            ecs::set_status(&self.deps.ecs, self.cluster, &drain, ContainerInstanceStatus::Draining).await?;
        record(entries, &change, leaving);
        for e in entries.iter_mut().filter(|e| e.decision == Decision::Terminate) {
            // Draining is half of terminating; done once terminated.
            e.done = false;
        }

        for e in entries.iter_mut() {
            let terminate =
                e.decision == Decision::Reap || (e.decision == Decision::Terminate && e.error.is_none());
            if !terminate {
                continue;
            }
            if !time_left(self.deadline, DEADLINE_MARGIN) {
                return Ok(true);
            }
            self.terminate(e).await?;
        }
        Ok(false)
    }

    /// Terminates one drained instance if nothing but daemon tasks is left on it; otherwise it waits.
    async fn terminate(&self, e: &mut Entry) -> Result<(), AwsError> {
        let left: Vec<_> = ecs::tasks_left(&self.deps.ecs, self.cluster, &e.container_instance_arn)
            .await?
            .into_iter()
            .filter(|t| !t.group.as_ref().is_some_and(|g| self.daemon_groups.contains(g)))
            .collect();
        if !left.is_empty() {
            info!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, tasks = left.len(), "tasks on it; not terminated");
            e.reason = if e.decision == Decision::Terminate {
                format!("{} task(s) arrived before it could be terminated; drained, reaped later", left.len())
            } else {
                format!("{} task(s) still stopping; reaped on a later run", left.len())
            };
            e.done = e.decision == Decision::Terminate;
            e.decision = if e.decision == Decision::Terminate { Decision::Drain } else { Decision::Wait };
            return Ok(());
        }
        let result = self
            .deps
            .autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&e.ec2_instance_id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(aws("TerminateInstanceInAutoScalingGroup"));
        match result {
            Ok(_) => {
                info!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, "terminated");
                e.done = true;
            }
            // The group reached its minimum size, or the instance is already terminating, since we read it:
            // the next run sees the new state.
            Err(err) if err.code_is("ValidationError") => {
                warn!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, error = %err, "termination refused");
                e.error = Some(format!("skipped: {err}"));
            }
            Err(err) => return Err(err),
        }
        Ok(())
    }

    async fn mark(&self, arns: &[String]) -> Result<(), AwsError> {
        let value = self.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        for batch in arns.chunks(ATTRIBUTE_BATCH) {
            self.deps
                .ecs
                .put_attributes()
                .cluster(self.cluster)
                .set_attributes(Some(markers(batch, Some(&value), "PutAttributes")?))
                .send()
                .await
                .map_err(aws("PutAttributes"))?;
        }
        Ok(())
    }

    async fn unmark(&self, arns: &[String]) -> Result<(), AwsError> {
        for batch in arns.chunks(ATTRIBUTE_BATCH) {
            self.deps
                .ecs
                .delete_attributes()
                .cluster(self.cluster)
                .set_attributes(Some(markers(batch, None, "DeleteAttributes")?))
                .send()
                .await
                .map_err(aws("DeleteAttributes"))?;
        }
        Ok(())
    }
}

/// Our marker on each instance; `value` `None` to delete it ("don't specify the value" for DeleteAttributes).
fn markers(
    arns: &[String],
    value: Option<&str>,
    operation: &'static str,
) -> Result<Vec<Attribute>, AwsError> {
    arns.iter()
        .map(|arn| {
            Attribute::builder()
                .name(MARKER)
                .set_value(value.map(str::to_owned))
                .target_type(TargetType::ContainerInstance)
                .target_id(arn)
                .build()
                .map_err(|e| AwsError { operation, code: None, message: e.to_string() })
        })
        .collect()
}

fn arns_of(entries: &[Entry], pick: impl Fn(&Entry) -> bool) -> Vec<String> {
    entries.iter().filter(|e| pick(e)).map(|e| e.container_instance_arn.clone()).collect()
}

/// Marks entries ECS accepted as done and those it refused with its reason.
fn record(entries: &mut [Entry], change: &ecs::StateChange, pick: impl Fn(&Entry) -> bool) {
    for e in entries.iter_mut().filter(|e| pick(e)) {
        if change.updated.contains(&e.container_instance_arn) {
            e.done = true;
        } else if let Some(f) = change.failures.iter().find(|f| f.arn == e.container_instance_arn) {
            e.error = Some(format!("UpdateContainerInstancesState refused: {}", f.reason));
        }
    }
}

async fn notify(deps: &Deps, outcome: &Outcome) -> Notification {
    if !deps.notifier.enabled() {
        return Notification::Off;
    }
    let t = outcome.totals;
    if outcome.dry_run || t.terminated + t.drained + t.reaped + t.reactivated == 0 {
        return Notification::Skipped;
    }
    let mut lines = Vec::new();
    for c in &outcome.clusters {
        for e in c.instances.iter().filter(|e| e.done && e.decision.mutates()) {
            let verb = match e.decision {
                Decision::Terminate => "terminated (was empty)",
                Decision::Drain => "set DRAINING",
                Decision::Reap => "terminated (drained earlier)",
                _ => "set back to ACTIVE",
            };
            lines.push(format!(
                "{} {} ({}) in {}: {verb}. {}",
                c.cluster,
                e.ec2_instance_id,
                e.availability_zone.as_deref().unwrap_or("?"),
                e.group.as_deref().unwrap_or("no group"),
                e.reason
            ));
        }
    }
    let subject = format!(
        "shipshape scale-in: {} terminated, {} drained, {} reactivated",
        t.terminated + t.reaped,
        t.drained,
        t.reactivated
    );
    deps.notifier.send(&subject, &lines.join("\n")).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn metrics_count_removals_drains_and_reactivations_but_not_dry_runs() {
        let at = |dry_run: bool| {
            let o = Outcome {
                dry_run,
                totals: Totals { terminated: 1, drained: 2, reaped: 3, reactivated: 1, waiting: 4 },
                clusters: Vec::new(),
                missing_clusters: Vec::new(),
                stopped_early: false,
                notification: Notification::Off,
            };
            let mut m = Metrics::new("f");
            o.record(&mut m);
            m
        };
        let m = at(false);
        assert_eq!(m.get("ScaleInRemovals"), Some(4.0));
        assert_eq!(m.get("ScaleInDrains"), Some(2.0));
        assert_eq!(m.get("ScaleInReactivations"), Some(1.0));
        assert!(at(true).is_empty());
    }

    #[test]
    fn config_defaults() {
        let map = HashMap::new();
        let config = Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.clusters, ClusterScope::All);
        assert_eq!(
            config.settings,
            Settings {
                reserve_cpu_percent: 20,
                reserve_memory_percent: 20,
                max_removals: 2,
                min_instance_age: Duration::minutes(30),
                groups: Vec::new(),
            }
        );
        assert!(!config.dry_run);
        assert_eq!(config.notification_topic_arn, None);
    }

    #[test]
    fn every_bad_setting_is_named() {
        let map = HashMap::from([
            ("RESERVE_CPU_PERCENT", "120"),
            ("RESERVE_MEMORY_PERCENT", "ten"),
            ("MAX_REMOVALS_PER_RUN", "-1"),
            ("MIN_INSTANCE_AGE_MINUTES", "1.5"),
            ("DRY_RUN", "perhaps"),
            ("NOTIFICATION_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).err().unwrap_or_else(|| panic!("accepted"));
        let named: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            named,
            [
                "RESERVE_CPU_PERCENT",
                "RESERVE_MEMORY_PERCENT",
                "MAX_REMOVALS_PER_RUN",
                "MIN_INSTANCE_AGE_MINUTES",
                "NOTIFICATION_TOPIC_ARN",
                "DRY_RUN"
            ]
        );
    }

    #[test]
    fn requests() {
        let scheduled = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert_eq!(Request::parse(&scheduled), Ok(Request { dry_run: false }));
        assert_eq!(Request::parse(&json!({})), Ok(Request { dry_run: false }));
        assert_eq!(Request::parse(&json!({"dry-run": true})), Ok(Request { dry_run: true }));

        let field = |v: Value| Request::parse(&v).err().map(|e| e.field).unwrap_or_default();
        assert_eq!(field(json!({"dry-run": "yes"})), "dry-run");
        assert_eq!(field(json!({"dryrun": true})), "dryrun");
        assert_eq!(field(json!({"source": "aws.ec2", "detail-type": "Scheduled Event"})), "source");
        assert_eq!(field(json!({"source": "aws.events", "detail-type": "Other"})), "detail-type");
        assert_eq!(field(json!([1])), "(payload)");
    }
}
