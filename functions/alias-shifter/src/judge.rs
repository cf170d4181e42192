//! The judge, pure: which traffic a judgement reads and when ([`window`]), CloudWatch's answer cut into
//! windows ([`series`]), the statistics ([`stats`]) and the verdict ([`health`]). No AWS call; time is an
//! argument. The AWS side (reading the alarms and the metrics) is `shift::judging`.

pub mod health;
pub mod sequential;
pub mod series;
pub mod stats;
pub mod window;

use chrono::{DateTime, Duration, Utc};

use self::health::{AlarmState, Baseline, Criteria, Evidence, Figures, Verdict};
use self::series::{Role, Series, Source};
use self::stats::Score;
use self::window::{Timing, Window, seconds};

/// What a judgement is about: a weight's traffic, or the bake's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub timing: Timing,
    /// Seconds each weight (and each bake check) is held.
    pub interval: u64,
    /// Extra intervals this weight (or the bake's last check) has been held for more traffic.
    pub extensions: u32,
    /// The end of the traffic judged, when it is not the step's (or the check's) own: the approval gate
    /// judges what is complete of the wait.
    pub until: Option<DateTime<Utc>>,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A weight routed since `started_at`; the first weight was set at `first`.
    Weight { started_at: DateTime<Utc>, first: DateTime<Utc> },
    /// The new version the primary since `switched_at`, judged for `bake_seconds` in checks of `interval`;
    /// `check` is 1-based. `first` is when the first weight was set (none for `all-at-once`), `shift` when
    /// the shift started.
    Bake {
        switched_at: DateTime<Utc>,
        bake_seconds: u64,
        check: u32,
        first: Option<DateTime<Utc>>,
        shift: DateTime<Utc>,
    },
}

/// The windows a judgement reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    /// The current step's traffic, or the bake's so far.
    pub current: Window,
    /// Every step's traffic so far, late data included (weights only).
    pub so_far: Option<Window>,
    /// What the new primary is compared with in the bake: the original version before the switch,
    /// during the weighted steps (`Source::Old`), or the alias before the shift when there were none
    /// (`Source::Alias`).
    pub before: Option<(Window, Source)>,
}

impl Windows {
    /// The smallest window holding every window read: one `GetMetricData` call covers it.
    pub fn span(&self) -> Window {
        let before = self.before.map(|(b, _)| b);
        [self.so_far, before].into_iter().flatten().fold(self.current, |a, b| a.union(&b))
    }
}

/// The windows of a look (see [`window`] for the rule).
pub fn windows(look: &Look) -> Windows {
    let t = &look.timing;
    match look.kind {
        Kind::Bake { switched_at, bake_seconds, check, first, shift } => {
            // From the first whole period after the switch: the alias's metrics before it are the old
            // version's.
            let start = window::ceil(switched_at, t);
            let (end, last) = window::bake_check_end(switched_at, look.interval, bake_seconds, check);
            let end = match (look.until, last) {
                (Some(until), _) => until,
                (None, true) => end + seconds(look.interval.saturating_mul(u64::from(look.extensions))),
                (None, false) => end,
            };
            let current = window::window(start, end.max(start), t);
            let to = window::floor(shift, t);
            let span = seconds(bake_seconds).max(Duration::seconds(i64::from(t.period.max(1))));
            let from = window::floor(to - span, t);
            let before = match first {
                Some(first) => (window::window(first, switched_at, t), Source::Old),
                None => (Window { from, to, judge_at: to }, Source::Alias),
            };
            Windows { current, so_far: None, before: Some(before) }
        }
        Kind::Weight { started_at, first } => {
            let held = seconds(look.interval.saturating_mul(u64::from(look.extensions) + 1));
            let end = look.until.unwrap_or(started_at + held);
            let current = window::window(started_at, end, t);
            Windows { current, so_far: Some(window::window(first, end, t)), before: None }
        }
    }
}

/// When a look can be judged: once its window is complete, with or without a health check (an alarm sees
/// the step's traffic only once its metrics are in).
pub fn judge_at(look: &Look) -> DateTime<Utc> {
    windows(look).current.judge_at
}

/// What a judgement found: the verdict, and the figures it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub verdict: Verdict,
    /// The traffic judged (none without a health check).
    pub window: Option<Window>,
    pub new: Option<Figures>,
    pub old: Option<Figures>,
    pub alarms_in_alarm: Vec<String>,
}

/// Judges a look on the metrics read (`series`, none without a health check) and the rollout's alarms.
/// `original` names the original version in reasons.
pub fn assess(
    look: &Look,
    criteria: &Criteria,
    series: Option<&Series>,
    alarm_states: &[(String, AlarmState)],
    original: &str,
) -> Assessment {
    let alarms = health::alarms(alarm_states);
    let firing = alarm_states.iter().filter(|(_, s)| *s == AlarmState::Alarm).map(|(n, _)| n.clone());
    let mut out = Assessment {
        verdict: Verdict::Healthy,
        window: None,
        new: None,
        old: None,
        alarms_in_alarm: firing.collect(),
    };
    let Some(series) = series else {
        out.verdict = health::worst(alarms, Verdict::Healthy);
        return out;
    };
    let w = windows(look);
    out.window = Some(w.current);
    let incomplete = series.incomplete();
    if !incomplete.is_empty() {
        let named: Vec<String> = incomplete.iter().map(|(id, status)| format!("{id} ({status})")).collect();
        let why = format!("CloudWatch did not answer every query completely: {}", named.join(", "));
        out.verdict = health::worst(alarms, Verdict::Inconclusive(why));
        return out;
    }
    let (new, old, label) = evidence(&w, series, original);
    let (mut new, mut old) = (new, old);
    let (new_source, old_role, old_source) = match w.before {
        Some((_, source)) => (Source::Alias, Role::Before, source),
        None => (Source::New, Role::Window, Source::Old),
    };
    (new.p90, new.p99) = series.percentiles(Role::Window, new_source);
    (old.p90, old.p99) = series.percentiles(old_role, old_source);
    (out.new, out.old) = (Some(new), Some(old));
    let failures = match (w.before, w.so_far) {
        (None, Some(so_far)) => series.score(&so_far),
        _ => {
            // The bake against the time before the switch: one table, the two periods of time.
            let mut score = Score::default();
            let ((n1, a), (n0, c)) = (new.requests(), old.requests());
            score.add(a, n1, c, n0);
            score
        }
    };
    let so_far = w.so_far.map(|all| series.figures(Source::New, &all));
    let e = Evidence { new, so_far, baseline: Some(Baseline { label: &label, figures: &old }), failures };
    let verdict = health::judge(&e, criteria);
    out.verdict = health::worst(alarms, verdict);
    out
}

/// The new version's and the baseline's counts in the windows judged, and how reasons name the baseline.
fn evidence(w: &Windows, series: &Series, original: &str) -> (Figures, Figures, String) {
    match w.before {
        Some((before, source)) => {
            let label = match source {
                Source::Alias => "the alias before the shift".to_owned(),
                _ => format!("version {original} before the switch"),
            };
            (series.figures(Source::Alias, &w.current), series.figures(source, &before), label)
        }
        None => (
            series.figures(Source::New, &w.current),
            series.figures(Source::Old, &w.current),
            format!("version {original}"),
        ),
    }
}

#[cfg(test)]
mod tests;
