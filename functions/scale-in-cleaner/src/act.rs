//! Carrying out one cluster's plan: `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes`,
//! `ecs:DeleteAttributes`, `ecs:DescribeContainerInstances` (the instances to drain, described again
//! right before; those to terminate, checked empty right before), `ecs:ListTasks` and `ecs:DescribeTasks`
//! (only when that description cannot tell daemon tasks from others),
//! `autoscaling:TerminateInstanceInAutoScalingGroup`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_ecs::types::ContainerInstanceStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use shared::ecs::{self, StateChange};
use shared::edge::Budget;
use shared::error::aws;
use tracing::{info, warn};

use crate::inventory::instances::{self, Fingerprint};
use crate::inventory::{MARKER, STALLED_MARKER};
use crate::plan::{Decision, Entry, Progress, Reason};
use crate::{Deps, Error};

/// No new change is started with less than this left before Lambda's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// What `TerminateInstanceInAutoScalingGroup` answers when the group cannot do it now: a minimum-size
/// `ValidationError`, and `ScalingActivityInProgress` and `ResourceContention`, which AWS documents as
/// "try again later" (API reference, Errors).
const REFUSALS: [&str; 3] = ["ValidationError", "ScalingActivityInProgress", "ResourceContention"];

/// Carries out one cluster's plan.
#[derive(Debug)]
pub struct Act<'a> {
    pub deps: &'a Deps,
    pub cluster: &'a str,
    pub daemon_groups: &'a BTreeSet<String>,
    /// Each instance as the plan saw it.
    pub fingerprints: &'a HashMap<String, Fingerprint>,
    pub budget: Budget,
    /// The run's time, the value of new markers.
    pub now: DateTime<Utc>,
}

impl Act<'_> {
    /// `Ok(true)` when Lambda's deadline stopped it before the end.
    pub async fn all(&self, entries: &mut [Entry]) -> Result<bool, Error> {
        // Capacity first: what comes back to ACTIVE is what later steps may lean on.
        let reactivate = arns_of(entries, |e| e.decision == Decision::Reactivate);
        let change =
            ecs::set_status(&self.deps.ecs, self.cluster, &reactivate, ContainerInstanceStatus::Active)
                .await?;
        record(entries, &change, |e| e.decision == Decision::Reactivate);
        let done = arns_of(entries, |e| e.decision == Decision::Reactivate && e.done());
        let stale = arns_of(entries, |e| e.clear_marker);
        self.attribute(MARKER, &[done, stale].concat(), false).await?;
        // A drain that stalled is not tried again for a while; the marker says since when.
        let stalled = arns_of(entries, |e| e.reason == Reason::StalledDrain && e.done());
        self.attribute(STALLED_MARKER, &stalled, true).await?;
        self.attribute(STALLED_MARKER, &arns_of(entries, |e| e.clear_stalled), false).await?;

        if !self.budget.has_more_than(DEADLINE_MARGIN) {
            return Ok(true);
        }
        let leaving = |e: &Entry| matches!(e.decision, Decision::Drain | Decision::Terminate);
        self.confirm(entries, leaving).await?;
        let leaving = |e: &Entry| leaving(e) && e.progress == Progress::Planned;
        // Marked before DRAINING: if we stop in between, an ACTIVE instance carries a marker (cleared next
        // run), never a DRAINING instance without one (which no run would ever reap).
        let drain = arns_of(entries, leaving);
        self.attribute(MARKER, &drain, true).await?;
        let change =
            ecs::set_status(&self.deps.ecs, self.cluster, &drain, ContainerInstanceStatus::Draining).await?;
        record(entries, &change, leaving);
        for e in entries.iter_mut().filter(|e| e.decision == Decision::Terminate && e.done()) {
            // Draining is half of terminating; done once terminated.
            e.progress = Progress::Planned;
        }

        let terminate = |e: &Entry| {
            matches!(e.decision, Decision::Reap | Decision::Terminate) && e.progress == Progress::Planned
        };
        let left = self.tasks_left(&arns_of(entries, terminate)).await?;
        for e in entries.iter_mut().filter(|e| terminate(e)) {
            if !self.budget.has_more_than(DEADLINE_MARGIN) {
                return Ok(true);
            }
            match left.get(&e.container_instance_arn).copied().unwrap_or(0) {
                0 => self.terminate(e).await?,
                tasks => {
                    info!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, tasks, "tasks on it; not terminated");
                    e.progress = Progress::Deferred { tasks };
                }
            }
        }
        Ok(false)
    }

    /// Describes the instances about to be drained again and cancels those that changed since the plan.
    async fn confirm(&self, entries: &mut [Entry], pick: impl Fn(&Entry) -> bool) -> Result<(), Error> {
        let arns = arns_of(entries, &pick);
        if arns.is_empty() {
            return Ok(());
        }
        let now: HashMap<String, Fingerprint> =
            shared::ecs::describe_container_instances_in_full(&self.deps.ecs, self.cluster, &arns)
                .await?
                .iter()
                .filter_map(|ci| Some((ci.container_instance_arn()?.to_owned(), Fingerprint::of(ci))))
                .collect();
        for e in entries.iter_mut().filter(|e| pick(e)) {
            let changes = match (
                self.fingerprints.get(&e.container_instance_arn),
                now.get(&e.container_instance_arn),
            ) {
                (Some(then), Some(now)) => then.changes(now),
                _ => vec!["no longer registered".to_owned()],
            };
            if !changes.is_empty() {
                let why = format!("changed since the plan: {}", changes.join(", "));
                warn!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, why, "drain cancelled");
                e.progress = Progress::Cancelled(why);
            }
        }
        Ok(())
    }

    /// Tasks left on each instance that is to be terminated, daemon tasks aside. One description tells
    /// an instance that runs nothing (no task running or pending, nothing reserved: a task still stopping
    /// holds its share); only where daemon tasks may be among those on it are its tasks listed. (A task
    /// count of 1 may stand for tasks still stopping.)
    async fn tasks_left(&self, arns: &[String]) -> Result<HashMap<String, usize>, Error> {
        let mut left = HashMap::new();
        if arns.is_empty() {
            return Ok(left);
        }
        for ci in
            shared::ecs::describe_container_instances_in_full(&self.deps.ecs, self.cluster, arns).await?
        {
            let Some(arn) = ci.container_instance_arn().map(str::to_owned) else { continue };
            let count = usize::try_from(ci.running_tasks_count() + ci.pending_tasks_count()).unwrap_or(0);
            let tasks = if instances::runs_nothing(&ci) {
                0
            } else if self.daemon_groups.is_empty() {
                // Only tasks hold an instance's resources: running, pending, or told to stop and not yet
                // STOPPED (which no count shows).
                count.max(1)
            } else {
                ecs::tasks_left(&self.deps.ecs, self.cluster, &arn)
                    .await?
                    .into_iter()
                    .filter(|t| !t.group.as_ref().is_some_and(|g| self.daemon_groups.contains(g)))
                    .count()
            };
            left.insert(arn, tasks);
        }
        // Deregistered meanwhile: nothing left to terminate it for; its group decides.
        for arn in arns {
            left.entry(arn.clone()).or_insert(1);
        }
        Ok(left)
    }

    /// Terminates one drained instance through its group, decrementing the desired capacity.
    async fn terminate(&self, e: &mut Entry) -> Result<(), Error> {
        let result = self
            .deps
            .autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&e.ec2_instance_id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(aws("TerminateInstanceInAutoScalingGroup"));
        match result {
            Ok(_) => {
                info!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, "terminated");
                e.progress = Progress::Done;
            }
            // The group reached its minimum size, or the instance is already terminating, since we read it;
            // or the group is busy with another scaling activity: the next run sees the new state and tries
            // again. The run's other changes go on.
            Err(err) if REFUSALS.iter().any(|code| err.code_is(code)) => {
                warn!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, error = %err, "termination refused");
                e.progress = Progress::Refused(err.to_string());
            }
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Sets attribute `name` to the run's time on `arns` (`set`), or deletes it.
    async fn attribute(&self, name: &str, arns: &[String], set: bool) -> Result<(), Error> {
        let value = self.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let value = set.then_some(value.as_str());
        Ok(ecs::set_attribute(&self.deps.ecs, self.cluster, arns, name, value).await?)
    }
}

fn arns_of(entries: &[Entry], pick: impl Fn(&Entry) -> bool) -> Vec<String> {
    entries.iter().filter(|e| pick(e)).map(|e| e.container_instance_arn.clone()).collect()
}

/// Marks entries ECS accepted as done and those it refused with its reason.
fn record(entries: &mut [Entry], change: &StateChange, pick: impl Fn(&Entry) -> bool) {
    for e in entries.iter_mut().filter(|e| pick(e)) {
        if change.updated.contains(&e.container_instance_arn) {
            e.progress = Progress::Done;
        } else if let Some(f) = change.failures.iter().find(|f| f.arn == e.container_instance_arn) {
            e.progress = Progress::Failed(format!("UpdateContainerInstancesState refused: {}", f.reason));
        }
    }
}
