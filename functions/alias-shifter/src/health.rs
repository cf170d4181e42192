//! The health verdict for one step. Pure.

use serde::{Deserialize, Serialize};

/// What CloudWatch says about the new version behind the alias over the step's window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub invocations: f64,
    pub errors: f64,
    /// Throttled requests to the alias (reported, not judged: they never reached a version).
    pub throttles: f64,
}

impl Metrics {
    pub fn error_rate(&self) -> Option<f64> {
        (self.invocations > 0.0).then(|| self.errors / self.invocations)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Highest acceptable `Errors / Invocations`, 0 to 1: above it the step fails.
    pub max_error_rate: f64,
    /// Fewer invocations than this are too little traffic to judge: the step waits another interval, up
    /// to `max_extensions` times, then passes on what it saw. 0: never wait.
    pub min_invocations: f64,
    pub max_extensions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "reason")]
pub enum Verdict {
    Healthy,
    Unhealthy(String),
    /// Too little traffic yet: observe another interval.
    Wait(String),
    /// Too little traffic, out of extensions: passed on what was seen.
    PassedOnLowTraffic(String),
}

/// Judges a step: any alarm in ALARM fails it; then the error rate; then the traffic floor.
pub fn judge(m: &Metrics, alarms_firing: &[String], t: &Thresholds, extensions_used: u32) -> Verdict {
    if !alarms_firing.is_empty() {
        return Verdict::Unhealthy(format!("alarm in ALARM: {}", alarms_firing.join(", ")));
    }
    if let Some(rate) = m.error_rate()
        && rate > t.max_error_rate
    {
        return Verdict::Unhealthy(format!(
            "error rate {:.2}% ({} errors in {} invocations) above max-error-rate {:.2}%",
            rate * 100.0,
            m.errors,
            m.invocations,
            t.max_error_rate * 100.0
        ));
    }
    if m.invocations < t.min_invocations {
        let seen = format!("{} invocations, under min-invocations {}", m.invocations, t.min_invocations);
        return if extensions_used < t.max_extensions {
            Verdict::Wait(seen)
        } else {
            Verdict::PassedOnLowTraffic(format!("{seen} after {extensions_used} extra interval(s)"))
        };
    }
    Verdict::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(max_error_rate: f64, min_invocations: f64) -> Thresholds {
        Thresholds { max_error_rate, min_invocations, max_extensions: 2 }
    }

    fn m(invocations: f64, errors: f64) -> Metrics {
        Metrics { invocations, errors, throttles: 0.0 }
    }

    #[test]
    fn error_rate_at_its_edge() {
        assert_eq!(judge(&m(100.0, 5.0), &[], &t(0.05, 0.0), 0), Verdict::Healthy);
        let v = judge(&m(100.0, 6.0), &[], &t(0.05, 0.0), 0);
        assert!(matches!(&v, Verdict::Unhealthy(r) if r.contains("6.00%") && r.contains("5.00%")), "{v:?}");
        // Zero tolerance: one error fails.
        assert!(matches!(judge(&m(1000.0, 1.0), &[], &t(0.0, 0.0), 0), Verdict::Unhealthy(_)));
        assert_eq!(judge(&m(1000.0, 0.0), &[], &t(0.0, 0.0), 0), Verdict::Healthy);
    }

    #[test]
    fn too_little_traffic_waits_then_passes() {
        assert!(matches!(judge(&m(9.0, 0.0), &[], &t(0.0, 10.0), 0), Verdict::Wait(_)));
        assert!(matches!(judge(&m(9.0, 0.0), &[], &t(0.0, 10.0), 1), Verdict::Wait(_)));
        assert!(matches!(judge(&m(9.0, 0.0), &[], &t(0.0, 10.0), 2), Verdict::PassedOnLowTraffic(_)));
        assert_eq!(judge(&m(10.0, 0.0), &[], &t(0.0, 10.0), 0), Verdict::Healthy);
        // No traffic at all and no floor: nothing says it is unhealthy.
        assert_eq!(judge(&m(0.0, 0.0), &[], &t(0.0, 0.0), 0), Verdict::Healthy);
        // Errors count even below the floor.
        assert!(matches!(judge(&m(2.0, 1.0), &[], &t(0.1, 10.0), 0), Verdict::Unhealthy(_)));
    }

    #[test]
    fn an_alarm_fails_whatever_the_metrics() {
        let v = judge(&m(1000.0, 0.0), &["api-p99".into()], &t(0.1, 0.0), 0);
        assert_eq!(v, Verdict::Unhealthy("alarm in ALARM: api-p99".into()));
    }
}
