//! What to do with a container instance found for an event, as pure functions of what was read and of the
//! time (an argument): drain it, undo our drain, or leave it; and whether a careful rebalance drain leaves
//! the cluster enough spare capacity.

use chrono::{DateTime, SecondsFormat, Utc};
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

/// Our drain marker: what the instance was drained for, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub trigger: Trigger,
    pub at: DateTime<Utc>,
}

impl Marker {
    /// `<trigger>@<time>`: an attribute value ECS accepts (letters, digits, `-`, `@`, `:`, ...).
    pub fn value(&self) -> String {
        format!("{}@{}", self.trigger.name(), self.at.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn parse(value: &str) -> Option<Marker> {
        let (trigger, at) = value.split_once('@')?;
        Some(Marker { trigger: trigger.parse().ok()?, at: at.parse().ok()? })
    }

    /// A drain an instance comes back from by running again: the stop or hibernation of a Spot instance,
    /// a scheduled stop or retirement (EBS-backed instances are stopped).
    fn undone_by_running(&self) -> bool {
        matches!(self.trigger, Trigger::Stop | Trigger::Hibernate | Trigger::Scheduled)
    }
}

/// What to do when an instance runs again: undo our drain if it was ours, for an interruption the
/// instance came back from, and the instance ran again after it (`ran_at`; a late delivery of an older
/// state change must not undo a newer drain). Nothing we did not drain is ever set back to ACTIVE. The
/// action, and why, when it is not a reactivation.
pub fn undo(
    status: InstanceStatus,
    marker: Option<Marker>,
    ran_at: DateTime<Utc>,
    dry_run: bool,
) -> (Action, Option<String>) {
    match (status, marker) {
        (InstanceStatus::Draining, Some(m)) if !m.undone_by_running() => (
            Action::Ignored,
            Some(format!("drained for {}, which running again does not undo", m.trigger.name())),
        ),
        (InstanceStatus::Draining, Some(m)) if ran_at > m.at => {
            (if dry_run { Action::DryRun } else { Action::Reactivated }, None)
        }
        (InstanceStatus::Draining, Some(m)) => (
            Action::Ignored,
            Some(format!("it ran at {ran_at}, before this function drained it at {}", m.at)),
        ),
        (InstanceStatus::Draining, None) => {
            (Action::Ignored, Some("DRAINING, but not by this function".into()))
        }
        (other, _) => (Action::Ignored, Some(format!("container instance is {other}"))),
    }
}

/// What the sweep does with one of our DRAINING instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepStep {
    Leave,
    /// A careful drain for a rebalance recommendation that no interruption warning followed within
    /// `undo_after` (a warning rewrites the marker): the instance was at risk, and was not taken.
    Undo,
    /// Drained for scheduled maintenance, to be replaced (`REPLACE_ON_SCHEDULED`): ask its group again,
    /// now that its tasks may have moved.
    Replace,
}

pub fn sweep(
    status: InstanceStatus,
    marker: Option<Marker>,
    now: DateTime<Utc>,
    undo_rebalance_after: Option<std::time::Duration>,
    replace_on_scheduled: bool,
) -> SweepStep {
    let (InstanceStatus::Draining, Some(m)) = (status, marker) else { return SweepStep::Leave };
    match m.trigger {
        Trigger::Rebalance => match undo_rebalance_after {
            Some(after)
                if now - m.at >= chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX) =>
            {
                SweepStep::Undo
            }
            _ => SweepStep::Leave,
        },
        Trigger::Scheduled if replace_on_scheduled => SweepStep::Replace,
        _ => SweepStep::Leave,
    }
}

/// A warning for an instance we already drained for a rebalance recommendation: what the marker becomes.
/// A termination is never undone (no marker); a stop or hibernation is undone when it runs again.
pub fn after_warning(marker: Option<Marker>, warning: Trigger, at: DateTime<Utc>) -> Option<Option<Marker>> {
    match marker {
        Some(m) if m.trigger == Trigger::Rebalance && warning != Trigger::Rebalance => {
            Some(warning.may_come_back().then_some(Marker { trigger: warning, at }))
        }
        _ => None,
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
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn marker(trigger: Trigger) -> Option<Marker> {
        Some(Marker { trigger, at: at("2026-11-22T10:00:00Z") })
    }

    #[test]
    fn only_active_instances_are_drained() {
        assert_eq!(decide(InstanceStatus::Active, false), Action::Drained);
        assert_eq!(decide(InstanceStatus::Active, true), Action::DryRun);
        assert_eq!(decide(InstanceStatus::Draining, false), Action::AlreadyDraining);
        for status in [
            InstanceStatus::Registering,
            InstanceStatus::Deregistering,
            InstanceStatus::RegistrationFailed,
            InstanceStatus::Inactive,
            InstanceStatus::Unknown,
        ] {
            assert_eq!(decide(status, false), Action::NotDrainable, "{status}");
        }
    }

    #[test]
    fn markers_round_trip() {
        let m = Marker { trigger: Trigger::Rebalance, at: at("2026-11-22T10:00:00Z") };
        assert_eq!(m.value(), "rebalance@2026-11-22T10:00:00Z");
        assert_eq!(Marker::parse(&m.value()), Some(m));
        assert_eq!(Marker::parse("2026-11-22T10:00:00Z"), None);
    }

    #[test]
    fn only_our_drain_is_undone_and_only_by_a_later_start() {
        let later = at("2026-11-22T11:00:00Z");
        assert_eq!(
            undo(InstanceStatus::Draining, marker(Trigger::Stop), later, false),
            (Action::Reactivated, None)
        );
        assert_eq!(
            undo(InstanceStatus::Draining, marker(Trigger::Scheduled), later, false).0,
            Action::Reactivated
        );
        assert_eq!(undo(InstanceStatus::Draining, marker(Trigger::Stop), later, true).0, Action::DryRun);
        let (action, why) =
            undo(InstanceStatus::Draining, marker(Trigger::Stop), at("2026-11-22T09:59:00Z"), false);
        assert_eq!(action, Action::Ignored);
        assert!(why.unwrap_or_default().contains("before this function drained it"));
        assert_eq!(undo(InstanceStatus::Draining, None, later, false).0, Action::Ignored);
        assert_eq!(undo(InstanceStatus::Active, marker(Trigger::Stop), later, false).0, Action::Ignored);
        // A rebalance drain is undone by the sweep, not by the instance running (it never stopped).
        assert_eq!(
            undo(InstanceStatus::Draining, marker(Trigger::Rebalance), later, false).0,
            Action::Ignored
        );
    }

    #[test]
    fn the_sweep_undoes_a_rebalance_drain_no_warning_followed() {
        let hour = Some(Duration::from_secs(3600));
        let step = |status, m, now| sweep(status, m, at(now), hour, false);
        assert_eq!(
            step(InstanceStatus::Draining, marker(Trigger::Rebalance), "2026-11-22T11:00:00Z"),
            SweepStep::Undo
        );
        assert_eq!(
            step(InstanceStatus::Draining, marker(Trigger::Rebalance), "2026-11-22T10:59:59Z"),
            SweepStep::Leave
        );
        assert_eq!(
            step(InstanceStatus::Draining, marker(Trigger::Stop), "2026-11-23T10:00:00Z"),
            SweepStep::Leave
        );
        assert_eq!(
            step(InstanceStatus::Active, marker(Trigger::Rebalance), "2026-11-23T10:00:00Z"),
            SweepStep::Leave
        );
        assert_eq!(step(InstanceStatus::Draining, None, "2026-11-23T10:00:00Z"), SweepStep::Leave);
        // Not in careful mode: a rebalance drain stays.
        let now = at("2026-11-23T10:00:00Z");
        assert_eq!(
            sweep(InstanceStatus::Draining, marker(Trigger::Rebalance), now, None, true),
            SweepStep::Leave
        );
    }

    #[test]
    fn the_sweep_asks_again_for_a_replacement_before_maintenance() {
        let now = at("2026-11-23T10:00:00Z");
        assert_eq!(
            sweep(InstanceStatus::Draining, marker(Trigger::Scheduled), now, None, true),
            SweepStep::Replace
        );
        assert_eq!(
            sweep(InstanceStatus::Draining, marker(Trigger::Scheduled), now, None, false),
            SweepStep::Leave
        );
        assert_eq!(
            sweep(InstanceStatus::Active, marker(Trigger::Scheduled), now, None, true),
            SweepStep::Leave
        );
    }

    #[test]
    fn a_warning_after_a_rebalance_drain_rewrites_the_marker() {
        let now = at("2026-11-22T10:30:00Z");
        assert_eq!(after_warning(marker(Trigger::Rebalance), Trigger::Terminate, now), Some(None));
        assert_eq!(
            after_warning(marker(Trigger::Rebalance), Trigger::Stop, now),
            Some(Some(Marker { trigger: Trigger::Stop, at: now }))
        );
        assert_eq!(after_warning(marker(Trigger::Stop), Trigger::Terminate, now), None);
        assert_eq!(after_warning(None, Trigger::Terminate, now), None);
    }

    #[test]
    fn a_careful_drain_keeps_the_reserve_at_its_exact_edge() {
        let room = |used: i64| Room { registered: (1000, 1000), remaining: (1000 - used, 1000 - used) };
        // Two others of 1000 with 600 used each: 800 spare of 2000 once the instance's 200 move.
        assert_eq!(spare_without(room(200), &[room(600), room(600)], 30, 30), Ok(()));
        assert_eq!(spare_without(room(200), &[room(600), room(600)], 20, 20), Ok(()));
        assert!(spare_without(room(201), &[room(600), room(600)], 30, 0).unwrap_err().contains("spare CPU"));
        assert!(spare_without(room(200), &[], 0, 20).is_err(), "nowhere to go");
    }

    #[test]
    fn drain_on_filters_triggers() {
        assert!(wanted(Trigger::Stop, &[Trigger::Stop]));
        assert!(!wanted(Trigger::Rebalance, &[Trigger::Terminate, Trigger::Stop, Trigger::Hibernate]));
    }
}
