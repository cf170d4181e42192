//! The spot-drainer's AWS calls: find the container instance (`ecs:ListClusters` when every cluster is in
//! scope, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`), mark it (`ecs:PutAttributes`,
//! `ecs:DeleteAttributes`), drain it and undo the drain (`ecs:UpdateContainerInstancesState`), ask Auto
//! Scaling where the instance is (`autoscaling:DescribeAutoScalingInstances`), whether its group waits for
//! a drain (`autoscaling:DescribeLifecycleHooks`) and have it replaced
//! (`autoscaling:TerminateInstanceInAutoScalingGroup`).

use aws_sdk_ecs::types::ContainerInstanceStatus;
use serde::Serialize;
use shared::autoscaling;
use shared::ecs::{self, Found, InstanceStatus, Search};
use shared::error::aws;
use shared::events::InstanceId;

use crate::decide::{Marker, Room};
use crate::{Deps, Error};

/// The container-instance attribute that marks a drain of ours that may be undone (a stop, a hibernation,
/// scheduled maintenance, a careful rebalance): `<trigger>@<time>`. Only an instance carrying it is ever set
/// back to ACTIVE.
pub const MARKER: &str = "shipshape.spot-drainer.drained-for";

/// Our marker on the instance, if it carries one.
pub fn marker(found: &Found) -> Option<Marker> {
    found.attributes.get(MARKER).and_then(|v| Marker::parse(v))
}

pub async fn find(deps: &Deps, instance_id: &InstanceId) -> Result<Search, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    Ok(ecs::find_container_instance(&deps.ecs, &clusters, instance_id).await?)
}

/// The instance's lifecycle state when it is in a group but not in service there (its group is removing
/// it, or it stands by): ACTIVE would let ECS place tasks on a machine about to go.
pub async fn leaving(deps: &Deps, instance_id: &str) -> Result<Option<String>, Error> {
    Ok(autoscaling::in_group(&deps.autoscaling, instance_id)
        .await?
        .filter(|g| g.state != "InService")
        .map(|g| g.state))
}

/// Whether the group has a terminating lifecycle hook: one holds an instance in `Terminating:Wait` until
/// its tasks are gone (the lifecycle-drainer answers it); without one a termination is immediate.
async fn has_terminating_hook(deps: &Deps, group: &str) -> Result<bool, Error> {
    let out = deps
        .autoscaling
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(group)
        .send()
        .await
        .map_err(aws("DescribeLifecycleHooks"))?;
    Ok(out
        .lifecycle_hooks()
        .iter()
        .any(|h| h.lifecycle_transition() == Some("autoscaling:EC2_INSTANCE_TERMINATING")))
}

/// Sets the instance DRAINING; ECS's per-instance refusal is an error. With a marker, the marker goes on
/// first, so that a DRAINING instance of ours that may be undone always carries it.
pub async fn drain(deps: &Deps, found: &Found, marker: Option<Marker>) -> Result<(), Error> {
    if let Some(m) = marker {
        set_marker(deps, found, Some(m)).await?;
    }
    set_status(deps, found, ContainerInstanceStatus::Draining).await
}

/// Sets the instance ACTIVE again, then takes our marker off.
pub async fn reactivate(deps: &Deps, found: &Found) -> Result<(), Error> {
    set_status(deps, found, ContainerInstanceStatus::Active).await?;
    set_marker(deps, found, None).await
}

/// Puts our marker on (`Some`) or takes it off (`None`).
pub async fn set_marker(deps: &Deps, found: &Found, marker: Option<Marker>) -> Result<(), Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    let value = marker.map(|m| m.value());
    Ok(ecs::set_attribute(&deps.ecs, &found.cluster, arns, MARKER, value.as_deref()).await?)
}

async fn set_status(deps: &Deps, found: &Found, status: ContainerInstanceStatus) -> Result<(), Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    let change = ecs::set_status(&deps.ecs, &found.cluster, arns, status).await?;
    match change.failures.into_iter().next() {
        Some(failure) => Err(Error::DrainRejected {
            container_instance_arn: found.container_instance_arn.clone(),
            reason: failure.reason,
        }),
        None => Ok(()),
    }
}

/// The other ACTIVE instances of the instance's cluster whose agent is connected: where its tasks can go.
pub async fn others_in_cluster(deps: &Deps, found: &Found) -> Result<Vec<Room>, Error> {
    let arns =
        ecs::list_container_instances(&deps.ecs, &found.cluster, None, Some(ContainerInstanceStatus::Active))
            .await?;
    let others: Vec<String> = arns.into_iter().filter(|a| *a != found.container_instance_arn).collect();
    let described = ecs::describe_container_instances_in_full(&deps.ecs, &found.cluster, &others).await?;
    Ok(described
        .iter()
        .filter(|ci| ci.agent_connected() && InstanceStatus::of(ci.status()) == InstanceStatus::Active)
        .map(|ci| room(ci.registered_resources(), ci.remaining_resources()))
        .collect())
}

/// The instance's own room, read again with its resources.
pub async fn room_of(deps: &Deps, found: &Found) -> Result<Room, Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    let described = ecs::describe_container_instances_in_full(&deps.ecs, &found.cluster, arns).await?;
    Ok(described
        .first()
        .map(|ci| room(ci.registered_resources(), ci.remaining_resources()))
        .unwrap_or_default())
}

fn room(registered: &[aws_sdk_ecs::types::Resource], remaining: &[aws_sdk_ecs::types::Resource]) -> Room {
    let get = |list: &[aws_sdk_ecs::types::Resource], name: &str| {
        list.iter().find(|r| r.name() == Some(name)).map_or(0, |r| i64::from(r.integer_value()))
    };
    Room {
        registered: (get(registered, "CPU"), get(registered, "MEMORY")),
        remaining: (get(remaining, "CPU"), get(remaining, "MEMORY")),
    }
}

/// Every DRAINING container instance carrying our marker, in the configured clusters.
pub async fn marked(deps: &Deps) -> Result<Vec<Found>, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    let filter = format!("attribute:{MARKER} exists");
    let mut out = Vec::new();
    for cluster in &clusters {
        let listed = ecs::list_container_instances(
            &deps.ecs,
            cluster,
            Some(&filter),
            Some(ContainerInstanceStatus::Draining),
        );
        let arns = match listed.await {
            Ok(arns) => arns,
            Err(e) if e.code_is("ClusterNotFoundException") => continue,
            Err(e) => return Err(e.into()),
        };
        out.extend(ecs::describe_container_instances(&deps.ecs, cluster, &arns).await?);
    }
    Ok(out)
}

/// What became of a replacement asked for before scheduled maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub enum Replacement {
    /// The group terminates it and launches another; no task runs on it any more, or the group's
    /// terminating lifecycle hook holds it until none does.
    Requested,
    /// Not yet: tasks still run on it and its group has no terminating lifecycle hook, so a termination
    /// now would stop them un-drained. The sweep asks again once they have moved.
    Deferred(String),
    /// Not in an Auto Scaling group, not in service there, or its group is not one of
    /// `AUTO_SCALING_GROUPS`: nothing to replace it.
    NotInAGroup(String),
    /// The group refused, for now (a scaling activity in progress, ...): the drain stands.
    Refused(String),
}

/// Has the instance's Auto Scaling group replace it: `TerminateInstanceInAutoScalingGroup` without
/// decrementing the desired capacity, so the group launches a replacement. Only once nothing would be
/// stopped un-drained: no task is left on it (`found` as described after the drain), or the group's
/// terminating lifecycle hook holds the instance until none is.
pub async fn replace(deps: &Deps, found: &Found) -> Result<Replacement, Error> {
    let Some(place) = autoscaling::in_group(&deps.autoscaling, &found.ec2_instance_id).await? else {
        return Ok(Replacement::NotInAGroup("not in an Auto Scaling group".into()));
    };
    if place.state != "InService" {
        return Ok(Replacement::NotInAGroup(format!("Auto Scaling has it {}", place.state)));
    }
    let groups = &deps.config.groups;
    if !groups.is_empty() && !groups.contains(&place.group) {
        return Ok(Replacement::NotInAGroup(format!("group {} is not in AUTO_SCALING_GROUPS", place.group)));
    }
    let tasks = found.running_tasks + found.pending_tasks;
    if tasks > 0 && !has_terminating_hook(deps, &place.group).await? {
        return Ok(Replacement::Deferred(format!(
            "{tasks} tasks still on it and group {} has no terminating lifecycle hook to wait for them",
            place.group
        )));
    }
    let result = deps
        .autoscaling
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&found.ec2_instance_id)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .map_err(aws("TerminateInstanceInAutoScalingGroup"));
    match result {
        Ok(_) => Ok(Replacement::Requested),
        Err(e)
            if ["ValidationError", "ScalingActivityInProgress", "ResourceContention"]
                .iter()
                .any(|c| e.code_is(c)) =>
        {
            Ok(Replacement::Refused(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}
