//! ECS pieces the drainers and the scale-in cleaner share.
//!
//! API calls: `ecs:ListClusters` (only when every cluster is in scope), `ecs:ListContainerInstances`,
//! `ecs:DescribeContainerInstances`, `ecs:UpdateContainerInstancesState`, `ecs:ListTasks`,
//! `ecs:DescribeTasks`.

use aws_sdk_ecs::Client;
use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Attribute, ContainerInstance, ContainerInstanceStatus, DesiredStatus, TargetType, Task,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::edge::Internal;
use crate::error::{AwsError, aws};
use crate::events::InstanceId;

mod scope;
pub use scope::ClusterScope;

/// `DescribeContainerInstances` and `DescribeTasks` take at most 100 ARNs per call.
pub const DESCRIBE_BATCH: usize = 100;
/// `UpdateContainerInstancesState` takes at most 10 ARNs per call.
pub const UPDATE_STATE_BATCH: usize = 10;
/// Clusters searched at once when looking for an instance: enough to answer within one or two round
/// trips for a typical account, few enough not to trip ECS's request rate limits.
const CLUSTER_SEARCH_CONCURRENCY: usize = 8;
/// `Describe*` batches of one cluster sent at once: a 1,000-instance cluster is read in one or two round
/// trips, within ECS's request rate limits.
pub const DESCRIBE_CONCURRENCY: usize = 8;

/// A container instance's status, as ECS reports it
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerInstance.html>).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    Active,
    Draining,
    Registering,
    Deregistering,
    RegistrationFailed,
    Inactive,
    /// A status this code does not know (or none): never acted on.
    Unknown,
}

impl InstanceStatus {
    pub fn of(status: Option<&str>) -> Self {
        status.and_then(|s| s.parse().ok()).unwrap_or(InstanceStatus::Unknown)
    }
}

/// What we know of a container instance after `DescribeContainerInstances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// The cluster as configured (name or ARN).
    pub cluster: String,
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    pub running_tasks: i32,
    pub pending_tasks: i32,
    pub agent_connected: bool,
    /// Its attributes with a value (custom ones, such as our drain markers, among them).
    pub attributes: BTreeMap<String, String>,
}

impl Found {
    fn from_described(cluster: &str, ci: &ContainerInstance) -> Option<Self> {
        Some(Found {
            cluster: cluster.to_owned(),
            container_instance_arn: ci.container_instance_arn()?.to_owned(),
            ec2_instance_id: ci.ec2_instance_id()?.to_owned(),
            status: InstanceStatus::of(ci.status()),
            running_tasks: ci.running_tasks_count(),
            pending_tasks: ci.pending_tasks_count(),
            agent_connected: ci.agent_connected(),
            attributes: ci
                .attributes()
                .iter()
                .filter_map(|a| Some((a.name().to_owned(), a.value()?.to_owned())))
                .collect(),
        })
    }
}

/// The result of looking for an EC2 instance across clusters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Search {
    pub found: Option<Found>,
    /// Configured clusters that do not exist (deleted since deploy, or a typo): skipped, reported.
    pub missing_clusters: Vec<String>,
}

enum InCluster {
    Found(Found),
    NotHere,
    NoSuchCluster,
}

/// Finds the container instance of `instance_id` in `clusters`: `ListContainerInstances` with an
/// `ec2InstanceId` filter in each cluster (several at once, stopping at the first hit, in cluster order),
/// then `DescribeContainerInstances` to confirm the instance id before anyone acts on it.
pub async fn find_container_instance(
    ecs: &Client,
    clusters: &[String],
    instance_id: &InstanceId,
) -> Result<Search, AwsError> {
    let mut search = Search::default();
    let mut results = stream::iter(clusters)
        .map(|cluster| async move { (cluster, search_cluster(ecs, cluster, instance_id).await) })
        .buffered(CLUSTER_SEARCH_CONCURRENCY);
    while let Some((cluster, result)) = results.next().await {
        match result? {
            InCluster::Found(found) => {
                search.found = Some(found);
                break;
            }
            InCluster::NotHere => {}
            InCluster::NoSuchCluster => search.missing_clusters.push(cluster.clone()),
        }
    }
    Ok(search)
}

async fn search_cluster(
    ecs: &Client,
    cluster: &str,
    instance_id: &InstanceId,
) -> Result<InCluster, AwsError> {
    // An `InstanceId` was checked when the event was parsed: nothing else can reach the expression.
    let filter = format!("ec2InstanceId == {instance_id}");
    let arns = match list_container_instances(ecs, cluster, Some(&filter), None).await {
        Ok(arns) => arns,
        Err(e) if e.code_is("ClusterNotFoundException") => return Ok(InCluster::NoSuchCluster),
        Err(e) => return Err(e),
    };
    if arns.is_empty() {
        return Ok(InCluster::NotHere);
    }
    let described = describe_container_instances(ecs, cluster, &arns).await?;
    Ok(described
        .into_iter()
        .find(|f| f.ec2_instance_id == instance_id.as_str())
        .map_or(InCluster::NotHere, InCluster::Found))
}

/// Every page of `ListContainerInstances` (100 a page), with a cluster query language `filter` and a
/// `status` when given (without one, every status but INACTIVE).
pub async fn list_container_instances(
    ecs: &Client,
    cluster: &str,
    filter: Option<&str>,
    status: Option<ContainerInstanceStatus>,
) -> Result<Vec<String>, AwsError> {
    ecs.list_container_instances()
        .cluster(cluster)
        .set_filter(filter.map(str::to_owned))
        .set_status(status)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws("ListContainerInstances"))
}

/// `DescribeContainerInstances` in batches of 100. ARNs ECS reports as failures (deregistered meanwhile)
/// are left out.
pub async fn describe_container_instances(
    ecs: &Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<Found>, AwsError> {
    Ok(describe_container_instances_in_full(ecs, cluster, arns)
        .await?
        .iter()
        .filter_map(|ci| Found::from_described(cluster, ci))
        .collect())
}

/// [`describe_container_instances`] with everything ECS returns (resources, attributes, registration
/// time), for callers that need more than [`Found`]: 100 per call, up to [`DESCRIBE_CONCURRENCY`] calls at
/// once, in the order of `arns`. ARNs ECS reports as failures (deregistered meanwhile) are left out.
pub async fn describe_container_instances_in_full(
    ecs: &Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<ContainerInstance>, AwsError> {
    let pages: Vec<Vec<ContainerInstance>> = stream::iter(arns.chunks(DESCRIBE_BATCH))
        .map(|batch| async move {
            let out = ecs
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(batch.to_vec()))
                .send()
                .await
                .map_err(aws("DescribeContainerInstances"))?;
            Ok::<_, AwsError>(out.container_instances.unwrap_or_default())
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(pages.into_iter().flatten().collect())
}

/// What `DescribeTasks` answered.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub tasks: Vec<Task>,
    /// ARNs it answered with a failure, and the reason: `MISSING` for a task it does not know, which
    /// may be one just started, since the ECS API is eventually consistent ("the result of an API command
    /// ... might not be immediately visible to all subsequent commands", API_RunTask.html). A task just
    /// listed and then missing is not a task gone.
    pub failed: Vec<(String, String)>,
}

/// `DescribeTasks` of `arns`: 100 per call, up to [`DESCRIBE_CONCURRENCY`] calls at once, in the order of
/// `arns`.
pub async fn describe_tasks(ecs: &Client, cluster: &str, arns: &[String]) -> Result<Described, AwsError> {
    let pages: Vec<Described> = stream::iter(arns.chunks(DESCRIBE_BATCH))
        .map(|batch| async move {
            let out = ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(aws("DescribeTasks"))?;
            let failed = out
                .failures()
                .iter()
                .map(|f| (f.arn().unwrap_or_default().to_owned(), f.reason().unwrap_or("UNKNOWN").to_owned()))
                .collect();
            Ok::<_, AwsError>(Described { tasks: out.tasks.unwrap_or_default(), failed })
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(pages.into_iter().fold(Described::default(), |mut all, page| {
        all.tasks.extend(page.tasks);
        all.failed.extend(page.failed);
        all
    }))
}

/// What `UpdateContainerInstancesState` did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StateChange {
    /// ARNs ECS accepted.
    pub updated: Vec<String>,
    /// ARNs ECS refused, with its reason; the call itself answers HTTP 200 for these.
    pub failures: Vec<StateFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateFailure {
    pub arn: String,
    pub reason: String,
}

/// Sets container instances to `status` (DRAINING or ACTIVE), 10 per call, reading the per-instance
/// failures. Setting the status an instance already has is accepted by ECS, so this is idempotent.
pub async fn set_status(
    ecs: &Client,
    cluster: &str,
    arns: &[String],
    status: ContainerInstanceStatus,
) -> Result<StateChange, AwsError> {
    let mut change = StateChange::default();
    for batch in arns.chunks(UPDATE_STATE_BATCH) {
        let resp = ecs
            .update_container_instances_state()
            .cluster(cluster)
            .set_container_instances(Some(batch.to_vec()))
            .status(status.clone())
            .send()
            .await
            .map_err(aws("UpdateContainerInstancesState"))?;
        change.updated.extend(
            resp.container_instances().iter().filter_map(|ci| ci.container_instance_arn().map(str::to_owned)),
        );
        change.failures.extend(resp.failures().iter().map(|f| StateFailure {
            arn: f.arn().unwrap_or_default().to_owned(),
            reason: match (f.reason(), f.detail()) {
                (Some(r), Some(d)) => format!("{r}: {d}"),
                (r, d) => r.or(d).unwrap_or("unknown").to_owned(),
            },
        }));
    }
    Ok(change)
}

/// `PutAttributes` and `DeleteAttributes` take up to 10 attributes per call.
const ATTRIBUTE_BATCH: usize = 10;

/// Sets the attribute `name` to `value` on each container instance, or deletes it with `None` (custom
/// attributes are deleted by name and target, "don't specify the value",
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteAttributes.html>). Names allow
/// letters, digits, `-`, `_`, `/`, `\` and `.`; values also `:`, `@` and spaces (API_Attribute.html).
pub async fn set_attribute(
    ecs: &Client,
    cluster: &str,
    arns: &[String],
    name: &str,
    value: Option<&str>,
) -> Result<(), Failure> {
    for batch in arns.chunks(ATTRIBUTE_BATCH) {
        let attributes = batch
            .iter()
            .map(|arn| {
                Attribute::builder()
                    .name(name)
                    .set_value(value.map(str::to_owned))
                    .target_type(TargetType::ContainerInstance)
                    .target_id(arn)
                    .build()
                    .map_err(|e| Internal::new("building a container-instance attribute", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if value.is_some() {
            let call = ecs.put_attributes().cluster(cluster).set_attributes(Some(attributes));
            call.send().await.map_err(aws("PutAttributes"))?;
        } else {
            let call = ecs.delete_attributes().cluster(cluster).set_attributes(Some(attributes));
            call.send().await.map_err(aws("DeleteAttributes"))?;
        }
    }
    Ok(())
}

/// An AWS call that failed, or a bug of ours before it could be made.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A task that has not reached STOPPED yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskLeft {
    pub task_arn: String,
    pub last_status: String,
    /// `service:<name>` for service tasks, `family:<name>` (or what the starter set) otherwise.
    pub group: Option<String>,
}

/// Whether a task still occupies the instance. Everything short of STOPPED counts: PROVISIONING and
/// PENDING tasks are about to run, DEACTIVATING and STOPPING ones still serve their last requests. A task
/// with no status yet is counted too; counting one too many only makes us wait a poll longer.
pub fn occupies_instance(last_status: Option<&str>) -> bool {
    last_status != Some("STOPPED")
}

/// Every task on a container instance that is not STOPPED. `runningTasksCount` alone misses tasks that
/// were told to stop but have not yet (desired STOPPED, last status still RUNNING), so both desired
/// statuses are listed and each task's last status is read with `DescribeTasks`.
pub async fn tasks_left(
    ecs: &Client,
    cluster: &str,
    container_instance_arn: &str,
) -> Result<Vec<TaskLeft>, AwsError> {
    let mut arns = Vec::new();
    for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let page: Vec<String> = ecs
            .list_tasks()
            .cluster(cluster)
            .container_instance(container_instance_arn)
            .desired_status(desired)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws("ListTasks"))?;
        arns.extend(page);
    }
    arns.sort_unstable();
    arns.dedup();
    let described = describe_tasks(ecs, cluster, &arns).await?;
    let left = described.tasks.iter().filter(|t| occupies_instance(t.last_status())).map(|t| TaskLeft {
        task_arn: t.task_arn().unwrap_or_default().to_owned(),
        last_status: t.last_status().unwrap_or("UNKNOWN").to_owned(),
        group: t.group().map(str::to_owned),
    });
    // A task ECS listed on the instance but could not describe may be one just placed there: it is
    // counted as left until ECS either describes it or stops listing it.
    let undescribed = described.failed.into_iter().map(|(task_arn, reason)| TaskLeft {
        task_arn,
        last_status: format!("UNDESCRIBED ({reason})"),
        group: None,
    });
    Ok(left.chain(undescribed).collect())
}

#[cfg(test)]
mod tests;
