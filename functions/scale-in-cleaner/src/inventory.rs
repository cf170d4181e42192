//! Reads one cluster's inventory for the planner, reading only what the plan needs.
//!
//! Calls, for a cluster of N container instances, S services and G Auto Scaling groups, independent ones
//! at once:
//! - `ecs:DescribeClusters` (1) and `ecs:DescribeCapacityProviders` (1 per 10, only when the cluster has
//!   capacity providers);
//! - `ecs:ListContainerInstances` and `ecs:DescribeContainerInstances` (N/100 each);
//! - `ecs:ListServices` (S/100), `ecs:DescribeServices` (S/10), `ecs:DescribeTaskDefinition` (one per task
//!   definition revision the plan meets, once per warm sandbox: a revision never changes);
//! - `autoscaling:DescribeAutoScalingInstances` (one call of 50 to learn the groups, then only for the
//!   instances those groups did not list) and `autoscaling:DescribeAutoScalingGroups` (G/100);
//! - for the instances whose tasks the plan examines (those it drained, and candidates in the order it
//!   considers them): `ecs:ListTasks` (one per instance), `ecs:DescribeTasks` (one per 100 tasks),
//!   `ecs:GetTaskProtection` (one per 100 service tasks), and `ecs:ListContainerInstances` with
//!   `task:group == service:<name>` for each service with `distinctInstance`;
//! - for the instances it drained that now run nothing: `ecs:ListTasks` with desired status STOPPED (one
//!   each) and `ecs:DescribeTasks` (one per 100 of those tasks), for the services that had tasks on them.
//!
//! Instances with no task, pending or running, and nothing reserved need no task call at all.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ManagedScalingStatus};
use shared::AwsError;
use shared::error::aws;

use self::definitions::Definitions;
use crate::plan::Inventory;

pub mod definitions;
mod departed;
mod groups;
pub mod instances;
mod services;
mod tasks;

/// The container-instance attribute that marks an instance a shipshape function set DRAINING: the drain
/// core's, one format for every function (`shared::drain::marker`), this function's as
/// `scale-in-cleaner:consolidation@<time>`. Earlier versions wrote `shipshape.scale-in-cleaner.drained-at`,
/// still read.
pub const MARKER: &str = shared::drain::marker::ATTRIBUTE;
/// The attribute on an instance whose drain by this function stalled and was undone; its value is when.
pub const STALLED_MARKER: &str = "shipshape.scale-in-cleaner.stalled-at";

/// Container instances whose tasks are read together (`Cluster::read_tasks`).
const READ_AT_ONCE: usize = 200;

/// Requests of one kind in flight at once: enough to read a large cluster in a few round trips, few enough
/// to stay clear of ECS's request rate limits.
pub(crate) const CONCURRENCY: usize = 8;

/// A cluster's inventory, or the news that the cluster is gone.
#[derive(Debug)]
pub enum Read {
    Found(Box<Cluster>),
    NoSuchCluster,
}

/// What has been read of one cluster so far in this run.
#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    pub inventory: Inventory,
    /// Service placement rules, by service name.
    placement: HashMap<String, services::Placement>,
    /// Task definitions read, by ARN: this sandbox's, shared by its runs.
    definitions: Definitions,
    /// Each container instance as the plan saw it, to tell a change before it is drained.
    pub fingerprints: HashMap<String, instances::Fingerprint>,
}

/// `definitions`: the task definitions read before, which this read adds to.
pub async fn read(
    ecs: &aws_sdk_ecs::Client,
    autoscaling: &aws_sdk_autoscaling::Client,
    cluster: &str,
    definitions: &Definitions,
) -> Result<Read, AwsError> {
    let Some(Providers { managed, default_strategy, exclusive }) = managed_groups(ecs, cluster).await? else {
        return Ok(Read::NoSuchCluster);
    };
    let (described, services) = futures_util::future::try_join(
        instances::list(ecs, cluster),
        services::read(ecs, cluster, &default_strategy),
    )
    .await?;
    // Deleted between DescribeClusters and now.
    let Some(described) = described else { return Ok(Read::NoSuchCluster) };
    let definitions = definitions.clone();
    let ids: Vec<String> =
        described.iter().filter_map(|ci| ci.ec2_instance_id().map(str::to_owned)).collect();
    let (groups, ()) = futures_util::future::try_join(
        groups::read(autoscaling, &ids, &managed),
        definitions.read(ecs, services.definitions.iter().chain(&services.daemon_definitions).cloned()),
    )
    .await?;
    let (memberships, groups) = groups;
    let largest_service_task = services
        .definitions
        .iter()
        .filter_map(|arn| definitions.get(arn))
        .fold(crate::plan::Resources::default(), |m, d| m.max(d.reserved));
    let daemon_share = services
        .daemon_definitions
        .iter()
        .filter_map(|arn| definitions.get(arn))
        .fold(crate::plan::Resources::default(), |s, d| s.plus(d.reserved));
    let inventory = Inventory {
        instances: described.iter().filter_map(|ci| instances::instance(ci, &memberships)).collect(),
        groups,
        daemon_groups: services.daemon_groups,
        services: services.services,
        hosts: Default::default(),
        largest_service_task,
        daemon_share,
        undescribed_services: services.undescribed,
        exclusive_providers: exclusive,
    };
    let fingerprints = described
        .iter()
        .filter_map(|ci| Some((ci.container_instance_arn()?.to_owned(), instances::Fingerprint::of(ci))))
        .collect();
    let mut found = Cluster {
        name: cluster.to_owned(),
        inventory,
        placement: services.placement,
        definitions,
        fingerprints,
    };
    // Instances this function drained are always planned with their tasks.
    let ours: Vec<String> = found
        .inventory
        .instances
        .iter()
        .filter(|i| i.is_ours() && i.tasks.is_none())
        .map(|i| i.container_instance_arn.clone())
        .collect();
    found.read_tasks(ecs, &ours).await?;
    // Those now empty: which services' tasks left them (the backstop before they are terminated).
    let empty: Vec<String> = found
        .inventory
        .instances
        .iter()
        .filter(|i| i.is_ours() && i.is_empty())
        .map(|i| i.container_instance_arn.clone())
        .collect();
    if !empty.is_empty() {
        let mut left = departed::services(ecs, cluster, &empty).await?;
        for inst in found.inventory.instances.iter_mut() {
            if let Some(services) = left.remove(&inst.container_instance_arn) {
                inst.departed = Some(services);
            }
        }
    }
    Ok(Read::Found(Box::new(found)))
}

impl Cluster {
    /// Reads the tasks on these container instances, and what placing them elsewhere takes: a few hundred
    /// instances at a time, so that the tasks as DescribeTasks answers them (kilobytes each) are held for
    /// those only, and what the plan keeps of them (a few hundred bytes) for the rest. Read all at once,
    /// the 50,000 tasks of 5,000 instances took 180 MB, over the function's 128.
    pub async fn read_tasks(&mut self, ecs: &aws_sdk_ecs::Client, arns: &[String]) -> Result<(), AwsError> {
        for chunk in arns.chunks(READ_AT_ONCE) {
            self.read_some_tasks(ecs, chunk).await?;
        }
        Ok(())
    }

    async fn read_some_tasks(&mut self, ecs: &aws_sdk_ecs::Client, arns: &[String]) -> Result<(), AwsError> {
        if arns.is_empty() {
            return Ok(());
        }
        let inv = &mut self.inventory;
        let read = tasks::Reading {
            ecs,
            cluster: &self.name,
            daemons: &inv.daemon_groups,
            placement: &self.placement,
            known_hosts: inv.hosts.keys().cloned().collect::<BTreeSet<_>>(),
        };
        let tasks::Read { mut by_instance, hosts, undescribed } = read.tasks(arns, &self.definitions).await?;
        inv.hosts.extend(hosts);
        let asked: std::collections::HashSet<&str> = arns.iter().map(String::as_str).collect();
        for inst in inv.instances.iter_mut().filter(|i| asked.contains(i.container_instance_arn.as_str())) {
            inst.undescribed = undescribed.contains(&inst.container_instance_arn);
            if inst.undescribed {
                continue;
            }
            let mut found = by_instance.remove(&inst.container_instance_arn).unwrap_or_default();
            tasks::size_unknown(inst.registered, inst.remaining, &mut found);
            inst.tasks = Some(found);
        }
        Ok(())
    }
}

/// What a cluster's capacity providers tell the plan.
struct Providers {
    /// Groups owned by a capacity provider with managed scaling on: group name to provider name.
    managed: HashMap<String, String>,
    default_strategy: Vec<CapacityProviderStrategyItem>,
    /// Providers without an Auto Scaling group (ECS Managed Instances): their instances take only the
    /// tasks of strategies that name them.
    exclusive: BTreeSet<String>,
}

/// The cluster's capacity providers; `None` when the cluster does not exist.
async fn managed_groups(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Option<Providers>, AwsError> {
    let out = ecs.describe_clusters().clusters(cluster).send().await.map_err(aws("DescribeClusters"))?;
    let Some(found) = out.clusters().iter().find(|c| c.status() != Some("INACTIVE")) else { return Ok(None) };
    let default_strategy = found.default_capacity_provider_strategy().to_vec();
    let providers = found.capacity_providers();
    let mut managed = HashMap::new();
    let mut exclusive = BTreeSet::new();
    if providers.is_empty() {
        return Ok(Some(Providers { managed, default_strategy, exclusive }));
    }
    // At most 10 per page, with a nextToken for the rest, and no paginator in the SDK.
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = ecs
            .describe_capacity_providers()
            .set_capacity_providers(Some(providers.to_vec()))
            .set_next_token(token)
            .send()
            .await
            .map_err(aws("DescribeCapacityProviders"))?;
        token = out.next_token().map(str::to_owned);
        found.extend(out.capacity_providers.unwrap_or_default());
        if token.is_none() {
            break;
        }
    }
    for cp in &found {
        let Some(asg) = cp.auto_scaling_group_provider() else {
            // ECS Managed Instances (or Fargate): its instances run only tasks whose strategy names it.
            exclusive.extend(cp.name().map(str::to_owned));
            continue;
        };
        let enabled = asg.managed_scaling().and_then(|m| m.status()) == Some(&ManagedScalingStatus::Enabled);
        if enabled {
            managed.insert(
                group_name(asg.auto_scaling_group_arn()).to_owned(),
                cp.name().unwrap_or_default().to_owned(),
            );
        }
    }
    Ok(Some(Providers { managed, default_strategy, exclusive }))
}

/// A capacity provider names its group by ARN (`...:autoScalingGroupName/<name>`) or by name.
fn group_name(arn_or_name: &str) -> &str {
    arn_or_name.rsplit_once(":autoScalingGroupName/").map_or(arn_or_name, |(_, name)| name)
}
