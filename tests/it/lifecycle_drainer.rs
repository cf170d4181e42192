//! lifecycle-drainer against the emulator, with the real SDK: the group's hook sends the lifecycle
//! message to SNS, an SQS subscription hands it to the test, the test hands it to the handler.

use std::collections::HashMap;

use integration_tests::{Topic, World, sample_event};
use lambda_runtime::{Context, LambdaEvent};
use lifecycle_drainer::{Action, Config, Deps, Error, LifecycleResult, Outcome, handler};
use serde_json::{Value, json};
use shared::config::Env;
use shared::edge::ErrorType;

const FAST: &[(&str, &str)] = &[
    ("CLUSTERS", "web"),
    ("POLL_INTERVAL_SECONDS", "1"),
    ("POLL_WINDOW_SECONDS", "60"),
    ("DRAIN_TIMEOUT_SECONDS", "60"),
];

fn deps(world: &World, extra: &[(&str, &str)]) -> Deps {
    let map: HashMap<&str, &str> = FAST.iter().chain(extra).copied().collect();
    Deps::new(&world.sdk, Config::from_env(Env::from_map(&map)).expect("config"))
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Outcome, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

struct Scene {
    world: World,
    topic: Topic,
    instances: Vec<String>,
    arns: Vec<String>,
}

/// Group `web` of `count` instances, all registered in cluster `web`, with a terminating hook `drain`
/// on topic `hooks`. Service tasks stop 300 ms after their instance starts draining. A heartbeat timeout
/// under AWS's 30 s minimum is let through by the emulator for this test.
async fn scene(count: i32, heartbeat_timeout: i32) -> Scene {
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
async fn terminate(s: &Scene, instance: &str) -> Value {
    s.world.terminate(instance).await;
    let mut events = s.world.sns_events(&s.topic).await;
    assert_eq!(events.len(), 1, "one lifecycle message per termination");
    events.remove(0)
}

/// The lifecycle actions of `instance` that ended, without their time.
fn finished(s: &Scene, instance: &str) -> Vec<Value> {
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

/// Group `web` of 3 with two service tasks on the first instance; the test notification is ignored, then
/// the first instance terminates and the drainer handles its lifecycle message.
async fn drain_the_first_of_three() -> (Scene, Outcome) {
    let s = scene(3, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 2).await;
    let test_notification = sample_event("lifecycle-test-notification-sns.json");
    let deps = deps(&s.world, &[]);
    assert_eq!(invoke(&deps, test_notification).await.unwrap().action, Action::Ignored);

    let message = terminate(&s, &s.instances[0]).await;
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await.as_deref(), Some("Terminating:Wait"));
    let outcome = invoke(&deps, message).await.unwrap();
    (s, outcome)
}

#[tokio::test]
async fn drains_over_several_polls_then_completes() {
    integration_tests::needs_emulator!();
    let (s, outcome) = drain_the_first_of_three().await;

    assert_eq!(outcome.action, Action::Completed, "{outcome:?}");
    assert_eq!(outcome.result, Some(LifecycleResult::Continue));
    assert_eq!(outcome.tasks_left, 0);
    assert!(outcome.polls >= 2, "{outcome:?}");
    assert_eq!(outcome.cluster.as_deref(), Some("web"));
    assert_eq!(outcome.container_instance_arn.as_deref(), Some(s.arns[0].as_str()));
    assert_eq!(
        finished(&s, &s.instances[0]),
        [
            json!({"instance_id": s.instances[0], "group": "web", "hook": "drain", "result": "CONTINUE", "how": "completed", "transition": "autoscaling:EC2_INSTANCE_TERMINATING"})
        ]
    );
    let calls = s.world.emulator.calls();
    assert_eq!(calls.get("autoscaling:CompleteLifecycleAction"), Some(&1));
    assert_eq!(calls.get("ecs:UpdateContainerInstancesState"), Some(&1));
}

#[tokio::test]
async fn a_task_placed_just_before_the_drain_is_waited_for_while_ecs_cannot_describe_it_yet() {
    integration_tests::needs_emulator!();
    let s = scene(3, 300).await;
    // ECS placed a task on the instance a moment before Auto Scaling terminated it: ListTasks lists it,
    // DescribeTasks does not know it yet (eventual consistency).
    s.world.emulator.describe_tasks_lag(3.0);
    let tasks = s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let outcome = invoke(&deps(&s.world, &[]), message).await.unwrap();

    assert_eq!(outcome.action, Action::Completed, "{outcome:?}");
    assert!(outcome.polls >= 3, "it waited for the task ECS could not describe: {outcome:?}");
    s.world.emulator.describe_tasks_lag(0.0);
    let described = s.world.ecs.describe_tasks().cluster("web").tasks(&tasks[0]).send().await.unwrap();
    assert_eq!(
        described.tasks()[0].last_status(),
        Some("STOPPED"),
        "the action completed only after the task stopped"
    );
}

#[tokio::test]
async fn the_drained_instance_leaves_its_group_while_the_others_stay_active() {
    integration_tests::needs_emulator!();
    let (s, outcome) = drain_the_first_of_three().await;

    assert_eq!(outcome.action, Action::Completed, "{outcome:?}");
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await, None);
    assert_eq!(s.world.status("web", &s.arns[1]).await, "ACTIVE");
    assert_eq!(s.world.status("web", &s.arns[2]).await, "ACTIVE");
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
    // EventBridge dates the event when the instance began to wait.
    event["time"] = lifecycle["Time"].clone();

    let outcome = invoke(&deps(&s.world, &[]), event).await.unwrap();

    assert_eq!(outcome.action, Action::Completed);
    assert_eq!(s.world.lifecycle_state(&s.instances[1]).await, None);
}

#[tokio::test]
async fn on_the_deadline_it_completes_with_continue_by_default() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_tasks("web", &s.arns[0], 1).await; // standalone: draining never stops it
    let message = terminate(&s, &s.instances[0]).await;

    let outcome = invoke(&deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "2")]), message).await.unwrap();

    assert_eq!(outcome.action, Action::TimedOut);
    assert_eq!(outcome.result, Some(LifecycleResult::Continue));
    assert_eq!(outcome.tasks_left, 1);
    assert_eq!(outcome.tasks[0].group.as_deref(), Some("family:web"));
    assert_eq!(outcome.reason.as_deref(), Some("DRAIN_TIMEOUT_SECONDS reached"));
    assert_eq!(finished(&s, &s.instances[0])[0]["result"], "CONTINUE");
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await, None);
}

#[tokio::test]
async fn on_the_deadline_it_can_abandon() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_tasks("web", &s.arns[0], 1).await;
    let message = terminate(&s, &s.instances[0]).await;

    let outcome =
        invoke(&deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "2"), ("TIMEOUT_RESULT", "ABANDON")]), message)
            .await
            .unwrap();

    assert_eq!(outcome.action, Action::TimedOut);
    assert_eq!(outcome.result, Some(LifecycleResult::Abandon));
    assert_eq!(finished(&s, &s.instances[0])[0]["result"], "ABANDON");
}

#[tokio::test]
async fn heartbeats_keep_a_short_hook_alive() {
    integration_tests::needs_emulator!();
    let s = scene(2, 2).await;
    s.world.emulator.draining(3500, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;

    let outcome = invoke(&deps(&s.world, &[]), message).await.unwrap();

    assert_eq!(outcome.action, Action::Completed, "{outcome:?}");
    assert!(outcome.heartbeats >= 2, "{outcome:?}");
    assert_eq!(finished(&s, &s.instances[0])[0]["how"], "completed");
    assert_eq!(
        s.world.emulator.calls_of("autoscaling:RecordLifecycleActionHeartbeat"),
        u64::from(outcome.heartbeats)
    );
}

#[tokio::test]
async fn a_long_drain_continues_in_a_fresh_invocation() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.emulator.draining(2500, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 2).await;
    let mut message = terminate(&s, &s.instances[0]).await;
    let deps = deps(&s.world, &[("POLL_WINDOW_SECONDS", "1")]);

    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let outcome = invoke(&deps, message).await.unwrap();
        let action = outcome.action;
        outcomes.push(outcome);
        if action != Action::Continued {
            break;
        }
        let mut next = s.world.sns_events(&s.topic).await;
        assert_eq!(next.len(), 1, "one continuation per hop");
        message = next.remove(0);
        let body: Value =
            serde_json::from_str(message["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        assert_eq!(body["ShipshapeDrain"]["hop"], outcomes.len());
        assert_eq!(body["EC2InstanceId"], s.instances[0]);
    }

    let last = outcomes.last().unwrap();
    assert!(outcomes.len() >= 2, "{outcomes:?}");
    assert_eq!(last.action, Action::Completed, "{outcomes:?}");
    assert_eq!(last.hop as usize, outcomes.len() - 1);
    assert!(last.elapsed_seconds >= 2, "{last:?}");
    // Set DRAINING once: continuations see it draining already.
    assert_eq!(s.world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 1);
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await, None);
}

#[tokio::test]
async fn a_duplicate_delivery_completes_once() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let deps = deps(&s.world, &[]);

    let (a, b) = tokio::join!(invoke(&deps, message.clone()), invoke(&deps, message.clone()));
    let again = invoke(&deps, message).await.unwrap();

    let mut actions = vec![a.unwrap().action, b.unwrap().action];
    actions.sort_by_key(|a| <&str>::from(*a));
    assert_eq!(actions, [Action::AlreadyCompleted, Action::Completed]);
    assert_eq!(again.action, Action::AlreadyCompleted);
    assert_eq!(finished(&s, &s.instances[0]).len(), 1);
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

    assert_eq!(outcome.action, Action::NotAnEcsInstance);
    assert_eq!(outcome.result, Some(LifecycleResult::Continue));
    assert_eq!(outcome.polls, 0);
    assert_eq!(s.world.lifecycle_state(&stray[0]).await, None);
}

#[tokio::test]
async fn an_expired_action_ends_the_drain_without_error() {
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

    assert_eq!(outcome.action, Action::AlreadyCompleted, "{outcome:?}");
    assert!(
        outcome.reason.as_deref().unwrap_or_default().contains("no active lifecycle action"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn throttling_is_retried() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.fail("ListTasks", 2, "ThrottlingException");
    s.world.emulator.fail("CompleteLifecycleAction", 2, "Throttling");

    let outcome = invoke(&deps(&s.world, &[]), message).await.unwrap();

    assert_eq!(outcome.action, Action::Completed);
    assert_eq!(s.world.emulator.calls_of("autoscaling:CompleteLifecycleAction"), 3);
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await, None);
}

#[tokio::test]
async fn other_hooks_are_left_alone() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.reset_calls();

    let other = invoke(&deps(&s.world, &[("LIFECYCLE_HOOK_NAMES", "someone-elses")]), message).await.unwrap();

    assert_eq!(other.action, Action::Ignored);
    assert_eq!(s.world.emulator.total_calls(), 0);
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

    assert_eq!(dry.action, Action::DryRun);
    assert_eq!(dry.tasks_left, 1);
    let calls = s.world.emulator.calls();
    for mutating in
        ["ecs:UpdateContainerInstancesState", "autoscaling:CompleteLifecycleAction", "sns:Publish"]
    {
        assert!(!calls.contains_key(mutating), "{mutating}: {calls:?}");
    }
    assert_eq!(s.world.status("web", &s.arns[0]).await, "ACTIVE");
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await.as_deref(), Some("Terminating:Wait"));
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
    let messages = s.world.sns_events(&s.topic).await;
    assert_eq!(messages.len(), 25);
    // ECS's request rate limits, roughly: some calls get throttled under an instance refresh.
    s.world.emulator.fail("ListTasks", 10, "ThrottlingException");
    let deps = deps(&s.world, &[]);

    let outcomes = futures_util::future::join_all(messages.into_iter().map(|m| invoke(&deps, m))).await;

    for outcome in &outcomes {
        assert_eq!(outcome.as_ref().unwrap().action, Action::Completed, "{outcome:?}");
    }
    let actions = s.world.emulator.lifecycle_actions();
    assert_eq!(actions["pending"], json!([]));
    let finished = actions["finished"].as_array().unwrap();
    assert_eq!(finished.len(), 25);
    assert!(finished.iter().all(|a| a["how"] == "completed" && a["result"] == "CONTINUE"));
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

/// The lifecycle message with `change` applied to its body, as a forger (or a stale copy) would send it.
fn forged(message: &Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut event = message.clone();
    let mut body: Value =
        serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    change(&mut body);
    event["Records"][0]["Sns"]["Message"] = json!(body.to_string());
    event
}

/// A continuation's state, as the drainer writes it, `hop` 1, begun a second ago.
fn continuation(cluster: &str, container_instance_arn: &str) -> Value {
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::seconds(1);
    json!({"started_at": start, "deadline": start + chrono::Duration::seconds(50), "hop": 1,
           "cluster": cluster, "container_instance_arn": container_instance_arn,
           "heartbeat_timeout": 300, "last_heartbeat_at": start})
}

fn termination(s: &Scene, instance: &str) -> Option<Value> {
    s.world.emulator.terminations().into_iter().find(|t| t["instance_id"] == instance)
}

/// Lambda retried the first invocation (after about 1 and 2 minutes): the hook, with AWS's shortest
/// heartbeat timeout of 30 s, began 25 s before the drainer runs. Without a heartbeat at once it expires 5 s
/// into the drain, and Auto Scaling terminates the instance with its task still running.
#[tokio::test]
async fn a_late_invocation_heartbeats_before_the_hook_expires() {
    integration_tests::needs_emulator!();
    let s = scene(2, 30).await;
    s.world.emulator.draining(8000, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    s.world.emulator.lifecycle_started_ago(25, 25);
    let message = terminate(&s, &s.instances[0]).await;

    let outcome = invoke(&deps(&s.world, &[]), message).await.unwrap();

    assert_eq!(outcome.action, Action::Completed, "{outcome:?}");
    assert!(outcome.heartbeats >= 1);
    assert_eq!(finished(&s, &s.instances[0])[0]["how"], "completed");
    let gone = termination(&s, &s.instances[0]).expect("terminated");
    assert_eq!(gone["tasks_not_stopped"], json!([]), "{gone}");
}

/// A 30 s heartbeat timeout gives the hook 3,000 s in all, from when the instance began to wait; this one
/// began 2,935 s ago. DRAIN_TIMEOUT_SECONDS of an hour cannot be honoured: the drainer completes the
/// action itself with TIMEOUT_RESULT a minute before the hook would expire, and says why.
#[tokio::test]
async fn a_drain_completes_itself_before_the_hooks_lifetime_ends() {
    integration_tests::needs_emulator!();
    let s = scene(2, 30).await;
    s.world.start_tasks("web", &s.arns[0], 1).await; // standalone: draining never stops it
    s.world.emulator.lifecycle_started_ago(2935, 5);
    let message = terminate(&s, &s.instances[0]).await;

    let outcome = invoke(&deps(&s.world, &[("DRAIN_TIMEOUT_SECONDS", "3600")]), message).await.unwrap();

    assert_eq!(outcome.action, Action::TimedOut, "{outcome:?}");
    assert_eq!(outcome.result, Some(LifecycleResult::Continue));
    assert!(outcome.reason.as_deref().unwrap().contains("GlobalTimeout"), "{outcome:?}");
    assert!(outcome.warnings[0].contains("DRAIN_TIMEOUT_SECONDS=3600 cannot be honoured"), "{outcome:?}");
    assert!(outcome.elapsed_seconds <= 10, "{outcome:?}");
    let finished = finished(&s, &s.instances[0]);
    assert_eq!(
        (finished[0]["how"].as_str(), finished[0]["result"].as_str()),
        (Some("completed"), Some("CONTINUE"))
    );
}

/// A continuation naming another cluster, where the instance's container instance is not: completing the
/// action as "gone" would let Auto Scaling terminate the instance with its tasks running.
#[tokio::test]
async fn a_continuation_naming_the_wrong_cluster_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    s.world.cluster("batch").await;
    let message = terminate(&s, &s.instances[0]).await;
    let stale = format!("{}-gone", s.arns[0].replace("/web/", "/batch/"));
    let event = forged(&message, |m| m["ShipshapeDrain"] = continuation("batch", &stale));
    s.world.emulator.reset_calls();

    let err = invoke(&deps(&s.world, &[("CLUSTERS", "web,batch")]), event).await.unwrap_err();

    assert_eq!(err.error_type(), "InvalidEvent");
    assert!(err.to_string().contains("ShipshapeDrain.cluster"), "{err}");
    let calls = s.world.emulator.calls();
    for mutating in ["ecs:UpdateContainerInstancesState", "autoscaling:CompleteLifecycleAction"] {
        assert!(!calls.contains_key(mutating), "{mutating}: {calls:?}");
    }
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await.as_deref(), Some("Terminating:Wait"));
    assert_eq!(s.world.status("web", &s.arns[0]).await, "ACTIVE");
}

#[tokio::test]
async fn a_continuation_with_a_hop_beyond_max_hops_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    let arn = s.arns[0].clone();
    let event = forged(&message, |m| {
        m["ShipshapeDrain"] = continuation("web", &arn);
        m["ShipshapeDrain"]["hop"] = json!(1000);
    });
    s.world.emulator.reset_calls();

    let err = invoke(&deps(&s.world, &[]), event).await.unwrap_err();

    assert!(err.to_string().contains("ShipshapeDrain.hop"), "{err}");
    assert_eq!(s.world.emulator.total_calls(), 0);
}

/// A lifecycle message about an instance in service is not from Auto Scaling: draining it would take
/// capacity away for nothing, and no lifecycle action would ever bring it back.
#[tokio::test]
async fn a_message_about_an_instance_in_service_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    let other = s.instances[1].clone();
    let event = forged(&message, |m| m["EC2InstanceId"] = json!(other));
    s.world.emulator.reset_calls();

    let err = invoke(&deps(&s.world, &[]), event).await.unwrap_err();

    assert!(err.to_string().contains("not waiting in Terminating:Wait"), "{err}");
    assert_eq!(s.world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 0);
    assert_eq!(s.world.status("web", &s.arns[1]).await, "ACTIVE");
}

#[tokio::test]
async fn a_group_outside_auto_scaling_groups_is_refused() {
    integration_tests::needs_emulator!();
    let s = scene(2, 300).await;
    let message = terminate(&s, &s.instances[0]).await;
    s.world.emulator.reset_calls();

    let err = invoke(&deps(&s.world, &[("AUTO_SCALING_GROUPS", "payments")]), message).await.unwrap_err();

    assert!(err.to_string().contains("AutoScalingGroupName"), "{err}");
    assert_eq!(s.world.emulator.total_calls(), 0);
    assert_eq!(s.world.lifecycle_state(&s.instances[0]).await.as_deref(), Some("Terminating:Wait"));
}

/// The first invocation fails (ECS answers errors past the SDK's retries); Lambda retries it about a minute
/// later, by which time the hook (100 s heartbeat timeout) has 5 s left. The retry heartbeats at once and
/// drains to the end.
#[tokio::test]
async fn a_failed_invocation_retried_late_still_drains_to_the_end() {
    integration_tests::needs_emulator!();
    let s = scene(2, 100).await;
    s.world.emulator.draining(8000, 100);
    s.world.start_service_tasks("web", &s.arns[0], "api", 1).await;
    let message = terminate(&s, &s.instances[0]).await;
    let deps = deps(&s.world, &[]);
    s.world.emulator.fail("ListContainerInstances", 5, "ServerException");

    let first = invoke(&deps, message.clone()).await.unwrap_err();
    assert_eq!(first.error_type(), "AwsApiError");
    assert_eq!(s.world.status("web", &s.arns[0]).await, "ACTIVE", "the failed invocation changed nothing");
    s.world.emulator.age_lifecycle_actions(95);
    let retried = invoke(&deps, message).await.unwrap();

    assert_eq!(retried.action, Action::Completed, "{retried:?}");
    assert_eq!(finished(&s, &s.instances[0])[0]["how"], "completed");
    let gone = termination(&s, &s.instances[0]).expect("terminated");
    assert_eq!(gone["tasks_not_stopped"], json!([]), "{gone}");
}
