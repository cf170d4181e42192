//! The report's lines: a step's judgement, the approval, the switch, the bake; each of bounded size, and
//! at most one per step, so that the state Step Functions carries stays bounded.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::State;
use crate::judge::Assessment;
use crate::judge::health::{Figures, Verdict};
use crate::judge::window::Window;

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
            Verdict::Healthy => None,
            Verdict::Unhealthy(why) | Verdict::Inconclusive(why) => Some(why.clone()),
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

impl State {
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
}
