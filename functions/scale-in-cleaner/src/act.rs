//! Carrying out one cluster's plan: `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes`,
//! `ecs:DeleteAttributes`, `ecs:DescribeContainerInstances` (the instances to drain, described again
//! right before; those to terminate, checked empty right before), `ecs:ListTasks` and `ecs:DescribeTasks`
//! (only when that description cannot tell daemon tasks from others),
//! `autoscaling:TerminateInstanceInAutoScalingGroup`. Drains and their undoing go through the drain core
//! (`shared::drain::act`), which alone writes and clears the marker that makes a drain ours.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use shared::drain::act::{self as core, Change};
use shared::drain::marker::{Marker, Owner};
use shared::ecs::{self, Found};
use shared::edge::Budget;
use shared::error::aws;
use tracing::{info, warn};

use crate::inventory::STALLED_MARKER;
use crate::inventory::instances::{self, Fingerprint};
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
    /// Each instance as the plan read it, by ARN, for the drain core.
    pub found: &'a HashMap<String, Found>,
    pub budget: Budget,
    /// The run's time, the value of new markers.
    pub now: DateTime<Utc>,
}

impl Act<'_> {
    /// `Ok(true)` when Lambda's deadline stopped it before the end.
    pub async fn all(&self, entries: &mut [Entry]) -> Result<bool, Error> {
        // Capacity first: what comes back to ACTIVE is what later steps may lean on.
        let reactivate = self.found_of(entries, |e| e.decision == Decision::Reactivate);
        let change = core::undo(&self.deps.ecs, self.cluster, &reactivate).await?;
        record(entries, &change, |e| e.decision == Decision::Reactivate);
        // A marker of ours on an ACTIVE instance (a drain cut short, or undone by hand) claims nothing,
        // but would be taken for ours if someone else drained the instance later.
        core::clear(&self.deps.ecs, self.cluster, &self.found_of(entries, |e| e.clear_marker)).await?;
        // A drain that stalled is not tried again for a while; the marker says since when.
        let stalled = arns_of(entries, |e| {
            matches!(e.reason, Reason::StalledDrain | Reason::UnplacedReplacements)
                && e.decision == Decision::Reactivate
                && e.done()
        });
        self.attribute(STALLED_MARKER, &stalled, true).await?;
        self.attribute(STALLED_MARKER, &arns_of(entries, |e| e.clear_stalled), false).await?;

        if !self.budget.has_more_than(DEADLINE_MARGIN) {
            return Ok(true);
        }
        let leaving = |e: &Entry| matches!(e.decision, Decision::Drain | Decision::Terminate);
        self.confirm(entries, leaving).await?;
        let leaving = |e: &Entry| leaving(e) && e.progress == Progress::Planned;
        let drain = self.found_of(entries, leaving);
        let marker = Marker::new(Owner::ScaleInCleaner, "consolidation", self.now);
        let change = core::drain(&self.deps.ecs, self.cluster, &drain, Some(&marker)).await?;
        record(entries, &change, leaving);
        for e in entries.iter_mut().filter(|e| e.decision == Decision::Terminate) {
            match e.progress {
                // Draining is half of terminating; done once terminated.
                Progress::Done => e.progress = Progress::Planned,
                // ECS answered for it neither way: never terminate an instance not known to be DRAINING.
                Progress::Planned => {
                    let why = "UpdateContainerInstancesState answered neither success nor failure for it";
                    e.progress = Progress::Failed(why.into());
                }
                _ => {}
            }
        }

        let terminate = |e: &Entry| {
            matches!(e.decision, Decision::Reap | Decision::Terminate) && e.progress == Progress::Planned
        };
        let left = self.tasks_left(&arns_of(entries, terminate)).await?;
        for e in entries.iter_mut().filter(|e| terminate(e)) {
            if !self.budget.has_more_than(DEADLINE_MARGIN) {
                return Ok(true);
            }
            match left.get(&e.container_instance_arn).cloned().unwrap_or(Ready::Gone) {
                Ready::Empty => self.terminate(e).await?,
                Ready::Busy(tasks) => {
                    info!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, tasks, "tasks on it; not terminated");
                    e.progress = Progress::Deferred { tasks };
                }
                Ready::NotDraining(status) => {
                    let why = format!("{status} since the plan, no longer DRAINING: not terminated");
                    warn!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, why, "termination cancelled");
                    e.progress = Progress::Cancelled(why);
                }
                // Deregistered meanwhile: nothing left to terminate it for; its group decides.
                Ready::Gone => e.progress = Progress::Deferred { tasks: 1 },
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

    /// Whether each instance that is to be terminated may be: still DRAINING (ECS places nothing on it
    /// then; one set back to ACTIVE since the plan may have received a task meanwhile), and with no task
    /// left, daemon tasks aside. One description tells an instance that runs nothing (no task running or
    /// pending, nothing reserved: a task still stopping holds its share); only where daemon tasks may be
    /// among those on it are its tasks listed.
    async fn tasks_left(&self, arns: &[String]) -> Result<HashMap<String, Ready>, Error> {
        let mut left = HashMap::new();
        if arns.is_empty() {
            return Ok(left);
        }
        for ci in
            shared::ecs::describe_container_instances_in_full(&self.deps.ecs, self.cluster, arns).await?
        {
            let Some(arn) = ci.container_instance_arn().map(str::to_owned) else { continue };
            let daemons_may_run = !self.daemon_groups.is_empty() && !instances::runs_nothing(&ci);
            let listed = if daemons_may_run {
                let tasks = ecs::tasks_left(&self.deps.ecs, self.cluster, &arn).await?;
                let daemons = tasks
                    .iter()
                    .filter(|t| t.group.as_ref().is_some_and(|g| self.daemon_groups.contains(g)))
                    .count();
                Some(Listed { others: tasks.len() - daemons, daemons })
            } else {
                None
            };
            left.insert(arn, Ready::of(&ci, listed));
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

    /// The instances `pick` chooses, as the plan read them.
    fn found_of(&self, entries: &[Entry], pick: impl Fn(&Entry) -> bool) -> Vec<Found> {
        let arns = arns_of(entries, pick);
        arns.iter().filter_map(|arn| self.found.get(arn).cloned()).collect()
    }

    /// Sets attribute `name` to the run's time on `arns` (`set`), or deletes it.
    async fn attribute(&self, name: &str, arns: &[String], set: bool) -> Result<(), Error> {
        let value = self.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let value = set.then_some(value.as_str());
        Ok(ecs::set_attribute(&self.deps.ecs, self.cluster, arns, name, value).await?)
    }
}

/// Whether an instance may be terminated now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ready {
    Empty,
    /// Tasks still on it (a count of 1 may stand for tasks still stopping, which no count shows).
    Busy(usize),
    /// Its status now, which is not DRAINING.
    NotDraining(String),
    /// No longer registered with ECS.
    Gone,
}

/// The tasks listed on an instance, daemon tasks apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listed {
    others: usize,
    daemons: usize,
}

impl Ready {
    /// `listed`: its tasks, when they were listed.
    fn of(ci: &aws_sdk_ecs::types::ContainerInstance, listed: Option<Listed>) -> Ready {
        if ci.status() != Some("DRAINING") {
            return Ready::NotDraining(ci.status().unwrap_or("UNKNOWN").to_owned());
        }
        let count = usize::try_from(ci.running_tasks_count() + ci.pending_tasks_count()).unwrap_or(0);
        match listed {
            // Its own counts must agree: a task placed a moment ago may be counted before it is listed.
            Some(Listed { others: 0, daemons }) if count <= daemons => Ready::Empty,
            Some(Listed { others, daemons }) => Ready::Busy(others.max(count.saturating_sub(daemons)).max(1)),
            None if instances::runs_nothing(ci) => Ready::Empty,
            // Only tasks hold an instance's resources: running, pending, or told to stop and not yet
            // STOPPED (which no count shows).
            None => Ready::Busy(count.max(1)),
        }
    }
}

fn arns_of(entries: &[Entry], pick: impl Fn(&Entry) -> bool) -> Vec<String> {
    entries.iter().filter(|e| pick(e)).map(|e| e.container_instance_arn.clone()).collect()
}

/// Marks entries ECS accepted as done and those it refused with its reason.
fn record(entries: &mut [Entry], change: &Change, pick: impl Fn(&Entry) -> bool) {
    for e in entries.iter_mut().filter(|e| pick(e)) {
        if change.done.contains(&e.container_instance_arn) {
            e.progress = Progress::Done;
        } else if let Some(f) = change.refused.iter().find(|f| f.arn == e.container_instance_arn) {
            e.progress = Progress::Failed(format!("UpdateContainerInstancesState refused: {}", f.reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{ContainerInstance, Resource};

    use super::{Listed, Ready};

    fn ci(status: &str, running: i32, free_memory: i32) -> ContainerInstance {
        let memory = |v: i32| Resource::builder().name("MEMORY").r#type("INTEGER").integer_value(v).build();
        ContainerInstance::builder()
            .status(status)
            .running_tasks_count(running)
            .pending_tasks_count(0)
            .registered_resources(memory(1000))
            .remaining_resources(memory(free_memory))
            .build()
    }

    #[test]
    fn only_a_draining_instance_with_nothing_on_it_is_terminated() {
        assert_eq!(Ready::of(&ci("DRAINING", 0, 1000), None), Ready::Empty);
        assert_eq!(Ready::of(&ci("DRAINING", 2, 500), None), Ready::Busy(2));
        // Nothing running, but a task still stopping holds its share.
        assert_eq!(Ready::of(&ci("DRAINING", 0, 500), None), Ready::Busy(1));
        // Daemon tasks aside, as listed.
        let listed = |others, daemons| Some(Listed { others, daemons });
        assert_eq!(Ready::of(&ci("DRAINING", 1, 900), listed(0, 1)), Ready::Empty);
        assert_eq!(Ready::of(&ci("DRAINING", 3, 500), listed(2, 1)), Ready::Busy(2));
        // ECS counts a task the listing does not show yet.
        assert_eq!(Ready::of(&ci("DRAINING", 2, 800), listed(0, 1)), Ready::Busy(1));
        // Set back to ACTIVE since the plan: ECS may have placed a task on it meanwhile.
        assert_eq!(Ready::of(&ci("ACTIVE", 0, 1000), None), Ready::NotDraining("ACTIVE".into()));
    }
}
