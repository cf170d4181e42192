//! The events that drain: a Spot interruption warning or a rebalance recommendation drains every
//! registration of its instance at once (the warning gives two minutes); scheduled maintenance drains the
//! instances AWS Health names that EC2 confirms, and may have them replaced. A drain is safe to do on a
//! forged event; anything that cannot be taken back (a replacement) is confirmed with EC2 first.

use chrono::Utc;
use shared::drain::act;
use shared::ecs::{Found, InstanceStatus};
use shared::events::InstanceId;
use tracing::{info, warn};

use crate::config::RebalanceMode;
use crate::decide::{self, Ec2};
use crate::input::{HealthStatus, Maintenance, MaintenanceKind, SpotEvent, Trigger};
use crate::{Action, Deps, Error, Outcome, Reply, aws, reconcile, report};

/// A Spot interruption warning or a rebalance recommendation; an instance running again is a reason to look
/// at our drain of it ([`reconcile`]).
pub async fn event(deps: &Deps, spot: &SpotEvent) -> Result<Outcome, Error> {
    if spot.trigger == Trigger::Running {
        let mut looked =
            reconcile::instances(deps, std::slice::from_ref(&spot.instance_id), Trigger::Running).await?;
        return Ok(looked.pop().unwrap_or_else(|| not_ours(deps, spot)));
    }
    let mut outcome = Outcome::new(spot, deps.notifier.silent());
    if !decide::wanted(spot.trigger, &deps.config.drain_on) {
        outcome.reason = Some(format!("DRAIN_ON does not include {}", spot.trigger.name()));
        return Ok(outcome);
    }
    let found = aws::registrations(deps, std::slice::from_ref(&spot.instance_id)).await?;
    outcome.missing_clusters = found.missing_clusters.clone();
    let regs = found.of(spot.instance_id.as_str());
    drain(deps, spot, regs, &mut outcome).await?;
    if outcome.action == Action::Drained
        && let Some(first) = regs.first()
    {
        outcome.notification = deps.notifier.send(&report::drained(spot, first)).await;
    }
    Ok(outcome)
}

fn not_ours(deps: &Deps, spot: &SpotEvent) -> Outcome {
    let mut outcome = Outcome::new(spot, deps.notifier.silent());
    outcome.reason = Some("no drain of ours to look at".into());
    outcome
}

/// Drains every ACTIVE registration of the instance; a registration already DRAINING under our marker has
/// it stamped again with this event. The outcome says which.
pub async fn drain(
    deps: &Deps,
    spot: &SpotEvent,
    regs: &[Found],
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let Some(live) = regs.iter().find(|f| f.status == InstanceStatus::Active).or(regs.first()) else {
        outcome.action = Action::NotAnEcsInstance;
        return Ok(());
    };
    outcome.found(live, regs);
    let active: Vec<Found> = regs.iter().filter(|f| f.status == InstanceStatus::Active).cloned().collect();
    if active.is_empty() {
        outcome.action = if regs.iter().any(|f| f.status == InstanceStatus::Draining) {
            Action::AlreadyDraining
        } else {
            Action::NotDrainable
        };
        if outcome.action == Action::NotDrainable {
            outcome.reason = Some(format!("container instance is {}", live.status));
        }
        return restamp(deps, spot, regs).await;
    }
    if deps.config.dry_run {
        outcome.action = Action::DryRun;
        return Ok(());
    }
    if spot.trigger == Trigger::Rebalance
        && deps.config.rebalance_mode == RebalanceMode::Careful
        && let Err(why) = enough_without(deps, live).await?
    {
        (outcome.action, outcome.reason) = (Action::Ignored, Some(format!("careful rebalance: {why}")));
        return Ok(());
    }
    let marker = decide::marker_for(spot.trigger, dated(spot));
    for cluster in clusters(&active) {
        let here: Vec<Found> = active.iter().filter(|f| f.cluster == cluster).cloned().collect();
        let change = act::drain(&deps.ecs, &cluster, &here, marker.as_ref()).await?;
        if let (true, Some(refused)) = (change.done.is_empty(), change.refused.into_iter().next()) {
            return Err(Error::DrainRejected { container_instance_arn: refused.arn, reason: refused.reason });
        }
    }
    outcome.action = Action::Drained;
    restamp(deps, spot, regs).await
}

/// When the event says it happened (its envelope's `time`), never later than now: a drain dated by a late
/// delivery would outdate a restart that came before it, and never be undone.
fn dated(spot: &SpotEvent) -> chrono::DateTime<Utc> {
    let now = Utc::now();
    spot.time.map_or(now, |t| t.min(now))
}

/// Registrations already DRAINING under our marker: stamped again with this event (a restart before it
/// can then never undo this drain; a termination is never undone), and set DRAINING again with it: a
/// sweep that undid the drain between our read and our stamp must not leave the instance ACTIVE. Those
/// DRAINING under the scale-in-cleaner's marker become ours ([`decide::take_over`]).
async fn restamp(deps: &Deps, spot: &SpotEvent, regs: &[Found]) -> Result<(), Error> {
    if deps.config.dry_run {
        return Ok(());
    }
    let at = dated(spot);
    for f in regs.iter().filter(|f| f.status == InstanceStatus::Draining) {
        let marker = shared::drain::Marker::read(&f.attributes);
        let one = std::slice::from_ref(f);
        if let Some(ours) = decide::take_over(marker.as_ref(), spot.trigger, at) {
            // Ours, then DRAINING asserted again: the cleaner may have been undoing its drain meanwhile.
            act::mark(&deps.ecs, &f.cluster, one, &ours).await?;
            act::drain(&deps.ecs, &f.cluster, one, None).await?;
        }
        if let Some(newer) = decide::after_warning(marker.as_ref(), spot.trigger, at) {
            // Held at once (the drain is ours already: never a pending phase that could claim less), then
            // DRAINING asserted again, in case a sweep undid it since our read.
            act::mark(&deps.ecs, &f.cluster, one, &newer).await?;
            act::drain(&deps.ecs, &f.cluster, one, None).await?;
        }
    }
    Ok(())
}

/// Whether the cluster keeps its spare capacity once the instance's tasks have moved elsewhere.
async fn enough_without(deps: &Deps, found: &Found) -> Result<Result<(), String>, Error> {
    let others = aws::others_in_cluster(deps, found).await?;
    let me = aws::room_of(deps, found).await?;
    let c = &deps.config;
    Ok(decide::spare_without(me, &others, c.reserve_cpu_percent, c.reserve_memory_percent))
}

/// Scheduled maintenance, as AWS Health announces it: `closed` (done, or cancelled) is a reason to look at
/// our drains of the instances; otherwise each instance EC2 confirms (an open scheduled event) is drained
/// and, with `REPLACE_ON_SCHEDULED`, replaced. An instance EC2 schedules nothing for is left as it is.
pub async fn maintenance(deps: &Deps, m: &Maintenance) -> Result<Reply, Error> {
    if !decide::wanted(Trigger::Scheduled, &deps.config.drain_on) {
        let reason = "DRAIN_ON does not include scheduled".to_owned();
        return Ok(Reply::Many { trigger: Trigger::Scheduled, instances: Vec::new(), reason: Some(reason) });
    }
    if m.status == HealthStatus::Closed {
        let instances = reconcile::instances(deps, &m.instance_ids, Trigger::Scheduled).await?;
        let reason = "AWS Health closed the event: our drains of its instances were looked at".to_owned();
        return Ok(Reply::Many { trigger: Trigger::Scheduled, instances, reason: Some(reason) });
    }
    let ids: Vec<String> = m.instance_ids.iter().map(ToString::to_string).collect();
    let ec2 = aws::ec2(deps, &ids).await?;
    let found = aws::registrations(deps, &m.instance_ids).await?;
    let mut instances = Vec::new();
    for id in &m.instance_ids {
        let facts = ec2.get(id.as_str()).cloned().unwrap_or_default();
        let mut outcome = scheduled(deps, id, m.kind, found.of(id.as_str()), &facts).await?;
        outcome.missing_clusters = found.missing_clusters.clone();
        instances.push(outcome);
    }
    Ok(Reply::Many { trigger: Trigger::Scheduled, instances, reason: None })
}

/// Drains an instance for maintenance EC2 schedules (`facts` confirm it), then asks for its replacement
/// with `REPLACE_ON_SCHEDULED`. A reboot leaves the instance running: drained only to be replaced.
pub async fn scheduled(
    deps: &Deps,
    id: &InstanceId,
    kind: MaintenanceKind,
    regs: &[Found],
    facts: &Ec2,
) -> Result<Outcome, Error> {
    let spot = SpotEvent { instance_id: id.clone(), trigger: Trigger::Scheduled, time: Some(Utc::now()) };
    let mut outcome = Outcome::new(&spot, deps.notifier.silent());
    outcome.maintenance = Some(kind);
    let c = &deps.config;
    if facts.open_events.is_empty() {
        outcome.reason = Some("EC2 lists no scheduled event for it: not confirmed, nothing changed".into());
        return Ok(outcome);
    }
    if kind == MaintenanceKind::Reboot && !c.replace_on_scheduled {
        outcome.reason = Some(
            "a reboot leaves the instance running: drained only to be replaced (REPLACE_ON_SCHEDULED)".into(),
        );
        return Ok(outcome);
    }
    drain(deps, &spot, regs, &mut outcome).await?;
    if outcome.action == Action::Drained
        && let Some(first) = regs.first()
    {
        outcome.notification = deps.notifier.send(&report::scheduled(id.as_str(), kind, first)).await;
    }
    if c.replace_on_scheduled && matches!(outcome.action, Action::Drained | Action::AlreadyDraining) {
        let again = aws::registrations(deps, std::slice::from_ref(id)).await?;
        let replacement = aws::replace(deps, id.as_str(), again.of(id.as_str())).await?;
        info!(instance_id = %id, ?replacement, "replacement before scheduled maintenance");
        outcome.replacement = Some(replacement);
    }
    if outcome.action == Action::NotAnEcsInstance {
        warn!(instance_id = %id, "scheduled maintenance for an instance in none of the clusters");
    }
    Ok(outcome)
}

fn clusters(regs: &[Found]) -> Vec<String> {
    let mut clusters: Vec<String> = regs.iter().map(|f| f.cluster.clone()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    clusters
}
