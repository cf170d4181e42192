//! Auto Scaling as the drain side reads it: where an instance is and in which lifecycle state, the
//! instances of groups, and when a scaling activity began.
//!
//! API calls: `autoscaling:DescribeAutoScalingInstances`, `autoscaling:DescribeAutoScalingGroups`,
//! `autoscaling:DescribeWarmPool`, `autoscaling:DescribeScalingActivities`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::Client;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{AwsError, aws};

/// An instance's lifecycle state in its group
/// (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html>,
/// <https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html>).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
pub enum LifecycleState {
    Pending,
    #[strum(serialize = "Pending:Wait")]
    #[serde(rename = "Pending:Wait")]
    PendingWait,
    #[strum(serialize = "Pending:Proceed")]
    #[serde(rename = "Pending:Proceed")]
    PendingProceed,
    Quarantined,
    InService,
    Terminating,
    #[strum(serialize = "Terminating:Wait")]
    #[serde(rename = "Terminating:Wait")]
    TerminatingWait,
    #[strum(serialize = "Terminating:Proceed")]
    #[serde(rename = "Terminating:Proceed")]
    TerminatingProceed,
    #[strum(serialize = "Terminating:Retained")]
    #[serde(rename = "Terminating:Retained")]
    TerminatingRetained,
    Terminated,
    Detaching,
    Detached,
    EnteringStandby,
    Standby,
    #[strum(serialize = "Warmed:Pending")]
    #[serde(rename = "Warmed:Pending")]
    WarmedPending,
    #[strum(serialize = "Warmed:Pending:Wait")]
    #[serde(rename = "Warmed:Pending:Wait")]
    WarmedPendingWait,
    #[strum(serialize = "Warmed:Pending:Proceed")]
    #[serde(rename = "Warmed:Pending:Proceed")]
    WarmedPendingProceed,
    #[strum(serialize = "Warmed:Terminating")]
    #[serde(rename = "Warmed:Terminating")]
    WarmedTerminating,
    #[strum(serialize = "Warmed:Terminating:Wait")]
    #[serde(rename = "Warmed:Terminating:Wait")]
    WarmedTerminatingWait,
    #[strum(serialize = "Warmed:Terminating:Proceed")]
    #[serde(rename = "Warmed:Terminating:Proceed")]
    WarmedTerminatingProceed,
    #[strum(serialize = "Warmed:Terminated")]
    #[serde(rename = "Warmed:Terminated")]
    WarmedTerminated,
    #[strum(serialize = "Warmed:Stopped")]
    #[serde(rename = "Warmed:Stopped")]
    WarmedStopped,
    #[strum(serialize = "Warmed:Running")]
    #[serde(rename = "Warmed:Running")]
    WarmedRunning,
    #[strum(serialize = "Warmed:Hibernated")]
    #[serde(rename = "Warmed:Hibernated")]
    WarmedHibernated,
    /// A state this code does not know: never acted on.
    Unknown,
}

impl LifecycleState {
    pub fn of(state: &str) -> Self {
        state.parse().unwrap_or(LifecycleState::Unknown)
    }

    /// In the warm pool, or on its way in or out of it.
    pub fn warmed(self) -> bool {
        <&str>::from(self).starts_with("Warmed:")
    }

    /// Held by lifecycle hooks (`Pending:Wait`, `Terminating:Wait`, `Warmed:*:Wait`).
    pub fn waiting(self) -> bool {
        <&str>::from(self).ends_with(":Wait")
    }

    /// On its way out of the group: ECS must not get it back as capacity.
    pub fn leaving(self) -> bool {
        <&str>::from(self).contains("Terminat")
            || matches!(self, LifecycleState::Detaching | LifecycleState::Detached)
    }
}

/// An instance's place in its Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InGroup {
    pub group: String,
    pub state: LifecycleState,
}

/// Where Auto Scaling has the instance: its group and lifecycle state; `None` when it is in no group.
pub async fn in_group(autoscaling: &Client, instance_id: &str) -> Result<Option<InGroup>, AwsError> {
    let out = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(aws("DescribeAutoScalingInstances"))?;
    Ok(out.auto_scaling_instances().first().map(|i| InGroup {
        group: i.auto_scaling_group_name().unwrap_or_default().to_owned(),
        state: LifecycleState::of(i.lifecycle_state().unwrap_or_default()),
    }))
}

/// A group's instances with their lifecycle states, those in its warm pool among them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub instances: BTreeMap<String, LifecycleState>,
    pub has_warm_pool: bool,
}

/// `DescribeAutoScalingGroups` takes up to 100 names a page.
const GROUPS_PER_CALL: usize = 100;

/// The groups named (every group of the account in the region when `names` is empty), with their
/// instances, and the instances of their warm pools.
pub async fn groups(autoscaling: &Client, names: &[String]) -> Result<Vec<Group>, AwsError> {
    let mut out = Vec::new();
    let batches: Vec<Option<&[String]>> =
        if names.is_empty() { vec![None] } else { names.chunks(GROUPS_PER_CALL).map(Some).collect() };
    for batch in batches {
        let groups: Vec<_> = autoscaling
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(batch.map(<[String]>::to_vec))
            .max_records(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws("DescribeAutoScalingGroups"))?;
        for g in groups {
            let instances = g
                .instances()
                .iter()
                .filter_map(|i| {
                    Some((i.instance_id()?.to_owned(), LifecycleState::of(i.lifecycle_state()?.as_str())))
                })
                .collect();
            out.push(Group {
                name: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                instances,
                has_warm_pool: g.warm_pool_configuration().is_some(),
            });
        }
    }
    for group in out.iter_mut().filter(|g| g.has_warm_pool) {
        warm_pool(autoscaling, group).await?;
    }
    Ok(out)
}

/// Every instance of `group`'s warm pool, page after page: `DescribeWarmPool` answers at most 50 a call
/// (`MaxRecords`, "The maximum value is 50"), and an instance waiting on a later page is ours to answer too.
async fn warm_pool(autoscaling: &Client, group: &mut Group) -> Result<(), AwsError> {
    let mut token: Option<String> = None;
    loop {
        let pool = autoscaling
            .describe_warm_pool()
            .auto_scaling_group_name(&group.name)
            .max_records(50)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws("DescribeWarmPool"))?;
        for i in pool.instances() {
            if let (Some(id), Some(state)) = (i.instance_id(), i.lifecycle_state()) {
                group.instances.insert(id.to_owned(), LifecycleState::of(state.as_str()));
            }
        }
        match pool.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(()),
        }
    }
}

/// Pages of scaling activities read at most, looking for the ones asked about: an instance refresh of a
/// large group can start hundreds of activities.
const ACTIVITY_PAGES: usize = 5;

/// When each of `instances` began to leave or join `group`: the start of its scaling activity
/// ("Terminating EC2 instance: i-...", "Launching a new EC2 instance: i-..."), which is when it began to
/// wait for its lifecycle hooks, or a little before. Activities are listed newest first, in progress
/// first; an instance whose activity is not among the first pages is absent.
pub async fn activity_starts(
    autoscaling: &Client,
    group: &str,
    instances: &BTreeSet<String>,
) -> Result<BTreeMap<String, DateTime<Utc>>, AwsError> {
    let mut found = BTreeMap::new();
    let mut pages = autoscaling
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .max_records(100)
        .into_paginator()
        .send();
    let mut read = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("DescribeScalingActivities"))?;
        for a in page.activities() {
            let Some(id) = a.description().and_then(|d| d.rsplit_once(": ")).map(|(_, id)| id) else {
                continue;
            };
            let Some(start) =
                a.start_time().and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            else {
                continue;
            };
            if instances.contains(id) {
                found.entry(id.to_owned()).or_insert(start);
            }
        }
        read += 1;
        if read >= ACTIVITY_PAGES || found.len() == instances.len() {
            break;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_states_parse_and_print_as_auto_scaling_writes_them() {
        for s in ["Terminating:Wait", "Pending:Wait", "Warmed:Pending:Wait", "InService", "Warmed:Running"] {
            assert_eq!(LifecycleState::of(s).to_string(), s);
        }
        assert_eq!(LifecycleState::of("Something:New"), LifecycleState::Unknown);
        assert!(LifecycleState::of("Warmed:Running").warmed());
        assert!(LifecycleState::of("Terminating:Wait").leaving());
        assert!(LifecycleState::of("Warmed:Terminating:Wait").leaving());
        assert!(!LifecycleState::of("Standby").leaving());
        assert_eq!(
            serde_json::to_value(LifecycleState::TerminatingWait).unwrap_or_default(),
            "Terminating:Wait"
        );
    }
}
