//! What the planner reads (one cluster's inventory) and what it writes (a decision per instance).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::ecs::InstanceStatus;

pub use super::reason::Reason;
use super::service::Service;
use super::window::Windows;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A static host port (`PORTS` / `PORTS_UDP` in an instance's resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub port: u16,
    pub protocol: Protocol,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = if self.protocol == Protocol::Tcp { "tcp" } else { "udp" };
        write!(f, "{}/{p}", self.port)
    }
}

/// What a task needs of the instance it runs on beyond CPU and memory: what ECS checks when it places
/// the task's replacement (task definition, service).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Needs {
    /// Static host ports (bridge or host network mode with a fixed `hostPort`).
    pub ports: Vec<HostPort>,
    pub gpus: u32,
    /// `awsvpc` network mode: one network interface of its own.
    pub awsvpc: bool,
    /// Its task definition's `requiresAttributes` (the capabilities ECS found it uses, such as
    /// `ecs.capability.task-eni`): each must be on the instance, with this value when one is given.
    pub requires: Vec<(String, Option<String>)>,
    /// `memberOf` expressions of its task definition and its service.
    pub member_of: Vec<String>,
    /// Its service has the `distinctInstance` constraint.
    pub distinct_instance: bool,
    /// Its service spreads over availability zones (ECS's default for services).
    pub az_spread: bool,
    /// The capacity providers its service's strategy can place it on (weight or base above 0, or the
    /// strategy's only one); `None`: any instance (a launch type, or a task of no service).
    pub providers: Option<Vec<String>>,
}

/// A task that would have to run elsewhere if its instance went away.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Task {
    pub arn: String,
    /// `service:<name>` for a service's task, `family:<name>` or what its starter set otherwise.
    pub group: Option<String>,
    pub reserved: Resources,
    /// Shared by the tasks of one revision and group.
    pub needs: Arc<Needs>,
    /// ECS task scale-in protection is on.
    pub protected: bool,
}

impl Task {
    pub fn service(&self) -> Option<&str> {
        self.group.as_deref().and_then(|g| g.strip_prefix("service:"))
    }
}

/// The services whose tasks left an instance, as far as ECS tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departed {
    Known(BTreeSet<String>),
    /// ECS listed a stopped task on it that it could not describe: which service it was is not known.
    Unknown,
}

/// An instance's place in its Auto Scaling group.
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
    /// Host ports in use (`remainingResources` lists the reserved ones).
    pub ports_used: BTreeSet<HostPort>,
    /// GPUs no task has reserved.
    pub gpus_free: u32,
    /// Its attributes (`ecs.instance-type`, `ecs.availability-zone`, custom ones); some have no value.
    pub attributes: BTreeMap<String, Option<String>>,
    /// The capacity provider it is associated with (`capacityProviderName`), if any.
    pub capacity_provider: Option<String>,
    /// Its ECS agent's version (`versionInfo.agentVersion`).
    pub agent_version: Option<String>,
    pub running_tasks: i32,
    /// `pendingTasksCount`: tasks placed but not running yet.
    pub pending_tasks: i32,
    /// Tasks with desired status RUNNING, daemon-service tasks left out; `None` when not read this run.
    pub tasks: Option<Vec<Task>>,
    /// When this function set it DRAINING, if it did (our held marker: see `shared::drain::marker`).
    pub drained_by_us_at: Option<DateTime<Utc>>,
    /// It carries a marker of this function, held or pending: one on an ACTIVE instance is stale.
    pub carries_our_marker: bool,
    /// When a drain of it by this function last stalled and was undone.
    pub stalled_at: Option<DateTime<Utc>>,
    /// The services of tasks ECS lists as stopped on it; read only for those this function drained that
    /// now run nothing.
    pub departed: Option<Departed>,
    /// ECS listed a task on it that DescribeTasks could not describe this run (one just placed: the ECS
    /// API is eventually consistent); its tasks stay unknown until a later run.
    pub undescribed: bool,
    /// `None` when the instance is in no Auto Scaling group.
    pub membership: Option<Membership>,
}

impl Instance {
    /// Known to run nothing (daemon tasks aside).
    pub fn is_empty(&self) -> bool {
        self.tasks.as_ref().is_some_and(Vec::is_empty) && self.pending_tasks == 0
    }

    /// What ECS has reserved on it (daemon tasks included).
    pub fn reserved(&self) -> Resources {
        self.registered.minus(self.remaining)
    }

    pub fn task_count(&self) -> usize {
        self.tasks.as_ref().map_or(usize::try_from(self.running_tasks).unwrap_or(0), Vec::len)
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

    /// As the drain core reads a container instance.
    pub fn found(&self, cluster: &str) -> shared::ecs::Found {
        shared::ecs::Found {
            cluster: cluster.to_owned(),
            container_instance_arn: self.container_instance_arn.clone(),
            ec2_instance_id: self.ec2_instance_id.clone(),
            status: self.status,
            running_tasks: self.running_tasks,
            pending_tasks: self.pending_tasks,
            agent_connected: self.agent_connected,
            attributes: self.attributes.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect(),
        }
    }

    /// When our drain began.
    pub fn drained_at(&self) -> Option<DateTime<Utc>> {
        self.drained_by_us_at
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(|v| v.as_deref())
    }

    /// Its availability zone, as ECS places by it (the attribute), else as Auto Scaling reports it.
    pub fn zone(&self) -> Option<&str> {
        self.attribute("ecs.availability-zone")
            .or_else(|| self.membership.as_ref().map(|m| m.availability_zone.as_str()))
    }
}

/// An Auto Scaling group's sizes and who scales it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub min_size: i32,
    pub desired_capacity: i32,
    /// The ECS capacity provider with managed scaling that owns this group's desired capacity, if any.
    pub managed_by: Option<String>,
    /// Instances it is launching now: `Pending`, `Pending:Wait`, `Pending:Proceed`, or asked for by its
    /// desired capacity and not listed yet.
    pub launching: usize,
}

/// Everything the planner looks at for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub instances: Vec<Instance>,
    /// By group name.
    pub groups: BTreeMap<String, Group>,
    /// Task groups (`service:<name>`) of the cluster's daemon services.
    pub daemon_groups: BTreeSet<String>,
    /// Replica services by name.
    pub services: BTreeMap<String, Service>,
    /// For each task group with `distinctInstance`, the container instances running one of its tasks.
    pub hosts: BTreeMap<String, BTreeSet<String>>,
    /// The largest CPU and memory of the replica services' task definitions.
    pub largest_service_task: Resources,
    /// What the daemon services' task definitions reserve together: at most what daemon tasks hold on one
    /// instance (their tasks leave with it; the others must move).
    pub daemon_share: Resources,
    /// Services ECS listed but could not describe this run (their rules are not known).
    pub undescribed_services: BTreeSet<String>,
    /// Capacity providers without an Auto Scaling group (ECS Managed Instances): their instances take
    /// only tasks whose strategy names them, never a launch type's.
    pub exclusive_providers: BTreeSet<String>,
}

impl Inventory {
    /// Every instance as the drain core reads it, by container instance ARN.
    pub fn found(&self, cluster: &str) -> std::collections::HashMap<String, shared::ecs::Found> {
        self.instances.iter().map(|i| (i.container_instance_arn.clone(), i.found(cluster))).collect()
    }
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
    /// No new removal in a group for this long after it launched an instance.
    pub cooldown: Duration,
    /// When removals may happen.
    pub windows: Windows,
    /// New removals per run and group, in percent of its desired capacity (rounded up).
    pub budget_percent: u32,
    /// A drain of ours whose services could place nothing for this long is undone.
    pub stalled_after: Duration,
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
    /// Drained by us earlier, needed again (or stalled): back to ACTIVE.
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
    /// Described again right before the drain, it had changed since the plan: not drained; the next run
    /// plans with what it is now.
    Cancelled(String),
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
    pub reason: Reason,
    /// The reason in a sentence, with the numbers.
    pub detail: String,
    /// An ACTIVE instance still carries our drain marker (set back to ACTIVE by someone else): the marker
    /// must go, or a later drain by someone else would look like ours.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clear_marker: bool,
    /// It carries our stalled-drain marker and that is older than the time it keeps an instance out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clear_stalled: bool,
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
    /// The largest CPU and the largest memory reservation of a replica service's task (its definition, or
    /// a task of it read); some instance must have room for both at once.
    pub largest_task: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Before anything is done, ours still draining counted as gone and their tasks placed elsewhere.
    pub before: Capacity,
    /// Once the plan is carried out.
    pub after: Capacity,
    pub entries: Vec<Entry>,
    /// Container instances whose tasks the plan needed and did not have: read them and plan again.
    #[serde(skip)]
    pub wanted: Vec<String>,
}

impl Plan {
    pub fn count(&self, decision: Decision) -> usize {
        self.entries.iter().filter(|e| e.decision == decision).count()
    }
}
