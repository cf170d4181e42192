//! What arrives, typed: the schedule's event (reconcile everything), a lifecycle message from Auto Scaling
//! (by SNS or EventBridge) or a stopped ECS task (reconcile that instance), or something acknowledged and
//! ignored. Every message is only a reason to look: nothing in it is trusted or acted on but the instance
//! it names, and what AWS shows of that instance decides.

use aws_lambda_events::event::sns::SnsEvent;
use serde::Deserialize;
use serde_json::Value;
use shared::events::{
    self, INSTANCE_LAUNCH_LIFECYCLE_ACTION, INSTANCE_TERMINATE_LIFECYCLE_ACTION, InstanceId, InvalidEvent,
    SOURCE_AUTOSCALING, SOURCE_ECS, TASK_STATE_CHANGE, TEST_NOTIFICATION, TRANSITION_LAUNCHING,
    TRANSITION_TERMINATING,
};

/// A lifecycle message: the instance to look at, and the hook and group it names (checked against the
/// configuration before any AWS call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub instance_id: InstanceId,
    pub group: String,
    pub hook: String,
}

/// An ECS task stopped on a container instance (EventBridge "ECS Task State Change", `lastStatus`
/// STOPPED): it may have been the last one on an instance we drain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStopped {
    pub cluster_arn: String,
    pub container_instance_arn: String,
    pub task_arn: String,
}

/// The fields of an "ECS Task State Change" detail read here
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html>).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskDetail {
    last_status: String,
    /// Absent for a Fargate task.
    #[serde(default)]
    container_instance_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The schedule: reconcile every lifecycle action of the configured groups.
    Reconcile,
    Lifecycle(Hint),
    TaskStopped(TaskStopped),
    /// Acknowledged and not acted on, with why. Never an error: an error makes Lambda retry.
    Ignore(String),
}

/// The fields of an Auto Scaling message read here. A continuation that an earlier version published
/// (the lifecycle message plus its own state) reads the same: its state is not looked at.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    lifecycle_transition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Named {
    #[serde(deserialize_with = "events::non_empty")]
    auto_scaling_group_name: String,
    #[serde(deserialize_with = "events::non_empty")]
    lifecycle_hook_name: String,
    #[serde(rename = "EC2InstanceId")]
    ec2_instance_id: InstanceId,
}

/// Reads an invocation payload. Only a payload that is neither SNS nor EventBridge, or a lifecycle message
/// with a missing or bad field, is an error.
pub fn parse(payload: &Value) -> Result<Input, InvalidEvent> {
    if events::object(payload)?.contains_key("Records") {
        return parse_sns(payload);
    }
    let event = events::eventbridge(payload)?;
    if events::is_scheduled(&event) {
        return Ok(Input::Reconcile);
    }
    if event.source == SOURCE_ECS && event.detail_type == TASK_STATE_CHANGE {
        let detail: TaskDetail = events::detail(&event)?;
        if detail.last_status != "STOPPED" || detail.container_instance_arn.is_none() {
            return Ok(Input::Ignore(format!(
                "a task {} (not stopped, or not on a container instance)",
                detail.last_status
            )));
        }
        return Ok(Input::TaskStopped(events::detail(&event)?));
    }
    if event.source != SOURCE_AUTOSCALING {
        return Err(InvalidEvent::new(
            "source",
            format!(
                "is {:?}; expected {SOURCE_AUTOSCALING:?}, {SOURCE_ECS:?}, a schedule or an SNS event",
                event.source
            ),
        ));
    }
    if event.detail_type != INSTANCE_TERMINATE_LIFECYCLE_ACTION
        && event.detail_type != INSTANCE_LAUNCH_LIFECYCLE_ACTION
    {
        return Ok(Input::Ignore(format!(
            "EventBridge event {:?} is not a lifecycle action",
            event.detail_type
        )));
    }
    lifecycle(&event.detail, "detail")
}

fn parse_sns(payload: &Value) -> Result<Input, InvalidEvent> {
    let event: SnsEvent = events::from_value(payload, "")?;
    // SNS invokes Lambda with exactly one record.
    let [record] = event.records.as_slice() else {
        return Err(InvalidEvent::new("Records", "must hold exactly one SNS record"));
    };
    let Ok(message) = serde_json::from_str::<Value>(&record.sns.message) else {
        return Ok(Input::Ignore("SNS message is not JSON, so not a lifecycle message".into()));
    };
    lifecycle(&message, "Records[0].Sns.Message")
}

fn lifecycle(message: &Value, at: &str) -> Result<Input, InvalidEvent> {
    if !message.is_object() {
        return Ok(Input::Ignore("not a lifecycle message (not a JSON object)".into()));
    }
    let kind: Message = events::from_value(message, at)?;
    if kind.event.as_deref() == Some(TEST_NOTIFICATION) {
        return Ok(Input::Ignore("Auto Scaling test notification".into()));
    }
    match kind.lifecycle_transition.as_deref() {
        Some(TRANSITION_TERMINATING | TRANSITION_LAUNCHING) => {}
        Some(other) => {
            return Ok(Input::Ignore(format!(
                "lifecycle transition {other} is not a launch or a termination"
            )));
        }
        None => return Ok(Input::Ignore("not a lifecycle message (no LifecycleTransition)".into())),
    }
    let named: Named = events::from_value(message, at)?;
    Ok(Input::Lifecycle(Hint {
        instance_id: named.ec2_instance_id,
        group: named.auto_scaling_group_name,
        hook: named.lifecycle_hook_name,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message() -> Value {
        json!({"Origin": "AutoScalingGroup", "Destination": "EC2", "Service": "AWS Auto Scaling",
               "LifecycleTransition": TRANSITION_TERMINATING, "AutoScalingGroupName": "web",
               "LifecycleHookName": "drain", "LifecycleActionToken": "t-1", "EC2InstanceId": "i-1234567890abcdef0",
               "Time": "2026-11-22T10:00:00.000Z"})
    }

    /// An SNS event as Lambda delivers it.
    fn sns(message: &str) -> Value {
        json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:hooks:1",
            "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:hooks",
                "Subject": null, "Message": message, "Timestamp": "2026-11-22T10:00:00.000Z",
                "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "x", "UnsubscribeUrl": "x",
                "MessageAttributes": {}}}]})
    }

    fn hint(input: Result<Input, InvalidEvent>) -> Hint {
        match input {
            Ok(Input::Lifecycle(hint)) => hint,
            other => panic!("not a lifecycle message: {other:?}"),
        }
    }

    #[test]
    fn both_deliveries_name_the_instance_group_and_hook() {
        let by_sns = hint(parse(&sns(&message().to_string())));
        assert_eq!(by_sns.instance_id.as_str(), "i-1234567890abcdef0");
        assert_eq!((by_sns.group.as_str(), by_sns.hook.as_str()), ("web", "drain"));
        // EventBridge's detail has no Time: nothing here needs it.
        let mut detail = message();
        detail.as_object_mut().unwrap().remove("Time");
        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_TERMINATE_LIFECYCLE_ACTION, "detail": detail});
        assert_eq!(hint(parse(&eb)), by_sns);
    }

    #[test]
    fn an_earlier_versions_continuation_is_a_lifecycle_message_like_any() {
        let mut carried = message();
        carried["ShipshapeDrain"] = json!({"hop": 3, "cluster": "web", "started_at": "2026-11-22T10:00:02Z"});
        assert_eq!(hint(parse(&sns(&carried.to_string()))).instance_id.as_str(), "i-1234567890abcdef0");
    }

    #[test]
    fn schedules_reconcile() {
        for source in ["aws.events", "aws.scheduler"] {
            for detail in [json!({}), json!("{}")] {
                let event = json!({"source": source, "detail-type": "Scheduled Event", "detail": detail});
                assert_eq!(parse(&event), Ok(Input::Reconcile), "{event}");
            }
        }
    }

    #[test]
    fn other_messages_are_ignored_not_errors() {
        let test = json!({"Event": TEST_NOTIFICATION, "AutoScalingGroupName": "web"});
        let mut other = message();
        other["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_STANDBY");
        for payload in [
            sns(&test.to_string()),
            sns(&other.to_string()),
            sns("hello"),
            sns("42"),
            sns(r#"{"Event": "autoscaling:EC2_INSTANCE_TERMINATE"}"#),
            json!({"source": SOURCE_AUTOSCALING, "detail-type": "EC2 Instance Launch Successful", "detail": {}}),
        ] {
            assert!(matches!(parse(&payload), Ok(Input::Ignore(_))), "{payload}");
        }
    }

    #[test]
    fn a_stopped_task_on_a_container_instance_is_read() {
        let event = |status: &str, ci: Option<&str>| {
            let mut detail = json!({"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/web",
                "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/web/1", "lastStatus": status});
            if let Some(ci) = ci {
                detail["containerInstanceArn"] = json!(ci);
            }
            json!({"source": SOURCE_ECS, "detail-type": TASK_STATE_CHANGE, "detail": detail})
        };
        let ci = "arn:aws:ecs:us-east-1:123456789012:container-instance/web/1";
        assert!(
            matches!(parse(&event("STOPPED", Some(ci))), Ok(Input::TaskStopped(t)) if t.container_instance_arn == ci)
        );
        assert!(matches!(parse(&event("RUNNING", Some(ci))), Ok(Input::Ignore(_))));
        assert!(matches!(parse(&event("STOPPED", None)), Ok(Input::Ignore(_))));
        let mut broken = event("STOPPED", Some(ci));
        broken["detail"].as_object_mut().unwrap().remove("taskArn");
        assert_eq!(parse(&broken).unwrap_err().field, "detail.taskArn");
    }

    #[test]
    fn launches_are_lifecycle_messages_too() {
        let mut launch = message();
        launch["LifecycleTransition"] = json!(TRANSITION_LAUNCHING);
        (launch["Origin"], launch["Destination"]) = (json!("EC2"), json!("WarmPool"));
        assert_eq!(hint(parse(&sns(&launch.to_string()))).hook, "drain");
        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_LAUNCH_LIFECYCLE_ACTION, "detail": launch});
        assert_eq!(hint(parse(&eb)).group, "web");
    }

    #[test]
    fn broken_lifecycle_messages_name_the_field() {
        let mut bad_id = message();
        bad_id["EC2InstanceId"] = json!("web-1");
        let mut empty_group = message();
        empty_group["AutoScalingGroupName"] = json!("");
        let mut no_hook = message();
        no_hook.as_object_mut().unwrap().remove("LifecycleHookName");
        let mut no_message = sns("{}");
        no_message["Records"][0]["Sns"].as_object_mut().unwrap().remove("Message");
        let cases = [
            (sns(&bad_id.to_string()), "Records[0].Sns.Message.EC2InstanceId"),
            (sns(&empty_group.to_string()), "Records[0].Sns.Message.AutoScalingGroupName"),
            (sns(&no_hook.to_string()), "Records[0].Sns.Message.LifecycleHookName"),
            (json!({"Records": []}), "Records"),
            (no_message, "Records[0].Sns.Message"),
            (json!({"source": "aws.ec2", "detail-type": "x", "detail": {}}), "source"),
            (json!(42), "(event)"),
        ];
        for (payload, field) in cases {
            assert_eq!(parse(&payload).unwrap_err().field, field, "{payload}");
        }
    }
}
