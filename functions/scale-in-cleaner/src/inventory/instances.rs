//! Container instances: `ecs:ListContainerInstances` (100 per page) and `ecs:DescribeContainerInstances`
//! (100 per call, the batches at once, through `shared::ecs`), and what the planner reads of each.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ecs::types::{ContainerInstance, Resource};
use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::ecs::{InstanceStatus, describe_container_instances_in_full};
use shared::error::aws;

use shared::drain::marker::{Marker, Owner};

use super::STALLED_MARKER;
use crate::plan::{HostPort, Instance, Membership, Protocol, Resources};

/// Every container instance of the cluster, described; `None` when the cluster is gone.
pub async fn list(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> Result<Option<Vec<ContainerInstance>>, AwsError> {
    let listed: Result<Vec<String>, _> =
        ecs.list_container_instances().cluster(cluster).into_paginator().items().send().try_collect().await;
    let arns = match listed.map_err(aws("ListContainerInstances")) {
        Ok(arns) => arns,
        Err(e) if e.code_is("ClusterNotFoundException") => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(describe_container_instances_in_full(ecs, cluster, &arns).await?))
}

fn integer(list: &[Resource], name: &str) -> i64 {
    list.iter().find(|r| r.name() == Some(name)).map_or(0, |r| i64::from(r.integer_value()))
}

fn strings<'a>(list: &'a [Resource], name: &str) -> Option<&'a [String]> {
    list.iter().find(|r| r.name() == Some(name)).map(|r| r.string_set_value())
}

/// What ECS has reserved of an instance's CPU and memory.
pub fn resources(list: &[Resource]) -> Resources {
    Resources::new(integer(list, "CPU"), integer(list, "MEMORY"))
}

/// Host ports in use: `remainingResources` lists the reserved ones under `PORTS` and `PORTS_UDP`.
fn ports(list: &[Resource]) -> BTreeSet<HostPort> {
    [("PORTS", Protocol::Tcp), ("PORTS_UDP", Protocol::Udp)]
        .into_iter()
        .flat_map(|(name, protocol)| {
            strings(list, name)
                .unwrap_or_default()
                .iter()
                .filter_map(move |p| Some(HostPort { port: p.trim().parse().ok()?, protocol }))
        })
        .collect()
}

/// Whether an instance runs nothing at all, as ECS counts: no task running or pending, nothing reserved.
/// Stopping tasks still hold their share until they are STOPPED, so an instance with one is not empty.
pub fn runs_nothing(ci: &ContainerInstance) -> bool {
    ci.running_tasks_count() == 0
        && ci.pending_tasks_count() == 0
        && resources(ci.remaining_resources()) == resources(ci.registered_resources())
}

pub fn instance(ci: &ContainerInstance, memberships: &HashMap<String, Membership>) -> Option<Instance> {
    let ec2_instance_id = ci.ec2_instance_id()?.to_owned();
    let remaining = ci.remaining_resources();
    let attributes: BTreeMap<String, Option<String>> =
        ci.attributes().iter().map(|a| (a.name().to_owned(), a.value().map(str::to_owned))).collect();
    let registered_at =
        ci.registered_at().and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
    // Only a held marker of ours makes a drain ours; a pending one (a drain cut short) claims nothing.
    let marker =
        Marker::read(&attributes.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect());
    let stalled_at = attributes
        .get(STALLED_MARKER)
        .and_then(|v| DateTime::parse_from_rfc3339(v.as_deref()?).ok())
        .map(|t| t.with_timezone(&Utc));
    Some(Instance {
        container_instance_arn: ci.container_instance_arn()?.to_owned(),
        status: InstanceStatus::of(ci.status()),
        agent_connected: ci.agent_connected(),
        registered_at,
        registered: resources(ci.registered_resources()),
        remaining: resources(remaining),
        ports_used: ports(remaining),
        // `remainingResources` lists the GPU ids no task has reserved; an instance without any has none.
        gpus_free: u32::try_from(strings(remaining, "GPU").map_or(0, <[String]>::len)).unwrap_or(u32::MAX),
        capacity_provider: ci.capacity_provider_name().map(str::to_owned),
        agent_version: ci.version_info().and_then(|v| v.agent_version()).map(str::to_owned),
        running_tasks: ci.running_tasks_count(),
        pending_tasks: ci.pending_tasks_count(),
        // Known to be empty without a call; the others' tasks are read if the plan needs them.
        tasks: runs_nothing(ci).then(Vec::new),
        // Our own pending marker on a DRAINING instance: our drain happened and its held write failed.
        drained_by_us_at: marker
            .as_ref()
            .filter(|m| {
                m.held_by(Owner::ScaleInCleaner)
                    || (m.owner == Owner::ScaleInCleaner && ci.status() == Some("DRAINING"))
            })
            .map(|m| m.at),
        carries_our_marker: marker.is_some_and(|m| m.owner == Owner::ScaleInCleaner),
        stalled_at,
        departed: None,
        undescribed: false,
        membership: memberships.get(&ec2_instance_id).cloned(),
        attributes,
        ec2_instance_id,
    })
}

/// What a change since planning looks like: the instance as described right before it is drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub running: i32,
    pub pending: i32,
    pub remaining: Resources,
    /// ECS's own change counter ("incremented every time a container instance experiences a change that
    /// triggers a CloudWatch event", API_ContainerInstance.html).
    pub version: i64,
}

impl Fingerprint {
    pub fn of(ci: &ContainerInstance) -> Self {
        Fingerprint {
            status: InstanceStatus::of(ci.status()),
            agent_connected: ci.agent_connected(),
            running: ci.running_tasks_count(),
            pending: ci.pending_tasks_count(),
            remaining: resources(ci.remaining_resources()),
            version: ci.version(),
        }
    }

    /// What differs between the plan's reading (`self`) and now, in words.
    pub fn changes(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        if self.status != now.status {
            out.push(format!("status {} -> {}", self.status, now.status));
        }
        if self.agent_connected != now.agent_connected {
            out.push(format!("agent connected {} -> {}", self.agent_connected, now.agent_connected));
        }
        if (self.running, self.pending) != (now.running, now.pending) {
            out.push(format!(
                "tasks running/pending {}/{} -> {}/{}",
                self.running, self.pending, now.running, now.pending
            ));
        }
        if self.remaining != now.remaining {
            out.push(format!(
                "free CPU/memory {}/{} -> {}/{}",
                self.remaining.cpu, self.remaining.memory, now.remaining.cpu, now.remaining.memory
            ));
        }
        if out.is_empty() && self.version != now.version {
            out.push(format!("version {} -> {}", self.version, now.version));
        }
        out
    }
}
