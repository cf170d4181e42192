//! The verdict on one window of traffic: the new version's figures against thresholds, and against the
//! version it replaces measured at the same time (the baseline a weighted alias gives for free). Pure.

use serde::{Deserialize, Serialize};

use super::stats;

/// What CloudWatch shows for one version (or the alias) over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Figures {
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    /// `Duration` percentiles in milliseconds: the invocation-weighted mean of each period's percentile
    /// (CloudWatch keeps percentiles per period; they cannot be merged exactly). None without invocations.
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
}

/// The rollout's thresholds, as the judge needs them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// Highest acceptable `Errors / Invocations` of the new version.
    pub max_error_rate: f64,
    /// Fewer invocations than this (of the new version, and of the baseline when comparing) cannot be
    /// judged: at least 1, so that no traffic is never a pass.
    pub min_invocations: f64,
    /// Compare error and throttle rates with the baseline's at this confidence.
    pub error_rate_confidence: Option<f64>,
    /// Highest acceptable `Duration` p90 and p99 of the new version, as a multiple of the baseline's.
    pub max_duration_ratio: Option<f64>,
    /// Highest acceptable share of throttled requests of the new version.
    pub max_throttle_rate: Option<f64>,
}

impl Criteria {
    fn compares(&self) -> bool {
        self.error_rate_confidence.is_some() || self.max_duration_ratio.is_some()
    }
}

/// Who the new version is compared with: the old version in the same window, or the alias before the shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline<'a> {
    /// As the reasons name it: "version 1", "the alias before the shift".
    pub label: &'a str,
    pub figures: &'a Figures,
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

/// Judges the new version's figures: the thresholds first, then the traffic floor, then the comparisons.
pub fn judge(new: &Figures, baseline: Option<Baseline<'_>>, c: &Criteria) -> Verdict {
    if let Some(rate) = new.error_rate().filter(|r| *r > c.max_error_rate) {
        return Verdict::Unhealthy(format!(
            "error rate {} ({} errors in {} invocations) above max-error-rate {}",
            pct(rate),
            new.errors,
            new.invocations,
            pct(c.max_error_rate)
        ));
    }
    if let (Some(rate), Some(max)) = (new.throttle_rate(), c.max_throttle_rate)
        && rate > max
    {
        return Verdict::Unhealthy(format!(
            "{} of requests throttled ({} throttles) above max-throttle-rate {}",
            pct(rate),
            new.throttles,
            pct(max)
        ));
    }
    let floor = c.min_invocations.max(1.0);
    if new.invocations < floor {
        return Verdict::Inconclusive(if new.invocations == 0.0 {
            "no invocation of the new version was measured".to_owned()
        } else {
            format!("{} invocations of the new version, fewer than min-invocations {floor}", new.invocations)
        });
    }
    if !c.compares() {
        return Verdict::Healthy;
    }
    let Some(base) = baseline.filter(|b| b.figures.invocations >= floor) else {
        let label = baseline.map_or("the old version", |b| b.label);
        return Verdict::Inconclusive(format!(
            "{label} had fewer than {floor} invocations in the same window: nothing to compare with"
        ));
    };
    compare(new, base, c).unwrap_or(Verdict::Healthy)
}

/// The comparisons with the baseline; `None` when the new version holds up.
fn compare(new: &Figures, base: Baseline<'_>, c: &Criteria) -> Option<Verdict> {
    let old = base.figures;
    if let Some(confidence) = c.error_rate_confidence {
        let errors = stats::greater(new.errors, new.invocations, old.errors, old.invocations, confidence);
        if errors.greater {
            return Some(Verdict::Unhealthy(format!(
                "error rate {} ({} of {}) above {}'s {} ({} of {}): z {:.2} > {:.2} at {}% confidence",
                pct(new.errors / new.invocations),
                new.errors,
                new.invocations,
                base.label,
                pct(old.errors / old.invocations),
                old.errors,
                old.invocations,
                errors.z,
                errors.critical,
                confidence * 100.0
            )));
        }
        let asked = |f: &Figures| f.invocations + f.throttles;
        let throttles = stats::greater(new.throttles, asked(new), old.throttles, asked(old), confidence);
        if throttles.greater {
            return Some(Verdict::Unhealthy(format!(
                "throttled {} of requests ({} throttles) against {}'s {}: z {:.2} > {:.2} at {}% confidence",
                pct(new.throttle_rate().unwrap_or(0.0)),
                new.throttles,
                base.label,
                pct(old.throttle_rate().unwrap_or(0.0)),
                throttles.z,
                throttles.critical,
                confidence * 100.0
            )));
        }
    }
    let ratio = c.max_duration_ratio?;
    for (name, n, o) in [("p90", new.p90, old.p90), ("p99", new.p99, old.p99)] {
        if let (Some(n), Some(o)) = (n, o)
            && o > 0.0
            && n > o * ratio
        {
            return Some(Verdict::Unhealthy(format!(
                "{name} duration {n:.0} ms is {:.2}x {}'s {o:.0} ms, above max-duration-ratio {ratio}",
                n / o,
                base.label
            )));
        }
    }
    None
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
    let named = |want: &[AlarmState]| -> Vec<&str> {
        states.iter().filter(|(_, s)| want.contains(s)).map(|(n, _)| n.as_str()).collect()
    };
    let firing = named(&[AlarmState::Alarm]);
    if !firing.is_empty() {
        return Some(Verdict::Unhealthy(format!("alarm in ALARM: {}", firing.join(", "))));
    }
    let (thin, gone) = (named(&[AlarmState::InsufficientData]), named(&[AlarmState::Missing]));
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

/// The step's own window and the rollout so far (every step's window, late data included): unhealthy if
/// either is; otherwise the step's verdict.
pub fn combine(step: Verdict, so_far: Verdict) -> Verdict {
    match (step, so_far) {
        (Verdict::Unhealthy(why), _) => Verdict::Unhealthy(why),
        (_, Verdict::Unhealthy(why)) => Verdict::Unhealthy(format!("over the rollout so far: {why}")),
        (step, _) => step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(invocations: f64, errors: f64) -> Figures {
        Figures { invocations, errors, throttles: 0.0, p90: Some(100.0), p99: Some(150.0) }
    }

    fn c() -> Criteria {
        Criteria {
            max_error_rate: 0.0,
            min_invocations: 0.0,
            error_rate_confidence: None,
            max_duration_ratio: None,
            max_throttle_rate: None,
        }
    }

    fn old(figures: &Figures) -> Option<Baseline<'_>> {
        Some(Baseline { label: "version 1", figures })
    }

    #[test]
    fn error_rate_at_its_edge() {
        let t = Criteria { max_error_rate: 0.05, ..c() };
        assert_eq!(judge(&f(100.0, 5.0), None, &t), Verdict::Healthy);
        let v = judge(&f(100.0, 6.0), None, &t);
        assert!(matches!(&v, Verdict::Unhealthy(r) if r.contains("6.00%") && r.contains("5.00%")), "{v:?}");
        // The default tolerates no error at all.
        assert!(matches!(judge(&f(1000.0, 1.0), None, &c()), Verdict::Unhealthy(_)));
    }

    #[test]
    fn no_traffic_is_never_a_pass() {
        let v = judge(&Figures::default(), None, &c());
        assert_eq!(v, Verdict::Inconclusive("no invocation of the new version was measured".into()));
        let t = Criteria { min_invocations: 10.0, ..c() };
        assert!(matches!(judge(&f(9.0, 0.0), None, &t), Verdict::Inconclusive(_)));
        assert_eq!(judge(&f(10.0, 0.0), None, &t), Verdict::Healthy);
        // Errors fail a step even below the floor.
        assert!(matches!(judge(&f(2.0, 1.0), None, &t), Verdict::Unhealthy(_)));
    }

    #[test]
    fn both_versions_erring_alike_passes_and_a_worse_new_one_fails() {
        let t = Criteria { max_error_rate: 0.2, error_rate_confidence: Some(0.95), ..c() };
        let base = f(900.0, 45.0);
        assert_eq!(judge(&f(100.0, 5.0), old(&base), &t), Verdict::Healthy);
        let v = judge(&f(300.0, 45.0), old(&base), &t);
        assert!(matches!(&v, Verdict::Unhealthy(r) if r.contains("above version 1's 5.00%")), "{v:?}");
        // Comparing needs a baseline with traffic.
        let v = judge(&f(300.0, 0.0), old(&Figures::default()), &t);
        assert!(matches!(&v, Verdict::Inconclusive(r) if r.contains("version 1 had fewer")), "{v:?}");
    }

    #[test]
    fn a_slower_new_version_fails_on_its_percentiles() {
        let t = Criteria { max_duration_ratio: Some(1.5), ..c() };
        let base = f(900.0, 0.0);
        let slow = Figures { p90: Some(140.0), p99: Some(400.0), ..f(100.0, 0.0) };
        let v = judge(&slow, old(&base), &t);
        assert!(
            matches!(&v, Verdict::Unhealthy(r) if r.starts_with("p99 duration 400 ms is 2.67x")),
            "{v:?}"
        );
        let fine = Figures { p90: Some(140.0), p99: Some(200.0), ..f(100.0, 0.0) };
        assert_eq!(judge(&fine, old(&base), &t), Verdict::Healthy);
    }

    #[test]
    fn throttles_of_the_new_version() {
        let throttled = Figures { throttles: 30.0, ..f(100.0, 0.0) };
        let t = Criteria { max_throttle_rate: Some(0.1), ..c() };
        assert!(matches!(judge(&throttled, None, &t), Verdict::Unhealthy(r) if r.contains("throttled")));
        let t = Criteria { error_rate_confidence: Some(0.95), ..c() };
        let v = judge(&throttled, old(&f(900.0, 0.0)), &t);
        assert!(matches!(&v, Verdict::Unhealthy(r) if r.starts_with("throttled 23.08%")), "{v:?}");
    }

    #[test]
    fn alarms_and_the_rollout_so_far() {
        assert_eq!(alarms(&[]), None);
        assert_eq!(alarms(&[("p99".into(), AlarmState::Ok)]), None);
        let firing = [("p99".into(), AlarmState::Alarm), ("gone".into(), AlarmState::Missing)];
        assert_eq!(alarms(&firing), Some(Verdict::Unhealthy("alarm in ALARM: p99".into())));
        let thin = [("p99".into(), AlarmState::InsufficientData), ("gone".into(), AlarmState::Missing)];
        assert_eq!(
            alarms(&thin),
            Some(Verdict::Inconclusive(
                "alarm in INSUFFICIENT_DATA: p99; alarm that no longer exists: gone".into()
            ))
        );
        let unsure = alarms(&thin);
        assert!(matches!(worst(unsure.clone(), Verdict::Healthy), Verdict::Inconclusive(_)));
        assert_eq!(worst(unsure, Verdict::Unhealthy("x".into())), Verdict::Unhealthy("x".into()));
        let late = Verdict::Unhealthy("error rate".into());
        assert_eq!(
            combine(Verdict::Healthy, late.clone()),
            Verdict::Unhealthy("over the rollout so far: error rate".into())
        );
        assert_eq!(combine(late.clone(), Verdict::Healthy), late);
        let thin = Verdict::Inconclusive("x".into());
        assert_eq!(combine(thin.clone(), Verdict::Healthy), thin);
    }
}
