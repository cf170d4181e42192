//! The rollout payload: the `aws-lambda-deploy` sample's fields unchanged, plus shipshape's, each checked
//! in its range and named when wrong; and its weight schedule ([`schedule`]). Pure.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::events::{self, InvalidEvent};

use self::numeric::Numeric;
use self::schedule::Kind;
use crate::judge::health::Criteria;

mod numeric;
pub mod schedule;
#[cfg(test)]
mod tests;

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
    /// Seconds each weight is held; its traffic is judged once complete (see [`crate::window`]).
    pub interval: u64,
    pub canary_weight: f64,
    /// The routed weights, computed from the above (or given, for `custom`).
    pub weights: Vec<f64>,
    pub health_check: bool,
    pub alarms: Vec<String>,
    /// Highest acceptable `Errors / Invocations` of the new version in a window: 0 by default (any error
    /// fails), 1 (off) by default when `error_rate_confidence` compares it with the old version's.
    pub max_error_rate: f64,
    /// Fewer invocations than this in a window (at least 1) is inconclusive.
    pub min_invocations: f64,
    /// Extra intervals an inconclusive step waits before it is rolled back (or paused for approval).
    pub max_extensions: u32,
    /// Compare the new version's error and throttle rates with the old one's at this confidence.
    pub error_rate_confidence: Option<f64>,
    /// Highest acceptable `Duration` p90 and p99 of the new version, as a multiple of the old one's.
    pub max_duration_ratio: Option<f64>,
    /// Highest acceptable share of throttled requests of the new version.
    pub max_throttle_rate: Option<f64>,
    /// Seconds CloudWatch takes to show a data point.
    pub metric_delay: u64,
    /// Seconds the new version is judged as the primary before the rollout succeeds.
    pub bake_seconds: u64,
    pub pre_traffic_function: Option<String>,
    pub post_traffic_function: Option<String>,
    /// Pause for a person's approval before the switch (state machine only).
    pub approval: bool,
    /// Seconds an approval is waited for before the rollout is rolled back.
    pub approval_timeout: u64,
    pub publish: bool,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
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
    max_extensions: Option<Numeric>,
    #[serde(default)]
    error_rate_confidence: Option<Numeric>,
    #[serde(default)]
    max_duration_ratio: Option<Numeric>,
    #[serde(default)]
    max_throttle_rate: Option<Numeric>,
    #[serde(default)]
    metric_delay: Option<Numeric>,
    #[serde(default)]
    bake_seconds: Option<Numeric>,
    #[serde(default)]
    pre_traffic_function: Option<String>,
    #[serde(default)]
    post_traffic_function: Option<String>,
    #[serde(default)]
    approval: Option<bool>,
    #[serde(default)]
    approval_timeout: Option<Numeric>,
    #[serde(default)]
    publish: Option<bool>,
    #[serde(default)]
    notification_topic_arn: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

impl Rollout {
    pub fn parse(payload: &Value) -> Result<Self, InvalidEvent> {
        if !payload.is_object() {
            return Err(InvalidEvent::new("(payload)", "expected a JSON object"));
        }
        let p: Payload = events::from_value(payload, "")?;
        p.validate()
    }

    /// A rollout handed back inside a state: exactly what [`Rollout::parse`] makes of its own fields, so
    /// that no value outside the checked ranges comes in that way.
    pub fn recheck(&self) -> Result<(), InvalidEvent> {
        let mut payload =
            serde_json::to_value(self).map_err(|e| InvalidEvent::new("state.rollout", e.to_string()))?;
        if let Some(fields) = payload.as_object_mut() {
            fields.retain(|_, v| !v.is_null());
            if self.kind != Kind::Custom {
                fields.remove("weights");
            }
        }
        let parsed = Rollout::parse(&payload)
            .map_err(|e| InvalidEvent::new(format!("state.rollout.{}", e.field), e.reason))?;
        if parsed == *self {
            Ok(())
        } else {
            Err(InvalidEvent::new("state.rollout", "not a rollout this function accepted"))
        }
    }

    /// `function:alias`, the `Resource` dimension of the alias's metrics.
    pub fn resource(&self) -> String {
        format!("{}:{}", self.function_short_name(), self.alias_name)
    }

    /// The function's name when it was given as an ARN.
    pub fn function_short_name(&self) -> &str {
        short_name(&self.function_name)
    }

    /// The thresholds, as the judge takes them for a single judgement (a rollout shares the budget out
    /// over its judgements: `State::criteria`).
    pub fn criteria(&self) -> Criteria {
        Criteria {
            max_error_rate: self.max_error_rate,
            min_invocations: self.min_invocations_floor(),
            alpha: self.error_rate_confidence.map(|c| 1.0 - c),
            max_duration_ratio: self.max_duration_ratio,
            max_throttle_rate: self.max_throttle_rate,
        }
    }

    /// The smallest number of invocations a window needs.
    pub fn min_invocations_floor(&self) -> f64 {
        self.min_invocations.max(1.0)
    }
}

/// A function's name from its name, `name:qualifier` or ARN.
pub fn short_name(function: &str) -> &str {
    match function.strip_prefix("arn:") {
        Some(rest) => rest.split(':').nth(5).unwrap_or(function),
        None => function.split(':').next().unwrap_or(function),
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
            ("pre-traffic-function", self.pre_traffic_function.as_ref()),
            ("post-traffic-function", self.post_traffic_function.as_ref()),
        ] {
            if value.is_some_and(String::is_empty) {
                return Err(InvalidEvent::new(field, "empty"));
            }
        }
        check_function_name("function-name", &self.function_name, false)?;
        check_alias_name("alias-name", &self.alias_name)?;
        for (field, hook) in [
            ("pre-traffic-function", &self.pre_traffic_function),
            ("post-traffic-function", &self.post_traffic_function),
        ] {
            if let Some(hook) = hook {
                check_function_name(field, hook, true)?;
            }
        }
        let publish = self.publish.unwrap_or(false);
        let new_version = self.new_version.as_ref().map(Numeric::text);
        check_new_version(new_version.as_deref(), publish)?;
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
        let optional = |field, v: &Option<Numeric>, min, max| match v {
            None => Ok(None),
            Some(_) => number(field, v, 0.0, min, max, false).map(Some),
        };
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
            // The sample's default fails a step on any error; with the comparison on, the comparison decides.
            max_error_rate: number(
                "max-error-rate",
                &self.max_error_rate,
                if self.error_rate_confidence.is_some() { 1.0 } else { 0.0 },
                0.0,
                1.0,
                false,
            )?,
            min_invocations: number("min-invocations", &self.min_invocations, 0.0, 0.0, 1e9, true)?,
            max_extensions: number("max-extensions", &self.max_extensions, 2.0, 0.0, 10.0, true)? as u32,
            error_rate_confidence: optional(
                "error-rate-confidence",
                &self.error_rate_confidence,
                0.5,
                0.9999,
            )?,
            max_duration_ratio: optional("max-duration-ratio", &self.max_duration_ratio, 1.0, 100.0)?,
            max_throttle_rate: optional("max-throttle-rate", &self.max_throttle_rate, 0.0, 1.0)?,
            metric_delay: number("metric-delay", &self.metric_delay, 60.0, 0.0, 600.0, true)? as u64,
            bake_seconds: number("bake-seconds", &self.bake_seconds, 0.0, 0.0, 2_592_000.0, true)? as u64,
            pre_traffic_function: self.pre_traffic_function,
            post_traffic_function: self.post_traffic_function,
            approval: self.approval.unwrap_or(false),
            approval_timeout: number(
                "approval-timeout",
                &self.approval_timeout,
                86_400.0,
                60.0,
                31_536_000.0,
                true,
            )? as u64,
            publish,
            notification_topic_arn: self.notification_topic_arn,
            dry_run: self.dry_run.unwrap_or(false),
        })
    }
}

fn check_new_version(new_version: Option<&str>, publish: bool) -> Result<(), InvalidEvent> {
    let why = match (new_version, publish) {
        (None, false) => "missing (or set \"publish\": true to publish $LATEST)".to_owned(),
        (Some("$LATEST"), false) => {
            "$LATEST cannot take routed traffic: name a published version, or set \"publish\": true"
                .to_owned()
        }
        (Some(v), false) if !(1..=10).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{v:?} is not a published version number")
        }
        (Some(_), true) => "not with \"publish\": true (the published version is used)".to_owned(),
        _ => return Ok(()),
    };
    Err(InvalidEvent::new("new-version", why))
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

fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A function name (1-64 of letters, digits, `-`, `_`) or its ARN; with `qualified`, also `name:qualifier`
/// and a qualified ARN (a version, an alias or `$LATEST`).
pub fn check_function_name(field: &str, name: &str, qualified: bool) -> Result<(), InvalidEvent> {
    let (short, qualifier) = match name.strip_prefix("arn:") {
        Some(rest) => match rest.split(':').collect::<Vec<_>>().as_slice() {
            [_, "lambda", _, _, "function", short] => (*short, None),
            [_, "lambda", _, _, "function", short, q] if qualified => (*short, Some(*q)),
            _ => return Err(InvalidEvent::new(field, format!("{name:?} is not a Lambda function ARN"))),
        },
        None => match name.split_once(':') {
            Some((short, q)) if qualified => (short, Some(q)),
            _ => (name, None),
        },
    };
    let qualifier_ok = qualifier.is_none_or(|q| {
        q == "$LATEST"
            || ((1..=128).contains(&q.len())
                && q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    });
    if name_ok(short) && qualifier_ok {
        Ok(())
    } else {
        Err(InvalidEvent::new(field, format!("{name:?} is not a function name")))
    }
}

/// Alias names: 1-128 of letters, digits, `-`, `_`, not all digits (that would be a version).
pub fn check_alias_name(field: &str, name: &str) -> Result<(), InvalidEvent> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok { Ok(()) } else { Err(InvalidEvent::new(field, format!("{name:?} is not an alias name"))) }
}
