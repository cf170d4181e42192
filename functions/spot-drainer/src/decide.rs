//! What to do with a container instance, as pure functions of what was read and of the time (an argument):
//! drain it, leave it, undo our drain (only when EC2 shows its reason gone), have it replaced; and whether
//! a careful rebalance drain leaves the cluster enough spare capacity.

use chrono::{DateTime, Utc};
use shared::drain::{Marker, Owner};
use shared::ecs::InstanceStatus;

use crate::Action;
use crate::input::Trigger;

/// Whether `DRAIN_ON` asks for this kind of event at all (decided before any AWS call).
pub fn wanted(trigger: Trigger, drain_on: &[Trigger]) -> bool {
    drain_on.contains(&trigger)
}

/// An ACTIVE instance is drained (or would be, in a dry run); one already DRAINING is left as it is, so a
/// duplicate event changes nothing; any other status cannot be drained.
pub fn decide(status: InstanceStatus, dry_run: bool) -> Action {
    match status {
        InstanceStatus::Draining => Action::AlreadyDraining,
        InstanceStatus::Active if dry_run => Action::DryRun,
        InstanceStatus::Active => Action::Drained,
        _ => Action::NotDrainable,
    }
}

/// The marker a drain of ours for `trigger` carries: one that may be undone (the instance may come back,
/// or the risk pass) says why and since when; a termination is never undone, and costs no call in its two
/// minutes.
pub fn marker_for(trigger: Trigger, at: DateTime<Utc>) -> Option<Marker> {
    trigger.may_come_back().then(|| Marker::new(Owner::SpotDrainer, trigger.name(), at))
}

/// A warning for an instance already DRAINING under our marker: the marker is stamped again with the new
/// warning (so that a restart before it can never undo this drain), and a termination is never undone.
/// The marker never goes back in time, nor to a weaker reason (a late or forged event of another kind must
/// not make a standing drain undoable). `None`: leave the marker (not ours, or nothing newer).
pub fn after_warning(marker: Option<&Marker>, warning: Trigger, at: DateTime<Utc>) -> Option<Marker> {
    let m = marker.filter(|m| m.held_by(Owner::SpotDrainer))?;
    if strength(warning) < Trigger::from_name(&m.reason).map_or(0, strength) {
        return None;
    }
    let at = at.max(m.at);
    (at > m.at || m.reason != warning.name()).then(|| Marker::new(Owner::SpotDrainer, warning.name(), at))
}

/// What a warning does to a drain the scale-in-cleaner owns: the cleaner undoes its drains when capacity is
/// needed, and would set an instance about to be interrupted ACTIVE again. The drain becomes ours (our
/// marker for a reason that may pass; none for a termination, never undone).
/// The marker under which a warning takes over the scale-in-cleaner's drain. Only a stop or hibernation
/// is taken over (undone by us once the instance runs again after it, dated no earlier than the cleaner's
/// drain); a termination or a rebalance leaves the drain the cleaner's, whose undo or reap stays the way
/// out for an instance that was never interrupted.
pub fn take_over(marker: Option<&Marker>, warning: Trigger, at: DateTime<Utc>) -> Option<Marker> {
    let m = marker.filter(|m| m.owner == Owner::ScaleInCleaner)?;
    if !matches!(warning, Trigger::Stop | Trigger::Hibernate) {
        return None;
    }
    marker_for(warning, at.max(m.at))
}

/// How surely a reason takes the instance away: a termination, then a stop or hibernation, then scheduled
/// maintenance, then a rebalance recommendation (a risk only).
fn strength(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::Terminate => 4,
        Trigger::Stop | Trigger::Hibernate => 3,
        Trigger::Scheduled => 2,
        Trigger::Rebalance => 1,
        Trigger::Running | Trigger::Sweep => 0,
    }
}

/// What EC2 says of an instance right now (`DescribeInstances`, `DescribeInstanceStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ec2 {
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`; `None`: EC2 does not
    /// know it (terminated long ago).
    pub state: Option<String>,
    /// When it was last launched (started again, for a stopped instance).
    pub launched: Option<DateTime<Utc>>,
    /// The codes of its scheduled events not completed (`instance-retirement`, `system-reboot`, ...): an
    /// event EC2 completed is described as `[Completed] ...`, one it cancelled is no longer listed.
    pub open_events: Vec<String>,
    /// Whether EC2 answered for its status at all: without an answer, `open_events` says nothing.
    pub events_known: bool,
}

impl Ec2 {
    pub fn running(&self) -> bool {
        self.state.as_deref() == Some("running")
    }
}

/// Whether an event's description says EC2 is done with it.
pub fn event_over(description: &str) -> bool {
    description.starts_with("[Completed]") || description.starts_with("[Canceled]")
}

/// What the reconcile does with one of our drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sweep {
    /// Its reason stands: leave it DRAINING.
    Leave,
    /// Its reason is gone (why): set it ACTIVE again, if its group is not removing it.
    Undo(String),
    /// Drained for maintenance EC2 still schedules, with `REPLACE_ON_SCHEDULED`: ask its group to replace it.
    Replace,
}

/// The reconcile's decision for an instance DRAINING under our held marker, from what EC2 says now:
/// - a stop or hibernation: undone once the instance runs again, launched after our drain;
/// - scheduled maintenance: replaced while EC2 still schedules it (with `REPLACE_ON_SCHEDULED`); undone
///   once EC2 lists no open event for it (cancelled, or done) and it runs, launched after our drain or
///   never stopped by it;
/// - a careful rebalance drain no warning followed within `undo_rebalance_after`: undone;
/// - a termination: never undone.
pub fn sweep(
    marker: &Marker,
    ec2: &Ec2,
    now: DateTime<Utc>,
    undo_rebalance_after: Option<std::time::Duration>,
    replace_on_scheduled: bool,
) -> Sweep {
    let back = ec2.running() && ec2.launched.is_some_and(|at| at > marker.at);
    match Trigger::from_name(&marker.reason) {
        Some(Trigger::Stop | Trigger::Hibernate) if back => {
            Sweep::Undo(format!("EC2 shows it running again since {}", ec2.launched.unwrap_or(now)))
        }
        Some(Trigger::Scheduled) if !ec2.open_events.is_empty() => {
            if replace_on_scheduled {
                Sweep::Replace
            } else {
                Sweep::Leave
            }
        }
        Some(Trigger::Scheduled) if ec2.running() && ec2.events_known => Sweep::Undo(
            "EC2 lists no scheduled event for it any more (cancelled, or done) and it runs".into(),
        ),
        Some(Trigger::Rebalance) => match undo_rebalance_after {
            Some(after)
                if now - marker.at >= chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX) =>
            {
                Sweep::Undo(format!(
                    "no interruption warning followed the rebalance recommendation within {} min",
                    after.as_secs() / 60
                ))
            }
            _ => Sweep::Leave,
        },
        _ => Sweep::Leave,
    }
}

/// CPU units and MiB of one container instance: registered, and remaining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Room {
    pub registered: (i64, i64),
    pub remaining: (i64, i64),
}

/// The scale-in-cleaner's reserve rule, for a careful rebalance drain: once the instance's tasks have moved
/// to the other ACTIVE instances, their spare CPU and memory must stay at or above the percentages of what
/// they register. Why not, when it does not hold.
pub fn spare_without(
    instance: Room,
    others: &[Room],
    reserve_cpu: u32,
    reserve_memory: u32,
) -> Result<(), String> {
    let moving = (instance.registered.0 - instance.remaining.0, instance.registered.1 - instance.remaining.1);
    let registered = others.iter().fold((0, 0), |s, r| (s.0 + r.registered.0, s.1 + r.registered.1));
    let remaining = others.iter().fold((0, 0), |s, r| (s.0 + r.remaining.0, s.1 + r.remaining.1));
    let spare = (remaining.0 - moving.0, remaining.1 - moving.1);
    // Exact integer comparison: spare * 100 >= percent * registered.
    let short = |spare: i64, total: i64, pct: u32| spare * 100 < i64::from(pct) * total;
    if short(spare.0, registered.0, reserve_cpu) {
        return Err(format!(
            "without it the cluster's spare CPU would be {} of {} units, under RESERVE_CPU_PERCENT={reserve_cpu}",
            spare.0, registered.0
        ));
    }
    if short(spare.1, registered.1, reserve_memory) {
        return Err(format!(
            "without it the cluster's spare memory would be {} of {} MiB, under RESERVE_MEMORY_PERCENT={reserve_memory}",
            spare.1, registered.1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
