//! The lifecycle-drainer's scenarios: hooks delivered by EventBridge, several registrations of one
//! instance, a task ListTasks does not show yet, a lifecycle message that never arrives.

use std::time::Duration;

use crate::scenarios::{Hook, not_stopped, scene};
use crate::stack::{CLUSTER, eventbridge_lifecycle, finished_actions, pending_action};

/// (1) A drain that outlasts one invocation goes on, whatever path delivered the hook: the EventBridge
/// lifecycle event's `detail` has no `Time`.
#[tokio::test]
async fn a_hook_delivered_by_eventbridge_drains_to_the_end() {
    integration_tests::needs_emulator!();
    // Tasks take about 6 s to stop: longer than one invocation's poll window of the drainer before the
    // reconcile. The hook's heartbeat timeout is 4 s.
    let mut s = scene(3, Hook::OursByEventBridge(4), (5000, 300)).await;
    s.busy(0).await;
    s.world().terminate(&s.instances[0]).await;
    let action = pending_action(s.world(), &s.instances[0]).expect("a pending lifecycle action");
    let _ = s.stack.lifecycle(eventbridge_lifecycle(&action)).await;

    let gone = s.until_terminated(0, Duration::from_secs(25)).await.expect("terminated");
    let transcript = s.stack.transcript();
    assert_eq!(
        finished_actions(s.world(), &s.instances[0]),
        [("completed".to_owned(), "CONTINUE".to_owned())],
        "{transcript}"
    );
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{transcript}");
}

/// (7) A stale, disconnected registration of the instance with no task, next to the live one with tasks:
/// the drain waits for the live one's tasks.
#[tokio::test]
async fn every_registration_of_the_instance_is_drained_and_waited_for() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::Ours(4, "ABANDON"), (2000, 300)).await;
    // The agent registered the instance a second time (aws/amazon-ecs-agent#782); the first registration
    // stays, disconnected. ListContainerInstances answers in ARN order: the stale one comes first.
    let again = s.world().register(CLUSTER, &s.instances[0]).await;
    let (stale, live) =
        if again < s.arns[0] { (again, s.arns[0].clone()) } else { (s.arns[0].clone(), again) };
    s.world().emulator.agent(&stale, false);
    s.world().start_service_tasks(CLUSTER, &live, "api", 2).await;
    s.world().terminate(&s.instances[0]).await;

    let gone = s.until_terminated(0, Duration::from_secs(25)).await.expect("terminated");
    let transcript = s.stack.transcript();
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{transcript}");
    assert_eq!(
        finished_actions(s.world(), &s.instances[0]),
        [("completed".to_owned(), "CONTINUE".to_owned())],
        "{transcript}"
    );
}

/// (8) A task placed a moment before the drain is not listed by ListTasks yet: one empty look taken right
/// after setting DRAINING never completes the action.
#[tokio::test]
async fn a_task_listtasks_does_not_show_yet_is_waited_for() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::Ours(4, "ABANDON"), (300, 300)).await;
    s.world().emulator.list_tasks_lag(3.0);
    s.busy(0).await;
    s.world().terminate(&s.instances[0]).await;

    let gone = s.until_terminated(0, Duration::from_secs(25)).await.expect("terminated");
    let transcript = s.stack.transcript();
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{transcript}");
}

/// (10) The lifecycle message is lost (SNS never delivers it): the reconcile finds the action anyway.
#[tokio::test]
async fn a_lost_lifecycle_message_costs_at_most_one_period() {
    integration_tests::needs_emulator!();
    let mut s = scene(3, Hook::Ours(4, "ABANDON"), (3000, 300)).await;
    s.busy(0).await;
    s.world().terminate(&s.instances[0]).await;
    assert_eq!(s.stack.drop_deliveries().await, 1, "the lifecycle message, lost");

    let id = s.instances[0].clone();
    let world_done = s.stack.run_until(Duration::from_secs(25), async |w| {
        w.emulator.terminations().iter().any(|t| t["instance_id"] == id.as_str())
    });
    // Nothing reaches the topic any more: only the schedules drive the drain.
    world_done.await;
    let gone = s.terminated(0).expect("terminated");
    let transcript = s.stack.transcript();
    assert_eq!(not_stopped(&gone), 0, "{gone}\n{transcript}");
    assert_eq!(
        finished_actions(s.world(), &s.instances[0]),
        [("completed".to_owned(), "CONTINUE".to_owned())],
        "{transcript}"
    );
}

/// A group that returns instances to its warm pool on scale in (`ReuseOnScaleIn`, which the ECS guide
/// advises against and Auto Scaling accepts) holds the instance in `Warmed:Pending:Wait` for our terminating
/// hook; the pool then stops it with whatever runs on it. It is drained first, like any termination.
#[tokio::test]
async fn an_instance_going_back_to_the_warm_pool_is_drained_first() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::Ours(4, "ABANDON"), (2000, 300)).await;
    s.world().warm_pool(crate::stack::GROUP, 0).await;
    s.busy(0).await;
    s.busy(1).await;
    s.world().set_desired(crate::stack::GROUP, 1).await;
    let mut returning = None;
    for id in &s.instances {
        if s.world().lifecycle_state(id).await.as_deref() == Some("Warmed:Pending:Wait") {
            returning = Some(id.clone());
        }
    }
    let id = returning.expect("one instance goes back to the pool");
    let stopped = |w: &integration_tests::World| {
        w.emulator.stops().into_iter().find(|r| r["instance_id"] == id.as_str())
    };
    s.stack.run_until(Duration::from_secs(25), async |w| stopped(w).is_some()).await;
    let transcript = s.stack.transcript();
    let stop = stopped(s.world()).unwrap_or_else(|| panic!("never stopped in the pool\n{transcript}"));
    assert_eq!(not_stopped(&stop), 0, "{stop}\n{transcript}");
    assert_eq!(
        finished_actions(s.world(), &id),
        [("completed".to_owned(), "CONTINUE".to_owned())],
        "{transcript}"
    );
}

/// A warm pool larger than one page of `DescribeWarmPool` (50): an instance going back to it on scale in,
/// listed on its second page, waits for our hook like any other, and the reconcile finds it (its lifecycle
/// message lost).
#[tokio::test]
async fn an_instance_on_the_warm_pools_second_page_is_answered() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::Ours(4, "ABANDON"), (300, 300)).await;
    s.world().warm_pool(crate::stack::GROUP, 55).await;
    s.busy(0).await;
    s.busy(1).await;
    s.world().set_desired(crate::stack::GROUP, 1).await;
    let mut returning = None;
    for id in &s.instances {
        if s.world().lifecycle_state(id).await.as_deref() == Some("Warmed:Pending:Wait") {
            returning = Some(id.clone());
        }
    }
    let id = returning.expect("one instance goes back to the pool");
    let first_page = s
        .world()
        .autoscaling
        .describe_warm_pool()
        .auto_scaling_group_name(crate::stack::GROUP)
        .max_records(50)
        .send()
        .await
        .unwrap();
    assert!(first_page.next_token().is_some(), "more than one page");
    assert!(!first_page.instances().iter().any(|i| i.instance_id() == Some(id.as_str())), "on a later page");
    s.stack.drop_deliveries().await;
    let stopped = |w: &integration_tests::World| {
        w.emulator.stops().into_iter().find(|r| r["instance_id"] == id.as_str())
    };
    s.stack.run_until(Duration::from_secs(25), async |w| stopped(w).is_some()).await;
    let transcript = s.stack.transcript();
    let stop = stopped(s.world()).unwrap_or_else(|| panic!("never stopped in the pool\n{transcript}"));
    assert_eq!(not_stopped(&stop), 0, "{stop}\n{transcript}");
    assert_eq!(
        finished_actions(s.world(), &id),
        [("completed".to_owned(), "CONTINUE".to_owned())],
        "{transcript}"
    );
}

/// A hook that ends while the drainer still waits on it (it expired: the function was throttled, or another
/// tool answered it) is reported as lost, with a message: Auto Scaling went on without our answer.
#[tokio::test]
async fn a_hook_that_ends_without_our_answer_is_reported_lost() {
    integration_tests::needs_emulator!();
    let mut s = scene(2, Hook::Ours(4, "ABANDON"), (300, 300)).await;
    let tasks = s.world().start_tasks(CLUSTER, &s.arns[0], 1).await; // standalone: never stopped by a drain
    assert_eq!(tasks.len(), 1);
    s.world().terminate(&s.instances[0]).await;
    let id = s.instances[0].clone();
    s.stack.run_for(Duration::from_secs(2)).await;
    assert!(pending_action(s.world(), &id).is_some(), "still draining:\n{}", s.stack.transcript());
    s.world().emulator.age_lifecycle_actions(100_000);
    s.stack.run_for(Duration::from_secs(3)).await;
    let transcript = s.stack.transcript();
    assert_eq!(
        finished_actions(s.world(), &id),
        [("timed-out".to_owned(), "ABANDON".to_owned())],
        "{transcript}"
    );
    assert!(transcript.contains("\"step\": String(\"lost\")"), "{transcript}");
}

/// A launch into the warm pool waits in `Warmed:Pending:Wait` for the launching hook; with our terminating
/// hook on the group too, the same state would read as a return to the pool on scale in. Until a heartbeat
/// for the terminating hook succeeds (here they are throttled), the new instance is not drained.
#[tokio::test]
async fn a_launch_into_the_warm_pool_is_never_taken_for_a_return() {
    integration_tests::needs_emulator!();
    let s = scene(1, Hook::None, (300, 300)).await;
    let world = s.world();
    world.hook(crate::stack::GROUP, &s.stack.hooks, 300, "CONTINUE").await;
    world.launch_hook(crate::stack::GROUP, "drain-launch", &s.stack.hooks, 300).await;
    world.sns_events(&s.stack.hooks).await;
    world.warm_pool(crate::stack::GROUP, 0).await;
    let mut into_pool = world.sns_events(&s.stack.hooks).await;
    let message: serde_json::Value =
        serde_json::from_str(into_pool[0]["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    let warm = message["EC2InstanceId"].as_str().unwrap().to_owned();
    let arn = world.register(CLUSTER, &warm).await;
    world.emulator.fail("RecordLifecycleActionHeartbeat", 5, "ThrottlingException");
    let deps = lifecycle_drainer::Deps::new(
        &world.sdk,
        lifecycle_drainer::Config::from_env(shared::config::Env::from_map(&std::collections::HashMap::from(
            [
                ("CLUSTERS", CLUSTER),
                ("LIFECYCLE_HOOK_NAMES", "drain,drain-launch"),
                ("LIFECYCLE_TOPIC_ARN", s.stack.hooks.arn.as_str()),
            ],
        )))
        .unwrap(),
    );
    let answer = lifecycle_drainer::handler(
        &deps,
        lambda_runtime::LambdaEvent::new(into_pool.remove(0), Default::default()),
    )
    .await;
    assert_eq!(crate::stack::status(world, &arn).await, "ACTIVE", "{answer:?}");
    // Once it is stopped in the pool, the next pass never reports the doubtful action lost.
    let next = lifecycle_drainer::handler(
        &deps,
        lambda_runtime::LambdaEvent::new(crate::stack::scheduled(), Default::default()),
    )
    .await
    .unwrap();
    assert!(next.actions.iter().all(|a| a.step != lifecycle_drainer::Step::Lost), "{next:?}");
}

/// (11) ECS container instances cannot go back to a warm pool on scale in, and an agent without
/// `ECS_WARM_POOLS_CHECK=true` registers while its instance warms up in the pool, where ECS may place tasks
/// on it before it is stopped: the launch into the pool goes on, with a warning that names the fix.
#[tokio::test]
async fn a_container_instance_in_the_warm_pool_is_reported() {
    integration_tests::needs_emulator!();
    let s = scene(1, Hook::None, (300, 300)).await;
    let world = s.world();
    world.launch_hook(crate::stack::GROUP, "drain-launch", &s.stack.hooks, 300).await;
    world.sns_events(&s.stack.hooks).await;
    world.warm_pool(crate::stack::GROUP, 0).await;
    let mut into_pool = world.sns_events(&s.stack.hooks).await;
    let message: serde_json::Value =
        serde_json::from_str(into_pool[0]["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    let warm = message["EC2InstanceId"].as_str().unwrap().to_owned();
    // Its agent comes up in the pool, before the instance is stopped there.
    world.register(CLUSTER, &warm).await;
    let deps = lifecycle_drainer::Deps::new(
        &world.sdk,
        lifecycle_drainer::Config::from_env(shared::config::Env::from_map(&std::collections::HashMap::from(
            [
                ("CLUSTERS", CLUSTER),
                ("LIFECYCLE_HOOK_NAMES", "drain,drain-launch"),
                ("LIFECYCLE_TOPIC_ARN", s.stack.hooks.arn.as_str()),
            ],
        )))
        .unwrap(),
    );
    let answer = lifecycle_drainer::handler(
        &deps,
        lambda_runtime::LambdaEvent::new(into_pool.remove(0), Default::default()),
    )
    .await
    .unwrap();
    let text = serde_json::to_string(&answer).unwrap();
    assert!(text.contains("ECS_WARM_POOLS_CHECK"), "{text}");
    assert_eq!(
        world.lifecycle_state(&warm).await.as_deref(),
        Some("Warmed:Stopped"),
        "its launch into the pool went on"
    );
}
