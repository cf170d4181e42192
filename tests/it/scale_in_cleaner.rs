//! scale-in-cleaner against the emulator, with the real SDK. Placement and the operator's controls are
//! in [`placement`].

mod ecs_agrees;
mod fairness;
mod placement;

use std::collections::HashMap;

use integration_tests::{World, sample_event};
use lambda_runtime::{Context, LambdaEvent};
use scale_in_cleaner::inventory::MARKER;
use scale_in_cleaner::plan::{Decision, Entry, Progress, Reason};
use scale_in_cleaner::{ClusterOutcome, Config, Deps, Error, Outcome, handler};
use serde_json::{Value, json};
use shared::config::Env;
use shared::edge::ErrorType;
use shared::notify::Notification;

/// Emulated container instances register 4096 CPU units and 7482 MiB.
const TASK: (i32, i32) = (256, 512);

/// The function on cluster `web`, with instances old enough, no cool-down and the whole group as budget
/// (the scenes are small), and `env` on top.
fn deps(world: &World, env: &[(&str, &str)]) -> Deps {
    let mut map: HashMap<&str, &str> = HashMap::from([
        ("CLUSTERS", "web"),
        ("MIN_INSTANCE_AGE_MINUTES", "0"),
        ("SCALE_IN_COOLDOWN_MINUTES", "0"),
        ("SCALE_IN_BUDGET_PERCENT", "100"),
    ]);
    map.extend(env.iter().copied());
    Deps::new(&world.sdk, Config::from_env(Env::from_map(&map)).expect("config"))
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Outcome, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

async fn run(deps: &Deps) -> Outcome {
    invoke(deps, sample_event("scale-in-scheduled.json")).await.unwrap_or_else(|e| panic!("run failed: {e}"))
}

fn web(outcome: &Outcome) -> &ClusterOutcome {
    outcome.cluster("web").expect("cluster web in the summary")
}

/// Carrying it out failed or was refused.
fn failed(e: &Entry) -> bool {
    matches!(e.progress, Progress::Failed(_) | Progress::Refused(_))
}

fn decision(outcome: &Outcome, instance_id: &str) -> Decision {
    web(outcome).entry(instance_id).unwrap_or_else(|| panic!("{instance_id} not in the summary")).decision
}

/// Cluster `web` on group `web` of four instances: `idle` runs nothing, `light` one service task,
/// `busy` eight service tasks, `batch` eight standalone tasks. Service tasks on a DRAINING instance stop
/// at once.
struct Scene {
    world: World,
    idle: String,
    light: String,
    busy: String,
    batch: String,
    arns: HashMap<String, String>,
}

async fn scene() -> Scene {
    let world = World::new().await;
    let ids = world.group("web", 4).await;
    world.cluster("web").await;
    let mut arns = HashMap::new();
    for id in &ids {
        arns.insert(id.clone(), world.register("web", id).await);
    }
    let (idle, light, busy, batch) = (ids[0].clone(), ids[1].clone(), ids[2].clone(), ids[3].clone());
    world.start_sized_tasks("web", &arns[&light], 1, Some("service:api".into()), TASK).await;
    world.start_sized_tasks("web", &arns[&busy], 8, Some("service:api".into()), TASK).await;
    world.start_sized_tasks("web", &arns[&batch], 8, None, TASK).await;
    world.emulator.draining(0, 0);
    world.emulator.reset_calls();
    Scene { world, idle, light, busy, batch, arns }
}

#[tokio::test]
async fn drains_the_light_terminates_the_idle_then_reaps_the_drained() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[]);

    let first = run(&deps).await;

    assert_eq!(decision(&first, &s.idle), Decision::Terminate);
    assert_eq!(decision(&first, &s.light), Decision::Drain);
    assert_eq!(decision(&first, &s.busy), Decision::Keep);
    assert_eq!(decision(&first, &s.batch), Decision::Keep);
    assert!(web(&first).instances.iter().all(|e| !failed(e)), "{first:#?}");
    assert_eq!((first.totals.terminated, first.totals.drained), (1, 1));
    assert_eq!(s.world.lifecycle_state(&s.idle).await, None, "the idle instance left its group");
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "DRAINING");
    assert!(s.world.attribute("web", &s.arns[&s.light], MARKER).await.is_some(), "marked as ours");
    assert_eq!(s.world.status("web", &s.arns[&s.busy]).await, "ACTIVE");
    assert_eq!(s.world.group_size("web").await, (0, 3, 3), "desired capacity decremented");
    assert_eq!(s.world.emulator.calls_of("autoscaling:TerminateInstanceInAutoScalingGroup"), 1);

    // The light instance's service task stops; the next run terminates it and plans nothing new: without
    // the busy instance, what stays (the batch instance) would keep less than the 20 % reserve, whatever
    // the busy instance's tasks, so they are not even read.
    let second = run(&deps).await;

    assert_eq!(decision(&second, &s.light), Decision::Reap);
    assert!(web(&second).entry(&s.light).unwrap().done());
    assert_eq!(decision(&second, &s.busy), Decision::Keep);
    let busy = web(&second).entry(&s.busy).unwrap();
    assert_eq!(busy.reason, Reason::Reserve, "{second:#?}");
    assert!(busy.detail.contains("whatever its tasks (not read)"), "{busy:?}");
    assert_eq!(s.world.lifecycle_state(&s.light).await, None);
    assert_eq!(s.world.group_size("web").await, (0, 2, 2));

    // Nothing left to do: a third run changes nothing.
    s.world.emulator.reset_calls();
    let third = run(&deps).await;
    assert_eq!(third.totals, Default::default());
    let calls = s.world.emulator.calls();
    for op in [
        "UpdateContainerInstancesState",
        "TerminateInstanceInAutoScalingGroup",
        "PutAttributes",
        "DeleteAttributes",
    ] {
        assert!(!calls.keys().any(|k| k.ends_with(op)), "{op} called: {calls:?}");
    }
}

#[tokio::test]
async fn load_added_brings_a_drained_instance_back() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.emulator.draining(3_600_000, 1000); // the light instance's task does not leave
    let deps = deps(&s.world, &[]);
    run(&deps).await;
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "DRAINING");

    // Fourteen tasks on each remaining instance: 314 MiB free on each, 4% of the memory.
    s.world.start_sized_tasks("web", &s.arns[&s.busy], 6, Some("service:api".into()), TASK).await;
    s.world.start_sized_tasks("web", &s.arns[&s.batch], 6, None, TASK).await;
    let outcome = run(&deps).await;

    let entry = web(&outcome).entry(&s.light).unwrap();
    assert_eq!(entry.decision, Decision::Reactivate);
    assert_eq!(entry.reason, Reason::CapacityNeeded);
    assert!(entry.detail.contains("capacity needed again"), "{}", entry.detail);
    assert!(entry.done());
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "ACTIVE");
    assert_eq!(s.world.attribute("web", &s.arns[&s.light], MARKER).await, None, "marker removed");
    assert_eq!(outcome.totals.reactivated, 1);
    assert_eq!(s.world.group_size("web").await.1, 3);
}

#[tokio::test]
async fn a_dry_run_plans_what_a_run_would_do() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[("DRY_RUN", "true")]);

    let outcome = run(&deps).await;

    assert!(outcome.dry_run);
    assert_eq!(decision(&outcome, &s.idle), Decision::Terminate);
    assert_eq!(decision(&outcome, &s.light), Decision::Drain);
    assert!(web(&outcome).instances.iter().all(|e| e.progress == Progress::Planned));
    assert_eq!((outcome.totals.terminated, outcome.totals.drained), (1, 1));
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[("DRY_RUN", "true")]);

    run(&deps).await;

    let calls = s.world.emulator.calls();
    let mutating: Vec<_> = calls
        .keys()
        .filter(|k| !k.contains(":Describe") && !k.contains(":List") && !k.contains(":Get"))
        .collect();
    assert!(mutating.is_empty(), "mutating calls in a dry run: {mutating:?}");
    for arn in s.arns.values() {
        assert_eq!(s.world.status("web", arn).await, "ACTIVE");
    }
    assert_eq!(s.world.group_size("web").await, (0, 4, 4));

    // The same from a manual invoke of a function that is not in dry-run mode.
    let live = deps_live(&s.world);
    let outcome = invoke(&live, json!({"dry-run": true})).await.unwrap();
    assert!(outcome.dry_run);
    assert_eq!(s.world.group_size("web").await, (0, 4, 4));
}

fn deps_live(world: &World) -> Deps {
    deps(world, &[])
}

/// One call per page of instances; tasks only of the instances the plan examines: the idle instance needs
/// none, the light one is the only other examined (two removals per run), the others are never read.
#[tokio::test]
async fn reads_are_one_call_per_page_and_tasks_only_where_the_plan_looks() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[("DRY_RUN", "true")]);
    run(&deps).await;
    let calls = s.world.emulator.calls();
    for op in [
        "ecs:DescribeClusters",
        "ecs:ListContainerInstances",
        "ecs:DescribeContainerInstances",
        "ecs:ListServices",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:DescribeTaskDefinition",
        "ecs:GetTaskProtection",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeAutoScalingGroups",
    ] {
        assert_eq!(calls.get(op).copied(), Some(1), "{op}: {calls:?}");
    }
    assert_eq!(calls.get("ecs:DescribeServices"), None, "no service to describe: {calls:?}");
}

#[tokio::test]
async fn throttling_is_retried() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    for op in [
        "ListContainerInstances",
        "DescribeContainerInstances",
        "DescribeAutoScalingInstances",
        "UpdateContainerInstancesState",
        "TerminateInstanceInAutoScalingGroup",
    ] {
        s.world.emulator.fail(op, 2, "ThrottlingException");
    }
    let outcome = run(&deps_live(&s.world)).await;
    assert_eq!((outcome.totals.terminated, outcome.totals.drained), (1, 1));
    assert_eq!(s.world.group_size("web").await.1, 3);
    assert_eq!(s.world.emulator.calls_of("autoscaling:TerminateInstanceInAutoScalingGroup"), 3);
}

#[tokio::test]
async fn a_termination_refused_at_min_size_is_a_skip() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.emulator.fail("TerminateInstanceInAutoScalingGroup", 1, "ValidationError");
    let outcome = run(&deps_live(&s.world)).await;

    let entry = web(&outcome).entry(&s.idle).unwrap();
    assert_eq!(entry.decision, Decision::Terminate);
    assert!(!entry.done());
    assert!(matches!(entry.progress, Progress::Refused(_)), "{entry:?}");
    assert_eq!(outcome.totals.terminated, 0);
    // Drained and marked: the next run reaps it.
    assert_eq!(s.world.status("web", &s.arns[&s.idle]).await, "DRAINING");
    let next = run(&deps_live(&s.world)).await;
    assert_eq!(decision(&next, &s.idle), Decision::Reap);
    assert_eq!(s.world.lifecycle_state(&s.idle).await, None);
}

#[tokio::test]
async fn instances_that_are_protected_or_out_of_touch_are_skipped() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .instance_ids(&s.light)
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    s.world.emulator.agent(&s.arns[&s.idle], false);
    let outcome = run(&deps(&s.world, &[("DRY_RUN", "true")])).await;
    let reason = |id: &str| web(&outcome).entry(id).unwrap().detail.clone();
    assert_eq!(decision(&outcome, &s.light), Decision::Skip);
    assert!(reason(&s.light).contains("protected"));
    assert_eq!(decision(&outcome, &s.idle), Decision::Skip);
    assert!(reason(&s.idle).contains("agent disconnected"));
    // The light instance is protected, the idle one's agent is away: the busy instance's tasks fit on the
    // light one, so it is the one drained.
    assert_eq!(decision(&outcome, &s.busy), Decision::Drain);
}

#[tokio::test]
async fn young_instances_are_skipped() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    // The default MIN_INSTANCE_AGE_MINUTES of 30 leaves the just-registered alone.
    let young = run(&deps(&s.world, &[("MIN_INSTANCE_AGE_MINUTES", "30"), ("DRY_RUN", "true")])).await;
    for e in &web(&young).instances {
        assert_eq!(e.decision, Decision::Skip, "{e:?}");
        assert_eq!(e.reason, Reason::TooYoung, "{e:?}");
        assert!(e.detail.contains("younger than MIN_INSTANCE_AGE_MINUTES=30"), "{e:?}");
    }
}

#[tokio::test]
async fn a_group_at_its_minimum_size_loses_nothing() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.set_min_size("web", 4).await;
    let at_min = run(&deps_live(&s.world)).await;
    assert_eq!(decision(&at_min, &s.idle), Decision::Keep);
    assert!(web(&at_min).entry(&s.idle).unwrap().detail.contains("minimum size 4"));
    assert_eq!(s.world.group_size("web").await, (4, 4, 4));
    assert_eq!(at_min.totals, Default::default());
}

#[tokio::test]
async fn instances_with_only_daemon_tasks_are_empty() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world
        .ecs
        .create_service()
        .cluster("web")
        .service_name("log-router")
        .task_definition("web")
        .scheduling_strategy(aws_sdk_ecs::types::SchedulingStrategy::Daemon)
        .send()
        .await
        .unwrap();
    for arn in s.arns.values() {
        s.world.start_sized_tasks("web", arn, 1, Some("service:log-router".into()), (64, 64)).await;
    }
    let outcome = run(&deps_live(&s.world)).await;
    assert_eq!(decision(&outcome, &s.idle), Decision::Terminate);
    assert!(web(&outcome).entry(&s.idle).unwrap().done());
    assert_eq!(web(&outcome).entry(&s.idle).unwrap().tasks, 0);
}

/// Capacity providers of cluster `web`: `others` without managed scaling first (on their own groups),
/// then `web-cp` with managed scaling on group `web`.
async fn capacity_providers(s: &Scene, others: usize) {
    use aws_sdk_ecs::types::{AutoScalingGroupProvider, ManagedScaling, ManagedScalingStatus};
    let mut names = Vec::new();
    for i in 0..=others {
        let (name, group, status) = if i < others {
            let group = format!("other-{i}");
            s.world.group(&group, 0).await;
            (format!("other-cp-{i:02}"), group, ManagedScalingStatus::Disabled)
        } else {
            ("web-cp".to_owned(), "web".to_owned(), ManagedScalingStatus::Enabled)
        };
        let groups = s
            .world
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group)
            .send()
            .await
            .unwrap();
        let arn = groups.auto_scaling_groups()[0].auto_scaling_group_arn().unwrap().to_owned();
        s.world
            .ecs
            .create_capacity_provider()
            .name(&name)
            .auto_scaling_group_provider(
                AutoScalingGroupProvider::builder()
                    .auto_scaling_group_arn(arn)
                    .managed_scaling(ManagedScaling::builder().status(status).build())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        names.push(name);
    }
    s.world
        .ecs
        .put_cluster_capacity_providers()
        .cluster("web")
        .set_capacity_providers(Some(names))
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn groups_scaled_by_a_capacity_provider_are_skipped() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    capacity_providers(&s, 0).await;

    let outcome = run(&deps_live(&s.world)).await;

    assert!(web(&outcome).instances.iter().all(|e| e.decision == Decision::Skip));
    assert!(web(&outcome).entry(&s.idle).unwrap().detail.contains("capacity provider web-cp"));
    assert_eq!(s.world.group_size("web").await.1, 4);
}

/// DescribeCapacityProviders answers 10 at a time: the provider that scales `web` is the 11th.
#[tokio::test]
async fn every_page_of_capacity_providers_is_read() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    capacity_providers(&s, 10).await;
    s.world.emulator.reset_calls();

    let outcome = run(&deps_live(&s.world)).await;

    assert!(
        web(&outcome).entry(&s.idle).unwrap().detail.contains("capacity provider web-cp"),
        "{outcome:#?}"
    );
    assert_eq!(s.world.emulator.calls_of("ecs:DescribeCapacityProviders"), 2);
    assert_eq!(s.world.group_size("web").await.1, 4);
}

/// The light instance was drained by an earlier run; since then its group has begun terminating it (a
/// scale-in, an instance refresh) and load has grown. Setting it back to ACTIVE would let ECS place tasks on
/// a machine about to go.
#[tokio::test]
async fn a_drain_of_ours_that_auto_scaling_is_terminating_is_never_set_back_to_active() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.emulator.draining(3_600_000, 1000); // the light instance's task does not leave
    let deps = deps(&s.world, &[]);
    run(&deps).await;
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "DRAINING");
    let hooks = s.world.topic("hooks").await;
    s.world.hook("web", &hooks, 300, "CONTINUE").await;
    s.world
        .autoscaling
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&s.light)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    assert_eq!(s.world.lifecycle_state(&s.light).await.as_deref(), Some("Terminating:Wait"));
    s.world.start_sized_tasks("web", &s.arns[&s.busy], 6, Some("service:api".into()), TASK).await;
    s.world.start_sized_tasks("web", &s.arns[&s.batch], 6, None, TASK).await;

    let outcome = run(&deps).await;

    let entry = web(&outcome).entry(&s.light).unwrap();
    assert_eq!(entry.decision, Decision::Skip, "{entry:?}");
    assert!(entry.detail.contains("Terminating:Wait"), "{}", entry.detail);
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "DRAINING");
    assert_eq!(outcome.totals.reactivated, 0);
}

/// A group busy with another scaling activity refuses a termination: the next run tries again, and the
/// run's other changes go on.
#[tokio::test]
async fn a_busy_group_is_tried_again_next_run() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.emulator.fail("TerminateInstanceInAutoScalingGroup", 1, "ScalingActivityInProgress");

    let first = run(&deps_live(&s.world)).await;

    let idle = web(&first).entry(&s.idle).unwrap();
    assert!(
        matches!(&idle.progress, Progress::Refused(why) if why.contains("ScalingActivityInProgress")),
        "{idle:?}"
    );
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "DRAINING", "the other change went on");
    let next = run(&deps_live(&s.world)).await;
    assert_eq!(decision(&next, &s.idle), Decision::Reap);
    assert_eq!(s.world.lifecycle_state(&s.idle).await, None);
}

async fn mark_busy_and_drain_idle_by_hand(s: &Scene) {
    let marker = aws_sdk_ecs::types::Attribute::builder()
        .name(shared::drain::marker::LEGACY_SCALE_IN) // as 0.1.0 wrote it
        .value("2026-11-01T00:00:00Z")
        .target_type(aws_sdk_ecs::types::TargetType::ContainerInstance)
        .target_id(&s.arns[&s.busy])
        .build()
        .unwrap();
    s.world.ecs.put_attributes().cluster("web").attributes(marker).send().await.unwrap();
    s.world
        .ecs
        .update_container_instances_state()
        .cluster("web")
        .container_instances(&s.arns[&s.idle])
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
}

/// Our marker on an instance someone set back to ACTIVE.
#[tokio::test]
async fn a_stale_marker_is_removed() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    mark_busy_and_drain_idle_by_hand(&s).await;

    let outcome = run(&deps_live(&s.world)).await;

    assert!(web(&outcome).entry(&s.busy).unwrap().clear_marker);
    assert_eq!(
        s.world.attribute("web", &s.arns[&s.busy], shared::drain::marker::LEGACY_SCALE_IN).await,
        None
    );
}

#[tokio::test]
async fn a_drain_by_someone_else_is_left_alone() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    mark_busy_and_drain_idle_by_hand(&s).await;

    let outcome = run(&deps_live(&s.world)).await;

    assert_eq!(decision(&outcome, &s.idle), Decision::Skip);
    assert_eq!(web(&outcome).entry(&s.idle).unwrap().reason, Reason::DrainedByOthers);
    assert_eq!(s.world.status("web", &s.arns[&s.idle]).await, "DRAINING");
    assert!(s.world.lifecycle_state(&s.idle).await.is_some(), "someone else's drain is not reaped");
}

#[tokio::test]
async fn one_notification_per_run_that_changed_something() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let topic = s.world.topic("scale-in").await;
    let deps = deps(&s.world, &[("NOTIFICATION_TOPIC_ARN", topic.arn.as_str())]);

    let outcome = run(&deps).await;
    assert!(matches!(outcome.notification, Notification::Sent { .. }), "{:?}", outcome.notification);
    let messages = s.world.sns_events(&topic).await;
    assert_eq!(messages.len(), 1);
    let sns = &messages[0]["Records"][0]["Sns"];
    assert_eq!(sns["Subject"], "shipshape scale-in: 1 terminated, 1 drained, 0 reactivated");
    let text = sns["Message"].as_str().unwrap();
    assert!(text.contains(&format!("web {} ", s.idle)) && text.contains("terminated (was empty)"), "{text}");
    assert!(text.contains(&format!("web {} ", s.light)) && text.contains("set DRAINING"), "{text}");

    // Waiting for the drain changes nothing: no message.
    s.world.emulator.draining(3_600_000, 1000);
    s.world.start_sized_tasks("web", &s.arns[&s.light], 1, None, TASK).await;
    let quiet = run(&deps).await;
    assert_eq!(quiet.totals.waiting, 1);
    assert_eq!(quiet.notification, Notification::Skipped);
    assert!(s.world.sns_events(&topic).await.is_empty());
}

#[tokio::test]
async fn a_missing_cluster_is_reported() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[("CLUSTERS", "web,gone")]);
    let outcome = run(&deps).await;
    assert_eq!(outcome.missing_clusters, ["gone"]);
    assert!(outcome.cluster("web").is_some());
}

#[tokio::test]
async fn bad_input_is_refused_before_any_call() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[]);
    let err = invoke(&deps, json!({"dry-run": "yes"})).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidEvent");
    assert!(err.to_string().contains("dry-run"), "{err}");
    assert_eq!(s.world.emulator.total_calls(), 0, "nothing read or changed for a bad input");
}

#[tokio::test]
async fn a_cluster_that_cannot_be_read_fails_the_run_after_the_others() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.cluster("other").await;
    // More failures than the SDK retries (5 attempts).
    s.world.emulator.fail("ListContainerInstances", 5, "ThrottlingException");
    let deps = deps(&s.world, &[("CLUSTERS", "web,other")]);

    let err = run_err(&deps).await;

    let Error::Incomplete { failures, outcome } = err else { panic!("expected Incomplete") };
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].starts_with("web: ListContainerInstances failed: ThrottlingException"),
        "{failures:?}"
    );
    assert!(web(&outcome).error.is_some());
    assert!(outcome.cluster("other").unwrap().error.is_none());
    assert_eq!(s.world.group_size("web").await.1, 4, "nothing changed in the cluster that failed");
}

async fn run_err(deps: &Deps) -> Error {
    invoke(deps, sample_event("scale-in-scheduled.json")).await.expect_err("the run should fail")
}

/// A drain ECS refused leaves no marker that claims a later drain by someone else: an operator who drains
/// the instance afterwards keeps it DRAINING, and the function neither reaps nor reactivates it.
#[tokio::test]
async fn a_drain_that_failed_claims_no_later_drain_by_someone_else() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps_live(&s.world);
    s.world.emulator.fail("UpdateContainerInstancesState", 1, "AccessDeniedException");
    let err = run_err(&deps).await;
    assert!(err.to_string().contains("UpdateContainerInstancesState"), "{err}");
    let light = &s.arns[&s.light];
    assert_eq!(s.world.status("web", light).await, "ACTIVE");
    assert_eq!(s.world.attribute("web", light, MARKER).await, None, "no marker left behind");

    // An operator drains it; its service task stops at once.
    s.world
        .ecs
        .update_container_instances_state()
        .cluster("web")
        .container_instances(light)
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("drain by hand");
    let outcome = run(&deps).await;
    let entry = web(&outcome).entry(&s.light).unwrap();
    assert_eq!((entry.decision, entry.reason), (Decision::Skip, Reason::DrainedByOthers), "{entry:?}");
    assert_eq!(s.world.status("web", light).await, "DRAINING");
    assert_eq!(s.world.lifecycle_state(&s.light).await.as_deref(), Some("InService"));
}

/// ECS throttles the marker's second write (held, once the instance is DRAINING): the drain stands under our
/// pending marker, and the next run takes it for its own and reaps it, instead of skipping a DRAINING
/// instance for good as someone else's.
#[tokio::test]
async fn a_drain_whose_marker_could_not_be_held_is_still_ours() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps_live(&s.world);
    s.world.emulator.delay("UpdateContainerInstancesState", 1, 1500);
    let inject = async {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        // As many as the SDK's attempts (5): the held write fails, nothing after it.
        s.world.emulator.fail("PutAttributes", 5, "ThrottlingException");
    };
    let (first, ()) = tokio::join!(invoke(&deps, sample_event("scale-in-scheduled.json")), inject);
    let light = &s.arns[&s.light];
    assert_eq!(s.world.status("web", light).await, "DRAINING", "{first:?}");
    let marker = s.world.attribute("web", light, MARKER).await.unwrap_or_default();
    assert!(marker.starts_with("pending scale-in-cleaner:"), "{marker}");
    let next = run(&deps).await;
    let entry = web(&next).entry(&s.light).unwrap();
    assert_eq!(entry.decision, Decision::Reap, "{entry:?}");
    assert_eq!(s.world.lifecycle_state(&s.light).await, None, "terminated");
}

/// A Spot interruption warning for an instance the cleaner drained: the drain becomes the spot-drainer's,
/// so the cleaner, needing capacity again, never sets an instance about to be interrupted ACTIVE.
#[tokio::test]
async fn a_drain_a_spot_warning_took_over_is_never_undone_by_the_cleaner() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.emulator.draining(3_600_000, 1000); // the light instance's task does not leave
    let deps = deps(&s.world, &[]);
    run(&deps).await;
    let light = &s.arns[&s.light];
    assert_eq!(s.world.status("web", light).await, "DRAINING");
    let spot = spot_drainer::Deps::new(
        &s.world.sdk,
        spot_drainer::Config::from_env(Env::from_map(&HashMap::from([("CLUSTERS", "web")]))).unwrap(),
    );
    let warning = integration_tests::spot_event("spot-interruption-stop.json", &s.light);
    spot_drainer::handler(&spot, LambdaEvent::new(warning, Context::default())).await.expect("warning");
    let marker = s.world.attribute("web", light, MARKER).await.unwrap_or_default();
    assert!(marker.starts_with("spot-drainer:stop@"), "{marker}");

    // Load that would bring the cleaner's drain back.
    s.world.start_sized_tasks("web", &s.arns[&s.busy], 6, Some("service:api".into()), TASK).await;
    s.world.start_sized_tasks("web", &s.arns[&s.batch], 6, None, TASK).await;
    let outcome = run(&deps).await;
    let entry = web(&outcome).entry(&s.light).unwrap();
    assert_eq!((entry.decision, entry.reason), (Decision::Skip, Reason::DrainedByOthers), "{entry:?}");
    assert_eq!(s.world.status("web", light).await, "DRAINING");
}
