//! The only code that sets a container instance DRAINING or ACTIVE for a shipshape function, and the only
//! code that writes or removes our marker, in the order that keeps every marker honest:
//!
//! - a drain writes a pending marker, sets DRAINING, then holds the marker; when ECS refused or the call
//!   failed, the instance is described again: one DRAINING after all is held, any other loses the
//!   pending marker (a failure on the way leaves at most a pending one, which claims nothing on an ACTIVE
//!   instance, and which its owner adopts on a DRAINING one after [`super::marker::PENDING_LIFETIME`]);
//! - an undo removes the marker first, then sets ACTIVE (a failure on the way leaves a DRAINING instance
//!   without our marker: never one that is ACTIVE and still claims a drain). When ECS refuses ACTIVE, the
//!   marker is put back, so that the next reconcile tries again.
//!
//! API calls: `ecs:PutAttributes`, `ecs:DeleteAttributes`, `ecs:UpdateContainerInstancesState`,
//! `ecs:DescribeContainerInstances` (after a failed state change).

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::ContainerInstanceStatus;
use serde::Serialize;
use tracing::warn;

use super::marker::{ATTRIBUTE, Marker, attributes_on};
use crate::ecs::{self, Failure, Found, InstanceStatus, StateFailure};

/// What a drain or an undo did: the container instances changed, and those ECS refused (with why).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Change {
    pub done: Vec<String>,
    pub refused: Vec<StateFailure>,
}

/// Sets `targets` (container instances of `cluster`) DRAINING; with a marker, marked as `marker`'s
/// owner's drain. An error means the state change failed and ECS did not show any of them DRAINING after.
pub async fn drain(
    ecs: &Client,
    cluster: &str,
    targets: &[Found],
    marker: Option<&Marker>,
) -> Result<Change, Failure> {
    let arns = arns(targets);
    if arns.is_empty() {
        return Ok(Change::default());
    }
    if let Some(m) = marker {
        ecs::set_attribute(ecs, cluster, &arns, ATTRIBUTE, Some(&m.pending().value())).await?;
    }
    let (change, failed) = match ecs::set_status(ecs, cluster, &arns, ContainerInstanceStatus::Draining).await
    {
        Ok(change) => (Change { done: change.updated, refused: change.failures }, None),
        Err(e) => (look_again(ecs, cluster, &arns, InstanceStatus::Draining, &e.to_string()).await, Some(e)),
    };
    if let Some(m) = marker {
        // The drain happened: a failed write leaves our pending marker on a DRAINING instance, which its
        // owner adopts (`Marker::adopted`); failing here would hide a drain that stands.
        if let Err(e) =
            ecs::set_attribute(ecs, cluster, &change.done, ATTRIBUTE, Some(&m.held().value())).await
        {
            warn!(error = %e, "could not hold our marker after the drain; its owner adopts the pending one");
        }
        let refused: Vec<String> = change.refused.iter().map(|f| f.arn.clone()).collect();
        if let Err(e) = ecs::set_attribute(ecs, cluster, &refused, ATTRIBUTE, None).await {
            warn!(error = %e, "could not remove a pending marker; the reconcile will");
        }
    }
    match failed {
        Some(e) if change.done.is_empty() => Err(e.into()),
        _ => Ok(change),
    }
}

/// Sets `targets` (DRAINING container instances of ours, as described) ACTIVE again: our marker comes
/// off first. An error means nothing is known to be ACTIVE.
pub async fn undo(ecs: &Client, cluster: &str, targets: &[Found]) -> Result<Change, Failure> {
    if targets.is_empty() {
        return Ok(Change::default());
    }
    clear(ecs, cluster, targets).await?;
    let arns = arns(targets);
    let (change, failed) = match ecs::set_status(ecs, cluster, &arns, ContainerInstanceStatus::Active).await {
        Ok(change) => (Change { done: change.updated, refused: change.failures }, None),
        Err(e) => (look_again(ecs, cluster, &arns, InstanceStatus::Active, &e.to_string()).await, Some(e)),
    };
    // Still DRAINING: the marker goes back on, for the next reconcile to try again.
    for f in targets.iter().filter(|f| change.refused.iter().any(|r| r.arn == f.container_instance_arn)) {
        if let Some(value) =
            f.attributes.get(ATTRIBUTE).cloned().or_else(|| Marker::read(&f.attributes).map(|m| m.value()))
        {
            let one = std::slice::from_ref(&f.container_instance_arn);
            if let Err(e) = ecs::set_attribute(ecs, cluster, one, ATTRIBUTE, Some(&value)).await {
                warn!(error = %e, container_instance_arn = %f.container_instance_arn, "could not put our marker back after a failed undo");
            }
        }
    }
    match failed {
        Some(e) if change.done.is_empty() => Err(e.into()),
        _ => Ok(change),
    }
}

/// Marks container instances that are DRAINING already (by us, or by someone whose drain we now take on)
/// with a held marker.
pub async fn mark(ecs: &Client, cluster: &str, targets: &[Found], marker: &Marker) -> Result<(), Failure> {
    ecs::set_attribute(ecs, cluster, &arns(targets), ATTRIBUTE, Some(&marker.held().value())).await
}

/// Removes every marker attribute the container instances carry (ours, and earlier versions').
pub async fn clear(ecs: &Client, cluster: &str, targets: &[Found]) -> Result<(), Failure> {
    let mut by_name: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for f in targets {
        for name in attributes_on(&f.attributes) {
            by_name.entry(name).or_default().push(f.container_instance_arn.clone());
        }
    }
    for (name, arns) in by_name {
        ecs::set_attribute(ecs, cluster, &arns, name, None).await?;
    }
    Ok(())
}

/// After a state change that failed on the wire: which of `arns` ECS now shows in `wanted` (done), and
/// which not (refused, with the call's error as the reason). A describe that fails too counts them all
/// as refused.
async fn look_again(
    ecs: &Client,
    cluster: &str,
    arns: &[String],
    wanted: InstanceStatus,
    error: &str,
) -> Change {
    let described = ecs::describe_container_instances(ecs, cluster, arns).await.unwrap_or_default();
    let mut change = Change::default();
    for arn in arns {
        if described.iter().any(|f| &f.container_instance_arn == arn && f.status == wanted) {
            change.done.push(arn.clone());
        } else {
            change.refused.push(StateFailure { arn: arn.clone(), reason: error.to_owned() });
        }
    }
    change
}

fn arns(targets: &[Found]) -> Vec<String> {
    targets.iter().map(|f| f.container_instance_arn.clone()).collect()
}
