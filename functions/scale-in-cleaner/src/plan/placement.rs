//! The instances that stay, as the planner moves tasks onto them: each one's room, and the checks ECS
//! makes before it places a task ("Identify the container instances that satisfy the CPU, GPU, memory,
//! and port requirements in the task definition; ... that satisfy the task placement constraints; ...
//! the task placement strategies", task-placement-strategies.html), in that order, so that the reason a
//! task fits nowhere names the first requirement no instance meets ([`choose`]).
//!
//! Built for thousands of instances: slots are indexed by their room, so a task's best fit is the first
//! slot with enough memory and CPU that passes the checks (no scan of the pool); the totals the thresholds
//! look at are kept as slots change; and a candidate is tried in place, its changes journaled and undone
//! when it cannot go, instead of on a copy of the pool.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use super::eni::awsvpc_task_limit;
use super::model::{Capacity, HostPort, Inventory, Reason, Resources, Settings, Task};
use super::query::{self, Expr};

mod attributes;
mod choose;

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
    /// Its zone and capacity provider, as numbers ([`Pool::names`]): compared for every task.
    zone: Option<u16>,
    provider: Option<u16>,
    /// Its provider takes only tasks whose strategy names it.
    exclusive: bool,
}

/// A change to the pool since [`Pool::begin`], to undo it.
#[derive(Debug, Clone)]
enum Change {
    /// A task placed on a slot; whether its group was new there.
    Placed {
        index: usize,
        new_group: bool,
    },
    Removed(Slot),
}

#[derive(Debug, Clone)]
pub struct Pool {
    /// By inventory index; `None` for an instance not in the pool.
    slots: Vec<Option<Slot>>,
    /// `(room.memory, room.cpu, index)` of every slot: a task's best fit (the least room left) is the
    /// first one with enough of both that passes the checks.
    by_room: BTreeSet<(i64, i64, usize)>,
    /// The same, by capacity provider: a task of a provider's is looked for among its instances only.
    by_provider: HashMap<u16, BTreeSet<(i64, i64, usize)>>,
    registered: Resources,
    spare: Resources,
    /// The largest task, and how many slots have room for it.
    largest: Resources,
    fit_largest: usize,
    /// Changes since `begin`, while a trial is open.
    journal: Option<Vec<Change>>,
    /// Tasks found to fit nowhere, with the slot their trial had taken out ([`choose`]).
    failed: HashMap<choose::Kind, (Option<usize>, Blocked)>,
    /// Which instances have each required attribute (and value) asked about, and the index they are found
    /// in, made when first needed.
    having: HashMap<(String, Option<String>), Rc<Vec<bool>>>,
    attributes: Option<attributes::Attributes>,
    /// Zone and capacity provider names, numbered.
    names: HashMap<String, u16>,
}

impl Pool {
    /// The pool of `members`; `largest`: the task some slot must keep room for.
    pub fn new(inv: &Inventory, members: impl Iterator<Item = usize>, largest: Resources) -> Self {
        let mut pool = Pool {
            slots: vec![None; inv.instances.len()],
            by_room: BTreeSet::new(),
            by_provider: HashMap::new(),
            registered: Resources::default(),
            spare: Resources::default(),
            largest,
            fit_largest: 0,
            journal: None,
            failed: HashMap::new(),
            having: HashMap::new(),
            attributes: None,
            names: HashMap::new(),
        };
        for i in members {
            pool.add(inv, i);
        }
        pool
    }

    /// An instance joins the pool (one of ours set back to ACTIVE).
    pub fn add(&mut self, inv: &Inventory, i: usize) {
        // More room: what fit nowhere may fit now.
        self.failed.clear();
        let inst = &inv.instances[i];
        let trunk = inst.attributes.contains_key("ecs.awsvpc-trunk-id");
        let limit = inst.attribute("ecs.instance-type").and_then(|t| awsvpc_task_limit(t, trunk));
        // Which of its tasks use a network interface is known only for the instances whose tasks were
        // read: count every task on it as one, which is never too few.
        let busy = i64::from(inst.running_tasks) + i64::from(inst.pending_tasks);
        let zone = inst.zone().map(|z| self.number(z));
        let provider = inst.capacity_provider.as_deref().map(|p| self.number(p));
        let exclusive = inst.capacity_provider.as_ref().is_some_and(|p| inv.exclusive_providers.contains(p));
        self.insert(Slot {
            index: i,
            registered: inst.registered,
            room: inst.remaining,
            ports: inst.ports_used.clone(),
            gpus: inst.gpus_free,
            enis: limit.map(|l| i64::from(l) - busy),
            groups: BTreeSet::new(),
            moved_in: Vec::new(),
            zone,
            provider,
            exclusive,
        });
    }

    /// The number of a zone or provider name, given on first sight.
    fn number(&mut self, name: &str) -> u16 {
        let next = u16::try_from(self.names.len()).unwrap_or(u16::MAX);
        *self.names.entry(name.to_owned()).or_insert(next)
    }

    /// The number of a name already seen; `None` for one no slot has.
    fn known(&self, name: &str) -> Option<u16> {
        self.names.get(name).copied()
    }

    fn insert(&mut self, slot: Slot) {
        self.registered = self.registered.plus(slot.registered);
        self.spare = self.spare.plus(slot.room);
        self.fit_largest += usize::from(self.largest.fits_in(slot.room));
        self.by_room.insert((slot.room.memory, slot.room.cpu, slot.index));
        if let Some(p) = slot.provider {
            self.by_provider.entry(p).or_default().insert((slot.room.memory, slot.room.cpu, slot.index));
        }
        let index = slot.index;
        self.slots[index] = Some(slot);
    }

    /// Takes an instance out of the pool; the tasks the plan had moved onto it leave with it, so they must
    /// be placed again along with its own.
    pub fn remove(&mut self, index: usize) -> Vec<Task> {
        let Some(slot) = self.slots.get_mut(index).and_then(Option::take) else { return Vec::new() };
        self.registered = self.registered.minus(slot.registered);
        self.spare = self.spare.minus(slot.room);
        self.fit_largest -= usize::from(self.largest.fits_in(slot.room));
        self.by_room.remove(&(slot.room.memory, slot.room.cpu, slot.index));
        if let Some(set) = slot.provider.and_then(|p| self.by_provider.get_mut(&p)) {
            set.remove(&(slot.room.memory, slot.room.cpu, slot.index));
        }
        let moved_in = slot.moved_in.clone();
        if let Some(journal) = self.journal.as_mut() {
            journal.push(Change::Removed(slot));
        }
        moved_in
    }

    /// Opens a trial: the changes from here on are undone by [`Pool::rollback`], kept by
    /// [`Pool::commit`].
    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    pub fn commit(&mut self) {
        self.journal = None;
    }

    pub fn rollback(&mut self) {
        for change in self.journal.take().unwrap_or_default().into_iter().rev() {
            match change {
                Change::Removed(slot) => self.insert(slot),
                Change::Placed { index, new_group } => {
                    let Some(task) = self.slots[index].as_mut().and_then(|s| s.moved_in.pop()) else {
                        continue;
                    };
                    self.resize(index, |room| room.plus(task.reserved));
                    let Some(slot) = self.slots[index].as_mut() else { continue };
                    for p in &task.needs.ports {
                        slot.ports.remove(p);
                    }
                    slot.gpus += task.needs.gpus;
                    slot.enis = slot.enis.map(|e| e + 1);
                    if let (true, Some(g)) = (new_group, &task.group) {
                        slot.groups.remove(g);
                    }
                }
            }
        }
    }

    /// Changes a slot's room, keeping the index and the totals right.
    fn resize(&mut self, index: usize, change: impl FnOnce(Resources) -> Resources) {
        let Some(slot) = self.slots[index].as_mut() else { return };
        let before = slot.room;
        slot.room = change(before);
        let after = slot.room;
        self.by_room.remove(&(before.memory, before.cpu, index));
        self.by_room.insert((after.memory, after.cpu, index));
        if let Some(set) = slot.provider.and_then(|p| self.by_provider.get_mut(&p)) {
            set.remove(&(before.memory, before.cpu, index));
            set.insert((after.memory, after.cpu, index));
        }
        self.spare = self.spare.minus(before).plus(after);
        self.fit_largest = self.fit_largest + usize::from(self.largest.fits_in(after))
            - usize::from(self.largest.fits_in(before));
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
            let index = self.choose_remembered(inv, task, from, mode, queries)?;
            self.resize(index, |room| room.minus(task.reserved));
            let Some(slot) = self.slots[index].as_mut() else { continue };
            slot.ports.extend(task.needs.ports.iter().copied());
            slot.gpus = slot.gpus.saturating_sub(task.needs.gpus);
            slot.enis = slot.enis.map(|e| e - 1);
            let new_group = task.group.as_ref().is_some_and(|g| slot.groups.insert(g.clone()));
            slot.moved_in.push(task.clone());
            if let Some(journal) = self.journal.as_mut() {
                journal.push(Change::Placed { index, new_group });
            }
        }
        Ok(())
    }

    pub fn capacity(&self, settings: &Settings) -> Capacity {
        let percent = |total: i64, pct: u32| (total * i64::from(pct) + 99) / 100;
        Capacity {
            instances: self.by_room.len(),
            registered: self.registered,
            spare: self.spare,
            required: Resources::new(
                percent(self.registered.cpu, settings.reserve_cpu_percent),
                percent(self.registered.memory, settings.reserve_memory_percent),
            ),
            largest_task: self.largest,
        }
    }

    /// Why taking `index` out must break the thresholds whatever its tasks, if it must: they would take
    /// at least what it has reserved less what daemon tasks (which leave with it) may hold, on top of its
    /// own room, and the room for the largest task can only shrink. No placement needed, so a candidate
    /// whose tasks are not read yet is known not to go without reading them.
    pub fn could_not_lose(&self, index: usize, daemons: Resources, settings: &Settings) -> Option<Blocked> {
        let slot = self.slots.get(index).and_then(Option::as_ref)?;
        let reserved = slot.registered.minus(slot.room).minus(daemons).max(Resources::default());
        let spare = self.spare.minus(slot.room).minus(reserved);
        let registered = self.registered.minus(slot.registered);
        let fit_largest = self.fit_largest - usize::from(self.largest.fits_in(slot.room));
        self.shortfall_of(settings, spare, registered, fit_largest)
    }

    /// Why the pool does not meet the thresholds, if it does not.
    pub fn shortfall(&self, settings: &Settings) -> Option<Blocked> {
        self.shortfall_of(settings, self.spare, self.registered, self.fit_largest)
    }

    fn shortfall_of(
        &self,
        settings: &Settings,
        spare: Resources,
        registered: Resources,
        fit_largest: usize,
    ) -> Option<Blocked> {
        // Exact integer comparison: spare * 100 >= percent * registered.
        let short = |spare: i64, total: i64, pct: u32| spare * 100 < i64::from(pct) * total;
        let reserve = |detail: String| Some(Blocked { reason: Reason::Reserve, detail });
        if short(spare.cpu, registered.cpu, settings.reserve_cpu_percent) {
            return reserve(format!(
                "spare CPU would be {} of {} units, under RESERVE_CPU_PERCENT={}",
                spare.cpu, registered.cpu, settings.reserve_cpu_percent
            ));
        }
        if short(spare.memory, registered.memory, settings.reserve_memory_percent) {
            return reserve(format!(
                "spare memory would be {} of {} MiB, under RESERVE_MEMORY_PERCENT={}",
                spare.memory, registered.memory, settings.reserve_memory_percent
            ));
        }
        if self.largest != Resources::default() && fit_largest == 0 {
            return Some(Blocked {
                reason: Reason::LargestTask,
                detail: format!(
                    "no instance would have room for the largest task ({} CPU units, {} MiB)",
                    self.largest.cpu, self.largest.memory
                ),
            });
        }
        None
    }
}
