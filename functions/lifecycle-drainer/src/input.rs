//! What arrives: an SNS event (the hook's topic, or our own continuation), or an EventBridge event, parsed
//! with `aws_lambda_events`' envelopes; the lifecycle message and our continuation state typed.

use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::ecs::ClusterScope;
use shared::edge::Internal;
use shared::events::{
    self, INSTANCE_LAUNCH_LIFECYCLE_ACTION, INSTANCE_TERMINATE_LIFECYCLE_ACTION, InvalidEvent,
    LifecycleMessage, SOURCE_AUTOSCALING, SOURCE_ECS, TASK_STATE_CHANGE, TEST_NOTIFICATION,
    TRANSITION_LAUNCHING, TRANSITION_TERMINATING,
};

use crate::Config;

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
    /// When the instance entered `Terminating:Wait` (the message's `Time`, or the EventBridge event's
    /// `time`): the hook's `GlobalTimeout` counts from here.
    pub began_at: DateTime<Utc>,
    pub state: Option<DrainState>,
    /// The topic it came from (SNS delivery), where a continuation can be published.
    pub topic_arn: Option<String>,
}

/// Clocks of two machines never agree exactly; a continuation's times may be this far ahead of ours.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

impl Work {
    /// A launch (`EC2_INSTANCE_LAUNCHING`), not a termination.
    pub fn launching(&self) -> bool {
        self.message.lifecycle_transition == TRANSITION_LAUNCHING
    }

    /// A continuation is checked against the configuration before anything is done with it: anyone who
    /// can publish to the topic or invoke the function can forge one. Its cluster must be in scope, its
    /// times must follow from `DRAIN_TIMEOUT_SECONDS` and the message's `Time`, its hop must be within
    /// `MAX_HOPS`. (That its container instance belongs to the message's EC2 instance is checked against
    /// ECS.)
    pub fn check_continuation(&self, config: &Config, now: DateTime<Utc>) -> Result<(), InvalidEvent> {
        let Some(s) = &self.state else { return Ok(()) };
        let bad =
            |field: &str, reason: String| Err(InvalidEvent::new(format!("{STATE_KEY}.{field}"), reason));
        if let ClusterScope::Listed(clusters) = &config.clusters
            && !clusters.contains(&s.cluster)
        {
            return bad("cluster", format!("{} is not among the configured CLUSTERS", s.cluster));
        }
        if s.hop == 0 || s.hop > config.max_hops {
            return bad(
                "hop",
                format!("{} is not a continuation's hop (1 to MAX_HOPS={})", s.hop, config.max_hops),
            );
        }
        if s.started_at > now + CLOCK_SKEW || s.started_at + CLOCK_SKEW < self.began_at {
            return bad("started_at", format!("{} is not between the message's Time and now", s.started_at));
        }
        let longest = chrono::Duration::from_std(config.drain_timeout).unwrap_or(chrono::Duration::MAX);
        if s.deadline > s.started_at + longest {
            return bad(
                "deadline",
                format!(
                    "{} is later than started_at + DRAIN_TIMEOUT_SECONDS ({} s)",
                    s.deadline,
                    config.drain_timeout.as_secs()
                ),
            );
        }
        if s.last_heartbeat_at < s.started_at || s.last_heartbeat_at > now + CLOCK_SKEW {
            return bad(
                "last_heartbeat_at",
                format!("{} is not between started_at and now", s.last_heartbeat_at),
            );
        }
        Ok(())
    }
}

/// An ECS task stopped on a container instance (EventBridge "ECS Task State Change", `lastStatus`
/// STOPPED): if it was the last task on an instance we are draining, the action can complete now.
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
    Work(Box<Work>),
    TaskStopped(TaskStopped),
    /// Acknowledged and not acted on, with why. Never an error: an error makes Lambda retry.
    Ignore(String),
}

/// The two fields that say what kind of Auto Scaling message this is, read before the rest is typed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Kind {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    lifecycle_transition: Option<String>,
}

/// Our state, next to the lifecycle message's fields in a continuation.
#[derive(Debug, Deserialize)]
struct Carried {
    #[serde(rename = "ShipshapeDrain", default)]
    state: Option<DrainState>,
}

/// Reads an invocation payload. Only a payload that is neither SNS nor EventBridge, or a terminating
/// lifecycle message with a missing or bad field, is an error.
pub fn parse(payload: &Value) -> Result<Input, InvalidEvent> {
    if events::object(payload)?.contains_key("Records") {
        return parse_sns(payload);
    }
    let event = events::eventbridge(payload)?;
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
            format!("is {:?}; expected {SOURCE_AUTOSCALING:?}, {SOURCE_ECS:?} or an SNS event", event.source),
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
    lifecycle(&event.detail, "detail", event.time, None)
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
    lifecycle(&message, "Records[0].Sns.Message", None, Some(record.sns.topic_arn.clone()))
}

/// `event_time`: the EventBridge envelope's `time`, where its `detail` has no `Time`.
fn lifecycle(
    message: &Value,
    at: &str,
    event_time: Option<DateTime<Utc>>,
    topic_arn: Option<String>,
) -> Result<Input, InvalidEvent> {
    if !message.is_object() {
        return Ok(Input::Ignore("not a lifecycle message (not a JSON object)".into()));
    }
    let kind: Kind = events::from_value(message, at)?;
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
    let parsed: LifecycleMessage = events::from_value(message, at)?;
    let carried: Carried = events::from_value(message, at)?;
    let Some(began_at) = parsed.time.or(event_time) else {
        let field =
            if event_time.is_none() && at == "detail" { "time".to_owned() } else { format!("{at}.Time") };
        return Err(InvalidEvent::new(field, "is missing: when the instance entered the wait state"));
    };
    Ok(Input::Work(Box::new(Work { message: parsed, began_at, state: carried.state, topic_arn })))
}

/// The continuation: the lifecycle message as Auto Scaling sent it, plus our state.
pub fn continuation(message: &LifecycleMessage, state: &DrainState) -> Result<String, Internal> {
    let encode = |e: serde_json::Error| Internal::new("encoding a continuation", e);
    let mut value = serde_json::to_value(message).map_err(encode)?;
    if let Value::Object(map) = &mut value {
        map.insert(STATE_KEY.to_owned(), serde_json::to_value(state).map_err(encode)?);
    }
    serde_json::to_string(&value).map_err(encode)
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

    fn work(input: Result<Input, InvalidEvent>) -> Work {
        match input {
            Ok(Input::Work(work)) => *work,
            other => panic!("not work: {other:?}"),
        }
    }

    #[test]
    fn the_sns_form_is_work() {
        let work = work(parse(&sns(&message().to_string())));
        assert_eq!(work.message.ec2_instance_id.as_str(), "i-1234567890abcdef0");
        assert_eq!(work.topic_arn.as_deref(), Some("arn:aws:sns:us-east-1:123456789012:hooks"));
        assert_eq!(work.state, None);
    }

    #[test]
    fn the_eventbridge_form_is_work() {
        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_TERMINATE_LIFECYCLE_ACTION, "detail": message()});
        let work = work(parse(&eb));
        assert_eq!(work.message.lifecycle_hook_name, "drain");
        assert_eq!(work.topic_arn, None);
    }

    #[test]
    fn the_hook_began_at_the_message_time_or_the_event_time() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(work(parse(&sns(&message().to_string()))).began_at, at("2026-11-22T10:00:00Z"));
        let mut detail = message();
        detail.as_object_mut().unwrap().remove("Time");
        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_TERMINATE_LIFECYCLE_ACTION,
                        "time": "2026-11-22T09:59:58Z", "detail": detail});
        assert_eq!(work(parse(&eb)).began_at, at("2026-11-22T09:59:58Z"));
    }

    #[test]
    fn a_message_without_its_time_names_the_field() {
        let mut no_time = message();
        no_time.as_object_mut().unwrap().remove("Time");
        assert_eq!(parse(&sns(&no_time.to_string())).unwrap_err().field, "Records[0].Sns.Message.Time");
        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_TERMINATE_LIFECYCLE_ACTION, "detail": no_time});
        assert_eq!(parse(&eb).unwrap_err().field, "time");
    }

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
        Config::from_env(shared::config::Env::from_map(&map)).unwrap()
    }

    /// A continuation as this function writes it: hop 1, started at the message's time, 900 s to go.
    fn continued() -> Work {
        let mut w = work(parse(&sns(&message().to_string())));
        let start = w.began_at + chrono::Duration::seconds(2);
        w.state = Some(DrainState {
            started_at: start,
            deadline: start + chrono::Duration::seconds(900),
            hop: 1,
            cluster: "web".into(),
            container_instance_arn: "arn:aws:ecs:us-east-1:123456789012:container-instance/web/1".into(),
            heartbeat_timeout: Some(300),
            last_heartbeat_at: start + chrono::Duration::seconds(600),
        });
        w
    }

    #[test]
    fn a_continuation_as_written_passes() {
        let w = continued();
        let now = w.began_at + chrono::Duration::seconds(601);
        assert_eq!(w.check_continuation(&config(&[("CLUSTERS", "web")]), now), Ok(()));
        assert_eq!(w.check_continuation(&config(&[]), now), Ok(()), "every cluster in scope");
    }

    #[test]
    fn a_forged_continuation_is_refused_naming_the_field() {
        let now = continued().began_at + chrono::Duration::seconds(601);
        let c = config(&[("CLUSTERS", "web")]);
        let forged = |change: &dyn Fn(&mut DrainState)| {
            let mut w = continued();
            change(w.state.as_mut().unwrap());
            w.check_continuation(&c, now).unwrap_err().field
        };
        assert_eq!(forged(&|s| s.cluster = "payments".into()), "ShipshapeDrain.cluster");
        assert_eq!(forged(&|s| s.hop = 0), "ShipshapeDrain.hop");
        assert_eq!(forged(&|s| s.hop = c.max_hops + 1), "ShipshapeDrain.hop");
        assert_eq!(
            forged(&|s| s.deadline = s.started_at + chrono::Duration::hours(48)),
            "ShipshapeDrain.deadline"
        );
        assert_eq!(forged(&|s| s.started_at = now + chrono::Duration::hours(1)), "ShipshapeDrain.started_at");
        assert_eq!(forged(&|s| s.started_at -= chrono::Duration::hours(1)), "ShipshapeDrain.started_at");
        assert_eq!(
            forged(&|s| s.last_heartbeat_at = now + chrono::Duration::hours(1)),
            "ShipshapeDrain.last_heartbeat_at"
        );
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
    fn launches_are_work_into_the_group_or_the_warm_pool() {
        let mut launch = message();
        launch["LifecycleTransition"] = json!(TRANSITION_LAUNCHING);
        (launch["Origin"], launch["Destination"]) = (json!("EC2"), json!("WarmPool"));
        let w = work(parse(&sns(&launch.to_string())));
        assert!(w.launching() && w.message.into_warm_pool());
        let eb = json!({"source": SOURCE_AUTOSCALING, "detail-type": INSTANCE_LAUNCH_LIFECYCLE_ACTION,
            "time": "2026-11-22T10:00:00Z", "detail": launch});
        assert!(work(parse(&eb)).launching());
        assert!(!work(parse(&sns(&message().to_string()))).launching());
    }

    #[test]
    fn broken_lifecycle_messages_name_the_field() {
        let mut no_token = message();
        no_token.as_object_mut().unwrap().remove("LifecycleActionToken");
        let mut bad_id = message();
        bad_id["EC2InstanceId"] = json!("web-1");
        let mut empty_group = message();
        empty_group["AutoScalingGroupName"] = json!("");
        let mut bad_state = message();
        bad_state[STATE_KEY] = json!({"hop": "x"});
        let mut no_message = sns("{}");
        no_message["Records"][0]["Sns"].as_object_mut().unwrap().remove("Message");
        let cases = [
            (sns(&no_token.to_string()), "Records[0].Sns.Message.LifecycleActionToken"),
            (sns(&bad_id.to_string()), "Records[0].Sns.Message.EC2InstanceId"),
            (sns(&empty_group.to_string()), "Records[0].Sns.Message.AutoScalingGroupName"),
            (sns(&bad_state.to_string()), "Records[0].Sns.Message.ShipshapeDrain.hop"),
            (json!({"Records": []}), "Records"),
            (no_message, "Records[0].Sns.Message"),
            (json!({"source": "aws.ec2", "detail-type": "x", "detail": {}}), "source"),
            (json!(42), "(event)"),
        ];
        for (payload, field) in cases {
            assert_eq!(parse(&payload).unwrap_err().field, field, "{payload}");
        }
    }

    #[test]
    fn a_continuation_round_trips() {
        let work = work(parse(&sns(&message().to_string())));
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
        assert!(text.contains("\"Time\":\"2026-11-22T10:00:00Z\""), "{text}");
        let again = self::work(parse(&sns(&text)));
        assert_eq!(again.message, work.message);
        assert_eq!(again.state, Some(state));
    }
}
