//! The verdict on one judgement: the new version's figures against thresholds, and against the version it
//! replaces measured at the same time (the baseline a weighted alias gives for free). Pure.

use serde::{Deserialize, Serialize};

use super::stats::{self, Score};

/// What CloudWatch shows for one version (or the alias) over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Figures {
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    /// `Duration` percentiles in milliseconds over the whole window (read at the window's own period), when
    /// the rollout compares durations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
}

impl Figures {
    pub fn error_rate(&self) -> Option<f64> {
        (self.invocations > 0.0).then(|| self.errors / self.invocations)
    }

    /// Throttled requests among all requests (a throttled one is not an invocation).
    pub fn throttle_rate(&self) -> Option<f64> {
        let asked = self.invocations + self.throttles;
        (asked > 0.0).then(|| self.throttles / asked)
    }

    /// Requests (invocations and throttled ones) and failed requests (errors and throttles).
    pub fn requests(&self) -> (f64, f64) {
        (self.invocations + self.throttles, self.errors + self.throttles)
    }
}

/// The least invocations of each version in a window for a percentile to be compared: at least 10 of them
/// above it (p90: 100, p99: 1,000). With fewer, a period's p99 is its slowest call or near it, and one slow
/// call would fail a step.
pub fn min_for_percentile(p: f64) -> f64 {
    (10.0 / (1.0 - p)).round()
}

/// The rollout's thresholds, as the judge needs them for one judgement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// Highest acceptable `Errors / Invocations` of the new version.
    pub max_error_rate: f64,
    /// Fewer invocations than this (of the new version, and of the baseline when comparing) cannot be
    /// judged: at least 1, so that no traffic is never a pass.
    pub min_invocations: f64,
    /// Compare failed requests with the baseline's, at this chance of a false rollback (this judgement's
    /// share of the rollout's budget, see [`super::sequential`]).
    pub alpha: Option<f64>,
    /// Highest acceptable `Duration` p90 and p99 of the new version, as a multiple of the baseline's.
    pub max_duration_ratio: Option<f64>,
    /// Highest acceptable share of throttled requests of the new version.
    pub max_throttle_rate: Option<f64>,
}

impl Criteria {
    fn compares(&self) -> bool {
        self.alpha.is_some() || self.max_duration_ratio.is_some()
    }
}

/// Who the new version is compared with: the old version in the same window, or the alias before the shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline<'a> {
    /// As the reasons name it: "version 1", "the alias before the shift".
    pub label: &'a str,
    pub figures: &'a Figures,
}

/// What a judgement rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence<'a> {
    /// The new version in the window judged.
    pub new: Figures,
    /// The new version over the rollout so far (the thresholds hold there too: traffic between two steps'
    /// windows, and late data, are in it).
    pub so_far: Option<Figures>,
    pub baseline: Option<Baseline<'a>>,
    /// The new version's failed requests against the baseline's, stratified by period, over every period
    /// so far.
    pub failures: Score,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "reason")]
pub enum Verdict {
    Healthy,
    Unhealthy(String),
    /// Too little to judge: never a pass.
    Inconclusive(String),
}

fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// Judges: the thresholds first (the window, then the rollout so far), then the traffic floor, then, with
/// enough traffic on both sides for every comparison asked for, the comparisons. A judgement that cannot
/// make them all makes none, so it spends none of the false-rollback budget.
pub fn judge(e: &Evidence<'_>, c: &Criteria) -> Verdict {
    if let Some(why) = thresholds(&e.new, c) {
        return Verdict::Unhealthy(why);
    }
    if let Some(why) = e.so_far.as_ref().and_then(|f| thresholds(f, c)) {
        return Verdict::Unhealthy(format!("over the rollout so far: {why}"));
    }
    let floor = c.min_invocations.max(1.0);
    if e.new.invocations < floor {
        return Verdict::Inconclusive(if e.new.invocations == 0.0 {
            "no invocation of the new version was measured".to_owned()
        } else {
            format!(
                "{} invocations of the new version, fewer than min-invocations {floor}",
                e.new.invocations
            )
        });
    }
    if !c.compares() {
        return Verdict::Healthy;
    }
    let Some(base) = e.baseline.filter(|b| b.figures.invocations >= floor) else {
        let label = e.baseline.map_or("the old version", |b| b.label);
        return Verdict::Inconclusive(format!(
            "{label} had fewer than {floor} invocations in the same window: nothing to compare with"
        ));
    };
    let percentiles = match c.max_duration_ratio {
        Some(_) => match comparable(&e.new, base.figures) {
            Ok(p) => p,
            Err(why) => return Verdict::Inconclusive(why),
        },
        None => Vec::new(),
    };
    if let Some(alpha) = c.alpha {
        let test = stats::worse(&e.failures, alpha);
        if test.worse {
            return Verdict::Unhealthy(failing(&e.new, base, &test, alpha));
        }
    }
    durations(&percentiles, base.label, c).map_or(Verdict::Healthy, Verdict::Unhealthy)
}

/// The thresholds on one window of the new version.
fn thresholds(new: &Figures, c: &Criteria) -> Option<String> {
    if let Some(rate) = new.error_rate().filter(|r| *r > c.max_error_rate) {
        return Some(format!(
            "error rate {} ({} errors in {} invocations) above max-error-rate {}",
            pct(rate),
            new.errors,
            new.invocations,
            pct(c.max_error_rate)
        ));
    }
    match (new.throttle_rate(), c.max_throttle_rate) {
        (Some(rate), Some(max)) if rate > max => Some(format!(
            "{} of requests throttled ({} throttles) above max-throttle-rate {}",
            pct(rate),
            new.throttles,
            pct(max)
        )),
        _ => None,
    }
}

/// The percentiles both versions have enough invocations for, with their values: `Err` when none has.
fn comparable(new: &Figures, old: &Figures) -> Result<Vec<(&'static str, f64, f64)>, String> {
    let enough = |p: f64| {
        let least = min_for_percentile(p);
        (new.invocations >= least && old.invocations >= least).then_some(least)
    };
    let mut out = Vec::new();
    for (name, p, n, o) in [("p90", 0.9, new.p90, old.p90), ("p99", 0.99, new.p99, old.p99)] {
        if let (Some(_), Some(n), Some(o)) = (enough(p), n, o) {
            out.push((name, n, o));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "durations cannot be compared yet: {} invocations of the new version and {} of the old in the window, and a p90 needs {} of each",
            new.invocations,
            old.invocations,
            min_for_percentile(0.9)
        ));
    }
    Ok(out)
}

fn failing(new: &Figures, base: Baseline<'_>, test: &stats::Comparison, alpha: f64) -> String {
    let (asked, failed) = new.requests();
    let (old_asked, old_failed) = base.figures.requests();
    let rate = |f: f64, n: f64| if n > 0.0 { pct(f / n) } else { "-".to_owned() };
    format!(
        "failed requests {} ({failed} of {asked}) above {}'s {} ({old_failed} of {old_asked}): over the rollout so far, period by period, z {:.2} > {:.2}, at a {}% chance of a false rollback for this judgement",
        rate(failed, asked),
        base.label,
        rate(old_failed, old_asked),
        test.z,
        test.critical,
        format_args!("{:.3}", alpha * 100.0)
    )
}

fn durations(percentiles: &[(&'static str, f64, f64)], label: &str, c: &Criteria) -> Option<String> {
    let ratio = c.max_duration_ratio?;
    percentiles.iter().find(|(_, n, o)| *o > 0.0 && *n > o * ratio).map(|(name, n, o)| {
        format!(
            "{name} duration {n:.0} ms is {:.2}x {label}'s {o:.0} ms, above max-duration-ratio {ratio}",
            n / o
        )
    })
}

/// What an alarm the rollout names says at a judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
    /// Deleted since the rollout started (`DescribeAlarms` no longer returns it).
    Missing,
}

/// Any alarm in ALARM fails the step, whatever the metrics say; an alarm that cannot say (no data, or
/// deleted) makes it inconclusive, never a pass.
pub fn alarms(states: &[(String, AlarmState)]) -> Option<Verdict> {
    let named = |want: AlarmState| -> Vec<&str> {
        states.iter().filter(|(_, s)| *s == want).map(|(n, _)| n.as_str()).collect()
    };
    let firing = named(AlarmState::Alarm);
    if !firing.is_empty() {
        return Some(Verdict::Unhealthy(format!("alarm in ALARM: {}", firing.join(", "))));
    }
    let (thin, gone) = (named(AlarmState::InsufficientData), named(AlarmState::Missing));
    let mut why = Vec::new();
    if !thin.is_empty() {
        why.push(format!("alarm in INSUFFICIENT_DATA: {}", thin.join(", ")));
    }
    if !gone.is_empty() {
        why.push(format!("alarm that no longer exists: {}", gone.join(", ")));
    }
    (!why.is_empty()).then(|| Verdict::Inconclusive(why.join("; ")))
}

/// The alarms' verdict and the metrics': unhealthy if either is, then inconclusive if either is.
pub fn worst(alarms: Option<Verdict>, metrics: Verdict) -> Verdict {
    match (alarms, metrics) {
        (Some(Verdict::Unhealthy(why)), _) => Verdict::Unhealthy(why),
        (_, Verdict::Unhealthy(why)) => Verdict::Unhealthy(why),
        (Some(Verdict::Inconclusive(why)), _) => Verdict::Inconclusive(why),
        (_, metrics) => metrics,
    }
}

#[cfg(test)]
mod tests;
