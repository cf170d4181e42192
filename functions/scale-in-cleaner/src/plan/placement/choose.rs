//! Where one task goes: the slot with the least room left among those that pass every check, or the
//! first check, in ECS's order, that no slot with room for it passes.

use std::collections::BTreeSet;
use std::rc::Rc;

use super::{Blocked, Change, Mode, Pool, Queries, Slot, blocked};
use crate::plan::model::{HostPort, Inventory, Reason, Task};
use crate::plan::query::{Expr, Facts};

/// One of the checks after CPU and memory, in the order ECS makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Provider,
    Gpu,
    Ports,
    Eni,
    /// The definition's `requiresAttributes`, by position.
    Requires(usize),
    /// A `memberOf` expression, by position.
    MemberOf(usize),
    Distinct,
    /// An `awsvpc` task stays in its zone (its service's subnets are not read).
    Subnet,
    /// A service spreading over zones stays in its zone.
    Spread,
}

/// One task's placement: what it needs, read once.
struct Ask<'a> {
    task: &'a Task,
    name: &'a str,
    group: &'a str,
    exprs: Vec<(&'a String, Rc<Expr>)>,
    hosts: Option<&'a BTreeSet<String>>,
    from: Option<&'a str>,
    strict: bool,
    checks: Vec<Check>,
    /// For each required attribute, the instances that have it.
    having: Vec<Rc<Vec<bool>>>,
    /// The zone it leaves and its providers, numbered as the slots' ([`Pool::number`]).
    from_zone: Option<u16>,
    providers: Vec<u16>,
}

/// What makes two tasks place alike: their needs (shared by a revision and group), size, group, the zone
/// they leave (`None` inside: any zone, for a failure no zone rule caused), and how strictly they are
/// placed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Kind {
    needs: usize,
    reserved: (i64, i64),
    group: Option<String>,
    from: Option<Option<String>>,
    strict: bool,
}

impl Pool {
    /// [`Pool::choose`], remembering what fit nowhere. A pool only loses room as removals are kept (slots
    /// go, rooms shrink, ports and groups are taken), so a task that fit nowhere still fits nowhere, and
    /// candidate after candidate whose tasks cannot move costs one search per kind of task, not one per
    /// candidate. A failure is remembered only when its trial had changed nothing but take out its own
    /// instance, which is checked again for the next: it is back in the pool. `runningTasksCount` rises as
    /// tasks are moved, so an expression over it is never remembered.
    pub(super) fn choose_remembered(
        &mut self,
        inv: &Inventory,
        task: &Task,
        from: Option<&str>,
        mode: Mode,
        queries: &mut Queries,
    ) -> Result<usize, Blocked> {
        let kind = Kind {
            needs: std::sync::Arc::as_ptr(&task.needs) as usize,
            reserved: (task.reserved.cpu, task.reserved.memory),
            group: task.group.clone(),
            from: Some(from.map(str::to_owned)),
            strict: mode == Mode::Candidate,
        };
        let any_zone = Kind { from: None, ..kind.clone() };
        if let Some((out, why)) = self.failed.get(&kind).or_else(|| self.failed.get(&any_zone)).cloned() {
            let having = self.having(inv, &task.needs.requires);
            let out_fits = out.is_some_and(|o| {
                let Ok(mut ask) = Ask::new(inv, task, from, mode, queries, having) else { return false };
                self.number_names(&mut ask);
                self.slot(o).is_some_and(|s| {
                    task.reserved.fits_in(s.room) && ask.checks.iter().all(|c| s.passes(inv, &ask, *c))
                })
            });
            if !out_fits {
                return Err(why);
            }
        }
        let chosen = self.choose(inv, task, from, mode, queries);
        let counts_tasks = task.needs.member_of.iter().any(|e| e.contains("runningTasksCount"));
        if let (Err(why), false) = (&chosen, counts_tasks) {
            let out = match self.journal.as_deref() {
                None | Some([]) => Some(None),
                Some([Change::Removed(slot)]) => Some(Some(slot.index)),
                Some(_) => None,
            };
            // Only the zone rules look at the zone it leaves: a failure before them holds from any zone.
            let by_zone = matches!(why.reason, Reason::Subnet | Reason::AzSpread);
            if let Some(out) = out {
                self.failed.insert(if by_zone { kind } else { any_zone }, (out, why.clone()));
            }
        }
        chosen
    }

    /// The slot a task goes to, or the first requirement no slot meets.
    pub(super) fn choose(
        &mut self,
        inv: &Inventory,
        task: &Task,
        from: Option<&str>,
        mode: Mode,
        queries: &mut Queries,
    ) -> Result<usize, Blocked> {
        let having = self.having(inv, &task.needs.requires);
        let mut ask = Ask::new(inv, task, from, mode, queries, having)?;
        self.number_names(&mut ask);
        let r = task.reserved;
        // The instances of its one capacity provider, if it has one: the others fail that check anyway.
        let own = match ask.providers.as_slice() {
            [p] => Some(self.by_provider.get(p)),
            _ => None,
        };
        let rooms = own.map_or(Some(&self.by_room), |set| set);
        let with_room = || {
            rooms
                .into_iter()
                .flat_map(move |set| set.range((r.memory, i64::MIN, 0)..))
                .filter(move |(_, cpu, _)| *cpu >= r.cpu)
                .map(|k| k.2)
        };
        // One pass: the first slot that passes every check is the best fit. Otherwise the reason is the
        // check the slots got furthest to: ECS's filters, applied one after the other, leave none at
        // exactly that one.
        let (mut room, mut furthest) = (false, 0);
        for i in with_room() {
            let Some(s) = self.slot(i) else { continue };
            room = true;
            match ask.checks.iter().position(|c| !s.passes(inv, &ask, *c)) {
                None => {
                    let passes = |i: &usize| {
                        self.slot(*i).is_some_and(|s| ask.checks.iter().all(|c| s.passes(inv, &ask, *c)))
                    };
                    ask.every_provider(inv, with_room().filter(passes))?;
                    return Ok(i);
                }
                Some(k) => furthest = furthest.max(k),
            }
        }
        let room_elsewhere =
            || self.by_room.range((r.memory, i64::MIN, 0)..).any(|(_, cpu, _)| *cpu >= r.cpu);
        if !room && own.is_some() && room_elsewhere() {
            // Instances of other providers have room: its provider is the first check none passes.
            return Err(ask.why_not(Check::Provider));
        }
        if !room {
            let why = format!(
                "a task of {} ({} CPU units, {} MiB) fits on no instance that stays",
                ask.name, r.cpu, r.memory
            );
            return blocked(Reason::NoRoom, why);
        }
        Err(ask.why_not(ask.checks[furthest]))
    }

    fn number_names(&self, ask: &mut Ask<'_>) {
        // A name no slot has never matches: `u16::MAX` stands for it.
        ask.from_zone = ask.from.map(|z| self.known(z).unwrap_or(u16::MAX));
        let providers = ask.task.needs.providers.as_deref().unwrap_or_default();
        ask.providers = providers.iter().map(|p| self.known(p).unwrap_or(u16::MAX)).collect();
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i).and_then(Option::as_ref)
    }
}

impl<'a> Ask<'a> {
    fn new(
        inv: &'a Inventory,
        task: &'a Task,
        from: Option<&'a str>,
        mode: Mode,
        queries: &mut Queries,
        having: Vec<Rc<Vec<bool>>>,
    ) -> Result<Self, Blocked> {
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
        let mut checks = Vec::new();
        checks.extend(
            (needs.providers.is_some() || !inv.exclusive_providers.is_empty()).then_some(Check::Provider),
        );
        checks.extend((needs.gpus > 0).then_some(Check::Gpu));
        checks.extend((!needs.ports.is_empty()).then_some(Check::Ports));
        checks.extend(needs.awsvpc.then_some(Check::Eni));
        checks.extend((0..needs.requires.len()).map(Check::Requires));
        checks.extend((0..exprs.len()).map(Check::MemberOf));
        checks.extend(hosts.is_some().then_some(Check::Distinct));
        checks.extend((strict && needs.awsvpc && from.is_some()).then_some(Check::Subnet));
        checks.extend((strict && needs.az_spread && from.is_some()).then_some(Check::Spread));
        Ok(Ask {
            task,
            name,
            group,
            exprs,
            hosts,
            from,
            strict,
            checks,
            having,
            from_zone: None,
            providers: Vec::new(),
        })
    }

    /// Of several providers, ECS picks one by the strategy's base and weights and does not fall back to
    /// another when it has no room (aws/containers-roadmap#773): before a drain, each must have a slot.
    fn every_provider(&self, inv: &Inventory, passing: impl Iterator<Item = usize>) -> Result<(), Blocked> {
        let Some(providers) = self.task.needs.providers.as_ref().filter(|p| self.strict && p.len() > 1)
        else {
            return Ok(());
        };
        let mut missing: BTreeSet<&String> = providers.iter().collect();
        for i in passing {
            if let Some(p) = &inv.instances[i].capacity_provider {
                missing.remove(p);
            }
            if missing.is_empty() {
                return Ok(());
            }
        }
        let p = missing.first().map_or("", |p| p.as_str());
        blocked(
            Reason::CapacityProviderStrategy,
            format!(
                "a task of {} may be placed by its strategy on capacity provider {p}, where no instance that stays can \
                 take it (ECS does not fall back to another provider)",
                self.name
            ),
        )
    }

    fn why_not(&self, check: Check) -> Blocked {
        let (name, needs) = (self.name, &self.task.needs);
        let (reason, detail) = match check {
            Check::Provider if needs.providers.is_none() => (
                Reason::CapacityProviderStrategy,
                format!(
                    "a task of {name} (a launch type, no capacity provider strategy) has room only on instances of ECS \
                     Managed Instances, which take only the tasks of strategies that name their provider"
                ),
            ),
            Check::Provider => (
                Reason::CapacityProviderStrategy,
                format!(
                    "a task of {name} goes only to capacity provider {} (its strategy), where no instance that stays has room",
                    needs.providers.as_deref().unwrap_or_default().join(" or ")
                ),
            ),
            Check::Gpu => (
                Reason::Gpu,
                format!("a task of {name} needs {} GPU(s), free on no instance with room", needs.gpus),
            ),
            Check::Ports => {
                let ports: Vec<String> = needs.ports.iter().map(HostPort::to_string).collect();
                let why = format!(
                    "a task of {name} needs host port {}, in use on every instance with room",
                    ports.join(", ")
                );
                (Reason::PortConflict, why)
            }
            Check::Eni => (
                Reason::Eni,
                format!(
                    "a task of {name} (awsvpc) needs a network interface: none free on an instance with room, or its \
                     instance type's limit is not known"
                ),
            ),
            Check::Requires(k) => {
                let (attribute, value) = &needs.requires[k];
                let wanted = value.as_ref().map_or_else(|| attribute.clone(), |v| format!("{attribute}={v}"));
                let why =
                    format!("a task of {name} requires attribute {wanted}: no instance with room has it");
                (Reason::RequiredAttribute, why)
            }
            Check::MemberOf(k) => {
                let text = self.exprs[k].0;
                (
                    Reason::MemberOf,
                    format!("a task of {name} has memberOf({text}): no instance with room matches"),
                )
            }
            Check::Distinct => (
                Reason::DistinctInstance,
                format!("{name} has distinctInstance and already runs on every instance with room"),
            ),
            Check::Subnet => (
                Reason::Subnet,
                format!(
                    "a task of {name} (awsvpc) needs a subnet of its service's, known only in {}, where no instance has \
                     room",
                    self.from.unwrap_or_default()
                ),
            ),
            Check::Spread => (
                Reason::AzSpread,
                format!(
                    "{name} spreads over availability zones, and no instance in {} has room: moving the task to another \
                     zone would unbalance it",
                    self.from.unwrap_or_default()
                ),
            ),
        };
        Blocked { reason, detail }
    }
}

impl Slot {
    fn passes(&self, inv: &Inventory, ask: &Ask<'_>, check: Check) -> bool {
        let inst = &inv.instances[self.index];
        let needs = &ask.task.needs;
        match check {
            Check::Provider if needs.providers.is_none() => !self.exclusive,
            Check::Provider => self.provider.is_some_and(|p| ask.providers.contains(&p)),
            Check::Gpu => self.gpus >= needs.gpus,
            Check::Ports => needs.ports.iter().all(|p| !self.ports.contains(p)),
            Check::Eni => self.enis.is_some_and(|e| e >= 1),
            Check::Requires(k) => ask.having[k].get(self.index).copied().unwrap_or(false),
            Check::MemberOf(k) => self.matches(inv, &ask.exprs[k].1),
            Check::Distinct => ask.hosts.is_none_or(|hosts| {
                !hosts.contains(&inst.container_instance_arn) && !self.groups.contains(ask.group)
            }),
            Check::Subnet | Check::Spread => self.zone.is_some() && self.zone == ask.from_zone,
        }
    }

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
