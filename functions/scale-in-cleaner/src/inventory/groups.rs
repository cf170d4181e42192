//! Each instance's Auto Scaling group and the groups' sizes.
//!
//! `DescribeAutoScalingGroups` lists every instance of a group with its zone, lifecycle state and
//! protection, the ones still launching too, 100 groups per call; `DescribeAutoScalingInstances` answers
//! for 50 instances per call. So one call of 50 instances names the groups, the groups are described,
//! and only the instances none of them listed (in another group, or in none) are asked about: a cluster
//! of 1,000 instances in one group takes three calls instead of twenty.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt, stream};
use shared::AwsError;
use shared::error::aws;

use super::CONCURRENCY;
use crate::plan::{Group, Membership};

/// `DescribeAutoScalingInstances` takes up to 50 instance ids.
const INSTANCES_BATCH: usize = 50;
/// `DescribeAutoScalingGroups` takes up to 100 group names (its `MaxRecords` maximum).
const GROUPS_BATCH: usize = 100;

pub type Memberships = HashMap<String, Membership>;

/// The memberships of `ids` (those in a group) and their groups; `managed`: groups a capacity provider
/// with managed scaling owns, with its name.
pub async fn read(
    autoscaling: &aws_sdk_autoscaling::Client,
    ids: &[String],
    managed: &HashMap<String, String>,
) -> Result<(Memberships, BTreeMap<String, Group>), AwsError> {
    let mut memberships = Memberships::new();
    let mut groups = BTreeMap::new();
    let mut asked: HashSet<&str> = HashSet::new();
    let mut first = true;
    loop {
        let unknown: Vec<&String> =
            ids.iter().filter(|id| !memberships.contains_key(*id) && !asked.contains(id.as_str())).collect();
        if unknown.is_empty() {
            break;
        }
        let batch = if first { &unknown[..unknown.len().min(INSTANCES_BATCH)] } else { &unknown[..] };
        first = false;
        asked.extend(batch.iter().map(|id| id.as_str()));
        let found = instances(autoscaling, batch).await?;
        let names: BTreeSet<String> =
            found.values().map(|m| m.group.clone()).filter(|g| !groups.contains_key(g)).collect();
        memberships.extend(found);
        describe(autoscaling, &names, managed, &mut memberships, &mut groups).await?;
    }
    Ok((memberships, groups))
}

async fn instances(
    autoscaling: &aws_sdk_autoscaling::Client,
    ids: &[&String],
) -> Result<Memberships, AwsError> {
    let pages: Vec<Memberships> = stream::iter(ids.chunks(INSTANCES_BATCH))
        .map(|batch| async move {
            let found: Vec<_> = autoscaling
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(batch.iter().map(|s| (*s).clone()).collect()))
                .max_records(50)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws("DescribeAutoScalingInstances"))?;
            let mut out = Memberships::new();
            for i in found {
                let (Some(id), Some(group)) = (i.instance_id(), i.auto_scaling_group_name()) else {
                    continue;
                };
                out.insert(
                    id.to_owned(),
                    Membership {
                        group: group.to_owned(),
                        availability_zone: i.availability_zone().unwrap_or_default().to_owned(),
                        lifecycle_state: i.lifecycle_state().unwrap_or_default().to_owned(),
                        protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
                    },
                );
            }
            Ok::<_, AwsError>(out)
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(pages.into_iter().flatten().collect())
}

/// Describes the groups `names`: their sizes, and the membership of every instance they list.
async fn describe(
    autoscaling: &aws_sdk_autoscaling::Client,
    names: &BTreeSet<String>,
    managed: &HashMap<String, String>,
    memberships: &mut Memberships,
    groups: &mut BTreeMap<String, Group>,
) -> Result<(), AwsError> {
    let names: Vec<String> = names.iter().cloned().collect();
    let pages: Vec<Vec<_>> = stream::iter(names.chunks(GROUPS_BATCH))
        .map(|batch| async move {
            autoscaling
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(batch.to_vec()))
                .max_records(100)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws("DescribeAutoScalingGroups"))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    for g in pages.into_iter().flatten() {
        let Some(name) = g.auto_scaling_group_name() else { continue };
        let listed: Vec<(&str, i64)> = g
            .instances()
            .iter()
            .map(|i| {
                let state = i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default();
                // Its weight in the group's capacity units (mixed instances, vCPU or memory); 1 without one.
                let weight = i.weighted_capacity().and_then(|w| w.parse().ok()).unwrap_or(1);
                (state, weight)
            })
            .collect();
        let launching = launching(g.desired_capacity().unwrap_or(0), &listed);
        for i in g.instances() {
            let state = i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default();
            let Some(id) = i.instance_id() else { continue };
            memberships.insert(
                id.to_owned(),
                Membership {
                    group: name.to_owned(),
                    availability_zone: i.availability_zone().unwrap_or_default().to_owned(),
                    lifecycle_state: state.to_owned(),
                    protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
                },
            );
        }
        groups.insert(
            name.to_owned(),
            Group {
                min_size: g.min_size().unwrap_or(0),
                desired_capacity: g.desired_capacity().unwrap_or(0),
                managed_by: managed.get(name).cloned(),
                launching,
            },
        );
    }
    Ok(())
}

/// Instances a group is launching: those `Pending`, `Pending:Wait` or `Pending:Proceed`, and those its
/// desired capacity asks for that it has not launched yet (a scale-out just decided, or a replacement of
/// an instance on its way out or in standby), since Auto Scaling lists an instance only once it launches
/// it. `listed`: each instance's lifecycle state and weight in capacity units. With weights, the number
/// of instances still to come is unknown: at least one.
fn launching(desired: i32, listed: &[(&str, i64)]) -> usize {
    let pending = listed.iter().filter(|(s, _)| s.starts_with("Pending")).count();
    // What counts towards the desired capacity: every instance but those leaving the group or in standby
    // (EnterStandby without decrementing the desired capacity has it launch a replacement).
    let counts = |s: &str| {
        !["Terminat", "Detach", "Standby", "EnteringStandby", "Warmed"].iter().any(|p| s.starts_with(p))
    };
    let counted: i64 = listed.iter().filter(|(s, _)| counts(s)).map(|(_, w)| *w).sum();
    let missing = (i64::from(desired) - counted).max(0);
    let weighted = listed.iter().any(|(_, w)| *w != 1);
    let missing = if weighted { usize::from(missing > 0) } else { usize::try_from(missing).unwrap_or(0) };
    pending + missing
}

#[cfg(test)]
mod tests {
    use super::launching;

    fn plain<'a>(states: &[&'a str]) -> Vec<(&'a str, i64)> {
        states.iter().map(|s| (*s, 1)).collect()
    }

    #[test]
    fn launching_counts_pending_instances_and_those_not_launched_yet() {
        assert_eq!(launching(3, &plain(&["InService", "InService", "InService"])), 0);
        assert_eq!(launching(3, &plain(&["InService", "InService", "Pending:Wait"])), 1);
        // Desired capacity raised, nothing listed yet.
        assert_eq!(launching(5, &plain(&["InService", "InService", "InService"])), 2);
        // An instance on its way out, or in standby, is replaced.
        assert_eq!(launching(2, &plain(&["InService", "Terminating:Wait"])), 1);
        assert_eq!(launching(2, &plain(&["InService", "Standby"])), 1);
        // Scaling in: more instances than desired.
        assert_eq!(launching(1, &plain(&["InService", "InService"])), 0);
        assert_eq!(launching(0, &[]), 0);
    }

    #[test]
    fn weighted_capacity_is_counted_in_units() {
        // Desired 64 vCPUs, met by four instances of 16.
        let four = [("InService", 16); 4];
        assert_eq!(launching(64, &four), 0);
        assert_eq!(launching(80, &four), 1);
        assert_eq!(launching(40, &four), 0);
    }
}
