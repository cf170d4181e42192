//! The invocation payload, checked field by field before anything touches AWS.
//!
//! A rollout takes the payload of the `aws-lambda-deploy` sample unchanged (`function-name`,
//! `alias-name`, `new-version`, `steps`, `interval`, `type`, `health-check`) plus shipshape's extensions.
//! The state machine wraps it: `{"mode": "start", "rollout": {...}}`, then `{"mode": "step", "state":
//! {...}}` with the state the previous call returned, and `{"mode": "rollback", "state": {...}}` when a
//! step failed outright.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::events::InvalidEvent;

use crate::schedule::{self, Kind};
use crate::state::State;

/// A checked rollout request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Rollout {
    pub function_name: String,
    pub alias_name: String,
    /// `None` with `publish`: the version `PublishVersion` returns.
    pub new_version: Option<String>,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub steps: u32,
    /// Seconds each weight is held before its health is judged.
    pub interval: u64,
    pub canary_weight: f64,
    /// The routed weights, computed from the above (or given, for `custom`).
    pub weights: Vec<f64>,
    pub health_check: bool,
    pub alarms: Vec<String>,
    pub max_error_rate: f64,
    pub min_invocations: f64,
    /// Seconds to wait after each interval for CloudWatch to have the interval's data points.
    pub metric_delay: u64,
    pub publish: bool,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A whole rollout within this invocation (a manual `aws lambda invoke`).
    Run(Rollout),
    /// The state machine's first call: validate and set the first weight.
    Start(Rollout),
    /// The state machine's next call: judge the current step, then move on.
    Step(Box<State>),
    /// The state machine's failure branch, with what failed (from the `Catch`'s `error`, if passed).
    Rollback(Box<State>, String),
}

const FIELDS: &[&str] = &[
    "function-name",
    "alias-name",
    "new-version",
    "type",
    "steps",
    "interval",
    "canary-weight",
    "weights",
    "health-check",
    "alarms",
    "max-error-rate",
    "min-invocations",
    "metric-delay",
    "publish",
    "notification-topic-arn",
    "dry-run",
];

impl Request {
    pub fn parse(payload: &Value) -> Result<Self, InvalidEvent> {
        let obj = object(payload, "(payload)")?;
        let Some(mode) = obj.get("mode") else { return Ok(Request::Run(Rollout::parse(payload)?)) };
        let state = |obj: &Map<String, Value>| -> Result<Box<State>, InvalidEvent> {
            let raw = obj.get("state").ok_or_else(|| InvalidEvent::new("state", "missing"))?;
            serde_json::from_value(raw.clone())
                .map(Box::new)
                .map_err(|e| InvalidEvent::new("state", format!("not a state this function returned: {e}")))
        };
        match mode.as_str() {
            Some("start") => {
                let rollout = obj.get("rollout").ok_or_else(|| InvalidEvent::new("rollout", "missing"))?;
                Ok(Request::Start(Rollout::parse(rollout)?))
            }
            Some("step") => Ok(Request::Step(state(obj)?)),
            Some("rollback") => Ok(Request::Rollback(state(obj)?, failure(obj.get("error")))),
            _ => Err(InvalidEvent::new(
                "mode",
                "expected start, step or rollback (or no mode for a whole rollout)",
            )),
        }
    }
}

/// Why the state machine calls rollback: the `{"Error", "Cause"}` its `Catch` recorded.
fn failure(error: Option<&Value>) -> String {
    let field =
        |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).filter(|s| !s.is_empty());
    match (field("Error"), field("Cause")) {
        (Some(e), Some(c)) => format!("the state machine's step failed: {e}: {c}"),
        (Some(e), None) => format!("the state machine's step failed: {e}"),
        _ => "the state machine's step failed".to_owned(),
    }
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, InvalidEvent> {
    v.as_object().ok_or_else(|| InvalidEvent::new(field, "expected a JSON object"))
}

impl Rollout {
    pub fn parse(payload: &Value) -> Result<Self, InvalidEvent> {
        let obj = object(payload, "(payload)")?;
        if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(InvalidEvent::new(unknown, format!("unknown field (known: {})", FIELDS.join(", "))));
        }
        let function_name =
            string(obj, "function-name")?.ok_or_else(|| InvalidEvent::new("function-name", "missing"))?;
        check_function_name(&function_name)?;
        let alias_name =
            string(obj, "alias-name")?.ok_or_else(|| InvalidEvent::new("alias-name", "missing"))?;
        check_alias_name(&alias_name)?;
        let publish = boolean(obj, "publish", false)?;
        let new_version = match obj.get("new-version") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(InvalidEvent::new("new-version", "expected a version number")),
        };
        match (&new_version, publish) {
            (None, false) => {
                return Err(InvalidEvent::new(
                    "new-version",
                    "missing (or set \"publish\": true to publish $LATEST)",
                ));
            }
            (Some(v), false) if v == "$LATEST" => {
                return Err(InvalidEvent::new(
                    "new-version",
                    "$LATEST cannot take routed traffic: name a published version, or set \"publish\": true",
                ));
            }
            (Some(v), false) if !(1..=10).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(InvalidEvent::new(
                    "new-version",
                    format!("{v:?} is not a published version number"),
                ));
            }
            (Some(_), true) => {
                return Err(InvalidEvent::new(
                    "new-version",
                    "not with \"publish\": true (the published version is used)",
                ));
            }
            _ => {}
        }
        let custom = match obj.get("weights") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|w| {
                    w.as_f64().ok_or_else(|| InvalidEvent::new("weights", "expected numbers between 0 and 1"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(InvalidEvent::new("weights", "expected a list of numbers between 0 and 1"));
            }
        };
        let kind = match string(obj, "type")? {
            None if !custom.is_empty() => Kind::Custom,
            None => Kind::Linear,
            Some(t) => Kind::parse(&t).ok_or_else(|| {
                InvalidEvent::new(
                    "type",
                    format!("{t:?}: expected linear, canary, exponential, all-at-once or custom"),
                )
            })?,
        };
        if kind == Kind::Custom && custom.is_empty() {
            return Err(InvalidEvent::new("weights", "missing: type custom needs a list of weights"));
        }
        if kind != Kind::Custom && !custom.is_empty() {
            return Err(InvalidEvent::new("weights", "only with type custom (or without type)"));
        }
        let steps = u32::try_from(number(obj, "steps", 10.0, 1.0, 100.0, true)? as u64).unwrap_or(10);
        let interval = number(obj, "interval", 60.0, 0.0, 86_400.0, true)? as u64;
        let canary_weight = number(obj, "canary-weight", 0.1, 0.0001, 0.9999, false)?;
        let weights = schedule::weights(kind, steps, canary_weight, &custom).map_err(|e| {
            InvalidEvent::new(if kind == Kind::Custom { "weights" } else { "canary-weight" }, e)
        })?;
        let alarms = match obj.get("alarms") {
            None => Vec::new(),
            Some(Value::Array(items)) if items.len() <= 100 => items
                .iter()
                .map(|a| match a.as_str() {
                    Some(s) if (1..=255).contains(&s.len()) => Ok(s.to_owned()),
                    _ => Err(InvalidEvent::new(
                        "alarms",
                        "expected CloudWatch alarm names (1 to 255 characters)",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(InvalidEvent::new("alarms", "expected a list of up to 100 alarm names")),
        };
        let notification_topic_arn = string(obj, "notification-topic-arn")?;
        if let Some(arn) = &notification_topic_arn {
            let parts: Vec<&str> = arn.split(':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
                return Err(InvalidEvent::new(
                    "notification-topic-arn",
                    format!("{arn:?} is not an SNS topic ARN"),
                ));
            }
        }
        Ok(Rollout {
            function_name,
            alias_name,
            new_version,
            kind,
            steps,
            interval,
            canary_weight,
            weights,
            health_check: boolean(obj, "health-check", true)?,
            alarms,
            max_error_rate: number(obj, "max-error-rate", 0.0, 0.0, 1.0, false)?,
            min_invocations: number(obj, "min-invocations", 0.0, 0.0, 1e9, true)?,
            metric_delay: number(obj, "metric-delay", 60.0, 0.0, 600.0, true)? as u64,
            publish,
            notification_topic_arn,
            dry_run: boolean(obj, "dry-run", false)?,
        })
    }

    /// `function:alias`, the `Resource` dimension of the alias's metrics.
    pub fn resource(&self) -> String {
        format!("{}:{}", self.function_short_name(), self.alias_name)
    }

    /// The function's name when it was given as an ARN.
    pub fn function_short_name(&self) -> &str {
        match self.function_name.strip_prefix("arn:") {
            Some(rest) => rest.rsplit(':').next().unwrap_or(&self.function_name),
            None => &self.function_name,
        }
    }

    /// Seconds one step takes, waiting included.
    pub fn step_seconds(&self) -> u64 {
        self.interval + if self.health_check { self.metric_delay } else { 0 }
    }
}

fn string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InvalidEvent> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(InvalidEvent::new(field, "empty")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(InvalidEvent::new(field, "expected a string")),
    }
}

fn boolean(obj: &Map<String, Value>, field: &str, default: bool) -> Result<bool, InvalidEvent> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(InvalidEvent::new(field, "expected true or false")),
    }
}

/// A number in `min..=max` (a whole one when `whole`); numbers given as strings are accepted, as the
/// sample's users send `"interval": "120"`.
fn number(
    obj: &Map<String, Value>,
    field: &str,
    default: f64,
    min: f64,
    max: f64,
    whole: bool,
) -> Result<f64, InvalidEvent> {
    let v = match obj.get(field) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match v {
        Some(v) if v.is_finite() && (min..=max).contains(&v) && (!whole || v.fract() == 0.0) => Ok(v),
        _ => Err(InvalidEvent::new(
            field,
            format!("expected a {}number from {min} to {max}", if whole { "whole " } else { "" }),
        )),
    }
}

/// A function name (1-64 of letters, digits, `-`, `_`) or its ARN.
fn check_function_name(name: &str) -> Result<(), InvalidEvent> {
    let short = match name.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.as_slice() {
                [_, "lambda", _, _, "function", short] => *short,
                _ => {
                    return Err(InvalidEvent::new(
                        "function-name",
                        "not a Lambda function ARN (and no qualifier)",
                    ));
                }
            }
        }
        None => name,
    };
    let ok = (1..=64).contains(&short.len())
        && short.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidEvent::new("function-name", format!("{name:?} is not a function name")))
    }
}

/// Alias names: 1-128 of letters, digits, `-`, `_`, not all digits (that would be a version).
fn check_alias_name(name: &str) -> Result<(), InvalidEvent> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok { Ok(()) } else { Err(InvalidEvent::new("alias-name", format!("{name:?} is not an alias name"))) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(v: Value) -> String {
        Rollout::parse(&v).err().map(|e| e.field).unwrap_or_else(|| "(accepted)".into())
    }

    #[test]
    fn the_sample_payload_is_accepted_unchanged() {
        let r = Rollout::parse(
            &json!({"function-name": "MyFunction", "alias-name": "MyAlias", "new-version": "2",
            "steps": 10, "interval": 120, "type": "linear", "health-check": true}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.new_version.as_deref(), Some("2"));
        assert_eq!(r.weights.len(), 9);
        assert_eq!(r.interval, 120);
        assert_eq!(r.resource(), "MyFunction:MyAlias");
    }

    #[test]
    fn every_bad_field_is_named() {
        let base = json!({"function-name": "f", "alias-name": "live", "new-version": 2});
        let with = |k: &str, v: Value| {
            let mut p = base.clone();
            p[k] = v;
            p
        };
        assert_eq!(field(base.clone()), "(accepted)");
        assert_eq!(field(json!({"alias-name": "live", "new-version": 2})), "function-name");
        assert_eq!(field(with("function-name", json!("my fn"))), "function-name");
        assert_eq!(field(with("alias-name", json!("42"))), "alias-name");
        assert_eq!(field(with("new-version", json!("$LATEST"))), "new-version");
        assert_eq!(field(with("new-version", json!("v2"))), "new-version");
        assert_eq!(field(with("steps", json!(0))), "steps");
        assert_eq!(field(with("steps", json!(101))), "steps");
        assert_eq!(field(with("interval", json!(-1))), "interval");
        assert_eq!(field(with("interval", json!(1.5))), "interval");
        assert_eq!(field(with("type", json!("blue-green"))), "type");
        assert_eq!(field(with("weights", json!([0.5, 0.2]))), "weights");
        assert_eq!(field(with("canary-weight", json!(1.0))), "canary-weight");
        assert_eq!(field(with("max-error-rate", json!(2))), "max-error-rate");
        assert_eq!(field(with("alarms", json!([""]))), "alarms");
        assert_eq!(field(with("health-check", json!("yes"))), "health-check");
        assert_eq!(
            field(with("notification-topic-arn", json!("arn:aws:sqs:r:1:q"))),
            "notification-topic-arn"
        );
        assert_eq!(field(with("new_version", json!(2))), "new_version");
        assert_eq!(field(with("publish", json!(true))), "new-version");
    }

    #[test]
    fn types_and_modes() {
        let r = Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "new-version": "3",
            "type": "canary", "canary-weight": 0.05, "interval": "300"}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.weights.clone(), r.interval), (vec![0.05], 300));
        let r = Rollout::parse(
            &json!({"function-name": "f", "alias-name": "live", "publish": true, "weights": [0.1, 0.5]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.kind, r.new_version), (Kind::Custom, None));

        let start = json!({"mode": "start", "rollout": {"function-name": "f", "alias-name": "live", "new-version": 2}});
        assert!(matches!(Request::parse(&start), Ok(Request::Start(_))));
        let bad = Request::parse(&json!({"mode": "step", "state": {"x": 1}})).err().map(|e| e.field);
        assert_eq!(bad.as_deref(), Some("state"));
        let bad = Request::parse(&json!({"mode": "jump"})).err().map(|e| e.field);
        assert_eq!(bad.as_deref(), Some("mode"));
    }
}
