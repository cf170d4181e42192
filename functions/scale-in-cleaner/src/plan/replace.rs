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

use super::Planner;
use super::model::{Instance, Reason, Task};
use super::service::Counts;

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

fn never_ends(name: &str, c: &Counts) -> Option<String> {
    (!c.stop_first() && !c.start_first()).then(|| {
        format!(
            "service {name} has minimumHealthyPercent={} and maximumPercent={} with {} of {} tasks running: ECS \
             can neither stop its task before a replacement runs nor start one first, so the drain would never end",
            c.minimum_healthy_percent, c.maximum_percent, c.running, c.desired
        )
    })
}
