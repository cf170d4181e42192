//! Where ECS would place differently from a naive simulation: capacity provider strategies, deployment
//! configurations, services short of tasks; and the order in which candidates are examined.

use super::tests::{decided, decision, inventory, now, ours, reason, settings, task, with_tasks};
use super::*;

fn no_reserve() -> Settings {
    Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, max_removals: 1, ..settings() }
}

fn on(provider: &str, mut i: Instance) -> Instance {
    i.capacity_provider = Some(provider.to_owned());
    i
}

fn young(mut i: Instance) -> Instance {
    i.registered_at = Some(now());
    i
}

fn strategy(providers: &[&str]) -> Task {
    let providers = Some(providers.iter().map(|p| (*p).to_owned()).collect());
    Task { needs: Needs { providers, ..Needs::default() }.into(), ..task(100, 100) }
}

#[test]
fn a_task_moves_only_to_its_strategys_providers() {
    let inv = |others: Vec<Instance>| {
        let mut instances = vec![on("cp-a", with_tasks("cand", "a", vec![strategy(&["cp-a"])]))];
        instances.extend(others.into_iter().map(young));
        inventory(instances, 0)
    };
    let elsewhere = super::plan(&inv(vec![on("cp-b", with_tasks("b1", "a", vec![]))]), &no_reserve(), now());
    assert_eq!(
        reason(&elsewhere, "cand"),
        Reason::CapacityProviderStrategy,
        "{:?}",
        decision(&elsewhere, "cand")
    );
    assert!(decision(&elsewhere, "cand").1.contains("capacity provider cp-a"));
    // An instance in no provider is not one of cp-a's either.
    let plain = super::plan(&inv(vec![with_tasks("p1", "a", vec![])]), &no_reserve(), now());
    assert_eq!(reason(&plain, "cand"), Reason::CapacityProviderStrategy);

    let home = super::plan(&inv(vec![on("cp-a", with_tasks("a2", "a", vec![]))]), &no_reserve(), now());
    assert_eq!(decided(&home, Decision::Drain), ["cand"]);
}

#[test]
fn of_several_providers_each_must_have_room_before_a_drain() {
    let inv = |others: Vec<Instance>| {
        let mut instances = vec![on("cp-a", with_tasks("cand", "a", vec![strategy(&["cp-a", "cp-b"])]))];
        instances.extend(others.into_iter().map(young));
        inventory(instances, 0)
    };
    let one = super::plan(&inv(vec![on("cp-a", with_tasks("a2", "a", vec![]))]), &no_reserve(), now());
    assert_eq!(reason(&one, "cand"), Reason::CapacityProviderStrategy, "{:?}", decision(&one, "cand"));
    assert!(decision(&one, "cand").1.contains("cp-b"), "{:?}", decision(&one, "cand"));

    let both =
        inv(vec![on("cp-a", with_tasks("a2", "a", vec![])), on("cp-b", with_tasks("b1", "a", vec![]))]);
    assert_eq!(decided(&super::plan(&both, &no_reserve(), now()), Decision::Drain), ["cand"]);

    // A drain under way only needs one: its tasks are not set back for a provider ECS did not pick.
    let drained = inventory(
        vec![
            ours(on("cp-a", with_tasks("d", "a", vec![strategy(&["cp-a", "cp-b"])]))),
            young(on("cp-a", with_tasks("a2", "a", vec![]))),
        ],
        0,
    );
    let plan = super::plan(&drained, &Settings { max_removals: 0, ..no_reserve() }, now());
    assert_eq!(decided(&plan, Decision::Wait), ["d"]);
}

fn counts(desired: i32, running: i32, minimum: i32, maximum: i32) -> Counts {
    Counts { desired, running, pending: 0, minimum_healthy_percent: minimum, maximum_percent: maximum }
}

#[test]
fn what_a_deployment_configuration_lets_ecs_do_with_a_drained_task() {
    // ECS's default: the replacement starts first.
    assert!(counts(2, 2, 100, 200).start_first() && !counts(2, 2, 100, 200).stop_first());
    // Stop first, down to the minimum: 50 % of 2 is 1.
    assert!(counts(2, 2, 50, 100).stop_first() && !counts(2, 2, 50, 100).start_first());
    // 50 % of 3 rounds up to 2: one may stop first.
    assert!(counts(3, 3, 50, 100).stop_first());
    assert!(!counts(3, 2, 50, 100).stop_first());
    // Neither: 100/100, or a maximum too small for one task of room (150 % of 1 is 1).
    for c in [counts(2, 2, 100, 100), counts(1, 1, 100, 150)] {
        assert!(!c.stop_first() && !c.start_first(), "{c:?}");
    }
    // Pending tasks count against the maximum.
    assert!(!Counts { pending: 2, ..counts(2, 2, 100, 200) }.start_first());
}

fn with_service(mut inv: Inventory, c: Counts) -> Inventory {
    inv.services.insert("api".into(), Service { counts: Some(c), ..Service::default() });
    inv
}

#[test]
fn a_service_short_or_unable_to_replace_keeps_its_tasks_where_they_are() {
    let scene = || {
        inventory(vec![with_tasks("cand", "a", vec![task(100, 100)]), young(with_tasks("o", "a", vec![]))], 0)
    };
    let whole = super::plan(&with_service(scene(), counts(2, 2, 100, 200)), &no_reserve(), now());
    assert_eq!(decided(&whole, Decision::Drain), ["cand"]);

    let short = super::plan(&with_service(scene(), counts(3, 2, 100, 200)), &no_reserve(), now());
    assert_eq!(reason(&short, "cand"), Reason::ServiceShort);
    assert!(
        decision(&short, "cand").1.contains("service api runs 2 of its 3 tasks"),
        "{:?}",
        decision(&short, "cand")
    );

    let stuck = super::plan(&with_service(scene(), counts(2, 2, 100, 100)), &no_reserve(), now());
    assert_eq!(reason(&stuck, "cand"), Reason::DeploymentConfiguration);

    // A drain of ours that can never end goes back to ACTIVE at once.
    let drained = inventory(
        vec![ours(with_tasks("d", "a", vec![task(100, 100)])), young(with_tasks("o", "a", vec![]))],
        0,
    );
    let plan = super::plan(&with_service(drained, counts(2, 2, 100, 100)), &no_reserve(), now());
    assert_eq!(decided(&plan, Decision::Reactivate), ["d"]);
    assert_eq!(reason(&plan, "d"), Reason::DeploymentConfiguration);
}

/// Drained by us at 11:00 (`ours`), now empty, and `api` had tasks on it.
fn drained_empty_after_api(service: Service) -> Inventory {
    let mut d = ours(with_tasks("d", "a", vec![]));
    d.departed = Some(Departed::Known(["api".to_owned()].into()));
    let mut inv = inventory(vec![d, young(with_tasks("o", "a", vec![]))], 0);
    inv.services.insert("api".into(), service);
    inv
}

fn at(hour: u32, minute: u32, kind: EventKind) -> ServiceEvent {
    use chrono::TimeZone;
    ServiceEvent {
        at: Utc.with_ymd_and_hms(2026, 11, 22, hour, minute, 0).single().unwrap_or_default(),
        kind,
    }
}

#[test]
fn a_drained_instance_is_not_terminated_while_a_service_that_left_it_is_short() {
    let plan = |service: Service| super::plan(&drained_empty_after_api(service), &no_reserve(), now());
    let with =
        |c: Counts, events: Vec<ServiceEvent>| Service { counts: Some(c), events, ..Service::default() };

    let whole = plan(with(counts(2, 2, 0, 100), Vec::new()));
    assert_eq!(decided(&whole, Decision::Reap), ["d"]);

    let short = plan(with(counts(2, 1, 0, 100), Vec::new()));
    assert_eq!(decided(&short, Decision::Reactivate), ["d"]);
    assert_eq!(reason(&short, "d"), Reason::UnplacedReplacements);
    assert!(
        decision(&short, "d").1.contains("service api had tasks on it and runs 1 of its 2"),
        "{:?}",
        decision(&short, "d")
    );

    let starting = plan(with(Counts { pending: 1, ..counts(2, 1, 0, 100) }, Vec::new()));
    assert_eq!(decided(&starting, Decision::Wait), ["d"]);
    assert!(decision(&starting, "d").1.contains("1 are starting"), "{:?}", decision(&starting, "d"));

    // Whole again, but it could not place a task since the drain began and started none after.
    let unable = plan(with(counts(2, 2, 0, 100), vec![at(11, 30, EventKind::UnableToPlace)]));
    assert_eq!(reason(&unable, "d"), Reason::UnplacedReplacements);
    let recovered = plan(with(
        counts(2, 2, 0, 100),
        vec![at(11, 40, EventKind::Started), at(11, 30, EventKind::UnableToPlace)],
    ));
    assert_eq!(decided(&recovered, Decision::Reap), ["d"]);
    let before_the_drain = plan(with(counts(2, 2, 0, 100), vec![at(10, 30, EventKind::UnableToPlace)]));
    assert_eq!(decided(&before_the_drain, Decision::Reap), ["d"]);
}

#[test]
fn tasks_are_read_ahead_only_while_a_removal_is_still_a_guess() {
    let unread = |id: &str| {
        let mut i = with_tasks(id, "a", vec![task(100, 100)]);
        i.tasks = None;
        i
    };
    let inv = inventory(
        vec![unread("c1"), unread("c2"), unread("c3"), unread("c4"), young(with_tasks("o", "a", vec![]))],
        0,
    );
    let wanted = |plan: &Plan| -> Vec<String> {
        plan.wanted.iter().map(|arn| arn.rsplit('/').next().unwrap_or_default().to_owned()).collect()
    };
    assert_eq!(wanted(&super::plan(&inv, &no_reserve(), now())), ["c1"]);
    assert_eq!(wanted(&super::plan_ahead(&inv, &no_reserve(), now(), 2)), ["c1", "c2", "c3"]);

    // c1 read and a removal: nothing is a guess any more, so nothing is read ahead.
    let mut known = inv.clone();
    known.instances[0].tasks = Some(vec![task(100, 100)]);
    let plan = super::plan_ahead(&known, &no_reserve(), now(), 2);
    assert_eq!(decided(&plan, Decision::Drain), ["c1"]);
    assert!(plan.wanted.is_empty(), "{:?}", plan.wanted);
}

/// The candidate queue picks what the quadratic search it replaced picked: the least of the rest by
/// (not empty, not in its group's fullest zone, share, tasks, registered, ARN), the fullest zone changing
/// as instances leave.
#[test]
fn the_candidate_queue_orders_as_a_search_of_every_pair_would() {
    use std::collections::HashMap;
    let mut seed = 7_u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for _ in 0..50 {
        let mut instances = Vec::new();
        for n in 0..40 {
            let tasks: Vec<(i64, i64)> = (0..next(4)).map(|_| (100 * (1 + next(3) as i64), 100)).collect();
            let zone = ["a", "b", "c"][next(3) as usize];
            let mut inst = super::tests::inst(&format!("i{n:02}"), zone, &tasks);
            if let Some(m) = inst.membership.as_mut() {
                m.group = ["g1", "g2"][next(2) as usize].into();
            }
            instances.push(inst);
        }
        let inv = inventory(instances, 0);
        fn staying(inv: &Inventory) -> HashMap<(&str, &str), i64> {
            let mut s: HashMap<(&str, &str), i64> = HashMap::new();
            for i in &inv.instances {
                let m = i.membership.as_ref().unwrap_or_else(|| panic!("in a group"));
                *s.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() += 1;
            }
            s
        }
        let candidates: Vec<usize> = (0..inv.instances.len()).filter(|_| next(5) > 0).collect();
        let mut order = super::order::Order::new(&inv, &candidates, staying(&inv));
        let mut reference = staying(&inv);
        let mut left = candidates.clone();
        while let Some(got) = order.pop() {
            let most = |i: usize, s: &HashMap<(&str, &str), i64>| {
                let m = inv.instances[i].membership.as_ref().unwrap_or_else(|| panic!("in a group"));
                let here = s.get(&(m.group.as_str(), m.availability_zone.as_str())).copied().unwrap_or(0);
                here >= s.iter().filter(|((g, _), _)| *g == m.group).map(|(_, c)| *c).max().unwrap_or(0)
            };
            let pos = (0..left.len())
                .min_by(|&a, &b| {
                    let (ia, ib) = (&inv.instances[left[a]], &inv.instances[left[b]]);
                    (!ia.is_empty(), !most(left[a], &reference))
                        .cmp(&(!ib.is_empty(), !most(left[b], &reference)))
                        .then(ia.reserved_share().total_cmp(&ib.reserved_share()))
                        .then(ia.task_count().cmp(&ib.task_count()))
                        .then(ia.registered_at.cmp(&ib.registered_at))
                        .then(ia.container_instance_arn.cmp(&ib.container_instance_arn))
                })
                .unwrap_or_else(|| panic!("the queue gave more than the search"));
            assert_eq!(got, left.remove(pos));
            if next(3) == 0 {
                order.removed(got);
                let m = inv.instances[got].membership.as_ref().unwrap_or_else(|| panic!("in a group"));
                *reference.entry((m.group.as_str(), m.availability_zone.as_str())).or_default() -= 1;
            }
        }
        assert!(left.is_empty());
    }
}

/// A trial undone leaves the pool as it was: its totals, and where the next task goes.
#[test]
fn a_trial_rolled_back_leaves_the_pool_as_it_was() {
    use super::placement::{Mode, Pool, Queries};
    let web = |port: u16| Task {
        needs: Needs { ports: vec![HostPort { port, protocol: Protocol::Tcp }], ..Needs::default() }.into(),
        ..task(300, 300)
    };
    let inv = inventory(
        vec![
            with_tasks("a", "a", vec![task(500, 500)]),
            with_tasks("b", "a", vec![task(200, 200), web(80)]),
            with_tasks("c", "a", vec![]),
        ],
        0,
    );
    let settings = no_reserve();
    let mut queries = Queries::default();
    let mut pool = Pool::new(&inv, 0..3, Resources::new(600, 600));
    let before = pool.capacity(&settings);
    let fresh = {
        let mut p = pool.clone();
        p.place(&inv, &[web(80), task(450, 450)], Some("a"), Mode::Candidate, &mut queries)
            .map(|()| p.capacity(&settings))
    };

    pool.begin();
    let moved_in = pool.remove(2);
    assert!(moved_in.is_empty());
    assert!(pool.place(&inv, &[web(81), task(400, 400)], Some("a"), Mode::Candidate, &mut queries).is_ok());
    assert_ne!(pool.capacity(&settings), before);
    pool.rollback();

    assert_eq!(pool.capacity(&settings), before);
    assert!(pool.shortfall(&settings).is_none());
    let again = pool.place(&inv, &[web(80), task(450, 450)], Some("a"), Mode::Candidate, &mut queries);
    assert_eq!(again.map(|()| pool.capacity(&settings)), fresh);
}

/// A cluster at its reserve: taking any instance out breaks it, whatever its tasks. Reading their tasks
/// would change nothing, so none is read: in a fleet that sits at its reserve (where runs leave it), the
/// look-ahead would otherwise read every candidate, every run.
#[test]
fn a_candidate_whose_removal_alone_breaks_the_reserve_is_not_read() {
    let unread = |id: &str, load: i64| {
        let mut i = super::tests::inst(id, "a", &[(load, load)]);
        i.tasks = None;
        i
    };
    // 4,000 registered, 900 spare; 20 % is 800: taking out any instance with 300 or more free breaks it.
    let inv = inventory(vec![unread("c1", 700), unread("c2", 700), unread("c3", 700), unread("c4", 1000)], 0);
    let at_reserve =
        Settings { reserve_cpu_percent: 20, reserve_memory_percent: 0, max_removals: 1, ..settings() };
    let plan = super::plan_ahead(&inv, &at_reserve, now(), 8);
    assert!(plan.wanted.is_empty(), "{:?}", plan.wanted);
    for id in ["c1", "c2", "c3"] {
        assert_eq!(reason(&plan, id), Reason::Reserve, "{:?}", decision(&plan, id));
    }
}

#[test]
fn what_left_a_drained_instance_unknown_or_forgotten_keeps_it() {
    let plan = |inv: &Inventory| super::plan(inv, &no_reserve(), now());
    // A stopped task ECS cannot describe: which service it was is not known, so no termination yet.
    let mut inv =
        drained_empty_after_api(Service { counts: Some(counts(2, 2, 0, 100)), ..Service::default() });
    inv.instances[0].departed = Some(Departed::Unknown);
    let p = plan(&inv);
    assert_eq!(decided(&p, Decision::Wait), ["d"]);
    assert!(decision(&p, "d").1.contains("cannot describe yet"), "{:?}", decision(&p, "d"));

    // Drained more than an hour ago: its stopped tasks may no longer be listed, so any service that could
    // not place a task since the drain began keeps it.
    let stuck = Service {
        counts: Some(counts(2, 2, 0, 100)),
        events: vec![at(11, 45, EventKind::UnableToPlace)],
        ..Service::default()
    };
    let mut inv =
        drained_empty_after_api(Service { counts: Some(counts(2, 2, 0, 100)), ..Service::default() });
    inv.services.insert("other".into(), stuck);
    inv.instances[0].drained_by_us_at = "2026-11-22T10:30:00Z".parse().ok();
    inv.instances[0].carries_our_marker = true;
    let p = plan(&inv);
    assert_eq!(reason(&p, "d"), Reason::UnplacedReplacements, "{:?}", decision(&p, "d"));
    assert!(decision(&p, "d").1.contains("service other"), "{:?}", decision(&p, "d"));
    // Drained twenty minutes ago: the listing is complete, and `other` never ran on it.
    inv.instances[0].drained_by_us_at = "2026-11-22T11:40:00Z".parse().ok();
    inv.instances[0].carries_our_marker = true;
    assert_eq!(decided(&plan(&inv), Decision::Reap), ["d"]);
}

#[test]
fn a_service_ecs_could_not_describe_keeps_the_instances_of_its_tasks() {
    let mut inv = inventory(
        vec![with_tasks("cand", "a", vec![task(100, 100)]), young(with_tasks("o", "a", vec![]))],
        0,
    );
    inv.undescribed_services.insert("api".into());
    let plan = super::plan(&inv, &no_reserve(), now());
    assert_eq!(reason(&plan, "cand"), Reason::ConstraintUnknown);
    assert!(
        decision(&plan, "cand").1.contains("service api could not be described"),
        "{:?}",
        decision(&plan, "cand")
    );
}

#[test]
fn a_launch_type_task_never_moves_to_managed_instances() {
    let scene = |other: Instance| {
        let mut inv = inventory(vec![with_tasks("cand", "a", vec![task(100, 100)]), young(other)], 0);
        inv.exclusive_providers.insert("managed".into());
        inv
    };
    let managed = super::plan(&scene(on("managed", with_tasks("mi", "a", vec![]))), &no_reserve(), now());
    assert_eq!(
        reason(&managed, "cand"),
        Reason::CapacityProviderStrategy,
        "{:?}",
        decision(&managed, "cand")
    );
    assert!(
        decision(&managed, "cand").1.contains("ECS Managed Instances"),
        "{:?}",
        decision(&managed, "cand")
    );
    let asg = super::plan(&scene(on("cp-a", with_tasks("o", "a", vec![]))), &no_reserve(), now());
    assert_eq!(
        decided(&asg, Decision::Drain),
        ["cand"],
        "an Auto Scaling group provider's instance takes it"
    );
}
