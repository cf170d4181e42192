//! Each kind of event, step by step: a warning or recommendation drains one instance, scheduled maintenance
//! drains (and may replace) the instances it names, an instance running again has our drain undone, and the
//! sweep undoes careful rebalance drains no interruption followed.

use chrono::Utc;
use shared::ecs::{Found, InstanceStatus};
use shared::events::InstanceId;
use tracing::{info, warn};

use crate::aws::Replacement;
use crate::config::RebalanceMode;
use crate::decide::{self, Marker, SweepStep};
use crate::input::{Maintenance, MaintenanceKind, SpotEvent, Trigger};
use crate::{Action, Deps, Error, Outcome, Reply, aws, report};

/// A Spot interruption warning, a rebalance recommendation, or an instance running again.
pub async fn event(deps: &Deps, spot: &SpotEvent) -> Result<Outcome, Error> {
    let mut outcome = Outcome::new(spot, deps.notifier.silent());
    if spot.trigger == Trigger::Running {
        return running(deps, spot, outcome).await;
    }
    if !decide::wanted(spot.trigger, &deps.config.drain_on) {
        outcome.reason = Some(format!("DRAIN_ON does not include {}", spot.trigger.name()));
        return Ok(outcome);
    }
    let Some(found) = find(deps, &spot.instance_id, &mut outcome).await? else { return Ok(outcome) };
    outcome.action = decide::decide(found.status, deps.config.dry_run);
    match outcome.action {
        Action::Drained => {
            if spot.trigger == Trigger::Rebalance
                && deps.config.rebalance_mode == RebalanceMode::Careful
                && let Err(why) = enough_without(deps, &found).await?
            {
                (outcome.action, outcome.reason) =
                    (Action::Ignored, Some(format!("careful rebalance: {why}")));
                return Ok(outcome);
            }
            let marker =
                spot.trigger.may_come_back().then(|| Marker { trigger: spot.trigger, at: Utc::now() });
            aws::drain(deps, &found, marker).await?;
            outcome.notification = deps.notifier.send(&report::drained(spot, &found)).await;
        }
        Action::AlreadyDraining if !deps.config.dry_run => {
            // Drained for a rebalance recommendation, and now the warning came: keep it drained.
            if let Some(rewritten) = decide::after_warning(aws::marker(&found), spot.trigger, Utc::now()) {
                aws::set_marker(deps, &found, rewritten).await?;
            }
        }
        Action::NotDrainable => {
            outcome.reason = Some(format!("container instance is {}", found.status));
            warn!(instance_id = %spot.instance_id, status = %found.status, "container instance cannot be drained");
        }
        _ => {}
    }
    Ok(outcome)
}

/// Whether the cluster keeps its spare capacity once the instance's tasks have moved elsewhere.
async fn enough_without(deps: &Deps, found: &Found) -> Result<Result<(), String>, Error> {
    let others = aws::others_in_cluster(deps, found).await?;
    let me = aws::room_of(deps, found).await?;
    let c = &deps.config;
    Ok(decide::spare_without(me, &others, c.reserve_cpu_percent, c.reserve_memory_percent))
}

/// The container instance of `instance_id`, with the outcome filled in; `None` (and the outcome says so)
/// when it is in none of the clusters.
async fn find(deps: &Deps, instance_id: &InstanceId, outcome: &mut Outcome) -> Result<Option<Found>, Error> {
    let search = aws::find(deps, instance_id).await?;
    for missing in &search.missing_clusters {
        warn!(cluster = %missing, "configured cluster does not exist; skipped");
    }
    outcome.missing_clusters = search.missing_clusters;
    match search.found {
        Some(found) => {
            outcome.found(&found);
            Ok(Some(found))
        }
        None => {
            outcome.action = Action::NotAnEcsInstance;
            Ok(None)
        }
    }
}

/// An instance runs again: our drain for its stop, hibernation or scheduled stop is undone, nothing else.
async fn running(deps: &Deps, spot: &SpotEvent, mut outcome: Outcome) -> Result<Outcome, Error> {
    let Some(found) = find(deps, &spot.instance_id, &mut outcome).await? else { return Ok(outcome) };
    let marker = aws::marker(&found);
    let ran_at = spot.time.unwrap_or_else(Utc::now);
    (outcome.action, outcome.reason) = decide::undo(found.status, marker, ran_at, deps.config.dry_run);
    if outcome.action == Action::Reactivated
        && let Some(state) = aws::leaving(deps, spot.instance_id.as_str()).await?
    {
        (outcome.action, outcome.reason) = (Action::Ignored, Some(format!("Auto Scaling has it {state}")));
    }
    match outcome.action {
        Action::Reactivated => {
            aws::reactivate(deps, &found).await?;
            outcome.notification = deps.notifier.send(&report::undone(spot, &found)).await;
        }
        // A marker left on an ACTIVE instance (a reactivation cut short) would make a later drain by
        // someone else look like ours.
        Action::Ignored
            if found.status == InstanceStatus::Active && marker.is_some() && !deps.config.dry_run =>
        {
            aws::set_marker(deps, &found, None).await?;
        }
        _ => {}
    }
    Ok(outcome)
}

/// Scheduled maintenance: each instance named is drained; with `REPLACE_ON_SCHEDULED`, its Auto Scaling
/// group replaces it before the date. A reboot is drained only to be replaced: the instance keeps running
/// after it, and a drain would outlive it.
pub async fn maintenance(deps: &Deps, m: &Maintenance) -> Result<Reply, Error> {
    let c = &deps.config;
    let mut instances = Vec::new();
    for instance_id in &m.instance_ids {
        let spot = SpotEvent { instance_id: instance_id.clone(), trigger: Trigger::Scheduled, time: m.time };
        let mut outcome = Outcome::new(&spot, deps.notifier.silent());
        outcome.maintenance = Some(m.kind);
        if !decide::wanted(Trigger::Scheduled, &c.drain_on) {
            outcome.reason = Some("DRAIN_ON does not include scheduled".into());
        } else if m.kind == MaintenanceKind::Reboot && !c.replace_on_scheduled {
            outcome.reason = Some(format!(
                "{}: the instance keeps running after the reboot; set REPLACE_ON_SCHEDULED to move its tasks first",
                m.event_type_code
            ));
        } else if let Some(found) = find(deps, instance_id, &mut outcome).await? {
            outcome.action = decide::decide(found.status, c.dry_run);
            if outcome.action == Action::Drained {
                // Marked even for a reboot (which never shows the instance running again): the sweep
                // finds the drains whose replacement waits for their tasks to move.
                let marker = Marker { trigger: Trigger::Scheduled, at: Utc::now() };
                aws::drain(deps, &found, Some(marker)).await?;
                outcome.notification = deps.notifier.send(&report::scheduled(m, &found)).await;
            }
            if c.replace_on_scheduled && matches!(outcome.action, Action::Drained | Action::AlreadyDraining) {
                let replacement = aws::replace(deps, &found).await?;
                info!(instance_id = %instance_id, ?replacement, "replacement before scheduled maintenance");
                outcome.replacement = Some(replacement);
            }
        }
        instances.push(outcome);
    }
    Ok(Reply::Many { trigger: Trigger::Scheduled, instances, reason: None })
}

/// The sweep (every few minutes, with careful rebalance or `REPLACE_ON_SCHEDULED`): a drain for a rebalance
/// recommendation that no interruption warning followed within `REBALANCE_UNDO_MINUTES` goes back to
/// ACTIVE; an instance drained for maintenance whose replacement waited for its tasks is replaced once they
/// have moved. Only instances carrying our marker are looked at.
pub async fn sweep(deps: &Deps) -> Result<Reply, Error> {
    let c = &deps.config;
    let undo_after = (c.rebalance_mode == RebalanceMode::Careful).then_some(c.rebalance_undo);
    if undo_after.is_none() && !c.replace_on_scheduled {
        let reason = "nothing to sweep: REBALANCE_MODE is not careful and REPLACE_ON_SCHEDULED is off";
        return Ok(Reply::Many {
            trigger: Trigger::Sweep,
            instances: Vec::new(),
            reason: Some(reason.into()),
        });
    }
    let now = Utc::now();
    let mut instances = Vec::new();
    for found in aws::marked(deps).await? {
        let step = decide::sweep(found.status, aws::marker(&found), now, undo_after, c.replace_on_scheduled);
        if step == SweepStep::Leave {
            continue;
        }
        let Ok(instance_id) = InstanceId::parse("ec2InstanceId", &found.ec2_instance_id) else { continue };
        let spot = SpotEvent { instance_id, trigger: Trigger::Sweep, time: Some(now) };
        let mut outcome = Outcome::new(&spot, deps.notifier.silent());
        outcome.found(&found);
        outcome.action = Action::AlreadyDraining;
        match step {
            SweepStep::Replace if c.dry_run => outcome.action = Action::DryRun,
            SweepStep::Replace => {
                let replacement = aws::replace(deps, &found).await?;
                if matches!(replacement, Replacement::NotInAGroup(_)) {
                    // Terminating already, or never in a group: nothing to report every few minutes.
                    continue;
                }
                info!(instance_id = %spot.instance_id, ?replacement, "replacement before scheduled maintenance");
                outcome.replacement = Some(replacement);
            }
            _ => {
                if let Some(state) = aws::leaving(deps, &found.ec2_instance_id).await? {
                    (outcome.action, outcome.reason) =
                        (Action::Ignored, Some(format!("Auto Scaling has it {state}")));
                } else if c.dry_run {
                    outcome.action = Action::DryRun;
                } else {
                    aws::reactivate(deps, &found).await?;
                    outcome.action = Action::Reactivated;
                    outcome.notification = deps.notifier.send(&report::undone(&spot, &found)).await;
                }
            }
        }
        instances.push(outcome);
    }
    Ok(Reply::Many { trigger: Trigger::Sweep, instances, reason: None })
}
