use super::*;

fn f(invocations: f64, errors: f64) -> Figures {
    Figures { invocations, errors, throttles: 0.0, p90: Some(100.0), p99: Some(150.0) }
}

fn c() -> Criteria {
    Criteria {
        max_error_rate: 0.0,
        min_invocations: 0.0,
        alpha: None,
        max_duration_ratio: None,
        max_throttle_rate: None,
    }
}

/// The evidence of one window, its score from the window alone.
fn one(new: Figures, old: Option<&Figures>) -> Evidence<'_> {
    let mut failures = Score::default();
    if let Some(old) = old {
        let ((n1, a), (n0, b)) = (new.requests(), old.requests());
        failures.add(a, n1, b, n0);
    }
    Evidence {
        new,
        so_far: None,
        baseline: old.map(|figures| Baseline { label: "version 1", figures }),
        failures,
    }
}

#[test]
fn error_rate_at_its_edge() {
    let t = Criteria { max_error_rate: 0.05, ..c() };
    assert_eq!(judge(&one(f(100.0, 5.0), None), &t), Verdict::Healthy);
    let v = judge(&one(f(100.0, 6.0), None), &t);
    assert!(matches!(&v, Verdict::Unhealthy(r) if r.contains("6.00%") && r.contains("5.00%")), "{v:?}");
    // The default tolerates no error at all, in the window or over the rollout so far.
    assert!(matches!(judge(&one(f(1000.0, 1.0), None), &c()), Verdict::Unhealthy(_)));
    let late = Evidence { so_far: Some(f(3000.0, 1.0)), ..one(f(1000.0, 0.0), None) };
    assert!(
        matches!(judge(&late, &c()), Verdict::Unhealthy(r) if r.starts_with("over the rollout so far: "))
    );
}

#[test]
fn no_traffic_is_never_a_pass() {
    let v = judge(&one(Figures::default(), None), &c());
    assert_eq!(v, Verdict::Inconclusive("no invocation of the new version was measured".into()));
    let t = Criteria { min_invocations: 10.0, ..c() };
    assert!(matches!(judge(&one(f(9.0, 0.0), None), &t), Verdict::Inconclusive(_)));
    assert_eq!(judge(&one(f(10.0, 0.0), None), &t), Verdict::Healthy);
    // Errors fail a step even below the floor.
    assert!(matches!(judge(&one(f(2.0, 1.0), None), &t), Verdict::Unhealthy(_)));
}

#[test]
fn both_versions_failing_alike_passes_and_a_worse_new_one_fails() {
    let t = Criteria { max_error_rate: 1.0, alpha: Some(0.05), ..c() };
    let base = f(900.0, 45.0);
    assert_eq!(judge(&one(f(100.0, 5.0), Some(&base)), &t), Verdict::Healthy);
    let v = judge(&one(f(300.0, 45.0), Some(&base)), &t);
    assert!(matches!(&v, Verdict::Unhealthy(r) if r.contains("above version 1's 5.00%")), "{v:?}");
    assert!(matches!(&v, Verdict::Unhealthy(r) if r.contains("at a 5.000% chance")), "{v:?}");
    // Comparing needs a baseline with traffic.
    let none = Figures::default();
    let v = judge(&one(f(300.0, 0.0), Some(&none)), &t);
    assert!(matches!(&v, Verdict::Inconclusive(r) if r.contains("version 1 had fewer")), "{v:?}");
}

#[test]
fn throttles_are_failed_requests() {
    let throttled = Figures { throttles: 30.0, ..f(100.0, 0.0) };
    let t = Criteria { max_throttle_rate: Some(0.1), ..c() };
    assert!(matches!(judge(&one(throttled, None), &t), Verdict::Unhealthy(r) if r.contains("throttled")));
    let t = Criteria { alpha: Some(0.05), ..c() };
    let v = judge(&one(throttled, Some(&f(900.0, 0.0))), &t);
    assert!(
        matches!(&v, Verdict::Unhealthy(r) if r.starts_with("failed requests 23.08% (30 of 130)")),
        "{v:?}"
    );
}

#[test]
fn a_slower_new_version_fails_on_its_percentiles() {
    let t = Criteria { max_duration_ratio: Some(1.5), ..c() };
    let base = f(900.0, 0.0);
    let slow = Figures { p90: Some(240.0), p99: Some(400.0), ..f(100.0, 0.0) };
    let v = judge(&one(slow, Some(&base)), &t);
    assert!(matches!(&v, Verdict::Unhealthy(r) if r.starts_with("p90 duration 240 ms is 2.40x")), "{v:?}");
    // p99 is compared from 1,000 invocations of each version.
    let tail = Figures { p90: Some(110.0), p99: Some(400.0), ..f(1000.0, 0.0) };
    let v = judge(&one(tail, Some(&f(9000.0, 0.0))), &t);
    assert!(matches!(&v, Verdict::Unhealthy(r) if r.starts_with("p99 duration 400 ms is 2.67x")), "{v:?}");
    let fine = Figures { p90: Some(140.0), p99: Some(200.0), ..f(100.0, 0.0) };
    assert_eq!(judge(&one(fine, Some(&base)), &t), Verdict::Healthy);
}

/// With fewer than 100 invocations a window's p99 is its slowest call or near it: one slow call among 10
/// does not fail a step. Durations that cannot be compared make the step inconclusive (it is held for
/// more traffic), never a pass, and never a failure.
#[test]
fn one_slow_call_among_few_is_not_a_slower_version() {
    let t = Criteria { max_duration_ratio: Some(1.5), ..c() };
    let one_slow = Figures { p90: Some(105.0), p99: Some(900.0), ..f(10.0, 0.0) };
    let old = Figures { p90: Some(100.0), p99: Some(150.0), ..f(90.0, 0.0) };
    let v = judge(&one(one_slow, Some(&old)), &t);
    assert!(matches!(&v, Verdict::Inconclusive(r) if r.contains("a p90 needs 100 of each")), "{v:?}");
    assert_eq!(min_for_percentile(0.99), 1000.0);
}

/// A judgement that cannot make every comparison asked for makes none: the failures are not tested
/// (spending the budget) when the durations will make the step inconclusive anyway.
#[test]
fn a_judgement_that_cannot_compare_everything_compares_nothing() {
    let t = Criteria { max_error_rate: 1.0, alpha: Some(0.05), max_duration_ratio: Some(1.5), ..c() };
    let worse = f(50.0, 25.0);
    let v = judge(&one(worse, Some(&f(450.0, 2.0))), &t);
    assert!(matches!(&v, Verdict::Inconclusive(r) if r.starts_with("durations cannot be compared")), "{v:?}");
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
}
