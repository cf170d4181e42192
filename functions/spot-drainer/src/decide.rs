//! What to do with a container instance found for the warned EC2 instance. Pure.

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
    fn drain_on_filters_triggers() {
        assert!(wanted(Trigger::Stop, &[Trigger::Stop]));
        assert!(!wanted(Trigger::Rebalance, &[Trigger::Terminate, Trigger::Stop, Trigger::Hibernate]));
    }
}
