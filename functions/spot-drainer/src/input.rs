//! The event: an EventBridge "EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance
//! Recommendation", "EC2 Instance State-change Notification" (state `running`), an "AWS Health Event" of
//! scheduled EC2 maintenance, or the schedule of the rebalance sweep; checked field by field before any AWS
//! call.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use shared::events::{
    self, CAPACITY_RESERVATION_INTERRUPTION_WARNING, HEALTH_EVENT, HealthEventDetail, INSTANCE_STATE_CHANGE,
    InstanceAction, InstanceId, InstanceStateChangeDetail, InvalidEvent, REBALANCE_RECOMMENDATION,
    RebalanceRecommendationDetail, SOURCE_EC2, SOURCE_HEALTH, SPOT_INTERRUPTION_WARNING,
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
    /// Scheduled EC2 maintenance (AWS Health): retirement, stop, or reboot.
    Scheduled,
    /// The instance runs again ("EC2 Instance State-change Notification", state `running`): a drain of ours
    /// for a `stop` or `hibernate` warning is undone. Not a `DRAIN_ON` choice.
    Running,
    /// The periodic sweep that undoes rebalance drains no interruption followed. Not a `DRAIN_ON` choice.
    Sweep,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The trigger of this name (a marker's reason).
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// Whether the instance may come back after this interruption (a stopped or hibernated Spot instance is
    /// started again when capacity returns; a drain for a rebalance recommendation is undone when no
    /// interruption follows), so that our drain carries a marker to be undone by.
    pub fn may_come_back(self) -> bool {
        matches!(self, Trigger::Stop | Trigger::Hibernate | Trigger::Rebalance | Trigger::Scheduled)
    }

    /// Whether `DRAIN_ON` may list it.
    pub fn is_a_drain_choice(self) -> bool {
        !matches!(self, Trigger::Running | Trigger::Sweep)
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

/// What AWS Health says will happen to the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceKind {
    /// Retired: stopped (EBS-backed) or terminated (instance store).
    Retirement,
    Stop,
    /// The instance (or its host) reboots and keeps running.
    Reboot,
}

impl MaintenanceKind {
    /// From the Health event's `eventTypeCode`
    /// (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instances-status-check_sched.html>).
    pub fn of(event_type_code: &str) -> Option<Self> {
        match event_type_code {
            "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED" | "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED" => {
                Some(MaintenanceKind::Retirement)
            }
            "AWS_EC2_INSTANCE_STOP_SCHEDULED" => Some(MaintenanceKind::Stop),
            "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED"
            | "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED" => Some(MaintenanceKind::Reboot),
            _ => None,
        }
    }

    /// From the code of an EC2 scheduled event (`DescribeInstanceStatus`).
    pub fn of_ec2_code(code: &str) -> Option<Self> {
        match code {
            "instance-retirement" => Some(MaintenanceKind::Retirement),
            "instance-stop" => Some(MaintenanceKind::Stop),
            "instance-reboot" | "system-reboot" => Some(MaintenanceKind::Reboot),
            _ => None,
        }
    }
}

/// AWS Health's `statusCode`: the maintenance is coming, under way, or over (done, or cancelled)
/// (<https://docs.aws.amazon.com/health/latest/ug/aws-health-events-eventbridge-schema.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum HealthStatus {
    Upcoming,
    Open,
    Closed,
}

/// Scheduled maintenance of one or more instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub instance_ids: Vec<InstanceId>,
    pub kind: MaintenanceKind,
    pub status: HealthStatus,
    pub event_type_code: String,
    /// When it is due, as Health gives it.
    pub start_time: Option<String>,
    pub time: Option<DateTime<Utc>>,
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One instance: a warning, a recommendation, or an instance running again.
    Event(SpotEvent),
    Maintenance(Maintenance),
    /// The schedule of the rebalance sweep.
    Sweep,
    /// Acknowledged and not acted on (another Health event), with why.
    Ignore(String),
}

/// Checks the envelope and `detail`, naming the first field that is wrong.
pub fn parse(payload: &Value) -> Result<Input, InvalidEvent> {
    let event = events::eventbridge(payload)?;
    if events::is_scheduled(&event) {
        return Ok(Input::Sweep);
    }
    if (event.source.as_str(), event.detail_type.as_str()) == (SOURCE_HEALTH, HEALTH_EVENT) {
        return health(&event);
    }
    if event.source != SOURCE_EC2 {
        return Err(InvalidEvent::new(
            "source",
            format!("is {:?}; this function handles {SOURCE_EC2:?} and {SOURCE_HEALTH:?}", event.source),
        ));
    }
    let time = event.time;
    let one = |instance_id, trigger| Ok(Input::Event(SpotEvent { instance_id, trigger, time }));
    match event.detail_type.as_str() {
        SPOT_INTERRUPTION_WARNING | CAPACITY_RESERVATION_INTERRUPTION_WARNING => {
            let d: SpotInterruptionDetail = events::detail(&event)?;
            one(d.instance_id, d.instance_action.into())
        }
        REBALANCE_RECOMMENDATION => {
            let d: RebalanceRecommendationDetail = events::detail(&event)?;
            one(d.instance_id, Trigger::Rebalance)
        }
        INSTANCE_STATE_CHANGE => {
            let d: InstanceStateChangeDetail = events::detail(&event)?;
            if d.state != "running" {
                return Err(InvalidEvent::new(
                    "detail.state",
                    format!("is {:?}; this function handles the state running", d.state),
                ));
            }
            one(d.instance_id, Trigger::Running)
        }
        other => Err(InvalidEvent::new(
            "detail-type",
            format!(
                "is {other:?}; expected {SPOT_INTERRUPTION_WARNING:?}, {CAPACITY_RESERVATION_INTERRUPTION_WARNING:?}, {REBALANCE_RECOMMENDATION:?} or {INSTANCE_STATE_CHANGE:?}"
            ),
        )),
    }
}

/// An AWS Health event: scheduled EC2 maintenance of the instances it names, or something to acknowledge.
fn health(event: &EventBridgeEvent<Value>) -> Result<Input, InvalidEvent> {
    let d: HealthEventDetail = events::detail(event)?;
    let kind = MaintenanceKind::of(&d.event_type_code);
    let (true, true, Some(kind)) = (d.service == "EC2", d.event_type_category == "scheduledChange", kind)
    else {
        return Ok(Input::Ignore(format!(
            "Health event {} ({}, {}) is not scheduled EC2 maintenance",
            d.event_type_code, d.service, d.event_type_category
        )));
    };
    // Events before statusCode existed announced what was coming.
    let status = match d.status_code.as_deref() {
        None => HealthStatus::Upcoming,
        Some(raw) => raw.parse().map_err(|_| {
            InvalidEvent::new("detail.statusCode", format!("is {raw:?}; expected upcoming, open or closed"))
        })?,
    };
    let mut instance_ids = Vec::new();
    for (i, entity) in d.affected_entities.iter().enumerate() {
        let field = format!("detail.affectedEntities[{i}].entityValue");
        let id = InstanceId::from_id_or_arn(&field, &entity.entity_value)?;
        if !instance_ids.contains(&id) {
            instance_ids.push(id);
        }
    }
    if instance_ids.is_empty() {
        return Err(InvalidEvent::new("detail.affectedEntities", "names no instance"));
    }
    let start_time = d.start_time;
    Ok(Input::Maintenance(Maintenance {
        instance_ids,
        kind,
        status,
        event_type_code: d.event_type_code,
        start_time,
        time: event.time,
    }))
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

    fn one(input: Result<Input, InvalidEvent>) -> SpotEvent {
        match input {
            Ok(Input::Event(e)) => e,
            other => panic!("not one instance: {other:?}"),
        }
    }

    fn health(code: &str, category: &str, instances: &[&str]) -> Value {
        let entities: Vec<Value> = instances.iter().map(|i| json!({"entityValue": i})).collect();
        json!({"version": "0", "id": "1", "source": "aws.health", "detail-type": "AWS Health Event",
               "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
               "resources": instances, "detail": {"eventArn": "arn:aws:health:us-east-1::event/EC2/x/y",
               "service": "EC2", "eventTypeCode": code, "eventTypeCategory": category,
               "startTime": "Mon, 30 Nov 2026 10:00:00 GMT", "affectedEntities": entities}})
    }

    #[test]
    fn parses_scheduled_maintenance_of_several_instances() {
        let e =
            health("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "scheduledChange", &["i-12345678", "i-87654321"]);
        let Ok(Input::Maintenance(m)) = parse(&e) else { panic!("{e}") };
        assert_eq!(m.kind, MaintenanceKind::Retirement);
        assert_eq!(m.instance_ids.len(), 2);
        let stop = health("AWS_EC2_INSTANCE_STOP_SCHEDULED", "scheduledChange", &["i-12345678"]);
        assert!(matches!(parse(&stop), Ok(Input::Maintenance(m)) if m.kind == MaintenanceKind::Stop));
    }

    #[test]
    fn other_health_events_are_acknowledged() {
        for e in [
            health("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "issue", &["i-12345678"]),
            health("AWS_EC2_OPERATIONAL_ISSUE", "issue", &["i-12345678"]),
        ] {
            assert!(matches!(parse(&e), Ok(Input::Ignore(_))), "{e}");
        }
    }

    #[test]
    fn health_status_codes_and_arns() {
        let mut e = health(
            "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "scheduledChange",
            &["arn:aws:ec2:us-east-1:123456789012:instance/i-12345678"],
        );
        let Ok(Input::Maintenance(m)) = parse(&e) else { panic!("{e}") };
        assert_eq!((m.instance_ids[0].as_str(), m.status), ("i-12345678", HealthStatus::Upcoming));
        e["detail"]["statusCode"] = json!("closed");
        assert!(matches!(parse(&e), Ok(Input::Maintenance(m)) if m.status == HealthStatus::Closed));
        e["detail"]["statusCode"] = json!("finished");
        assert_eq!(parse(&e).unwrap_err().field, "detail.statusCode");
    }

    #[test]
    fn a_health_event_naming_a_bad_instance_names_the_field() {
        let e = health("AWS_EC2_INSTANCE_STOP_SCHEDULED", "scheduledChange", &["i-12345678", "web-1"]);
        assert_eq!(parse(&e).unwrap_err().field, "detail.affectedEntities[1].entityValue");
        let none = health("AWS_EC2_INSTANCE_STOP_SCHEDULED", "scheduledChange", &[]);
        assert_eq!(parse(&none).unwrap_err().field, "detail.affectedEntities");
    }

    #[test]
    fn the_schedule_asks_for_a_sweep() {
        let e = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(parse(&e), Ok(Input::Sweep));
    }

    #[test]
    fn parses_a_spot_warning() {
        let e = spot(
            SPOT_INTERRUPTION_WARNING,
            json!({"instance-id": "i-1234567890abcdef0", "instance-action": "stop"}),
        );
        let parsed = one(parse(&e));
        assert_eq!(parsed.instance_id.as_str(), "i-1234567890abcdef0");
        assert_eq!(parsed.trigger, Trigger::Stop);
    }

    #[test]
    fn parses_an_instance_running_again() {
        let e =
            spot(INSTANCE_STATE_CHANGE, json!({"instance-id": "i-1234567890abcdef0", "state": "running"}));
        let parsed = one(parse(&e));
        assert_eq!(parsed.trigger, Trigger::Running);
        assert_eq!(parsed.time, "2026-11-22T10:00:00Z".parse().ok());
        let stopped =
            spot(INSTANCE_STATE_CHANGE, json!({"instance-id": "i-1234567890abcdef0", "state": "stopped"}));
        assert_eq!(parse(&stopped).unwrap_err().field, "detail.state");
    }

    #[test]
    fn parses_a_rebalance_recommendation() {
        let e = spot(REBALANCE_RECOMMENDATION, json!({"instance-id": "i-1234567890abcdef0"}));
        assert_eq!(one(parse(&e)).trigger, Trigger::Rebalance);
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
