//! What the planner reads (one cluster's inventory) and what it writes (a decision per instance).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::ecs::InstanceStatus;

/// CPU units (1024 per vCPU) and MiB, as ECS reports `registeredResources` and `remainingResources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
}

impl Resources {
    pub const fn new(cpu: i64, memory: i64) -> Self {
        Resources { cpu, memory }
    }

    pub fn fits_in(self, room: Resources) -> bool {
        self.cpu <= room.cpu && self.memory <= room.memory
    }

    pub fn plus(self, o: Resources) -> Resources {
        Resources::new(self.cpu + o.cpu, self.memory + o.memory)
    }

    pub fn minus(self, o: Resources) -> Resources {
        Resources::new(self.cpu - o.cpu, self.memory - o.memory)
    }

    pub fn max(self, o: Resources) -> Resources {
        Resources::new(self.cpu.max(o.cpu), self.memory.max(o.memory))
    }
}

/// A task that would have to run elsewhere if its instance went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub reserved: Resources,
}

/// An instance's place in its Auto Scaling group (`DescribeAutoScalingInstances`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group: String,
    pub availability_zone: String,
    /// `InService`, `Terminating:Wait`, `Standby`, ...
    pub lifecycle_state: String,
    pub protected_from_scale_in: bool,
}

/// One container instance, as read from ECS and Auto Scaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub registered_at: Option<DateTime<Utc>>,
    pub registered: Resources,
    pub remaining: Resources,
    /// Tasks with desired status RUNNING, daemon-service tasks left out.
    pub tasks: Vec<Task>,
    /// `pendingTasksCount`: tasks placed but not yet running, not listed in `tasks` yet.
    pub pending_tasks: i32,
    /// When this function set it DRAINING (its marker attribute), if it did.
    pub drained_by_us_at: Option<String>,
    /// `None` when the instance is in no Auto Scaling group.
    pub membership: Option<Membership>,
}

impl Instance {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.pending_tasks == 0
    }

    pub fn reserved(&self) -> Resources {
        self.tasks.iter().fold(Resources::default(), |sum, t| sum.plus(t.reserved))
    }

    /// The larger of the reserved CPU and memory shares, as cluster-autoscaler measures a node.
    pub fn reserved_share(&self) -> f64 {
        let share = |used: i64, total: i64| if total > 0 { used as f64 / total as f64 } else { 1.0 };
        let r = self.reserved();
        share(r.cpu, self.registered.cpu).max(share(r.memory, self.registered.memory))
    }

    pub fn is_ours(&self) -> bool {
        self.drained_by_us_at.is_some()
    }
}

/// An Auto Scaling group's sizes (`DescribeAutoScalingGroups`) and who scales it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub min_size: i32,
    pub desired_capacity: i32,
    /// The ECS capacity provider with managed scaling that owns this group's desired capacity, if any.
    pub managed_by: Option<String>,
}

/// Everything the planner looks at for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub instances: Vec<Instance>,
    /// By group name.
    pub groups: BTreeMap<String, Group>,
    /// Task groups (`service:<name>`) of the cluster's daemon services.
    pub daemon_groups: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Spare CPU to keep, in percent of the registered CPU of the instances that stay.
    pub reserve_cpu_percent: u32,
    pub reserve_memory_percent: u32,
    /// New removals (drains and terminations) per run; reaping what was drained before is not limited.
    pub max_removals: usize,
    /// Instances registered more recently than this are left alone.
    pub min_instance_age: Duration,
    /// The Auto Scaling groups it may shrink; empty means any group behind the cluster.
    pub groups: Vec<String>,
}

impl Settings {
    /// Whether this function may shrink `group`.
    pub fn allows(&self, group: &str) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| g == group)
    }
}

/// What to do with one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Decision {
    /// Empty: set DRAINING, check it is still empty, terminate through its group.
    Terminate,
    /// Runs tasks: set DRAINING now, reap on a later run.
    Drain,
    /// Drained by us earlier and now empty: terminate through its group.
    Reap,
    /// Drained by us earlier, needed again: back to ACTIVE.
    Reactivate,
    /// Drained by us earlier, tasks still leaving.
    Wait,
    /// Stays as it is; the reason says why it is not removed.
    Keep,
    /// Not ours to touch (protected, too young, agent disconnected, ...).
    Skip,
}

impl Decision {
    /// Whether carrying out the decision changes AWS state.
    pub fn mutates(self) -> bool {
        matches!(self, Decision::Terminate | Decision::Drain | Decision::Reap | Decision::Reactivate)
    }
}

/// How far carrying out a decision got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Progress {
    /// Not carried out: a dry run, a decision that changes nothing, or Lambda's deadline came first.
    Planned,
    Done,
    /// Tasks were on it when it was to be terminated: a `terminate` got as far as the drain, a `reap`
    /// waits; the next run reaps it once they are gone.
    Deferred {
        tasks: usize,
    },
    /// AWS refused it as part of normal operation (the group reached its minimum size meanwhile): the
    /// next run sees the new state. Not a failure of the run.
    Refused(String),
    /// What went wrong carrying it out.
    Failed(String),
}

/// The plan for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    pub status: InstanceStatus,
    pub tasks: usize,
    pub reserved: Resources,
    pub decision: Decision,
    pub reason: String,
    /// An ACTIVE instance still carries our drain marker (set back to ACTIVE by someone else): the marker
    /// must go, or a later drain by someone else would look like ours.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clear_marker: bool,
    pub progress: Progress,
}

impl Entry {
    pub fn done(&self) -> bool {
        self.progress == Progress::Done
    }

    /// What was carried out: the decision when done; a drain, for a termination deferred by tasks that
    /// arrived; a wait, for a reap deferred by tasks still stopping. `None` when nothing changed.
    pub fn applied(&self) -> Option<Decision> {
        match (self.decision, &self.progress) {
            (Decision::Wait, _) => Some(Decision::Wait),
            (d, Progress::Done) => Some(d),
            (Decision::Terminate, Progress::Deferred { .. }) => Some(Decision::Drain),
            (Decision::Reap, Progress::Deferred { .. }) => Some(Decision::Wait),
            _ => None,
        }
    }
}

/// Spare capacity over the usable instances, and what the thresholds ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub instances: usize,
    pub registered: Resources,
    pub spare: Resources,
    /// The spare the thresholds require: the reserve percentages of `registered`.
    pub required: Resources,
    /// The largest CPU and the largest memory reservation of any running task; some instance must have
    /// room for both at once.
    pub largest_task: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Before anything is done, ours still draining counted as gone and their tasks placed elsewhere.
    pub before: Capacity,
    /// Once the plan is carried out.
    pub after: Capacity,
    pub entries: Vec<Entry>,
}

impl Plan {
    pub fn count(&self, decision: Decision) -> usize {
        self.entries.iter().filter(|e| e.decision == decision).count()
    }
}
