//! Carrying out one cluster's plan: `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes`,
//! `ecs:DeleteAttributes`, `ecs:ListTasks` and `ecs:DescribeTasks` (an instance re-checked right before it is
//! terminated), `autoscaling:TerminateInstanceInAutoScalingGroup`.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ecs::types::ContainerInstanceStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use shared::ecs::{self, StateChange};
use shared::edge::Budget;
use shared::error::aws;
use tracing::{info, warn};

use crate::inventory::MARKER;
use crate::plan::{Decision, Entry, Progress};
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
    pub budget: Budget,
    /// The run's time, the value of new drain markers.
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
        self.unmark(&[done, stale].concat()).await?;

        if !self.budget.has_more_than(DEADLINE_MARGIN) {
            return Ok(true);
        }
        // Marked before DRAINING: if we stop in between, an ACTIVE instance carries a marker (cleared next
        // run), never a DRAINING instance without one (which no run would ever reap).
        let leaving = |e: &Entry| matches!(e.decision, Decision::Drain | Decision::Terminate);
        let drain = arns_of(entries, leaving);
        self.mark(&drain).await?;
        let change =
            ecs::set_status(&self.deps.ecs, self.cluster, &drain, ContainerInstanceStatus::Draining).await?;
        record(entries, &change, leaving);
        for e in entries.iter_mut().filter(|e| e.decision == Decision::Terminate && e.done()) {
            // Draining is half of terminating; done once terminated.
            e.progress = Progress::Planned;
        }

        for e in entries.iter_mut() {
            let terminate =
                matches!(e.decision, Decision::Reap | Decision::Terminate) && e.progress == Progress::Planned;
            if !terminate {
                continue;
            }
            if !self.budget.has_more_than(DEADLINE_MARGIN) {
                return Ok(true);
            }
            self.terminate(e).await?;
        }
        Ok(false)
    }

    /// Terminates one drained instance if nothing but daemon tasks is left on it; otherwise it is deferred.
    async fn terminate(&self, e: &mut Entry) -> Result<(), Error> {
        let left = ecs::tasks_left(&self.deps.ecs, self.cluster, &e.container_instance_arn)
            .await?
            .into_iter()
            .filter(|t| !t.group.as_ref().is_some_and(|g| self.daemon_groups.contains(g)))
            .count();
        if left > 0 {
            info!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, tasks = left, "tasks on it; not terminated");
            e.progress = Progress::Deferred { tasks: left };
            return Ok(());
        }
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

    async fn mark(&self, arns: &[String]) -> Result<(), Error> {
        let value = self.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(ecs::set_attribute(&self.deps.ecs, self.cluster, arns, MARKER, Some(&value)).await?)
    }

    async fn unmark(&self, arns: &[String]) -> Result<(), Error> {
        Ok(ecs::set_attribute(&self.deps.ecs, self.cluster, arns, MARKER, None).await?)
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
