//! The spot-drainer's scenarios: replacement before maintenance, AWS Health's status codes and entity
//! ARNs, late and forged events, several registrations, stale markers.

use std::time::Duration;

use integration_tests::spot_event;

use crate::scenarios::{Hook, Scene, not_stopped, scene, scene_with};
use crate::stack::{CLUSTER, described, health, instance_arn, now_iso, state_change, status};

const RETIREMENT: &str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED";
const REPLACE: &[(&str, &str)] = &[("REPLACE_ON_SCHEDULED", "true")];

/// Instance `i` is due for retirement, as EC2 lists it and AWS Health announces it (`status_code`).
async fn retirement(s: &mut Scene, i: usize, status_code: &str) -> String {
    let id = s.instances[i].clone();
    let event = s.world().emulator.schedule_ec2_event(&id, "instance-retirement", "2026-12-30T10:00:00Z");
    let _ = s.stack.spot(health(RETIREMENT, status_code, &[id])).await;
    event
}

/// (2) A replacement before maintenance waits until every task is STOPPED: `runningTasksCount` drops as
/// soon as a task's desired status is STOPPED, while it still shuts down (here for 4.5 s).
#[tokio::test]
async fn a_replacement_waits_for_every_task_to_stop() {
    integration_tests::needs_emulator!();
    let mut s = scene_with(2, Hook::None, (300, 1500), REPLACE, &[]).await;
    s.busy(0).await;
    retirement(&mut s, 0, "upcoming").await;
    let gone = s.until_terminated(0, Duration::from_secs(25)).await.expect("replaced");
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{}", s.stack.transcript());
}

/// (3) Only our hook waits for our drain: another tool's 30-second hook with CONTINUE lets the instance go
/// with its tasks running.
#[tokio::test]
async fn another_tools_hook_does_not_wait_for_the_drain() {
    integration_tests::needs_emulator!();
    let mut s = scene_with(2, Hook::Another(2), (6000, 300), REPLACE, &[]).await;
    s.busy(0).await;
    retirement(&mut s, 0, "upcoming").await;
    let gone = s.until_terminated(0, Duration::from_secs(25)).await.expect("replaced");
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{}", s.stack.transcript());
}

/// (4) A `closed` Health event (done or cancelled) never drains.
#[tokio::test]
async fn a_closed_health_event_never_drains() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    let answer = s.stack.spot(health(RETIREMENT, "closed", &[id])).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(status(s.world(), &s.arns[0]).await, "ACTIVE", "{answer:?}");
}

/// (4) Health names instances by ARN today, by id in older events: both drain.
#[tokio::test]
async fn health_events_name_instances_by_arn_or_by_id() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::None, (300, 300)).await;
    for i in [0, 1] {
        s.world().emulator.schedule_ec2_event(&s.instances[i], "instance-stop", "2026-12-30T10:00:00Z");
    }
    let named = [instance_arn(&s.instances[0]), s.instances[1].clone()];
    let answer = s.stack.spot(health("AWS_EC2_INSTANCE_STOP_SCHEDULED", "upcoming", &named)).await;
    assert!(answer.is_ok(), "{answer:?}");
    for i in [0, 1] {
        assert_eq!(status(s.world(), &s.arns[i]).await, "DRAINING", "{i}: {answer:?}");
    }
    assert_eq!(status(s.world(), &s.arns[2]).await, "ACTIVE");
}

/// (4) A drain for maintenance that AWS cancelled, or whose window passed with the instance running, is
/// undone.
#[tokio::test]
async fn a_drain_for_maintenance_that_will_not_happen_is_undone() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::None, (300, 300)).await;
    let cancelled = retirement(&mut s, 0, "upcoming").await;
    let id = s.instances[1].clone();
    let stop = s.world().emulator.schedule_ec2_event(&id, "instance-stop", "2026-12-30T10:00:00Z");
    let _ = s.stack.spot(health("AWS_EC2_INSTANCE_STOP_SCHEDULED", "upcoming", &[id])).await;
    for i in [0, 1] {
        assert_eq!(status(s.world(), &s.arns[i]).await, "DRAINING", "{i}\n{}", s.stack.transcript());
    }
    // AWS cancels the retirement; the stop's window passes with the instance running (it is completed).
    s.world().emulator.end_ec2_event(&s.instances[0], &cancelled, true);
    s.world().emulator.end_ec2_event(&s.instances[1], &stop, false);
    s.stack.run_for(Duration::from_secs(3)).await;
    for i in [0, 1] {
        let (status, attributes) = described(s.world(), &s.arns[i]).await;
        assert_eq!((status.as_str(), attributes), ("ACTIVE", vec![]), "{i}\n{}", s.stack.transcript());
    }
}

/// (5) A Spot instance stopped, started again and warned again: the `running` event of the first start,
/// delivered late, never sets the second drain back to ACTIVE.
#[tokio::test]
async fn a_late_running_event_never_undoes_a_newer_drain() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    let _ = s.stack.spot(spot_event("spot-interruption-stop.json", &id)).await;
    s.world().ec2.stop_instances().instance_ids(&id).send().await.expect("StopInstances");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.world().ec2.start_instances().instance_ids(&id).send().await.expect("StartInstances");
    let first_start = state_change(&id, "running", &now_iso());
    // The first `running` event is retried late; meanwhile EC2 warns again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = s.stack.spot(spot_event("spot-interruption-stop.json", &id)).await;
    let late = s.stack.spot(first_start).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{late:?}\n{}", s.stack.transcript());
}

/// (6) Before a replacement: a forged Health event for an instance EC2 schedules nothing for changes
/// nothing.
#[tokio::test]
async fn a_forged_health_event_replaces_nothing() {
    integration_tests::needs_emulator!();
    let mut s = scene_with(2, Hook::None, (300, 300), REPLACE, &[]).await;
    let id = s.instances[0].clone();
    let _ = s.stack.spot(health(RETIREMENT, "upcoming", &[id])).await;
    s.stack.run_for(Duration::from_secs(2)).await;
    assert!(s.terminated(0).is_none(), "{}", s.stack.transcript());
    assert_eq!(status(s.world(), &s.arns[0]).await, "ACTIVE", "{}", s.stack.transcript());
}

/// (6) Before a reactivation: a forged `running` event for an instance that is stopped changes nothing.
#[tokio::test]
async fn a_forged_running_event_reactivates_nothing() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    let _ = s.stack.spot(spot_event("spot-interruption-stop.json", &id)).await;
    s.world().ec2.stop_instances().instance_ids(&id).send().await.expect("StopInstances");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forged = s.stack.spot(state_change(&id, "running", &now_iso())).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{forged:?}");
}

/// (7) A stale, disconnected registration next to the live one: the warning drains the live one.
#[tokio::test]
async fn a_warning_drains_the_live_registration() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let again = s.world().register(CLUSTER, &s.instances[0]).await;
    let (stale, live) =
        if again < s.arns[0] { (again, s.arns[0].clone()) } else { (s.arns[0].clone(), again) };
    s.world().emulator.agent(&stale, false);
    let answer = s.stack.spot(spot_event("spot-interruption-terminate.json", &s.instances[0].clone())).await;
    assert_eq!(status(s.world(), &live).await, "DRAINING", "{answer:?}");
}

/// (9) A failure between writing the marker and setting DRAINING leaves no marker that makes someone
/// else's later drain look like ours.
#[tokio::test]
async fn a_drain_that_failed_half_way_leaves_nothing_that_claims_another_drain() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    s.world().emulator.fail("UpdateContainerInstancesState", 1, "AccessDeniedException");
    let failed = s.stack.spot(spot_event("spot-interruption-stop.json", &id)).await;
    assert!(failed.is_err(), "{failed:?}");
    // An operator drains the instance; later it stops and runs again.
    drain_by_hand(&s, 0).await;
    restart(&s, &id).await;
    let _ = s.stack.spot(state_change(&id, "running", &now_iso())).await;
    s.stack.run_for(Duration::from_secs(2)).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{}", s.stack.transcript());
}

/// (9) A failure between setting ACTIVE and removing the marker likewise.
#[tokio::test]
async fn an_undo_that_failed_half_way_leaves_nothing_that_claims_another_drain() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    let _ = s.stack.spot(spot_event("spot-interruption-stop.json", &id)).await;
    restart(&s, &id).await;
    s.world().emulator.fail("DeleteAttributes", 1, "AccessDeniedException");
    let _ = s.stack.spot(state_change(&id, "running", &now_iso())).await;
    s.stack.run_for(Duration::from_secs(2)).await;
    // An operator drains it now; later it stops and runs again.
    drain_by_hand(&s, 0).await;
    restart(&s, &id).await;
    let _ = s.stack.spot(state_change(&id, "running", &now_iso())).await;
    s.stack.run_for(Duration::from_secs(2)).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{}", s.stack.transcript());
}

/// A registration left behind by an instance EC2 no longer knows (stopped by a Spot `stop`, terminated
/// while stopped: ECS keeps it), still DRAINING under our stop marker, must not make the sweep forget what
/// EC2 schedules for the instances asked about with it: one unknown id fails `DescribeInstanceStatus` for
/// the whole request.
#[tokio::test]
async fn an_instance_ec2_forgot_does_not_hide_the_maintenance_of_others() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::None, (300, 300)).await;
    retirement(&mut s, 0, "upcoming").await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{}", s.stack.transcript());
    let old = s.world().group("old", 1).await.remove(0);
    let gone = s.world().register(CLUSTER, &old).await;
    s.world().emulator.agent(&gone, false);
    let marker = format!("spot-drainer:stop@{}", now_iso());
    s.world()
        .ecs
        .put_attributes()
        .cluster(CLUSTER)
        .attributes(
            aws_sdk_ecs::types::Attribute::builder()
                .name("shipshape.drain")
                .value(marker)
                .target_id(&gone)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("PutAttributes");
    s.world()
        .ecs
        .update_container_instances_state()
        .cluster(CLUSTER)
        .container_instances(&gone)
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("UpdateContainerInstancesState");
    s.world().ec2.terminate_instances().instance_ids(&old).send().await.expect("TerminateInstances");
    s.world().emulator.forget_instance(&old);
    s.stack.run_for(Duration::from_secs(3)).await;
    let transcript = s.stack.transcript();
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{transcript}");
    assert!(!transcript.contains("reactivated"), "undone while EC2 still schedules it:\n{transcript}");
}

/// A stop warning EventBridge delivers late, after EC2 stopped the instance and ran it again, drains it (it
/// cannot tell), and the sweep undoes that drain: the warning's own time dates the drain, not when it was
/// handled, so the restart is seen to come after it.
#[tokio::test]
async fn a_stop_warning_delivered_after_the_restart_is_undone() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    let mut warning = spot_event("spot-interruption-stop.json", &id);
    warning["time"] = serde_json::json!(now_iso());
    restart(&s, &id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = s.stack.spot(warning).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{}", s.stack.transcript());
    s.stack.run_for(Duration::from_secs(3)).await;
    let (status, attributes) = described(s.world(), &s.arns[0]).await;
    assert_eq!((status.as_str(), attributes), ("ACTIVE", vec![]), "{}", s.stack.transcript());
}

async fn drain_by_hand(s: &Scene, i: usize) {
    s.world()
        .ecs
        .update_container_instances_state()
        .cluster(CLUSTER)
        .container_instances(&s.arns[i])
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("UpdateContainerInstancesState");
}

/// EC2 stops the instance, then starts it again a second later (its launch time is then later than any
/// drain before).
async fn restart(s: &Scene, id: &str) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.world().ec2.stop_instances().instance_ids(id).send().await.expect("StopInstances");
    s.world().ec2.start_instances().instance_ids(id).send().await.expect("StartInstances");
}

/// A forged (or very late) warning of another kind, dated long ago, for an instance we drained for a stop:
/// the marker never goes back in time, so the sweep does not take the instance's launch for a restart
/// after the drain, and the drain stands until the stop.
#[tokio::test]
async fn an_old_warning_of_another_kind_never_makes_a_drain_undoable() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::None, (300, 300)).await;
    let id = s.instances[0].clone();
    let _ = s.stack.spot(spot_event("spot-interruption-stop.json", &id)).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING");
    let mut forged = spot_event("spot-interruption-stop.json", &id);
    forged["detail"]["instance-action"] = serde_json::json!("hibernate");
    forged["time"] = serde_json::json!("1970-01-01T00:00:00Z");
    let _ = s.stack.spot(forged).await;
    s.stack.run_for(Duration::from_secs(3)).await;
    assert_eq!(status(s.world(), &s.arns[0]).await, "DRAINING", "{}", s.stack.transcript());
}
