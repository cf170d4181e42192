//! The spot-drainer's reconcile, on its schedule and for one instance when an event names it (running
//! again, a Health event closed): every drain of ours is looked at again against what EC2 says now, and
//! undone once its reason is gone, or replaced before its maintenance; with `DRAIN_ON` `scheduled`, every
//! instance EC2 schedules maintenance for is drained, so a lost Health notice costs one period. Markers
//! that stand for no drain (pending ones a failure left, ours on an instance someone set ACTIVE) are
//! cleared.

use chrono::{DateTime, Utc};
use shared::drain::marker::Phase;
use shared::drain::{Marker, Owner, act};
use shared::ecs::{Found, InstanceStatus};
use shared::events::InstanceId;
use tracing::info;

use crate::config::RebalanceMode;
use crate::decide::{self, Ec2, Sweep};
use crate::input::{MaintenanceKind, SpotEvent, Trigger};
use crate::{Action, Deps, Error, Outcome, Reply, aws, flow, report};

pub async fn sweep(deps: &Deps) -> Result<Reply, Error> {
    let now = Utc::now();
    let marked = aws::marked(deps).await?;
    clear_stale(deps, &marked, now).await?;
    let mut instances = Vec::new();
    if decide::wanted(Trigger::Scheduled, &deps.config.drain_on) {
        instances.extend(maintenance(deps, &marked).await?);
    }
    let ours: Vec<Found> =
        marked.into_iter().filter(|f| held(f) && f.status == InstanceStatus::Draining).collect();
    instances.extend(look(deps, &ours, Trigger::Sweep, now).await?);
    Ok(Reply::Many { trigger: Trigger::Sweep, instances, reason: None })
}

/// Our drains of these instances, looked at again (an event named them).
pub async fn instances(deps: &Deps, ids: &[InstanceId], trigger: Trigger) -> Result<Vec<Outcome>, Error> {
    let found = aws::registrations(deps, ids).await?;
    let ours: Vec<Found> = found
        .by_instance
        .values()
        .flatten()
        .filter(|f| held(f) && f.status == InstanceStatus::Draining)
        .cloned()
        .collect();
    look(deps, &ours, trigger, Utc::now()).await
}

fn held(f: &Found) -> bool {
    Marker::read(&f.attributes).is_some_and(|m| m.held_by(Owner::SpotDrainer))
}

/// A pending marker no invocation is finishing, or ours on an instance that is not DRAINING: neither
/// stands for a drain of ours, and left there either could make someone else's drain look like ours.
async fn clear_stale(deps: &Deps, marked: &[Found], now: DateTime<Utc>) -> Result<(), Error> {
    if deps.config.dry_run {
        return Ok(());
    }
    for f in marked {
        let Some(m) = Marker::read(&f.attributes) else { continue };
        let draining = f.status == InstanceStatus::Draining;
        if draining && m.phase == Phase::Pending && m.adopted(Owner::SpotDrainer, now) {
            // Our drain happened and its held write failed: ours, or it would never be undone.
            info!(container_instance_arn = %f.container_instance_arn, marker = %m.value(), "holding our pending marker on a drain that stands");
            act::mark(&deps.ecs, &f.cluster, std::slice::from_ref(f), &m.held()).await?;
            continue;
        }
        let stale = m.abandoned(now) || (m.held_by(Owner::SpotDrainer) && f.status == InstanceStatus::Active);
        if stale {
            info!(container_instance_arn = %f.container_instance_arn, marker = %m.value(), "clearing a marker that stands for no drain");
            act::clear(&deps.ecs, &f.cluster, std::slice::from_ref(f)).await?;
        }
    }
    Ok(())
}

/// Every instance EC2 schedules maintenance for, not drained by us yet: drained (and replaced, with
/// `REPLACE_ON_SCHEDULED`) as its Health notice would have had it.
async fn maintenance(deps: &Deps, marked: &[Found]) -> Result<Vec<Outcome>, Error> {
    let already: Vec<&str> = marked.iter().filter(|f| held(f)).map(|f| f.ec2_instance_id.as_str()).collect();
    let ids: Vec<String> =
        aws::scheduled(deps).await?.into_iter().filter(|i| !already.contains(&i.as_str())).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let parsed: Vec<InstanceId> =
        ids.iter().filter_map(|i| InstanceId::parse("InstanceId", i).ok()).collect();
    let found = aws::registrations(deps, &parsed).await?;
    let ec2 = aws::ec2(deps, &ids).await?;
    let mut out = Vec::new();
    for id in &parsed {
        let regs = found.of(id.as_str());
        if !regs.iter().any(|f| f.status == InstanceStatus::Active) {
            continue;
        }
        let facts = ec2.get(id.as_str()).cloned().unwrap_or_default();
        let Some(kind) = facts.open_events.iter().find_map(|c| MaintenanceKind::of_ec2_code(c)) else {
            continue;
        };
        out.push(flow::scheduled(deps, id, kind, regs, &facts).await?);
    }
    Ok(out)
}

/// Decides, for each of our drains, from what EC2 says of its instance now.
async fn look(
    deps: &Deps,
    ours: &[Found],
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, Error> {
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = ours.iter().map(|f| f.ec2_instance_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let ec2 = aws::ec2(deps, &ids).await?;
    let c = &deps.config;
    let undo_after = (c.rebalance_mode == RebalanceMode::Careful).then_some(c.rebalance_undo);
    let mut out = Vec::new();
    for f in ours {
        let Some(marker) = Marker::read(&f.attributes) else { continue };
        let facts = ec2.get(&f.ec2_instance_id).cloned().unwrap_or_default();
        let Ok(instance_id) = InstanceId::parse("ec2InstanceId", &f.ec2_instance_id) else { continue };
        let spot = SpotEvent { instance_id, trigger, time: Some(now) };
        let mut outcome = Outcome::new(&spot, deps.notifier.silent());
        outcome.found(f, std::slice::from_ref(f));
        outcome.action = Action::AlreadyDraining;
        match decide::sweep(&marker, &facts, now, undo_after, c.replace_on_scheduled) {
            Sweep::Leave => {
                if trigger == Trigger::Sweep {
                    continue;
                }
                outcome.reason = Some(format!("drained for {}, which still stands", marker.reason));
            }
            Sweep::Undo(why) => undo(deps, f, &marker, why, &mut outcome).await?,
            Sweep::Replace => replace(deps, &spot, f, &facts, &mut outcome).await?,
        }
        out.push(outcome);
    }
    Ok(out)
}

/// Sets our drain back to ACTIVE: never for an instance its group is removing, and only if our marker is
/// still the one the decision read (read again right before: a newer warning may have stamped it since).
async fn undo(
    deps: &Deps,
    f: &Found,
    read: &Marker,
    why: String,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    if let Some(state) = aws::leaving(deps, &f.ec2_instance_id).await? {
        (outcome.action, outcome.reason) = (Action::Ignored, Some(format!("Auto Scaling has it {state}")));
        return Ok(());
    }
    let now = aws::again(deps, f).await?;
    let same = now.as_ref().is_some_and(|n| {
        n.status == InstanceStatus::Draining && Marker::read(&n.attributes).as_ref() == Some(read)
    });
    let Some(now) = now.filter(|_| same) else {
        (outcome.action, outcome.reason) =
            (Action::Ignored, Some("our marker changed meanwhile: a newer drain stands".into()));
        return Ok(());
    };
    outcome.reason = Some(why);
    if deps.config.dry_run {
        outcome.action = Action::DryRun;
        return Ok(());
    }
    let change = act::undo(&deps.ecs, &now.cluster, std::slice::from_ref(&now)).await?;
    if let Some(refused) = change.refused.into_iter().next() {
        return Err(Error::DrainRejected { container_instance_arn: refused.arn, reason: refused.reason });
    }
    outcome.action = Action::Reactivated;
    outcome.notification = deps
        .notifier
        .send(&report::undone(&outcome.instance_id, outcome.reason.as_deref().unwrap_or(""), &now))
        .await;
    Ok(())
}

async fn replace(
    deps: &Deps,
    spot: &SpotEvent,
    f: &Found,
    facts: &Ec2,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    outcome.maintenance = facts.open_events.iter().find_map(|c| MaintenanceKind::of_ec2_code(c));
    if deps.config.dry_run {
        outcome.action = Action::DryRun;
        return Ok(());
    }
    let regs = aws::registrations(deps, std::slice::from_ref(&spot.instance_id)).await?;
    let replacement =
        aws::replace(deps, spot.instance_id.as_str(), regs.of(spot.instance_id.as_str())).await?;
    info!(instance_id = %f.ec2_instance_id, ?replacement, "replacement before scheduled maintenance");
    outcome.replacement = Some(replacement);
    Ok(())
}
