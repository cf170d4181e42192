//! lifecycle-drainer against the emulator, with the real SDK: the group's hook sends the lifecycle
//! message to SNS, an SQS subscription hands it to the test, the test hands it to the handler, and then the
//! schedule's reconcile runs every few hundred milliseconds, as Lambda would run it every period.

mod forged;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use integration_tests::{Topic, World, sample_event};
use lambda_runtime::{Context, LambdaEvent};
use lifecycle_drainer::{ActionReport, Config, Deps, Error, LifecycleResult, Outcome, Step, handler};
use serde_json::{Value, json};
use shared::config::Env;
use shared::edge::ErrorType;

use crate::stack::scheduled;

const FAST: &[(&str, &str)] = &[
    ("CLUSTERS", "web"),
    ("LIFECYCLE_HOOK_NAMES", "drain"),
    ("DRAIN_TIMEOUT_SECONDS", "60"),
    ("RECONCILE_PERIOD_SECONDS", "1"),
    ("SETTLE_SECONDS", "1"),
];

fn deps(world: &World, extra: &[(&str, &str)]) -> Deps {
    let map: HashMap<&str, &str> = FAST.iter().chain(extra).copied().collect();
    Deps::new(&world.sdk, Config::from_env(Env::from_map(&map)).expect("config"))
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Outcome, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

pub struct Scene {
    pub world: World,
    pub topic: Topic,
    pub instances: Vec<String>,
    pub arns: Vec<String>,
}

/// Group `web` of `count` instances, all registered in cluster `web`, with a terminating hook `drain`
/// on topic `hooks`. Service tasks stop 300 ms after their instance starts draining. A heartbeat timeout
/// under AWS's 30 s minimum is let through by the emulator for this test.
pub async fn scene(count: i32, heartbeat_timeout: i32) -> Scene {
    let world = World::new().await;
    if let Ok(short @ 1..30) = u64::try_from(heartbeat_timeout) {
        world.emulator.min_heartbeat_timeout(short);
    }
    world.emulator.draining(300, 100);
    let topic = world.topic("hooks").await;
    let instances = world.group("web", count).await;
    world.cluster("web").await;
    let mut arns = Vec::new();
    for id in &instances {
        arns.push(world.register("web", id).await);
    }
    world.hook("web", &topic, heartbeat_timeout, "ABANDON").await;
    let test_notifications = world.sns_events(&topic).await;
    assert_eq!(test_notifications.len(), 1);
    Scene { world, topic, instances, arns }
}

/// Terminates `instance` through the group and returns the lifecycle message Lambda would get.
pub async fn terminate(s: &Scene, instance: &str) -> Value {
    s.world.terminate(instance).await;
    let mut events = s.world.sns_events(&s.topic).await;
    assert_eq!(events.len(), 1, "one lifecycle message per termination");
    events.remove(0)
}

/// The lifecycle actions of `instance` that ended, without their time.
pub fn finished(s: &Scene, instance: &str) -> Vec<Value> {
    let all = s.world.emulator.lifecycle_actions();
    let mut ended: Vec<Value> = all["finished"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["instance_id"] == instance)
        .cloned()
        .collect();
    for a in &mut ended {
        a.as_object_mut().unwrap().remove("at");
    }
    ended
}

/// Hands `message` to the function, then runs its schedule until `instance`'s action is over (or 30 s
/// pass): the report of that action from each invocation, in order.
pub async fn drive(s: &Scene, deps: &Deps, message: Value, instance: &str) -> Vec<ActionReport> {
    let mut reports = Vec::new();
    let mut payload = message;
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        let outcome = invoke(deps, payload).await.unwrap();
        reports.extend(outcome.actions.into_iter().filter(|a| a.instance_id == instance));
        if reports.last().is_some_and(|a| a.step.ends_action()) || !finished(s, instance).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        payload = scheduled();
    }
    reports
}

fn steps(reports: &[ActionReport]) -> Vec<Step> {
    let mut steps: Vec<Step> = reports.iter().map(|r| r.step).collect();
    steps.dedup();
    steps
}

fn termination(s: &Scene, instance: &str) -> Option<Value> {
    s.world.emulator.terminations().into_iter().find(|t| t["instance_id"] == instance)
}

#[tokio::test]
async fn drains_then_completes_once_no_task_is_left() {
    integration_tests::needs_emulator!();
    let s = scene(3, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 2).await;
    let deps = deps(&s.world, &[]);
    assert_eq!(
        invoke(&deps, sample_event("lifecycle-test-notification-sns.json")).await.unwrap().actions,
        []
    );
    let message = terminate(&s, &s.instances[0]).await;
    let reports = drive(&s, &deps, message, &s.instances[0]).await;

    assert_eq!(steps(&reports).first(), Some(&Step::Drained), "{reports:?}");
    let last = reports.last().unwrap();
    assert_eq!(
        (last.step, last.result, last.tasks_left),
        (Step::Completed, Some(LifecycleResult::Continue), 0),
        "{reports:?}"
    );
    assert_eq!(last.container_instances, [s.arns[0].clone()]);
    assert_eq!(
        finished(&s, &s.instances[0]),
        [
            json!({"instance_id": s.instances[0], "group": "web", "hook": "drain", "result": "CONTINUE", "how": "completed", "transition": "autoscaling:EC2_INSTANCE_TERMINATING"})
        ]
    );
    let calls = s.world.emulator.calls();
    assert_eq!(calls.get("autoscaling:CompleteLifecycleAction"), Some(&1));
    assert_eq!(calls.get("ecs:UpdateContainerInstancesState"), Some(&1));
    assert_eq!(
        calls.get("sns:Publish"),
        None,
        "no continuation: nothing is carried from one invocation to the next"
    );
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await, None);
    assert_eq!(s.world.status("web", &s.arns[1]).await, "ACTIVE");
    assert_eq!(termination(&s, &s.instances[0]).unwrap()["tasks_not_stopped"], json!([]));
}

#[tokio::test]
async fn a_task_placed_just_before_the_drain_is_waited_for_while_ecs_cannot_describe_it_yet() {
    integration_tests::needs_emulator!();
    let s = scene(3, 300).await;
    // ECS placed a task on the instance a moment before Auto Scaling terminated it: ListTasks lists it,
    // DescribeTasks does not know it yet (eventual consistency).
    s.world.emulator.describe_tasks_lag(3.0);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let reports = drive(&s, &deps(&s.world, &[]), message, &s.instances[0]).await;
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(termination(&s, &s.instances[0]).unwrap()["tasks_not_stopped"], json!([]));
}

#[tokio::test]
async fn the_eventbridge_form_drains_too() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[1], "api", 1).await;
    let message = terminate(&s, &s.instances[1]).await;
    let lifecycle: Value =
        serde_json::from_str(message["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    let mut event = sample_event("lifecycle-terminate-eventbridge.json");
    for key in ["LifecycleActionToken", "EC2InstanceId", "LifecycleHookName", "AutoScalingGroupName"] {
        event["detail"][key] = lifecycle[key].clone();
    }
    let reports = drive(&s, &deps(&s.world, &[]), event, &s.instances[1]).await;
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(s.world.lifecycle_state(&s.instances[1]).await, None);
}

#[tokio::test]
async fn on_the_deadline_it_completes_with_continue_by_default() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_tasks("web", &s.arns[0], 1).await; // standalone: draining never stops it
    let message = terminate(&s, &s.instances[0]).await;
    let reports =
        drive(&s, &deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "2")]), message, &s.instances[0]).await;

    let last = reports.last().unwrap();
    assert_eq!(
        (last.step, last.result, last.tasks_left),
        (Step::TimedOut, Some(LifecycleResult::Continue), 1)
    );
    assert_eq!(last.tasks[0].group.as_deref(), Some("family:web"));
    assert_eq!(last.reason.as_deref(), Some("DRAIN_TIMEOUT_SECONDS reached"));
    assert_eq!(finished(&s, &s.instances[0])[0]["result"], "CONTINUE");
}

#[tokio::test]
async fn on_the_deadline_it_can_abandon() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_tasks("web", &s.arns[0], 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let deps = deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "2"), ("TIMEOUT_RESULT", "ABANDON")]);
    let reports = drive(&s, &deps, message, &s.instances[0]).await;
    assert_eq!(
        reports.last().map(|r| (r.step, r.result)),
        Some((Step::TimedOut, Some(LifecycleResult::Abandon)))
    );
    assert_eq!(finished(&s, &s.instances[0])[0]["result"], "ABANDON");
}

#[tokio::test]
async fn heartbeats_keep_a_short_hook_alive() {
    integration_tests::needs_emulator!();
    let s = scene(2, 3).await;
    s.world.emulator.draining(5000, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let reports = drive(&s, &deps(&s.world, &[]), message, &s.instances[0]).await;

    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    let heartbeats = reports.iter().filter(|r| r.heartbeat).count();
    assert!(heartbeats >= 2, "{heartbeats}");
    assert_eq!(s.world.emulator.calls_of("autoscaling:RecordLifecycleActionHeartbeat"), heartbeats as u64);
    assert_eq!(finished(&s, &s.instances[0])[0]["how"], "completed");
}

#[tokio::test]
async fn a_duplicate_delivery_completes_once() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    let deps = deps(&s.world, &[("SETTLE_SECONDS", "0")]);
    let reports = drive(&s, &deps, message.clone(), &s.instances[0]).await;
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    let again = invoke(&deps, message).await.unwrap();
    assert_eq!(again.actions, [], "the action is over: nothing waits for the instance any more");
    assert!(again.reason.is_some());
    assert_eq!(finished(&s, &s.instances[0]).len(), 1);
    assert_eq!(s.world.emulator.calls_of("autoscaling:CompleteLifecycleAction"), 1);
}

#[tokio::test]
async fn an_instance_outside_ecs_is_completed_at_once() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let stray = s.world.group("batch", 1).await;
    s.world.hook("batch", &s.topic, 300, "ABANDON").await;
    s.world.sns_events(&s.topic).await;
    let message = terminate(&s, &stray[0]).await;
    let outcome = invoke(&deps(&s.world, &[]), message).await.unwrap();
    let action = &outcome.actions[0];
    assert_eq!((action.step, action.result), (Step::NotAnEcsInstance, Some(LifecycleResult::Continue)));
    assert_eq!(s.world.lifecycle_state(&stray[0]).await, None);
}

#[tokio::test]
async fn throttling_is_retried() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.fail("ListTasks", 2, "ThrottlingException");
    s.world.emulator.fail("CompleteLifecycleAction", 2, "Throttling");
    let reports = drive(&s, &deps(&s.world, &[]), message, &s.instances[0]).await;
    assert_eq!(reports.last().map(|r| r.step), Some(Step::Completed), "{reports:?}");
    assert_eq!(s.world.emulator.calls_of("autoscaling:CompleteLifecycleAction"), 3);
}

#[tokio::test]
async fn other_hooks_are_left_alone() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.reset_calls();
    let deps = deps(&s.world, &[("LIFECYCLE_HOOK_NAMES", "someone-elses")]);
    let other = invoke(&deps, message).await.unwrap();
    assert_eq!(other.trigger, lifecycle_drainer::Trigger::Ignored);
    assert_eq!(s.world.emulator.total_calls(), 0, "decided from the configuration alone");
    invoke(&deps, scheduled()).await.unwrap();
    assert_eq!(s.world.status("web", &s.arns[0]).await, "ACTIVE");
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await.as_deref(), Some("Terminating:Wait"));
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.reset_calls();
    let dry = invoke(&deps(&s.world, &[("DRY_RUN", "true")]), message).await.unwrap();
    assert_eq!((dry.actions[0].step, dry.actions[0].tasks_left), (Step::DryRun, 1));
    let calls = s.world.emulator.calls();
    for mutating in [
        "ecs:UpdateContainerInstancesState",
        "ecs:PutAttributes",
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "sns:Publish",
    ] {
        assert!(!calls.contains_key(mutating), "{mutating}: {calls:?}");
    }
    assert_eq!(s.world.status("web", &s.arns[0]).await, "ACTIVE");
}

#[tokio::test]
async fn twenty_five_terminations_at_once_all_complete() {
    integration_tests::needs_emulator!();
    // Five instances stay: their room takes the 25 replacements (ECS moves a service task only once its
    // replacement runs).
    let s = scene(30, 300).await;
    for arn in &s.arns {
        s.world.start_service_tasks("web", arn, "api", 1).await;
    }
    for id in &s.instances[..25] {
        s.world.terminate(id).await;
    }
    assert_eq!(
        s.world.sns_events(&s.topic).await.len(),
        25,
        "the messages are lost: the schedule finds them"
    );
    s.world.emulator.fail("ListTasks", 10, "ThrottlingException");
    let deps = deps(&s.world, &[]);
    // Passes a second apart (a minute, deployed): each reads within the drainer's share of ECS's reads.
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && s.world.emulator.lifecycle_actions()["pending"] != json!([]) {
        invoke(&deps, scheduled()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let actions = s.world.emulator.lifecycle_actions();
    assert_eq!(actions["pending"], json!([]));
    let finished = actions["finished"].as_array().unwrap();
    assert_eq!(finished.len(), 25);
    assert!(finished.iter().all(|a| a["how"] == "completed" && a["result"] == "CONTINUE"));
    // One batch read of the draining instances per pass, not a poll per instance.
    let calls = s.world.emulator.calls();
    assert!(calls["ecs:UpdateContainerInstancesState"] <= 3, "{calls:?}");
}

#[tokio::test]
async fn a_malformed_lifecycle_message_is_an_error_naming_the_field() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let mut event = sample_event("lifecycle-terminate-sns.json");
    let mut body: Value =
        serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    body.as_object_mut().unwrap().remove("LifecycleHookName");
    event["Records"][0]["Sns"]["Message"] = json!(body.to_string());
    let err = invoke(&deps(&world, &[]), event).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidEvent");
    assert!(err.to_string().contains("LifecycleHookName"), "{err}");
    assert_eq!(world.emulator.total_calls(), 0);
}
