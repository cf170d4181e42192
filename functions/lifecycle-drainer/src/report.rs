//! What a lifecycle action tells people when it ends (an SNS message), and the metrics an outcome records.

use shared::metrics::{Metrics, Record, Unit};
use shared::notify::Message;

use crate::{ActionReport, LifecycleResult, Outcome, Step};

impl Record for Outcome {
    /// `DrainsStarted` (drains begun in this invocation), `DrainsCompleted`, `DrainsTimedOut`,
    /// `DrainDuration` (seconds from when the instance began to wait to the end of its drain) and
    /// `InstancesNotFound`; for launches `LaunchesReady`, `LaunchesAbandoned` and `LaunchWait` (seconds from
    /// the launch to ready) (EMF). An invocation that touched no action records zeros.
    fn record(&self, m: &mut Metrics) {
        let count = |step: Step| self.actions.iter().filter(|a| a.step == step).count();
        m.count("DrainsStarted", count(Step::Drained));
        m.count("DrainsCompleted", self.actions.iter().filter(|a| a.step == Step::Completed).count());
        m.count("DrainsTimedOut", count(Step::TimedOut));
        m.count("HooksLost", count(Step::Lost));
        m.count("InstancesNotFound", count(Step::NotAnEcsInstance));
        m.count("LaunchesReady", count(Step::Ready));
        m.count("LaunchesAbandoned", count(Step::NotReady));
        for a in &self.actions {
            match a.step {
                Step::Completed | Step::TimedOut => {
                    m.add("DrainDuration", a.waited_seconds as f64, Unit::Seconds)
                }
                Step::Ready => m.add("LaunchWait", a.waited_seconds as f64, Unit::Seconds),
                _ => m,
            };
        }
    }
}

/// The message for an action that ended in this invocation (a drain completed or timed out, a launch
/// abandoned); `None` otherwise.
pub fn ended(a: &ActionReport) -> Option<Message> {
    match a.step {
        Step::NotReady => Some(abandoned(a)),
        Step::Completed | Step::TimedOut => Some(drained(a)),
        Step::Lost => Some(lost(a)),
        _ => None,
    }
}

/// An action that ended without our answer: whatever was on the instance went with it.
fn lost(a: &ActionReport) -> Message {
    let instance = &a.instance_id;
    Message {
        subject: format!("shipshape: lifecycle action of {instance} ended without the drainer's answer"),
        body: format!(
            "Instance: {instance}\nAuto Scaling group: {}\nLifecycle hook: {}\nWhy: {}\n\n\
             The drainer was still waiting on this lifecycle action when it ended: the hook expired (its heartbeat \
             or global timeout; Auto Scaling applied its default result) or another tool completed it. Tasks may \
             have been stopped without a drain. Check the function's errors and throttles, and that nothing else \
             answers this hook.\n",
            a.auto_scaling_group,
            a.lifecycle_hook,
            a.reason.as_deref().unwrap_or("-"),
        ),
    }
}

fn drained(a: &ActionReport) -> Message {
    let instance = &a.instance_id;
    let subject = match a.step {
        Step::TimedOut => {
            format!("shipshape: drain of {instance} timed out with {} task(s) left", a.tasks_left)
        }
        _ => format!("shipshape: {instance} drained, termination continues"),
    };
    let result = a.result.map_or("-", LifecycleResult::as_str);
    let mut body = format!(
        "Instance: {instance}\nAuto Scaling group: {}\nLifecycle hook: {}\nContainer instances: {}\n\
         Waited: {} s since the instance began to wait\nLifecycle action completed with: {result}\n",
        a.auto_scaling_group,
        a.lifecycle_hook,
        if a.container_instances.is_empty() { "-".to_owned() } else { a.container_instances.join(", ") },
        a.waited_seconds,
    );
    if a.tasks_left > 0 {
        body.push_str(&format!(
            "\nThe drain timed out ({}); {} task(s) were still on the instance:\n",
            a.reason.as_deref().unwrap_or("deadline"),
            a.tasks_left
        ));
        for t in &a.tasks {
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
    Message { subject, body }
}

/// A launch abandoned: people should look at the AMI, the user data or the agent.
fn abandoned(a: &ActionReport) -> Message {
    let instance = &a.instance_id;
    Message {
        subject: format!("shipshape: launch of {instance} abandoned, its ECS agent never became ready"),
        body: format!(
            "Instance: {instance}\nAuto Scaling group: {}\nLifecycle hook: {}\nWhy: {}\n\n\
             The lifecycle action was completed with ABANDON: Auto Scaling terminates the instance and launches \
             another. Repeated abandons mean the launch template, its AMI or user data, or the ECS agent's \
             configuration (ECS_CLUSTER) keep instances from joining the cluster.\n",
            a.auto_scaling_group,
            a.lifecycle_hook,
            a.reason.as_deref().unwrap_or("-"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trigger;

    fn action(step: Step) -> ActionReport {
        let hook = shared::drain::hooks::Hook {
            group: "web".into(),
            name: "drain".into(),
            transition: shared::drain::hooks::Transition::Terminating,
            heartbeat_timeout: 300,
            global_timeout: 30_000,
            default_result: "CONTINUE".into(),
            target: None,
        };
        let id = shared::events::InstanceId::parse("x", "i-12345678").unwrap();
        let mut a = ActionReport::new(&id, &hook, crate::decide::Kind::Terminating);
        (a.step, a.waited_seconds) = (step, 312);
        a
    }

    fn recorded(steps: &[Step]) -> Metrics {
        let outcome = Outcome {
            trigger: Trigger::Schedule,
            actions: steps.iter().map(|s| action(*s)).collect(),
            reason: None,
            warnings: Vec::new(),
        };
        let mut m = Metrics::new("f");
        outcome.record(&mut m);
        m
    }

    #[test]
    fn metrics_count_each_step_once() {
        let m = recorded(&[Step::Drained, Step::Waiting, Step::Completed, Step::TimedOut]);
        assert_eq!(m.get("DrainsStarted"), Some(1.0));
        assert_eq!(m.get("DrainsCompleted"), Some(1.0));
        assert_eq!(m.get("DrainsTimedOut"), Some(1.0));
        assert_eq!(m.get("DrainDuration"), Some(312.0));
        let quiet = recorded(&[]);
        assert_eq!(quiet.get("DrainsCompleted"), Some(0.0), "a zero, not a gap");
    }

    #[test]
    fn only_an_ended_action_has_a_message() {
        assert!(ended(&action(Step::Waiting)).is_none());
        let mut timed_out = action(Step::TimedOut);
        timed_out.tasks_left = 1;
        let message = ended(&timed_out).unwrap();
        assert_eq!(message.subject, "shipshape: drain of i-12345678 timed out with 1 task(s) left");
        assert!(message.body.contains("Waited: 312 s"), "{}", message.body);
        assert!(ended(&action(Step::NotReady)).unwrap().subject.contains("abandoned"));
    }
}
