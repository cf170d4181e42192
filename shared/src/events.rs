//! Typed `detail`s of the EventBridge events shipshape consumes, and the checks every input gets.
//!
//! Handlers take the raw JSON and parse it here rather than letting the runtime deserialize it: a runtime
//! deserialization failure reaches the caller as a generic `Runtime` error, while [`InvalidEvent`] names
//! the field that is wrong.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SOURCE_EC2: &str = "aws.ec2";
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html>
pub const SPOT_INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
/// <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html>
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";

/// `detail` of "EC2 Spot Instance Interruption Warning".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpotInterruptionDetail {
    pub instance_id: String,
    /// `terminate`, `stop` or `hibernate`.
    pub instance_action: String,
}

/// `detail` of "EC2 Instance Rebalance Recommendation".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RebalanceRecommendationDetail {
    pub instance_id: String,
}

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

/// The EventBridge envelope fields we route on, read from raw JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    pub detail: &'a Value,
}

impl<'a> Envelope<'a> {
    pub fn parse(event: &'a Value) -> Result<Self, InvalidEvent> {
        if !event.is_object() {
            return Err(InvalidEvent::new("(event)", format!("must be a JSON object, got {}", kind(event))));
        }
        let detail = event.get("detail").ok_or_else(|| InvalidEvent::new("detail", "is missing"))?;
        if !detail.is_object() {
            return Err(InvalidEvent::new("detail", format!("must be an object, got {}", kind(detail))));
        }
        Ok(Envelope {
            source: str_field(event, "source")?,
            detail_type: str_field(event, "detail-type")?,
            detail,
        })
    }

    /// The `detail` as `T`; serde's message names the missing or mistyped key.
    pub fn detail<T: DeserializeOwned>(&self) -> Result<T, InvalidEvent> {
        T::deserialize(self.detail).map_err(|e| InvalidEvent::new("detail", e.to_string()))
    }
}

/// A string field of a JSON object, present and non-empty.
pub fn str_field<'a>(obj: &'a Value, field: &str) -> Result<&'a str, InvalidEvent> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(InvalidEvent::new(field, "is missing")),
        Some(Value::String(s)) if s.is_empty() => Err(InvalidEvent::new(field, "is empty")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(InvalidEvent::new(field, format!("must be a string, got {}", kind(other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// EC2 instance ids are `i-` and 8 or 17 lowercase hex digits. Checked before any call, so a typo or an
/// injection in a hand-made event never reaches an ECS filter expression.
pub fn check_instance_id(field: &str, id: &str) -> Result<(), InvalidEvent> {
    let hex = id.strip_prefix("i-").unwrap_or("");
    let ok =
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(InvalidEvent::new(field, format!("{id:?} is not an EC2 instance id (i- and 8 or 17 hex digits)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instance_ids() {
        assert!(check_instance_id("f", "i-1234567890abcdef0").is_ok());
        assert!(check_instance_id("f", "i-12345678").is_ok());
        for bad in ["", "i-", "i-123", "i-1234567890ABCDEF0", "x-12345678", "i-12345678 or x == y"] {
            let err = check_instance_id("detail.instance-id", bad).unwrap_err();
            assert_eq!(err.field, "detail.instance-id", "{bad}");
        }
    }

    #[test]
    fn envelope_names_what_is_wrong() {
        let cases = [
            (json!([]), "(event)"),
            (json!({"source": "aws.ec2", "detail-type": "x"}), "detail"),
            (json!({"source": "aws.ec2", "detail-type": "x", "detail": "s"}), "detail"),
            (json!({"detail-type": "x", "detail": {}}), "source"),
            (json!({"source": 3, "detail-type": "x", "detail": {}}), "source"),
            (json!({"source": "aws.ec2", "detail-type": "", "detail": {}}), "detail-type"),
        ];
        for (event, field) in cases {
            assert_eq!(Envelope::parse(&event).unwrap_err().field, field, "{event}");
        }
    }

    #[test]
    fn detail_errors_name_the_key() {
        let event = json!({"source": "aws.ec2", "detail-type": SPOT_INTERRUPTION_WARNING,
                           "detail": {"instance-id": "i-12345678"}});
        let env = Envelope::parse(&event).unwrap();
        let err = env.detail::<SpotInterruptionDetail>().unwrap_err();
        assert!(err.to_string().contains("instance-action"), "{err}");
    }
}

pub const SOURCE_AUTOSCALING: &str = "aws.autoscaling";
/// <https://docs.aws.amazon.com/autoscaling/ec2/userguide/prepare-for-lifecycle-notifications.html>
pub const INSTANCE_TERMINATE_LIFECYCLE_ACTION: &str = "EC2 Instance-terminate Lifecycle Action";
pub const TRANSITION_TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
pub const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";

/// The Auto Scaling lifecycle message: the SNS `Message` of a hook with an SNS target, and the `detail`
/// of the EventBridge "EC2 Instance-terminate Lifecycle Action" event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleMessage {
    pub lifecycle_transition: String,
    pub auto_scaling_group_name: String,
    pub lifecycle_hook_name: String,
    pub lifecycle_action_token: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_metadata: Option<String>,
}
