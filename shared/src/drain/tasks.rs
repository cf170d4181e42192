//! What is still on an instance: every task not STOPPED on any of its registrations.
//!
//! `runningTasksCount` and `pendingTasksCount` rule an instance out cheaply (they come with the batch
//! `DescribeContainerInstances` that reads every draining instance at once), but they stop counting a task
//! as soon as its desired status is STOPPED, while it still shuts down (a load balancer's deregistration
//! delay). So an instance whose counts are zero may still be busy: only `ListTasks` (both desired statuses)
//! and `DescribeTasks` say it is empty. And `ListTasks` is eventually consistent: a task placed a moment
//! before the drain may not be listed yet, so an empty look counts only once the drain has settled.
//!
//! API calls: `ecs:ListTasks`, `ecs:DescribeTasks`.

use std::time::Duration;

use aws_sdk_ecs::Client;
use chrono::{DateTime, Utc};

use crate::ecs::{self, Found, TaskLeft};
use crate::error::AwsError;

/// Running and pending tasks by the counts, over every registration.
pub fn counted(registrations: &[Found]) -> i64 {
    registrations.iter().map(|f| i64::from(f.running_tasks) + i64::from(f.pending_tasks)).sum()
}

/// Every task not STOPPED on any of the registrations.
pub async fn tasks_left(ecs: &Client, registrations: &[Found]) -> Result<Vec<TaskLeft>, AwsError> {
    let mut left = Vec::new();
    for f in registrations {
        left.extend(ecs::tasks_left(ecs, &f.cluster, &f.container_instance_arn).await?);
    }
    Ok(left)
}

/// Whether an empty look taken `now` can be trusted: the instance has been DRAINING for at least `settle`
/// (ECS stops placing tasks on it once DRAINING, and a task placed just before is listed within that time).
pub fn settled(drained_at: DateTime<Utc>, now: DateTime<Utc>, settle: Duration) -> bool {
    now - drained_at >= chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_look_counts_once_the_drain_has_settled() {
        let t0: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap_or_default();
        let s = Duration::from_secs(10);
        assert!(!settled(t0, t0, s));
        assert!(!settled(t0, t0 + chrono::Duration::seconds(9), s));
        assert!(settled(t0, t0 + chrono::Duration::seconds(10), s));
    }
}
