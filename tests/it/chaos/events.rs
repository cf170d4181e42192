//! The events of a day, one per step, drawn from the seed: what people, Auto Scaling, EC2, AWS Health and
//! other tools do to the fleet, and forged events anyone able to invoke the functions could send.

use super::day::{self, Lambda};
use super::fleet::{CLUSTER, Fleet, TASK};
use super::{Report, Rng};
use crate::stack::{health, instance_arn, now_iso, state_change};

fn count(report: &mut Report, kind: &'static str) {
    *report.events.entry(kind).or_default() += 1;
}

pub async fn one(
    fleet: &mut Fleet,
    lambda: &mut Lambda<'_>,
    rng: &mut Rng,
    report: &mut Report,
    step: usize,
) {
    let in_service = fleet.in_service().await;
    let statuses = fleet.statuses().await;
    let active: Vec<String> =
        in_service.iter().filter(|id| statuses.get(*id).is_some_and(|s| s == "ACTIVE")).cloned().collect();
    match rng.below(12) {
        0 | 1 => {
            if let (Some(id), true) = (rng.pick(&in_service).cloned(), day::may_scale_in(fleet).await)
                && fleet.terminate(&id, true).await
            {
                count(report, "scale-in termination");
            }
        }
        2 => {
            if let Some(id) = rng.pick(&in_service).cloned()
                && fleet.terminate(&id, false).await
            {
                count(report, "refresh termination");
            }
        }
        3 => spot_warning(fleet, lambda, rng, report, step, &in_service),
        4 => maintenance(fleet, lambda, rng, report, &in_service),
        5 => {
            day::scale_in_run(lambda);
            count(report, "scale-in run");
        }
        6 => {
            if let Some(id) = rng.pick(&active).cloned()
                && let Some(arn) = fleet.registered.get(&id)
            {
                let drained = fleet
                    .world
                    .ecs
                    .update_container_instances_state()
                    .cluster(CLUSTER)
                    .container_instances(arn)
                    .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
                    .send()
                    .await;
                if drained.is_ok() {
                    fleet.others_drains.insert(arn.clone());
                    count(report, "another tool's drain");
                }
            }
        }
        7 => {
            let arns: Vec<String> =
                active.iter().filter_map(|id| fleet.registered.get(id).cloned()).collect();
            if let Some(arn) = rng.pick(&arns).cloned() {
                let group = rng.chance(70).then(|| "service:api".to_owned());
                fleet.world.start_sized_tasks(CLUSTER, &arn, 1, group, TASK).await;
                count(report, "load");
            }
        }
        8 => forged(fleet, lambda, rng, report, &in_service),
        9 => {
            if let Some(id) = rng.pick(&in_service).cloned()
                && fleet.register_again(&id).await
            {
                count(report, "registered again (a stale registration stays)");
            }
        }
        _ => cancel_maintenance(fleet, lambda, rng, report),
    }
}

/// A Spot interruption warning: a stop (EC2 stops it a step later; it runs again later), or a termination
/// (the group replaces it two steps later). Sometimes a second warning follows the first.
fn spot_warning(
    fleet: &mut Fleet,
    lambda: &mut Lambda<'_>,
    rng: &mut Rng,
    report: &mut Report,
    step: usize,
    in_service: &[String],
) {
    let Some(id) = rng.pick(in_service).cloned() else { return };
    let stop = rng.chance(50);
    let kind = if stop { "spot-interruption-stop.json" } else { "spot-interruption-terminate.json" };
    if stop {
        fleet.to_stop.push((step + 1, id.clone()));
    } else {
        fleet.doomed.push((step + 2, id.clone()));
    }
    day::spot_now(lambda, day::warning(kind, &id));
    if rng.chance(20) {
        day::spot_now(lambda, day::warning(kind, &id));
        count(report, "spot warning repeated");
    }
    count(report, "spot warning");
}

/// EC2 schedules a retirement; AWS Health announces it (by ARN or id), or the notice is lost.
fn maintenance(
    fleet: &mut Fleet,
    lambda: &mut Lambda<'_>,
    rng: &mut Rng,
    report: &mut Report,
    in_service: &[String],
) {
    let Some(id) = rng.pick(in_service).cloned() else { return };
    let event = fleet.world.emulator.schedule_ec2_event(&id, "instance-retirement", "2026-12-30T10:00:00Z");
    fleet.scheduled_ever.insert(id.clone());
    fleet.open_events.push((id.clone(), event));
    if rng.chance(25) {
        count(report, "maintenance notice lost");
        return;
    }
    day::spot_now(lambda, day::health_notice(&id, if rng.chance(50) { "upcoming" } else { "open" }, rng));
    count(report, "maintenance scheduled");
}

/// AWS cancels a scheduled maintenance; Health says `closed` (or the notice is lost).
fn cancel_maintenance(fleet: &mut Fleet, lambda: &mut Lambda<'_>, rng: &mut Rng, report: &mut Report) {
    if fleet.open_events.is_empty() {
        return;
    }
    let (id, event) = fleet.open_events.remove(rng.below(fleet.open_events.len()));
    fleet.world.emulator.end_ec2_event(&id, &event, true);
    if rng.chance(70) {
        day::spot_now(lambda, day::health_notice(&id, "closed", rng));
    }
    count(report, "maintenance cancelled");
}

/// Forged events: a `running` for an instance that is stopped or never stopped, Health for an instance EC2
/// schedules nothing for, a lifecycle message for an instance in service, a stopped task that never was.
fn forged(
    fleet: &mut Fleet,
    lambda: &mut Lambda<'_>,
    rng: &mut Rng,
    report: &mut Report,
    in_service: &[String],
) {
    let Some(id) = rng.pick(in_service).cloned() else { return };
    match rng.below(4) {
        0 => {
            let target = rng.pick(&fleet.stopped).cloned().unwrap_or_else(|| id.clone());
            day::spot_now(lambda, state_change(&target, "running", &now_iso()));
            count(report, "forged running event");
        }
        1 if !fleet.scheduled_ever.contains(&id) => {
            day::spot_now(
                lambda,
                health("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "upcoming", &[instance_arn(&id)]),
            );
            count(report, "forged maintenance notice");
        }
        2 => {
            let message = serde_json::json!({"Origin": "AutoScalingGroup", "Destination": "EC2", "Service": "AWS Auto Scaling",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "AutoScalingGroupName": super::fleet::GROUP,
                "LifecycleHookName": super::fleet::HOOK, "LifecycleActionToken": "00000000-0000-0000-0000-000000000000",
                "EC2InstanceId": id, "Time": now_iso()});
            let event = serde_json::json!({"version": "0", "id": "f", "detail-type": "EC2 Instance-terminate Lifecycle Action",
                "source": "aws.autoscaling", "account": "123456789012", "time": now_iso(), "region": "us-east-1",
                "resources": [], "detail": message});
            day::lifecycle_now(lambda, event);
            count(report, "forged lifecycle message");
        }
        _ => {
            if let Some(arn) = fleet.registered.get(&id) {
                day::lifecycle_now(lambda, day::forged_stop(arn));
                count(report, "forged task stop");
            }
        }
    }
}
