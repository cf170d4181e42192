//! The drain loop's decisions, as pure functions of what was observed and of the time (an argument, never
//! read here): what to do after a poll, when this invocation's window ends, how long to sleep.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::ecs::InstanceStatus;

/// What one poll saw, and the limits that apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub tasks_left: usize,
    pub now: DateTime<Utc>,
    /// Our own deadline (`DRAIN_TIMEOUT_SECONDS` after the drain started).
    pub deadline: DateTime<Utc>,
    /// When this invocation must stop polling (its window, or the Lambda deadline less a margin).
    pub window_end: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    pub heartbeat_interval: Duration,
    pub hop: u32,
    pub max_hops: u32,
    /// Whether a continuation can be published (a topic is known).
    pub can_continue: bool,
    /// The first poll of this invocation: the invocation may start long after the last heartbeat (Lambda
    /// retries a failed asynchronous invocation after a minute or two, and a throttled event waits in
    /// its queue for hours), so it heartbeats at once if it goes on waiting.
    pub first_poll: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutCause {
    Deadline,
    /// The deadline was the hook's `GlobalTimeout` (less a margin), before `DRAIN_TIMEOUT_SECONDS`.
    HookLifetime,
    HopCap,
    NoContinuationTopic,
}

impl TimeoutCause {
    /// The `reason` of the outcome and the notification.
    pub fn reason(self) -> &'static str {
        match self {
            TimeoutCause::Deadline => "DRAIN_TIMEOUT_SECONDS reached",
            TimeoutCause::HookLifetime => {
                "the hook's GlobalTimeout is near (it runs from when the instance began to wait, and no heartbeat extends it)"
            }
            TimeoutCause::HopCap => "MAX_HOPS reached",
            TimeoutCause::NoContinuationTopic => {
                "poll window over and no topic to continue on (set CONTINUATION_TOPIC_ARN)"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing left: complete with CONTINUE.
    Complete,
    /// Give up waiting: complete with `TIMEOUT_RESULT`.
    TimeOut(TimeoutCause),
    /// Hand the drain to a fresh invocation, after a heartbeat: the next invocation may be delivered late.
    Continue,
    /// Poll again after the interval (or at the window's end, if sooner), after a heartbeat if one is due.
    Wait { heartbeat: bool },
}

pub fn decide(p: &Poll) -> Decision {
    if p.tasks_left == 0 {
        return Decision::Complete;
    }
    if p.now >= p.deadline {
        return Decision::TimeOut(TimeoutCause::Deadline);
    }
    let heartbeat = p.first_poll || p.now - p.last_heartbeat_at >= to_chrono(p.heartbeat_interval);
    // Every invocation polls until its window ends (the caller sleeps at most until then), so a short
    // window never turns into a burst of back-to-back hops.
    if p.now < p.window_end {
        return Decision::Wait { heartbeat };
    }
    if !p.can_continue {
        return Decision::TimeOut(TimeoutCause::NoContinuationTopic);
    }
    if p.hop >= p.max_hops {
        return Decision::TimeOut(TimeoutCause::HopCap);
    }
    Decision::Continue
}

/// Where Auto Scaling has the instance, against the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// In the wait state the message's transition pauses it in: the action is open.
    Waiting,
    /// Past it: the action was completed (a duplicate delivery) or expired. Nothing to do.
    Over(String),
    /// In a state no such message comes from: forged, or very stale. Nothing may be changed.
    NotFromAutoScaling(String),
}

/// The stage of a lifecycle action from the instance's lifecycle state (`None`: in no group). A
/// termination waits in `Terminating:Wait`, or in `Warmed:Pending:Wait` on its way back to the warm pool;
/// a launch in `Pending:Wait`, or `Warmed:Pending:Wait` on its way into the warm pool
/// (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html>). A launch
/// message for an instance in service is only ever stale: a forged one cannot drain anything.
pub fn stage(launching: bool, into_warm_pool: bool, state: Option<&str>) -> Stage {
    let Some(state) = state else {
        return Stage::Over("the instance is no longer in an Auto Scaling group".into());
    };
    let waits_in = match (launching, into_warm_pool) {
        (_, true) => "Warmed:Pending:Wait",
        (true, false) => "Pending:Wait",
        (false, false) => "Terminating:Wait",
    };
    if state == waits_in {
        return Stage::Waiting;
    }
    let past =
        launching || state.starts_with("Terminating") || (into_warm_pool && state.starts_with("Warmed:"));
    if past {
        Stage::Over(format!("the instance is {state}"))
    } else {
        Stage::NotFromAutoScaling(format!("is {state} in its group, not waiting in {waits_in}"))
    }
}

/// Our drain marker's value, `<hook>@<when the drain started>`: the stopped-task path finds the action
/// and the drain's duration by it. An ECS attribute value holds 128 characters: a hook name longer than 100,
/// which the stack never makes, is marked `?` (the stopped-task path then leaves the action to the poll).
pub fn marker_value(hook_name: &str, started_at: DateTime<Utc>) -> String {
    let hook = if hook_name.len() <= 100 { hook_name } else { "?" };
    format!("{hook}@{}", started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The hook and start time of a marker value; `None` when it is not one of ours (or its hook was too long).
pub fn parse_marker(value: &str) -> Option<(&str, DateTime<Utc>)> {
    let (hook, at) = value.rsplit_once('@')?;
    (hook != "?" && !hook.is_empty()).then_some(())?;
    Some((hook, at.parse().ok()?))
}

/// What a launching instance's container instance shows, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub status: InstanceStatus,
    pub agent_connected: bool,
    /// It carries our drain marker: we drained it on its way back into the warm pool.
    pub drained_by_us: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// ACTIVE with its agent connected: ECS can place tasks on it.
    Ready,
    /// DRAINING because we drained it on its way into the warm pool: set it ACTIVE, then look again.
    Reactivate,
    /// Not yet, and why.
    NotYet(String),
    /// DRAINING, not by us: whoever drained it meant it; its launch goes on without waiting.
    DrainedByOthers,
}

pub fn readiness(seen: Option<Seen>) -> Readiness {
    let Some(seen) = seen else {
        return Readiness::NotYet("no container instance registered in the configured clusters".into());
    };
    match seen.status {
        InstanceStatus::Active if seen.agent_connected => Readiness::Ready,
        InstanceStatus::Active => Readiness::NotYet("ACTIVE, but its ECS agent is not connected".into()),
        InstanceStatus::Draining if seen.drained_by_us => Readiness::Reactivate,
        InstanceStatus::Draining => Readiness::DrainedByOthers,
        other => Readiness::NotYet(format!("container instance is {other}")),
    }
}

/// When a launch that is not ready is abandoned: `LAUNCH_TIMEOUT_SECONDS` after the instance began to
/// wait, never later than the hook's `GlobalTimeout` less [`GLOBAL_TIMEOUT_MARGIN`], nor than this
/// invocation's window.
pub fn launch_deadline(
    began_at: DateTime<Utc>,
    launch_timeout: Duration,
    global_timeout: u32,
    window_end: DateTime<Utc>,
) -> DateTime<Utc> {
    let hook = began_at
        + to_chrono(Duration::from_secs(global_timeout.into()).saturating_sub(GLOBAL_TIMEOUT_MARGIN));
    (began_at + to_chrono(launch_timeout)).min(hook).min(window_end)
}

/// How long before the hook's `GlobalTimeout` a drain completes itself with `TIMEOUT_RESULT`: time for the
/// last poll and the call, so that Auto Scaling never applies the hook's default result to a drain of
/// ours.
pub const GLOBAL_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);

/// The smallest `GlobalTimeout` AWS allows (100 x the smallest heartbeat timeout, 30 s): assumed when the
/// hook cannot be read.
pub const SMALLEST_GLOBAL_TIMEOUT: u32 = 3000;

/// A drain's deadline: `DRAIN_TIMEOUT_SECONDS` after it started, but never later than the hook's
/// `GlobalTimeout` (counted from when the instance began to wait) less [`GLOBAL_TIMEOUT_MARGIN`]; which of
/// the two it is.
pub fn deadline(
    started: DateTime<Utc>,
    drain_timeout: Duration,
    began_at: DateTime<Utc>,
    global_timeout: u32,
) -> (DateTime<Utc>, TimeoutCause) {
    let own = started + to_chrono(drain_timeout);
    let hook = began_at
        + to_chrono(Duration::from_secs(global_timeout.into()).saturating_sub(GLOBAL_TIMEOUT_MARGIN));
    if hook < own { (hook, TimeoutCause::HookLifetime) } else { (own, TimeoutCause::Deadline) }
}

/// Heartbeats go out at half the hook's heartbeat timeout, so one delayed poll never lets it lapse. If
/// the timeout could not be read, every 15 s: half of the shortest timeout AWS allows.
pub fn heartbeat_interval(heartbeat_timeout: Option<u32>) -> Duration {
    Duration::from_secs(heartbeat_timeout.map_or(15, |t| u64::from(t / 2).max(1)))
}

/// When this invocation stops polling: its own window after it started, or Lambda's deadline less
/// `margin` (time to publish the continuation), whichever comes first. `lambda_left` is the time Lambda
/// gave the invocation when it `started`.
pub fn window_end(
    started: DateTime<Utc>,
    poll_window: Duration,
    lambda_left: Option<Duration>,
    margin: Duration,
) -> DateTime<Utc> {
    let own = started + to_chrono(poll_window);
    match lambda_left {
        Some(left) => own.min(started + to_chrono(left.saturating_sub(margin))),
        None => own,
    }
}

/// How long to sleep before the next poll: the (jittered) poll interval, cut short by the window's end,
/// the next heartbeat or the deadline, whichever comes first.
pub fn pause(p: &Poll, poll: Duration) -> Duration {
    let until = |t: DateTime<Utc>| (t - p.now).to_std().unwrap_or_default();
    poll.min(until(p.window_end))
        .min(until(p.last_heartbeat_at + to_chrono(p.heartbeat_interval)))
        .min(until(p.deadline))
}

/// Spreads polls of many simultaneous drains (an instance refresh) by ±10 %, so they do not hit ECS in
/// lockstep.
pub fn jittered(interval: Duration, instance_id: &str, poll: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(instance_id.as_bytes());
    h.write_u32(poll);
    let fraction = (h.finish() % 2001) as f64 / 10_000.0 - 0.1; // -0.1 ..= 0.1
    interval.mul_f64(1.0 + fraction)
}

pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    fn poll() -> Poll {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        Poll {
            tasks_left: 2,
            now,
            deadline: now + chrono::Duration::seconds(600),
            window_end: now + chrono::Duration::seconds(60),
            last_heartbeat_at: now,
            heartbeat_interval: Duration::from_secs(150),
            hop: 0,
            max_hops: 10,
            can_continue: true,
            first_poll: false,
        }
    }

    #[test]
    fn nothing_left_completes_even_past_the_deadline() {
        let p = Poll { tasks_left: 0, deadline: poll().now, ..poll() };
        assert_eq!(decide(&p), Decision::Complete);
    }

    #[test]
    fn the_deadline_is_inclusive() {
        let p = poll();
        assert_eq!(decide(&Poll { deadline: p.now, ..p.clone() }), Decision::TimeOut(TimeoutCause::Deadline));
        let later = p.now + chrono::Duration::milliseconds(1);
        assert_eq!(decide(&Poll { deadline: later, ..p }), Decision::Wait { heartbeat: false });
    }

    #[test]
    fn waits_until_the_window_ends() {
        let p = poll();
        let soon = p.now + chrono::Duration::milliseconds(1);
        assert_eq!(decide(&Poll { window_end: soon, ..p.clone() }), Decision::Wait { heartbeat: false });
        assert_eq!(decide(&Poll { window_end: p.now, ..p }), Decision::Continue);
    }

    #[test]
    fn heartbeat_when_due() {
        let p = poll();
        let due = Poll { last_heartbeat_at: p.now - chrono::Duration::seconds(150), ..p.clone() };
        assert_eq!(decide(&due), Decision::Wait { heartbeat: true });
        let ending = Poll { window_end: p.now, ..due };
        assert_eq!(decide(&ending), Decision::Continue);
    }

    #[test]
    fn an_invocation_that_goes_on_waiting_heartbeats_at_once() {
        let p = Poll { first_poll: true, ..poll() };
        assert_eq!(decide(&p), Decision::Wait { heartbeat: true });
        assert_eq!(decide(&Poll { tasks_left: 0, ..p }), Decision::Complete);
    }

    #[test]
    fn a_continuation_is_always_preceded_by_a_heartbeat() {
        let p = poll();
        assert_eq!(decide(&Poll { window_end: p.now, ..p }), Decision::Continue);
    }

    #[test]
    fn the_deadline_is_the_sooner_of_our_timeout_and_the_hooks_lifetime() {
        let began = poll().now;
        let started = began + chrono::Duration::seconds(100);
        let (at, cause) = deadline(started, Duration::from_secs(900), began, 172_800);
        assert_eq!((at, cause), (started + chrono::Duration::seconds(900), TimeoutCause::Deadline));
        // A 30 s heartbeat timeout gives the hook 3,000 s in all, counted from when it began.
        let (at, cause) = deadline(started, Duration::from_secs(7200), began, 3000);
        assert_eq!((at, cause), (began + chrono::Duration::seconds(2940), TimeoutCause::HookLifetime));
    }

    #[test]
    fn the_hop_cap_ends_the_drain() {
        let p = Poll { window_end: poll().now, ..poll() };
        assert_eq!(decide(&Poll { hop: 10, ..p.clone() }), Decision::TimeOut(TimeoutCause::HopCap));
        assert_eq!(decide(&Poll { hop: 9, ..p }), Decision::Continue);
    }

    #[test]
    fn no_topic_to_continue_on_ends_the_drain() {
        let p = Poll { window_end: poll().now, can_continue: false, ..poll() };
        assert_eq!(decide(&p), Decision::TimeOut(TimeoutCause::NoContinuationTopic));
    }

    #[test]
    fn the_window_ends_before_lambda_does() {
        let start = poll().now;
        let s = |secs| Duration::from_secs(secs);
        let at = |secs| start + chrono::Duration::seconds(secs);
        assert_eq!(window_end(start, s(600), None, s(30)), at(600));
        assert_eq!(window_end(start, s(600), Some(s(900)), s(30)), at(600));
        assert_eq!(window_end(start, s(600), Some(s(300)), s(30)), at(270));
        assert_eq!(window_end(start, s(600), Some(s(10)), s(30)), start);
    }

    #[test]
    fn the_pause_stops_at_the_window_end_the_next_heartbeat_or_the_deadline() {
        let p = poll();
        let s = |secs| Duration::from_secs(secs);
        let at = |secs| p.now + chrono::Duration::seconds(secs);
        assert_eq!(pause(&p, s(15)), s(15));
        assert_eq!(pause(&Poll { window_end: at(5), ..p.clone() }, s(15)), s(5));
        assert_eq!(pause(&Poll { last_heartbeat_at: at(-140), ..p.clone() }, s(15)), s(10));
        assert_eq!(pause(&Poll { deadline: at(3), ..p.clone() }, s(15)), s(3));
        assert_eq!(pause(&Poll { window_end: at(-1), ..p }, s(15)), s(0));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for poll in 0..200 {
            let d = jittered(Duration::from_secs(10), "i-12345678", poll);
            assert!(d >= Duration::from_secs(9) && d <= Duration::from_secs(11), "{d:?}");
        }
    }

    #[test]
    fn heartbeat_intervals() {
        assert_eq!(heartbeat_interval(Some(3600)), Duration::from_secs(1800));
        assert_eq!(heartbeat_interval(Some(30)), Duration::from_secs(15));
        assert_eq!(heartbeat_interval(Some(1)), Duration::from_secs(1));
        assert_eq!(heartbeat_interval(None), Duration::from_secs(15));
    }

    #[test]
    fn the_stage_of_an_action_follows_the_lifecycle_state() {
        use super::Stage::*;
        let over = |s: Stage| matches!(s, Over(_));
        let forged = |s: Stage| matches!(s, NotFromAutoScaling(_));
        // A termination.
        assert_eq!(stage(false, false, Some("Terminating:Wait")), Waiting);
        assert!(over(stage(false, false, Some("Terminating:Proceed"))));
        assert!(over(stage(false, false, None)));
        assert!(forged(stage(false, false, Some("InService"))));
        assert!(forged(stage(false, false, Some("Warmed:Pending:Wait"))));
        // Back to the warm pool.
        assert_eq!(stage(false, true, Some("Warmed:Pending:Wait")), Waiting);
        assert!(over(stage(false, true, Some("Warmed:Stopped"))));
        assert!(forged(stage(false, true, Some("InService"))));
        // A launch, into the group or into the warm pool.
        assert_eq!(stage(true, false, Some("Pending:Wait")), Waiting);
        assert_eq!(stage(true, true, Some("Warmed:Pending:Wait")), Waiting);
        for state in ["InService", "Pending:Proceed", "Terminating:Wait", "Warmed:Stopped"] {
            assert!(over(stage(true, false, Some(state))), "{state}");
        }
    }

    #[test]
    fn ready_means_active_with_its_agent_connected() {
        let seen =
            |status, agent_connected, drained_by_us| Some(Seen { status, agent_connected, drained_by_us });
        assert_eq!(readiness(seen(InstanceStatus::Active, true, false)), Readiness::Ready);
        assert!(matches!(readiness(seen(InstanceStatus::Active, false, false)), Readiness::NotYet(_)));
        assert!(matches!(readiness(seen(InstanceStatus::Registering, true, false)), Readiness::NotYet(_)));
        assert!(matches!(readiness(None), Readiness::NotYet(_)));
        assert_eq!(readiness(seen(InstanceStatus::Draining, false, true)), Readiness::Reactivate);
        assert_eq!(readiness(seen(InstanceStatus::Draining, true, false)), Readiness::DrainedByOthers);
    }

    #[test]
    fn a_launch_is_abandoned_at_the_earliest_limit() {
        let began = t(0);
        let window = t(900);
        assert_eq!(launch_deadline(began, Duration::from_secs(300), 3600, window), t(300));
        // The hook's lifetime (less the margin) is sooner.
        assert_eq!(launch_deadline(began, Duration::from_secs(300), 300, window), t(240));
        // This invocation's window is sooner.
        assert_eq!(launch_deadline(began, Duration::from_secs(600), 3600, t(200)), t(200));
    }

    #[test]
    fn markers_round_trip() {
        let v = marker_value("shipshape-drain-07", t(5));
        assert_eq!(v, "shipshape-drain-07@2027-01-15T08:00:05Z");
        assert_eq!(parse_marker(&v), Some(("shipshape-drain-07", t(5))));
        assert_eq!(parse_marker(&marker_value(&"h".repeat(101), t(5))), None);
        assert!(marker_value(&"h".repeat(100), t(0)).len() <= 128);
        assert_eq!(parse_marker("rebalance"), None);
    }
}
