//! Whether ECS can replace the service tasks of an instance that is drained, as the services' task counts
//! and deployment configurations allow: ECS replaces a drained task "according to the service's
//! deployment type and deployment configuration parameters, minimumHealthyPercent and maximumPercent"
//! ("Draining Amazon ECS container instances").
//!
//! - `minimumHealthyPercent` 100, `maximumPercent` above 100 (ECS's default, 100 and 200): the replacement
//!   starts first and the task stops once it runs; the service never runs fewer tasks than it wants.
//! - `minimumHealthyPercent` below 100: ECS may stop the task first, and the service runs short until the
//!   replacement is placed and runs (what the service's owner accepted for deployments too).
//! - Neither (100 and 100, or percentages too small for the desired count to give one task of room): ECS
//!   can neither stop the task nor start a replacement; the drain never ends.
//!
//! A service that runs fewer tasks than its desired count is not touched: ECS is still placing its tasks,
//! and a drain would compete with them, or (stopping first) leave it shorter still.

use chrono::{DateTime, Duration, Utc};

use super::Planner;
use super::model::{Departed, Instance, Reason, Task};
use super::service::{Counts, EventKind, Service};

impl Planner<'_> {
    /// Why the service tasks of a candidate must stay where they are, if they must.
    pub(super) fn replace_block(&self, tasks: &[Task]) -> Option<(Reason, String)> {
        let mut services: Vec<&str> = tasks.iter().filter_map(Task::service).collect();
        services.sort_unstable();
        services.dedup();
        services.into_iter().find_map(|name| {
            if self.inv.undescribed_services.contains(name) {
                let why = format!(
                    "service {name} could not be described this run (DescribeServices failure): its placement rules, \
                     task counts and deployment are not known"
                );
                return Some((Reason::ConstraintUnknown, why));
            }
            let c = self.inv.services.get(name)?.counts?;
            if c.running < c.desired {
                let why = format!(
                    "service {name} runs {} of its {} tasks ({} pending): ECS is still placing them, and a drain \
                     would compete with them",
                    c.running, c.desired, c.pending
                );
                return Some((Reason::ServiceShort, why));
            }
            never_ends(name, &c).map(|why| (Reason::DeploymentConfiguration, why))
        })
    }

    /// Why a drain of ours can never end, if it cannot: ECS may neither stop nor replace its tasks.
    pub(super) fn drain_never_ends(&self, inst: &Instance) -> Option<(Reason, String)> {
        let tasks = inst.tasks.as_deref().unwrap_or_default();
        tasks.iter().filter_map(Task::service).find_map(|name| {
            let c = self.inv.services.get(name)?.counts?;
            never_ends(name, &c).map(|why| (Reason::DeploymentConfiguration, format!("drain undone: {why}")))
        })
    }
}

impl Planner<'_> {
    /// The backstop, for a drain of ours that now runs nothing: why it must not be terminated but go back
    /// to ACTIVE, if it must. A service that had tasks on it runs short of its desired count (not even
    /// counting those pending), or reported "unable to place a task" since the drain began and has started
    /// none since: ECS could not put its tasks where the plan said, and this instance is room it needs.
    /// ECS lists stopped tasks for at least an hour ("Currently, stopped tasks appear in the returned
    /// results for at least one hour", ListTasks): for a drain older than that, any service of the
    /// cluster that cannot place a task since it began counts.
    pub(super) fn unplaced(&self, inst: &Instance) -> Option<(Reason, String)> {
        if !inst.is_empty() {
            return None;
        }
        let since = inst.drained_at();
        let Some(Departed::Known(departed)) = &inst.departed else { return None };
        let short = departed.iter().find_map(|name| {
            let service = self.inv.services.get(name)?;
            let c = service.counts?;
            if c.running + c.pending < c.desired {
                let why = format!(
                    "service {name} had tasks on it and runs {} of its {} tasks ({} pending): ECS did not place them \
                     elsewhere, so the drain is undone",
                    c.running, c.desired, c.pending
                );
                return Some((Reason::UnplacedReplacements, why));
            }
            unable_since(service, since).map(|at| (name, at))
                .map(|(name, at)| (Reason::UnplacedReplacements, unable(name, at, "had tasks on it and")))
        });
        let listed_for = Duration::hours(1);
        let forgotten = since.is_none_or(|s| self.now - s >= listed_for);
        short.or_else(|| {
            let replicas = self.inv.services.iter().filter(|(_, s)| s.counts.is_some());
            replicas.filter(|_| forgotten).find_map(|(name, service)| {
                let at = unable_since(service, since)?;
                let why = unable(
                    name,
                    at,
                    "(the tasks that left an instance drained an hour ago may no longer be listed)",
                );
                Some((Reason::UnplacedReplacements, why))
            })
        })
    }

    /// Why a drain of ours that runs nothing waits before it is terminated: the replacements of a service
    /// that had tasks on it are placed but not running yet, or which services had tasks on it is not
    /// known yet.
    pub(super) fn replacements_starting(&self, inst: &Instance) -> Option<String> {
        let departed = match &inst.departed {
            Some(Departed::Known(set)) => set,
            Some(Departed::Unknown) => {
                let why = "drained by this function and empty; ECS lists a task stopped on it that it cannot describe \
                           yet, so which services it ran is not known: terminated once it is";
                return Some(why.to_owned());
            }
            None => return None,
        };
        departed.iter().find_map(|name| {
            let c = self.inv.services.get(name)?.counts?;
            (c.running < c.desired).then(|| {
                format!(
                    "drained by this function and empty; service {name}, which had tasks on it, runs {} of its {} tasks \
                     and {} are starting: terminated once they run",
                    c.running, c.desired, c.pending
                )
            })
        })
    }
}

fn unable(name: &str, at: DateTime<Utc>, how: &str) -> String {
    format!(
        "service {name} {how} has been unable to place a task since {} without starting one since, so the drain is \
         undone",
        at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// When the service last reported "unable to place a task", if that was since `since` (any time, when the
/// drain's start is unknown) and it has started no task after it.
fn unable_since(service: &Service, since: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let latest = |kind: EventKind| service.events.iter().filter(|e| e.kind == kind).map(|e| e.at).max();
    let unable = latest(EventKind::UnableToPlace).filter(|at| since.is_none_or(|s| *at >= s))?;
    latest(EventKind::Started).is_none_or(|started| started < unable).then_some(unable)
}

fn never_ends(name: &str, c: &Counts) -> Option<String> {
    (!c.stop_first() && !c.start_first()).then(|| {
        format!(
            "service {name} has minimumHealthyPercent={} and maximumPercent={} with {} of {} tasks running: ECS \
             can neither stop its task before a replacement runs nor start one first, so the drain would never end",
            c.minimum_healthy_percent, c.maximum_percent, c.running, c.desired
        )
    })
}
