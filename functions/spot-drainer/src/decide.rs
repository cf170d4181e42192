//! What to do with a container instance found for the warned EC2 instance. Pure.

use chrono::{DateTime, Utc};
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

/// What to do when an instance runs again: undo our drain if it was ours, for an interruption the
/// instance came back from (the marker, with when we drained), and the instance ran again after it
/// (`ran_at`; a late delivery of an older state change must not undo a newer drain). Nothing we did not
/// drain is ever set back to ACTIVE. The action, and why, when it is not a reactivation.
pub fn undo(
    status: InstanceStatus,
    drained_at: Option<DateTime<Utc>>,
    ran_at: DateTime<Utc>,
    dry_run: bool,
) -> (Action, Option<String>) {
    match (status, drained_at) {
        (InstanceStatus::Draining, Some(at)) if ran_at > at => {
            (if dry_run { Action::DryRun } else { Action::Reactivated }, None)
        }
        (InstanceStatus::Draining, Some(at)) => {
            (Action::Ignored, Some(format!("it ran at {ran_at}, before this function drained it at {at}")))
        }
        (InstanceStatus::Draining, None) => {
            (Action::Ignored, Some("DRAINING, but not by this function".into()))
        }
        (other, _) => (Action::Ignored, Some(format!("container instance is {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_our_drain_is_undone_and_only_by_a_later_start() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
        let drained = Some(at("2026-11-22T10:00:00Z"));
        let later = at("2026-11-22T11:00:00Z");
        assert_eq!(undo(InstanceStatus::Draining, drained, later, false), (Action::Reactivated, None));
        assert_eq!(undo(InstanceStatus::Draining, drained, later, true).0, Action::DryRun);
        let (action, why) = undo(InstanceStatus::Draining, drained, at("2026-11-22T09:59:00Z"), false);
        assert_eq!(action, Action::Ignored);
        assert!(why.unwrap_or_default().contains("before this function drained it"));
        assert_eq!(undo(InstanceStatus::Draining, None, later, false).0, Action::Ignored);
        assert_eq!(undo(InstanceStatus::Active, drained, later, false).0, Action::Ignored);
    }

    #[test]
    fn drain_on_filters_triggers() {
        assert!(wanted(Trigger::Stop, &[Trigger::Stop]));
        assert!(!wanted(Trigger::Rebalance, &[Trigger::Terminate, Trigger::Stop, Trigger::Hibernate]));
    }
}
