//! When a step's traffic is complete in CloudWatch, and which data points are that traffic. Pure.
//!
//! Lambda: "the timestamp on a metric reflects when the function was invoked. Depending on the duration of
//! the invocation, this can be several minutes before the metric is emitted. For example, if your function
//! has a 10-minute timeout, then look more than 10 minutes in the past for accurate metrics." (Lambda
//! developer guide, "Types of metrics for Lambda functions"); CloudWatch shows a data point some time after
//! it is emitted, and stores Lambda's metrics per period (60 s).
//!
//! So the rule, [`window`]: a step held from `start` to `end` is the traffic that started in the periods
//! holding it, `[floor(start), ceil(end))`; the last of those invocations has ended by `ceil(end) +
//! Timeout` (the longer `Timeout` of the two versions), and its data points are visible `metric-delay`
//! later: the step is judged at `ceil(end) + Timeout + metric-delay`, not before.

use chrono::{DateTime, Duration, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// What the window rule depends on besides the step's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The metrics' period in seconds (60 in AWS: Lambda's metrics have 1-minute resolution).
    pub period: u32,
    /// The longer `Timeout` of the two versions, in seconds.
    pub timeout: u32,
    /// How long CloudWatch takes to show a data point, in seconds (`metric-delay`).
    pub metric_delay: u64,
}

/// The periods a step's traffic started in (`[from, to)`) and the earliest time they can be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub judge_at: DateTime<Utc>,
}

impl Window {
    /// Whether a data point stamped `at` (a period's start) belongs to this window.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.to
    }

    /// The smallest window holding both.
    pub fn union(&self, other: &Window) -> Window {
        Window {
            from: self.from.min(other.from),
            to: self.to.max(other.to),
            judge_at: self.judge_at.max(other.judge_at),
        }
    }
}

fn period(t: &Timing) -> i64 {
    i64::from(t.period.max(1))
}

/// `at` rounded down to a whole period (periods count from the epoch, as CloudWatch's do).
pub fn floor(at: DateTime<Utc>, t: &Timing) -> DateTime<Utc> {
    let p = period(t);
    let secs = at.timestamp().div_euclid(p) * p;
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}

/// `at` rounded up to a whole period.
pub fn ceil(at: DateTime<Utc>, t: &Timing) -> DateTime<Utc> {
    let down = floor(at, t);
    if down == at { at } else { down + Duration::seconds(period(t)) }
}

/// The window rule (see the module's doc): traffic that started in `[floor(start), ceil(end))`, at least
/// one period, judged at `ceil(end) + timeout + metric delay`.
pub fn window(start: DateTime<Utc>, end: DateTime<Utc>, t: &Timing) -> Window {
    let from = floor(start, t);
    let to = ceil(end.max(start), t).max(from + Duration::seconds(period(t)));
    let after = Duration::seconds(i64::from(t.timeout)) + seconds(t.metric_delay);
    Window { from, to, judge_at: to + after }
}

/// One `GetMetricData` request of a span: `[from, to)` at `period` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub period: u32,
}

/// How a span is read at the resolution CloudWatch keeps: "Data points with a period of 60 seconds
/// (1-minute) are available for 15 days. Data points with a period of 300 seconds (5-minute) are available
/// for 63 days. Data points with a period of 3600 seconds (1 hour) are available for 455 days", and a
/// request whose `StartTime` is older must ask for a multiple of that period, "or no data points in that
/// time range is returned" (GetMetricData; MetricStat, Period). So a span reaching further back than 15 (63)
/// days is read in up to three requests: the oldest part by the hour, then by 5 minutes, then at `base`.
/// Each boundary is 10 minutes younger than the rule's, for a request that reaches AWS a little later.
pub fn reads(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>, base: u32) -> Vec<Read> {
    let margin = Duration::minutes(10);
    let at = |period: u32, age_days: i64| {
        let t = Timing { period, timeout: 0, metric_delay: 0 };
        ceil(now - Duration::days(age_days) + margin, &t)
    };
    let tiers = [(3600, at(3600, 63)), (300, at(300, 15)), (base, to)];
    let mut out = Vec::new();
    let mut start = from;
    for (period, until) in tiers {
        let until = until.min(to);
        if start < until {
            let t = Timing { period, timeout: 0, metric_delay: 0 };
            out.push(Read { from: floor(start, &t), to: until, period });
            start = until;
        }
    }
    out
}

/// Whole seconds from `now` until `at`, rounded up; 0 once it has passed.
pub fn wait_seconds(now: DateTime<Utc>, at: DateTime<Utc>) -> u64 {
    let left = (at - now).num_milliseconds();
    if left <= 0 { 0 } else { u64::try_from(left).map_or(u64::MAX, |ms| ms.div_ceil(1000)) }
}

pub fn seconds(s: u64) -> TimeDelta {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// The end of the `check`-th (1-based) bake check after the switch: one per `interval` (at least one
/// check), the last at `bake` seconds; and whether it is the last.
pub fn bake_check_end(
    switched_at: DateTime<Utc>,
    interval: u64,
    bake: u64,
    check: u32,
) -> (DateTime<Utc>, bool) {
    let at = if interval == 0 { bake } else { interval.saturating_mul(u64::from(check)).min(bake) };
    (switched_at + seconds(at), at >= bake)
}

/// How many checks a bake of `bake` seconds has, one per `interval` (at least one).
pub fn bake_checks(interval: u64, bake: u64) -> u32 {
    if bake == 0 {
        0
    } else if interval == 0 {
        1
    } else {
        u32::try_from(bake.div_ceil(interval)).unwrap_or(u32::MAX)
    }
}

/// The time a whole rollout needs in one invocation, at the most: each step's interval, up to two periods
/// of rounding, the timeout and the metric delay; the same for the bake.
pub fn rollout_seconds(steps: usize, interval: u64, bake: u64, t: &Timing) -> u64 {
    let judged = 2 * u64::from(t.period) + u64::from(t.timeout) + t.metric_delay;
    let steps = u64::try_from(steps).unwrap_or(u64::MAX);
    let bake_checks = u64::from(bake_checks(interval, bake));
    steps
        .saturating_mul(interval.saturating_add(judged))
        .saturating_add(bake)
        .saturating_add(bake_checks * judged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const AWS: Timing = Timing { period: 60, timeout: 900, metric_delay: 60 };

    #[test]
    fn a_step_is_judged_after_its_last_period_plus_timeout_plus_delay() {
        let w = window(at("2026-01-01T10:00:20Z"), at("2026-01-01T10:05:20Z"), &AWS);
        assert_eq!(w.from, at("2026-01-01T10:00:00Z"));
        assert_eq!(w.to, at("2026-01-01T10:06:00Z"));
        // The invocation that started at 10:05:59 may run 15 minutes; its data show a minute after.
        assert_eq!(w.judge_at, at("2026-01-01T10:22:00Z"));
    }

    #[test]
    fn a_step_on_period_boundaries_is_not_widened() {
        let w = window(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:02:00Z"), &AWS);
        assert_eq!((w.from, w.to), (at("2026-01-01T10:00:00Z"), at("2026-01-01T10:02:00Z")));
    }

    #[test]
    fn an_instant_step_is_one_period() {
        let t = Timing { period: 1, timeout: 2, metric_delay: 1 };
        let start = at("2026-01-01T10:00:00.400Z");
        let w = window(start, start, &t);
        assert_eq!((w.from, w.to), (at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:01Z")));
        assert_eq!(w.judge_at, at("2026-01-01T10:00:04Z"));
        assert!(w.covers(at("2026-01-01T10:00:00Z")) && !w.covers(w.to));
    }

    #[test]
    fn old_data_is_read_at_the_period_cloudwatch_keeps() {
        let now = at("2026-03-01T12:00:00Z");
        // Recent: one read at the base period.
        let recent = reads(at("2026-02-27T10:00:30Z"), now, now, 60);
        assert_eq!(recent, [Read { from: at("2026-02-27T10:00:00Z"), to: now, period: 60 }]);
        // 20 days back: by 5 minutes (the start rounded down to them) until 15 days ago, then by minutes.
        let twenty = reads(at("2026-02-09T10:03:00Z"), now, now, 60);
        assert_eq!(
            twenty,
            [
                Read { from: at("2026-02-09T10:00:00Z"), to: at("2026-02-14T12:10:00Z"), period: 300 },
                Read { from: at("2026-02-14T12:10:00Z"), to: now, period: 60 },
            ]
        );
        // 70 days back: by the hour, then by 5 minutes, then by minutes.
        let seventy = reads(at("2025-12-21T10:03:00Z"), now, now, 60);
        let periods: Vec<u32> = seventy.iter().map(|r| r.period).collect();
        assert_eq!(periods, [3600, 300, 60]);
        assert_eq!(seventy[0].from, at("2025-12-21T10:00:00Z"));
        assert_eq!(seventy[0].to, seventy[1].from);
        // An old window that ends before the boundary is one coarse read.
        let old = reads(at("2026-02-09T10:03:00Z"), at("2026-02-09T11:00:00Z"), now, 60);
        assert_eq!(
            old,
            [Read { from: at("2026-02-09T10:00:00Z"), to: at("2026-02-09T11:00:00Z"), period: 300 }]
        );
    }

    #[test]
    fn waits_round_up_and_never_go_negative() {
        let now = at("2026-01-01T10:00:00Z");
        assert_eq!(wait_seconds(now, at("2026-01-01T10:00:01.200Z")), 2);
        assert_eq!(wait_seconds(now, now), 0);
        assert_eq!(wait_seconds(now, at("2026-01-01T09:00:00Z")), 0);
    }

    #[test]
    fn bake_checks_every_interval_and_at_the_end() {
        let sw = at("2026-01-01T10:00:00Z");
        assert_eq!(bake_check_end(sw, 60, 150, 1), (at("2026-01-01T10:01:00Z"), false));
        assert_eq!(bake_check_end(sw, 60, 150, 3), (at("2026-01-01T10:02:30Z"), true));
        assert_eq!(bake_check_end(sw, 0, 150, 1), (at("2026-01-01T10:02:30Z"), true));
    }

    #[test]
    fn a_rollout_counts_its_judging_time() {
        let t = Timing { period: 60, timeout: 3, metric_delay: 60 };
        // 9 steps of 120 s, each judged up to 2 periods + 3 s + 60 s later.
        assert_eq!(rollout_seconds(9, 120, 0, &t), 9 * (120 + 183));
        assert_eq!(rollout_seconds(1, 0, 300, &t), 183 + 300 + 183);
    }
}
