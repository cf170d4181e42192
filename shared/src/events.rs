//! The events shipshape consumes, typed, and the one way every input is parsed.
//!
//! Handlers take the raw JSON and parse it with [`from_value`] rather than letting the runtime deserialize
//! it: a runtime deserialization failure reaches the caller as a generic `Runtime` error, while
//! [`InvalidEvent`] names the field path that is wrong (`detail.instance-id`,
//! `Records[0].Sns.Message.EC2InstanceId`). Envelopes are `aws_lambda_events`' types; the `detail`s are ours.

use std::fmt;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SOURCE_EC2: &str = "aws.ec2";
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html>
pub const SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitor-interruptible-cr.html>: an instance in an
/// interruptible Capacity Reservation is terminated two minutes after this warning.
pub const CAPACITY_RESERVATION_INTERRUPTION_WARNING: &str =
    "EC2 Capacity Reservation Instance Interruption Warning";
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html>
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";

/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html>
pub const INSTANCE_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// <https://docs.aws.amazon.com/health/latest/ug/aws-health-events-eventbridge-schema.html>
pub const SOURCE_HEALTH: &str = "aws.health";
pub const HEALTH_EVENT: &str = "AWS Health Event";

pub const SOURCE_AUTOSCALING: &str = "aws.autoscaling";

/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html>
pub const SOURCE_ECS: &str = "aws.ecs";
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
/// <https://docs.aws.amazon.com/autoscaling/ec2/userguide/prepare-for-lifecycle-notifications.html>
pub const INSTANCE_TERMINATE_LIFECYCLE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
pub const INSTANCE_LAUNCH_LIFECYCLE_ACTION: &str = "EC2 Instance-launch Lifecycle Action";
pub const TRANSITION_TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
pub const TRANSITION_LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
/// `Origin`/`Destination` of a lifecycle message that enters or leaves a warm pool.
/// <https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html>
pub const WARM_POOL: &str = "WarmPool";
pub const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";

/// An input that is not what the function handles; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: `{field}` {reason}")]
pub struct InvalidEvent {
    pub field: String,
    pub reason: String,
}

impl InvalidEvent {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidEvent { field: field.into(), reason: reason.into() }
    }
}

/// `value`, found at path `at` of the payload (`""` for the payload itself), as `T`. The error names the
/// path of what is wrong; for a missing field, the field itself.
pub fn from_value<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, InvalidEvent> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = join(at, &e.path().to_string());
        let reason = e.inner().to_string();
        if let Some(missing) = reason.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
            path = join(&path, missing);
        }
        InvalidEvent::new(if path.is_empty() { "(event)".to_owned() } else { path }, reason)
    })
}

fn join(at: &str, path: &str) -> String {
    let path = path.trim_start_matches('.');
    match (at.is_empty(), path.is_empty()) {
        (_, true) => at.to_owned(),
        (true, false) => path.to_owned(),
        (false, false) if path.starts_with('[') => format!("{at}{path}"),
        (false, false) => format!("{at}.{path}"),
    }
}

/// The kind of JSON value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The payload as a JSON object, or an error naming `(event)`.
pub fn object(payload: &Value) -> Result<&serde_json::Map<String, Value>, InvalidEvent> {
    payload
        .as_object()
        .ok_or_else(|| InvalidEvent::new("(event)", format!("must be a JSON object, got {}", kind(payload))))
}

/// An EventBridge event with its envelope checked (`source` and `detail-type` present and not empty,
/// `detail` an object); the caller types the `detail` by its `detail-type` with [`detail`]. EventBridge
/// Scheduler's default payload carries `detail` as a JSON string (`"{}"`): it is read as the object it
/// holds.
pub fn eventbridge(payload: &Value) -> Result<EventBridgeEvent<Value>, InvalidEvent> {
    let envelope = object(payload)?;
    // `resources` is read by nothing here; AWS prints it as a single string in some samples (the Capacity
    // Reservation interruption warning), which is taken as a list of one.
    let normalized;
    let payload = match envelope.get("resources") {
        Some(Value::String(one)) => {
            let mut fixed = envelope.clone();
            fixed.insert("resources".into(), Value::Array(vec![Value::String(one.clone())]));
            normalized = Value::Object(fixed);
            &normalized
        }
        _ => payload,
    };
    let mut event: EventBridgeEvent<Value> = from_value(payload, "")?;
    if let Value::String(text) = &event.detail
        && let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(text)
    {
        event.detail = inner;
    }
    for (field, value) in [("source", &event.source), ("detail-type", &event.detail_type)] {
        if value.is_empty() {
            return Err(InvalidEvent::new(field, "is empty"));
        }
    }
    if !event.detail.is_object() {
        return Err(InvalidEvent::new("detail", format!("must be an object, got {}", kind(&event.detail))));
    }
    Ok(event)
}

/// An EventBridge schedule's event: a scheduled rule's (`aws.events`) or EventBridge Scheduler's
/// (`aws.scheduler`), "Scheduled Event".
pub fn is_scheduled(event: &EventBridgeEvent<Value>) -> bool {
    matches!(event.source.as_str(), "aws.events" | "aws.scheduler") && event.detail_type == "Scheduled Event"
}

/// The event's `detail` as `T`.
pub fn detail<T: DeserializeOwned>(event: &EventBridgeEvent<Value>) -> Result<T, InvalidEvent> {
    from_value(&event.detail, "detail")
}

/// An EC2 instance id: `i-` and 8 or 17 lowercase hex digits. Checked when an event is parsed, so a typo or
/// an injection in a hand-made event never reaches an ECS filter expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(String);

impl InstanceId {
    /// `id` checked, or an error naming `field`.
    pub fn parse(field: &str, id: &str) -> Result<Self, InvalidEvent> {
        InstanceId::try_from(id.to_owned()).map_err(|reason| InvalidEvent::new(field, reason))
    }

    /// An id, or an instance's ARN (`arn:<partition>:ec2:<region>:<account>:instance/i-...`, as AWS Health
    /// names instances today) read as its id.
    pub fn from_id_or_arn(field: &str, value: &str) -> Result<Self, InvalidEvent> {
        if let Some(rest) = value.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            return match parts.as_slice() {
                [_, "ec2", _, _, resource] => match resource.strip_prefix("instance/") {
                    Some(id) => InstanceId::parse(field, id),
                    None => Err(InvalidEvent::new(field, format!("{value:?} is not an EC2 instance's ARN"))),
                },
                _ => Err(InvalidEvent::new(field, format!("{value:?} is not an EC2 instance's ARN"))),
            };
        }
        InstanceId::parse(field, value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstanceId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        let hex = id.strip_prefix("i-").unwrap_or("");
        let ok = matches!(hex.len(), 8 | 17)
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(InstanceId(id))
        } else {
            Err(format!("{id:?} is not an EC2 instance id (i- and 8 or 17 hex digits)"))
        }
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> String {
        id.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for InstanceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// What EC2 will do to a Spot instance it interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceAction {
    Terminate,
    Stop,
    Hibernate,
}

/// `detail` of "EC2 Spot Instance Interruption Warning".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpotInterruptionDetail {
    pub instance_id: InstanceId,
    pub instance_action: InstanceAction,
}

/// `detail` of "EC2 Instance Rebalance Recommendation".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RebalanceRecommendationDetail {
    pub instance_id: InstanceId,
}

/// `detail` of "EC2 Instance State-change Notification".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstanceStateChangeDetail {
    pub instance_id: InstanceId,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
}

/// `detail` of an "AWS Health Event": what is affected, by what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthEventDetail {
    /// `EC2` for the events shipshape acts on.
    pub service: String,
    /// e.g. `AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED`.
    pub event_type_code: String,
    /// `scheduledChange`, `issue`, `accountNotification`, `investigation`.
    pub event_type_category: String,
    #[serde(default)]
    pub start_time: Option<String>,
    /// `upcoming`, `open` or `closed` (done, or cancelled).
    #[serde(default)]
    pub status_code: Option<String>,
    #[serde(default)]
    pub affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    pub entity_value: String,
}

/// The Auto Scaling lifecycle message: the SNS `Message` of a hook with an SNS target, and the `detail`
/// of the EventBridge "EC2 Instance-terminate Lifecycle Action" event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleMessage {
    pub lifecycle_transition: String,
    #[serde(deserialize_with = "non_empty")]
    pub auto_scaling_group_name: String,
    #[serde(deserialize_with = "non_empty")]
    pub lifecycle_hook_name: String,
    #[serde(deserialize_with = "non_empty")]
    pub lifecycle_action_token: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: InstanceId,
    /// When the instance entered the wait state: the hook's `GlobalTimeout` runs from here. In the SNS
    /// message; the EventBridge event has it as the envelope's `time` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_metadata: Option<String>,
    /// Where the instance comes from and goes: `EC2`, `AutoScalingGroup` or `WarmPool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

impl LifecycleMessage {
    /// A launch into the warm pool, or a scale-in back to it (`Destination: WarmPool`).
    pub fn into_warm_pool(&self) -> bool {
        self.destination.as_deref() == Some(WARM_POOL)
    }
}

/// A string that must not be empty.
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() { Err(serde::de::Error::custom("is empty")) } else { Ok(s) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn instance_ids() {
        assert!(InstanceId::parse("f", "i-1234567890abcdef0").is_ok());
        assert!(InstanceId::parse("f", "i-12345678").is_ok());
        for bad in ["", "i-", "i-123", "i-1234567890ABCDEF0", "x-12345678", "i-12345678 or x == y"] {
            let err = InstanceId::parse("detail.instance-id", bad).unwrap_err();
            assert_eq!(err.field, "detail.instance-id", "{bad}");
        }
    }

    #[test]
    fn instances_by_id_or_by_arn() {
        let arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0";
        assert_eq!(InstanceId::from_id_or_arn("f", arn).unwrap().as_str(), "i-1234567890abcdef0");
        assert_eq!(InstanceId::from_id_or_arn("f", "i-12345678").unwrap().as_str(), "i-12345678");
        for bad in [
            "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
            "arn:aws:s3:::bucket",
            "arn:aws:ec2:us-east-1:1:instance/x",
        ] {
            assert_eq!(InstanceId::from_id_or_arn("detail.x", bad).unwrap_err().field, "detail.x", "{bad}");
        }
    }

    #[test]
    fn the_envelope_names_what_is_wrong() {
        let cases = [
            (json!([]), "(event)"),
            (json!({"source": "aws.ec2", "detail-type": "x"}), "detail"),
            (json!({"source": "aws.ec2", "detail-type": "x", "detail": "s"}), "detail"),
            (json!({"detail-type": "x", "detail": {}}), "source"),
            (json!({"source": 3, "detail-type": "x", "detail": {}}), "source"),
            (json!({"source": "aws.ec2", "detail-type": "", "detail": {}}), "detail-type"),
        ];
        for (event, field) in cases {
            assert_eq!(eventbridge(&event).unwrap_err().field, field, "{event}");
        }
    }

    #[test]
    fn a_schedulers_detail_string_reads_as_its_object() {
        let event = json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": "{}"});
        let parsed = eventbridge(&event).unwrap();
        assert!(is_scheduled(&parsed) && parsed.detail.is_object());
        let bad = json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": "[1]"});
        assert_eq!(eventbridge(&bad).unwrap_err().field, "detail");
    }

    #[test]
    fn detail_errors_name_the_key() {
        let event = json!({"source": "aws.ec2", "detail-type": SPOT_INTERRUPTION_WARNING,
                           "detail": {"instance-id": "i-12345678"}});
        let err = detail::<SpotInterruptionDetail>(&eventbridge(&event).unwrap()).unwrap_err();
        assert_eq!(err.field, "detail.instance-action", "{err}");
        let event = json!({"source": "aws.ec2", "detail-type": SPOT_INTERRUPTION_WARNING,
                           "detail": {"instance-id": "web-1", "instance-action": "stop"}});
        let err = detail::<SpotInterruptionDetail>(&eventbridge(&event).unwrap()).unwrap_err();
        assert_eq!(err.field, "detail.instance-id", "{err}");
        assert!(err.reason.contains("not an EC2 instance id"), "{err}");
    }

    #[test]
    fn paths_join_under_where_the_value_was_found() {
        let message = json!({"LifecycleTransition": TRANSITION_TERMINATING, "AutoScalingGroupName": "",
            "LifecycleHookName": "h", "LifecycleActionToken": "t", "EC2InstanceId": "i-12345678"});
        let err = from_value::<LifecycleMessage>(&message, "Records[0].Sns.Message").unwrap_err();
        assert_eq!(err.field, "Records[0].Sns.Message.AutoScalingGroupName");
        assert_eq!(err.reason, "is empty");
        assert_eq!(join("Records", "[0].Sns"), "Records[0].Sns");
        assert_eq!(join("", "."), "");
    }
}
