//! The cluster's services: `ecs:ListServices` (100 per page) and `ecs:DescribeServices` (10 per call,
//! the batches at once). What the plan takes from them: which are daemons, which are being deployed,
//! their placement rules, and their recent placement events.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ecs::types::{
    AvailabilityZoneRebalancing, CapacityProviderStrategyItem, DeploymentRolloutState,
    PlacementConstraintType, PlacementStrategyType, SchedulingStrategy,
};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use shared::AwsError;
use shared::error::aws;

use super::CONCURRENCY;
use crate::plan::{Counts, EventKind, Service, ServiceEvent};

/// `DescribeServices` takes up to 10 services (API_DescribeServices.html).
const DESCRIBE_SERVICES_BATCH: usize = 10;
const ZONE: &str = "attribute:ecs.availability-zone";

/// A service's placement rules, as its tasks' replacements are placed.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub member_of: Vec<String>,
    pub distinct_instance: bool,
    pub az_spread: bool,
    /// The capacity providers its tasks can be placed on; `None`: any instance.
    pub providers: Option<Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Services {
    pub services: BTreeMap<String, Service>,
    pub daemon_groups: BTreeSet<String>,
    pub placement: HashMap<String, Placement>,
    /// The task definitions of the replica services (for the largest task a service may start).
    pub definitions: BTreeSet<String>,
    /// Those of the daemon services (what they hold on every instance, at most).
    pub daemon_definitions: BTreeSet<String>,
    /// Services listed but not described: their rules, counts and deployments are not known.
    pub undescribed: BTreeSet<String>,
}

/// `default_strategy`: the cluster's default capacity provider strategy.
pub async fn read(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    default_strategy: &[CapacityProviderStrategyItem],
) -> Result<Services, AwsError> {
    let listed: Result<Vec<String>, _> = ecs
        .list_services()
        .cluster(cluster)
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let arns = match listed.map_err(aws("ListServices")) {
        Ok(arns) => arns,
        // Deleted meanwhile: the instances' read says so.
        Err(e) if e.code_is("ClusterNotFoundException") => return Ok(Services::default()),
        Err(e) => return Err(e),
    };
    type Page = (Vec<aws_sdk_ecs::types::Service>, Vec<aws_sdk_ecs::types::Failure>);
    let described: Vec<Page> = stream::iter(arns.chunks(DESCRIBE_SERVICES_BATCH))
        .map(|batch| async move {
            let out = ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .send()
                .await
                .map_err(aws("DescribeServices"))?;
            Ok::<_, AwsError>((out.services.unwrap_or_default(), out.failures.unwrap_or_default()))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut out = Services::default();
    let (described, failures): (Vec<_>, Vec<_>) = described.into_iter().unzip();
    // A service ListServices named that DescribeServices could not describe (eventual consistency): its
    // rules are not known this run.
    out.undescribed = failures
        .iter()
        .flatten()
        .filter_map(|f| f.arn())
        .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
        .collect();
    for s in described.into_iter().flatten() {
        let Some(name) = s.service_name().map(str::to_owned) else { continue };
        if s.status() != Some("ACTIVE") {
            continue;
        }
        if s.scheduling_strategy() == Some(&SchedulingStrategy::Daemon) {
            // Daemon tasks run on every instance and leave with theirs: not load to move. A daemon being
            // deployed still blocks new drains, as any service does.
            out.daemon_groups.insert(format!("service:{name}"));
            out.daemon_definitions.extend(s.task_definition().map(str::to_owned));
            out.services.insert(name, Service { deployment: deployment(&s), ..Service::default() });
            continue;
        }
        out.definitions.extend(s.task_definition().map(str::to_owned));
        out.placement.insert(name.clone(), placement(&s, default_strategy));
        let service = Service { deployment: deployment(&s), events: events(&s), counts: Some(counts(&s)) };
        out.services.insert(name, service);
    }
    Ok(out)
}

fn placement(
    s: &aws_sdk_ecs::types::Service,
    default_strategy: &[CapacityProviderStrategyItem],
) -> Placement {
    let mut p = Placement { providers: providers(s, default_strategy), ..Placement::default() };
    for c in s.placement_constraints() {
        match c.r#type() {
            Some(PlacementConstraintType::DistinctInstance) => p.distinct_instance = true,
            Some(PlacementConstraintType::MemberOf) => p.member_of.extend(c.expression().map(str::to_owned)),
            _ => {}
        }
    }
    let strategies = s.placement_strategy();
    // A service without a strategy spreads over zones: "For tasks running as part of an Amazon ECS
    // service, the task placement strategy is spread using the attribute:ecs.availability-zone"
    // (task-placement-strategies.html); AZ rebalancing keeps them so.
    p.az_spread = strategies.is_empty()
        || strategies
            .iter()
            .any(|st| st.r#type() == Some(&PlacementStrategyType::Spread) && st.field() == Some(ZONE))
        || s.availability_zone_rebalancing() == Some(&AvailabilityZoneRebalancing::Enabled);
    p
}

/// The capacity providers ECS may place the service's tasks on: those of its strategy, or of the
/// cluster's default strategy when it has neither a strategy nor a launch type ("If no
/// capacityProviderStrategy or launchType is specified, the defaultCapacityProviderStrategy for the
/// cluster is used", API_CreateService.html); of several, only those with a weight or a base ("any
/// capacity providers with a weight of 0 can't be used to place tasks",
/// API_CapacityProviderStrategyItem.html). `None`: a launch type, any instance.
fn providers(
    s: &aws_sdk_ecs::types::Service,
    default_strategy: &[CapacityProviderStrategyItem],
) -> Option<Vec<String>> {
    let own = s.capacity_provider_strategy();
    let strategy = match (own.is_empty(), s.launch_type()) {
        (false, _) => own,
        (true, None) if !default_strategy.is_empty() => default_strategy,
        _ => return None,
    };
    let several = strategy.len() > 1;
    let mut names: Vec<String> = strategy
        .iter()
        .filter(|i| !several || i.weight() > 0 || i.base() > 0)
        .map(|i| i.capacity_provider().to_owned())
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

/// Its task counts and deployment configuration; without one, ECS's defaults for a replica service, 100
/// and 200 (API_DeploymentConfiguration.html).
fn counts(s: &aws_sdk_ecs::types::Service) -> Counts {
    let config = s.deployment_configuration();
    Counts {
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        minimum_healthy_percent: config.and_then(|c| c.minimum_healthy_percent()).unwrap_or(100),
        maximum_percent: config.and_then(|c| c.maximum_percent()).unwrap_or(200),
    }
}

/// Why the service counts as being deployed, if it does: a deployment whose rollout is in progress, or
/// (for deployments without a rollout state: behind a Classic Load Balancer, or by an external
/// controller) more than one deployment or task set still serving.
fn deployment(s: &aws_sdk_ecs::types::Service) -> Option<String> {
    let deployments = s.deployments();
    if let Some(d) =
        deployments.iter().find(|d| d.rollout_state() == Some(&DeploymentRolloutState::InProgress))
    {
        return Some(format!("deployment {} IN_PROGRESS", d.id().unwrap_or("?")));
    }
    let live = deployments.iter().filter(|d| matches!(d.status(), Some("PRIMARY" | "ACTIVE"))).count();
    if live > 1 {
        return Some(format!("{live} deployments running"));
    }
    let sets = s.task_sets().iter().filter(|t| matches!(t.status(), Some("PRIMARY" | "ACTIVE"))).count();
    (sets > 1).then(|| format!("{sets} task sets running"))
}

/// The events about placing tasks: ECS writes "(service x) has started n tasks: ..." and "(service x) was
/// unable to place a task because ..." (service-event-messages.html).
fn events(s: &aws_sdk_ecs::types::Service) -> Vec<ServiceEvent> {
    s.events()
        .iter()
        .filter_map(|e| {
            let message = e.message()?;
            let kind = if message.contains("was unable to place a task") {
                EventKind::UnableToPlace
            } else if message.contains("has started") {
                EventKind::Started
            } else {
                return None;
            };
            let t = e.created_at()?;
            Some(ServiceEvent { at: DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())?, kind })
        })
        .collect()
}
