use super::*;
use crate::judge::Assessment;
use crate::judge::health::Figures;
use crate::judge::window::Window;

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
