//! What a drain tells people: the SNS message, and the metrics an outcome records.

use shared::ecs::Found;
use shared::metrics::{Metrics, Record};
use shared::notify::Message;

use crate::aws::Replacement;
use crate::input::{MaintenanceKind, SpotEvent, Trigger};
use crate::{Action, Outcome, Reply};

impl Record for Reply {
    /// `DrainsStarted`, `DrainsUndone` (a drain whose reason is gone, set ACTIVE again), `Replacements`
    /// (asked of Auto Scaling before scheduled maintenance) and `InstancesNotFound` (EMF), summed over the
    /// instances; ignored events and dry runs record nothing.
    fn record(&self, m: &mut Metrics) {
        let counted: Vec<&Outcome> = self
            .outcomes()
            .iter()
            .filter(|o| !matches!(o.action, Action::Ignored | Action::DryRun))
            .collect();
        if counted.is_empty() {
            return;
        }
        let count = |pick: &dyn Fn(&Outcome) -> bool| counted.iter().filter(|o| pick(o)).count();
        m.count("DrainsStarted", count(&|o| o.action == Action::Drained));
        m.count("DrainsUndone", count(&|o| o.action == Action::Reactivated));
        m.count("InstancesNotFound", count(&|o| o.action == Action::NotAnEcsInstance));
        m.count("Replacements", count(&|o| o.replacement == Some(Replacement::Requested)));
    }
}

/// The message for an instance drained before scheduled maintenance.
pub fn scheduled(instance_id: &str, kind: MaintenanceKind, found: &Found) -> Message {
    let what: &str = match kind {
        MaintenanceKind::Retirement => "retirement",
        MaintenanceKind::Stop => "a scheduled stop",
        MaintenanceKind::Reboot => "a scheduled reboot",
    };
    Message {
        subject: format!("shipshape: draining {instance_id} in {} (scheduled {what})", found.cluster),
        body: format!(
            "EC2 schedules {what} for this instance.\n\nInstance: {instance_id}\nCluster: {}\nContainer instance: {}\n\
             Tasks on it: {} running, {} pending\n\nshipshape set the container instance to DRAINING: ECS moves its \
             service tasks to other instances before the date.",
            found.cluster, found.container_instance_arn, found.running_tasks, found.pending_tasks
        ),
    }
}

/// The message for an instance set back to ACTIVE, and why.
pub fn undone(instance_id: &str, why: &str, found: &Found) -> Message {
    Message {
        subject: format!("shipshape: {instance_id} set ACTIVE again in {}", found.cluster),
        body: format!(
            "The reason shipshape drained it for is gone: {why}.\n\nInstance: {instance_id}\nCluster: {}\n\
             Container instance: {}\n\nshipshape has set it back to ACTIVE: ECS can place tasks on it again.",
            found.cluster, found.container_instance_arn
        ),
    }
}

/// The message for an instance just set DRAINING.
pub fn drained(spot: &SpotEvent, found: &Found) -> Message {
    let why = match spot.trigger {
        Trigger::Rebalance => {
            "EC2 sent a rebalance recommendation: this Spot instance is at elevated risk of interruption."
                .to_owned()
        }
        t => format!(
            "EC2 sent a Spot interruption warning: this instance will {} in about two minutes.",
            t.name()
        ),
    };
    Message {
        subject: format!(
            "shipshape: draining {} in {} (spot {})",
            spot.instance_id,
            found.cluster,
            spot.trigger.name()
        ),
        body: format!(
            "{why}\n\nInstance: {}\nCluster: {}\nContainer instance: {}\nTasks on it: {} running, {} pending\n\n\
             shipshape set the container instance to DRAINING. ECS now starts replacements for its service tasks \
             on other instances and stops these ones once the replacements are healthy. Standalone tasks (not in \
             a service) are not moved and stop with the instance.",
            spot.instance_id,
            found.cluster,
            found.container_instance_arn,
            found.running_tasks,
            found.pending_tasks
        ),
    }
}

#[cfg(test)]
mod tests {
    use shared::events::InstanceId;
    use shared::notify::Notification;

    use super::*;

    fn recorded(action: Action) -> Metrics {
        recorded_for(action, Trigger::Terminate)
    }

    fn recorded_for(action: Action, trigger: Trigger) -> Metrics {
        let mut o = Outcome::new(
            &SpotEvent { instance_id: InstanceId::parse("f", "i-12345678").unwrap(), trigger, time: None },
            Notification::Off,
        );
        o.action = action;
        let mut m = Metrics::new("f");
        Reply::One(Box::new(o)).record(&mut m);
        m
    }

    #[test]
    fn metrics_count_drains() {
        assert_eq!(recorded(Action::Drained).get("DrainsStarted"), Some(1.0));
        assert_eq!(recorded(Action::AlreadyDraining).get("DrainsStarted"), Some(0.0));
    }

    #[test]
    fn metrics_count_undone_drains() {
        assert_eq!(recorded_for(Action::Reactivated, Trigger::Running).get("DrainsUndone"), Some(1.0));
        assert_eq!(recorded_for(Action::Reactivated, Trigger::Sweep).get("DrainsStarted"), Some(0.0));
    }

    #[test]
    fn metrics_count_instances_not_found() {
        assert_eq!(recorded(Action::NotAnEcsInstance).get("InstancesNotFound"), Some(1.0));
        assert!(recorded(Action::Ignored).is_empty());
    }
}
