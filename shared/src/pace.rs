//! A client-side pace for a family of API calls: a token bucket of our own, well inside the one AWS keeps
//! for the account. ECS throttles each family of actions per account and Region, for every caller at once
//! ("Request throttling for the Amazon ECS API": cluster resource reads, for one, 100 at once and 20 a
//! second after that). A burst of drains may use only part of it, so that the account's other callers (the
//! spot-drainer racing a two-minute warning, deploy tools, the console) still find tokens.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// ECS's cluster resource read actions (`ListContainerInstances`, `DescribeContainerInstances`, `ListTasks`,
/// `DescribeTasks`), at half of what ECS lets the account burst and sustain.
pub const ECS_CLUSTER_READS: (f64, f64) = (50.0, 10.0);

#[derive(Debug)]
pub struct Pace {
    burst: f64,
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl Pace {
    /// `(burst, per_second)`: at most `burst` calls at once, `per_second` on average after that.
    pub fn new((burst, per_second): (f64, f64)) -> Self {
        Pace { burst, per_second, state: Mutex::new((burst, Instant::now())) }
    }

    /// Waits until `calls` may be made, and takes them. More than a burst is taken as a whole burst.
    pub async fn take(&self, calls: u32) {
        let want = f64::from(calls).min(self.burst);
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let tokens =
                    (state.0 + now.duration_since(state.1).as_secs_f64() * self.per_second).min(self.burst);
                *state = (tokens, now);
                if tokens >= want {
                    state.0 -= want;
                    return;
                }
                Duration::from_secs_f64((want - tokens) / self.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
        let pace = Pace::new((50.0, 10.0));
        let t0 = Instant::now();
        pace.take(50).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        pace.take(20).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
        for _ in 0..10 {
            pace.take(1).await;
        }
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
        // An idle while refills the burst, never more.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let t1 = Instant::now();
        pace.take(50).await;
        pace.take(1).await;
        assert_eq!(t1.elapsed(), Duration::from_millis(100));
        pace.take(500).await; // more than a burst: taken as one
        assert_eq!(t1.elapsed(), Duration::from_millis(5100));
    }
}
