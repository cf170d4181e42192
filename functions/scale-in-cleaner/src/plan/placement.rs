//! The instances that stay, as the planner moves tasks onto them: each one's room, and the checks ECS
//! makes before it places a task ("Identify the container instances that satisfy the CPU, GPU, memory,
//! and port requirements in the task definition; ... that satisfy the task placement constraints; ...
//! the task placement strategies", task-placement-strategies.html), in that order, so that the reason a
//! task fits nowhere names the first requirement no instance meets.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use super::eni::awsvpc_task_limit;
use super::model::{Capacity, HostPort, Inventory, Reason, Resources, Settings, Task};
use super::query::{self, Expr, Facts};

/// Why a set of tasks cannot move, or why the instances that stay would be too few.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: Reason,
    pub detail: String,
}

fn blocked<T>(reason: Reason, detail: String) -> Result<T, Blocked> {
    Err(Blocked { reason, detail })
}

/// `memberOf` expressions, each parsed once per plan.
#[derive(Debug, Default)]
pub struct Queries(HashMap<String, Result<Rc<Expr>, String>>);

impl Queries {
    fn get(&mut self, text: &str) -> Result<Rc<Expr>, String> {
        self.0.entry(text.to_owned()).or_insert_with(|| query::parse(text).map(Rc::new)).clone()
    }
}

/// How strictly tasks are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A candidate's tasks, before anything is drained: every requirement, zones kept balanced, an
    /// `awsvpc` task kept in its zone, and a constraint that cannot be evaluated keeps the instance.
    Candidate,
    /// Tasks of a drain already under way: ECS moves them wherever its binding rules allow (spread is
    /// best effort), so only those are checked; one this function cannot evaluate is left to the
    /// stalled-drain rule rather than undo the drain on a guess.
    Draining,
}

#[derive(Debug, Clone)]
struct Slot {
    /// Index into the inventory.
    index: usize,
    registered: Resources,
    room: Resources,
    ports: BTreeSet<HostPort>,
    gpus: u32,
    /// More tasks it can take in `awsvpc` mode; `None` when its instance type's limit is unknown.
    enis: Option<i64>,
    /// Task groups the plan moved onto it.
    groups: BTreeSet<String>,
    /// The tasks the plan moved onto it: should it go too, they must find a place again.
    moved_in: Vec<Task>,
}

#[derive(Debug, Clone)]
pub struct Pool {
    slots: Vec<Slot>,
}

impl Slot {
    /// Whether its instance matches a `memberOf` expression, with the tasks the plan moved onto it.
    fn matches(&self, inv: &Inventory, expr: &Expr) -> bool {
        let inst = &inv.instances[self.index];
        let runs_group = |g: &str| {
            let there = inv.hosts.get(g).map(|h| h.contains(&inst.container_instance_arn));
            match (there, self.groups.contains(g)) {
                (Some(true), _) => Some(true),
                (Some(false), false) => Some(false),
                // A task of the group moves here with the plan: ECS may place this one before it arrives.
                _ => None,
            }
        };
        let running = i64::from(inst.running_tasks);
        let facts = Facts {
            ec2_instance_id: &inst.ec2_instance_id,
            agent_connected: inst.agent_connected,
            attributes: &inst.attributes,
            agent_version: inst.agent_version.as_deref(),
            registered_at: inst.registered_at,
            running_tasks: (running, running + i64::try_from(self.moved_in.len()).unwrap_or(i64::MAX)),
            runs_group: &runs_group,
        };
        expr.matches(&facts)
    }
}

impl Pool {
    pub fn new(inv: &Inventory, members: impl Iterator<Item = usize>) -> Self {
        let slots = members
            .map(|i| {
                let inst = &inv.instances[i];
                let trunk = inst.attributes.contains_key("ecs.awsvpc-trunk-id");
                let limit = inst.attribute("ecs.instance-type").and_then(|t| awsvpc_task_limit(t, trunk));
                // Which of its tasks use a network interface is known only for the instances whose tasks
                // were read: count every task on it as one, which is never too few.
                let busy = i64::from(inst.running_tasks) + i64::from(inst.pending_tasks);
                Slot {
                    index: i,
                    registered: inst.registered,
                    room: inst.remaining,
                    ports: inst.ports_used.clone(),
                    gpus: inst.gpus_free,
                    enis: limit.map(|l| i64::from(l) - busy),
                    groups: BTreeSet::new(),
                    moved_in: Vec::new(),
                }
            })
            .collect();
        Pool { slots }
    }

    /// The pool without an instance, and the tasks the plan had moved onto it: they leave with it, so
    /// they must be placed again along with its own.
    pub fn without(&self, index: usize) -> (Pool, Vec<Task>) {
        let moved_in =
            self.slots.iter().filter(|s| s.index == index).flat_map(|s| s.moved_in.clone()).collect();
        (Pool { slots: self.slots.iter().filter(|s| s.index != index).cloned().collect() }, moved_in)
    }

    /// Places tasks one by one, largest first, each where it leaves the least room (best fit), so that
    /// large holes stay free for large tasks. `from`: the zone they leave.
    pub fn place(
        &mut self,
        inv: &Inventory,
        tasks: &[Task],
        from: Option<&str>,
        mode: Mode,
        queries: &mut Queries,
    ) -> Result<(), Blocked> {
        let mut sorted: Vec<&Task> = tasks.iter().collect();
        sorted.sort_by_key(|t| std::cmp::Reverse((t.reserved.memory, t.reserved.cpu)));
        for task in sorted {
            let s = self.choose(inv, task, from, mode, queries)?;
            let slot = &mut self.slots[s];
            slot.room = slot.room.minus(task.reserved);
            slot.ports.extend(task.needs.ports.iter().copied());
            slot.gpus = slot.gpus.saturating_sub(task.needs.gpus);
            slot.enis = slot.enis.map(|e| e - 1);
            slot.groups.extend(task.group.clone());
            slot.moved_in.push(task.clone());
        }
        Ok(())
    }

    /// The slot a task goes to, or the first requirement no slot meets.
    fn choose(
        &self,
        inv: &Inventory,
        task: &Task,
        from: Option<&str>,
        mode: Mode,
        queries: &mut Queries,
    ) -> Result<usize, Blocked> {
        let needs = &task.needs;
        let name = task.group.as_deref().unwrap_or(&task.arn);
        let strict = mode == Mode::Candidate;
        let mut exprs = Vec::new();
        for text in &needs.member_of {
            let located =
                |e: &Rc<Expr>| match e.task_groups().into_iter().find(|g| !inv.hosts.contains_key(g)) {
                    Some(g) => Err(format!("where the tasks of group {g} run is not known")),
                    None => Ok(e.clone()),
                };
            match queries.get(text).and_then(|e| located(&e)) {
                Ok(e) => exprs.push((text, e)),
                Err(why) if strict => {
                    return blocked(
                        Reason::ConstraintUnknown,
                        format!("a task of {name} has memberOf({text}), which cannot be evaluated: {why}"),
                    );
                }
                Err(_) => {}
            }
        }
        let group = task.group.as_deref().unwrap_or_default();
        let hosts = match (needs.distinct_instance, inv.hosts.get(group)) {
            (false, _) => None,
            (true, Some(h)) => Some(h),
            (true, None) if strict => {
                return blocked(
                    Reason::ConstraintUnknown,
                    format!("{name} has distinctInstance, and where its tasks run is not known"),
                );
            }
            (true, None) => None,
        };

        let r = task.reserved;
        let mut c: Vec<usize> = (0..self.slots.len()).filter(|&s| r.fits_in(self.slots[s].room)).collect();
        if c.is_empty() {
            let why = format!(
                "a task of {name} ({} CPU units, {} MiB) fits on no instance that stays",
                r.cpu, r.memory
            );
            return blocked(Reason::NoRoom, why);
        }
        if let Some(providers) = &needs.providers {
            c.retain(|&s| {
                inv.instances[self.slots[s].index]
                    .capacity_provider
                    .as_ref()
                    .is_some_and(|p| providers.contains(p))
            });
            if c.is_empty() {
                let why = format!(
                    "a task of {name} goes only to capacity provider {} (its strategy), where no instance that stays has room",
                    providers.join(" or ")
                );
                return blocked(Reason::CapacityProviderStrategy, why);
            }
        }
        if needs.gpus > 0 {
            c.retain(|&s| self.slots[s].gpus >= needs.gpus);
            if c.is_empty() {
                let why =
                    format!("a task of {name} needs {} GPU(s), free on no instance with room", needs.gpus);
                return blocked(Reason::Gpu, why);
            }
        }
        if !needs.ports.is_empty() {
            c.retain(|&s| needs.ports.iter().all(|p| !self.slots[s].ports.contains(p)));
            if c.is_empty() {
                let ports: Vec<String> = needs.ports.iter().map(HostPort::to_string).collect();
                let why = format!(
                    "a task of {name} needs host port {}, in use on every instance with room",
                    ports.join(", ")
                );
                return blocked(Reason::PortConflict, why);
            }
        }
        if needs.awsvpc {
            c.retain(|&s| self.slots[s].enis.is_some_and(|e| e >= 1));
            if c.is_empty() {
                let why = format!(
                    "a task of {name} (awsvpc) needs a network interface: none free on an instance with room, \
                     or its instance type's limit is not known"
                );
                return blocked(Reason::Eni, why);
            }
        }
        for (attribute, value) in &needs.requires {
            c.retain(|&s| match inv.instances[self.slots[s].index].attributes.get(attribute) {
                Some(has) => value.is_none() || has == value,
                None => false,
            });
            if c.is_empty() {
                let wanted = value.as_ref().map_or_else(|| attribute.clone(), |v| format!("{attribute}={v}"));
                let why =
                    format!("a task of {name} requires attribute {wanted}: no instance with room has it");
                return blocked(Reason::RequiredAttribute, why);
            }
        }
        for (text, expr) in &exprs {
            c.retain(|&s| self.slots[s].matches(inv, expr));
            if c.is_empty() {
                let why = format!("a task of {name} has memberOf({text}): no instance with room matches");
                return blocked(Reason::MemberOf, why);
            }
        }
        if let Some(hosts) = hosts {
            c.retain(|&s| {
                let slot = &self.slots[s];
                !hosts.contains(&inv.instances[slot.index].container_instance_arn)
                    && !slot.groups.contains(group)
            });
            if c.is_empty() {
                let why = format!("{name} has distinctInstance and already runs on every instance with room");
                return blocked(Reason::DistinctInstance, why);
            }
        }
        // An awsvpc task's interface comes from a subnet of its service's, in the zone of that subnet; the
        // subnets are not read, and the zone it runs in is the one known to have one.
        if let (true, true, Some(zone)) = (strict, needs.awsvpc, from) {
            c.retain(|&s| inv.instances[self.slots[s].index].zone() == Some(zone));
            if c.is_empty() {
                let why = format!(
                    "a task of {name} (awsvpc) needs a subnet of its service's, known only in {zone}, where no \
                     instance has room"
                );
                return blocked(Reason::Subnet, why);
            }
        }
        if let (true, true, Some(zone)) = (strict, needs.az_spread, from) {
            c.retain(|&s| inv.instances[self.slots[s].index].zone() == Some(zone));
            if c.is_empty() {
                let why = format!(
                    "{name} spreads over availability zones, and no instance in {zone} has room: moving the task \
                     to another zone would unbalance it"
                );
                return blocked(Reason::AzSpread, why);
            }
        }
        // Of several providers, ECS picks one by the strategy's base and weights and does not fall back to
        // another when it has no room (aws/containers-roadmap#773): before a drain, each must have one.
        if let (true, Some(providers)) = (strict, needs.providers.as_ref().filter(|p| p.len() > 1)) {
            let reached = |p: &String| {
                c.iter().any(|&s| inv.instances[self.slots[s].index].capacity_provider.as_ref() == Some(p))
            };
            if let Some(missing) = providers.iter().find(|p| !reached(p)) {
                let why = format!(
                    "a task of {name} may be placed by its strategy on capacity provider {missing}, where no instance that \
                     stays can take it (ECS does not fall back to another provider)"
                );
                return blocked(Reason::CapacityProviderStrategy, why);
            }
        }
        let best = c.into_iter().min_by_key(|&s| {
            let room = self.slots[s].room;
            (room.memory - r.memory, room.cpu - r.cpu, self.slots[s].index)
        });
        best.ok_or_else(|| Blocked {
            reason: Reason::NoRoom,
            detail: format!("a task of {name} fits nowhere"),
        })
    }

    pub fn capacity(&self, settings: &Settings, largest_task: Resources) -> Capacity {
        let registered = self.slots.iter().fold(Resources::default(), |s, slot| s.plus(slot.registered));
        let spare = self.slots.iter().fold(Resources::default(), |s, slot| s.plus(slot.room));
        let percent = |total: i64, pct: u32| (total * i64::from(pct) + 99) / 100;
        Capacity {
            instances: self.slots.len(),
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
    pub fn shortfall(&self, settings: &Settings, largest_task: Resources) -> Option<Blocked> {
        let c = self.capacity(settings, largest_task);
        // Exact integer comparison: spare * 100 >= percent * registered.
        let short = |spare: i64, total: i64, pct: u32| spare * 100 < i64::from(pct) * total;
        let reserve = |detail: String| Some(Blocked { reason: Reason::Reserve, detail });
        if short(c.spare.cpu, c.registered.cpu, settings.reserve_cpu_percent) {
            return reserve(format!(
                "spare CPU would be {} of {} units, under RESERVE_CPU_PERCENT={}",
                c.spare.cpu, c.registered.cpu, settings.reserve_cpu_percent
            ));
        }
        if short(c.spare.memory, c.registered.memory, settings.reserve_memory_percent) {
            return reserve(format!(
                "spare memory would be {} of {} MiB, under RESERVE_MEMORY_PERCENT={}",
                c.spare.memory, c.registered.memory, settings.reserve_memory_percent
            ));
        }
        if largest_task != Resources::default() && !self.slots.iter().any(|s| largest_task.fits_in(s.room)) {
            return Some(Blocked {
                reason: Reason::LargestTask,
                detail: format!(
                    "no instance would have room for the largest task ({} CPU units, {} MiB)",
                    largest_task.cpu, largest_task.memory
                ),
            });
        }
        None
    }
}
