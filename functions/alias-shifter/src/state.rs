//! The rollout's state and report: returned to the caller, and carried between the state machine's calls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::notify::Notification;

pub use self::line::{MAX_LISTED, MAX_REASON, StepDecision, StepReport, cut};
pub use self::next::Move;
use crate::judge::health::Criteria;
use crate::judge::sequential::{Plan, Test};
use crate::judge::window::{self, Timing, seconds};
use crate::judge::{self, Look};
use crate::marker::{Marker, Phase};
use crate::rollout::Rollout;

mod line;
mod next;

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

    /// Which judgement of the rollout comes next, for its share of the false-rollback budget.
    pub fn test(&self) -> Test {
        let r = &self.rollout;
        if self.switched_at.is_some() {
            let checks = window::bake_checks(r.interval, r.bake_seconds);
            return Test::Bake { check: (self.bake_checks + 1).min(checks), checks };
        }
        // At the gate after the last weight passed (not after an inconclusive one, whose share is unspent).
        let passed = self.steps.iter().rev().find(|l| l.judged_at.is_some()).is_some_and(|l| {
            l.step == self.step + 1 && matches!(l.decision, StepDecision::Healthy | StepDecision::NotChecked)
        });
        if self.status == Status::AwaitingApproval && self.step + 1 == r.weights.len() && passed {
            return Test::Gate;
        }
        Test::Weight(self.step)
    }

    /// The rollout's thresholds, as the judge takes them for the next judgement: the comparison of failed
    /// requests at that judgement's share of the budget.
    pub fn criteria(&self) -> Criteria {
        let r = &self.rollout;
        let plan = Plan {
            alpha: r.error_rate_confidence.map_or(0.0, |c| 1.0 - c),
            weights: &r.weights,
            gate: r.approval,
            bake_checks: if r.bake_seconds > 0 { window::bake_checks(r.interval, r.bake_seconds) } else { 0 },
        };
        let alpha = r.error_rate_confidence.map(|_| plan.allowance(self.test()));
        Criteria { alpha, ..r.criteria() }
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
mod tests;
