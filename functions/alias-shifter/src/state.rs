//! The rollout's state and report: returned to the caller, and carried between the state machine's calls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::notify::Notification;

use crate::judge::health::{Criteria, Figures};
use crate::judge::window::{Timing, Window, seconds};
use crate::judge::{self, Assessment, Look};
use crate::marker::{Marker, Phase};
use crate::rollout::Rollout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Status {
    /// A weight is set; the next call judges it after `wait-seconds`.
    Shifting,
    /// Paused for a person: the approval gate before the switch, or a step that stayed inconclusive.
    AwaitingApproval,
    /// The new version is the primary and is judged until the bake time is over.
    Baking,
    /// The new version is the alias's primary, with no additional weights, and passed its bake.
    Succeeded,
    /// The alias is back on the original version with no additional weights; `reason` says why.
    RolledBack,
    /// Someone else changed the alias mid-way: nothing was done to it; `reason` says what was found.
    LeftAsFound,
    /// Stopped before any traffic moved (the pre-traffic hook failed): the alias is as it was.
    Stopped,
    /// Validated and planned; nothing changed.
    DryRun,
}

impl Status {
    /// A rollout under way: more calls will come.
    pub fn in_progress(self) -> bool {
        matches!(self, Status::Shifting | Status::AwaitingApproval | Status::Baking)
    }
}

/// What a step's check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum StepDecision {
    Healthy,
    Unhealthy,
    /// Too little to judge (no traffic is never a pass): held another interval, paused for approval, or
    /// rolled back once out of extensions.
    Inconclusive,
    /// Neither a health check nor alarms: nothing to judge.
    NotChecked,
    /// Waiting for a person's approval.
    AwaitingApproval,
    /// A person approved: the rollout goes on.
    Approved,
    /// The new version became the primary.
    Switched,
}

/// One step of the report: a weight's judgement, the approval, the switch, or a check of the bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StepReport {
    /// 1-based; the switch and the bake's checks have the number after the last weight's.
    pub step: usize,
    pub weight: f64,
    pub started_at: DateTime<Utc>,
    /// The traffic judged: invocations that started in `[from, to)`, read at `judged-at` or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at: Option<DateTime<Utc>>,
    /// The new version in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Figures>,
    /// The original version in the same window; in the bake, the original version before the switch (during
    /// the weighted steps, or the alias before the shift when there were none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Figures>,
    /// The alarms in ALARM (the first ones, up to [`MAX_LISTED`] characters; the reason counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms_in_alarm: Vec<String>,
    pub decision: StepDecision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many judgements this line stands for: a step held for more traffic, or the bake's checks, are
    /// judged again on a window that holds the earlier ones, and the last judgement replaces them.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub judgements: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// The longest reason a line keeps, and the most characters of alarm names it lists: the state Step
/// Functions carries between calls stays bounded whatever the rollout's length (a state over 256 KiB fails
/// the execution, uncaught).
pub const MAX_REASON: usize = 200;
pub const MAX_LISTED: usize = 200;

/// `text` cut to `max` characters, saying so.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Hook {
    PreTraffic,
    PostTraffic,
}

/// A validation hook's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HookReport {
    pub hook: Hook,
    pub function: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    pub status: Status,
    pub function_name: String,
    pub alias_name: String,
    pub new_version: String,
    /// The alias's primary version when the rollout started; rollbacks return to it.
    pub original_version: String,
    /// The alias's revision after this rollout's last change: any other value means someone else changed
    /// it (or asked for an abort or a promotion).
    pub revision_id: String,
    /// The alias's own description, put back when the rollout ends.
    #[serde(default)]
    pub alias_description: String,
    /// The longer `Timeout` of the two versions, in seconds: how long an invocation's metrics may lag.
    pub timeout_seconds: u32,
    /// Index in `rollout.weights` of the weight being observed.
    pub step: usize,
    pub step_started_at: DateTime<Utc>,
    /// Extra intervals the current step (or the bake) waited for enough traffic.
    pub extensions: u32,
    /// When the current step (or bake check) can be judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_at: Option<DateTime<Utc>>,
    /// How long the state machine waits before the next call.
    pub wait_seconds: u64,
    /// A person asked to finish after the current step passes.
    #[serde(default)]
    pub promote: bool,
    pub started_at: DateTime<Utc>,
    /// When the first weight was set: the rollout so far is judged from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<DateTime<Utc>>,
    /// Checks of the bake made so far.
    #[serde(default)]
    pub bake_checks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps: Vec<StepReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookReport>,
    pub rollout: Rollout,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

impl State {
    pub fn is_final(&self) -> bool {
        !self.status.in_progress()
    }

    pub fn current_weight(&self) -> Option<f64> {
        self.rollout.weights.get(self.step).copied()
    }

    /// The shift's id in its mark: its start, to the millisecond.
    pub fn shift_id(&self) -> String {
        self.started_at.format("%Y%m%dT%H%M%S%.3fZ").to_string()
    }

    /// Where this state says the shift stands.
    pub fn phase(&self) -> Phase {
        match self.switched_at {
            Some(_) => Phase::Baking,
            None => Phase::Weight { step: self.step, of: self.rollout.weights.len() },
        }
    }

    /// The mark this state expects on its alias.
    pub fn marker(&self) -> Marker {
        Marker {
            shift: self.shift_id(),
            digest: self.digest(),
            from: self.original_version.clone(),
            to: self.new_version.clone(),
            phase: self.phase(),
            since: self.switched_at.unwrap_or(self.step_started_at).timestamp_millis(),
            awaiting: self.status == Status::AwaitingApproval,
            control: None,
        }
    }

    /// What the shift fixed when it began, hashed (SHA-256, the first 12 bytes in hex): the rollout, the
    /// versions, their longer timeout, the alias's own description, the shift's start and its first
    /// weight's. Numbers are written canonically, so that a state carried as JSON by Step Functions hashes
    /// the same.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let rollout = serde_json::to_value(&self.rollout).unwrap_or_default();
        let fixed = serde_json::json!({
            "rollout": canonical(rollout),
            "versions": [self.original_version, self.new_version],
            "timeout": self.timeout_seconds,
            "description": self.alias_description,
            "started": self.started_at.timestamp_millis(),
            "first-weight": self.weights_started_at.map(|t| t.timestamp_millis()),
        });
        let hash = Sha256::digest(fixed.to_string().as_bytes());
        hash.iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    pub fn timing(&self, period: u32) -> Timing {
        Timing { period, timeout: self.timeout_seconds, metric_delay: self.rollout.metric_delay }
    }

    /// Adds a line to the report; a judgement of the same step (or of the bake) as the last line replaces
    /// it, counting the judgements, since its window holds the earlier ones. The report thus has at most
    /// a line per weight, per approval, the switch and one for the bake, each of bounded size.
    pub fn record(&mut self, mut line: StepReport) {
        line.reason = line.reason.map(|r| cut(&r, MAX_REASON));
        let mut listed = 0;
        line.alarms_in_alarm.retain(|name| {
            listed += name.len();
            listed == name.len() || listed <= MAX_LISTED
        });
        let judgement = |l: &StepReport| l.judged_at.is_some();
        if let Some(last) = self.steps.last_mut()
            && judgement(last)
            && judgement(&line)
            && last.step == line.step
        {
            line.judgements = last.judgements.saturating_add(1);
            *last = line;
            return;
        }
        self.steps.push(line);
    }

    /// The step number the switch and the bake report under.
    pub fn switch_step(&self) -> usize {
        self.rollout.weights.len() + 1
    }

    /// What the next judgement is about.
    pub fn look(&self, period: u32) -> Look {
        let r = &self.rollout;
        let kind = match (self.status, self.switched_at) {
            (Status::Baking, Some(switched_at)) => judge::Kind::Bake {
                switched_at,
                bake_seconds: r.bake_seconds,
                check: self.bake_checks + 1,
                first: self.weights_started_at,
                shift: self.started_at,
            },
            _ => judge::Kind::Weight {
                started_at: self.step_started_at,
                first: self.weights_started_at.unwrap_or(self.step_started_at),
            },
        };
        Look {
            timing: self.timing(period),
            interval: r.interval,
            extensions: self.extensions,
            until: None,
            kind,
        }
    }

    /// The wait for a person's approval, as far as its traffic is complete at `now` (and at least the
    /// paused step's own window, which was judged before the pause).
    pub fn waited(&self, period: u32, now: DateTime<Utc>) -> Look {
        let mut look = self.look(period);
        let t = self.timing(period);
        let lag = seconds(u64::from(t.timeout).saturating_add(t.metric_delay));
        let complete = judge::window::floor(now - lag, &t);
        look.until = Some(complete.max(judge::windows(&look).current.to));
        look
    }

    /// When the next judgement can be made.
    pub fn judge_at(&self, period: u32) -> DateTime<Utc> {
        judge::judge_at(&self.look(period))
    }

    /// The rollout's thresholds, as the judge takes them.
    pub fn criteria(&self) -> Criteria {
        self.rollout.criteria()
    }
}

/// `v` with every fractional number written to 10 significant digits: a number parsed back from JSON may
/// differ in its last bit, never in its tenth digit.
fn canonical(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => Value::String(format!("{:.9e}", n.as_f64().unwrap_or_default())),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, canonical(v))).collect()),
        other => other,
    }
}

impl StepReport {
    /// The report's line for what happened at `at`: the current weight (or the switch and the bake, under
    /// the number after the last weight's), with nothing judged yet.
    pub fn of(state: &State, decision: StepDecision, at: DateTime<Utc>) -> Self {
        let after = state.switched_at.is_some();
        StepReport {
            step: if after { state.switch_step() } else { state.step + 1 },
            weight: if after { 1.0 } else { state.current_weight().unwrap_or(1.0) },
            started_at: if after { state.switched_at.unwrap_or(at) } else { state.step_started_at },
            window: None,
            judged_at: None,
            new: None,
            old: None,
            alarms_in_alarm: Vec::new(),
            decision,
            reason: None,
            judgements: 1,
        }
    }

    /// A judgement's line, made at `at`.
    pub fn judged(state: &State, a: Assessment, decision: StepDecision, at: DateTime<Utc>) -> Self {
        let reason = match &a.verdict {
            judge::health::Verdict::Healthy => None,
            judge::health::Verdict::Unhealthy(why) | judge::health::Verdict::Inconclusive(why) => {
                Some(why.clone())
            }
        };
        StepReport {
            window: a.window,
            judged_at: Some(at),
            new: a.new,
            old: a.old,
            alarms_in_alarm: a.alarms_in_alarm,
            reason,
            ..StepReport::of(state, decision, at)
        }
    }

    pub fn because(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

/// One rollout's state, for the tests: `api:live` from version 1 to 2 in 4 linear steps, at its first
/// weight since `now`.
#[cfg(test)]
pub(crate) fn fixture(now: DateTime<Utc>) -> State {
    let payload =
        serde_json::json!({"function-name": "api", "alias-name": "live", "new-version": "2", "steps": 4});
    let rollout = Rollout::parse(&payload).unwrap_or_else(|e| panic!("{e}"));
    State {
        status: Status::Shifting,
        function_name: "api".into(),
        alias_name: "live".into(),
        new_version: "2".into(),
        original_version: "1".into(),
        revision_id: "r".into(),
        alias_description: String::new(),
        timeout_seconds: 3,
        step: 0,
        step_started_at: now,
        extensions: 0,
        judge_at: None,
        wait_seconds: 0,
        promote: false,
        started_at: now,
        weights_started_at: Some(now),
        switched_at: None,
        bake_checks: 0,
        finished_at: None,
        reason: None,
        steps: Vec::new(),
        hooks: Vec::new(),
        rollout,
        notification: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bake check every minute for 12 hours, each with long reasons and firing alarms: the state Step
    /// Functions carries stays far below its 256 KiB limit (`States.DataLimitExceeded` cannot be caught).
    #[test]
    fn a_twelve_hour_bake_keeps_the_state_small() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut s = fixture(now);
        s.rollout.alarms = (0..100).map(|i| format!("{i:03}-{}", "a".repeat(250))).collect();
        (s.status, s.switched_at, s.step) = (Status::Baking, Some(now), s.rollout.weights.len());
        let figures =
            Figures { invocations: 1234.0, errors: 5.0, throttles: 0.0, p90: Some(123.4), p99: Some(456.7) };
        for check in 0..720 {
            let at = now + chrono::Duration::seconds(60 * (check + 1));
            let window = Window { from: now, to: at, judge_at: at };
            let a = Assessment {
                verdict: judge::health::Verdict::Inconclusive("x".repeat(2000)),
                window: Some(window),
                new: Some(figures),
                old: Some(figures),
                alarms_in_alarm: s.rollout.alarms.clone(),
            };
            let line = StepReport::judged(&s, a, StepDecision::Inconclusive, at);
            s.record(line);
            s.bake_checks += 1;
        }
        let size = serde_json::to_string(&s).map(|j| j.len()).unwrap_or(usize::MAX);
        assert!(size < 64 * 1024, "{size} bytes after 720 bake checks");
        assert_eq!((s.steps.len(), s.steps[0].judgements), (1, 720));
    }

    /// The largest report a rollout can make: 100 weights, each judged 11 times (10 extensions) and
    /// approved by a person, 100 alarms of 255 characters, the longest reasons.
    #[test]
    fn the_largest_rollout_fits_in_a_state_machine_state() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut s = fixture(now);
        s.rollout.weights = (1..=100).map(|i| f64::from(i) / 101.0).collect();
        s.rollout.alarms = (0..100).map(|i| format!("{i:03}-{}", "a".repeat(250))).collect();
        let figures =
            Figures { invocations: 1234.0, errors: 5.0, throttles: 0.0, p90: Some(123.4), p99: Some(456.7) };
        for step in 0..100 {
            s.step = step;
            for _ in 0..11 {
                let a = Assessment {
                    verdict: judge::health::Verdict::Inconclusive("x".repeat(2000)),
                    window: Some(Window { from: now, to: now, judge_at: now }),
                    new: Some(figures),
                    old: Some(figures),
                    alarms_in_alarm: s.rollout.alarms.clone(),
                };
                s.record(StepReport::judged(&s, a, StepDecision::Inconclusive, now));
            }
            s.record(StepReport::of(&s, StepDecision::Approved, now).because(Some("y".repeat(2000))));
        }
        s.reason = Some(cut(&"z".repeat(5000), 1000));
        let size = serde_json::to_string(&s).map(|j| j.len()).unwrap_or(usize::MAX);
        assert!(size < 160 * 1024, "{size} bytes");
    }

    #[test]
    fn the_digest_survives_a_trip_through_json_and_changes_with_the_rollout() {
        let mut s = fixture(DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap_or_default());
        s.rollout.error_rate_confidence = Some(0.95);
        s.rollout.max_duration_ratio = Some(1.1);
        let back: State = serde_json::from_str(&serde_json::to_string(&s).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.digest(), s.digest());
        assert_eq!(s.digest().len(), 24);
        let mut forged = s.clone();
        forged.rollout.health_check = false;
        assert_ne!(forged.digest(), s.digest());
        let mut forged = s.clone();
        forged.timeout_seconds = 0;
        assert_ne!(forged.digest(), s.digest());
        // What moves during the shift is not in it: the mark carries it.
        let mut moved = s.clone();
        (moved.step, moved.extensions, moved.bake_checks) = (2, 1, 3);
        assert_eq!(moved.digest(), s.digest());
    }
}
