//! Fewer wasted dollars, and staying fast: one service's deployment blocks only the instances its tasks run
//! on, every candidate is examined in time however many of the least used ones cannot go, and a warm
//! sandbox reads a task definition revision once.

use integration_tests::placement::Definition;
use scale_in_cleaner::plan::{Decision, Reason};

use super::{Scene, decision, deps, run, scene, web};

/// `api` runs on the light and the busy instance; `other`, whose deployment hangs, on the batch one.
async fn other_deploying(s: &Scene) {
    s.world.service("web", "api", "web", 9, false).await;
    s.world.emulator.deployments(None);
    s.world.definition(&Definition { family: "other", cpu: 64, memory: 64, ..Default::default() }).await;
    s.world.service("web", "other", "other", 1, false).await;
    s.world.start("web", "other", &s.arns[&s.batch], Some("service:other")).await;
}

#[tokio::test]
async fn a_deployment_blocks_only_the_instances_its_service_runs_on() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    other_deploying(&s).await;

    let outcome = run(&deps(&s.world, &[("MAX_REMOVALS_PER_RUN", "4"), ("DRY_RUN", "true")])).await;

    assert_eq!(decision(&outcome, &s.idle), Decision::Terminate, "{outcome:#?}");
    assert_eq!(decision(&outcome, &s.light), Decision::Drain, "{outcome:#?}");
    let batch = web(&outcome).entry(&s.batch).unwrap();
    assert_eq!((batch.decision, batch.reason), (Decision::Keep, Reason::DeploymentInProgress), "{batch:?}");
    assert!(batch.detail.contains("service other is being deployed"), "{batch:?}");
}

/// Six instances, the least used, each run one task with scale-in protection; the seventh runs two tasks
/// that can move. With one removal a run, a fixed order read the tasks of four candidates a run at most
/// and never reached the seventh: it stayed `not-examined` run after run.
#[tokio::test]
async fn every_candidate_is_examined_however_many_cannot_go() {
    integration_tests::needs_emulator!();
    let world = integration_tests::World::new().await;
    let ids = world.group("web", 9).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    let mut arns = Vec::new();
    for id in &ids {
        arns.push(world.register("web", id).await);
    }
    // Two roomy instances are capacity, never candidates.
    world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .set_instance_ids(Some(ids[7..].to_vec()))
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    world.definition(&Definition { family: "api", cpu: 256, memory: 512, ..Default::default() }).await;
    world.service("web", "api", "api", 8, false).await;
    for arn in &arns[..6] {
        let task = world.start("web", "api", arn, Some("service:api")).await;
        world.protect("web", &task).await;
    }
    let movable = &arns[6];
    for _ in 0..2 {
        world.start("web", "api", movable, Some("service:api")).await;
    }

    let outcome = run(&deps(&world, &[("MAX_REMOVALS_PER_RUN", "1"), ("DRY_RUN", "true")])).await;

    let e = web(&outcome).instances.iter().find(|e| e.container_instance_arn == *movable).unwrap();
    assert_eq!((e.decision, e.reason), (Decision::Drain, Reason::UnderUsed), "{outcome:#?}");
    for arn in &arns[..6] {
        let e = web(&outcome).instances.iter().find(|e| e.container_instance_arn == *arn).unwrap();
        assert_eq!(e.reason, Reason::TaskProtected, "{e:?}");
    }
}

/// A task definition revision never changes: a warm sandbox reads each once, not once per run.
#[tokio::test]
async fn a_warm_sandbox_reads_each_task_definition_once() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[("DRY_RUN", "true")]);
    run(&deps).await;
    assert_eq!(s.world.emulator.calls_of("ecs:DescribeTaskDefinition"), 1);

    s.world.emulator.reset_calls();
    let again = run(&deps).await;

    assert_eq!(s.world.emulator.calls_of("ecs:DescribeTaskDefinition"), 0, "{:?}", s.world.emulator.calls());
    assert_eq!(decision(&again, &s.light), Decision::Drain, "the cached definition still sizes its task");
}
