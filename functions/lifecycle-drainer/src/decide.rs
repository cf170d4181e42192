//! The drain loop's decision at each poll, as a pure function of what was observed.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutCause {
    Deadline,
    HopCap,
    NoContinuationTopic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing left: complete with CONTINUE.
    Complete,
    /// Give up waiting: complete with `TIMEOUT_RESULT`.
    TimeOut(TimeoutCause),
    /// Hand the drain to a fresh invocation, after a heartbeat if one is due.
    Continue { heartbeat: bool },
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
    let heartbeat = p.now - p.last_heartbeat_at >= to_chrono(p.heartbeat_interval);
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
    Decision::Continue { heartbeat }
}

/// Heartbeats go out at half the hook's heartbeat timeout, so one delayed poll never lets it lapse. If
/// the timeout could not be read, every 15 s: half of the shortest timeout AWS allows.
pub fn heartbeat_interval(heartbeat_timeout: Option<u32>) -> Duration {
    Duration::from_secs(heartbeat_timeout.map_or(15, |t| u64::from(t / 2).max(1)))
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(decide(&Poll { window_end: p.now, ..p }), Decision::Continue { heartbeat: false });
    }

    #[test]
    fn heartbeat_when_due() {
        let p = poll();
        let due = Poll { last_heartbeat_at: p.now - chrono::Duration::seconds(150), ..p.clone() };
        assert_eq!(decide(&due), Decision::Wait { heartbeat: true });
        let ending = Poll { window_end: p.now, ..due };
        assert_eq!(decide(&ending), Decision::Continue { heartbeat: true });
    }

    #[test]
    fn hop_cap_and_missing_topic_end_the_drain() {
        let p = Poll { window_end: poll().now, ..poll() };
        assert_eq!(decide(&Poll { hop: 10, ..p.clone() }), Decision::TimeOut(TimeoutCause::HopCap));
        assert_eq!(decide(&Poll { hop: 9, ..p.clone() }), Decision::Continue { heartbeat: false });
        assert_eq!(
            decide(&Poll { can_continue: false, ..p }),
            Decision::TimeOut(TimeoutCause::NoContinuationTopic)
        );
    }

    #[test]
    fn heartbeat_intervals() {
        assert_eq!(heartbeat_interval(Some(3600)), Duration::from_secs(1800));
        assert_eq!(heartbeat_interval(Some(30)), Duration::from_secs(15));
        assert_eq!(heartbeat_interval(Some(1)), Duration::from_secs(1));
        assert_eq!(heartbeat_interval(None), Duration::from_secs(15));
    }
}
