//! Carrying out one cluster's plan: `ecs:UpdateContainerInstancesState`, `ecs:PutAttributes`,
//! `ecs:DeleteAttributes`, `ecs:ListTasks` and `ecs:DescribeTasks` (an instance re-checked right before it is
//! terminated), `autoscaling:TerminateInstanceInAutoScalingGroup`.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ecs::types::{Attribute, ContainerInstanceStatus, TargetType};
use chrono::{DateTime, SecondsFormat, Utc};
use shared::ecs::{self, StateChange};
use shared::edge::{Budget, Internal};
use shared::error::aws;
use tracing::{info, warn};

use crate::inventory::MARKER;
use crate::plan::{Decision, Entry, Progress};
use crate::{Deps, Error};

/// No new change is started with less than this left before Lambda's deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// `PutAttributes` and `DeleteAttributes` take up to 10 attributes per call.
const ATTRIBUTE_BATCH: usize = 10;

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
            // The group reached its minimum size, or the instance is already terminating, since we read it:
            // the next run sees the new state.
            Err(err) if err.code_is("ValidationError") => {
                warn!(cluster = %self.cluster, instance_id = %e.ec2_instance_id, error = %err, "termination refused");
                e.progress = Progress::Refused(err.to_string());
            }
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    async fn mark(&self, arns: &[String]) -> Result<(), Error> {
        let value = self.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        for batch in arns.chunks(ATTRIBUTE_BATCH) {
            self.deps
                .ecs
                .put_attributes()
                .cluster(self.cluster)
                .set_attributes(Some(markers(batch, Some(&value))?))
                .send()
                .await
                .map_err(aws("PutAttributes"))?;
        }
        Ok(())
    }

    async fn unmark(&self, arns: &[String]) -> Result<(), Error> {
        for batch in arns.chunks(ATTRIBUTE_BATCH) {
            self.deps
                .ecs
                .delete_attributes()
                .cluster(self.cluster)
                .set_attributes(Some(markers(batch, None)?))
                .send()
                .await
                .map_err(aws("DeleteAttributes"))?;
        }
        Ok(())
    }
}

/// Our marker on each instance; `value` `None` to delete it ("don't specify the value" for DeleteAttributes).
fn markers(arns: &[String], value: Option<&str>) -> Result<Vec<Attribute>, Internal> {
    arns.iter()
        .map(|arn| {
            Attribute::builder()
                .name(MARKER)
                .set_value(value.map(str::to_owned))
                .target_type(TargetType::ContainerInstance)
                .target_id(arn)
                .build()
                .map_err(|e| Internal::new("building the drain marker attribute", e))
        })
        .collect()
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
