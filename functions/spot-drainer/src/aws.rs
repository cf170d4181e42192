//! The spot-drainer's AWS calls. ECS: find every registration of an instance (`ecs:ListClusters` when
//! every cluster is in scope, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`), drain and
//! undo through the drain core (`ecs:UpdateContainerInstancesState`, `ecs:PutAttributes`,
//! `ecs:DeleteAttributes`), what is left on it (`ecs:ListTasks`, `ecs:DescribeTasks`, before a
//! replacement). EC2: what it says of an instance before a drain is undone or the instance replaced
//! (`ec2:DescribeInstances`, `ec2:DescribeInstanceStatus`). Auto Scaling: where the instance is
//! (`autoscaling:DescribeAutoScalingInstances`), whether its group's terminating hook is ours
//! (`autoscaling:DescribeLifecycleHooks`), and the replacement
//! (`autoscaling:TerminateInstanceInAutoScalingGroup`).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::ContainerInstanceStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::autoscaling::{self, LifecycleState};
use shared::drain::hooks::{self, Transition};
use shared::drain::instances::{self, Registrations};
use shared::drain::marker::{ATTRIBUTE, LEGACY_SPOT};
use shared::drain::{Marker, Owner, tasks};
use shared::ecs::{self, Found, InstanceStatus};
use shared::error::aws;
use shared::events::InstanceId;

use crate::decide::{Ec2, Room, event_over};
use crate::{Deps, Error};

/// Every registration of `ids` in the configured clusters.
pub async fn registrations(deps: &Deps, ids: &[InstanceId]) -> Result<Registrations, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    Ok(instances::registrations(&deps.ecs, &clusters, ids).await?)
}

/// Every container instance of the configured clusters that carries a marker of ours (any phase, any
/// status but INACTIVE).
pub async fn marked(deps: &Deps) -> Result<Vec<Found>, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    let filter = format!("attribute:{ATTRIBUTE} exists or attribute:{LEGACY_SPOT} exists");
    let mut out = Vec::new();
    for cluster in &clusters {
        let arns = match ecs::list_container_instances(&deps.ecs, cluster, Some(&filter), None).await {
            Ok(arns) => arns,
            Err(e) if e.code_is("ClusterNotFoundException") => continue,
            Err(e) => return Err(e.into()),
        };
        out.extend(
            ecs::describe_container_instances(&deps.ecs, cluster, &arns)
                .await?
                .into_iter()
                .filter(|f| Marker::read(&f.attributes).is_some_and(|m| m.owner == Owner::SpotDrainer)),
        );
    }
    Ok(out)
}

/// The container instance as ECS describes it now (to read our marker again right before an undo).
pub async fn again(deps: &Deps, found: &Found) -> Result<Option<Found>, Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    Ok(ecs::describe_container_instances(&deps.ecs, &found.cluster, arns).await?.into_iter().next())
}

/// The instance's lifecycle state when it is in a group but not in service there (its group is removing
/// it, or it stands by): ACTIVE would let ECS place tasks on a machine about to go.
pub async fn leaving(deps: &Deps, instance_id: &str) -> Result<Option<LifecycleState>, Error> {
    Ok(autoscaling::in_group(&deps.autoscaling, instance_id)
        .await?
        .filter(|g| g.state != LifecycleState::InService)
        .map(|g| g.state))
}

/// EC2 instance ids per `DescribeInstances` / `DescribeInstanceStatus` call ("Maximum 100 explicitly
/// specified instance IDs", API_DescribeInstanceStatus.html).
const EC2_IDS_PER_CALL: usize = 100;

/// What EC2 says of each instance: state, launch time, and scheduled events not completed.
pub async fn ec2(deps: &Deps, ids: &[String]) -> Result<BTreeMap<String, Ec2>, Error> {
    let mut facts: BTreeMap<String, Ec2> = ids.iter().map(|i| (i.clone(), Ec2::default())).collect();
    for batch in ids.chunks(EC2_IDS_PER_CALL) {
        let described = match describe_instances(deps, batch).await {
            Ok(instances) => instances,
            // An id EC2 no longer knows (terminated long ago) fails the whole call: each is asked alone.
            Err(e) if e.code_is("InvalidInstanceID.NotFound") => {
                let mut found = Vec::new();
                for one in batch {
                    match describe_instances(deps, std::slice::from_ref(one)).await {
                        Ok(instances) => found.extend(instances),
                        Err(e) if e.code_is("InvalidInstanceID.NotFound") => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                found
            }
            Err(e) => return Err(e.into()),
        };
        for i in described {
            let Some(f) = i.instance_id().and_then(|id| facts.get_mut(id)) else { continue };
            f.state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned());
            f.launched =
                i.launch_time().and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
        }
        let statuses = match describe_statuses(deps, batch).await {
            Ok(statuses) => statuses,
            // As above: an id EC2 forgot fails the request for all the others.
            Err(e) if e.code_is("InvalidInstanceID.NotFound") => {
                let mut found = Vec::new();
                for one in batch {
                    match describe_statuses(deps, std::slice::from_ref(one)).await {
                        Ok(statuses) => found.extend(statuses),
                        Err(e) if e.code_is("InvalidInstanceID.NotFound") => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                found
            }
            Err(e) => return Err(e.into()),
        };
        for s in statuses {
            let Some(f) = s.instance_id().and_then(|id| facts.get_mut(id)) else { continue };
            f.open_events = open_events(s.events());
            f.events_known = true;
        }
    }
    Ok(facts)
}

async fn describe_statuses(
    deps: &Deps,
    ids: &[String],
) -> Result<Vec<aws_sdk_ec2::types::InstanceStatus>, shared::AwsError> {
    let out = deps
        .ec2
        .describe_instance_status()
        .set_instance_ids(Some(ids.to_vec()))
        .include_all_instances(true)
        .send()
        .await
        .map_err(aws("DescribeInstanceStatus"))?;
    Ok(out.instance_statuses().to_vec())
}

async fn describe_instances(
    deps: &Deps,
    ids: &[String],
) -> Result<Vec<aws_sdk_ec2::types::Instance>, shared::AwsError> {
    let out = deps
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(aws("DescribeInstances"))?;
    Ok(out.reservations().iter().flat_map(|r| r.instances()).cloned().collect())
}

fn open_events(events: &[aws_sdk_ec2::types::InstanceStatusEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| !e.description().is_some_and(event_over))
        .filter_map(|e| e.code().map(|c| c.as_str().to_owned()))
        .collect()
}

/// Every instance with a scheduled event EC2 has not completed: what the reconcile drains when a Health
/// notice was lost. Filtered by event code, and paginated (the larger of EC2's two buckets).
pub async fn scheduled(deps: &Deps) -> Result<Vec<String>, Error> {
    let codes = ["instance-retirement", "instance-stop", "instance-reboot", "system-reboot"];
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("event.code")
        .set_values(Some(codes.map(String::from).to_vec()))
        .build();
    let statuses: Vec<_> = deps
        .ec2
        .describe_instance_status()
        .filters(filter)
        .include_all_instances(false)
        .max_results(1000)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("DescribeInstanceStatus"))?;
    Ok(statuses
        .iter()
        .filter(|s| !open_events(s.events()).is_empty())
        .filter_map(|s| s.instance_id().map(str::to_owned))
        .collect())
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

/// What became of a replacement asked for before scheduled maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub enum Replacement {
    /// The group terminates it and launches another; no task runs on it any more, or the group's
    /// terminating lifecycle hook, answered by the lifecycle-drainer, holds it until none does.
    Requested,
    /// Not yet: tasks are still on it and no hook of ours waits for them, so a termination now would stop
    /// them un-drained. The reconcile asks again once they are all STOPPED.
    Deferred(String),
    /// Not in an Auto Scaling group, not in service there, or its group is not one of
    /// `AUTO_SCALING_GROUPS`: nothing to replace it.
    NotInAGroup(String),
    /// The group refused, for now (a scaling activity in progress, ...): the drain stands.
    Refused(String),
}

/// Settle time for the look before a replacement: ECS's task lists are eventually consistent.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Has the instance's Auto Scaling group replace it: `TerminateInstanceInAutoScalingGroup` without
/// decrementing the desired capacity. Only once nothing would be stopped un-drained: every task on every
/// registration is STOPPED (and the drain has settled), or the group has a terminating hook of ours, which
/// holds the instance until that is so. Another tool's hook waits for nobody's drain.
pub async fn replace(deps: &Deps, instance_id: &str, regs: &[Found]) -> Result<Replacement, Error> {
    let Some(place) = autoscaling::in_group(&deps.autoscaling, instance_id).await? else {
        return Ok(Replacement::NotInAGroup("not in an Auto Scaling group".into()));
    };
    if place.state != LifecycleState::InService {
        return Ok(Replacement::NotInAGroup(format!("Auto Scaling has it {}", place.state)));
    }
    let groups = &deps.config.groups;
    if !groups.is_empty() && !groups.contains(&place.group) {
        return Ok(Replacement::NotInAGroup(format!("group {} is not in AUTO_SCALING_GROUPS", place.group)));
    }
    if !waits_for_us(deps, &place.group).await? {
        let left = tasks::tasks_left(&deps.ecs, regs).await?;
        let since = regs.iter().filter_map(|f| Marker::read(&f.attributes)).map(|m| m.at).max();
        let settled = since.is_some_and(|at| tasks::settled(at, Utc::now(), SETTLE));
        if !left.is_empty() || !settled {
            return Ok(Replacement::Deferred(format!(
                "{} task(s) not STOPPED on it{}, and group {} has no terminating hook of ours to wait for them",
                left.len(),
                if settled { "" } else { " (or its drain is too recent to trust the list)" },
                place.group
            )));
        }
    }
    let result = deps
        .autoscaling
        .terminate_instance_in_auto_scaling_group()
        .instance_id(instance_id)
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

/// Whether the group has a terminating hook the lifecycle-drainer answers (its name, and our topic or
/// EventBridge): one holds a terminating instance until its drain is done.
async fn waits_for_us(deps: &Deps, group: &str) -> Result<bool, Error> {
    let names = &deps.config.hooks;
    if names.names.is_empty() {
        return Ok(false);
    }
    Ok(hooks::hooks(&deps.autoscaling, group)
        .await?
        .iter()
        .any(|h| h.transition == Transition::Terminating && names.ours(h)))
}
