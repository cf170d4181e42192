//! The event: an EventBridge "EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance
//! Recommendation" or "EC2 Instance State-change Notification" (state `running`), checked field by field
//! before any AWS call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use shared::events::{
    self, INSTANCE_STATE_CHANGE, InstanceAction, InstanceId, InstanceStateChangeDetail, InvalidEvent,
    REBALANCE_RECOMMENDATION, RebalanceRecommendationDetail, SOURCE_EC2, SPOT_INTERRUPTION_WARNING,
    SpotInterruptionDetail,
};

/// The kinds of event that can trigger a drain; `DRAIN_ON` picks among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", ascii_case_insensitive)]
pub enum Trigger {
    /// Spot interruption warning with `instance-action: terminate`.
    Terminate,
    Stop,
    Hibernate,
    /// Rebalance recommendation: an elevated risk of interruption, often minutes to hours ahead.
    Rebalance,
    /// The instance runs again ("EC2 Instance State-change Notification", state `running`): a drain of ours
    /// for a `stop` or `hibernate` warning is undone. Not a `DRAIN_ON` choice.
    Running,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether the instance may come back after this interruption (a stopped or hibernated Spot instance is
    /// started again when capacity returns), so that our drain must be undone then.
    pub fn may_come_back(self) -> bool {
        matches!(self, Trigger::Stop | Trigger::Hibernate)
    }
}

impl From<InstanceAction> for Trigger {
    fn from(action: InstanceAction) -> Self {
        match action {
            InstanceAction::Terminate => Trigger::Terminate,
            InstanceAction::Stop => Trigger::Stop,
            InstanceAction::Hibernate => Trigger::Hibernate,
        }
    }
}

/// A checked spot, rebalance or state-change event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotEvent {
    pub instance_id: InstanceId,
    pub trigger: Trigger,
    /// When it happened (the envelope's `time`).
    pub time: Option<DateTime<Utc>>,
}

/// Checks the envelope and `detail`, naming the first field that is wrong.
pub fn parse(payload: &Value) -> Result<SpotEvent, InvalidEvent> {
    let event = events::eventbridge(payload)?;
    if event.source != SOURCE_EC2 {
        return Err(InvalidEvent::new(
            "source",
            format!("is {:?}; this function handles {SOURCE_EC2:?}", event.source),
        ));
    }
    let time = event.time;
    match event.detail_type.as_str() {
        SPOT_INTERRUPTION_WARNING => {
            let d: SpotInterruptionDetail = events::detail(&event)?;
            Ok(SpotEvent { instance_id: d.instance_id, trigger: d.instance_action.into(), time })
        }
        REBALANCE_RECOMMENDATION => {
            let d: RebalanceRecommendationDetail = events::detail(&event)?;
            Ok(SpotEvent { instance_id: d.instance_id, trigger: Trigger::Rebalance, time })
        }
        INSTANCE_STATE_CHANGE => {
            let d: InstanceStateChangeDetail = events::detail(&event)?;
            if d.state != "running" {
                return Err(InvalidEvent::new(
                    "detail.state",
                    format!("is {:?}; this function handles the state running", d.state),
                ));
            }
            if time.is_none() {
                return Err(InvalidEvent::new("time", "is missing: when the instance began to run again"));
            }
            Ok(SpotEvent { instance_id: d.instance_id, trigger: Trigger::Running, time })
        }
        other => Err(InvalidEvent::new(
            "detail-type",
            format!(
                "is {other:?}; expected {SPOT_INTERRUPTION_WARNING:?}, {REBALANCE_RECOMMENDATION:?} or {INSTANCE_STATE_CHANGE:?}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spot(detail_type: &str, detail: Value) -> Value {
        json!({"version": "0", "id": "1", "source": "aws.ec2", "detail-type": detail_type,
               "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
               "resources": [], "detail": detail})
    }

    #[test]
    fn parses_a_spot_warning() {
        let e = spot(
            SPOT_INTERRUPTION_WARNING,
            json!({"instance-id": "i-1234567890abcdef0", "instance-action": "stop"}),
        );
        let parsed = parse(&e).unwrap();
        assert_eq!(parsed.instance_id.as_str(), "i-1234567890abcdef0");
        assert_eq!(parsed.trigger, Trigger::Stop);
    }

    #[test]
    fn parses_an_instance_running_again() {
        let e =
            spot(INSTANCE_STATE_CHANGE, json!({"instance-id": "i-1234567890abcdef0", "state": "running"}));
        let parsed = parse(&e).unwrap();
        assert_eq!(parsed.trigger, Trigger::Running);
        assert_eq!(parsed.time, "2026-11-22T10:00:00Z".parse().ok());
        let stopped =
            spot(INSTANCE_STATE_CHANGE, json!({"instance-id": "i-1234567890abcdef0", "state": "stopped"}));
        assert_eq!(parse(&stopped).unwrap_err().field, "detail.state");
    }

    #[test]
    fn parses_a_rebalance_recommendation() {
        let e = spot(REBALANCE_RECOMMENDATION, json!({"instance-id": "i-1234567890abcdef0"}));
        assert_eq!(parse(&e).unwrap().trigger, Trigger::Rebalance);
    }

    #[test]
    fn bad_events_name_the_field() {
        let warning = |detail: Value| spot(SPOT_INTERRUPTION_WARNING, detail);
        let cases = [
            (json!({"source": "aws.ec2", "detail-type": SPOT_INTERRUPTION_WARNING}), "detail"),
            (
                json!({"source": "aws.autoscaling", "detail-type": SPOT_INTERRUPTION_WARNING, "detail": {}}),
                "source",
            ),
            (spot("EC2 Instance Launch Successful", json!({})), "detail-type"),
            (
                warning(json!({"instance-id": "i-12345678", "instance-action": "reboot"})),
                "detail.instance-action",
            ),
            (
                warning(json!({"instance-id": "i-12345678", "instance-action": "rebalance"})),
                "detail.instance-action",
            ),
            (warning(json!({"instance-id": "nope", "instance-action": "terminate"})), "detail.instance-id"),
            (warning(json!({"instance-action": "terminate"})), "detail.instance-id"),
        ];
        for (event, field) in cases {
            assert_eq!(parse(&event).unwrap_err().field, field, "{event}");
        }
    }

    #[test]
    fn trigger_names_match_the_summary() {
        for t in [Trigger::Terminate, Trigger::Stop, Trigger::Hibernate, Trigger::Rebalance, Trigger::Running]
        {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
            assert_eq!(t.name().parse::<Trigger>(), Ok(t));
        }
    }
}
