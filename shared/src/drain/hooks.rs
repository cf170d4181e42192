//! Lifecycle hooks: which of a group's hooks are ours to answer, and answering them by instance id and hook
//! name (no token travels: "Completes the lifecycle action for the specified token or instance",
//! <https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html>).
//!
//! API calls: `autoscaling:DescribeLifecycleHooks`, `autoscaling:RecordLifecycleActionHeartbeat`,
//! `autoscaling:CompleteLifecycleAction`.

use aws_sdk_autoscaling::Client;
use serde::Serialize;

use crate::error::{AwsError, aws};

pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

/// The transition a hook pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transition {
    Launching,
    Terminating,
}

impl Transition {
    pub fn of(transition: &str) -> Option<Self> {
        match transition {
            TERMINATING => Some(Transition::Terminating),
            LAUNCHING => Some(Transition::Launching),
            _ => None,
        }
    }
}

/// A hook as `DescribeLifecycleHooks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub group: String,
    pub name: String,
    pub transition: Transition,
    /// Seconds; each heartbeat restarts it.
    pub heartbeat_timeout: u32,
    /// Seconds from when the instance began to wait; no heartbeat extends it.
    pub global_timeout: u32,
    /// `CONTINUE` or `ABANDON`: what Auto Scaling does when a timer runs out.
    pub default_result: String,
    /// Where Auto Scaling sends its message (an SNS topic, an SQS queue); none: EventBridge only.
    pub target: Option<String>,
}

/// The hooks we answer: named in `LIFECYCLE_HOOK_NAMES` (or one of the stack's numbered hooks of such a
/// name, `<name>-01` to `<name>-99`), and notifying our lifecycle topic, or no target at all (Auto Scaling
/// then sends its events to EventBridge, where our rule takes them). Another tool's hook, even of a name we
/// know, is never ours: its owner answers it, and it waits for nobody's drain but its owner's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookNames {
    /// Empty: any name.
    pub names: Vec<String>,
    /// Our lifecycle topic; unknown (`None`): any target.
    pub topic: Option<String>,
}

impl HookNames {
    pub fn answers(&self, hook_name: &str) -> bool {
        let numbered = |h: &str| {
            hook_name
                .strip_prefix(h)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
        };
        self.names.is_empty() || self.names.iter().any(|h| h == hook_name || numbered(h))
    }

    /// Whether the hook is ours: a name we answer, and our topic or no target.
    pub fn ours(&self, hook: &Hook) -> bool {
        let target_ok = match (&hook.target, &self.topic) {
            (None, _) | (_, None) => true,
            (Some(target), Some(topic)) => target == topic,
        };
        self.answers(&hook.name) && target_ok
    }
}

/// The group's lifecycle hooks.
pub async fn hooks(autoscaling: &Client, group: &str) -> Result<Vec<Hook>, AwsError> {
    let out = autoscaling
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(group)
        .send()
        .await
        .map_err(aws("DescribeLifecycleHooks"))?;
    let seconds = |v: Option<i32>| v.and_then(|t| u32::try_from(t).ok());
    Ok(out
        .lifecycle_hooks()
        .iter()
        .filter_map(|h| {
            let transition = Transition::of(h.lifecycle_transition()?)?;
            // Both timers are always set by AWS; the defaults are 3600 s and 100 times that, at most 48 hours.
            let heartbeat_timeout = seconds(h.heartbeat_timeout()).unwrap_or(3600);
            let global_timeout =
                seconds(h.global_timeout()).unwrap_or((100 * heartbeat_timeout).min(172_800));
            Some(Hook {
                group: group.to_owned(),
                name: h.lifecycle_hook_name()?.to_owned(),
                transition,
                heartbeat_timeout,
                global_timeout,
                default_result: h.default_result().unwrap_or("ABANDON").to_owned(),
                target: h.notification_target_arn().filter(|t| !t.is_empty()).map(str::to_owned),
            })
        })
        .collect())
}

/// What a heartbeat or a completion found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    Done,
    /// "No active Lifecycle Action found": completed already, expired, or the instance is gone.
    NoActiveAction(String),
}

fn no_active_action(e: &AwsError) -> bool {
    e.code_is("ValidationError") && e.message.contains("No active Lifecycle Action")
}

pub async fn heartbeat(autoscaling: &Client, hook: &Hook, instance_id: &str) -> Result<Answered, AwsError> {
    let result = autoscaling
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&hook.group)
        .lifecycle_hook_name(&hook.name)
        .instance_id(instance_id)
        .send()
        .await
        .map_err(aws("RecordLifecycleActionHeartbeat"));
    answered(result.map(|_| ()))
}

/// Completes the action of `hook` for `instance_id` with `result` (`CONTINUE` or `ABANDON`).
pub async fn complete(
    autoscaling: &Client,
    hook: &Hook,
    instance_id: &str,
    result: &str,
) -> Result<Answered, AwsError> {
    let done = autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name(&hook.group)
        .lifecycle_hook_name(&hook.name)
        .instance_id(instance_id)
        .lifecycle_action_result(result)
        .send()
        .await
        .map_err(aws("CompleteLifecycleAction"));
    answered(done.map(|_| ()))
}

fn answered(result: Result<(), AwsError>) -> Result<Answered, AwsError> {
    match result {
        Ok(()) => Ok(Answered::Done),
        Err(e) if no_active_action(&e) => Ok(Answered::NoActiveAction(e.message)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str, target: Option<&str>) -> Hook {
        Hook {
            group: "web".into(),
            name: name.into(),
            transition: Transition::Terminating,
            heartbeat_timeout: 300,
            global_timeout: 30_000,
            default_result: "CONTINUE".into(),
            target: target.map(str::to_owned),
        }
    }

    #[test]
    fn a_hook_name_answers_for_its_numbered_hooks() {
        let names = HookNames { names: vec!["shipshape-drain".into()], topic: None };
        for ours in ["shipshape-drain", "shipshape-drain-01", "shipshape-drain-50"] {
            assert!(names.answers(ours), "{ours}");
        }
        for other in ["other", "shipshape-drain-1", "shipshape-drain-x1", "shipshape-drain-001", "shipshape"]
        {
            assert!(!names.answers(other), "{other}");
        }
        assert!(HookNames::default().answers("anything"));
    }

    #[test]
    fn only_a_hook_that_notifies_our_topic_or_eventbridge_is_ours() {
        let topic = "arn:aws:sns:us-east-1:123456789012:hooks";
        let names = HookNames { names: vec!["drain".into()], topic: Some(topic.into()) };
        assert!(names.ours(&hook("drain", Some(topic))));
        assert!(names.ours(&hook("drain", None)));
        assert!(!names.ours(&hook("drain", Some("arn:aws:sns:us-east-1:123456789012:another-tool"))));
        assert!(!names.ours(&hook("another-tool", Some(topic))));
    }
}
