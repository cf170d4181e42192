//! The last task's stop, seen as it happens: with the optional ECS task state change rule, a stopped task
//! on an instance we are draining for an open lifecycle action completes the action at once, instead of at
//! the drain's next poll (the poll stays the safety net, and finds the action over). The event may be
//! forged or late: the action completes only when ECS shows no task left on the instance, our marker names
//! a hook we answer, and Auto Scaling has the instance waiting in a group we serve.

use chrono::Utc;
use shared::autoscaling::{self, InGroup};
use shared::ecs::{self, InstanceStatus};
use tracing::info;

use crate::aws::{self, MARKER};
use crate::decide::{self, Stage};
use crate::drain::Completion;
use crate::input::TaskStopped;
use crate::{Action, Deps, Error, LifecycleResult, Outcome};

pub async fn run(deps: &Deps, t: &TaskStopped) -> Result<Outcome, Error> {
    let c = &deps.config;
    let Some(cluster) = c.clusters.covers(&t.cluster_arn) else {
        return Ok(Outcome::ignored(format!("cluster {} is not in CLUSTERS", t.cluster_arn)));
    };
    let arns = std::slice::from_ref(&t.container_instance_arn);
    let described = match ecs::describe_container_instances(&deps.ecs, &cluster, arns).await {
        Ok(d) => d,
        Err(e) if e.code_is("ClusterNotFoundException") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let Some(found) = described.into_iter().next().filter(|f| f.status == InstanceStatus::Draining) else {
        return Ok(Outcome::ignored("the task's container instance is not DRAINING".into()));
    };
    let Some((hook, started_at)) = found.attributes.get(MARKER).and_then(|v| decide::parse_marker(v)) else {
        return Ok(Outcome::ignored("the task's container instance is not drained by this function".into()));
    };
    let mut outcome = Outcome::ignored(String::new());
    outcome.instance_id = Some(found.ec2_instance_id.clone());
    outcome.lifecycle_hook = Some(hook.to_owned());
    outcome.cluster = Some(found.cluster.clone());
    outcome.container_instance_arn = Some(found.container_instance_arn.clone());
    if !c.answers(hook) {
        outcome.reason = Some(format!("hook {hook} is not in LIFECYCLE_HOOK_NAMES"));
        return Ok(outcome);
    }
    let left = ecs::tasks_left(&deps.ecs, &found.cluster, &found.container_instance_arn).await?;
    if !left.is_empty() {
        outcome.set_tasks(&left);
        outcome.reason = Some(format!("{} task(s) still on it: the drain goes on", left.len()));
        return Ok(outcome);
    }
    let Some(InGroup { group, state }) =
        autoscaling::in_group(&deps.autoscaling, &found.ec2_instance_id).await?
    else {
        outcome.reason = Some("the instance is in no Auto Scaling group".into());
        return Ok(outcome);
    };
    outcome.auto_scaling_group = Some(group.clone());
    if !c.serves(&group) {
        outcome.reason = Some(format!("group {group} is not in AUTO_SCALING_GROUPS"));
        return Ok(outcome);
    }
    // A termination waits in Terminating:Wait, or in Warmed:Pending:Wait on its way back to the warm pool.
    let into_warm_pool = state == "Warmed:Pending:Wait";
    if let Stage::Over(why) | Stage::NotFromAutoScaling(why) =
        decide::stage(false, into_warm_pool, Some(&state))
    {
        outcome.reason = Some(format!("no lifecycle action waits for it: {why}"));
        return Ok(outcome);
    }
    if c.dry_run {
        outcome.action = Action::DryRun;
        return Ok(outcome);
    }
    let instance = &found.ec2_instance_id;
    match aws::complete_action(deps, &group, hook, None, instance, LifecycleResult::Continue).await? {
        Completion::Done => {
            outcome.action = Action::Completed;
            outcome.result = Some(LifecycleResult::Continue);
            outcome.elapsed_seconds = (Utc::now() - started_at).num_seconds();
            outcome.reason = Some(format!("the last task ({}) stopped", t.task_arn));
            info!(instance_id = %instance, task_arn = %t.task_arn, "last task stopped: lifecycle action completed");
        }
        Completion::NoActiveAction(message) => {
            outcome.action = Action::AlreadyCompleted;
            outcome.reason = Some(format!("no active lifecycle action: {message}"));
        }
    }
    Ok(outcome)
}
