//! What the planner knows of a service: its deployment, its placement events, its task counts and the
//! deployment configuration ECS replaces its drained tasks by.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// "(service x) has started n tasks: ..."
    Started,
    /// "(service x) was unable to place a task because ..."
    UnableToPlace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
}

/// What the planner needs of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// Why its deployment counts as in progress, if it does.
    pub deployment: Option<String>,
    /// Its recent placement events, newest first.
    pub events: Vec<ServiceEvent>,
    /// Its task counts and deployment configuration (replica services).
    pub counts: Option<Counts>,
}

/// A replica service's tasks, and the deployment configuration ECS replaces a drained task by
/// ("Draining Amazon ECS container instances": "The service scheduler attempts to replace the tasks
/// according to the service's deployment type and deployment configuration parameters,
/// minimumHealthyPercent and maximumPercent").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub minimum_healthy_percent: i32,
    pub maximum_percent: i32,
}

impl Counts {
    /// ECS may stop a task before its replacement runs: the RUNNING tasks stay at or above the minimum
    /// ("a minimum of 50% allows the scheduler to stop two existing tasks before starting two new tasks").
    pub fn stop_first(&self) -> bool {
        let minimum = (i64::from(self.desired) * i64::from(self.minimum_healthy_percent) + 99) / 100;
        i64::from(self.running) > minimum
    }

    /// ECS may start a replacement before it stops the task: RUNNING and PENDING stay within the maximum
    /// ("an upper limit on the number of running tasks during task replacement").
    pub fn start_first(&self) -> bool {
        let maximum = i64::from(self.desired) * i64::from(self.maximum_percent) / 100;
        i64::from(self.running) + i64::from(self.pending) < maximum
    }
}
