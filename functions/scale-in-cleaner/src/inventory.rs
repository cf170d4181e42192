//! Reads one cluster's inventory for the planner.
//!
//! Calls, for a cluster of N container instances running T tasks:
//! `ecs:DescribeClusters` (1) and `ecs:DescribeCapacityProviders` (1 per 10 capacity providers, only when
//! the cluster has some); `ecs:ListContainerInstances` and `ecs:DescribeContainerInstances` (N/100 each);
//! `ecs:ListServices` (1 per 100 daemon services); `ecs:ListTasks` and `ecs:DescribeTasks` (T/100 each);
//! `autoscaling:DescribeAutoScalingInstances` (N/50) and `autoscaling:DescribeAutoScalingGroups` (1 per
//! 100 groups).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ecs::types::{ContainerInstance, DesiredStatus, ManagedScalingStatus, SchedulingStrategy};
use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::ecs::{DESCRIBE_BATCH, InstanceStatus, describe_container_instances_in_full};
use shared::error::aws;

use crate::plan::{Group, Instance, Inventory, Membership, Resources, Task};

/// The container-instance attribute that marks an instance this function set DRAINING; its value is when.
/// Names allow letters, digits, `-`, `_`, `/`, `\` and `.`; values also `:` and `@`
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attribute.html>).
pub const MARKER: &str = "shipshape.scale-in-cleaner.drained-at";

/// `DescribeAutoScalingInstances` takes up to 50 instance ids.
const ASG_INSTANCES_BATCH: usize = 50;
/// `DescribeAutoScalingGroups` takes up to 100 group names (its `MaxRecords` maximum).
const ASG_GROUPS_BATCH: usize = 100;

/// A cluster's inventory, or the news that the cluster is gone.
#[derive(Debug)]
pub enum Read {
    Found(Inventory),
    NoSuchCluster,
}

pub async fn read(
    ecs: &aws_sdk_ecs::Client,
    autoscaling: &aws_sdk_autoscaling::Client,
    cluster: &str,
) -> Result<Read, AwsError> {
    let Some(managed) = managed_groups(ecs, cluster).await? else { return Ok(Read::NoSuchCluster) };

    let arns: Vec<String> = match ecs
        .list_container_instances()
        .cluster(cluster)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("ListContainerInstances"))
    {
        Ok(arns) => arns,
        // Deleted between DescribeClusters and now.
        Err(e) if e.code_is("ClusterNotFoundException") => return Ok(Read::NoSuchCluster),
        Err(e) => return Err(e),
    };
    if arns.is_empty() {
        return Ok(Read::Found(Inventory::default()));
    }
    let described = describe_container_instances_in_full(ecs, cluster, &arns).await?;
    let daemons = daemon_groups(ecs, cluster).await?;
    let mut tasks = running_tasks(ecs, cluster, &daemons).await?;

    let ids: Vec<String> =
        described.iter().filter_map(|ci| ci.ec2_instance_id().map(str::to_owned)).collect();
    let memberships = memberships(autoscaling, &ids).await?;
    let names: BTreeSet<&str> = memberships.values().map(|m| m.group.as_str()).collect();
    let groups = groups(autoscaling, &names, &managed).await?;

    let instances = described
        .iter()
        .filter_map(|ci| {
            let arn = ci.container_instance_arn()?;
            let on_it = tasks.remove(arn).unwrap_or_default();
            instance(ci, on_it, &memberships)
        })
        .collect();
    Ok(Read::Found(Inventory { instances, groups, daemon_groups: daemons }))
}

/// Groups owned by a capacity provider of this cluster with managed scaling on (by group name);
/// `None` when the cluster does not exist.
async fn managed_groups(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> Result<Option<HashMap<String, String>>, AwsError> {
    let out = ecs.describe_clusters().clusters(cluster).send().await.map_err(aws("DescribeClusters"))?;
    let Some(found) = out.clusters().iter().find(|c| c.status() != Some("INACTIVE")) else { return Ok(None) };
    let providers = found.capacity_providers();
    let mut managed = HashMap::new();
    if providers.is_empty() {
        return Ok(Some(managed));
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
        let Some(asg) = cp.auto_scaling_group_provider() else { continue };
        let enabled = asg.managed_scaling().and_then(|m| m.status()) == Some(&ManagedScalingStatus::Enabled);
        if enabled {
            managed.insert(
                group_name(asg.auto_scaling_group_arn()).to_owned(),
                cp.name().unwrap_or_default().to_owned(),
            );
        }
    }
    Ok(Some(managed))
}

/// A capacity provider names its group by ARN (`...:autoScalingGroupName/<name>`) or by name.
fn group_name(arn_or_name: &str) -> &str {
    arn_or_name.rsplit_once(":autoScalingGroupName/").map_or(arn_or_name, |(_, name)| name)
}

/// The task groups (`service:<name>`) of the cluster's daemon services.
async fn daemon_groups(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<BTreeSet<String>, AwsError> {
    let arns: Vec<String> = ecs
        .list_services()
        .cluster(cluster)
        .scheduling_strategy(SchedulingStrategy::Daemon)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("ListServices"))?;
    Ok(arns.iter().filter_map(|a| a.rsplit('/').next()).map(|name| format!("service:{name}")).collect())
}

/// Every task with desired status RUNNING, daemon tasks left out, by container instance ARN.
async fn running_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    daemons: &BTreeSet<String>,
) -> Result<HashMap<String, Vec<Task>>, AwsError> {
    let arns: Vec<String> = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(DesiredStatus::Running)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("ListTasks"))?;
    let mut by_instance: HashMap<String, Vec<Task>> = HashMap::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let out = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(batch.to_vec()))
            .send()
            .await
            .map_err(aws("DescribeTasks"))?;
        for task in out.tasks() {
            let (Some(instance), false) =
                (task.container_instance_arn(), task.group().is_some_and(|g| daemons.contains(g)))
            else {
                continue; // Fargate tasks have no instance; daemon tasks leave with theirs.
            };
            by_instance
                .entry(instance.to_owned())
                .or_default()
                .push(Task { reserved: task_reservation(task) });
        }
    }
    Ok(by_instance)
}

/// A task's reservation: the task-level size when the task definition sets one, otherwise the sum over
/// its containers (CPU, and the soft memory limit where set, as the scheduler reserves).
pub fn task_reservation(task: &aws_sdk_ecs::types::Task) -> Resources {
    let int = |s: Option<&str>| s.and_then(|v| v.trim().parse::<i64>().ok());
    let containers = task.containers();
    let cpu = int(task.cpu()).unwrap_or_else(|| containers.iter().filter_map(|c| int(c.cpu())).sum());
    let memory = int(task.memory()).unwrap_or_else(|| {
        containers.iter().filter_map(|c| int(c.memory_reservation()).or_else(|| int(c.memory()))).sum()
    });
    Resources::new(cpu, memory)
}

async fn memberships(
    autoscaling: &aws_sdk_autoscaling::Client,
    ids: &[String],
) -> Result<HashMap<String, Membership>, AwsError> {
    let mut out = HashMap::new();
    for batch in ids.chunks(ASG_INSTANCES_BATCH) {
        let found: Vec<_> = autoscaling
            .describe_auto_scaling_instances()
            .set_instance_ids(Some(batch.to_vec()))
            .max_records(50)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws("DescribeAutoScalingInstances"))?;
        for i in found {
            let (Some(id), Some(group)) = (i.instance_id(), i.auto_scaling_group_name()) else { continue };
            out.insert(
                id.to_owned(),
                Membership {
                    group: group.to_owned(),
                    availability_zone: i.availability_zone().unwrap_or_default().to_owned(),
                    lifecycle_state: i.lifecycle_state().unwrap_or_default().to_owned(),
                    protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
                },
            );
        }
    }
    Ok(out)
}

async fn groups(
    autoscaling: &aws_sdk_autoscaling::Client,
    names: &BTreeSet<&str>,
    managed: &HashMap<String, String>,
) -> Result<BTreeMap<String, Group>, AwsError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut out = BTreeMap::new();
    for batch in names.chunks(ASG_GROUPS_BATCH) {
        let found: Vec<_> = autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(batch.to_vec()))
            .max_records(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws("DescribeAutoScalingGroups"))?;
        for g in found {
            let Some(name) = g.auto_scaling_group_name() else { continue };
            out.insert(
                name.to_owned(),
                Group {
                    min_size: g.min_size().unwrap_or(0),
                    desired_capacity: g.desired_capacity().unwrap_or(0),
                    managed_by: managed.get(name).cloned(),
                },
            );
        }
    }
    Ok(out)
}

fn resource(list: &[aws_sdk_ecs::types::Resource]) -> Resources {
    let get =
        |name: &str| list.iter().find(|r| r.name() == Some(name)).map_or(0, |r| i64::from(r.integer_value()));
    Resources::new(get("CPU"), get("MEMORY"))
}

fn instance(
    ci: &ContainerInstance,
    mut tasks: Vec<Task>,
    memberships: &HashMap<String, Membership>,
) -> Option<Instance> {
    let ec2_instance_id = ci.ec2_instance_id()?.to_owned();
    let registered = resource(ci.registered_resources());
    let remaining = resource(ci.remaining_resources());
    // A task whose size DescribeTasks did not give (no task- or container-level size) is charged what the
    // instance has reserved beyond the tasks whose size is known: never less than it can take.
    let unknown = tasks.iter().filter(|t| t.reserved == Resources::default()).count();
    if unknown > 0 {
        let known = tasks.iter().fold(Resources::default(), |s, t| s.plus(t.reserved));
        let rest = Resources::new(
            (registered.cpu - remaining.cpu - known.cpu).max(0),
            (registered.memory - remaining.memory - known.memory).max(0),
        );
        for t in tasks.iter_mut().filter(|t| t.reserved == Resources::default()) {
            t.reserved = rest;
        }
    }
    let registered_at =
        ci.registered_at().and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
    Some(Instance {
        container_instance_arn: ci.container_instance_arn()?.to_owned(),
        status: InstanceStatus::of(ci.status()),
        agent_connected: ci.agent_connected(),
        registered_at,
        registered,
        remaining,
        tasks,
        pending_tasks: ci.pending_tasks_count(),
        drained_by_us_at: ci
            .attributes()
            .iter()
            .find(|a| a.name() == MARKER)
            .map(|a| a.value().unwrap_or_default().to_owned()),
        membership: memberships.get(&ec2_instance_id).cloned(),
        ec2_instance_id,
    })
}
