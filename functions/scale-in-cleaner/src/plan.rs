//! The scale-in decision, a pure function of one cluster's inventory, the settings and the run's time:
//! no AWS calls, no clock.
//!
//! Decisions follow reservations (what the ECS scheduler places tasks by), not measured utilisation:
//!
//! 1. Usable capacity is every ACTIVE instance whose agent is connected and which Auto Scaling has
//!    `InService` (or which is in no group).
//! 2. Instances this function drained earlier ("ours") whose services have been unable to place their
//!    tasks for `STALLED_DRAIN_MINUTES` go back to ACTIVE ([`ours`]). The others have their tasks placed
//!    on the usable capacity as ECS would place them; if they do not fit, or the spare left is under
//!    the thresholds, ours go back to ACTIVE (most room first) until the cluster has its spare again.
//!    Ours that run nothing are reaped, inside the disruption windows and as far as each group's minimum
//!    size allows; the rest wait for their tasks to leave.
//! 3. New removals ([`remove`]): none outside `SCALE_IN_WINDOWS`, while a daemon service is being
//!    deployed, or while the cluster is short; per group none during its cool-down after a launch and at
//!    most `SCALE_IN_BUDGET_PERCENT` of it; at most `MAX_REMOVALS_PER_RUN` in all. Candidates go empty
//!    first, then from the availability zone with the most instances of their group, then least reserved.
//!    One goes only if no task on it has scale-in protection or belongs to a service being deployed, ECS
//!    can replace its services' tasks ([`replace`]: their deployment configuration, none short of its
//!    desired count), each of its tasks can be placed on an instance that stays, checking what ECS checks
//!    ([`placement`]: CPU, memory, capacity providers, GPUs, static host ports, network interfaces and the
//!    zone of an `awsvpc` task, the definition's required attributes, `memberOf` and `distinctInstance`,
//!    and the service's zone), and the spare left meets the thresholds with room for the largest task.
//!
//! Tasks are read only for the instances the plan examines: an instance whose tasks are unknown is
//! listed in [`Plan::wanted`], and the caller reads them and plans again.
//!
//! Daemon-service tasks are not counted as load: they run on every instance and leave with it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shared::ecs::InstanceStatus;

mod eni;
mod model;
mod order;
mod ours;
pub mod placement;
pub mod query;
mod reason;
mod remove;
mod replace;
mod service;
pub mod window;

pub use self::model::*;
use self::placement::Queries;
pub use self::service::*;

/// The one Auto Scaling lifecycle state in which an instance is capacity.
const IN_SERVICE: &str = "InService";

/// Plans one cluster. `now` is the time of the run: instance ages, windows, cool-downs, stalled drains.
pub fn plan(inv: &Inventory, settings: &Settings, now: DateTime<Utc>) -> Plan {
    plan_ahead(inv, settings, now, 0)
}

/// [`plan`], also wanting the tasks of up to `look_ahead` candidates past those counted as removals, in
/// case those cannot go: a caller that doubles it each round reads every candidate in a few rounds even
/// when the least used ones are all blocked (protected tasks, constraints), instead of never reaching
/// the others.
pub fn plan_ahead(inv: &Inventory, settings: &Settings, now: DateTime<Utc>, look_ahead: usize) -> Plan {
    let mut p = Planner::new(inv, settings, now);
    p.look_ahead = look_ahead;
    let Classified { mut usable, ours, clear_marker } = p.classify();
    let pool = p.settle_ours(&mut usable, ours);
    let before = pool.capacity(settings);
    let pool = p.remove(&usable, pool);
    let after = pool.capacity(settings);
    let wanted = p.wanted.iter().map(|&i| inv.instances[i].container_instance_arn.clone()).collect();
    Plan { before, after, entries: p.entries(clear_marker), wanted }
}

/// What the plan decided for one instance.
type Decided = (Decision, Reason, String);

/// The planner's working state for one cluster.
struct Planner<'a> {
    inv: &'a Inventory,
    settings: &'a Settings,
    now: DateTime<Utc>,
    /// By inventory index; `None` until decided.
    decisions: Vec<Option<Decided>>,
    /// How many more instances each group may lose before reaching its minimum size. Ours still draining
    /// are in the desired capacity and will leave it when reaped.
    min_size_room: HashMap<&'a str, i64>,
    /// The largest CPU and the largest memory of a replica service's task definition or of a service task
    /// read. A standalone task is not placed again by ECS once it stops: no room is kept for it, and how
    /// many tasks a run reads does not change the rule.
    largest_task: Resources,
    queries: Queries,
    /// Instances whose tasks the plan needs and does not have.
    wanted: Vec<usize>,
    /// Candidates past the removals whose tasks to want too ([`plan_ahead`]).
    look_ahead: usize,
}

/// Instances by what they are to the plan.
struct Classified {
    /// ACTIVE with the agent connected: the capacity tasks can go to.
    usable: Vec<usize>,
    /// DRAINING by this function.
    ours: Vec<usize>,
    /// ACTIVE but still carrying our marker.
    clear_marker: Vec<bool>,
}

impl<'a> Planner<'a> {
    fn new(inv: &'a Inventory, settings: &'a Settings, now: DateTime<Utc>) -> Self {
        let read = inv.instances.iter().flat_map(|i| i.tasks.iter().flatten());
        Planner {
            inv,
            settings,
            now,
            decisions: vec![None; inv.instances.len()],
            min_size_room: inv
                .groups
                .iter()
                .map(|(name, g)| (name.as_str(), i64::from(g.desired_capacity - g.min_size)))
                .collect(),
            largest_task: read
                .filter(|t| t.service().is_some())
                .fold(inv.largest_service_task, |m, t| m.max(t.reserved)),
            queries: Queries::default(),
            wanted: Vec::new(),
            look_ahead: 0,
        }
    }

    fn decide(&mut self, i: usize, decision: Decision, reason: Reason, detail: impl Into<String>) {
        self.decisions[i] = Some((decision, reason, detail.into()));
    }

    /// Usable capacity, ours, and the instances never touched (skipped with the reason).
    fn classify(&mut self) -> Classified {
        let n = self.inv.instances.len();
        let mut c = Classified { usable: Vec::new(), ours: Vec::new(), clear_marker: vec![false; n] };
        for (i, inst) in self.inv.instances.iter().enumerate() {
            // Only an instance Auto Scaling has in service is capacity, or ours to touch: one that is
            // `Terminating:Wait` (a scale-in, an instance refresh, a rebalance) is about to go, and setting it
            // back to ACTIVE would let ECS place tasks on a machine about to die.
            let leaving =
                inst.membership.as_ref().map(|m| m.lifecycle_state.as_str()).filter(|s| *s != IN_SERVICE);
            match inst.status {
                InstanceStatus::Active if !inst.agent_connected => {
                    let why = "ECS agent disconnected: state unknown, not counted";
                    self.decide(i, Decision::Skip, Reason::AgentDisconnected, why);
                }
                InstanceStatus::Active if leaving.is_some() => {
                    let state = leaving.unwrap_or_default();
                    let why = format!("lifecycle state {state}: not counted as capacity");
                    self.decide(i, Decision::Skip, Reason::NotInService, why);
                    c.clear_marker[i] = inst.carries_our_marker;
                }
                InstanceStatus::Active => {
                    c.usable.push(i);
                    c.clear_marker[i] = inst.carries_our_marker;
                }
                InstanceStatus::Draining if !inst.is_ours() => {
                    self.decide(i, Decision::Skip, Reason::DrainedByOthers, "DRAINING, not by this function");
                }
                InstanceStatus::Draining if leaving.is_some() => {
                    let state = leaving.unwrap_or_default();
                    let why = format!(
                        "drained by this function, now {state} in its group: never set back to ACTIVE, never reaped"
                    );
                    self.decide(i, Decision::Skip, Reason::NotInService, why);
                }
                InstanceStatus::Draining if !inst.agent_connected => {
                    let why = "drained by this function, but the ECS agent is disconnected";
                    self.decide(i, Decision::Skip, Reason::AgentDisconnected, why);
                }
                InstanceStatus::Draining => c.ours.push(i),
                other => self.decide(i, Decision::Skip, Reason::EcsStatus, format!("ECS status {other}")),
            }
        }
        c
    }

    fn entries(self, clear_marker: Vec<bool>) -> Vec<Entry> {
        let now = self.now;
        self.inv
            .instances
            .iter()
            .zip(self.decisions)
            .zip(clear_marker)
            .map(|((inst, d), clear)| {
                let (decision, reason, detail) =
                    d.unwrap_or((Decision::Keep, Reason::NotExamined, "not examined".into()));
                Entry {
                    container_instance_arn: inst.container_instance_arn.clone(),
                    ec2_instance_id: inst.ec2_instance_id.clone(),
                    group: inst.membership.as_ref().map(|m| m.group.clone()),
                    availability_zone: inst.zone().map(str::to_owned),
                    status: inst.status,
                    tasks: inst.task_count(),
                    reserved: inst.reserved(),
                    decision,
                    reason,
                    detail,
                    clear_marker: clear && decision != Decision::Terminate && decision != Decision::Drain,
                    clear_stalled: inst.stalled_at.is_some_and(|at| now - at >= ours::stalled_hold())
                        && decision != Decision::Reactivate,
                    progress: Progress::Planned,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_placement;
#[cfg(test)]
mod tests_simulation;
