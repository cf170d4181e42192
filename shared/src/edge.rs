//! The Lambda edge every function shares: how much time the invocation has, a clock that paused-time tests
//! control, and how a handler's error becomes Lambda's error response.
//!
//! Waiting loops read time through tokio ([`Budget`], [`Clock`]) rather than the system clock, so their
//! tests run with `#[tokio::test(start_paused = true)]`: a 15-minute drain takes microseconds.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// The invocation's deadline (Lambda's, from the runtime's context) on tokio's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    until: Option<Instant>,
}

impl Budget {
    /// From the context's deadline in milliseconds since the epoch; 0 (what `Context::default()` holds,
    /// as in tests) means no deadline.
    pub fn from_deadline_ms(deadline_ms: u64) -> Self {
        if deadline_ms == 0 {
            return Budget::unlimited();
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let left_ms = u128::from(deadline_ms).saturating_sub(now_ms);
        let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(u64::MAX));
        Budget { until: Some(Instant::now() + left) }
    }

    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        Self::from_deadline_ms(context.deadline)
    }

    pub fn unlimited() -> Self {
        Budget { until: None }
    }

    /// A budget of `left` from now (tests).
    pub fn of(left: Duration) -> Self {
        Budget { until: Some(Instant::now() + left) }
    }

    /// This budget, but no more than `left` from now (a caller that gives up sooner than Lambda would).
    pub fn capped(self, left: Duration) -> Self {
        let cap = Instant::now() + left;
        Budget { until: Some(self.until.map_or(cap, |u| u.min(cap))) }
    }

    /// Time left; `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.until.map(|u| u.saturating_duration_since(Instant::now()))
    }

    /// Whether more than `margin` is left (always, without a deadline).
    pub fn has_more_than(&self, margin: Duration) -> bool {
        self.remaining().is_none_or(|left| left > margin)
    }
}

/// Wall-clock time that advances with tokio's clock: read once at the start of an invocation, then moved
/// on by tokio's `Instant`. Timestamps that are serialized (a drain's start, a step's window) stay
/// `chrono` values, and a paused-time test still controls every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    wall: DateTime<Utc>,
    at: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock::starting_at(Utc::now())
    }

    /// A clock that reads `wall` now (tests).
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Clock { wall, at: Instant::now() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.at.elapsed()).unwrap_or(chrono::Duration::MAX)
    }
}

/// A stable name per error variant for Lambda's error response (`errorType`), which alarms, metric filters
/// and log queries match on.
pub trait ErrorType: std::error::Error {
    fn error_type(&self) -> &'static str;
}

/// The error response of a failed invocation.
pub fn diagnostic<E: ErrorType>(error: &E) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic { error_type: error.error_type().to_owned(), error_message: error.to_string() }
}

/// Implements [`ErrorType`] from the variants' names (`strum::IntoStaticStr`, each renamed where the
/// published `errorType` differs) and Lambda's `Diagnostic` from it.
#[macro_export]
macro_rules! error_type {
    ($error:ty) => {
        impl $crate::edge::ErrorType for $error {
            fn error_type(&self) -> &'static str {
                self.into()
            }
        }
        impl From<$error> for lambda_runtime::Diagnostic {
            fn from(e: $error) -> Self {
                $crate::edge::diagnostic(&e)
            }
        }
    };
}

/// A bug of ours, not a problem with the event or with AWS: reported as `Internal`, so nobody is paged
/// about an AWS outage that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Internal {
    /// What we were doing.
    pub during: &'static str,
    pub detail: String,
}

impl Internal {
    pub fn new(during: &'static str, detail: impl fmt::Display) -> Self {
        Internal { during, detail: detail.to_string() }
    }
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal error while {}: {} (a shipshape bug; please report it)", self.during, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_budget_runs_down_with_tokio_time() {
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 90_000;
        let budget = Budget::from_deadline_ms(u64::try_from(deadline).unwrap());
        assert!(budget.has_more_than(Duration::from_secs(80)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        let left = budget.remaining().unwrap();
        assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(25), "{left:?}");
        assert!(!budget.has_more_than(Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_capped_budget_ends_at_the_earlier_of_the_two() {
        let short = Budget::of(Duration::from_secs(10)).capped(Duration::from_secs(300));
        assert_eq!(short.remaining(), Some(Duration::from_secs(10)));
        let capped = Budget::unlimited().capped(Duration::from_secs(300));
        assert_eq!(capped.remaining(), Some(Duration::from_secs(300)));
    }

    #[test]
    fn no_deadline_is_unlimited() {
        assert_eq!(Budget::from_deadline_ms(0), Budget::unlimited());
        assert!(Budget::unlimited().has_more_than(Duration::MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_moves_with_tokio_time() {
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = Clock::starting_at(start);
        tokio::time::sleep(Duration::from_secs(900)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(900));
    }

    #[test]
    fn internal_errors_say_they_are_ours() {
        let e = Internal::new("encoding a continuation", "key must be a string");
        assert_eq!(
            e.to_string(),
            "internal error while encoding a continuation: key must be a string (a shipshape bug; please report it)"
        );
    }
}
