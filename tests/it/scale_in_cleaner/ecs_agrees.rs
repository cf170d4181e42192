//! Where ECS (the emulator) placed differently from the plan: capacity provider strategies, deployment
//! configurations, quoted patterns; and the backstop for what a simulation still misses. Each test shows
//! a plan that ECS would refuse being kept, and, where it can, ECS moving the task where the plan said.

use integration_tests::World;
use integration_tests::placement::{Definition, Service};
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
