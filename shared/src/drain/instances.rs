//! Every registration of an EC2 instance in the configured clusters. An agent that registers again leaves
//! its earlier registration behind, disconnected (aws/amazon-ecs-agent#782), so one EC2 instance may have
//! several container instances: a drain drains each, and waits for the tasks of each.
//!
//! API calls: `ecs:ListContainerInstances` (with `ec2InstanceId in [...]`), `ecs:DescribeContainerInstances`.

use std::collections::BTreeMap;

use aws_sdk_ecs::Client;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::ecs::{self, Found, InstanceStatus};
use crate::error::AwsError;
use crate::events::InstanceId;

/// Instance ids in one `ec2InstanceId in [...]` expression: about 1,000 characters, under the 2,000 ECS
/// documents for a placement constraint's expression (it names no limit for `ListContainerInstances`).
const IDS_PER_FILTER: usize = 40;
/// Clusters read at once.
const CLUSTERS_AT_ONCE: usize = 8;

/// The registrations found, by EC2 instance id (an instance ECS does not know is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registrations {
    pub by_instance: BTreeMap<String, Vec<Found>>,
    /// Configured clusters that do not exist (deleted since deploy, or a typo): skipped, reported.
    pub missing_clusters: Vec<String>,
}

impl Registrations {
    /// The instance's registrations (none when ECS does not know it).
    pub fn of(&self, instance_id: &str) -> &[Found] {
        self.by_instance.get(instance_id).map_or(&[], Vec::as_slice)
    }
}

/// Every registration of each of `ids` in `clusters` that is not INACTIVE, in ARN order.
pub async fn registrations(
    ecs: &Client,
    clusters: &[String],
    ids: &[InstanceId],
) -> Result<Registrations, AwsError> {
    let mut found = Registrations::default();
    if ids.is_empty() {
        return Ok(found);
    }
    let mut results = stream::iter(clusters)
        .map(|cluster| async move { (cluster, in_cluster(ecs, cluster, ids).await) })
        .buffered(CLUSTERS_AT_ONCE);
    while let Some((cluster, result)) = results.next().await {
        match result {
            Ok(described) => {
                for f in described.into_iter().filter(|f| f.status != InstanceStatus::Inactive) {
                    found.by_instance.entry(f.ec2_instance_id.clone()).or_default().push(f);
                }
            }
            Err(e) if e.code_is("ClusterNotFoundException") => found.missing_clusters.push(cluster.clone()),
            Err(e) => return Err(e),
        }
    }
    for regs in found.by_instance.values_mut() {
        regs.sort_by(|a, b| a.container_instance_arn.cmp(&b.container_instance_arn));
    }
    Ok(found)
}

async fn in_cluster(ecs: &Client, cluster: &str, ids: &[InstanceId]) -> Result<Vec<Found>, AwsError> {
    let arns: Vec<Vec<String>> = stream::iter(ids.chunks(IDS_PER_FILTER))
        .then(|chunk| async move {
            // Every `InstanceId` was checked when it was parsed: nothing else reaches the expression.
            let listed: Vec<String> = chunk.iter().map(|id| format!("'{id}'")).collect();
            let filter = format!("ec2InstanceId in [{}]", listed.join(", "));
            ecs::list_container_instances(ecs, cluster, Some(&filter), None).await
        })
        .try_collect()
        .await?;
    let arns: Vec<String> = arns.into_iter().flatten().collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<&str> = ids.iter().map(InstanceId::as_str).collect();
    Ok(ecs::describe_container_instances(ecs, cluster, &arns)
        .await?
        .into_iter()
        .filter(|f| wanted.contains(&f.ec2_instance_id.as_str()))
        .collect())
}
