//! The spot-drainer's AWS calls: find the container instance (`ecs:ListClusters` when every cluster is in
//! scope, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`), mark it (`ecs:PutAttributes`,
//! `ecs:DeleteAttributes`), drain it and undo the drain (`ecs:UpdateContainerInstancesState`), and ask
//! Auto Scaling whether an instance to reactivate is in service (`autoscaling:DescribeAutoScalingInstances`).

use aws_sdk_ecs::types::ContainerInstanceStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use shared::ecs::{self, Found, Search};
use shared::error::aws;
use shared::events::InstanceId;

/// The container-instance attribute that marks a drain of ours for an interruption the instance may come
/// back from (`stop`, `hibernate`); its value is when. Only an instance carrying it is ever set back to
/// ACTIVE.
pub const MARKER: &str = "shipshape.spot-drainer.drained-at";

/// When we drained the instance, from its marker.
pub fn drained_at(found: &Found) -> Option<DateTime<Utc>> {
    found.attributes.get(MARKER).and_then(|v| v.parse().ok())
}

use crate::{Deps, Error};

pub async fn find(deps: &Deps, instance_id: &InstanceId) -> Result<Search, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    Ok(ecs::find_container_instance(&deps.ecs, &clusters, instance_id).await?)
}

/// Sets the instance DRAINING; ECS's per-instance refusal is an error. With `mark_at`, the marker goes on
/// first, so that a DRAINING instance of ours always carries it.
pub async fn drain(deps: &Deps, found: &Found, mark_at: Option<DateTime<Utc>>) -> Result<(), Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    if let Some(at) = mark_at {
        let value = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        ecs::set_attribute(&deps.ecs, &found.cluster, arns, MARKER, Some(&value)).await?;
    }
    set_status(deps, found, ContainerInstanceStatus::Draining).await
}

/// The instance's lifecycle state in its Auto Scaling group; `None` when it is in none.
pub async fn lifecycle_state(deps: &Deps, instance_id: &InstanceId) -> Result<Option<String>, Error> {
    let out = deps
        .autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance_id.as_str())
        .send()
        .await
        .map_err(aws("DescribeAutoScalingInstances"))?;
    Ok(out.auto_scaling_instances().first().and_then(|i| i.lifecycle_state()).map(str::to_owned))
}

/// Sets the instance ACTIVE again, then takes our marker off.
pub async fn reactivate(deps: &Deps, found: &Found) -> Result<(), Error> {
    set_status(deps, found, ContainerInstanceStatus::Active).await?;
    unmark(deps, found).await
}

/// Takes our marker off.
pub async fn unmark(deps: &Deps, found: &Found) -> Result<(), Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    Ok(ecs::set_attribute(&deps.ecs, &found.cluster, arns, MARKER, None).await?)
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
