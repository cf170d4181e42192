//! What a drain tells people: the SNS message, and the metrics an outcome records.

use shared::ecs::Found;
use shared::metrics::{Metrics, Record};
use shared::notify::Message;

use crate::input::{SpotEvent, Trigger};
use crate::{Action, Outcome};

impl Record for Outcome {
    /// `DrainsStarted`, `DrainsUndone` (an instance back from a stop or hibernation) and `InstancesNotFound`
    /// (EMF); ignored events and dry runs record nothing, nor does an instance start that is not ours.
    fn record(&self, m: &mut Metrics) {
        if matches!(self.action, Action::Ignored | Action::DryRun) {
            return;
        }
        if self.trigger == Trigger::Running {
            m.count("DrainsUndone", usize::from(self.action == Action::Reactivated));
            return;
        }
        m.count("DrainsStarted", usize::from(self.action == Action::Drained));
        m.count("InstancesNotFound", usize::from(self.action == Action::NotAnEcsInstance));
    }
}

/// The message for an instance set back to ACTIVE.
pub fn undone(spot: &SpotEvent, found: &Found) -> Message {
    Message {
        subject: format!("shipshape: {} is back, set ACTIVE again in {}", spot.instance_id, found.cluster),
        body: format!(
            "EC2 reports the instance running again after its Spot interruption (stop or hibernate).\n\n\
             Instance: {}\nCluster: {}\nContainer instance: {}\n\nshipshape had set it DRAINING for that \
             interruption, and has set it back to ACTIVE: ECS can place tasks on it again.",
            spot.instance_id, found.cluster, found.container_instance_arn
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
        let mut o = Outcome::new(
            &SpotEvent {
                instance_id: InstanceId::parse("f", "i-12345678").unwrap(),
                trigger: Trigger::Terminate,
                time: None,
            },
            Notification::Off,
        );
        o.action = action;
        let mut m = Metrics::new("f");
        o.record(&mut m);
        m
    }

    #[test]
    fn metrics_count_drains() {
        assert_eq!(recorded(Action::Drained).get("DrainsStarted"), Some(1.0));
        assert_eq!(recorded(Action::AlreadyDraining).get("DrainsStarted"), Some(0.0));
    }

    #[test]
    fn metrics_count_instances_not_found() {
        assert_eq!(recorded(Action::NotAnEcsInstance).get("InstancesNotFound"), Some(1.0));
        assert!(recorded(Action::Ignored).is_empty());
    }
}
