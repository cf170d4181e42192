//! The planner's CPU time and memory over a synthetic cluster the size of a large fleet: 5,000 container
//! instances in four Auto Scaling groups behind two capacity providers, three zones, 50,000 tasks of 200
//! services (some with static host ports, `memberOf`, `distinctInstance`), the least used instances
//! light, a few drained earlier. No AWS: the plan is a pure function, and a run's rounds are replayed by
//! "reading" the tasks each plan wants from the synthetic truth.
//!
//! `cargo bench -p scale-in-cleaner --bench plan` (release profile). Prints one JSON object per scenario:
//! rounds, instances examined, CPU seconds of planning (user + system, this thread's process), the largest
//! single plan, and the process's peak RSS. `make bench` turns it into bench/results/scale-in-cleaner.md.
//! Arguments: `[instances] [tasks] [services]` (default 5000 50000 200).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use scale_in_cleaner::plan::window::Windows;
use scale_in_cleaner::plan::{
    Counts, Decision, Group, HostPort, Instance, Inventory, Membership, Needs, Plan, Protocol, Resources,
    Service, Settings, Task, plan_ahead,
};
use shared::ecs::InstanceStatus;

/// A deterministic generator (64-bit LCG): the same cluster on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const GROUPS: [&str; 4] = ["web-a", "web-b", "batch-a", "batch-b"];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const REGISTERED: Resources = Resources::new(4096, 16384);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).single().unwrap_or_default()
}

/// The cluster, every instance's tasks known (the truth a run reads from).
/// How the synthetic cluster's tasks can move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// As a fleet's tasks usually can.
    Typical,
    /// Every task has scale-in protection.
    Protected,
    /// Every task requires an attribute only its own instance could have.
    Pinned,
}

fn cluster(instances: usize, tasks: usize, services: usize, variant: Variant) -> Inventory {
    let protect_all = variant == Variant::Protected;
    let mut rng = Lcg(24);
    let mut inv = Inventory::default();
    for group in GROUPS {
        let desired = i32::try_from(instances / GROUPS.len()).unwrap_or(i32::MAX);
        let group_info =
            Group { min_size: desired / 2, desired_capacity: desired, managed_by: None, launching: 0 };
        inv.groups.insert(group.to_owned(), group_info);
    }
    for i in 0..instances {
        let group = GROUPS[i % GROUPS.len()];
        let zone = ZONES[(i / GROUPS.len()) % ZONES.len()];
        let provider = if group.ends_with("-a") { "cp-a" } else { "cp-b" };
        let tier = if i % 3 == 0 { "gold" } else { "silver" };
        let attributes: BTreeMap<String, Option<String>> = [
            ("ecs.instance-type", Some("m5.xlarge")),
            ("ecs.availability-zone", Some(zone)),
            ("ecs.os-type", Some("linux")),
            ("ecs.ami-id", Some("ami-0123456789abcdef0")),
            ("ecs.capability.task-eni", None),
            ("ecs.capability.docker-plugin.local", None),
            ("com.amazonaws.ecs.capability.logging-driver.awslogs", None),
            ("ecs.capability.execution-role-awslogs", None),
            ("com.amazonaws.ecs.capability.ecr-auth", None),
            ("com.amazonaws.ecs.capability.docker-remote-api.1.19", None),
            ("ecs.capability.execution-role-ecr-pull", None),
            ("com.amazonaws.ecs.capability.task-iam-role", None),
            ("tier", Some(tier)),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
        .collect();
        inv.instances.push(Instance {
            container_instance_arn: format!(
                "arn:aws:ecs:us-east-1:123456789012:container-instance/fleet/{i:08x}-0000-4000-8000-{i:012x}"
            ),
            ec2_instance_id: format!("i-{i:017x}"),
            status: InstanceStatus::Active,
            agent_connected: true,
            registered_at: Some(
                now() - chrono::Duration::days(3)
                    + chrono::Duration::seconds(i64::try_from(rng.below(3600)).unwrap_or(0)),
            ),
            registered: REGISTERED,
            remaining: REGISTERED,
            ports_used: BTreeSet::new(),
            gpus_free: 0,
            attributes,
            capacity_provider: Some(provider.to_owned()),
            agent_version: Some("1.90.0".to_owned()),
            running_tasks: 0,
            pending_tasks: 0,
            tasks: Some(Vec::new()),
            drained_by_us_at: None,
            carries_our_marker: false,
            stalled_at: None,
            departed: None,
            undescribed: false,
            membership: Some(Membership {
                group: group.to_owned(),
                availability_zone: zone.to_owned(),
                lifecycle_state: "InService".to_owned(),
                protected_from_scale_in: false,
            }),
        });
    }
    // Services alternate between the providers; every tenth runs on gold instances only, every twentieth
    // on distinct instances, every seventh with a static host port.
    let per_service = tasks / services.max(1);
    for s in 0..services {
        let provider = if s % 2 == 0 { "cp-a" } else { "cp-b" };
        let mut needs =
            Needs { az_spread: true, providers: Some(vec![provider.to_owned()]), ..Needs::default() };
        if s % 10 == 3 {
            needs.member_of.push("attribute:tier == gold".to_owned());
        }
        if s % 20 == 7 {
            needs.distinct_instance = true;
        }
        if s % 7 == 5 {
            needs
                .ports
                .push(HostPort { port: 8000 + u16::try_from(s).unwrap_or(0), protocol: Protocol::Tcp });
        }
        // What ECS finds a typical definition uses (requiresAttributes), as DescribeTaskDefinition gives it.
        needs.requires = [
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "ecs.capability.execution-role-awslogs",
            "com.amazonaws.ecs.capability.ecr-auth",
            "com.amazonaws.ecs.capability.docker-remote-api.1.19",
            "ecs.capability.execution-role-ecr-pull",
            "com.amazonaws.ecs.capability.task-iam-role",
        ]
        .iter()
        .map(|a| ((*a).to_owned(), None))
        .collect();
        if variant == Variant::Pinned {
            needs.requires.push(("com.example.pinned".to_owned(), Some(format!("svc-{s:03}"))));
        }
        let shared_needs = std::sync::Arc::new(needs.clone());
        let reserved = Resources::new([128, 256, 512][s % 3], [256, 512, 1024][(s / 3) % 3]);
        let name = format!("svc-{s:03}");
        let counts = Counts {
            desired: i32::try_from(per_service).unwrap_or(0),
            running: i32::try_from(per_service).unwrap_or(0),
            pending: 0,
            minimum_healthy_percent: 100,
            maximum_percent: 200,
        };
        inv.services.insert(name.clone(), Service { counts: Some(counts), ..Service::default() });
        inv.largest_service_task = inv.largest_service_task.max(reserved);
        let hosts: Vec<usize> = (0..instances)
            .filter(|i| (GROUPS[i % GROUPS.len()].ends_with("-a")) == (provider == "cp-a"))
            .filter(|i| needs.member_of.is_empty() || i % 3 == 0)
            .collect();
        let mut placed = BTreeSet::new();
        for t in 0..per_service {
            // Skewed: most instances fill up, one in twenty stays light.
            let mut host = hosts[usize::try_from(rng.below(hosts.len() as u64)).unwrap_or(0)];
            for _ in 0..8 {
                let inst = &inv.instances[host];
                let light = host.is_multiple_of(20) && inst.running_tasks >= 1;
                let port_taken = needs.ports.iter().any(|p| inst.ports_used.contains(p));
                let distinct_taken = needs.distinct_instance && placed.contains(&host);
                if reserved.fits_in(inst.remaining)
                    && !light
                    && !port_taken
                    && !distinct_taken
                    && host % 1000 != 1
                {
                    break;
                }
                host = hosts[usize::try_from(rng.below(hosts.len() as u64)).unwrap_or(0)];
            }
            let inst = &mut inv.instances[host];
            if !reserved.fits_in(inst.remaining) {
                continue;
            }
            placed.insert(host);
            inst.remaining = inst.remaining.minus(reserved);
            inst.ports_used.extend(needs.ports.iter().copied());
            inst.running_tasks += 1;
            let task_needs = std::sync::Arc::clone(&shared_needs);
            if let Some(list) = inst.tasks.as_mut() {
                list.push(Task {
                    arn: format!(
                        "arn:aws:ecs:us-east-1:123456789012:task/fleet/{:032x}",
                        (s as u64) << 32 | t as u64
                    ),
                    group: Some(format!("service:{name}")),
                    reserved,
                    needs: task_needs,
                    protected: protect_all,
                });
            }
        }
        if needs.distinct_instance {
            let arns = placed.iter().map(|&h| inv.instances[h].container_instance_arn.clone()).collect();
            inv.hosts.insert(format!("service:{name}"), arns);
        }
    }
    // Ten drained earlier, still emptying.
    for i in (0..instances).step_by(instances / 10).take(10) {
        let inst = &mut inv.instances[i + 2];
        inst.status = InstanceStatus::Draining;
        inst.drained_by_us_at = "2026-12-01T11:30:00Z".parse().ok();
        inst.carries_our_marker = true;
    }
    inv
}

/// What a run sees before reading any task: only instances that run nothing are known.
fn unread(truth: &Inventory) -> Inventory {
    let mut inv = truth.clone();
    for inst in &mut inv.instances {
        if inst.running_tasks > 0 && !inst.is_ours() {
            inst.tasks = None;
        }
    }
    inv
}

fn settings(max_removals: usize) -> Settings {
    Settings {
        reserve_cpu_percent: 20,
        reserve_memory_percent: 20,
        max_removals,
        min_instance_age: chrono::Duration::minutes(30),
        groups: Vec::new(),
        cooldown: chrono::Duration::minutes(15),
        windows: Windows::default(),
        budget_percent: 10,
        stalled_after: chrono::Duration::minutes(60),
    }
}

/// User and system CPU time of this process so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
    let ticks = |n: usize| fields.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), in clock ticks of 1/100 s on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// Replays a run's rounds: plan, read what it wants, plan again with the look-ahead doubled.
fn run(name: &str, truth: &Inventory, settings: &Settings) {
    let mut inv = unread(truth);
    let started = cpu();
    let wall = std::time::Instant::now();
    let mut largest = Duration::ZERO;
    let (mut rounds, mut examined) = (0, 0);
    let mut last: Option<Plan> = None;
    while rounds < 24 {
        let t = std::time::Instant::now();
        let plan = plan_ahead(&inv, settings, now(), examined);
        largest = largest.max(t.elapsed());
        rounds += 1;
        let wanted: BTreeSet<String> = plan.wanted.iter().cloned().collect();
        let done = wanted.is_empty();
        last = Some(plan);
        if done {
            break;
        }
        examined += wanted.len();
        for (inst, real) in inv.instances.iter_mut().zip(&truth.instances) {
            if wanted.contains(&inst.container_instance_arn) {
                inst.tasks.clone_from(&real.tasks);
            }
        }
    }
    let spent = cpu().saturating_sub(started);
    let plan = last.unwrap_or_else(|| plan_ahead(&inv, settings, now(), 0));
    let count = |d: Decision| plan.count(d);
    let tasks: usize = truth.instances.iter().map(|i| i.tasks.as_ref().map_or(0, Vec::len)).sum();
    let line = serde_json::json!({
        "scenario": name,
        "instances": truth.instances.len(),
        "tasks": tasks,
        "services": truth.services.len(),
        "rounds": rounds,
        "examined": examined,
        "cpu_s": spent.as_secs_f64(),
        "wall_s": wall.elapsed().as_secs_f64(),
        "largest_plan_s": largest.as_secs_f64(),
        "drain": count(Decision::Drain),
        "terminate": count(Decision::Terminate),
        "reap": count(Decision::Reap),
        "wait": count(Decision::Wait),
        "peak_rss_mib": peak_rss_mib(),
    });
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (instances, tasks, services) = (
        args.first().copied().unwrap_or(5000),
        args.get(1).copied().unwrap_or(50_000),
        args.get(2).copied().unwrap_or(200),
    );
    let typical = cluster(instances, tasks, services, Variant::Typical);
    run("typical, MAX_REMOVALS_PER_RUN=10", &typical, &settings(10));
    let blocked = cluster(instances, tasks, services, Variant::Protected);
    run("every task protected: every candidate read", &blocked, &settings(10));
    // Every candidate read, and none can go: each task requires an attribute no other instance has, so
    // each search for a place fails after looking at every instance with room.
    let pinned = cluster(instances, tasks, services, Variant::Pinned);
    run("every task pinned: every candidate read, every search in vain", &pinned, &settings(10));
}
