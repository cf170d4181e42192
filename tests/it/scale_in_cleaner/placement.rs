//! Placement as ECS does it, and the operator's controls, against the emulator's placement: each test
//! shows the plan keeping an instance whose tasks cannot move, and, where it can, that ECS (the emulator)
//! moves the task where the plan said it would fit.

use chrono::{Timelike, Utc};
use integration_tests::World;
use integration_tests::placement::Definition;
use scale_in_cleaner::inventory::{self, MARKER, Read, STALLED_MARKER};
use scale_in_cleaner::plan::{Decision, Progress, Reason};
use scale_in_cleaner::{Deps, act};
use shared::edge::Budget;

use super::{Scene, TASK, decision, deps, run, scene, web};

/// An instance to register: its attributes and its GPU ids.
type Spec<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

/// Instances of group `web` in cluster `web`, registered as `specs` say.
async fn fleet(world: &World, specs: &[Spec<'_>]) -> Vec<String> {
    let ids = world.group("web", i32::try_from(specs.len()).unwrap_or(0)).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    let mut arns = Vec::new();
    for (id, (attributes, gpus)) in ids.iter().zip(specs) {
        arns.push(world.register_with("web", id, attributes, gpus).await);
    }
    arns
}

fn id_of(outcome: &scale_in_cleaner::Outcome, arn: &str) -> String {
    web(outcome).instances.iter().find(|e| e.container_instance_arn == arn).unwrap().ec2_instance_id.clone()
}

fn entry_of<'a>(outcome: &'a scale_in_cleaner::Outcome, arn: &str) -> &'a scale_in_cleaner::plan::Entry {
    web(outcome).instances.iter().find(|e| e.container_instance_arn == arn).unwrap()
}

fn one_removal(world: &World) -> Deps {
    deps(world, &[("MAX_REMOVALS_PER_RUN", "1")])
}

#[tokio::test]
async fn a_port_conflict_keeps_the_instance() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let arns = fleet(&world, &[(&[], &[]), (&[], &[]), (&[], &[])]).await;
    world
        .definition(&Definition {
            family: "web80",
            cpu: 256,
            memory: 512,
            host_ports: &[(80, "tcp")],
            ..Default::default()
        })
        .await;
    world.service("web", "api", "web80", 3, false).await;
    for arn in &arns {
        world.start("web", "web80", arn, Some("service:api")).await;
    }
    let outcome = run(&deps(&world, &[("MAX_REMOVALS_PER_RUN", "3")])).await;
    for arn in &arns {
        let e = entry_of(&outcome, arn);
        assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::PortConflict), "{e:?}");
        assert!(e.detail.contains("host port 80/tcp"), "{e:?}");
        assert_eq!(world.status("web", arn).await, "ACTIVE");
    }

    // An instance without port 80 (running another service) joins: one of them drains, and ECS moves
    // its task there.
    let extra = world.group("extra", 1).await;
    let other = world.register("web", &extra[0]).await;
    world.start_sized_tasks("web", &other, 1, Some("service:other".into()), TASK).await;
    let outcome = run(&one_removal(&world)).await;
    let drained: Vec<&str> = web(&outcome)
        .instances
        .iter()
        .filter(|e| e.decision == Decision::Drain)
        .map(|e| e.container_instance_arn.as_str())
        .collect();
    assert_eq!(drained.len(), 1, "{outcome:#?}");
    assert!(arns.contains(&drained[0].to_owned()));
    let placed: Vec<String> = world.placement_of("web", "api").await.into_iter().map(|(_, ci)| ci).collect();
    assert!(placed.contains(&other) && !placed.contains(&drained[0].to_owned()), "{placed:?}");
}

#[tokio::test]
async fn distinct_instance_keeps_the_instance() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let arns = fleet(&world, &[(&[], &[]), (&[], &[]), (&[], &[])]).await;
    world.definition(&Definition { family: "one-each", cpu: 256, memory: 512, ..Default::default() }).await;
    world.service("web", "api", "one-each", 3, true).await;
    for arn in &arns {
        world.start("web", "one-each", arn, Some("service:api")).await;
    }
    world.emulator.reset_calls();
    let outcome = run(&deps(&world, &[("MAX_REMOVALS_PER_RUN", "3"), ("DRY_RUN", "true")])).await;
    for arn in &arns {
        let e = entry_of(&outcome, arn);
        assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::DistinctInstance), "{e:?}");
    }
    // Where the service runs is asked of ECS once per run: `task:group == service:api`.
    assert_eq!(world.emulator.calls_of("ecs:ListContainerInstances"), 2);

    let extra = world.group("extra", 1).await;
    let other = world.register("web", &extra[0]).await;
    world.start_sized_tasks("web", &other, 1, Some("service:other".into()), TASK).await;
    let outcome = run(&one_removal(&world)).await;
    assert_eq!(outcome.totals.drained, 1, "{outcome:#?}");
    let hosts: Vec<String> = world.placement_of("web", "api").await.into_iter().map(|(_, ci)| ci).collect();
    assert!(hosts.contains(&other), "{hosts:?}");
    let mut unique = hosts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), hosts.len(), "ECS kept them on distinct instances: {hosts:?}");
}

#[tokio::test]
async fn a_member_of_instance_type_keeps_the_instance_unless_another_of_that_type_has_room() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let g4dn: &[(&str, &str)] = &[("ecs.instance-type", "g4dn.xlarge")];
    let arns = fleet(&world, &[(g4dn, &[]), (g4dn, &[]), (&[], &[])]).await;
    let (g1, g2, m5) = (&arns[0], &arns[1], &arns[2]);
    let expression = "attribute:ecs.instance-type =~ g4dn.*";
    world
        .definition(&Definition {
            family: "infer",
            cpu: 128,
            memory: 128,
            member_of: &[expression],
            ..Default::default()
        })
        .await;
    world.definition(&Definition { family: "big", cpu: 0, memory: 7400, ..Default::default() }).await;
    world.definition(&Definition { family: "half", cpu: 0, memory: 3000, ..Default::default() }).await;
    world.service("web", "infer", "infer", 1, false).await;
    world.start("web", "infer", g1, Some("service:infer")).await;
    let big = world.start("web", "big", g2, None).await;
    world.start_sized_tasks("web", m5, 1, Some("service:other".into()), (512, 1024)).await;

    let outcome = run(&one_removal(&world)).await;
    let e = entry_of(&outcome, g1);
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::MemberOf), "{e:?}");
    assert!(e.detail.contains(expression), "{e:?}");
    assert_eq!(world.status("web", g1).await, "ACTIVE");

    // The other g4dn gets room: the task moves there, never to the m5 with more room.
    world.stop("web", &big).await;
    world.start("web", "half", g2, None).await;
    let outcome = run(&one_removal(&world)).await;
    assert_eq!(decision(&outcome, &id_of(&outcome, g1)), Decision::Drain, "{outcome:#?}");
    let placed: Vec<String> =
        world.placement_of("web", "infer").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed, std::slice::from_ref(g2));
}

#[tokio::test]
async fn gpu_tasks_move_only_to_gpu_instances() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let arns = fleet(&world, &[(&[], &["GPU-a"]), (&[], &["GPU-b"]), (&[], &[])]).await;
    let (gpu1, gpu2, plain) = (&arns[0], &arns[1], &arns[2]);
    world
        .definition(&Definition { family: "train", cpu: 128, memory: 128, gpus: 1, ..Default::default() })
        .await;
    world.service("web", "train", "train", 1, false).await;
    world.start("web", "train", gpu1, Some("service:train")).await;
    // A standalone task holds the other GPU: a stopped service task would leave the service short.
    let busy = world.start("web", "train", gpu2, None).await;
    for arn in [gpu2, plain] {
        world.start_sized_tasks("web", arn, 1, Some("service:other".into()), TASK).await;
    }
    let outcome = run(&deps(&world, &[("MAX_REMOVALS_PER_RUN", "1"), ("DRY_RUN", "true")])).await;
    let e = entry_of(&outcome, gpu1);
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::Gpu), "{e:?}");

    world.stop("web", &busy).await;
    let outcome = run(&one_removal(&world)).await;
    assert_eq!(entry_of(&outcome, gpu1).decision, Decision::Drain, "{outcome:#?}");
    let placed: Vec<String> =
        world.placement_of("web", "train").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed, std::slice::from_ref(gpu2), "to the instance with a free GPU, not the plain one");
}

#[tokio::test]
async fn protected_tasks_keep_their_instance() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let tasks =
        s.world.ecs.list_tasks().cluster("web").container_instance(&s.arns[&s.light]).send().await.unwrap();
    s.world.protect("web", &tasks.task_arns()[0]).await;

    let outcome = run(&deps(&s.world, &[])).await;

    let e = web(&outcome).entry(&s.light).unwrap();
    assert_eq!((e.decision, e.reason), (Decision::Skip, Reason::TaskProtected), "{e:?}");
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "ACTIVE");
    assert_eq!(decision(&outcome, &s.idle), Decision::Terminate, "what is not protected still goes");
}

/// The light instance runs a task of `api`, which is being deployed: it stays; the idle one goes.
#[tokio::test]
async fn a_deployment_in_progress_blocks_drains_of_its_tasks() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.service("web", "api", "web", 9, false).await;
    s.world.emulator.deployments(None);
    s.world
        .ecs
        .update_service()
        .cluster("web")
        .service("api")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();

    let outcome = run(&deps(&s.world, &[])).await;

    let e = web(&outcome).entry(&s.light).unwrap();
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::DeploymentInProgress), "{e:?}");
    assert!(e.detail.contains("service api is being deployed"), "{e:?}");
    assert_eq!(decision(&outcome, &s.idle), Decision::Terminate, "it runs none of api's tasks");
}

/// A run keeps the idle and the light instance, because `service` (a daemon, on every instance) is being
/// deployed, and removes nothing.
async fn nothing_removed_while(s: &Scene, service: &str) {
    let outcome = run(&deps(&s.world, &[])).await;

    for id in [&s.idle, &s.light] {
        let e = web(&outcome).entry(id).unwrap();
        assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::DeploymentInProgress), "{e:?}");
        assert!(e.detail.contains(&format!("service {service} is being deployed")), "{e:?}");
    }
    assert_eq!(outcome.totals, Default::default());
    assert_eq!(s.world.group_size("web").await, (0, 4, 4));
}

#[tokio::test]
async fn a_daemon_being_deployed_blocks_new_drains_too() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.emulator.deployments(None);
    s.world
        .ecs
        .create_service()
        .cluster("web")
        .service_name("agent")
        .task_definition("web")
        .scheduling_strategy(aws_sdk_ecs::types::SchedulingStrategy::Daemon)
        .send()
        .await
        .unwrap();

    nothing_removed_while(&s, "agent").await;
}

/// A one-hour window twelve hours away from now: closed whenever the test runs.
fn closed_window() -> String {
    let h = Utc::now().hour();
    format!("* {:02}:00-{:02}:00 UTC", (h + 12) % 24, (h + 13) % 24)
}

#[tokio::test]
async fn outside_the_window_nothing_is_removed() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let window = closed_window();
    s.world.emulator.draining(3_600_000, 1000); // the light instance's task stays while it drains
    let first = run(&deps(&s.world, &[("SCALE_IN_WINDOWS", &window)])).await;
    assert_eq!(first.totals, Default::default());
    for e in web(&first).instances.iter().filter(|e| e.decision == Decision::Keep) {
        assert_eq!(e.reason, Reason::OutsideWindow, "{e:?}");
    }
    assert_eq!(decision(&first, &s.idle), Decision::Keep);

    // Drained inside a window, then empty: not reaped until one opens again.
    run(&deps(&s.world, &[])).await;
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "DRAINING");
    s.world.emulator.draining(0, 0);
    let later = run(&deps(&s.world, &[("SCALE_IN_WINDOWS", &window)])).await;
    let e = web(&later).entry(&s.light).unwrap();
    assert_eq!((e.decision, e.reason), (Decision::Wait, Reason::OutsideWindow), "{e:?}");
    assert!(s.world.lifecycle_state(&s.light).await.is_some(), "still in its group");
    assert_eq!(s.world.group_size("web").await.1, 3);
}

#[tokio::test]
async fn a_stalled_drain_is_undone() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    s.world.service("web", "api", "web", 9, false).await;
    stall_the_light_instance(&s).await;

    let outcome = run(&deps(&s.world, &[])).await;

    let e = web(&outcome).entry(&s.light).unwrap();
    assert_eq!((e.decision, e.reason), (Decision::Reactivate, Reason::StalledDrain), "{e:?}");
    assert!(e.detail.contains("service api has been unable to place its tasks"), "{e:?}");
    assert!(e.done());
    let light = &s.arns[&s.light];
    assert_eq!(s.world.status("web", light).await, "ACTIVE");
    assert_eq!(s.world.attribute("web", light, MARKER).await, None);
    assert_eq!(s.world.attribute("web", light, shared::drain::marker::LEGACY_SCALE_IN).await, None);
    assert!(s.world.attribute("web", light, STALLED_MARKER).await.is_some());
    assert_eq!(outcome.totals.reactivated, 1);

    let next = run(&deps(&s.world, &[("DRY_RUN", "true")])).await;
    assert_eq!(web(&next).entry(&s.light).unwrap().reason, Reason::RecentlyStalled);
}

/// The light instance was drained by this function two hours ago and its service task cannot move: every
/// other instance is full.
async fn stall_the_light_instance(s: &Scene) {
    s.world.definition(&Definition { family: "filler", cpu: 0, memory: 3300, ..Default::default() }).await;
    s.world.definition(&Definition { family: "big", cpu: 0, memory: 7400, ..Default::default() }).await;
    s.world.start("web", "big", &s.arns[&s.idle], None).await;
    for id in [&s.busy, &s.batch] {
        s.world.start("web", "filler", &s.arns[id], None).await;
    }
    let light = &s.arns[&s.light];
    let two_hours_ago =
        (Utc::now() - chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // As 0.1.0 wrote it: still read as ours.
    let marker = aws_sdk_ecs::types::Attribute::builder()
        .name(shared::drain::marker::LEGACY_SCALE_IN)
        .value(two_hours_ago)
        .target_type(aws_sdk_ecs::types::TargetType::ContainerInstance)
        .target_id(light)
        .build()
        .unwrap();
    s.world.ecs.put_attributes().cluster("web").attributes(marker).send().await.unwrap();
    s.world
        .ecs
        .update_container_instances_state()
        .cluster("web")
        .container_instances(light)
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    let events = s.world.ecs.describe_services().cluster("web").services("api").send().await.unwrap();
    let said = events.services()[0]
        .events()
        .iter()
        .any(|e| e.message().unwrap_or_default().contains("unable to place"));
    assert!(said, "the emulator reports the stalled replacement");
}

/// Planned on what the instances were; a task arrives on the chosen one before it is drained: the drain
/// is cancelled, and says why.
#[tokio::test]
async fn a_change_since_the_plan_cancels_the_drain() {
    integration_tests::needs_emulator!();
    let s = scene().await;
    let deps = deps(&s.world, &[]);
    let Read::Found(mut read) =
        inventory::read(&deps.ecs, &deps.autoscaling, "web", &deps.definitions).await.unwrap()
    else {
        panic!("cluster web not found")
    };
    let settings = &deps.config.settings;
    let mut plan = scale_in_cleaner::plan::plan(&read.inventory, settings, Utc::now());
    read.read_tasks(&deps.ecs, &plan.wanted).await.unwrap();
    plan = scale_in_cleaner::plan::plan(&read.inventory, settings, Utc::now());
    let light = plan.entries.iter().find(|e| e.ec2_instance_id == s.light).unwrap();
    assert_eq!(light.decision, Decision::Drain);

    s.world.start_sized_tasks("web", &s.arns[&s.light], 1, Some("service:api".into()), TASK).await;
    let act = act::Act {
        deps: &deps,
        cluster: "web",
        daemon_groups: &read.inventory.daemon_groups,
        fingerprints: &read.fingerprints,
        found: &read.inventory.found("web"),
        budget: Budget::unlimited(),
        now: Utc::now(),
    };
    act.all(&mut plan.entries).await.unwrap();

    let light = plan.entries.iter().find(|e| e.ec2_instance_id == s.light).unwrap();
    assert!(
        matches!(&light.progress, Progress::Cancelled(why) if why.contains("tasks running/pending 1/0 -> 2/0")),
        "{light:?}"
    );
    assert_eq!(s.world.status("web", &s.arns[&s.light]).await, "ACTIVE");
    assert_eq!(s.world.attribute("web", &s.arns[&s.light], MARKER).await, None);
    let idle = plan.entries.iter().find(|e| e.ec2_instance_id == s.idle).unwrap();
    assert!(idle.done(), "the unchanged one goes: {idle:?}");
}
