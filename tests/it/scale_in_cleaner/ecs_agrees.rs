//! Where ECS (the emulator) placed differently from the plan: capacity provider strategies, deployment
//! configurations, quoted patterns; and the backstop for what a simulation still misses. Each test shows
//! a plan that ECS would refuse being kept, and, where it can, ECS moving the task where the plan said.

use integration_tests::World;
use integration_tests::placement::{Definition, Service};
use scale_in_cleaner::inventory::STALLED_MARKER;
use scale_in_cleaner::plan::{Decision, Reason};

use super::{deps, run, web};

/// Instances of groups `a` (two) and `b` (one) in cluster `web`, behind capacity providers `cp-a` (the
/// cluster's default) and `cp-b`; every instance but the first of `a` protected from scale-in, so that
/// they are capacity and never candidates. Their container instance ARNs: (a, b).
async fn two_providers(world: &World) -> (Vec<String>, String) {
    let a = world.group("a", 2).await;
    let b = world.group("b", 1).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    world.capacity_providers("web", &["a", "b"], Some("cp-a")).await;
    let mut arns = Vec::new();
    for id in &a {
        arns.push(world.register("web", id).await);
    }
    let b_arn = world.register("web", &b[0]).await;
    for (group, id) in [("a", &a[1]), ("b", &b[0])] {
        world
            .autoscaling
            .set_instance_protection()
            .auto_scaling_group_name(group)
            .instance_ids(id)
            .protected_from_scale_in(true)
            .send()
            .await
            .unwrap();
    }
    world.definition(&Definition { family: "api", cpu: 256, memory: 512, ..Default::default() }).await;
    world.definition(&Definition { family: "big", cpu: 0, memory: 7400, ..Default::default() }).await;
    (arns, b_arn)
}

#[tokio::test]
async fn a_task_moves_only_to_instances_of_its_capacity_provider() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let (a, b) = two_providers(&world).await;
    let api =
        Service { name: "api", family: "api", desired: 1, strategy: &[("cp-a", 0, 1)], ..Default::default() };
    world.service_with("web", &api).await;
    world.start("web", "api", &a[0], Some("service:api")).await;
    let big = world.start("web", "big", &a[1], None).await;
    let deps = deps(&world, &[("MAX_REMOVALS_PER_RUN", "1")]);

    // The other instance of cp-a is full; b's instance has room, but ECS never places api there.
    let outcome = run(&deps).await;

    let e = web(&outcome).instances.iter().find(|e| e.container_instance_arn == a[0]).unwrap();
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::CapacityProviderStrategy), "{e:?}");
    assert!(e.detail.contains("cp-a"), "{e:?}");
    assert_eq!(world.status("web", &a[0]).await, "ACTIVE");

    // Room on cp-a: the drain goes ahead, and ECS moves the task there, not to b.
    world.stop("web", &big).await;
    let outcome = run(&deps).await;
    let e = web(&outcome).instances.iter().find(|e| e.container_instance_arn == a[0]).unwrap();
    assert_eq!(e.decision, Decision::Drain, "{outcome:#?}");
    let placed: Vec<String> = world.placement_of("web", "api").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed, std::slice::from_ref(&a[1]), "not to {b}");
}

/// Three instances of group `web` in cluster `web`: `light` runs one task of service `api`, the other two
/// are capacity (protected from scale-in, so never candidates) with room. Their ARNs: (light, others).
async fn light_and_room(world: &World, api: &Service<'_>, placed: usize) -> (String, Vec<String>) {
    let ids = world.group("web", 3).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    let mut arns = Vec::new();
    for id in &ids {
        arns.push(world.register("web", id).await);
    }
    world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .set_instance_ids(Some(ids[1..].to_vec()))
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    world.definition(&Definition { family: "api", cpu: 256, memory: 512, ..Default::default() }).await;
    world.service_with("web", api).await;
    world.start("web", "api", &arns[0], Some("service:api")).await;
    for arn in arns[1..].iter().take(placed.saturating_sub(1)) {
        world.start("web", "api", arn, Some("service:api")).await;
    }
    (arns[0].clone(), arns[1..].to_vec())
}

fn entry<'a>(outcome: &'a scale_in_cleaner::Outcome, arn: &str) -> &'a scale_in_cleaner::plan::Entry {
    web(outcome).instances.iter().find(|e| e.container_instance_arn == arn).unwrap()
}

/// `api` wants two tasks and runs one: ECS is still placing the other. Draining the instance of the one
/// it runs (stopped first, as minimumHealthyPercent 0 allows) would leave it with none for a while.
#[tokio::test]
async fn a_service_short_of_its_desired_count_is_never_made_shorter() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let api =
        Service { name: "api", family: "api", desired: 2, deployment: Some((0, 100)), ..Default::default() };
    let (light, _) = light_and_room(&world, &api, 1).await;

    let outcome = run(&deps(&world, &[("MAX_REMOVALS_PER_RUN", "1")])).await;

    let e = entry(&outcome, &light);
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::ServiceShort), "{e:?}");
    assert!(e.detail.contains("service api runs 1 of its 2 tasks"), "{e:?}");
    assert_eq!(world.status("web", &light).await, "ACTIVE");
    assert_eq!(world.placement_of("web", "api").await.len(), 1);
}

/// minimumHealthyPercent 100 and maximumPercent 100: ECS may neither stop the task before its replacement
/// runs nor start the replacement first, so the drain would never end. With 50 % it stops the task first
/// and places its replacement.
#[tokio::test]
async fn a_deployment_configuration_that_cannot_replace_a_task_keeps_its_instance() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let api = Service {
        name: "api",
        family: "api",
        desired: 2,
        deployment: Some((100, 100)),
        ..Default::default()
    };
    let (light, _) = light_and_room(&world, &api, 2).await;
    let deps = deps(&world, &[("MAX_REMOVALS_PER_RUN", "1")]);

    let outcome = run(&deps).await;

    let e = entry(&outcome, &light);
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::DeploymentConfiguration), "{e:?}");
    assert!(e.detail.contains("minimumHealthyPercent=100 and maximumPercent=100"), "{e:?}");
    assert_eq!(world.status("web", &light).await, "ACTIVE");

    let world = World::new().await;
    let api =
        Service { name: "api", family: "api", desired: 2, deployment: Some((50, 100)), ..Default::default() };
    let (light, others) = light_and_room(&world, &api, 2).await;
    let outcome = run(&deps_of(&world)).await;
    assert_eq!(entry(&outcome, &light).decision, Decision::Drain, "{outcome:#?}");
    let placed: Vec<String> = world.placement_of("web", "api").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert!(placed.iter().all(|ci| others.contains(ci)), "{placed:?}");
}

fn deps_of(world: &World) -> scale_in_cleaner::Deps {
    deps(world, &[("MAX_REMOVALS_PER_RUN", "1")])
}

/// `infer` must not run on a g4dn (`!~ 'g4dn.*'`, quoted as the cluster query language page quotes
/// arguments): the only instance with room is one, so its instance stays. The quotes once ended up inside
/// the regular expression, which then matched nothing, so the g4dn counted as a place for it.
#[tokio::test]
async fn a_quoted_pattern_is_evaluated_as_ecs_does() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let ids = world.group("web", 3).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    let mut arns = Vec::new();
    for (id, kind) in ids.iter().zip(["m5.large", "g4dn.xlarge", "m5.large"]) {
        arns.push(world.register_with("web", id, &[("ecs.instance-type", kind)], &[]).await);
    }
    let (cand, g4dn, m5) = (&arns[0], &arns[1], &arns[2]);
    world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .set_instance_ids(Some(ids[1..].to_vec()))
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    let not_g4dn = "attribute:ecs.instance-type !~ 'g4dn.*'";
    world
        .definition(&Definition {
            family: "infer",
            cpu: 128,
            memory: 128,
            member_of: &[not_g4dn],
            ..Default::default()
        })
        .await;
    world.definition(&Definition { family: "big", cpu: 0, memory: 7400, ..Default::default() }).await;
    world.service("web", "infer", "infer", 1, false).await;
    world.start("web", "infer", cand, Some("service:infer")).await;
    let big = world.start("web", "big", m5, None).await;
    let deps = deps(&world, &[("MAX_REMOVALS_PER_RUN", "1")]);

    let outcome = run(&deps).await;

    let e = entry(&outcome, cand);
    assert_eq!((e.decision, e.reason), (Decision::Keep, Reason::MemberOf), "{e:?}");
    assert_eq!(world.status("web", cand).await, "ACTIVE");

    // Room on the other m5: the task moves there, never to the g4dn.
    world.stop("web", &big).await;
    let outcome = run(&deps).await;
    assert_eq!(entry(&outcome, cand).decision, Decision::Drain, "{outcome:#?}");
    let placed: Vec<String> =
        world.placement_of("web", "infer").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed, std::slice::from_ref(m5), "not to {g4dn}");
}

/// `cache` runs only where `db` runs (`task:group == service:db`, one of the cluster query language's
/// documented subjects): it moves to the other instance running `db`, never to the empty one.
#[tokio::test]
async fn a_task_group_affinity_is_evaluated_where_the_group_runs() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let ids = world.group("web", 3).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    let mut arns = Vec::new();
    for id in &ids {
        arns.push(world.register("web", id).await);
    }
    let (cand, with_db, empty) = (&arns[0], &arns[1], &arns[2]);
    world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .set_instance_ids(Some(ids[1..].to_vec()))
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    let near_db = "task:group == service:db";
    world.definition(&Definition { family: "db", cpu: 128, memory: 128, ..Default::default() }).await;
    world
        .definition(&Definition {
            family: "cache",
            cpu: 128,
            memory: 128,
            member_of: &[near_db],
            ..Default::default()
        })
        .await;
    world.service("web", "db", "db", 1, false).await;
    world.service("web", "cache", "cache", 1, false).await;
    world.start("web", "db", with_db, Some("service:db")).await;
    world.start("web", "cache", cand, Some("service:cache")).await;

    let outcome = run(&deps(&world, &[("MAX_REMOVALS_PER_RUN", "1")])).await;

    assert_eq!(entry(&outcome, cand).decision, Decision::Drain, "{outcome:#?}");
    let placed: Vec<String> =
        world.placement_of("web", "cache").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed, std::slice::from_ref(with_db), "not to {empty}");
}

/// The backstop. `api` runs only on `gold` instances; the plan put its task on the other gold one. Before
/// ECS placed the replacement, a task took that room. With minimumHealthyPercent 0, ECS stopped the task
/// first and could not place the replacement: the drained instance is empty, the service runs none of its
/// one task, and the cluster's spare capacity (on a plain instance) looks ample. The next run must not
/// terminate the instance: it undoes the drain, and ECS places the task there again.
#[tokio::test]
async fn a_drained_instance_is_never_terminated_while_a_service_it_ran_is_short() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    let ids = world.group("web", 3).await;
    world.cluster("web").await;
    world.emulator.draining(0, 0);
    let gold: &[(&str, &str)] = &[("tier", "gold")];
    let mut arns = Vec::new();
    for (id, attributes) in ids.iter().zip([gold, gold, &[]]) {
        arns.push(world.register_with("web", id, attributes, &[]).await);
    }
    let (light, other_gold) = (&arns[0], &arns[1]);
    world
        .autoscaling
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .set_instance_ids(Some(ids[1..].to_vec()))
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    let on_gold = "attribute:tier == gold";
    world
        .definition(&Definition {
            family: "api",
            cpu: 256,
            memory: 512,
            member_of: &[on_gold],
            ..Default::default()
        })
        .await;
    world.definition(&Definition { family: "big", cpu: 0, memory: 7400, ..Default::default() }).await;
    let api =
        Service { name: "api", family: "api", desired: 1, deployment: Some((0, 100)), ..Default::default() };
    world.service_with("web", &api).await;
    world.start("web", "api", light, Some("service:api")).await;
    let deps = deps(&world, &[("MAX_REMOVALS_PER_RUN", "1")]);
    plan_then_act(&deps, || async {
        world.start("web", "big", other_gold, None).await;
    })
    .await;
    assert_eq!(world.status("web", light).await, "DRAINING");
    assert!(world.placement_of("web", "api").await.is_empty(), "ECS stopped the task and could not place it");

    let outcome = run(&deps).await;

    let e = entry(&outcome, light);
    assert_eq!((e.decision, e.reason), (Decision::Reactivate, Reason::UnplacedReplacements), "{e:?}");
    assert!(e.detail.contains("service api"), "{e:?}");
    assert!(e.done());
    assert!(world.lifecycle_state(&e.ec2_instance_id).await.is_some(), "still in its group");
    assert_eq!(world.status("web", light).await, "ACTIVE");
    assert!(world.attribute("web", light, STALLED_MARKER).await.is_some(), "not drained again for a day");
    let placed: Vec<String> = world.placement_of("web", "api").await.into_iter().map(|(_, ci)| ci).collect();
    assert_eq!(placed, std::slice::from_ref(light), "ECS placed the task again on the instance it left");
}

/// Plans as a run does, runs `between`, then carries the plan out: what changes in between is what the
/// plan could not see.
async fn plan_then_act<F, Fut>(deps: &scale_in_cleaner::Deps, between: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use scale_in_cleaner::inventory::{self, Read};
    let Read::Found(mut read) =
        inventory::read(&deps.ecs, &deps.autoscaling, "web", &deps.definitions).await.unwrap()
    else {
        panic!("cluster web not found")
    };
    let now = chrono::Utc::now();
    let settings = &deps.config.settings;
    let mut plan = scale_in_cleaner::plan::plan(&read.inventory, settings, now);
    read.read_tasks(&deps.ecs, &plan.wanted).await.unwrap();
    plan = scale_in_cleaner::plan::plan(&read.inventory, settings, now);
    assert!(plan.entries.iter().any(|e| e.decision == Decision::Drain), "{plan:#?}");
    between().await;
    let act = scale_in_cleaner::act::Act {
        deps,
        cluster: "web",
        daemon_groups: &read.inventory.daemon_groups,
        fingerprints: &read.fingerprints,
        found: &read.inventory.found("web"),
        budget: shared::edge::Budget::unlimited(),
        now,
    };
    act.all(&mut plan.entries).await.unwrap();
}
