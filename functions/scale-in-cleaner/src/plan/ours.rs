//! The instances this function drained earlier: reaped when empty, waited for while their tasks leave,
//! set back to ACTIVE when the cluster needs them, when they can no longer leave through their group, or
//! when their drain has stalled.
//!
//! A drain has stalled when it began at least `STALLED_DRAIN_MINUTES` ago (the marker's time), tasks of
//! a service are still on the instance, and that service reported "unable to place a task" since the
//! drain began and has started no task for `STALLED_DRAIN_MINUTES`. The service events (with their
//! times, newest first in `DescribeServices`) are what ECS says about the drain's replacements; counting
//! an instance's tasks from run to run would need a history this function does not keep.

use chrono::Duration;

use super::Planner;
use super::model::{Decision, Instance, Reason};
use super::placement::{Mode, Pool};
use super::service::EventKind;

/// How long an instance whose drain stalled is not drained again: whatever blocked its tasks (a
/// constraint or a port this function did not see) is unlikely to be gone within a day.
pub fn stalled_hold() -> Duration {
    Duration::hours(24)
}

impl Planner<'_> {
    /// Ours that stalled, that can no longer leave through their group, whose tasks no longer fit
    /// elsewhere, or whose absence leaves too little spare, go back to work (most room first); the rest are
    /// reaped when empty and wait otherwise. The pool that stays, with ours' tasks placed on it.
    pub(super) fn settle_ours(&mut self, usable: &mut Vec<usize>, mut ours: Vec<usize>) -> Pool {
        let inv = self.inv;
        ours.retain(|&i| {
            let inst = &inv.instances[i];
            if inst.tasks.is_none() {
                // Its tasks are read before the next plan; until then it is counted as leaving.
                self.wanted.push(i);
                let why = if inst.undescribed {
                    "drained by this function; ECS lists a task on it that it cannot describe yet"
                } else {
                    "drained by this function; its tasks are read next"
                };
                self.decide(i, Decision::Wait, Reason::TasksLeaving, why);
                return false;
            }
            let blocker = self
                .stalled(inst)
                .or_else(|| self.drain_never_ends(inst))
                .or_else(|| self.unplaced(inst))
                .or_else(|| self.leave_blocker(inst));
            match blocker {
                Some((reason, why)) => {
                    self.decide(i, Decision::Reactivate, reason, why);
                    usable.push(i);
                    false
                }
                None => true,
            }
        });
        ours.sort_by_key(|&i| {
            let r = inv.instances[i].remaining;
            (std::cmp::Reverse(r.memory), std::cmp::Reverse(r.cpu), i)
        });
        let mut pool = Pool::new(inv, usable.iter().copied(), self.largest_task);
        loop {
            pool.begin();
            let mut placed = Ok(());
            for &i in &ours {
                let inst = &inv.instances[i];
                let tasks = inst.tasks.as_deref().unwrap_or_default();
                placed = pool.place(inv, tasks, inst.zone(), Mode::Draining, &mut self.queries);
                if placed.is_err() {
                    break;
                }
            }
            let shortfall = match placed {
                Ok(()) => pool.shortfall(self.settings).map(|b| b.detail),
                Err(b) => {
                    Some(format!("the tasks of the instances it drained would not all move: {}", b.detail))
                }
            };
            if shortfall.is_none() {
                pool.commit();
                break;
            }
            pool.rollback();
            match shortfall {
                Some(why) if !ours.is_empty() => {
                    let i = ours.remove(0);
                    if let Some(m) = &inv.instances[i].membership {
                        *self.min_size_room.entry(m.group.as_str()).or_default() += 1;
                    }
                    self.decide(
                        i,
                        Decision::Reactivate,
                        Reason::CapacityNeeded,
                        format!("capacity needed again: {why}"),
                    );
                    usable.push(i);
                    pool.add(inv, i);
                }
                _ => break,
            }
        }
        let open = self.settings.windows.contains(self.now);
        for &i in &ours {
            let inst = &inv.instances[i];
            // Tasks told to stop hold their share until they are STOPPED; without daemon services in the
            // cluster, nothing else holds any.
            let stopping =
                inst.is_empty() && inv.daemon_groups.is_empty() && inst.remaining != inst.registered;
            if stopping {
                let why = "drained by this function; its last tasks are still stopping";
                self.decide(i, Decision::Wait, Reason::TasksLeaving, why);
            } else if let Some(why) = inst.is_empty().then(|| self.replacements_starting(inst)).flatten() {
                self.decide(i, Decision::Wait, Reason::TasksLeaving, why);
            } else if inst.is_empty() && open {
                self.decide(
                    i,
                    Decision::Reap,
                    Reason::DrainedAndEmpty,
                    "drained by this function and now empty",
                );
            } else if inst.is_empty() {
                let why = format!(
                    "drained and empty, reaped inside SCALE_IN_WINDOWS={}",
                    self.settings.windows.text()
                );
                self.decide(i, Decision::Wait, Reason::OutsideWindow, why);
            } else {
                let count = inst.task_count().max(usize::try_from(inst.pending_tasks).unwrap_or(0));
                let why = format!("drained by this function; {count} task(s) still on it");
                self.decide(i, Decision::Wait, Reason::TasksLeaving, why);
            }
        }
        pool
    }

    /// Whether our drain of `inst` has stalled, and why.
    fn stalled(&self, inst: &Instance) -> Option<(Reason, String)> {
        let since = inst.drained_at()?;
        let after = self.settings.stalled_after;
        if self.now - since < after {
            return None;
        }
        let tasks = inst.tasks.as_deref().unwrap_or_default();
        let mut services: Vec<&str> = tasks.iter().filter_map(|t| t.service()).collect();
        services.sort_unstable();
        services.dedup();
        services.into_iter().find_map(|name| {
            let service = self.inv.services.get(name)?;
            let unable = service
                .events
                .iter()
                .filter(|e| e.kind == EventKind::UnableToPlace && e.at >= since)
                .map(|e| e.at)
                .min()?;
            let started = service.events.iter().any(|e| e.kind == EventKind::Started && e.at > self.now - after);
            (!started).then(|| {
                let why = format!(
                    "drain stalled: service {name} has been unable to place its tasks since {} and started none in \
                     STALLED_DRAIN_MINUTES={}",
                    unable.format("%Y-%m-%dT%H:%M:%SZ"),
                    after.num_minutes()
                );
                (Reason::StalledDrain, why)
            })
        })
    }

    /// Why one of ours cannot be reaped through its group (and so goes back to ACTIVE); takes its place in
    /// the group's room above its minimum size when it can.
    fn leave_blocker(&mut self, inst: &Instance) -> Option<(Reason, String)> {
        let inv = self.inv;
        let Some(m) = &inst.membership else {
            let why = "no longer in an Auto Scaling group, so it cannot be terminated through one";
            return Some((Reason::NoGroup, why.into()));
        };
        let Some(group) = inv.groups.get(&m.group) else {
            return Some((Reason::GroupNotFound, format!("group {} not found", m.group)));
        };
        if !self.settings.allows(&m.group) {
            return Some((
                Reason::GroupNotAllowed,
                format!("group {} is not in AUTO_SCALING_GROUPS", m.group),
            ));
        }
        if let Some(cp) = &group.managed_by {
            let why = format!("group {} is now scaled by capacity provider {cp}", m.group);
            return Some((Reason::CapacityProvider, why));
        }
        if m.protected_from_scale_in {
            return Some((Reason::ScaleInProtected, "protected from scale-in since it was drained".into()));
        }
        let (name, _) = inv.groups.get_key_value(&m.group)?;
        let slot = self.min_size_room.entry(name.as_str()).or_default();
        if *slot <= 0 {
            return Some((
                Reason::MinSize,
                format!("group {} is at its minimum size {}", m.group, group.min_size),
            ));
        }
        *slot -= 1;
        None
    }
}
