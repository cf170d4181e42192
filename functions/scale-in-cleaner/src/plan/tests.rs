use std::collections::BTreeMap;

use chrono::{Duration, TimeZone};

use super::window::Windows;
use super::*;

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().unwrap_or_default()
}

pub(super) fn settings() -> Settings {
    Settings {
        reserve_cpu_percent: 20,
        reserve_memory_percent: 20,
        max_removals: 2,
        min_instance_age: Duration::minutes(30),
        groups: Vec::new(),
        cooldown: Duration::zero(),
        windows: Windows::default(),
        budget_percent: 100,
        stalled_after: Duration::minutes(60),
    }
}

/// A task of service "api" (which has no placement rules of its own) of this size.
pub(super) fn task(cpu: i64, memory: i64) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:1:task/c/{cpu}-{memory}"),
        group: Some("service:api".into()),
        reserved: Resources::new(cpu, memory),
        ..Task::default()
    }
}

/// An ACTIVE m5.large of group "g" in zone `az`, registered 1000 CPU / 1000 MiB, two hours old, with these
/// tasks.
pub(super) fn inst(id: &str, az: &str, tasks: &[(i64, i64)]) -> Instance {
    with_tasks(id, az, tasks.iter().map(|&(cpu, memory)| task(cpu, memory)).collect())
}

pub(super) fn with_tasks(id: &str, az: &str, tasks: Vec<Task>) -> Instance {
    let used = tasks.iter().fold(Resources::default(), |s, t| s.plus(t.reserved));
    let ports_used = tasks.iter().flat_map(|t| t.needs.ports.iter().copied()).collect();
    Instance {
        container_instance_arn: format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}"),
        ec2_instance_id: id.to_owned(),
        status: InstanceStatus::Active,
        agent_connected: true,
        registered_at: Some(now() - Duration::hours(2)),
        registered: Resources::new(1000, 1000),
        remaining: Resources::new(1000, 1000).minus(used),
        ports_used,
        gpus_free: 0,
        attributes: BTreeMap::from([
            ("ecs.instance-type".to_owned(), Some("m5.large".to_owned())),
            ("ecs.availability-zone".to_owned(), Some(az.to_owned())),
        ]),
        capacity_provider: None,
        agent_version: Some("1.90.0".into()),
        running_tasks: i32::try_from(tasks.len()).unwrap_or(0),
        pending_tasks: 0,
        tasks: Some(tasks),
        drained_by_us_at: None,
        carries_our_marker: false,
        stalled_at: None,
        departed: None,
        undescribed: false,
        membership: Some(Membership {
            group: "g".into(),
            availability_zone: az.into(),
            lifecycle_state: "InService".into(),
            protected_from_scale_in: false,
        }),
    }
}

/// `total` CPU (or memory) in tasks of at most 100, so that no single task is large.
fn load(total: i64, cpu: bool) -> Vec<(i64, i64)> {
    let mut out = vec![if cpu { (100, 0) } else { (0, 100) }; usize::try_from(total / 100).unwrap_or(0)];
    if total % 100 > 0 {
        out.push(if cpu { (total % 100, 0) } else { (0, total % 100) });
    }
    out
}

pub(super) fn small(total: i64) -> Vec<(i64, i64)> {
    vec![(100, 100); usize::try_from(total / 100).unwrap_or(0)]
}

/// The others are too young to be removed, but they are capacity.
fn only_first_is_a_candidate(mut instances: Vec<Instance>) -> Vec<Instance> {
    for i in instances.iter_mut().skip(1) {
        i.registered_at = Some(now());
    }
    instances
}

pub(super) fn ours(mut i: Instance) -> Instance {
    i.status = InstanceStatus::Draining;
    i.drained_by_us_at = "2026-11-22T11:00:00Z".parse().ok();
    i.carries_our_marker = true;
    i
}

pub(super) fn inventory(instances: Vec<Instance>, min: i32) -> Inventory {
    let desired = i32::try_from(instances.iter().filter(|i| i.membership.is_some()).count()).unwrap_or(0);
    Inventory {
        instances,
        groups: BTreeMap::from([(
            "g".into(),
            Group { min_size: min, desired_capacity: desired, managed_by: None, launching: 0 },
        )]),
        ..Inventory::default()
    }
}

/// The decision and its detail.
pub(super) fn decision(plan: &Plan, id: &str) -> (Decision, String) {
    let e = entry(plan, id);
    (e.decision, e.detail.clone())
}

pub(super) fn entry<'p>(plan: &'p Plan, id: &str) -> &'p Entry {
    plan.entries.iter().find(|e| e.ec2_instance_id == id).unwrap_or_else(|| panic!("no entry {id}"))
}

/// The container instance ARNs of these instances.
pub(super) fn instance_ids(inv: &Inventory, ids: &[&str]) -> std::collections::BTreeSet<String> {
    inv.instances
        .iter()
        .filter(|i| ids.contains(&i.ec2_instance_id.as_str()))
        .map(|i| i.container_instance_arn.clone())
        .collect()
}

pub(super) fn reason(plan: &Plan, id: &str) -> Reason {
    entry(plan, id).reason
}

pub(super) fn decided(plan: &Plan, d: Decision) -> Vec<&str> {
    plan.entries.iter().filter(|e| e.decision == d).map(|e| e.ec2_instance_id.as_str()).collect()
}

#[test]
fn empty_first_then_least_reserved() {
    let inv = inventory(
        vec![
            inst("busy", "a", &small(600)),
            inst("light", "a", &small(100)),
            inst("empty", "a", &[]),
            inst("half", "a", &small(500)),
            inst("full", "a", &small(900)),
        ],
        0,
    );
    let plan = super::plan(&inv, &Settings { max_removals: 2, ..settings() }, now());
    assert_eq!(decided(&plan, Decision::Terminate), ["empty"]);
    assert_eq!(decided(&plan, Decision::Drain), ["light"]);
    assert!(decision(&plan, "half").1.contains("MAX_REMOVALS_PER_RUN=2"));
}

#[test]
fn cpu_threshold_at_its_exact_edge() {
    // Four instances stay (4000 CPU registered): 20% is 800 spare. The three busy ones keep 200, 200 and
    // 400 (or 399); the fourth, "other", is full.
    for (room, removed) in [(400, true), (399, false)] {
        let mut others = vec![
            inst("b1", "a", &load(800, true)),
            inst("b2", "a", &load(800, true)),
            inst("b3", "a", &load(1000 - room, true)),
            inst("full", "a", &load(1000, true)),
        ];
        others.push(inst("empty", "a", &[]));
        let plan =
            super::plan(&inventory(others, 0), &Settings { reserve_memory_percent: 0, ..settings() }, now());
        let (d, reason) = decision(&plan, "empty");
        if removed {
            assert_eq!(d, Decision::Terminate, "{reason}");
            assert_eq!(plan.after.spare.cpu, 800);
            assert_eq!(plan.after.required.cpu, 800);
        } else {
            assert_eq!(d, Decision::Keep);
            assert!(reason.contains("spare CPU would be 799 of 4000"), "{reason}");
        }
    }
}

#[test]
fn memory_threshold_at_its_exact_edge() {
    for (room, removed) in [(400, true), (399, false)] {
        let instances = vec![
            inst("b1", "a", &load(800, false)),
            inst("b2", "a", &load(800, false)),
            inst("b3", "a", &load(1000 - room, false)),
            inst("full", "a", &load(1000, false)),
            inst("empty", "a", &[]),
        ];
        let plan =
            super::plan(&inventory(instances, 0), &Settings { reserve_cpu_percent: 0, ..settings() }, now());
        let (d, reason) = decision(&plan, "empty");
        assert_eq!(d == Decision::Terminate, removed, "{reason}");
        if !removed {
            assert!(reason.contains("spare memory would be 799 of 4000 MiB"), "{reason}");
        }
    }
}

#[test]
fn tasks_must_fit_one_by_one_not_as_a_sum() {
    let no_reserve =
        Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, max_removals: 1, ..settings() };
    // 1300 units free elsewhere, enough for the 900 in total, but only one instance can take a 300 task.
    let instances = vec![
        inst("cand", "a", &[(300, 300), (300, 300), (300, 300)]),
        inst("o1", "a", &[(250, 250), (250, 250), (250, 250)]),
        inst("o2", "a", &[(250, 250), (250, 250), (250, 250)]),
        inst("o3", "a", &[(250, 250), (250, 250), (250, 250)]),
        inst("o4", "a", &[(250, 250), (250, 250), (250, 250)]),
        inst("o5", "a", &small(700)),
    ];
    let plan1 = super::plan(&inventory(only_first_is_a_candidate(instances), 0), &no_reserve, now());
    assert_eq!(decided(&plan1, Decision::Drain), Vec::<&str>::new());
    assert_eq!(reason(&plan1, "cand"), Reason::NoRoom, "{:?}", decision(&plan1, "cand"));
    assert!(decision(&plan1, "cand").1.contains("(300 CPU units, 300 MiB) fits on no instance"));

    // Two 400 tasks fit, one on each of o1 and o2, though no instance could take the 800 block.
    let instances = vec![
        inst("cand", "a", &[(400, 400), (400, 400)]),
        inst("o1", "a", &small(500)),
        inst("o2", "a", &small(500)),
        inst("o3", "a", &small(500)),
    ];
    let plan2 = super::plan(&inventory(only_first_is_a_candidate(instances), 0), &no_reserve, now());
    assert_eq!(decided(&plan2, Decision::Drain), ["cand"]);
    assert_eq!(plan2.after.spare, Resources::new(700, 700));
}

#[test]
fn room_for_the_largest_task_must_stay() {
    // After removing "cand", 300 CPU is free in total (above 0%) but split 150/150: no room for a 200 task.
    let no_reserve = Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, ..settings() };
    let instances = vec![
        inst("cand", "a", &[]),
        inst("o1", "a", &[(850, 200)]),
        inst("o2", "a", &[(650, 200), (200, 200)]),
    ];
    let plan = super::plan(&inventory(instances, 0), &no_reserve, now());
    let (d, reason) = decision(&plan, "cand");
    assert_eq!(d, Decision::Keep);
    assert!(reason.contains("largest task (850 CPU units, 200 MiB)"), "{reason}");
}

#[test]
fn zones_with_more_instances_lose_one_first() {
    let instances = vec![
        inst("b1", "b", &[]),
        inst("a1", "a", &[]),
        inst("a2", "a", &[]),
        inst("a3", "a", &[]),
        inst("c1", "c", &[(10, 10)]),
    ];
    let plan = super::plan(
        &inventory(instances, 0),
        &Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, ..settings() },
        now(),
    );
    let removed = decided(&plan, Decision::Terminate);
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|id| id.starts_with('a')), "{removed:?}");

    // Balanced zones: the emptier instance goes, wherever it is.
    let instances =
        vec![inst("a1", "a", &[(300, 300)]), inst("b1", "b", &[(100, 100)]), inst("c1", "c", &[(300, 300)])];
    let plan = super::plan(
        &inventory(instances, 0),
        &Settings { max_removals: 1, reserve_cpu_percent: 0, reserve_memory_percent: 0, ..settings() },
        now(),
    );
    assert_eq!(decided(&plan, Decision::Drain), ["b1"]);
}

#[test]
fn the_group_stays_at_its_minimum_size() {
    let instances = vec![inst("e1", "a", &[]), inst("e2", "a", &[]), inst("e3", "a", &[])];
    let plan = super::plan(
        &inventory(instances, 2),
        &Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, ..settings() },
        now(),
    );
    assert_eq!(decided(&plan, Decision::Terminate).len(), 1);
    let kept: Vec<_> = plan.entries.iter().filter(|e| e.decision == Decision::Keep).collect();
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter().all(|e| e.reason == Reason::MinSize && e.detail.contains("minimum size 2")),
        "{kept:?}"
    );
}

#[test]
fn instances_never_touched_are_skipped_with_a_reason() {
    let mut protected = inst("protected", "a", &[]);
    if let Some(m) = protected.membership.as_mut() {
        m.protected_from_scale_in = true;
    }
    let mut young = inst("young", "a", &[]);
    young.registered_at = Some(now() - Duration::minutes(29));
    let mut just_old_enough = inst("old-enough", "a", &[]);
    just_old_enough.registered_at = Some(now() - Duration::minutes(30));
    let mut disconnected = inst("disconnected", "a", &[]);
    disconnected.agent_connected = false;
    let mut standalone = inst("standalone", "a", &[]);
    standalone.membership = None;
    let mut leaving = inst("leaving", "a", &[]);
    if let Some(m) = leaving.membership.as_mut() {
        m.lifecycle_state = "Terminating:Wait".into();
    }
    let mut others_drain = inst("others-drain", "a", &[]);
    others_drain.status = InstanceStatus::Draining;
    let mut registering = inst("registering", "a", &[]);
    registering.status = InstanceStatus::Registering;
    let instances =
        vec![protected, young, just_old_enough, disconnected, standalone, leaving, others_drain, registering];
    let plan = super::plan(
        &inventory(instances, 0),
        &Settings { reserve_cpu_percent: 0, reserve_memory_percent: 0, ..settings() },
        now(),
    );
    let expect = [
        ("protected", "protected from scale-in"),
        ("young", "younger than MIN_INSTANCE_AGE_MINUTES=30"),
        ("disconnected", "agent disconnected"),
        ("standalone", "not in an Auto Scaling group"),
        ("leaving", "lifecycle state Terminating:Wait"),
        ("others-drain", "not by this function"),
        ("registering", "ECS status REGISTERING"),
    ];
    for (id, why) in expect {
        let (d, reason) = decision(&plan, id);
        assert_eq!(d, Decision::Skip, "{id}");
        assert!(reason.contains(why), "{id}: {reason}");
    }
    assert_eq!(decided(&plan, Decision::Terminate), ["old-enough"]);
    // Disconnected and draining instances are not capacity, nor one its group is terminating.
    assert_eq!(plan.before.instances, 4);
}

#[test]
fn groups_scaled_by_a_capacity_provider_are_left_alone() {
    let mut inv = inventory(vec![inst("e1", "a", &[]), inst("e2", "a", &[])], 0);
    if let Some(g) = inv.groups.get_mut("g") {
        g.managed_by = Some("cp".into());
    }
    let plan = super::plan(&inv, &settings(), now());
    assert_eq!(decided(&plan, Decision::Skip).len(), 2);
    assert!(decision(&plan, "e1").1.contains("capacity provider cp"));
}

#[test]
fn drained_instances_are_reaped_when_empty_and_wait_otherwise() {
    let instances = vec![
        ours(inst("done", "a", &[])),
        ours(inst("busy", "a", &[(100, 100)])),
        inst("o1", "a", &[]),
        inst("o2", "a", &[]),
        inst("o3", "a", &[]),
    ];
    let plan = super::plan(&inventory(instances, 0), &Settings { max_removals: 0, ..settings() }, now());
    assert_eq!(decided(&plan, Decision::Reap), ["done"]);
    assert_eq!(decided(&plan, Decision::Wait), ["busy"]);
    assert!(decision(&plan, "busy").1.contains("1 task(s) still on it"));
    // The draining instance's task is counted on the instances that stay.
    assert_eq!(plan.before.spare, Resources::new(2900, 2900));
}

#[test]
fn drained_instances_come_back_when_capacity_is_short() {
    // Three ACTIVE instances at 90%: 300 spare of 3000 is under 20%. The drained one with the most room
    // comes back first, and that is enough.
    let instances = vec![
        ours(inst("roomy", "a", &[])),
        ours(inst("cramped", "a", &[(700, 700)])),
        inst("o1", "a", &[(900, 900)]),
        inst("o2", "a", &[(900, 900)]),
        inst("o3", "a", &[(900, 900)]),
        inst("o4", "a", &[(100, 100)]),
    ];
    let plan = super::plan(&inventory(instances, 0), &settings(), now());
    assert_eq!(decided(&plan, Decision::Reactivate), ["roomy"]);
    assert!(decision(&plan, "roomy").1.contains("capacity needed again"), "{:?}", decision(&plan, "roomy"));
    assert_eq!(decided(&plan, Decision::Wait), ["cramped"]);
    assert_eq!(decided(&plan, Decision::Terminate), Vec::<&str>::new());
}

#[test]
fn drained_instances_come_back_when_their_group_reaches_its_minimum() {
    // desired 5, min 4: only one of the two drained instances may leave.
    let instances = vec![
        ours(inst("d1", "a", &[])),
        ours(inst("d2", "a", &[])),
        inst("o1", "a", &[]),
        inst("o2", "a", &[]),
        inst("o3", "a", &[]),
    ];
    let plan = super::plan(&inventory(instances, 4), &settings(), now());
    assert_eq!(decided(&plan, Decision::Reap), ["d1"]);
    assert_eq!(decided(&plan, Decision::Reactivate), ["d2"]);
    assert!(decision(&plan, "d2").1.contains("minimum size 4"));
    // Nothing new either: the group is at its minimum once d1 goes.
    assert!(decision(&plan, "o1").1.contains("minimum size 4"), "{:?}", decision(&plan, "o1"));
}

#[test]
fn a_short_cluster_removes_nothing() {
    let instances = vec![inst("e", "a", &[]), inst("o1", "a", &[(950, 950)]), inst("o2", "a", &[(950, 950)])];
    let plan =
        super::plan(&inventory(instances, 0), &Settings { reserve_cpu_percent: 50, ..settings() }, now());
    let (d, reason) = decision(&plan, "e");
    assert_eq!(d, Decision::Keep);
    assert!(reason.contains("short of spare capacity"), "{reason}");
}

#[test]
fn a_stale_marker_on_an_active_instance_is_cleared() {
    let mut reactivated_by_hand = inst("back", "a", &[(500, 500)]);
    reactivated_by_hand.drained_by_us_at = "2026-11-21T00:00:00Z".parse().ok();
    reactivated_by_hand.carries_our_marker = true;
    let instances = vec![reactivated_by_hand, inst("o1", "a", &[(900, 900)])];
    let plan = super::plan(&inventory(instances, 0), &settings(), now());
    let e = entry(&plan, "back");
    assert!(e.clear_marker);
    assert_eq!(e.decision, Decision::Keep);
}

#[test]
fn zero_removals_still_reaps() {
    let instances = vec![ours(inst("d", "a", &[])), inst("e", "a", &[]), inst("o", "a", &[])];
    let plan = super::plan(&inventory(instances, 0), &Settings { max_removals: 0, ..settings() }, now());
    assert_eq!(decided(&plan, Decision::Reap), ["d"]);
    assert!(decision(&plan, "e").1.contains("MAX_REMOVALS_PER_RUN=0"));
}

#[test]
fn an_empty_cluster_plans_nothing() {
    let plan = super::plan(&Inventory::default(), &settings(), now());
    assert!(plan.entries.is_empty());
    assert_eq!(plan.before.instances, 0);
}

#[test]
fn only_the_configured_groups_shrink() {
    let mut other = inst("other", "a", &[]);
    if let Some(m) = other.membership.as_mut() {
        m.group = "batch".into();
    }
    let mut inv =
        inventory(vec![inst("e", "a", &[]), other, ours(inst("d", "a", &[])), inst("o", "a", &[])], 0);
    inv.groups
        .insert("batch".into(), Group { min_size: 0, desired_capacity: 1, managed_by: None, launching: 0 });
    if let Some(m) = inv.instances[2].membership.as_mut() {
        m.group = "batch".into();
    }
    let only_g = Settings {
        groups: vec!["g".into()],
        reserve_cpu_percent: 0,
        reserve_memory_percent: 0,
        ..settings()
    };
    let plan = super::plan(&inv, &only_g, now());
    assert_eq!(
        decision(&plan, "other"),
        (Decision::Skip, "group batch is not in AUTO_SCALING_GROUPS".into())
    );
    assert_eq!(decision(&plan, "d").0, Decision::Reactivate);
    assert_eq!(decided(&plan, Decision::Terminate), ["e", "o"]);
}

#[test]
fn instances_auto_scaling_is_removing_are_neither_capacity_nor_ours_to_touch() {
    let mut terminating = ours(inst("terminating", "a", &[]));
    if let Some(m) = terminating.membership.as_mut() {
        m.lifecycle_state = "Terminating:Wait".into();
    }
    let mut leaving_active = inst("leaving", "a", &[]);
    if let Some(m) = leaving_active.membership.as_mut() {
        m.lifecycle_state = "Terminating:Wait".into();
    }
    // Short of capacity: an InService drain of ours would come back; this one must not.
    let plan = plan(
        &inventory(vec![terminating, leaving_active, inst("full", "b", &small(900))], 0),
        &settings(),
        now(),
    );
    let (d, why) = decision(&plan, "terminating");
    assert_eq!(d, Decision::Skip);
    assert!(why.contains("Terminating:Wait") && why.contains("never set back to ACTIVE"), "{why}");
    let (d, why) = decision(&plan, "leaving");
    assert_eq!(d, Decision::Skip);
    assert!(why.contains("not counted as capacity"), "{why}");
    assert_eq!(plan.before.instances, 1, "only the InService instance is capacity");
    assert_eq!(plan.count(Decision::Reactivate) + plan.count(Decision::Reap), 0);
}
