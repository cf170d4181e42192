//! Late, repeated and forged lifecycle messages: each can only cause a look, and what AWS shows decides.

use serde_json::{Value, json};

use super::{deps, drive, finished, invoke, scene, terminate, termination};
use lifecycle_drainer::{LifecycleResult, Step, Trigger};

/// The lifecycle message with `change` applied to its body, as a forger (or a stale copy) would send it.
fn forged(message: &Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut event = message.clone();
    let mut body: Value =
        serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    change(&mut body);
    event["Records"][0]["Sns"]["Message"] = json!(body.to_string());
    event
}

#[tokio::test]
async fn an_action_over_already_ends_quietly() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world
        .autoscaling
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("drain")
        .instance_id(&s.instances[0])
        .lifecycle_action_result("ABANDON")
        .send()
        .await
        .unwrap();
    let outcome = invoke(&deps(&s.world, &[]), message).await.unwrap();
    assert_eq!(outcome.actions, [], "{outcome:?}");
    assert!(outcome.reason.unwrap().contains("no open lifecycle action"));
}

/// Lambda retried the first invocation (after about 1 and 2 minutes): the hook, with AWS's shortest
/// heartbeat timeout of 30 s, began 25 s before the drainer runs (its scaling activity says so). Without a
/// heartbeat before its last 5 s run out, Auto Scaling terminates the instance with its task still running.
#[tokio::test]
async fn a_late_message_heartbeats_before_the_hook_expires() {
    integration_tests::needs_emulator!();
    let s = scene(2, 30).await;
    s.world.emulator.draining(8000, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    s.world.emulator.lifecycle_started_ago(25, 25);
    let message = terminate(&s, &s.instances[0]).await;
    let reports = drive(&s, &deps(&s.world, &[]), message, &s.instances[0]).await;
    assert!(reports.iter().any(|r| r.heartbeat), "{reports:?}");
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(finished(&s, &s.instances[0])[0]["how"], "completed");
    assert_eq!(termination(&s, &s.instances[0]).unwrap()["tasks_not_stopped"], json!([]));
}

/// The instance began to wait 20 s before the first look (its scaling activity's start: a load balancer's
/// deregistration delay comes before the wait), more than DRAIN_TIMEOUT_SECONDS of 10: the drain still
/// happens, and its time counts from its own start.
#[tokio::test]
async fn drain_timeout_counts_from_the_drains_start() {
    integration_tests::needs_emulator!();
    let s = scene(2, 30).await;
    s.world.emulator.draining(2000, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    s.world.emulator.lifecycle_started_ago(20, 5);
    let message = terminate(&s, &s.instances[0]).await;
    let reports =
        drive(&s, &deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "10")]), message, &s.instances[0]).await;
    assert_eq!(reports.first().map(|r| r.step), Some(Step::Drained), "{reports:?}");
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(termination(&s, &s.instances[0]).unwrap()["tasks_not_stopped"], json!([]));
}

/// A 30 s heartbeat timeout gives the hook 3,000 s in all, from when the instance began to wait (its
/// scaling activity's start); this one began 2,935 s ago. DRAIN_TIMEOUT_SECONDS of an hour cannot be
/// honoured: the drainer completes the action itself with TIMEOUT_RESULT before the hook would expire,
/// and says why.
#[tokio::test]
async fn a_drain_completes_itself_before_the_hooks_lifetime_ends() {
    integration_tests::needs_emulator!();
    let s = scene(2, 30).await;
    s.world.start_tasks("web", &s.arns[0], 1).await; // standalone: draining never stops it
    s.world.emulator.lifecycle_started_ago(2935, 5);
    let message = terminate(&s, &s.instances[0]).await;
    let reports =
        drive(&s, &deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "3600")]), message, &s.instances[0]).await;
    let action = reports.last().unwrap();
    assert_eq!(
        (action.step, action.result),
        (Step::TimedOut, Some(LifecycleResult::Continue)),
        "{reports:?}"
    );
    assert!(action.reason.as_deref().unwrap().contains("GlobalTimeout"), "{reports:?}");
    // Answered two reconcile periods (1 s here) and a minute before the 3,000 s.
    assert!((2938..2960).contains(&action.waited_seconds), "{reports:?}");
    let finished = finished(&s, &s.instances[0]);
    assert_eq!(
        (finished[0]["how"].as_str(), finished[0]["result"].as_str()),
        (Some("completed"), Some("CONTINUE"))
    );
}

/// A continuation as an earlier version wrote it, naming another cluster and a container instance that is
/// not there: its state is not read. The drain follows what ECS shows.
#[tokio::test]
async fn a_forged_continuation_can_only_cause_a_look() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    s.world.cluster("batch").await;
    let message = terminate(&s, &s.instances[0]).await;
    let event = forged(&message, |m| {
        m["ShipshapeDrain"] = json!({"hop": 1, "cluster": "batch", "container_instance_arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/batch/gone",
            "started_at": "2026-01-01T00:00:00Z", "deadline": "2026-01-01T00:00:01Z", "last_heartbeat_at": "2026-01-01T00:00:00Z"});
    });
    let reports = drive(&s, &deps(&s.world, &[("CLUSTERS", "web,batch")]), event, &s.instances[0]).await;
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(termination(&s, &s.instances[0]).unwrap()["tasks_not_stopped"], json!([]));
}

/// A lifecycle message about an instance in service is not from Auto Scaling: it causes a look, and the
/// look finds nothing to do.
#[tokio::test]
async fn a_message_about_an_instance_in_service_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    let other = s.instances[1].clone();
    let event = forged(&message, |m| m["EC2InstanceId"] = json!(other));
    s.world.emulator.reset_calls();
    let outcome = invoke(&deps(&s.world, &[]), event).await.unwrap();
    // The look (a cold sandbox's first: every group) drains the instance that does wait, and only it.
    assert!(outcome.actions.iter().all(|a| a.instance_id == s.instances[0]), "{outcome:?}");
    assert_eq!(s.world.status("web", &s.arns[1]).await, "ACTIVE");
    assert_eq!(s.world.status("web", &s.arns[0]).await, "DRAINING");
}

#[tokio::test]
async fn a_group_outside_auto_scaling_groups_is_ignored() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.reset_calls();
    let outcome = invoke(&deps(&s.world, &[("AUTO_SCALING_GROUPS", "payments")]), message).await.unwrap();
    assert_eq!(outcome.trigger, Trigger::Ignored);
    assert!(outcome.reason.unwrap().contains("AUTO_SCALING_GROUPS"));
    assert_eq!(s.world.emulator.total_calls(), 0);
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await.as_deref(), Some("Terminating:Wait"));
}

/// The first invocation fails (ECS answers errors past the SDK's retries): nothing is changed, and the
/// next pass, whenever it runs, heartbeats at once and drains to the end.
#[tokio::test]
async fn a_failed_invocation_changes_nothing_and_the_next_pass_drains_to_the_end() {
    integration_tests::needs_emulator!();
    let s = scene(2, 100).await;
    s.world.emulator.draining(3000, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let deps = deps(&s.world, &[]);
    s.world.emulator.fail("ListContainerInstances", 5, "ServerException");
    let first = invoke(&deps, message.clone()).await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(s.world.status("web", &s.arns[0]).await, "ACTIVE", "the failed invocation changed nothing");
    s.world.emulator.age_lifecycle_actions(95);
    let reports = drive(&s, &deps, message, &s.instances[0]).await;
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(termination(&s, &s.instances[0]).unwrap()["tasks_not_stopped"], json!([]));
}
