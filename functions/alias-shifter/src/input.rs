//! The invocation payload, typed and checked field by field before anything touches AWS.
//!
//! A rollout takes the payload of the `aws-lambda-deploy` sample unchanged (`function-name`,
//! `alias-name`, `new-version`, `steps`, `interval`, `type`, `health-check`) plus shipshape's extensions.
//! The state machine wraps it: `{"mode": "start", "rollout": {...}}`, then `{"mode": "step", "state":
//! {...}}` with the state the previous call returned, and `{"mode": "rollback", "state": {...}}` when a
//! step failed outright.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::events::{self, InvalidEvent};

use self::numeric::Numeric;
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

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Start,
    Step,
    Rollback,
}

/// A state machine call: the mode and what it carries.
#[derive(Debug, Deserialize)]
struct Call {
    mode: Mode,
    #[serde(default)]
    rollout: Option<Value>,
    #[serde(default)]
    state: Option<Value>,
    #[serde(default)]
    error: Option<Caught>,
}

/// The `{"Error", "Cause"}` a state machine's `Catch` records.
#[derive(Debug, Default, Deserialize)]
struct Caught {
    #[serde(rename = "Error", default)]
    error: Option<String>,
    #[serde(rename = "Cause", default)]
    cause: Option<String>,
}

impl Request {
    pub fn parse(payload: &Value) -> Result<Self, InvalidEvent> {
        let obj = object(payload)?;
        if !obj.contains_key("mode") {
            return Ok(Request::Run(Rollout::parse(payload)?));
        }
        let call: Call = events::from_value(payload, "").map_err(|e| {
            if e.field == "mode" {
                InvalidEvent::new("mode", "expected start, step or rollback (or no mode for a whole rollout)")
            } else {
                e
            }
        })?;
        let state = |raw: Option<Value>| -> Result<Box<State>, InvalidEvent> {
            let raw = raw.ok_or_else(|| InvalidEvent::new("state", "missing"))?;
            events::from_value(&raw, "state").map(Box::new).map_err(|e| {
                InvalidEvent::new(
                    "state",
                    format!("not a state this function returned: `{}` {}", e.field, e.reason),
                )
            })
        };
        match call.mode {
            Mode::Start => {
                let rollout = call.rollout.ok_or_else(|| InvalidEvent::new("rollout", "missing"))?;
                Ok(Request::Start(Rollout::parse(&rollout)?))
            }
            Mode::Step => Ok(Request::Step(state(call.state)?)),
            Mode::Rollback => {
                Ok(Request::Rollback(state(call.state)?, failure(call.error.unwrap_or_default())))
            }
        }
    }
}

/// Why the state machine calls rollback.
fn failure(caught: Caught) -> String {
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    match (nonempty(caught.error), nonempty(caught.cause)) {
        (Some(e), Some(c)) => format!("the state machine's step failed: {e}: {c}"),
        (Some(e), None) => format!("the state machine's step failed: {e}"),
        _ => "the state machine's step failed".to_owned(),
    }
}

fn object(v: &Value) -> Result<&serde_json::Map<String, Value>, InvalidEvent> {
    v.as_object().ok_or_else(|| InvalidEvent::new("(payload)", "expected a JSON object"))
}

/// The payload as sent; [`Payload::validate`] makes a [`Rollout`] of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Payload {
    function_name: String,
    alias_name: String,
    #[serde(default)]
    new_version: Option<Numeric>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    steps: Option<Numeric>,
    #[serde(default)]
    interval: Option<Numeric>,
    #[serde(default)]
    canary_weight: Option<Numeric>,
    #[serde(default)]
    weights: Option<Vec<f64>>,
    #[serde(default)]
    health_check: Option<bool>,
    #[serde(default)]
    alarms: Option<Vec<String>>,
    #[serde(default)]
    max_error_rate: Option<Numeric>,
    #[serde(default)]
    min_invocations: Option<Numeric>,
    #[serde(default)]
    metric_delay: Option<Numeric>,
    #[serde(default)]
    publish: Option<bool>,
    #[serde(default)]
    notification_topic_arn: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

impl Rollout {
    pub fn parse(payload: &Value) -> Result<Self, InvalidEvent> {
        object(payload)?;
        let p: Payload = events::from_value(payload, "")?;
        p.validate()
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

impl Payload {
    /// Each value in its range, and the rules between fields.
    fn validate(self) -> Result<Rollout, InvalidEvent> {
        for (field, value) in [
            ("function-name", Some(&self.function_name)),
            ("alias-name", Some(&self.alias_name)),
            ("type", self.kind.as_ref()),
            ("notification-topic-arn", self.notification_topic_arn.as_ref()),
        ] {
            if value.is_some_and(String::is_empty) {
                return Err(InvalidEvent::new(field, "empty"));
            }
        }
        check_function_name(&self.function_name)?;
        check_alias_name(&self.alias_name)?;
        let publish = self.publish.unwrap_or(false);
        let new_version = self.new_version.as_ref().map(Numeric::text);
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
        let custom = self.weights.unwrap_or_default();
        let kind = match self.kind.as_deref() {
            None if !custom.is_empty() => Kind::Custom,
            None => Kind::Linear,
            Some(t) => t.parse().map_err(|_| {
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
        let steps = u32::try_from(number("steps", &self.steps, 10.0, 1.0, 100.0, true)? as u64).unwrap_or(10);
        let interval = number("interval", &self.interval, 60.0, 0.0, 86_400.0, true)? as u64;
        let canary_weight = number("canary-weight", &self.canary_weight, 0.1, 0.0001, 0.9999, false)?;
        let weights = schedule::weights(kind, steps, canary_weight, &custom).map_err(|e| {
            InvalidEvent::new(if kind == Kind::Custom { "weights" } else { "canary-weight" }, e)
        })?;
        let alarms = self.alarms.unwrap_or_default();
        if alarms.len() > 100 {
            return Err(InvalidEvent::new("alarms", "expected a list of up to 100 alarm names"));
        }
        if alarms.iter().any(|a| !(1..=255).contains(&a.len())) {
            return Err(InvalidEvent::new("alarms", "expected CloudWatch alarm names (1 to 255 characters)"));
        }
        if let Some(arn) = &self.notification_topic_arn {
            let parts: Vec<&str> = arn.split(':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
                return Err(InvalidEvent::new(
                    "notification-topic-arn",
                    format!("{arn:?} is not an SNS topic ARN"),
                ));
            }
        }
        Ok(Rollout {
            function_name: self.function_name,
            alias_name: self.alias_name,
            new_version,
            kind,
            steps,
            interval,
            canary_weight,
            weights,
            health_check: self.health_check.unwrap_or(true),
            alarms,
            max_error_rate: number("max-error-rate", &self.max_error_rate, 0.0, 0.0, 1.0, false)?,
            min_invocations: number("min-invocations", &self.min_invocations, 0.0, 0.0, 1e9, true)?,
            metric_delay: number("metric-delay", &self.metric_delay, 60.0, 0.0, 600.0, true)? as u64,
            publish,
            notification_topic_arn: self.notification_topic_arn,
            dry_run: self.dry_run.unwrap_or(false),
        })
    }
}

/// A number in `min..=max` (a whole one when `whole`), or `default` when not given.
fn number(
    field: &str,
    v: &Option<Numeric>,
    default: f64,
    min: f64,
    max: f64,
    whole: bool,
) -> Result<f64, InvalidEvent> {
    let Some(v) = v else { return Ok(default) };
    match v.as_f64() {
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
        Some(rest) => match rest.split(':').collect::<Vec<_>>().as_slice() {
            [_, "lambda", _, _, "function", short] => *short,
            _ => {
                return Err(InvalidEvent::new(
                    "function-name",
                    "not a Lambda function ARN (and no qualifier)",
                ));
            }
        },
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

mod numeric;
#[cfg(test)]
mod tests;
