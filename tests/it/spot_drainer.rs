//! spot-drainer against the emulator, with the real SDK.

use std::collections::HashMap;

use integration_tests::{World, spot_event};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::config::Env;
use shared::ecs::InstanceStatus;
use shared::edge::ErrorType;
use shared::notify::Notification;
use spot_drainer::{Action, Config, Deps, Error, Outcome, Trigger, handler};

const TERMINATE: &str = "spot-interruption-terminate.json";
const REBALANCE: &str = "spot-rebalance-recommendation.json";

fn deps(world: &World, env: &[(&str, &str)]) -> Deps {
    let map: HashMap<&str, &str> = env.iter().copied().collect();
    let config = Config::from_env(Env::from_map(&map)).expect("config");
    Deps::new(&world.sdk, config)
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Outcome, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

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

/// The instance's "running" state change, happening `seconds_from_now` (negative: in the past).
fn running(instance_id: &str, seconds_from_now: i64) -> Value {
    let mut event = spot_event(RUNNING, instance_id);
    let at = chrono::Utc::now() + chrono::Duration::seconds(seconds_from_now);
    event["time"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    event
}

#[tokio::test]
async fn a_stopped_instance_that_runs_again_is_set_back_to_active() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);

    let drained = invoke(&deps, spot_event(STOP, &instances[0])).await.unwrap();
    assert_eq!(drained.action, Action::Drained);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
    assert!(world.attribute("web", &arns[0], "shipshape.spot-drainer.drained-at").await.is_some());

    let back = invoke(&deps, running(&instances[0], 5)).await.unwrap();

    assert_eq!(back.action, Action::Reactivated, "{back:?}");
    assert_eq!(back.trigger, Trigger::Running);
    assert_eq!(world.status("web", &arns[0]).await, "ACTIVE");
    assert_eq!(world.attribute("web", &arns[0], "shipshape.spot-drainer.drained-at").await, None);
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
    world.emulator.reset_calls();

    let outcome = invoke(&deps(&world, &[("CLUSTERS", "web")]), running(&instances[0], 5)).await.unwrap();

    assert_eq!(outcome.action, Action::Ignored);
    assert_eq!(outcome.reason.as_deref(), Some("DRAINING, but not by this function"));
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
    assert_eq!(world.attribute("web", &arns[0], "shipshape.spot-drainer.drained-at").await, None);

    let outcome = invoke(&deps, running(&instances[0], 5)).await.unwrap();

    assert_eq!(outcome.action, Action::Ignored);
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}

/// EventBridge delivers late and twice: a "running" from before the drain must not undo it.
#[tokio::test]
async fn a_late_running_event_from_before_the_drain_changes_nothing() {
    integration_tests::needs_emulator!();
    let Web { world, instances, arns } = web().await;
    let deps = deps(&world, &[("CLUSTERS", "web")]);
    invoke(&deps, spot_event(STOP, &instances[0])).await.unwrap();

    let outcome = invoke(&deps, running(&instances[0], -600)).await.unwrap();

    assert_eq!(outcome.action, Action::Ignored);
    assert!(outcome.reason.as_deref().unwrap().contains("before this function drained it"), "{outcome:?}");
    assert_eq!(world.status("web", &arns[0]).await, "DRAINING");
}
