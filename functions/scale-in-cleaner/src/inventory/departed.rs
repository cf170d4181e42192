//! The services whose tasks left the instances this function drained and that now run nothing:
//! `ecs:ListTasks` with desired status STOPPED on each ("Recently stopped tasks might appear in the
//! returned results"; they do for at least an hour, ListTasks API reference) and `ecs:DescribeTasks`
//! (100 per call) for their groups. What the backstop looks at before such an instance is terminated.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ecs::types::DesiredStatus;
use futures_util::{StreamExt, TryStreamExt, stream};
use shared::AwsError;
use shared::error::aws;

use super::CONCURRENCY;
use crate::plan::Departed;

/// For each of `instances`, the services of the tasks ECS lists as stopped on it; `Unknown` where one of
/// them could not be described.
pub async fn services(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    instances: &[String],
) -> Result<HashMap<String, Departed>, AwsError> {
    let listed: Vec<Vec<String>> = stream::iter(instances)
        .map(|instance| async move {
            ecs.list_tasks()
                .cluster(cluster)
                .container_instance(instance)
                .desired_status(DesiredStatus::Stopped)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws("ListTasks"))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let arns: Vec<String> = listed.iter().flatten().cloned().collect();
    let mut found: HashMap<String, BTreeSet<String>> =
        instances.iter().map(|i| (i.clone(), BTreeSet::new())).collect();
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    if !arns.is_empty() {
        let described = shared::ecs::describe_tasks(ecs, cluster, &arns).await?;
        // A stopped task ECS lists but cannot describe could be of any service: its instance's answer is
        // unknown, and it is not terminated on a guess.
        for (arn, _) in &described.failed {
            let on = listed.iter().zip(instances).find(|(arns, _)| arns.contains(arn));
            unknown.extend(on.map(|(_, i)| i.as_str()));
        }
        for t in described.tasks {
            let (Some(instance), Some(service)) =
                (t.container_instance_arn(), t.group().and_then(|g| g.strip_prefix("service:")))
            else {
                continue;
            };
            if let Some(set) = found.get_mut(instance) {
                set.insert(service.to_owned());
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(i, set)| {
            let departed =
                if unknown.contains(i.as_str()) { Departed::Unknown } else { Departed::Known(set) };
            (i, departed)
        })
        .collect())
}
