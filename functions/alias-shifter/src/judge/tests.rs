//! The judging schedule of a look: its windows, pure.

use chrono::{DateTime, Duration, Utc};

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_else(|e| panic!("{e}"))
}

/// The second weight of a rollout, held 120 s from 10:05:20; versions time out after 30 s.
fn look() -> Look {
    Look {
        timing: Timing { period: 60, timeout: 30, metric_delay: 60 },
        interval: 120,
        extensions: 0,
        until: None,
        kind: Kind::Weight { started_at: at("2026-01-01T10:05:20Z"), first: at("2026-01-01T10:00:10Z") },
    }
}

fn bake(first: Option<DateTime<Utc>>) -> Look {
    Look {
        kind: Kind::Bake {
            switched_at: at("2026-01-01T10:09:40Z"),
            bake_seconds: 300,
            check: 1,
            first,
            shift: at("2026-01-01T10:00:05Z"),
        },
        ..look()
    }
}

#[test]
fn a_step_and_the_rollout_so_far_are_judged_together_once_complete() {
    let w = windows(&look());
    assert_eq!((w.current.from, w.current.to), (at("2026-01-01T10:05:00Z"), at("2026-01-01T10:08:00Z")));
    let so_far = w.so_far.unwrap_or_else(|| panic!("no window so far"));
    assert_eq!((so_far.from, so_far.to), (at("2026-01-01T10:00:00Z"), at("2026-01-01T10:08:00Z")));
    assert_eq!(judge_at(&look()), at("2026-01-01T10:09:30Z"));
}

#[test]
fn an_extension_grows_the_window() {
    let held = Look { extensions: 1, ..look() };
    assert_eq!(windows(&held).current.to, at("2026-01-01T10:10:00Z"));
}

#[test]
fn the_bake_starts_after_the_switch_and_is_compared_with_the_weighted_steps() {
    let w = windows(&bake(Some(at("2026-01-01T10:00:10Z"))));
    // From the first whole period after the switch: no invocation of the old version in it.
    assert_eq!((w.current.from, w.current.to), (at("2026-01-01T10:10:00Z"), at("2026-01-01T10:12:00Z")));
    let (before, source) = w.before.unwrap_or_else(|| panic!("no baseline"));
    assert_eq!(
        (before.from, before.to, source),
        (at("2026-01-01T10:00:00Z"), at("2026-01-01T10:10:00Z"), Source::Old)
    );
    // All at once: the alias before the shift, as long as the bake.
    let (before, source) = windows(&bake(None)).before.unwrap_or_else(|| panic!("no baseline"));
    assert_eq!((before.to - before.from, source), (Duration::seconds(300), Source::Alias));
    assert_eq!(before.to, at("2026-01-01T10:00:00Z"));
}

/// Two periods of a linear shift: at 10 %, nothing fails; at 90 %, a dependency fails a fifth of
/// everyone's requests. Pooled over the rollout so far, the new version failed 180 of 1,000 requests and
/// the old one 20 of 1,000; period by period, both failed alike.
#[test]
fn a_failure_both_versions_share_late_is_not_the_new_versions() {
    use self::health::Criteria;
    use self::series::Stat;
    let start = at("2026-01-01T10:00:00Z");
    let second = at("2026-01-01T10:01:00Z");
    let mut s = Series::default();
    for (t, new, new_err, old, old_err) in
        [(start, 100.0, 0.0, 900.0, 0.0), (second, 900.0, 180.0, 100.0, 20.0)]
    {
        for (source, n, e) in [(Source::New, new, new_err), (Source::Old, old, old_err)] {
            s.add(&series::id(source, Stat::Invocations), t, n);
            s.add(&series::id(source, Stat::Errors), t, e);
        }
    }
    let weight = Look {
        timing: Timing { period: 60, timeout: 0, metric_delay: 0 },
        interval: 60,
        extensions: 0,
        until: None,
        kind: Kind::Weight { started_at: second, first: start },
    };
    let c = Criteria {
        max_error_rate: 1.0,
        min_invocations: 1.0,
        alpha: Some(0.01),
        max_duration_ratio: None,
        max_throttle_rate: None,
    };
    let a = assess(&weight, &c, Some(&s), &[], "1");
    assert_eq!(a.verdict, Verdict::Healthy, "{a:?}");
    // A new version that fails more than the old one in the same periods is found.
    s.add(&series::id(Source::New, Stat::Errors), start, 30.0);
    let a = assess(&weight, &c, Some(&s), &[], "1");
    assert!(matches!(&a.verdict, Verdict::Unhealthy(r) if r.starts_with("failed requests")), "{a:?}");
}
