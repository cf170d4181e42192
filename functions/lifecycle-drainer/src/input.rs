//! What arrives: an SNS envelope (the hook's topic, or our own continuation), or an EventBridge event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::events::{
    self, Envelope, INSTANCE_TERMINATE_LIFECYCLE_ACTION, InvalidEvent, LifecycleMessage, SOURCE_AUTOSCALING,
    TEST_NOTIFICATION, TRANSITION_TERMINATING,
};

/// The key under which a continuation carries its state, next to the lifecycle message's own fields.
pub const STATE_KEY: &str = "ShipshapeDrain";

/// A drain in progress, carried from one invocation to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DrainState {
    pub started_at: DateTime<Utc>,
    /// Our own deadline: `started_at + DRAIN_TIMEOUT_SECONDS`, fixed when the drain started.
    pub deadline: DateTime<Utc>,
    /// Invocations after the first.
    pub hop: u32,
    pub cluster: String,
    pub container_instance_arn: String,
    /// The hook's heartbeat timeout in seconds, when it could be read.
    pub heartbeat_timeout: Option<u32>,
    pub last_heartbeat_at: DateTime<Utc>,
}

/// A lifecycle message to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub message: LifecycleMessage,
    pub state: Option<DrainState>,
    /// The topic it came from (SNS delivery), where a continuation can be published.
    pub topic_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Work(Box<Work>),
    /// Acknowledged and not acted on, with why. Never an error: an error makes Lambda retry.
    Ignore(String),
}

/// Reads an invocation payload. Only a payload that is neither SNS nor EventBridge, or a terminating
/// lifecycle message with a missing field, is an error.
pub fn parse(payload: &Value) -> Result<Input, InvalidEvent> {
    if let Some(records) = payload.get("Records") {
        return parse_sns(records);
    }
    let envelope = Envelope::parse(payload)?;
    if envelope.source != SOURCE_AUTOSCALING {
        return Err(InvalidEvent::new(
            "source",
            format!("is {:?}; expected {SOURCE_AUTOSCALING:?} or an SNS event", envelope.source),
        ));
    }
    if envelope.detail_type != INSTANCE_TERMINATE_LIFECYCLE_ACTION {
        return Ok(Input::Ignore(format!(
            "EventBridge event {:?} is not a terminate lifecycle action",
            envelope.detail_type
        )));
    }
    lifecycle(envelope.detail, "detail", None)
}

fn parse_sns(records: &Value) -> Result<Input, InvalidEvent> {
    let record = match records.as_array().map(Vec::as_slice) {
        // SNS invokes Lambda with exactly one record.
        Some([record]) => record,
        _ => return Err(InvalidEvent::new("Records", "must hold exactly one SNS record")),
    };
    let sns = record.get("Sns").ok_or_else(|| InvalidEvent::new("Records[0].Sns", "is missing"))?;
    let text = events::str_field(sns, "Message")
        .map_err(|e| InvalidEvent::new(format!("Records[0].Sns.{}", e.field), e.reason))?;
    let topic_arn = sns.get("TopicArn").and_then(Value::as_str).map(str::to_owned);
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return Ok(Input::Ignore("SNS message is not JSON, so not a lifecycle message".into()));
    };
    lifecycle(&message, "Records[0].Sns.Message", topic_arn)
}

fn lifecycle(message: &Value, at: &str, topic_arn: Option<String>) -> Result<Input, InvalidEvent> {
    if message.get("Event").and_then(Value::as_str) == Some(TEST_NOTIFICATION) {
        return Ok(Input::Ignore("Auto Scaling test notification".into()));
    }
    match message.get("LifecycleTransition").and_then(Value::as_str) {
        Some(TRANSITION_TERMINATING) => {}
        Some(other) => {
            return Ok(Input::Ignore(format!("lifecycle transition {other} is not a termination")));
        }
        None => return Ok(Input::Ignore("not a lifecycle message (no LifecycleTransition)".into())),
    }
    let parsed: LifecycleMessage =
        serde_json::from_value(message.clone()).map_err(|e| InvalidEvent::new(at, e.to_string()))?;
    events::check_instance_id(&format!("{at}.EC2InstanceId"), &parsed.ec2_instance_id)?;
    for (field, value) in [
        ("AutoScalingGroupName", &parsed.auto_scaling_group_name),
        ("LifecycleHookName", &parsed.lifecycle_hook_name),
        ("LifecycleActionToken", &parsed.lifecycle_action_token),
    ] {
        if value.is_empty() {
            return Err(InvalidEvent::new(format!("{at}.{field}"), "is empty"));
        }
    }
    let state = match message.get(STATE_KEY) {
        None => None,
        Some(v) => Some(
            DrainState::deserialize(v)
                .map_err(|e| InvalidEvent::new(format!("{at}.{STATE_KEY}"), e.to_string()))?,
        ),
    };
    Ok(Input::Work(Box::new(Work { message: parsed, state, topic_arn })))
}

/// The continuation: the lifecycle message as Auto Scaling sent it, plus our state.
pub fn continuation(message: &LifecycleMessage, state: &DrainState) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(message)?;
    if let Value::Object(map) = &mut value {
        map.insert(STATE_KEY.to_owned(), serde_json::to_value(state)?);
    }
    serde_json::to_string(&value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message() -> Value {
        json!({"Origin": "AutoScalingGroup", "Destination": "EC2", "Service": "AWS Auto Scaling",
               "LifecycleTransition": TRANSITION_TERMINATING, "AutoScalingGroupName": "web",
               "LifecycleHookName": "drain", "LifecycleActionToken": "t-1", "EC2InstanceId": "i-1234567890abcdef0"})
    }

    fn sns(message: &str) -> Value {
        json!({"Records": [{"EventSource": "aws:sns", "Sns": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:hooks", "Message": message}}]})
    }

    #[test]
    fn sns_and_eventbridge_forms() {
        let Input::Work(work) = parse(&sns(&message().to_string())).unwrap() else { panic!() };
        assert_eq!(work.message.ec2_instance_id, "i-1234567890abcdef0");
        assert_eq!(work.topic_arn.as_deref(), Some("arn:aws:sns:us-east-1:123456789012:hooks"));
        assert_eq!(work.state, None);

        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_TERMINATE_LIFECYCLE_ACTION, "detail": message()});
        let Input::Work(work) = parse(&eb).unwrap() else { panic!() };
        assert_eq!(work.message.lifecycle_hook_name, "drain");
        assert_eq!(work.topic_arn, None);
    }

    #[test]
    fn other_messages_are_ignored_not_errors() {
        let test = json!({"Event": TEST_NOTIFICATION, "AutoScalingGroupName": "web"});
        let mut launch = message();
        launch["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_LAUNCHING");
        for payload in [
            sns(&test.to_string()),
            sns(&launch.to_string()),
            sns("hello"),
            sns(r#"{"Event": "autoscaling:EC2_INSTANCE_TERMINATE"}"#),
            json!({"source": SOURCE_AUTOSCALING, "detail-type": "EC2 Instance Launch Successful", "detail": {}}),
        ] {
            assert!(matches!(parse(&payload), Ok(Input::Ignore(_))), "{payload}");
        }
    }

    #[test]
    fn broken_lifecycle_messages_name_the_field() {
        let mut no_token = message();
        no_token.as_object_mut().unwrap().remove("LifecycleActionToken");
        let mut bad_id = message();
        bad_id["EC2InstanceId"] = json!("web-1");
        let mut bad_state = message();
        bad_state[STATE_KEY] = json!({"hop": "x"});
        let cases = [
            (sns(&no_token.to_string()), "Records[0].Sns.Message"),
            (sns(&bad_id.to_string()), "Records[0].Sns.Message.EC2InstanceId"),
            (sns(&bad_state.to_string()), "Records[0].Sns.Message.ShipshapeDrain"),
            (json!({"Records": []}), "Records"),
            (json!({"Records": [{"Sns": {}}]}), "Records[0].Sns.Message"),
            (json!({"source": "aws.ec2", "detail-type": "x", "detail": {}}), "source"),
            (json!(42), "(event)"),
        ];
        for (payload, field) in cases {
            assert_eq!(parse(&payload).unwrap_err().field, field, "{payload}");
        }
    }

    #[test]
    fn continuation_round_trips() {
        let Input::Work(work) = parse(&sns(&message().to_string())).unwrap() else { panic!() };
        let now = Utc::now();
        let state = DrainState {
            started_at: now,
            deadline: now,
            hop: 3,
            cluster: "web".into(),
            container_instance_arn: "arn:ci".into(),
            heartbeat_timeout: Some(300),
            last_heartbeat_at: now,
        };
        let text = continuation(&work.message, &state).unwrap();
        let Input::Work(again) = parse(&sns(&text)).unwrap() else { panic!() };
        assert_eq!(again.message, work.message);
        assert_eq!(again.state, Some(state));
    }
}
