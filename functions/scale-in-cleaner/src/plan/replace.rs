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

use chrono::{DateTime, Utc};

use super::Planner;
use super::model::{Instance, Reason, Task};
use super::service::{Counts, EventKind, Service};

impl Planner<'_> {
    /// Why the service tasks of a candidate must stay where they are, if they must.
    pub(super) fn replace_block(&self, tasks: &[Task]) -> Option<(Reason, String)> {
        let mut services: Vec<&str> = tasks.iter().filter_map(Task::service).collect();
        services.sort_unstable();
        services.dedup();
        services.into_iter().find_map(|name| {
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
    pub(super) fn unplaced(&self, inst: &Instance) -> Option<(Reason, String)> {
        if !inst.is_empty() {
            return None;
        }
        let since = inst.drained_at();
        inst.departed.iter().flatten().find_map(|name| {
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
            unable_since(service, since).map(|at| {
                let why = format!(
                    "service {name} had tasks on it and has been unable to place a task since {} without starting one \
                     since, so the drain is undone",
                    at.format("%Y-%m-%dT%H:%M:%SZ")
                );
                (Reason::UnplacedReplacements, why)
            })
        })
    }

    /// Why a drain of ours that runs nothing waits before it is terminated: the replacements of a service
    /// that had tasks on it are placed but not running yet.
    pub(super) fn replacements_starting(&self, inst: &Instance) -> Option<String> {
        inst.departed.iter().flatten().find_map(|name| {
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
