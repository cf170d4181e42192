//! The reconcile's AWS side ([`Effects`]), and the look a stopped task's event takes before it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::autoscaling::{self, Group};
use shared::drain::act::{self, Change};
use shared::drain::hooks::{self, Answered, Hook};
use shared::drain::instances::{self, Registrations};
use shared::drain::{Marker, tasks};
use shared::ecs::{self, Found, InstanceStatus, TaskLeft};
use shared::events::InstanceId;

use crate::input::TaskStopped;
use crate::reconcile::{Effects, Scope};
use crate::{Deps, Error, LifecycleResult};

/// The AWS side of a pass.
#[derive(Debug)]
pub struct Aws<'a> {
    pub deps: &'a Deps,
}

impl Effects for Aws<'_> {
    async fn groups(&self, scope: &Scope) -> Result<Vec<Group>, Error> {
        let autoscaling = &self.deps.autoscaling;
        match scope {
            Scope::All => Ok(autoscaling::groups(autoscaling, &self.deps.config.groups).await?),
            Scope::Instance(id) => Ok(autoscaling::in_group(autoscaling, id.as_str())
                .await?
                .map(|g| Group {
                    name: g.group,
                    instances: BTreeMap::from([(id.to_string(), g.state)]),
                    has_warm_pool: false,
                })
                .into_iter()
                .collect()),
        }
    }

    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, Error> {
        Ok(hooks::hooks(&self.deps.autoscaling, group).await?)
    }

    async fn began(
        &self,
        group: &str,
        instances: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, Error> {
        Ok(autoscaling::activity_starts(&self.deps.autoscaling, group, instances).await?)
    }

    async fn registrations(&self, ids: &[InstanceId]) -> Result<Registrations, Error> {
        let clusters = self.deps.config.clusters.resolve(&self.deps.ecs).await?;
        if !ids.is_empty() {
            // One ListContainerInstances per 40 instances and one DescribeContainerInstances per 100, per
            // cluster (about: a call more or less changes nothing).
            let per_cluster = ids.len().div_ceil(40) + ids.len().div_ceil(100);
            self.deps.reads.take(calls(per_cluster * clusters.len())).await;
        }
        Ok(instances::registrations(&self.deps.ecs, &clusters, ids).await?)
    }

    async fn tasks_left(&self, registrations: &[Found]) -> Result<Vec<TaskLeft>, AwsError> {
        // ListTasks twice (each desired status) and DescribeTasks, per registration.
        self.deps.reads.take(calls(3 * registrations.len())).await;
        tasks::tasks_left(&self.deps.ecs, registrations).await
    }

    async fn drain(&self, cluster: &str, targets: &[Found], marker: &Marker) -> Result<Change, Error> {
        Ok(act::drain(&self.deps.ecs, cluster, targets, Some(marker)).await?)
    }

    async fn mark(&self, cluster: &str, targets: &[Found], marker: &Marker) -> Result<(), Error> {
        Ok(act::mark(&self.deps.ecs, cluster, targets, marker).await?)
    }

    async fn undo(&self, cluster: &str, targets: &[Found]) -> Result<Change, Error> {
        Ok(act::undo(&self.deps.ecs, cluster, targets).await?)
    }

    async fn heartbeat(&self, hook: &Hook, instance_id: &str) -> Result<Answered, Error> {
        Ok(hooks::heartbeat(&self.deps.autoscaling, hook, instance_id).await?)
    }

    async fn complete(
        &self,
        hook: &Hook,
        instance_id: &str,
        result: LifecycleResult,
    ) -> Result<Answered, Error> {
        Ok(hooks::complete(&self.deps.autoscaling, hook, instance_id, result.as_str()).await?)
    }
}

/// The instance a stopped task ran on, if it may be one we drain: a task stopped on a container instance of
/// a cluster we serve, DRAINING. A warm sandbox that has reconciled knows the instances it drains and
/// answers the others without a call. Why not, otherwise.
pub async fn stopped_scope(deps: &Deps, t: &TaskStopped) -> Result<Result<Scope, String>, Error> {
    let Some(cluster) = deps.config.clusters.covers(&t.cluster_arn) else {
        return Ok(Err(format!("cluster {} is not in CLUSTERS", t.cluster_arn)));
    };
    let known = deps.memory.with(|m| (m.synced, m.draining.contains(&t.container_instance_arn)));
    if known == (true, false) {
        return Ok(Err("the task's container instance is not draining for a lifecycle action".into()));
    }
    let arns = std::slice::from_ref(&t.container_instance_arn);
    deps.reads.take(1).await;
    let described = match ecs::describe_container_instances(&deps.ecs, &cluster, arns).await {
        Ok(d) => d,
        Err(e) if e.code_is("ClusterNotFoundException") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let Some(found) = described.into_iter().find(|f| f.status == InstanceStatus::Draining) else {
        return Ok(Err("the task's container instance is not DRAINING".into()));
    };
    // Not the last task: the look is left to the stop of the last one (or to the schedule). A drain of a
    // whole batch sends one event per task, and each would otherwise cost a full look.
    if found.running_tasks + found.pending_tasks > 0 {
        return Ok(Err(format!(
            "{} task(s) still on its container instance",
            found.running_tasks + found.pending_tasks
        )));
    }
    match InstanceId::parse("ec2InstanceId", &found.ec2_instance_id) {
        Ok(id) => Ok(Ok(Scope::Instance(id))),
        Err(e) => Ok(Err(e.to_string())),
    }
}

fn calls(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
