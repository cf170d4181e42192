//! Placement as ECS does it, and the operator's controls: windows, budgets, cool-down, deployments,
//! protection, stalled drains.

use chrono::Duration;

use super::tests::{
    decided, decision, entry, instance_ids, inventory, now, ours, reason, settings, task, with_tasks,
};
use super::window::Windows;
use super::*;

fn no_reserve() -> Settings {
    Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, max_removals: 1, ..settings() }
}

fn with_needs(cpu: i64, memory: i64, needs: Needs) -> Task {
    Task { needs: needs.into(), ..task(cpu, memory) }
}

fn port(p: u16) -> Needs {
    Needs { ports: vec![HostPort { port: p, protocol: Protocol::Tcp }], ..Needs::default() }
}

/// `cand` (a candidate, alone), then the others, which are too young to be candidates but are capacity.
fn scene(cand: Vec<Task>, others: Vec<Instance>) -> Inventory {
    let mut instances = vec![with_tasks("cand", "a", cand)];
    for mut o in others {
        o.registered_at = Some(now());
        instances.push(o);
    }
    inventory(instances, 0)
}

fn plan_of(inv: &Inventory, s: &Settings) -> Plan {
    super::plan(inv, s, now())
}

#[test]
fn a_port_conflict_keeps_the_instance() {
    let web = || with_needs(100, 100, port(80));
    let taken =
        scene(vec![web()], vec![with_tasks("o1", "a", vec![web()]), with_tasks("o2", "a", vec![web()])]);
    let plan = plan_of(&taken, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::PortConflict);
    assert!(decision(&plan, "cand").1.contains("host port 80/tcp"), "{:?}", decision(&plan, "cand"));

    // The same port over UDP does not conflict; nor does an instance without the port.
    let udp = with_needs(
        100,
        100,
        Needs { ports: vec![HostPort { port: 80, protocol: Protocol::Udp }], ..Needs::default() },
    );
    let free = scene(vec![web()], vec![with_tasks("o1", "a", vec![web()]), with_tasks("o2", "a", vec![udp])]);
    assert_eq!(decided(&plan_of(&free, &no_reserve()), Decision::Drain), ["cand"]);
}

#[test]
fn distinct_instance_keeps_the_instance_and_unknown_hosts_are_not_guessed() {
    let t = || with_needs(100, 100, Needs { distinct_instance: true, ..Needs::default() });
    let mut inv = scene(vec![t()], vec![with_tasks("o1", "a", vec![t()]), with_tasks("o2", "a", vec![t()])]);
    let plan = plan_of(&inv, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::ConstraintUnknown, "{:?}", decision(&plan, "cand"));

    inv.hosts.insert("service:api".into(), instance_ids(&inv, &["cand", "o1", "o2"]));
    assert_eq!(reason(&plan_of(&inv, &no_reserve()), "cand"), Reason::DistinctInstance);

    // A third instance without the service takes it.
    inv.instances.push(with_tasks("o3", "a", vec![]));
    inv.instances[3].registered_at = Some(now());
    assert_eq!(decided(&plan_of(&inv, &no_reserve()), Decision::Drain), ["cand"]);
}

#[test]
fn member_of_an_instance_type_moves_only_to_that_type() {
    let gpu_type =
        || Needs { member_of: vec!["attribute:ecs.instance-type =~ g4dn.*".into()], ..Needs::default() };
    let mut g4dn = with_tasks("g4", "a", vec![task(900, 900)]);
    g4dn.attributes.insert("ecs.instance-type".into(), Some("g4dn.xlarge".into()));
    let inv =
        scene(vec![with_needs(200, 200, gpu_type())], vec![g4dn.clone(), with_tasks("m5", "a", vec![])]);
    let plan = plan_of(&inv, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::MemberOf, "{:?}", decision(&plan, "cand"));

    // Another g4dn with room: it goes there.
    let mut roomy = with_tasks("g4b", "a", vec![]);
    roomy.attributes.insert("ecs.instance-type".into(), Some("g4dn.xlarge".into()));
    let inv = scene(vec![with_needs(200, 200, gpu_type())], vec![g4dn, roomy, with_tasks("m5", "a", vec![])]);
    assert_eq!(decided(&plan_of(&inv, &no_reserve()), Decision::Drain), ["cand"]);

    // An expression the planner cannot evaluate keeps the instance, whatever room there is.
    let affinity = Needs { member_of: vec!["task:group == service:db".into()], ..Needs::default() };
    let inv = scene(vec![with_needs(100, 100, affinity)], vec![with_tasks("o1", "a", vec![])]);
    let plan = plan_of(&inv, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::ConstraintUnknown);
    assert!(decision(&plan, "cand").1.contains("task:group"), "{:?}", decision(&plan, "cand"));
}

#[test]
fn gpu_tasks_move_only_to_instances_with_free_gpus() {
    let gpu = || with_needs(100, 100, Needs { gpus: 1, ..Needs::default() });
    let plain = scene(vec![gpu()], vec![with_tasks("cpu-only", "a", vec![])]);
    assert_eq!(reason(&plan_of(&plain, &no_reserve()), "cand"), Reason::Gpu);

    let mut busy = with_tasks("busy-gpu", "a", vec![]);
    busy.gpus_free = 0;
    let mut free = with_tasks("free-gpu", "a", vec![]);
    free.gpus_free = 1;
    let inv = scene(vec![gpu(), gpu()], vec![busy, free.clone()]);
    assert_eq!(reason(&plan_of(&inv, &no_reserve()), "cand"), Reason::Gpu, "two GPU tasks, one free GPU");
    let inv = scene(vec![gpu()], vec![free]);
    assert_eq!(decided(&plan_of(&inv, &no_reserve()), Decision::Drain), ["cand"]);
}

#[test]
fn awsvpc_tasks_need_a_free_network_interface_of_a_known_instance_type() {
    let vpc = || with_needs(100, 100, Needs { awsvpc: true, ..Needs::default() });
    // An m5.large runs two awsvpc tasks without trunking; the other already runs two tasks.
    let full = scene(vec![vpc()], vec![with_tasks("o1", "a", vec![task(10, 10), task(10, 10)])]);
    assert_eq!(reason(&plan_of(&full, &no_reserve()), "cand"), Reason::Eni);

    let mut trunk = with_tasks("o1", "a", vec![task(10, 10), task(10, 10)]);
    trunk.attributes.insert("ecs.awsvpc-trunk-id".into(), Some("eni-1".into()));
    assert_eq!(decided(&plan_of(&scene(vec![vpc()], vec![trunk]), &no_reserve()), Decision::Drain), ["cand"]);

    let mut unknown = with_tasks("o1", "a", vec![]);
    unknown.attributes.insert("ecs.instance-type".into(), Some("x9.huge".into()));
    assert_eq!(reason(&plan_of(&scene(vec![vpc()], vec![unknown]), &no_reserve()), "cand"), Reason::Eni);
}

#[test]
fn awsvpc_tasks_move_only_within_their_zone() {
    // Its service's subnets are not read: the zone it runs in is the one known to have one of them.
    let vpc = || with_needs(100, 100, Needs { awsvpc: true, ..Needs::default() });
    let elsewhere = scene(vec![vpc()], vec![with_tasks("o1", "b", vec![])]);
    let plan = plan_of(&elsewhere, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::Subnet, "{:?}", decision(&plan, "cand"));
    let here = scene(vec![vpc()], vec![with_tasks("o1", "b", vec![]), with_tasks("o2", "a", vec![])]);
    assert_eq!(decided(&plan_of(&here, &no_reserve()), Decision::Drain), ["cand"]);
}

#[test]
fn a_zone_spread_service_moves_only_within_its_zone() {
    let spread = || with_needs(300, 300, Needs { az_spread: true, ..Needs::default() });
    let inv = scene(
        vec![spread()],
        vec![with_tasks("b1", "b", vec![]), with_tasks("a1", "a", vec![task(800, 800)])],
    );
    let plan = plan_of(&inv, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::AzSpread, "{:?}", decision(&plan, "cand"));

    let inv = scene(vec![spread()], vec![with_tasks("b1", "b", vec![]), with_tasks("a1", "a", vec![])]);
    assert_eq!(decided(&plan_of(&inv, &no_reserve()), Decision::Drain), ["cand"]);
}

#[test]
fn protected_tasks_keep_their_instance() {
    let inv = scene(vec![Task { protected: true, ..task(100, 100) }], vec![with_tasks("o1", "a", vec![])]);
    let plan = plan_of(&inv, &no_reserve());
    assert_eq!(entry(&plan, "cand").decision, Decision::Skip);
    assert_eq!(reason(&plan, "cand"), Reason::TaskProtected);
}

#[test]
fn a_deployment_in_progress_blocks_drains_of_its_tasks_only() {
    let mut inv = inventory(
        vec![
            with_tasks("e", "a", vec![]),
            with_tasks("api", "a", vec![task(100, 100)]),
            ours(with_tasks("d", "a", vec![])),
            with_tasks("o", "a", vec![]),
        ],
        0,
    );
    let deploying = Service { deployment: Some("ecs-svc/1 IN_PROGRESS".into()), ..Service::default() };
    inv.services.insert("api".into(), deploying.clone());
    let plan = plan_of(&inv, &Settings { max_removals: 3, ..no_reserve() });
    assert_eq!(reason(&plan, "api"), Reason::DeploymentInProgress);
    assert!(decision(&plan, "api").1.contains("service api is being deployed"));
    assert_eq!(decided(&plan, Decision::Terminate), ["e", "o"]);
    assert_eq!(decided(&plan, Decision::Reap), ["d"]);

    // A daemon runs everywhere: its deployment keeps every instance.
    inv.services.insert("agent".into(), deploying);
    inv.daemon_groups.insert("service:agent".into());
    let plan = plan_of(&inv, &Settings { max_removals: 3, ..no_reserve() });
    assert_eq!(reason(&plan, "e"), Reason::DeploymentInProgress);
    assert!(decision(&plan, "e").1.contains("service agent is being deployed"));
    assert_eq!(decided(&plan, Decision::Reap), ["d"]);
}

#[test]
fn outside_the_window_nothing_is_removed() {
    let instances =
        vec![with_tasks("e", "a", vec![]), ours(with_tasks("d", "a", vec![])), with_tasks("o", "a", vec![])];
    let closed =
        Settings { windows: Windows::parse("Sat,Sun 00:00-24:00 UTC").unwrap_or_default(), ..no_reserve() };
    // now() is Sunday 2026-11-22 12:00: open.
    let plan = plan_of(&inventory(instances.clone(), 0), &closed);
    assert_eq!(decided(&plan, Decision::Terminate), ["e"]);
    assert_eq!(decided(&plan, Decision::Reap), ["d"]);

    let weekdays =
        Settings { windows: Windows::parse("Mon-Fri 20:00-06:00 UTC").unwrap_or_default(), ..no_reserve() };
    let plan = plan_of(&inventory(instances, 0), &weekdays);
    assert_eq!(reason(&plan, "e"), Reason::OutsideWindow);
    assert!(decision(&plan, "e").1.contains("next opens Mon 20:00 UTC"), "{:?}", decision(&plan, "e"));
    assert_eq!(entry(&plan, "d").decision, Decision::Wait);
    assert_eq!(reason(&plan, "d"), Reason::OutsideWindow);
    assert!(plan.entries.iter().all(|e| !e.decision.mutates()));
}

#[test]
fn a_group_cools_down_after_it_launched() {
    let mut inv = inventory(vec![with_tasks("e", "a", vec![]), with_tasks("o", "a", vec![])], 0);
    let cooling = Settings { cooldown: Duration::minutes(15), ..no_reserve() };
    assert_eq!(decided(&plan_of(&inv, &cooling), Decision::Terminate), ["e"]);

    inv.instances[1].registered_at = Some(now() - Duration::minutes(10));
    inv.instances[1].tasks = Some(vec![task(100, 100)]);
    let plan = plan_of(&inv, &Settings { min_instance_age: Duration::zero(), ..cooling.clone() });
    assert_eq!(reason(&plan, "e"), Reason::Cooldown, "{:?}", decision(&plan, "e"));

    inv.instances[1].registered_at = Some(now() - Duration::hours(1));
    if let Some(g) = inv.groups.get_mut("g") {
        g.launching = 1;
    }
    assert_eq!(reason(&plan_of(&inv, &cooling), "e"), Reason::Cooldown);
    assert_eq!(decided(&plan_of(&inv, &no_reserve()), Decision::Terminate), ["e"], "0 turns it off");
}

#[test]
fn the_budget_is_a_share_of_the_group_rounded_up_less_drains_under_way() {
    let mut instances: Vec<Instance> = (0..10).map(|n| with_tasks(&format!("e{n}"), "a", vec![])).collect();
    let ten = Settings { budget_percent: 10, max_removals: 10, ..no_reserve() };
    assert_eq!(decided(&plan_of(&inventory(instances.clone(), 0), &ten), Decision::Terminate).len(), 1);
    let eleven = Settings { budget_percent: 11, ..ten.clone() };
    assert_eq!(decided(&plan_of(&inventory(instances.clone(), 0), &eleven), Decision::Terminate).len(), 2);

    instances[0] = ours(with_tasks("busy", "a", vec![task(100, 100)]));
    let plan = plan_of(&inventory(instances, 0), &ten);
    assert_eq!(decided(&plan, Decision::Terminate), Vec::<&str>::new());
    assert_eq!(reason(&plan, "e1"), Reason::Budget);
    assert!(decision(&plan, "e1").1.contains("SCALE_IN_BUDGET_PERCENT=10"));
}

fn events(kinds: &[(EventKind, i64)]) -> Service {
    let events = kinds
        .iter()
        .map(|&(kind, minutes_ago)| ServiceEvent { at: now() - Duration::minutes(minutes_ago), kind });
    Service { events: events.collect(), ..Service::default() }
}

#[test]
fn a_stalled_drain_goes_back_to_active_and_stays_out_for_a_day() {
    let drained = |minutes_ago: i64| {
        let mut i = ours(with_tasks("d", "a", vec![task(100, 100)]));
        i.drained_by_us_at = Some(now() - Duration::minutes(minutes_ago));
        i.carries_our_marker = true;
        i
    };
    let plan_with = |d: Instance, service: Service| {
        let mut inv = inventory(vec![d, with_tasks("o", "a", vec![])], 0);
        inv.services.insert("api".into(), service);
        plan_of(&inv, &Settings { max_removals: 0, ..no_reserve() })
    };
    let stalled = plan_with(drained(90), events(&[(EventKind::UnableToPlace, 80)]));
    assert_eq!(entry(&stalled, "d").decision, Decision::Reactivate);
    assert_eq!(reason(&stalled, "d"), Reason::StalledDrain);
    assert!(
        decision(&stalled, "d").1.contains("service api has been unable to place"),
        "{:?}",
        decision(&stalled, "d")
    );

    // Too early, a task started within the last hour, or an event from before the drain: still waiting.
    for (d, s) in [
        (drained(30), events(&[(EventKind::UnableToPlace, 20)])),
        (drained(90), events(&[(EventKind::Started, 10), (EventKind::UnableToPlace, 80)])),
        (drained(90), events(&[(EventKind::UnableToPlace, 100)])),
    ] {
        let plan = plan_with(d, s);
        assert_eq!(entry(&plan, "d").decision, Decision::Wait, "{:?}", entry(&plan, "d"));
    }

    let mut back = with_tasks("back", "a", vec![]);
    back.stalled_at = Some(now() - Duration::hours(2));
    let plan =
        plan_of(&inventory(vec![back.clone(), with_tasks("o", "a", vec![task(10, 10)])], 0), &no_reserve());
    assert_eq!(reason(&plan, "back"), Reason::RecentlyStalled);
    assert!(!entry(&plan, "back").clear_stalled);
    back.stalled_at = Some(now() - Duration::hours(25));
    let plan = plan_of(&inventory(vec![back, with_tasks("o", "a", vec![task(10, 10)])], 0), &no_reserve());
    assert_eq!(decided(&plan, Decision::Terminate), ["back"]);
    assert!(entry(&plan, "back").clear_stalled);
}

#[test]
fn tasks_are_wanted_only_for_the_candidates_examined() {
    let mut instances: Vec<Instance> =
        (0..6).map(|n| with_tasks(&format!("c{n}"), "a", vec![task(100, 100)])).collect();
    for i in &mut instances[1..] {
        i.tasks = None;
    }
    let plan = plan_of(&inventory(instances, 0), &Settings { max_removals: 3, ..no_reserve() });
    assert_eq!(decided(&plan, Decision::Drain), ["c0"]);
    assert_eq!(plan.wanted.len(), 2, "as many as removals are still allowed: {:?}", plan.wanted);
    assert_eq!(plan.count(Decision::Keep), 5);
    assert_eq!(plan.entries.iter().filter(|e| e.reason == Reason::NotExamined).count(), 2);
}

#[test]
fn the_largest_service_task_needs_room_too() {
    let mut inv =
        inventory(vec![with_tasks("e", "a", vec![]), with_tasks("o", "a", vec![task(500, 500)])], 0);
    inv.largest_service_task = Resources::new(600, 600);
    let plan = plan_of(&inv, &no_reserve());
    assert_eq!(reason(&plan, "e"), Reason::LargestTask);
    assert_eq!(plan.after.largest_task, Resources::new(600, 600));
}

#[test]
fn a_drain_whose_last_tasks_are_stopping_waits() {
    let mut stopping = ours(with_tasks("d", "a", vec![]));
    stopping.remaining = Resources::new(900, 900); // a task told to stop still holds its share
    let inv = inventory(vec![stopping.clone(), with_tasks("o", "a", vec![])], 0);
    let plan = plan_of(&inv, &Settings { max_removals: 0, ..no_reserve() });
    assert_eq!((entry(&plan, "d").decision, reason(&plan, "d")), (Decision::Wait, Reason::TasksLeaving));

    // With daemon services, their tasks hold a share too: the check right before terminating decides.
    let mut inv = inventory(vec![stopping, with_tasks("o", "a", vec![])], 0);
    inv.daemon_groups.insert("service:logs".into());
    assert_eq!(decided(&plan_of(&inv, &Settings { max_removals: 0, ..no_reserve() }), Decision::Reap), ["d"]);
}

#[test]
fn tasks_planned_onto_an_instance_move_again_if_it_goes_too() {
    // a's task best fits on c; c's own tasks fit on e, but not with a's task as well. f keeps room for the
    // largest task, but its host ports are taken.
    let young = |mut i: Instance, memory: i64| {
        i.registered_at = Some(now());
        i.registered = Resources::new(1000, memory);
        i.remaining = Resources::new(1000, memory);
        i
    };
    let mut f = young(with_tasks("f", "a", vec![]), 300);
    f.ports_used = [81, 82, 90].into_iter().map(|port| HostPort { port, protocol: Protocol::Tcp }).collect();
    let inv = inventory(
        vec![
            with_tasks("a", "a", vec![with_needs(10, 300, port(90))]),
            with_tasks("c", "a", vec![with_needs(10, 250, port(81)), with_needs(10, 250, port(82))]),
            young(with_tasks("e", "a", vec![]), 600),
            f,
        ],
        0,
    );
    let two = Settings { max_removals: 2, ..no_reserve() };
    let plan = plan_of(&inv, &two);
    assert_eq!(decided(&plan, Decision::Drain), ["a"]);
    assert_eq!(decision(&plan, "c").0, Decision::Keep, "{:?}", decision(&plan, "c"));

    // With room on e for all three, both go.
    let mut roomy = inv.clone();
    roomy.instances[2].remaining = Resources::new(1000, 1000);
    roomy.instances[2].registered = Resources::new(1000, 1000);
    assert_eq!(decided(&plan_of(&roomy, &two), Decision::Drain), ["a", "c"]);
}

#[test]
fn a_required_attribute_missing_everywhere_else_keeps_the_instance() {
    let needs = |value: Option<&str>| Needs {
        requires: vec![("ecs.capability.efsAuth".to_owned(), value.map(str::to_owned))],
        ..Needs::default()
    };
    let t = |value| with_needs(100, 100, needs(value));
    let plain = scene(vec![t(None)], vec![with_tasks("o1", "a", vec![])]);
    let plan = plan_of(&plain, &no_reserve());
    assert_eq!(reason(&plan, "cand"), Reason::RequiredAttribute, "{:?}", decision(&plan, "cand"));

    let mut capable = with_tasks("o1", "a", vec![]);
    capable.attributes.insert("ecs.capability.efsAuth".into(), None);
    let with = scene(vec![t(None)], vec![capable.clone()]);
    assert_eq!(decided(&plan_of(&with, &no_reserve()), Decision::Drain), ["cand"]);
    // A value, when the definition gives one, must match.
    let wrong = scene(vec![t(Some("2"))], vec![capable]);
    assert_eq!(reason(&plan_of(&wrong, &no_reserve()), "cand"), Reason::RequiredAttribute);
}
