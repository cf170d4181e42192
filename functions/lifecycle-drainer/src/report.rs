//! What a drain tells people: the SNS message when it ends, and the metrics an outcome records.

use shared::metrics::{Metrics, Record, Unit};
use shared::notify::Message;

use crate::{Action, LifecycleResult, Outcome};

impl Record for Outcome {
    /// `DrainsStarted` (the first invocation of a drain), `DrainsCompleted`, `DrainsTimedOut`,
    /// `DrainDuration` (seconds, when the drain ended) and `InstancesNotFound`; for launches `LaunchesReady`,
    /// `LaunchesAbandoned` and `LaunchWait` (seconds from the launch to ready) (EMF). Ignored messages, dry
    /// runs, launches into the warm pool and duplicates of an ended action record nothing.
    fn record(&self, m: &mut Metrics) {
        if matches!(self.action, Action::Ready | Action::NotReady) {
            m.count("LaunchesReady", usize::from(self.action == Action::Ready));
            m.count("LaunchesAbandoned", usize::from(self.action == Action::NotReady));
            if self.action == Action::Ready {
                m.add("LaunchWait", self.elapsed_seconds as f64, Unit::Seconds);
            }
            return;
        }
        let drain = matches!(self.action, Action::Completed | Action::Continued | Action::TimedOut);
        if !drain && self.action != Action::NotAnEcsInstance {
            return;
        }
        m.count("DrainsStarted", usize::from(drain && self.hop == 0));
        m.count("DrainsCompleted", usize::from(self.action == Action::Completed));
        m.count("DrainsTimedOut", usize::from(self.action == Action::TimedOut));
        m.count("InstancesNotFound", usize::from(self.action == Action::NotAnEcsInstance));
        if matches!(self.action, Action::Completed | Action::TimedOut) {
            m.add("DrainDuration", self.elapsed_seconds as f64, Unit::Seconds);
        }
    }
}

/// The message for a drain that ended in this invocation (completed or timed out); `None` otherwise.
pub fn ended(o: &Outcome) -> Option<Message> {
    if o.action == Action::NotReady {
        return Some(abandoned(o));
    }
    if !matches!(o.action, Action::Completed | Action::TimedOut) {
        return None;
    }
    let instance = o.instance_id.as_deref().unwrap_or("-");
    let subject = match o.action {
        Action::TimedOut => {
            format!("shipshape: drain of {instance} timed out with {} task(s) left", o.tasks_left)
        }
        _ => format!("shipshape: {instance} drained, termination continues"),
    };
    let result = o.result.map_or("-", LifecycleResult::as_str);
    let mut body = format!(
        "Instance: {instance}\nAuto Scaling group: {}\nLifecycle hook: {}\nCluster: {}\nDrain took: {} s over {} invocation(s)\n\
         Lifecycle action completed with: {result}\n",
        o.auto_scaling_group.as_deref().unwrap_or("-"),
        o.lifecycle_hook.as_deref().unwrap_or("-"),
        o.cluster.as_deref().unwrap_or("-"),
        o.elapsed_seconds,
        o.hop + 1,
    );
    if o.tasks_left > 0 {
        body.push_str(&format!(
            "\nThe drain timed out ({}); {} task(s) were still on the instance:\n",
            o.reason.as_deref().unwrap_or("deadline"),
            o.tasks_left
        ));
        for t in &o.tasks {
            body.push_str(&format!(
                "  {} ({}, {})\n",
                t.task_arn,
                t.last_status,
                t.group.as_deref().unwrap_or("no group")
            ));
        }
        body.push_str(
            "\nStandalone tasks (not in a service) are never stopped by draining; service tasks that stay may mean \
             their replacements could not be placed.\n",
        );
    } else {
        body.push_str("\nNo task was left on the instance; Auto Scaling now terminates it.\n");
    }
    Some(Message { subject, body })
}

/// A launch abandoned: people should look at the AMI, the user data or the agent.
fn abandoned(o: &Outcome) -> Message {
    let instance = o.instance_id.as_deref().unwrap_or("-");
    Message {
        subject: format!("shipshape: launch of {instance} abandoned, its ECS agent never became ready"),
        body: format!(
            "Instance: {instance}\nAuto Scaling group: {}\nLifecycle hook: {}\nCluster: {}\nWhy: {}\n\n\
             The lifecycle action was completed with ABANDON: Auto Scaling terminates the instance and launches \
             another. Repeated abandons mean the launch template, its AMI or user data, or the ECS agent's \
             configuration (ECS_CLUSTER) keep instances from joining the cluster.\n",
            o.auto_scaling_group.as_deref().unwrap_or("-"),
            o.lifecycle_hook.as_deref().unwrap_or("-"),
            o.cluster.as_deref().unwrap_or("-"),
            o.reason.as_deref().unwrap_or("-"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(action: Action, hop: u32) -> Outcome {
        let mut o = Outcome::ignored(String::new());
        (o.action, o.hop, o.elapsed_seconds) = (action, hop, 312);
        o
    }

    fn recorded(action: Action, hop: u32) -> Metrics {
        let mut m = Metrics::new("f");
        outcome(action, hop).record(&mut m);
        m
    }

    #[test]
    fn metrics_count_a_drain_once() {
        let first = recorded(Action::Continued, 0);
        assert_eq!((first.get("DrainsStarted"), first.get("DrainsCompleted")), (Some(1.0), Some(0.0)));
        assert_eq!(first.get("DrainDuration"), None);
        assert!(recorded(Action::AlreadyCompleted, 0).is_empty(), "a duplicate records nothing");
        assert!(recorded(Action::DryRun, 0).is_empty());
    }

    #[test]
    fn metrics_count_a_drain_at_its_end() {
        let done = recorded(Action::Completed, 3);
        assert_eq!((done.get("DrainsStarted"), done.get("DrainsCompleted")), (Some(0.0), Some(1.0)));
        assert_eq!(done.get("DrainDuration"), Some(312.0));
        assert_eq!(recorded(Action::TimedOut, 9).get("DrainsTimedOut"), Some(1.0));
        assert_eq!(recorded(Action::NotAnEcsInstance, 0).get("InstancesNotFound"), Some(1.0));
    }

    #[test]
    fn only_an_ended_drain_has_a_message() {
        assert!(ended(&outcome(Action::Continued, 0)).is_none());
        let mut timed_out = outcome(Action::TimedOut, 2);
        timed_out.instance_id = Some("i-12345678".into());
        timed_out.tasks_left = 1;
        let message = ended(&timed_out).unwrap();
        assert_eq!(message.subject, "shipshape: drain of i-12345678 timed out with 1 task(s) left");
        assert!(message.body.contains("over 3 invocation(s)"), "{}", message.body);
    }
}
