//! The scale-in decision, a pure function of one cluster's inventory: no AWS calls, no clock.
//!
//! Decisions follow reservations (what the ECS scheduler places tasks by), not measured utilisation:
//!
//! 1. Usable capacity is every ACTIVE instance whose agent is connected.
//! 2. Instances this function drained earlier ("ours") have their tasks placed on the usable capacity,
//!    one task at a time. If they do not fit, or the spare left is under the thresholds, ours go back to
//!    ACTIVE (those with the most room first) until the cluster has its spare capacity again.
//! 3. Ours that run nothing are reaped (terminated with the group's desired capacity decremented), as
//!    far as each group's minimum size allows; the rest wait for their tasks to leave.
//! 4. New removals, at most `max_removals`: candidates ordered empty first, then by the availability zone
//!    with the most instances of its group, then least reserved. A candidate goes only if its tasks fit
//!    on the instances that stay, the spare CPU and memory left stay at or above the thresholds, some
//!    instance can still take the largest task, and its group stays at or above its minimum size.
//!
//! Daemon-service tasks are not counted as load: they run on every instance and leave with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

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

    fn fits_in(self, room: Resources) -> bool {
        self.cpu <= room.cpu && self.memory <= room.memory
    }

    pub fn plus(self, o: Resources) -> Resources {
        Resources::new(self.cpu + o.cpu, self.memory + o.memory)
    }

    fn minus(self, o: Resources) -> Resources {
        Resources::new(self.cpu - o.cpu, self.memory - o.memory)
    }

    fn max(self, o: Resources) -> Resources {
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
    /// ECS status: `ACTIVE`, `DRAINING`, `REGISTERING`, ...
    pub status: String,
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
    fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.pending_tasks == 0
    }

    fn reserved(&self) -> Resources {
        self.tasks.iter().fold(Resources::default(), |sum, t| sum.plus(t.reserved))
    }

    /// The larger of the reserved CPU and memory shares, as cluster-autoscaler measures a node.
    fn reserved_share(&self) -> f64 {
        let share = |used: i64, total: i64| if total > 0 { used as f64 / total as f64 } else { 1.0 };
        let r = self.reserved();
        share(r.cpu, self.registered.cpu).max(share(r.memory, self.registered.memory))
    }

    fn is_ours(&self) -> bool {
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

/// What to do with one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// The plan for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    pub status: String,
    pub tasks: usize,
    pub reserved: Resources,
    pub decision: Decision,
    pub reason: String,
    /// An ACTIVE instance still carries our drain marker (set back to ACTIVE by someone else): the marker
    /// must go, or a later drain by someone else would look like ours.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clear_marker: bool,
    /// Carried out (false in a dry run, and when AWS refused or time ran out).
    pub done: bool,
    /// What went wrong carrying it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

/// Usable capacity as the planner moves tasks around: each instance's remaining room.
#[derive(Debug, Clone)]
struct Pool {
    /// Index into the inventory, registered, remaining.
    room: Vec<(usize, Resources, Resources)>,
}

impl Pool {
    fn new(inv: &Inventory, members: impl Iterator<Item = usize>) -> Self {
        Pool { room: members.map(|i| (i, inv.instances[i].registered, inv.instances[i].remaining)).collect() }
    }

    fn without(&self, index: usize) -> Pool {
        Pool { room: self.room.iter().copied().filter(|(i, _, _)| *i != index).collect() }
    }

    /// Places tasks one by one, largest first, each where it leaves the least room (best fit), so that
    /// large holes stay free for large tasks. `false` if some task fits nowhere.
    fn place(&mut self, tasks: &[Task]) -> bool {
        let mut sorted: Vec<Resources> = tasks.iter().map(|t| t.reserved).collect();
        sorted.sort_by_key(|t| std::cmp::Reverse((t.memory, t.cpu)));
        for task in sorted {
            let best = self
                .room
                .iter_mut()
                .filter(|(_, _, room)| task.fits_in(*room))
                .min_by_key(|(_, _, room)| (room.memory - task.memory, room.cpu - task.cpu));
            match best {
                Some((_, _, room)) => *room = room.minus(task),
                None => return false,
            }
        }
        true
    }

    fn capacity(&self, settings: &Settings, largest_task: Resources) -> Capacity {
        let registered = self.room.iter().fold(Resources::default(), |s, (_, r, _)| s.plus(*r));
        let spare = self.room.iter().fold(Resources::default(), |s, (_, _, r)| s.plus(*r));
        let percent = |total: i64, pct: u32| (total * i64::from(pct) + 99) / 100;
        Capacity {
            instances: self.room.len(),
            registered,
            spare,
            required: Resources::new(
                percent(registered.cpu, settings.reserve_cpu_percent),
                percent(registered.memory, settings.reserve_memory_percent),
            ),
            largest_task,
        }
    }

    /// Why the pool does not meet the thresholds, if it does not.
    fn shortfall(&self, settings: &Settings, largest_task: Resources) -> Option<String> {
        let c = self.capacity(settings, largest_task);
        // Exact integer comparison: spare * 100 >= percent * registered.
        let short = |spare: i64, total: i64, pct: u32| spare * 100 < i64::from(pct) * total;
        if short(c.spare.cpu, c.registered.cpu, settings.reserve_cpu_percent) {
            return Some(format!(
                "spare CPU would be {} of {} units, under RESERVE_CPU_PERCENT={}",
                c.spare.cpu, c.registered.cpu, settings.reserve_cpu_percent
            ));
        }
        if short(c.spare.memory, c.registered.memory, settings.reserve_memory_percent) {
            return Some(format!(
                "spare memory would be {} of {} MiB, under RESERVE_MEMORY_PERCENT={}",
                c.spare.memory, c.registered.memory, settings.reserve_memory_percent
            ));
        }
        if largest_task != Resources::default()
            && !self.room.iter().any(|(_, _, room)| largest_task.fits_in(*room))
        {
            return Some(format!(
                "no instance would have room for the largest task ({} CPU units, {} MiB)",
                largest_task.cpu, largest_task.memory
            ));
        }
        None
    }
}

/// Plans one cluster. `now` is the time of the run, for instance ages.
pub fn plan(inv: &Inventory, settings: &Settings, now: DateTime<Utc>) -> Plan {
    let n = inv.instances.len();
    let mut decisions: Vec<Option<(Decision, String)>> = vec![None; n];
    let mut clear_marker = vec![false; n];
    let largest_task = inv
        .instances
        .iter()
        .flat_map(|i| i.tasks.iter())
        .fold(Resources::default(), |m, t| m.max(t.reserved));

    // Group budgets: how many more instances each group may lose before reaching its minimum size. Ours
    // still draining are in the desired capacity and will leave it when reaped.
    let mut budget: HashMap<&str, i64> = inv
        .groups
        .iter()
        .map(|(name, g)| (name.as_str(), i64::from(g.desired_capacity - g.min_size)))
        .collect();

    let mut usable = Vec::new();
    let mut ours = Vec::new();
    for (i, inst) in inv.instances.iter().enumerate() {
        match inst.status.as_str() {
            "ACTIVE" if !inst.agent_connected => {
                decisions[i] =
                    Some((Decision::Skip, "ECS agent disconnected: state unknown, not counted".into()));
            }
            "ACTIVE" => {
                usable.push(i);
                clear_marker[i] = inst.is_ours();
            }
            "DRAINING" if !inst.is_ours() => {
                decisions[i] = Some((Decision::Skip, "DRAINING, not by this function".into()));
            }
            "DRAINING" if !inst.agent_connected => {
                decisions[i] = Some((
                    Decision::Skip,
                    "drained by this function, but the ECS agent is disconnected".into(),
                ));
            }
            "DRAINING" => ours.push(i),
            other => decisions[i] = Some((Decision::Skip, format!("ECS status {other}"))),
        }
    }

    // Ours that can no longer leave through their group go back to work.
    ours.retain(|&i| {
        let why = leave_blocker(inv, &inv.instances[i], settings, &mut budget);
        if let Some(why) = &why {
            decisions[i] = Some((Decision::Reactivate, why.clone()));
            usable.push(i);
        }
        why.is_none()
    });

    // Ours whose tasks no longer fit, or whose absence leaves too little spare: most room back first.
    ours.sort_by_key(|&i| {
        let r = inv.instances[i].remaining;
        (std::cmp::Reverse(r.memory), std::cmp::Reverse(r.cpu), i)
    });
    let mut pool = Pool::new(inv, usable.iter().copied());
    loop {
        let mut trial = pool.clone();
        let placed = ours.iter().all(|&i| trial.place(&inv.instances[i].tasks));
        let shortfall = if placed {
            trial.shortfall(settings, largest_task)
        } else {
            Some("the tasks of the instances it drained would not fit elsewhere".into())
        };
        match shortfall {
            None => {
                pool = trial;
                break;
            }
            Some(why) if !ours.is_empty() => {
                let i = ours.remove(0);
                if let Some(m) = &inv.instances[i].membership {
                    *budget.entry(m.group.as_str()).or_default() += 1;
                }
                decisions[i] = Some((Decision::Reactivate, format!("capacity needed again: {why}")));
                usable.push(i);
                pool = Pool::new(inv, usable.iter().copied());
            }
            Some(_) => break,
        }
    }
    for &i in &ours {
        decisions[i] = Some(if inv.instances[i].is_empty() {
            (Decision::Reap, "drained by this function and now empty".into())
        } else {
            let pending = usize::try_from(inv.instances[i].pending_tasks).unwrap_or(0);
            let count = inv.instances[i].tasks.len().max(pending);
            (Decision::Wait, format!("drained by this function; {count} task(s) still on it"))
        });
    }
    let before = pool.capacity(settings, largest_task);
    let short_before = pool.shortfall(settings, largest_task);

    // New removals.
    let mut candidates = Vec::new();
    for &i in &usable {
        if decisions[i].is_some() {
            continue;
        }
        match removal_blocker(inv, &inv.instances[i], settings, now) {
            Some(why) => decisions[i] = Some((Decision::Skip, why)),
            None => candidates.push(i),
        }
    }
    let mut staying: HashMap<(&str, &str), i64> = HashMap::new();
    for (i, inst) in inv.instances.iter().enumerate() {
        let leaving = matches!(decisions[i], Some((Decision::Reap | Decision::Wait, _)));
        if let (Some(m), false) = (&inst.membership, leaving) {
            *staying.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() += 1;
        }
    }
    let mut removals = 0;
    while !candidates.is_empty() {
        let most_in_az = |i: usize| -> bool {
            let Some(m) = &inv.instances[i].membership else { return false };
            let here = staying.get(&(m.group.as_str(), m.availability_zone.as_str())).copied().unwrap_or(0);
            let most = staying.iter().filter(|((g, _), _)| *g == m.group).map(|(_, c)| *c).max().unwrap_or(0);
            here >= most
        };
        let Some(pos) = (0..candidates.len()).min_by(|&a, &b| {
            let (ia, ib) = (&inv.instances[candidates[a]], &inv.instances[candidates[b]]);
            (!ia.is_empty(), !most_in_az(candidates[a]))
                .cmp(&(!ib.is_empty(), !most_in_az(candidates[b])))
                .then(ia.reserved_share().total_cmp(&ib.reserved_share()))
                .then(ia.tasks.len().cmp(&ib.tasks.len()))
                .then(ia.registered_at.cmp(&ib.registered_at))
                .then(ia.container_instance_arn.cmp(&ib.container_instance_arn))
        }) else {
            break;
        };
        let i = candidates.remove(pos);
        let inst = &inv.instances[i];
        if let Some(why) = &short_before {
            decisions[i] = Some((Decision::Keep, format!("the cluster is short of spare capacity: {why}")));
            continue;
        }
        if removals >= settings.max_removals {
            decisions[i] =
                Some((Decision::Keep, format!("MAX_REMOVALS_PER_RUN={} reached", settings.max_removals)));
            continue;
        }
        let group = inst.membership.as_ref().map(|m| m.group.as_str()).unwrap_or_default();
        if budget.get(group).copied().unwrap_or(0) <= 0 {
            let min = inv.groups.get(group).map(|g| g.min_size).unwrap_or_default();
            decisions[i] =
                Some((Decision::Keep, format!("group {group} would go under its minimum size {min}")));
            continue;
        }
        let mut trial = pool.without(i);
        let why_not = if trial.place(&inst.tasks) {
            trial.shortfall(settings, largest_task)
        } else {
            Some(format!("its {} task(s) would not all fit on the other instances", inst.tasks.len()))
        };
        match why_not {
            Some(why) => decisions[i] = Some((Decision::Keep, why)),
            None => {
                pool = trial;
                removals += 1;
                *budget.entry(group).or_default() -= 1;
                if let Some(m) = &inst.membership {
                    *staying.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() -= 1;
                }
                decisions[i] = Some(if inst.is_empty() {
                    (Decision::Terminate, "empty, and the spare capacity left meets the thresholds".into())
                } else {
                    (
                        Decision::Drain,
                        format!(
                            "{:.0}% reserved; its tasks fit elsewhere and the spare left meets the thresholds",
                            inst.reserved_share() * 100.0
                        ),
                    )
                });
            }
        }
    }

    let after = pool.capacity(settings, largest_task);
    let entries = inv
        .instances
        .iter()
        .zip(decisions)
        .zip(clear_marker)
        .map(|((inst, d), clear)| {
            let (decision, reason) = d.unwrap_or((Decision::Keep, String::new()));
            Entry {
                container_instance_arn: inst.container_instance_arn.clone(),
                ec2_instance_id: inst.ec2_instance_id.clone(),
                group: inst.membership.as_ref().map(|m| m.group.clone()),
                availability_zone: inst.membership.as_ref().map(|m| m.availability_zone.clone()),
                status: inst.status.clone(),
                tasks: inst.tasks.len(),
                reserved: inst.reserved(),
                decision,
                reason,
                clear_marker: clear && decision != Decision::Terminate && decision != Decision::Drain,
                done: false,
                error: None,
            }
        })
        .collect();
    Plan { before, after, entries }
}

/// Why one of ours cannot be reaped through its group (and so goes back to ACTIVE); takes its place in
/// the group's budget when it can.
fn leave_blocker<'a>(
    inv: &'a Inventory,
    inst: &'a Instance,
    settings: &Settings,
    budget: &mut HashMap<&'a str, i64>,
) -> Option<String> {
    let Some(m) = &inst.membership else {
        return Some("no longer in an Auto Scaling group, so it cannot be terminated through one".into());
    };
    let Some(group) = inv.groups.get(&m.group) else {
        return Some(format!("group {} not found", m.group));
    };
    if !allowed(settings, &m.group) {
        return Some(format!("group {} is not in AUTO_SCALING_GROUPS", m.group));
    }
    if let Some(cp) = &group.managed_by {
        return Some(format!("group {} is now scaled by capacity provider {cp}", m.group));
    }
    if m.protected_from_scale_in {
        return Some("protected from scale-in since it was drained".into());
    }
    let slot = budget.entry(m.group.as_str()).or_default();
    if *slot <= 0 {
        return Some(format!("group {} is at its minimum size {}", m.group, group.min_size));
    }
    *slot -= 1;
    None
}

fn allowed(settings: &Settings, group: &str) -> bool {
    settings.groups.is_empty() || settings.groups.iter().any(|g| g == group)
}

/// Why an ACTIVE instance may not be removed at all, if it may not.
fn removal_blocker(
    inv: &Inventory,
    inst: &Instance,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(m) = &inst.membership else {
        return Some("not in an Auto Scaling group".into());
    };
    let Some(group) = inv.groups.get(&m.group) else {
        return Some(format!("group {} not found", m.group));
    };
    if !allowed(settings, &m.group) {
        return Some(format!("group {} is not in AUTO_SCALING_GROUPS", m.group));
    }
    if let Some(cp) = &group.managed_by {
        return Some(format!(
            "group {} is scaled by capacity provider {cp} (managed scaling); the two would fight",
            m.group
        ));
    }
    if m.protected_from_scale_in {
        return Some("protected from scale-in".into());
    }
    if m.lifecycle_state != "InService" {
        return Some(format!("lifecycle state {}", m.lifecycle_state));
    }
    match inst.registered_at {
        None => Some("registration time unknown".into()),
        Some(at) if now - at < settings.min_instance_age => Some(format!(
            "registered {} min ago, younger than MIN_INSTANCE_AGE_MINUTES={}",
            (now - at).num_minutes(),
            settings.min_instance_age.num_minutes()
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests;
