//! The spot-drainer's AWS calls: find the container instance (`ecs:ListClusters` when every cluster is in
//! scope, `ecs:ListContainerInstances`, `ecs:DescribeContainerInstances`) and drain it
//! (`ecs:UpdateContainerInstancesState`).

use aws_sdk_ecs::types::ContainerInstanceStatus;
use shared::ecs::{self, Found, Search};
use shared::events::InstanceId;

use crate::{Deps, Error};

pub async fn find(deps: &Deps, instance_id: &InstanceId) -> Result<Search, Error> {
    let clusters = deps.config.clusters.resolve(&deps.ecs).await?;
    Ok(ecs::find_container_instance(&deps.ecs, &clusters, instance_id).await?)
}

/// Sets the instance DRAINING; ECS's per-instance refusal is an error.
pub async fn drain(deps: &Deps, found: &Found) -> Result<(), Error> {
    let arns = std::slice::from_ref(&found.container_instance_arn);
    let change = ecs::set_status(&deps.ecs, &found.cluster, arns, ContainerInstanceStatus::Draining).await?;
    match change.failures.into_iter().next() {
        Some(failure) => Err(Error::DrainRejected {
            container_instance_arn: found.container_instance_arn.clone(),
            reason: failure.reason,
        }),
        None => Ok(()),
    }
}
