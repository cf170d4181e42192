//! spot-drainer against the emulator, with the real SDK.

use std::collections::HashMap;

use integration_tests::{World, spot_event};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::config::Env;
use shared::ecs::InstanceStatus;
use shared::edge::ErrorType;
use shared::notify::Notification;
use spot_drainer::aws::Replacement;
use spot_drainer::{Action, Config, Deps, Error, Outcome, Reply, Trigger, handler};

const TERMINATE: &str = "spot-interruption-terminate.json";
const REBALANCE: &str = "spot-rebalance-recommendation.json";

fn deps(world: &World, env: &[(&str, &str)]) -> Deps {
    let map: HashMap<&str, &str> = env.iter().copied().collect();
    let config = Config::from_env(Env::from_map(&map)).expect("config");
    Deps::new(&world.sdk, config)
}

/// An event about one instance: its outcome.
async fn invoke(deps: &Deps, payload: Value) -> Result<Outcome, Error> {
    match handler(deps, LambdaEvent::new(payload, Context::default())).await? {
        Reply::One(outcome) => Ok(*outcome),
        many => panic!("expected one instance's outcome: {many:?}"),
    }
}

/// An event about several instances (scheduled maintenance, the sweep): their outcomes.
async fn invoke_many(deps: &Deps, payload: Value) -> Result<Vec<Outcome>, Error> {
    Ok(handler(deps, LambdaEvent::new(payload, Context::default())).await?.outcomes().to_vec())
}

const MARKER: &str = shared::drain::marker::ATTRIBUTE;

/// A cluster `web` with three registered instances; the first runs two tasks.
struct Web {
    world: World,
    instances: Vec<String>,
    arns: Vec<String>,
}

async fn web() -> Web {
    let world = World::new().await;
    let instances = world.group("web-asg", 3).await;
    world.cluster("web").await;
    let mut arns = Vec::new();
    for id in &instances {
        arns.push(world.register("web", id).await);
    }
    world.start_tasks("web", &arns[0], 2).await;
    world.emulator.reset_calls();
    Web { world, instances, arns }
}

#[tokio::test]
async fn drains_the_instance_in_three_calls() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap();

    assert_eq!(outcome.action, Action::Drained);
    assert_eq!(outcome.trigger, Trigger::Terminate);
    assert_eq!(outcome.instance_id, instances[0]);
    assert_eq!(outcome.cluster.as_deref(), Some("web"));
    assert_eq!(outcome.container_instance_arn.as_deref(), Some(arns[0].as_str()));
    assert_eq!(outcome.status_before, Some(InstanceStatus::Active));
    assert_eq!(outcome.tasks_remaining, Some(2));
    assert_eq!(outcome.notification, Notification::Off);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
    assert_eq!(world.status("web", &arns[1]).await, "ACTIVE");
    assert_eq!(world.status("web", &arns[2]).await, "ACTIVE");
    let calls = world.emulator.calls();
    // The two status reads above come after the handler's calls.
    assert_eq!(calls.get("ecs:ListContainerInstances"), Some(&1));
    assert_eq!(calls.get("ecs:UpdateContainerInstancesState"), Some(&1));
    assert_eq!(calls.get("ecs:DescribeContainerInstances"), Some(&4));
    assert_eq!(calls.values().sum::<u64>(), 3 + 3);

    let summary = serde_json::to_value(&outcome).unwrap();
    assert_eq!(summary["action"], "drained");
    assert_eq!(summary["trigger"], "terminate");
    assert_eq!(summary["notification"], json!({"status": "off"}));
}

#[tokio::test]
async fn finds_the_instance_in_the_second_of_three_clusters() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let instances = world.group("asg", 3).await;
    let mut arns = Vec::new();
    for (cluster, id) in ["a", "b", "c"].iter().zip(&instances) {
        world.cluster(cluster).await;
        arns.push(world.register(cluster, id).await);
    }
    let deps = deps(&world, &[("CLUSTERS", "a,b,c")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[1])).await.unwrap();

    assert_eq!(outcome.action, Action::Drained);
    assert_eq!(outcome.cluster.as_deref(), Some("b"));
    assert_eq!(world.status("b", &arns[1]).await, "DRAINING");
    assert_eq!(world.status("a", &arns[0]).await, "ACTIVE");
    assert_eq!(world.status("c", &arns[2]).await, "ACTIVE");
}

#[tokio::test]
async fn searches_every_cluster_when_none_is_configured() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let instances = world.group("asg", 2).await;
    world.cluster("one").await;
    world.cluster("two").await;
    world.register("one", &instances[0]).await;
    let arn = world.register("two", &instances[1]).await;
    world.emulator.reset_calls();
    let deps = deps(&world, &[]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[1])).await.unwrap();

    assert_eq!(outcome.action, Action::Drained);
    assert!(outcome.cluster.as_deref().is_some_and(|c| c.ends_with(":cluster/two")), "{outcome:?}");
    assert_eq!(world.status("two", &arn).await, "DRAINING");
    assert_eq!(world.emulator.calls_of("ecs:ListClusters"), 1);
}

#[tokio::test]
async fn an_instance_outside_ecs_is_a_normal_outcome() {
    integration_tests::needs_emulator!();
    let Web { world, arns, .. } = web().await;
    let others = world.group("batch-asg", 1).await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &others[0])).await.unwrap();

    assert_eq!(outcome.action, Action::NotAnEcsInstance);
    assert_eq!(outcome.cluster, None);
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 0);
    for arn in &arns {
        assert_eq!(world.status("web", arn).await, "ACTIVE");
    }
}

#[tokio::test]
async fn a_missing_cluster_does_not_stop_the_drain() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "gone,web")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[2])).await.unwrap();

    assert_eq!(outcome.action, Action::Drained);
    assert_eq!(world.status("web", &arns[2]).await, "DRAINING");
}

#[tokio::test]
async fn a_missing_cluster_is_reported() {
    integration_tests::needs_emulator!();
    let Web { world, instances, .. } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "gone,web")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[2])).await.unwrap();

    assert_eq!(outcome.missing_clusters, ["gone"]);
}

#[tokio::test]
async fn already_draining_is_left_alone() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    world
        .ecs
        .update_container_instances_state()
        .cluster("web")
        .container_instances(&arns[0])
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    world.emulator.reset_calls();
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap();

    assert_eq!(outcome.action, Action::AlreadyDraining);
    assert_eq!(outcome.status_before, Some(InstanceStatus::Draining));
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 0);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

#[tokio::test]
async fn the_same_event_twice_drains_once() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);
    let event = spot_event(TERMINATE, &instances[0]);

    let first = invoke(&deps, event.clone()).await.unwrap();
    let second = invoke(&deps, event).await.unwrap();

    assert_eq!(first.action, Action::Drained);
    assert_eq!(second.action, Action::AlreadyDraining);
    assert_eq!(second.container_instance_arn, first.container_instance_arn);
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 1);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

#[tokio::test]
async fn a_throttled_drain_is_retried() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    world.emulator.fail("UpdateContainerInstancesState", 2, "ThrottlingException");
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap();

    assert_eq!(outcome.action, Action::Drained);
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 3);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

#[tokio::test]
async fn throttling_past_the_retries_is_an_error_naming_the_operation() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    world.emulator.fail("UpdateContainerInstancesState", 5, "ThrottlingException");
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let err = invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap_err();

    assert_eq!(err.error_type(), "AwsApiError");
    assert!(
        err.to_string().starts_with("UpdateContainerInstancesState failed: ThrottlingException"),
        "{err}"
    );
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 5);
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
}

#[tokio::test]
async fn dry_run_makes_no_mutating_call() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let topic = world.sns.create_topic().name("ops").send().await.unwrap().topic_arn.unwrap();
    world.emulator.reset_calls();
    let deps = deps(&world, &[("CLUSTERS", "web"), ("DRY_RUN", "true"), ("NOTIFICATION_TOPIC_ARN", &topic)]);

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap();

    assert_eq!(outcome.action, Action::DryRun);
    assert_eq!(outcome.container_instance_arn.as_deref(), Some(arns[0].as_str()));
    assert_eq!(outcome.notification, Notification::Skipped);
    let calls = world.emulator.calls();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ecs:DescribeContainerInstances", "ecs:ListContainerInstances"],
        "only reads: {calls:?}"
    );
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
}

#[tokio::test]
async fn rebalance_is_ignored_unless_opted_in() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;

    let ignored =
        invoke(&deps(&world, &[("CLUSTERS", "web")]), spot_event(REBALANCE, &instances[0])).await.unwrap();
    assert_eq!(ignored.action, Action::Ignored);
    assert_eq!(ignored.trigger, Trigger::Rebalance);
    assert_eq!(ignored.reason.as_deref(), Some("DRAIN_ON does not include rebalance"));
    assert_eq!(world.emulator.total_calls(), 0);
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");

    let opted_in = deps(&world, &[("CLUSTERS", "web"), ("DRAIN_ON", "terminate,rebalance")]);
    let drained = invoke(&opted_in, spot_event(REBALANCE, &instances[0])).await.unwrap();
    assert_eq!(drained.action, Action::Drained);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

#[tokio::test]
async fn a_malformed_event_touches_nothing() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);
    let mut wrong_kind = spot_event(TERMINATE, &instances[0]);
    wrong_kind["detail-type"] = json!("EC2 Instance Launch Successful");
    let mut no_id = spot_event(TERMINATE, &instances[0]);
    no_id["detail"].as_object_mut().unwrap().remove("instance-id");
    let mut bad_id = spot_event(TERMINATE, &instances[0]);
    bad_id["detail"]["instance-id"] = json!("i-0 or runningTasksCount == 0");

    for (event, field) in [
        (wrong_kind, "detail-type"),
        (no_id, "detail.instance-id"),
        (bad_id, "detail.instance-id"),
        (json!("hi"), "(event)"),
    ] {
        let err = invoke(&deps, event).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        match err {
            Error::InvalidEvent(e) => assert_eq!(e.field, field),
            other => panic!("{other}"),
        }
    }
    assert_eq!(world.emulator.total_calls(), 0);
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
}

#[tokio::test]
async fn a_drain_is_announced_once_by_sns() {
    integration_tests::needs_emulator!();
    let Web { world, instances, .. } = web().await;
    let topic = world.sns.create_topic().name("ops").send().await.unwrap().topic_arn.unwrap();
    world.emulator.reset_calls();
    let deps = deps(&world, &[("CLUSTERS", "web"), ("NOTIFICATION_TOPIC_ARN", &topic)]);
    let event = spot_event(TERMINATE, &instances[0]);

    let first = invoke(&deps, event.clone()).await.unwrap();
    let second = invoke(&deps, event).await.unwrap();

    assert!(
        matches!(first.notification, Notification::Sent { ref message_id } if !message_id.is_empty()),
        "{first:?}"
    );
    assert_eq!(second.notification, Notification::Skipped);
    assert_eq!(world.emulator.calls_of("sns:Publish"), 1);
}

#[tokio::test]
async fn a_failed_notification_does_not_fail_the_drain() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(
        &world,
        &[("CLUSTERS", "web"), ("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:missing")],
    );

    let outcome = invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap();

    assert_eq!(outcome.action, Action::Drained);
    assert!(
        matches!(outcome.notification, Notification::Failed { ref error } if error.starts_with("Publish failed")),
        "{outcome:?}"
    );
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

#[tokio::test]
async fn tasks_left_counts_every_task_not_stopped() {
    integration_tests::needs_emulator!();
    let Web { world, arns, .. } = web().await;
    let tasks = world.start_tasks("web", &arns[1], 3).await;
    world.ecs.stop_task().cluster("web").task(&tasks[0]).send().await.unwrap();

    let left = shared::ecs::tasks_left(&world.ecs, "web", &arns[1]).await.unwrap();

    let mut left_arns: Vec<_> = left.iter().map(|t| t.task_arn.clone()).collect();
    left_arns.sort();
    let mut expected = tasks[1..].to_vec();
    expected.sort();
    assert_eq!(left_arns, expected);
    assert!(left.iter().all(|t| t.last_status != "STOPPED"), "{left:?}");
}

const STOP: &str = "spot-interruption-stop.json";
const RUNNING: &str = "spot-instance-running.json";

/// The instance's "running" state change, now.
fn running(instance_id: &str) -> Value {
    let mut event = spot_event(RUNNING, instance_id);
    event["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    event
}

/// EC2 stops the instance, and a second later starts it again: its launch time is later than our drain.
async fn restart(world: &World, instance_id: &str) {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    world.ec2.stop_instances().instance_ids(instance_id).send().await.unwrap();
    world.ec2.start_instances().instance_ids(instance_id).send().await.unwrap();
}

#[tokio::test]
async fn a_stopped_instance_that_runs_again_is_set_back_to_active() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let drained = invoke(&deps, spot_event(STOP, &instances[0])).await.unwrap();
    assert_eq!(drained.action, Action::Drained);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
    assert!(
        world.attribute("web", &arns[0], MARKER).await.is_some_and(|m| m.starts_with("spot-drainer:stop@"))
    );
    // Running, but not since our drain (the event is forged or from before): nothing changes.
    assert_eq!(invoke(&deps, running(&instances[0])).await.unwrap().action, Action::AlreadyDraining);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");

    restart(&world, &instances[0]).await;
    let back = invoke(&deps, running(&instances[0])).await.unwrap();

    assert_eq!(back.action, Action::Reactivated, "{back:?}");
    assert_eq!(back.trigger, Trigger::Running);
    assert!(back.reason.as_deref().unwrap().contains("running again"), "{back:?}");
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
    assert_eq!(world.attribute("web", &arns[0], MARKER).await, None);
}

#[tokio::test]
async fn a_drain_by_someone_else_is_not_undone() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    world
        .ecs
        .update_container_instances_state()
        .cluster("web")
        .container_instances(&arns[0])
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    restart(&world, &instances[0]).await;
    world.emulator.reset_calls();
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let outcome = invoke(&deps, running(&instances[0])).await.unwrap();
    invoke_many(&deps, integration_tests::sample_event("spot-sweep-scheduled.json")).await.unwrap();

    assert_eq!(outcome.action, Action::Ignored);
    assert_eq!(outcome.reason.as_deref(), Some("no drain of ours to look at"));
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 0);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

/// A terminated instance never comes back, so its drain carries no marker and is never undone.
#[tokio::test]
async fn a_drain_for_termination_is_not_undone() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);
    invoke(&deps, spot_event(TERMINATE, &instances[0])).await.unwrap();
    assert_eq!(world.attribute("web", &arns[0], MARKER).await, None);
    restart(&world, &instances[0]).await;

    let outcome = invoke(&deps, running(&instances[0])).await.unwrap();

    assert_eq!(outcome.action, Action::Ignored);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

/// An AWS Health event of scheduled EC2 maintenance of `instances`, as AWS sends it.
fn health(code: &str, instances: &[&str]) -> Value {
    let entities: Vec<Value> = instances.iter().map(|i| json!({"entityValue": i})).collect();
    let mut event = integration_tests::sample_event("spot-health-retirement-scheduled.json");
    event["resources"] = json!(instances);
    event["detail"]["eventTypeCode"] = json!(code);
    event["detail"]["affectedEntities"] = json!(entities);
    event
}

const RETIREMENT: &str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED";

/// EC2 schedules a retirement of each of `instances`, as it does when Health announces one.
fn schedule(world: &World, instances: &[&str], code: &str) {
    for i in instances {
        world.emulator.schedule_ec2_event(i, code, "2026-12-30T10:00:00Z");
    }
}

#[tokio::test]
async fn scheduled_retirement_drains_every_instance_named() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web"), ("DRAIN_ON", "terminate,scheduled")]);
    schedule(&world, &[&instances[0], &instances[1]], "instance-retirement");

    let outcomes = invoke_many(&deps, health(RETIREMENT, &[&instances[0], &instances[1]])).await.unwrap();

    let actions: Vec<Action> = outcomes.iter().map(|o| o.action).collect();
    assert_eq!(actions, [Action::Drained, Action::Drained]);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
    assert_eq!(world.status("web", &arns[1]).await, "DRAINING");
    assert_eq!(world.status("web", &arns[2]).await, "ACTIVE");
    assert!(outcomes.iter().all(|o| o.replacement.is_none()));
}

/// A Health notice that never arrived: the reconcile finds what EC2 schedules and drains it.
#[tokio::test]
async fn the_reconcile_drains_what_ec2_schedules_when_the_notice_is_lost() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web"), ("DRAIN_ON", "scheduled")]);
    schedule(&world, &[&instances[1]], "instance-stop");

    let swept =
        invoke_many(&deps, integration_tests::sample_event("spot-sweep-scheduled.json")).await.unwrap();

    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!((swept[0].instance_id.as_str(), swept[0].action), (instances[1].as_str(), Action::Drained));
    assert_eq!(world.status("web", &arns[1]).await, "DRAINING");
    assert!(
        world
            .attribute("web", &arns[1], MARKER)
            .await
            .is_some_and(|m| m.starts_with("spot-drainer:scheduled@"))
    );
}

/// Replaced before the date: the group terminates it without lowering its desired capacity, so it launches
/// another; its terminating lifecycle hook (ours) holds the instance until the tasks are gone.
#[tokio::test]
async fn scheduled_retirement_replaces_an_instance_of_a_group_with_our_hook() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let hooks = world.topic("hooks").await;
    world.hook("web-asg", &hooks, 300, "ABANDON").await;
    schedule(&world, &[&instances[0]], "instance-retirement");
    let settings = [
        ("CLUSTERS", "web"),
        ("DRAIN_ON", "scheduled"),
        ("REPLACE_ON_SCHEDULED", "true"),
        ("LIFECYCLE_HOOK_NAMES", "drain"),
        ("LIFECYCLE_TOPIC_ARN", &hooks.arn),
    ];
    let elsewhere = deps(&world, &[settings.as_slice(), &[("AUTO_SCALING_GROUPS", "batch-asg")]].concat());
    let deps = deps(&world, &[settings.as_slice(), &[("AUTO_SCALING_GROUPS", "web-asg")]].concat());

    // Scoped to another group: drained, not replaced.
    let outcomes = invoke_many(&elsewhere, health(RETIREMENT, &[&instances[0]])).await.unwrap();
    assert_eq!(outcomes[0].action, Action::Drained);
    assert!(
        matches!(&outcomes[0].replacement, Some(Replacement::NotInAGroup(why)) if why.contains("AUTO_SCALING_GROUPS"))
    );
    assert_eq!(world.lifecycle_state(&instances[0]).await.as_deref(), Some("InService"));

    // The event again (Health repeats itself), now in scope.
    let outcomes = invoke_many(&deps, health(RETIREMENT, &[&instances[0]])).await.unwrap();

    assert_eq!(outcomes[0].action, Action::AlreadyDraining);
    assert_eq!(outcomes[0].replacement, Some(Replacement::Requested));
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
    let (_, desired, _) = world.group_size("web-asg").await;
    assert_eq!(desired, 3, "the desired capacity stays: the group replaces it");
    assert_eq!(world.lifecycle_state(&instances[0]).await.as_deref(), Some("Terminating:Wait"));
    assert!(world.emulator.terminations().is_empty(), "the hook holds it until the drain is done");
}

/// Without a hook of ours a termination does not wait: the replacement waits until every task on it is
/// STOPPED, and the reconcile asks again.
#[tokio::test]
async fn a_replacement_without_our_hook_waits_for_every_task_to_stop() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps =
        deps(&world, &[("CLUSTERS", "web"), ("DRAIN_ON", "scheduled"), ("REPLACE_ON_SCHEDULED", "true")]);
    schedule(&world, &[&instances[0]], "instance-retirement");

    let outcomes = invoke_many(&deps, health(RETIREMENT, &[&instances[0]])).await.unwrap();

    assert_eq!(outcomes[0].action, Action::Drained);
    assert!(
        matches!(&outcomes[0].replacement, Some(Replacement::Deferred(why)) if why.contains("2 task(s)")),
        "{outcomes:?}"
    );
    assert_eq!(world.lifecycle_state(&instances[0]).await.as_deref(), Some("InService"));
    let sweep = integration_tests::sample_event("spot-sweep-scheduled.json");
    let early = invoke_many(&deps, sweep.clone()).await.unwrap();
    assert!(matches!(early[0].replacement, Some(Replacement::Deferred(_))), "{early:?}");
    assert!(world.emulator.terminations().is_empty());

    // Its tasks end (standalone tasks are not stopped by a drain: they finish their work).
    let tasks = world.ecs.list_tasks().cluster("web").container_instance(&arns[0]).send().await.unwrap();
    for task in tasks.task_arns() {
        world.ecs.stop_task().cluster("web").task(task).send().await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(10)).await; // the drain settles
    let swept = invoke_many(&deps, sweep).await.unwrap();

    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!(swept[0].replacement, Some(Replacement::Requested));
    let (_, desired, _) = world.group_size("web-asg").await;
    assert_eq!(desired, 3);
    let terminated = world.emulator.terminations();
    assert_eq!(terminated.len(), 1, "{terminated:?}");
    assert_eq!(terminated[0]["instance_id"], instances[0].as_str(), "{terminated:?}");
    assert!(terminated[0]["tasks_not_stopped"].as_array().is_some_and(Vec::is_empty), "{terminated:?}");
}

/// A reboot leaves the instance running: drained without a replacement, it would stay drained.
#[tokio::test]
async fn a_scheduled_reboot_is_drained_only_to_be_replaced() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web"), ("DRAIN_ON", "scheduled")]);
    schedule(&world, &[&instances[0]], "system-reboot");
    world.emulator.reset_calls();

    let outcomes =
        invoke_many(&deps, health("AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED", &[&instances[0]]))
            .await
            .unwrap();

    assert_eq!(outcomes[0].action, Action::Ignored);
    assert!(outcomes[0].reason.as_deref().unwrap().contains("REPLACE_ON_SCHEDULED"), "{outcomes:?}");
    assert_eq!(world.emulator.calls_of("ecs:UpdateContainerInstancesState"), 0);
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
}

#[tokio::test]
async fn other_health_events_and_unknown_instances_are_acknowledged() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web"), ("DRAIN_ON", "scheduled")]);
    let mut issue = health(RETIREMENT, &[&instances[0]]);
    issue["detail"]["eventTypeCategory"] = json!("issue");
    let others = world.group("batch-asg", 1).await;
    schedule(&world, &[&others[0]], "instance-retirement");

    assert!(invoke_many(&deps, issue).await.unwrap().is_empty());
    let unknown = invoke_many(&deps, health(RETIREMENT, &[&others[0]])).await.unwrap();
    assert_eq!(unknown[0].action, Action::NotAnEcsInstance);
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
}

/// Careful mode: a rebalance recommendation drains only while the cluster keeps its spare capacity
/// without the instance.
#[tokio::test]
async fn a_careful_rebalance_drains_only_while_the_spare_capacity_holds() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let careful = [("CLUSTERS", "web"), ("DRAIN_ON", "terminate,rebalance"), ("REBALANCE_MODE", "careful")];
    // The other two instances nearly full: 14 tasks of 256 CPU units leave 512 of 4096 each.
    for arn in &arns[1..] {
        world.start_sized_tasks("web", arn, 14, None, (256, 512)).await;
    }
    let deps = deps(&world, &careful);

    let kept = invoke(&deps, spot_event(REBALANCE, &instances[0])).await.unwrap();
    assert_eq!(kept.action, Action::Ignored, "{kept:?}");
    assert!(kept.reason.as_deref().unwrap().contains("RESERVE_CPU_PERCENT=20"), "{kept:?}");
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");

    // Half the tasks on another instance end: the cluster can now spare the instance.
    let tasks = world.ecs.list_tasks().cluster("web").container_instance(&arns[1]).send().await.unwrap();
    for task in &tasks.task_arns()[..7] {
        world.ecs.stop_task().cluster("web").task(task).send().await.unwrap();
    }
    let drained = invoke(&deps, spot_event(REBALANCE, &instances[0])).await.unwrap();

    assert_eq!(drained.action, Action::Drained, "{drained:?}");
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
    assert!(
        world
            .attribute("web", &arns[0], MARKER)
            .await
            .is_some_and(|m| m.starts_with("spot-drainer:rebalance@"))
    );
}

/// Careful mode: no interruption warning followed the recommendation within REBALANCE_UNDO_MINUTES, so the
/// reconcile sets the instance back to ACTIVE; one a warning followed stays drained.
#[tokio::test]
async fn the_sweep_undoes_a_rebalance_drain_no_warning_followed() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(
        &world,
        &[
            ("CLUSTERS", "web"),
            ("DRAIN_ON", "terminate,rebalance"),
            ("REBALANCE_MODE", "careful"),
            ("REBALANCE_UNDO_MINUTES", "30"),
        ],
    );
    for id in &instances[..2] {
        assert_eq!(invoke(&deps, spot_event(REBALANCE, id)).await.unwrap().action, Action::Drained);
    }
    // The interruption warning follows for the second one: its marker now says so.
    invoke(&deps, spot_event(TERMINATE, &instances[1])).await.unwrap();
    assert!(
        world
            .attribute("web", &arns[1], MARKER)
            .await
            .is_some_and(|m| m.starts_with("spot-drainer:terminate@"))
    );
    // An hour passes (the markers are dated an hour earlier).
    let hour_ago =
        (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for arn in &arns[..2] {
        let value = world.attribute("web", arn, MARKER).await.unwrap();
        let (reason, _) = value.rsplit_once('@').unwrap();
        let marker = aws_sdk_ecs::types::Attribute::builder()
            .name(MARKER)
            .value(format!("{reason}@{hour_ago}"))
            .target_type(aws_sdk_ecs::types::TargetType::ContainerInstance)
            .target_id(arn)
            .build()
            .unwrap();
        world.ecs.put_attributes().cluster("web").attributes(marker).send().await.unwrap();
    }
    let sweep = integration_tests::sample_event("spot-sweep-scheduled.json");

    let undone = invoke_many(&deps, sweep).await.unwrap();

    assert_eq!(undone.len(), 1, "{undone:?}");
    assert_eq!(
        (undone[0].instance_id.as_str(), undone[0].action),
        (instances[0].as_str(), Action::Reactivated)
    );
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
    assert_eq!(world.attribute("web", &arns[0], MARKER).await, None);
    assert_eq!(world.status("web", &arns[1]).await, "DRAINING", "the warning followed: it stays drained");
}
