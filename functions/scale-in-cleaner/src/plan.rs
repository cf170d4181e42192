//! The scale-in decision, a pure function of one cluster's inventory: no AWS calls, no clock.
//!
//! Decisions follow reservations (what the ECS scheduler places tasks by), not measured utilisation:
//!
//! 1. Usable capacity is every ACTIVE instance whose agent is connected.
//! 2. Instances this function drained earlier ("ours") have their tasks placed on the usable capacity,
//!    one task at a time. If they do not fit, or the spare left is under the thresholds, ours go back to
//!    ACTIVE (those with the most room first) until the cluster has its spare capacity again.
//! 3. Ours that run nothing are reaped (terminated with the group's desired capacity decremented), as
//!    far as each group's minimum size allows; the rest wait for their tasks to leave.
//! 4. New removals, at most `max_removals`: candidates ordered empty first, then by the availability zone
//!    with the most instances of its group, then least reserved. A candidate goes only if its tasks fit
//!    on the instances that stay, the spare CPU and memory left stay at or above the thresholds, some
//!    instance can still take the largest task, and its group stays at or above its minimum size.
//!
//! Daemon-service tasks are not counted as load: they run on every instance and leave with it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shared::ecs::InstanceStatus;

mod model;
mod pool;

pub use self::model::*;
use self::pool::Pool;

/// The one Auto Scaling lifecycle state in which an instance is capacity.
const IN_SERVICE: &str = "InService";

/// Plans one cluster. `now` is the time of the run, for instance ages.
pub fn plan(inv: &Inventory, settings: &Settings, now: DateTime<Utc>) -> Plan {
    let mut p = Planner::new(inv, settings);
    let Classified { mut usable, ours, clear_marker } = p.classify();
    let pool = p.settle_ours(&mut usable, ours);
    let before = pool.capacity(settings, p.largest_task);
    let pool = p.remove(&usable, pool, now);
    let after = pool.capacity(settings, p.largest_task);
    Plan { before, after, entries: p.entries(clear_marker) }
}

/// The planner's working state for one cluster.
struct Planner<'a> {
    inv: &'a Inventory,
    settings: &'a Settings,
    /// By inventory index; `None` until decided.
    decisions: Vec<Option<(Decision, String)>>,
    /// How many more instances each group may lose before reaching its minimum size. Ours still draining
    /// are in the desired capacity and will leave it when reaped.
    budget: HashMap<&'a str, i64>,
    /// The largest CPU and the largest memory of any running task.
    largest_task: Resources,
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
    fn new(inv: &'a Inventory, settings: &'a Settings) -> Self {
        Planner {
            inv,
            settings,
            decisions: vec![None; inv.instances.len()],
            budget: inv
                .groups
                .iter()
                .map(|(name, g)| (name.as_str(), i64::from(g.desired_capacity - g.min_size)))
                .collect(),
            largest_task: inv
                .instances
                .iter()
                .flat_map(|i| i.tasks.iter())
                .fold(Resources::default(), |m, t| m.max(t.reserved)),
        }
    }

    fn decide(&mut self, i: usize, decision: Decision, reason: impl Into<String>) {
        self.decisions[i] = Some((decision, reason.into()));
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
                    self.decide(i, Decision::Skip, "ECS agent disconnected: state unknown, not counted");
                }
                InstanceStatus::Active if leaving.is_some() => {
                    let state = leaving.unwrap_or_default();
                    self.decide(
                        i,
                        Decision::Skip,
                        format!("lifecycle state {state}: not counted as capacity"),
                    );
                    c.clear_marker[i] = inst.is_ours();
                }
                InstanceStatus::Active => {
                    c.usable.push(i);
                    c.clear_marker[i] = inst.is_ours();
                }
                InstanceStatus::Draining if !inst.is_ours() => {
                    self.decide(i, Decision::Skip, "DRAINING, not by this function");
                }
                InstanceStatus::Draining if leaving.is_some() => {
                    let state = leaving.unwrap_or_default();
                    self.decide(
                        i,
                        Decision::Skip,
                        format!("drained by this function, now {state} in its group: never set back to ACTIVE, never reaped"),
                    );
                }
                InstanceStatus::Draining if !inst.agent_connected => {
                    self.decide(
                        i,
                        Decision::Skip,
                        "drained by this function, but the ECS agent is disconnected",
                    );
                }
                InstanceStatus::Draining => c.ours.push(i),
                other => self.decide(i, Decision::Skip, format!("ECS status {other}")),
            }
        }
        c
    }

    /// Ours that can no longer leave through their group, or whose tasks no longer fit elsewhere, or whose
    /// absence leaves too little spare, go back to work (most room first); the rest are reaped when empty
    /// and wait otherwise. The pool that stays, with ours' tasks placed on it.
    fn settle_ours(&mut self, usable: &mut Vec<usize>, mut ours: Vec<usize>) -> Pool {
        let inv = self.inv;
        let (settings, budget, decisions) = (self.settings, &mut self.budget, &mut self.decisions);
        ours.retain(|&i| match leave_blocker(inv, &inv.instances[i], settings, budget) {
            Some(why) => {
                decisions[i] = Some((Decision::Reactivate, why));
                usable.push(i);
                false
            }
            None => true,
        });
        ours.sort_by_key(|&i| {
            let r = inv.instances[i].remaining;
            (std::cmp::Reverse(r.memory), std::cmp::Reverse(r.cpu), i)
        });
        let mut pool = Pool::new(inv, usable.iter().copied());
        loop {
            let mut trial = pool.clone();
            let placed = ours.iter().all(|&i| trial.place(&inv.instances[i].tasks));
            let shortfall = if placed {
                trial.shortfall(self.settings, self.largest_task)
            } else {
                Some("the tasks of the instances it drained would not fit elsewhere".into())
            };
            match shortfall {
                None => {
                    pool = trial;
                    break;
                }
                Some(why) if !ours.is_empty() => {
                    let i = ours.remove(0);
                    if let Some(m) = &inv.instances[i].membership {
                        *self.budget.entry(m.group.as_str()).or_default() += 1;
                    }
                    self.decide(i, Decision::Reactivate, format!("capacity needed again: {why}"));
                    usable.push(i);
                    pool = Pool::new(inv, usable.iter().copied());
                }
                Some(_) => break,
            }
        }
        for &i in &ours {
            let inst = &inv.instances[i];
            if inst.is_empty() {
                self.decide(i, Decision::Reap, "drained by this function and now empty");
            } else {
                let count = inst.tasks.len().max(usize::try_from(inst.pending_tasks).unwrap_or(0));
                self.decide(
                    i,
                    Decision::Wait,
                    format!("drained by this function; {count} task(s) still on it"),
                );
            }
        }
        pool
    }

    /// New removals from the usable instances, at most `max_removals`: empty first, then from the zone
    /// with the most instances of the group, then least reserved. The pool once they are gone.
    fn remove(&mut self, usable: &[usize], mut pool: Pool, now: DateTime<Utc>) -> Pool {
        let inv = self.inv;
        let short_before = pool.shortfall(self.settings, self.largest_task);
        let mut candidates = Vec::new();
        for &i in usable {
            if self.decisions[i].is_some() {
                continue;
            }
            match removal_blocker(inv, &inv.instances[i], self.settings, now) {
                Some(why) => self.decide(i, Decision::Skip, why),
                None => candidates.push(i),
            }
        }
        let mut staying: HashMap<(&str, &str), i64> = HashMap::new();
        for (i, inst) in inv.instances.iter().enumerate() {
            let leaving = matches!(self.decisions[i], Some((Decision::Reap | Decision::Wait, _)));
            if let (Some(m), false) = (&inst.membership, leaving) {
                *staying.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() += 1;
            }
        }
        let mut removals = 0;
        while !candidates.is_empty() {
            let most_in_az = |i: usize| -> bool {
                let Some(m) = &inv.instances[i].membership else { return false };
                let here =
                    staying.get(&(m.group.as_str(), m.availability_zone.as_str())).copied().unwrap_or(0);
                let most =
                    staying.iter().filter(|((g, _), _)| *g == m.group).map(|(_, c)| *c).max().unwrap_or(0);
                here >= most
            };
            let Some(pos) = (0..candidates.len()).min_by(|&a, &b| {
                let (ia, ib) = (&inv.instances[candidates[a]], &inv.instances[candidates[b]]);
                (!ia.is_empty(), !most_in_az(candidates[a]))
                    .cmp(&(!ib.is_empty(), !most_in_az(candidates[b])))
                    .then(ia.reserved_share().total_cmp(&ib.reserved_share()))
                    .then(ia.tasks.len().cmp(&ib.tasks.len()))
                    .then(ia.registered_at.cmp(&ib.registered_at))
                    .then(ia.container_instance_arn.cmp(&ib.container_instance_arn))
            }) else {
                break;
            };
            let i = candidates.remove(pos);
            let inst = &inv.instances[i];
            if let Some(why) = &short_before {
                self.decide(i, Decision::Keep, format!("the cluster is short of spare capacity: {why}"));
                continue;
            }
            if removals >= self.settings.max_removals {
                self.decide(
                    i,
                    Decision::Keep,
                    format!("MAX_REMOVALS_PER_RUN={} reached", self.settings.max_removals),
                );
                continue;
            }
            let group = inst.membership.as_ref().map(|m| m.group.as_str()).unwrap_or_default();
            if self.budget.get(group).copied().unwrap_or(0) <= 0 {
                let min = inv.groups.get(group).map(|g| g.min_size).unwrap_or_default();
                self.decide(
                    i,
                    Decision::Keep,
                    format!("group {group} would go under its minimum size {min}"),
                );
                continue;
            }
            let mut trial = pool.without(i);
            let why_not = if trial.place(&inst.tasks) {
                trial.shortfall(self.settings, self.largest_task)
            } else {
                Some(format!("its {} task(s) would not all fit on the other instances", inst.tasks.len()))
            };
            if let Some(why) = why_not {
                self.decide(i, Decision::Keep, why);
                continue;
            }
            pool = trial;
            removals += 1;
            *self.budget.entry(group).or_default() -= 1;
            if let Some(m) = &inst.membership {
                *staying.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() -= 1;
            }
            if inst.is_empty() {
                self.decide(
                    i,
                    Decision::Terminate,
                    "empty, and the spare capacity left meets the thresholds",
                );
            } else {
                let share = inst.reserved_share() * 100.0;
                self.decide(
                    i,
                    Decision::Drain,
                    format!("{share:.0}% reserved; its tasks fit elsewhere and the spare left meets the thresholds"),
                );
            }
        }
        pool
    }

    fn entries(self, clear_marker: Vec<bool>) -> Vec<Entry> {
        self.inv
            .instances
            .iter()
            .zip(self.decisions)
            .zip(clear_marker)
            .map(|((inst, d), clear)| {
                let (decision, reason) = d.unwrap_or((Decision::Keep, String::new()));
                Entry {
                    container_instance_arn: inst.container_instance_arn.clone(),
                    ec2_instance_id: inst.ec2_instance_id.clone(),
                    group: inst.membership.as_ref().map(|m| m.group.clone()),
                    availability_zone: inst.membership.as_ref().map(|m| m.availability_zone.clone()),
                    status: inst.status,
                    tasks: inst.tasks.len(),
                    reserved: inst.reserved(),
                    decision,
                    reason,
                    clear_marker: clear && decision != Decision::Terminate && decision != Decision::Drain,
                    progress: Progress::Planned,
                }
            })
            .collect()
    }
}

/// Why one of ours cannot be reaped through its group (and so goes back to ACTIVE); takes its place in
/// the group's budget when it can.
fn leave_blocker<'a>(
    inv: &'a Inventory,
    inst: &'a Instance,
    settings: &Settings,
    budget: &mut HashMap<&'a str, i64>,
) -> Option<String> {
    let Some(m) = &inst.membership else {
        return Some("no longer in an Auto Scaling group, so it cannot be terminated through one".into());
    };
    let Some(group) = inv.groups.get(&m.group) else {
        return Some(format!("group {} not found", m.group));
    };
    if !settings.allows(&m.group) {
        return Some(format!("group {} is not in AUTO_SCALING_GROUPS", m.group));
    }
    if let Some(cp) = &group.managed_by {
        return Some(format!("group {} is now scaled by capacity provider {cp}", m.group));
    }
    if m.protected_from_scale_in {
        return Some("protected from scale-in since it was drained".into());
    }
    let slot = budget.entry(m.group.as_str()).or_default();
    if *slot <= 0 {
        return Some(format!("group {} is at its minimum size {}", m.group, group.min_size));
    }
    *slot -= 1;
    None
}

/// Why an ACTIVE instance may not be removed at all, if it may not.
fn removal_blocker(
    inv: &Inventory,
    inst: &Instance,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(m) = &inst.membership else {
        return Some("not in an Auto Scaling group".into());
    };
    let Some(group) = inv.groups.get(&m.group) else {
        return Some(format!("group {} not found", m.group));
    };
    if !settings.allows(&m.group) {
        return Some(format!("group {} is not in AUTO_SCALING_GROUPS", m.group));
    }
    if let Some(cp) = &group.managed_by {
        return Some(format!(
            "group {} is scaled by capacity provider {cp} (managed scaling); the two would fight",
            m.group
        ));
    }
    if m.protected_from_scale_in {
        return Some("protected from scale-in".into());
    }
    if m.lifecycle_state != IN_SERVICE {
        return Some(format!("lifecycle state {}", m.lifecycle_state));
    }
    match inst.registered_at {
        None => Some("registration time unknown".into()),
        Some(at) if now - at < settings.min_instance_age => Some(format!(
            "registered {} min ago, younger than MIN_INSTANCE_AGE_MINUTES={}",
            (now - at).num_minutes(),
            settings.min_instance_age.num_minutes()
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests;
