//! spot-drainer: sets an ECS container instance DRAINING when its EC2 Spot instance is about to go.
//!
//! Trigger: EventBridge, `aws.ec2` events "EC2 Spot Instance Interruption Warning" (drained by default)
//! and "EC2 Instance Rebalance Recommendation" (drained only when `DRAIN_ON` includes `rebalance`).
//! The rule is account-wide, so most instances are not ECS container instances of ours; that is a normal
//! outcome, not an error.
//!
//! AWS APIs: `ecs:ListClusters` (only with `CLUSTERS` empty), `ecs:ListContainerInstances`,
//! `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`, `sns:Publish` (only with
//! `NOTIFICATION_TOPIC_ARN`). With one configured cluster a drain takes three calls.
//!
//! Returns an [`Outcome`]: the instance, where it was found, its status before, the tasks still on it and
//! what was done. Errors ([`Error`]) are reserved for events we cannot handle and for AWS failures that
//! outlasted the SDK's retries; EventBridge's asynchronous invoke then retries the event.
//!
//! Settings (environment): `CLUSTERS`, `DRAIN_ON`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.

use aws_sdk_ecs::types::ContainerInstanceStatus;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::config::{ConfigError, Env};
use shared::ecs::{self, ClusterScope};
use shared::events::{
    self, Envelope, InvalidEvent, REBALANCE_RECOMMENDATION, RebalanceRecommendationDetail, SOURCE_EC2,
    SPOT_INTERRUPTION_WARNING, SpotInterruptionDetail,
};
use shared::metrics::Metrics;
use shared::notify::{Notification, Notifier};
use tracing::{info, warn};

/// The kinds of event that can trigger a drain; `DRAIN_ON` picks among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Spot interruption warning with `instance-action: terminate`.
    Terminate,
    Stop,
    Hibernate,
    /// Rebalance recommendation: an elevated risk of interruption, often minutes to hours ahead.
    Rebalance,
}

impl Trigger {
    const ALL: [Trigger; 4] = [Trigger::Terminate, Trigger::Stop, Trigger::Hibernate, Trigger::Rebalance];

    fn name(self) -> &'static str {
        match self {
            Trigger::Terminate => "terminate",
            Trigger::Stop => "stop",
            Trigger::Hibernate => "hibernate",
            Trigger::Rebalance => "rebalance",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Trigger::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    pub drain_on: Vec<Trigger>,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let mut drain_on = Vec::new();
        let listed = env.list("DRAIN_ON");
        for item in &listed {
            match Trigger::parse(item) {
                Some(t) if !drain_on.contains(&t) => drain_on.push(t),
                Some(_) => {}
                None => env.problem(
                    "DRAIN_ON",
                    Some(item),
                    "unknown trigger (expected terminate, stop, hibernate or rebalance)",
                ),
            }
        }
        if listed.is_empty() {
            drain_on = vec![Trigger::Terminate, Trigger::Stop, Trigger::Hibernate];
        }
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config { clusters, drain_on, notification_topic_arn, dry_run })
    }
}

/// What the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub notifier: Notifier,
    pub config: Config,
}

impl Deps {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config) -> Self {
        let notifier = Notifier::new(aws_sdk_sns::Client::new(sdk), config.notification_topic_arn.clone());
        Deps { ecs: aws_sdk_ecs::Client::new(sdk), notifier, config }
    }
}

/// What the handler did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
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
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Drained => "drained",
            Action::AlreadyDraining => "already-draining",
            Action::NotAnEcsInstance => "not-an-ecs-instance",
            Action::Ignored => "ignored",
            Action::DryRun => "dry-run",
            Action::NotDrainable => "not-drainable",
        }
    }
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
    pub status_before: Option<String>,
    /// Running plus pending tasks when the event arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_remaining: Option<i32>,
    /// Why nothing was done, for `ignored` and `not-drainable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Configured clusters that do not exist.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_clusters: Vec<String>,
    pub notification: Notification,
}

impl Outcome {
    /// `DrainsStarted` and `InstancesNotFound` (EMF); ignored events and dry runs record nothing.
    pub fn record(&self, m: &mut Metrics) {
        if matches!(self.action, Action::Ignored | Action::DryRun) {
            return;
        }
        m.count("DrainsStarted", usize::from(self.action == Action::Drained));
        m.count("InstancesNotFound", usize::from(self.action == Action::NotAnEcsInstance));
    }
}

/// The drainers share their error type; see [`shared::error::DrainError`].
pub use shared::error::DrainError as Error;

/// A checked spot or rebalance event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotEvent {
    pub instance_id: String,
    pub trigger: Trigger,
}

impl SpotEvent {
    /// Checks the envelope and `detail`, naming the first field that is wrong.
    pub fn parse(event: &Value) -> Result<Self, InvalidEvent> {
        let envelope = Envelope::parse(event)?;
        if envelope.source != SOURCE_EC2 {
            return Err(InvalidEvent::new(
                "source",
                format!("is {:?}; this function handles {SOURCE_EC2:?}", envelope.source),
            ));
        }
        let (instance_id, trigger) = match envelope.detail_type {
            SPOT_INTERRUPTION_WARNING => {
                let d: SpotInterruptionDetail = envelope.detail()?;
                let trigger = match Trigger::parse(&d.instance_action) {
                    Some(t) if t != Trigger::Rebalance => t,
                    _ => {
                        return Err(InvalidEvent::new(
                            "detail.instance-action",
                            format!("is {:?}; expected terminate, stop or hibernate", d.instance_action),
                        ));
                    }
                };
                (d.instance_id, trigger)
            }
            REBALANCE_RECOMMENDATION => {
                let d: RebalanceRecommendationDetail = envelope.detail()?;
                (d.instance_id, Trigger::Rebalance)
            }
            other => {
                return Err(InvalidEvent::new(
                    "detail-type",
                    format!(
                        "is {other:?}; expected {SPOT_INTERRUPTION_WARNING:?} or {REBALANCE_RECOMMENDATION:?}"
                    ),
                ));
            }
        };
        events::check_instance_id("detail.instance-id", &instance_id)?;
        Ok(SpotEvent { instance_id, trigger })
    }
}

pub async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Outcome, Error> {
    let spot = SpotEvent::parse(&event.payload).inspect_err(|e| warn!(error = %e, "event rejected"))?;
    let outcome = drain(deps, &spot).await?;
    info!(
        instance_id = %outcome.instance_id,
        trigger = spot.trigger.name(),
        action = outcome.action.as_str(),
        cluster = outcome.cluster.as_deref(),
        container_instance_arn = outcome.container_instance_arn.as_deref(),
        status_before = outcome.status_before.as_deref(),
        tasks_remaining = outcome.tasks_remaining,
        "handled"
    );
    let mut metrics = Metrics::for_function("spot-drainer");
    outcome.record(&mut metrics);
    metrics.emit();
    Ok(outcome)
}

async fn drain(deps: &Deps, spot: &SpotEvent) -> Result<Outcome, Error> {
    let config = &deps.config;
    let mut outcome = Outcome {
        instance_id: spot.instance_id.clone(),
        trigger: spot.trigger,
        action: Action::Ignored,
        cluster: None,
        container_instance_arn: None,
        status_before: None,
        tasks_remaining: None,
        reason: None,
        missing_clusters: Vec::new(),
        notification: if deps.notifier.enabled() { Notification::Skipped } else { Notification::Off },
    };
    if !config.drain_on.contains(&spot.trigger) {
        outcome.reason = Some(format!("DRAIN_ON does not include {}", spot.trigger.name()));
        return Ok(outcome);
    }

    let clusters = config.clusters.resolve(&deps.ecs).await?;
    let search = ecs::find_container_instance(&deps.ecs, &clusters, &spot.instance_id).await?;
    for missing in &search.missing_clusters {
        warn!(cluster = %missing, "configured cluster does not exist; skipped");
    }
    outcome.missing_clusters = search.missing_clusters;
    let Some(found) = search.found else {
        outcome.action = Action::NotAnEcsInstance;
        return Ok(outcome);
    };
    outcome.cluster = Some(found.cluster.clone());
    outcome.container_instance_arn = Some(found.container_instance_arn.clone());
    outcome.status_before = Some(found.status.clone());
    outcome.tasks_remaining = Some(found.running_tasks + found.pending_tasks);

    outcome.action = match found.status.as_str() {
        "DRAINING" => Action::AlreadyDraining,
        "ACTIVE" if config.dry_run => Action::DryRun,
        "ACTIVE" => {
            let change = ecs::set_status(
                &deps.ecs,
                &found.cluster,
                std::slice::from_ref(&found.container_instance_arn),
                ContainerInstanceStatus::Draining,
            )
            .await?;
            if let Some(failure) = change.failures.into_iter().next() {
                return Err(Error::DrainRejected {
                    container_instance_arn: found.container_instance_arn,
                    reason: failure.reason,
                });
            }
            Action::Drained
        }
        other => {
            outcome.reason = Some(format!("container instance is {other}"));
            warn!(instance_id = %spot.instance_id, status = other, "container instance cannot be drained");
            Action::NotDrainable
        }
    };
    if outcome.action == Action::Drained {
        outcome.notification = deps.notifier.send(&subject(spot, &found), &message(spot, &found)).await;
    }
    Ok(outcome)
}

fn subject(spot: &SpotEvent, found: &ecs::Found) -> String {
    format!("shipshape: draining {} in {} (spot {})", spot.instance_id, found.cluster, spot.trigger.name())
}

fn message(spot: &SpotEvent, found: &ecs::Found) -> String {
    let why = match spot.trigger {
        Trigger::Rebalance => {
            "EC2 sent a rebalance recommendation: this Spot instance is at elevated risk of interruption."
                .to_owned()
        }
        t => format!(
            "EC2 sent a Spot interruption warning: this instance will {} in about two minutes.",
            t.name()
        ),
    };
    format!(
        "{why}\n\nInstance: {}\nCluster: {}\nContainer instance: {}\nTasks on it: {} running, {} pending\n\n\
         shipshape set the container instance to DRAINING. ECS now starts replacements for its service tasks \
         on other instances and stops these ones once the replacements are healthy. Standalone tasks (not in \
         a service) are not moved and stop with the instance.",
        spot.instance_id,
        found.cluster,
        found.container_instance_arn,
        found.running_tasks,
        found.pending_tasks
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn metrics_count_drains_and_instances_not_found() {
        let at = |action: Action| {
            let o = Outcome {
                instance_id: "i-1".into(),
                trigger: Trigger::Terminate,
                action,
                cluster: None,
                container_instance_arn: None,
                status_before: None,
                tasks_remaining: None,
                reason: None,
                missing_clusters: Vec::new(),
                notification: Notification::Off,
            };
            let mut m = Metrics::new("f");
            o.record(&mut m);
            m
        };
        assert_eq!(at(Action::Drained).get("DrainsStarted"), Some(1.0));
        assert_eq!(at(Action::AlreadyDraining).get("DrainsStarted"), Some(0.0));
        assert_eq!(at(Action::NotAnEcsInstance).get("InstancesNotFound"), Some(1.0));
        assert!(at(Action::Ignored).is_empty());
    }

    fn spot(detail_type: &str, detail: Value) -> Value {
        json!({"version": "0", "id": "1", "source": "aws.ec2", "detail-type": detail_type,
               "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
               "resources": [], "detail": detail})
    }

    #[test]
    fn parses_spot_and_rebalance() {
        let e = spot(
            SPOT_INTERRUPTION_WARNING,
            json!({"instance-id": "i-1234567890abcdef0", "instance-action": "stop"}),
        );
        assert_eq!(
            SpotEvent::parse(&e).unwrap(),
            SpotEvent { instance_id: "i-1234567890abcdef0".into(), trigger: Trigger::Stop }
        );
        let e = spot(REBALANCE_RECOMMENDATION, json!({"instance-id": "i-1234567890abcdef0"}));
        assert_eq!(SpotEvent::parse(&e).unwrap().trigger, Trigger::Rebalance);
    }

    #[test]
    fn bad_events_name_the_field() {
        let cases = [
            (json!({"source": "aws.ec2", "detail-type": SPOT_INTERRUPTION_WARNING}), "detail"),
            (
                json!({"source": "aws.autoscaling", "detail-type": SPOT_INTERRUPTION_WARNING, "detail": {}}),
                "source",
            ),
            (spot("EC2 Instance State-change Notification", json!({})), "detail-type"),
            (
                spot(
                    SPOT_INTERRUPTION_WARNING,
                    json!({"instance-id": "i-12345678", "instance-action": "reboot"}),
                ),
                "detail.instance-action",
            ),
            (
                spot(
                    SPOT_INTERRUPTION_WARNING,
                    json!({"instance-id": "i-12345678", "instance-action": "rebalance"}),
                ),
                "detail.instance-action",
            ),
            (
                spot(
                    SPOT_INTERRUPTION_WARNING,
                    json!({"instance-id": "nope", "instance-action": "terminate"}),
                ),
                "detail.instance-id",
            ),
            (spot(SPOT_INTERRUPTION_WARNING, json!({"instance-action": "terminate"})), "detail"),
        ];
        for (event, field) in cases {
            assert_eq!(SpotEvent::parse(&event).unwrap_err().field, field, "{event}");
        }
    }

    #[test]
    fn config_defaults() {
        let map = HashMap::new();
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        assert_eq!(c.clusters, ClusterScope::All);
        assert_eq!(c.drain_on, [Trigger::Terminate, Trigger::Stop, Trigger::Hibernate]);
        assert!(!c.dry_run);
        assert_eq!(c.notification_topic_arn, None);
    }

    #[test]
    fn config_names_every_bad_variable() {
        let map = HashMap::from([("DRAIN_ON", "terminate,reboot"), ("DRY_RUN", "sure"), ("CLUSTERS", "a b")]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, ["CLUSTERS", "DRAIN_ON", "DRY_RUN"]);
    }

    #[test]
    fn drain_on_opt_in() {
        let map = HashMap::from([("DRAIN_ON", "Terminate, rebalance,terminate")]);
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        assert_eq!(c.drain_on, [Trigger::Terminate, Trigger::Rebalance]);
    }

    #[test]
    fn action_names_match_the_summary() {
        for a in [
            Action::Drained,
            Action::AlreadyDraining,
            Action::NotAnEcsInstance,
            Action::Ignored,
            Action::DryRun,
            Action::NotDrainable,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }

    #[test]
    fn error_types_are_stable() {
        let e = Error::from(InvalidEvent::new("source", "x"));
        assert_eq!(lambda_runtime::Diagnostic::from(e).error_type, "InvalidEvent");
        let e = Error::DrainRejected { container_instance_arn: "a".into(), reason: "r".into() };
        assert_eq!(e.error_type(), "DrainRejected");
    }
}
