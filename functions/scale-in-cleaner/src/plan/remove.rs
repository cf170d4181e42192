//! New removals from the usable instances: the rules of the run, of each group, then of each instance
//! and where its tasks would go.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::model::{Decision, Instance, Reason, Task};
use super::order::Order;
use super::ours::stalled_hold;
use super::placement::{Blocked, Mode, Pool};
use super::{IN_SERVICE, Planner};

impl<'a> Planner<'a> {
    /// New removals, at most `max_removals`: empty first, then from the zone with the most instances of
    /// the group, then least reserved. The pool once they are gone.
    pub(super) fn remove(&mut self, usable: &[usize], mut pool: Pool) -> Pool {
        let inv = self.inv;
        let mut candidates = Vec::new();
        for &i in usable {
            if self.decisions[i].is_some() {
                continue;
            }
            let inst = &inv.instances[i];
            if let Some((reason, why)) = self.removal_blocker(inst) {
                self.decide(i, Decision::Skip, reason, why);
            } else if let Some(at) = inst.stalled_at.filter(|at| self.now - *at < stalled_hold()) {
                let why = format!(
                    "a drain of it stalled at {}; not drained again before {}",
                    at.format("%Y-%m-%dT%H:%M:%SZ"),
                    (at + stalled_hold()).format("%Y-%m-%dT%H:%M:%SZ")
                );
                self.decide(i, Decision::Keep, Reason::RecentlyStalled, why);
            } else {
                candidates.push(i);
            }
        }
        let run_block = self.run_block(pool.shortfall(self.settings));
        let mut budget = self.disruption_budget();
        let mut staying: HashMap<(&str, &str), i64> = HashMap::new();
        let mut newest: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for (i, inst) in inv.instances.iter().enumerate() {
            let Some(m) = &inst.membership else { continue };
            if let Some(at) = inst.registered_at {
                newest.entry(m.group.as_str()).and_modify(|n| *n = (*n).max(at)).or_insert(at);
            }
            if !matches!(self.decisions[i], Some((Decision::Reap | Decision::Wait, _, _))) {
                *staying.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() += 1;
            }
        }
        let mut order = Order::new(inv, &candidates, staying);
        // Removals found, and candidates whose tasks are to be read (each may become one).
        let mut removals = 0;
        // Unread candidates counted as removals, and those past the removals whose tasks are read ahead, in
        // case those before them cannot go.
        let (mut tentative, mut ahead, mut look_ahead) = (0, Vec::new(), self.look_ahead);
        while let Some(i) = order.pop() {
            let inst = &inv.instances[i];
            if let Some((reason, why)) = &run_block {
                self.decide(i, Decision::Keep, *reason, why.clone());
                continue;
            }
            // Whether taking it out breaks the thresholds whatever its tasks: then they need not be read.
            let hopeless = || {
                let daemons = inv.daemon_share;
                inst.tasks.is_none().then(|| pool.could_not_lose(i, daemons, self.settings)).flatten()
            };
            if removals >= self.settings.max_removals {
                if inst.tasks.is_none() && !inst.undescribed && look_ahead > 0 && hopeless().is_none() {
                    ahead.push(i);
                    look_ahead -= 1;
                }
                let why = format!("MAX_REMOVALS_PER_RUN={} reached", self.settings.max_removals);
                self.decide(i, Decision::Keep, Reason::MaxRemovals, why);
                continue;
            }
            let group = inst.membership.as_ref().map(|m| m.group.as_str()).unwrap_or_default();
            if let Some((reason, why)) = self.group_block(group, &budget, newest.get(group).copied()) {
                self.decide(i, Decision::Keep, reason, why);
                continue;
            }
            if inst.undescribed {
                let why = "ECS lists a task on it that it cannot describe yet (one just placed); a later run examines it";
                self.decide(i, Decision::Keep, Reason::TasksUndescribed, why);
                continue;
            }
            if let Some(Blocked { reason, detail }) = hopeless() {
                self.decide(i, Decision::Keep, reason, format!("{detail}, whatever its tasks (not read)"));
                continue;
            }
            let Some(tasks) = &inst.tasks else {
                // Counted as a removal until its tasks are read: the next plan sees whether it is one.
                self.wanted.push(i);
                tentative += 1;
                removals += 1;
                *budget.entry(group).or_default() -= 1;
                *self.min_size_room.entry(group).or_default() -= 1;
                let why = "its tasks have not been read this run; a later plan examines it";
                self.decide(i, Decision::Keep, Reason::NotExamined, why);
                continue;
            };
            if let Some(t) = tasks.iter().find(|t| t.protected) {
                let name = t.group.as_deref().unwrap_or(&t.arn);
                let why = format!("a task of {name} has scale-in protection (UpdateTaskProtection)");
                self.decide(i, Decision::Skip, Reason::TaskProtected, why);
                continue;
            }
            if let Some((reason, why)) = self.deploying(tasks).or_else(|| self.replace_block(tasks)) {
                self.decide(i, Decision::Keep, reason, why);
                continue;
            }
            pool.begin();
            let moved_in = pool.remove(i);
            let leaving: Vec<Task> = tasks.iter().cloned().chain(moved_in).collect();
            let moved = pool.place(inv, &leaving, inst.zone(), Mode::Candidate, &mut self.queries);
            if let Some(Blocked { reason, detail }) = moved.err().or_else(|| pool.shortfall(self.settings)) {
                pool.rollback();
                self.decide(i, Decision::Keep, reason, detail);
                continue;
            }
            pool.commit();
            order.removed(i);
            removals += 1;
            *budget.entry(group).or_default() -= 1;
            *self.min_size_room.entry(group).or_default() -= 1;
            if inst.is_empty() {
                let why = "empty, and the spare capacity left meets the thresholds";
                self.decide(i, Decision::Terminate, Reason::Empty, why);
            } else {
                let share = inst.reserved_share() * 100.0;
                let why = format!(
                    "{share:.0}% reserved; its {} task(s) can be placed elsewhere and the spare left meets the thresholds",
                    tasks.len()
                );
                self.decide(i, Decision::Drain, Reason::UnderUsed, why);
            }
        }
        // Read ahead only while some removal is still a guess: once those found are real, there is no need.
        if tentative > 0 {
            self.wanted.extend(ahead);
        }
        pool
    }

    /// Why the tasks of a candidate stay where they are while their service is deployed, if they must: a
    /// drain would move them while ECS rolls them out.
    fn deploying(&self, tasks: &[Task]) -> Option<(Reason, String)> {
        tasks.iter().filter_map(Task::service).find_map(|name| {
            let what = self.inv.services.get(name)?.deployment.as_ref()?;
            let why = format!("service {name} is being deployed ({what}): its tasks stay until it is done");
            Some((Reason::DeploymentInProgress, why))
        })
    }

    /// What stops every new removal of the run: outside the windows, a daemon's deployment, a short
    /// cluster.
    fn run_block(&self, short: Option<Blocked>) -> Option<(Reason, String)> {
        let windows = &self.settings.windows;
        if !windows.contains(self.now) {
            let next = windows.next_opening(self.now).map(|t| t.format("%a %H:%M UTC").to_string());
            let why = format!(
                "outside SCALE_IN_WINDOWS={}; next opens {}",
                windows.text(),
                next.as_deref().unwrap_or("never")
            );
            return Some((Reason::OutsideWindow, why));
        }
        // A daemon runs on every instance: its deployment concerns them all.
        let daemon = |n: &String| self.inv.daemon_groups.contains(&format!("service:{n}"));
        if let Some((name, what)) = self
            .inv
            .services
            .iter()
            .filter(|(n, _)| daemon(n))
            .find_map(|(n, s)| Some((n, s.deployment.as_ref()?)))
        {
            let why = format!("service {name} is being deployed ({what}): no new drain until it is done");
            return Some((Reason::DeploymentInProgress, why));
        }
        short.map(|b| (Reason::ClusterShort, format!("the cluster is short of spare capacity: {}", b.detail)))
    }

    /// What stops a removal from this instance's group: cool-down, the group's budget for the run, its
    /// minimum size. `newest`: when its newest instance registered.
    fn group_block(
        &self,
        group: &str,
        budget: &HashMap<&str, i64>,
        newest: Option<DateTime<Utc>>,
    ) -> Option<(Reason, String)> {
        let inv = self.inv;
        let cooldown = self.settings.cooldown;
        if cooldown > chrono::Duration::zero() {
            let launching = inv.groups.get(group).map_or(0, |g| g.launching);
            if launching > 0 {
                let why = format!(
                    "group {group} is launching {launching} instance(s): SCALE_IN_COOLDOWN_MINUTES applies"
                );
                return Some((Reason::Cooldown, why));
            }
            if let Some(at) = newest.filter(|at| self.now - *at < cooldown) {
                let why = format!(
                    "group {group} launched an instance {} min ago, within SCALE_IN_COOLDOWN_MINUTES={}",
                    (self.now - at).num_minutes(),
                    cooldown.num_minutes()
                );
                return Some((Reason::Cooldown, why));
            }
        }
        if budget.get(group).copied().unwrap_or(0) <= 0 {
            let why = format!(
                "SCALE_IN_BUDGET_PERCENT={} of group {group} is already leaving this run",
                self.settings.budget_percent
            );
            return Some((Reason::Budget, why));
        }
        if self.min_size_room.get(group).copied().unwrap_or(0) <= 0 {
            let min = inv.groups.get(group).map(|g| g.min_size).unwrap_or_default();
            return Some((Reason::MinSize, format!("group {group} would go under its minimum size {min}")));
        }
        None
    }

    /// Per group, the removals this run may still start: `SCALE_IN_BUDGET_PERCENT` of its desired
    /// capacity, rounded up, less ours still draining in it (as Karpenter counts nodes being deleted).
    fn disruption_budget(&self) -> HashMap<&'a str, i64> {
        let pct = i64::from(self.settings.budget_percent);
        let mut budget: HashMap<&'a str, i64> = self
            .inv
            .groups
            .iter()
            .map(|(name, g)| (name.as_str(), (i64::from(g.desired_capacity.max(0)) * pct + 99) / 100))
            .collect();
        for (i, inst) in self.inv.instances.iter().enumerate() {
            if let (Some(m), Some((Decision::Wait, _, _))) = (&inst.membership, &self.decisions[i]) {
                *budget.entry(m.group.as_str()).or_default() -= 1;
            }
        }
        budget
    }

    /// Why an ACTIVE instance may not be removed at all, if it may not.
    fn removal_blocker(&self, inst: &Instance) -> Option<(Reason, String)> {
        let Some(m) = &inst.membership else {
            return Some((Reason::NoGroup, "not in an Auto Scaling group".into()));
        };
        let Some(group) = self.inv.groups.get(&m.group) else {
            return Some((Reason::GroupNotFound, format!("group {} not found", m.group)));
        };
        if !self.settings.allows(&m.group) {
            return Some((
                Reason::GroupNotAllowed,
                format!("group {} is not in AUTO_SCALING_GROUPS", m.group),
            ));
        }
        if let Some(cp) = &group.managed_by {
            let why = format!(
                "group {} is scaled by capacity provider {cp} (managed scaling); the two would fight",
                m.group
            );
            return Some((Reason::CapacityProvider, why));
        }
        if m.protected_from_scale_in {
            return Some((Reason::ScaleInProtected, "protected from scale-in".into()));
        }
        if m.lifecycle_state != IN_SERVICE {
            return Some((Reason::NotInService, format!("lifecycle state {}", m.lifecycle_state)));
        }
        let age = self.settings.min_instance_age;
        match inst.registered_at {
            None => Some((Reason::RegistrationUnknown, "registration time unknown".into())),
            Some(at) if self.now - at < age => Some((
                Reason::TooYoung,
                format!(
                    "registered {} min ago, younger than MIN_INSTANCE_AGE_MINUTES={}",
                    (self.now - at).num_minutes(),
                    age.num_minutes()
                ),
            )),
            Some(_) => None,
        }
    }
}
