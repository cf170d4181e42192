//! A day in the fleet: the three ECS functions together, with the real SDK, against the emulator, under a
//! seeded random schedule of what happens to a fleet: Spot warnings (some instances come back from a stop),
//! scale-ins and instance-refresh style terminations through lifecycle hooks, duplicate and late
//! deliveries, scheduled scale-in runs, another tool's drains, load, bursts of throttling and 5xx answers,
//! tasks slow to stop and tasks that never stop. Time is compressed by configuration: hooks of 4 s, drains
//! of seconds. After every step, and at the end, it checks the bundle's first promise:
//!
//! - no instance is terminated while a task on it is not STOPPED, unless its drain reached its deadline and
//!   completed with `TIMEOUT_RESULT` and said so;
//! - every lifecycle action the drainer was handed was completed by it, before its hook expired;
//! - nothing we did not drain is reactivated, and nothing `Terminating:*` is reactivated;
//! - no group goes below its minimum size, and its desired capacity matches the removals.
//!
//! `make test` runs a few seeds; `make chaos SEEDS=N` many, and writes `bench/results/chaos.md`
//! (`SHIPSHAPE_CHAOS_SEEDS`: a count, or a comma-separated list of seeds to replay one;
//! `SHIPSHAPE_CHAOS_REPORT`: where to write the report).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use integration_tests::{Topic, World, spot_event};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::config::Env;

const CLUSTER: &str = "fleet";
const GROUP: &str = "fleet";
const HOOK: &str = "shipshape-drain";
const MIN_SIZE: i32 = 2;
/// Steps of the schedule, and the pause between two.
const STEPS: usize = 24;
const STEP: Duration = Duration::from_millis(700);
/// Per instance: 4096 CPU units and 7482 MiB registered by the emulator; tasks of 512 / 1024.
const TASK: (i32, i32) = (512, 1024);

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

/// What one seed did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub events: BTreeMap<&'static str, usize>,
    pub faults: BTreeMap<String, u64>,
    pub violations: Vec<String>,
    pub seconds: f64,
}

/// A handler invocation in flight, and what to do with its result.
enum Done {
    Lifecycle(Value, Result<lifecycle_drainer::Outcome, lifecycle_drainer::Error>),
    Spot(Result<spot_drainer::Reply, spot_drainer::Error>),
    ScaleIn(Result<scale_in_cleaner::Outcome, scale_in_cleaner::Error>),
}

/// The functions, as deployed against this world.
struct Functions {
    spot: spot_drainer::Deps,
    lifecycle: lifecycle_drainer::Deps,
    scale_in: scale_in_cleaner::Deps,
}

struct Fleet {
    world: World,
    hooks: Topic,
    /// Container instance ARN by EC2 instance id.
    registered: BTreeMap<String, String>,
    /// Drained by "another tool": never ours to reactivate.
    others_drains: BTreeSet<String>,
    /// Seen DRAINING while Auto Scaling had it Terminating:*: must never be ACTIVE again.
    leaving_drained: BTreeSet<String>,
    /// Instances whose lifecycle message the drainer was handed, and those whose drain timed out.
    handed: BTreeSet<String>,
    timed_out: BTreeSet<String>,
    /// Desired capacity the group should have: the start, less every decrementing termination.
    expected_desired: i32,
    /// Stopped for a Spot interruption: they run again later.
    stopped_for_spot: Vec<String>,
    /// Warned of a Spot termination: the group replaces them at the step given.
    doomed: Vec<(usize, String)>,
}

fn deps_env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn config<T>(pairs: &[(&str, &str)], make: impl Fn(Env<'_>) -> Result<T, shared::config::ConfigError>) -> T {
    let map = deps_env(pairs);
    make(Env::new(move |name| map.get(name).cloned())).expect("config")
}

impl Fleet {
    async fn new() -> (Fleet, Functions) {
        let world = World::new().await;
        world.emulator.min_heartbeat_timeout(4);
        world.emulator.draining(800, 100);
        let hooks = world.topic("hooks").await;
        let instances = world.group(GROUP, 6).await;
        world.set_min_size(GROUP, MIN_SIZE).await;
        world.cluster(CLUSTER).await;
        let mut registered = BTreeMap::new();
        for id in &instances {
            registered.insert(id.clone(), world.register(CLUSTER, id).await);
        }
        world
            .autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(GROUP)
            .lifecycle_hook_name(HOOK)
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .heartbeat_timeout(4)
            .default_result("CONTINUE")
            .notification_target_arn(&hooks.arn)
            .role_arn("arn:aws:iam::123456789012:role/hooks")
            .send()
            .await
            .expect("PutLifecycleHook");
        world.sns_events(&hooks).await; // the test notification
        let spot = spot_drainer::Deps::new(
            &world.sdk,
            config(&[("CLUSTERS", CLUSTER)], spot_drainer::Config::from_env),
        );
        let lifecycle = lifecycle_drainer::Deps::new(
            &world.sdk,
            config(
                &[
                    ("CLUSTERS", CLUSTER),
                    ("LIFECYCLE_HOOK_NAMES", HOOK),
                    ("AUTO_SCALING_GROUPS", GROUP),
                    ("POLL_INTERVAL_SECONDS", "1"),
                    ("POLL_WINDOW_SECONDS", "3"),
                    ("DRAIN_TIMEOUT_SECONDS", "8"),
                    ("CONTINUATION_TOPIC_ARN", &hooks.arn),
                ],
                lifecycle_drainer::Config::from_env,
            ),
        );
        let scale_in = scale_in_cleaner::Deps::new(
            &world.sdk,
            config(
                &[("CLUSTERS", CLUSTER), ("MIN_INSTANCE_AGE_MINUTES", "0"), ("MAX_REMOVALS_PER_RUN", "1")],
                scale_in_cleaner::Config::from_env,
            ),
        );
        let fleet = Fleet {
            world,
            hooks,
            registered,
            others_drains: BTreeSet::new(),
            leaving_drained: BTreeSet::new(),
            handed: BTreeSet::new(),
            timed_out: BTreeSet::new(),
            expected_desired: 6,
            stopped_for_spot: Vec::new(),
            doomed: Vec::new(),
        };
        (fleet, Functions { spot, lifecycle, scale_in })
    }

    /// Terminates an instance through its group, as a scale-in (`decrement`) or a replacement does.
    async fn terminate(&mut self, id: &str, decrement: bool) -> bool {
        let ok = self
            .world
            .autoscaling
            .terminate_instance_in_auto_scaling_group()
            .instance_id(id)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .is_ok();
        if ok && decrement {
            self.expected_desired -= 1;
        }
        ok
    }

    /// The group's instances with their lifecycle state.
    async fn members(&self) -> Vec<(String, String)> {
        let out = self
            .world
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(GROUP)
            .send()
            .await;
        let Ok(out) = out else { return Vec::new() };
        out.auto_scaling_groups()
            .first()
            .map(|g| {
                g.instances()
                    .iter()
                    .map(|i| {
                        (
                            i.instance_id().unwrap_or_default().to_owned(),
                            i.lifecycle_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn in_service(&self) -> Vec<String> {
        self.members().await.into_iter().filter(|(_, s)| s == "InService").map(|(id, _)| id).collect()
    }

    /// New instances of the group register with the cluster, as their ECS agent does at boot.
    async fn boot_new_instances(&mut self) {
        for (id, _) in self.members().await {
            if !self.registered.contains_key(&id) {
                let arn = self.world.register(CLUSTER, &id).await;
                self.registered.insert(id, arn);
            }
        }
    }

    /// ECS status of each registered instance still known to ECS.
    async fn statuses(&self) -> BTreeMap<String, String> {
        let arns: Vec<String> = self.registered.values().cloned().collect();
        let mut out = BTreeMap::new();
        for batch in arns.chunks(100) {
            let described = self
                .world
                .ecs
                .describe_container_instances()
                .cluster(CLUSTER)
                .set_container_instances(Some(batch.to_vec()))
                .send()
                .await;
            let Ok(described) = described else { continue };
            for ci in described.container_instances() {
                out.insert(
                    ci.ec2_instance_id().unwrap_or_default().to_owned(),
                    ci.status().unwrap_or_default().to_owned(),
                );
            }
        }
        out
    }

    /// The invariants that can be checked at any moment.
    async fn check(&mut self, step: usize, violations: &mut Vec<String>) {
        let statuses = self.statuses().await;
        let members: BTreeMap<String, String> = self.members().await.into_iter().collect();
        for id in &self.others_drains {
            if statuses.get(id).is_some_and(|s| s == "ACTIVE") {
                violations
                    .push(format!("step {step}: {id}, drained by another tool, was set back to ACTIVE"));
            }
        }
        for (id, state) in &members {
            if state.starts_with("Terminating") && statuses.get(id).is_some_and(|s| s == "DRAINING") {
                self.leaving_drained.insert(id.clone());
            }
        }
        for id in &self.leaving_drained {
            if statuses.get(id).is_some_and(|s| s == "ACTIVE") {
                violations.push(format!(
                    "step {step}: {id} was set back to ACTIVE while Auto Scaling terminates it"
                ));
            }
        }
        let (min, desired, _) = self.world.group_size(GROUP).await;
        if desired < min {
            violations.push(format!("step {step}: group {GROUP} at {desired}, under its minimum {min}"));
        }
    }

    /// The invariants checked once every invocation has returned.
    async fn check_at_the_end(&self, violations: &mut Vec<String>) {
        for t in self.world.emulator.terminations() {
            let id = t["instance_id"].as_str().unwrap_or_default();
            let left = t["tasks_not_stopped"].as_array().map_or(0, Vec::len);
            if left > 0 && !self.timed_out.contains(id) {
                violations
                    .push(format!("{id} terminated ({}) with {left} task(s) not STOPPED: {t}", t["how"]));
            }
        }
        let actions = self.world.emulator.lifecycle_actions();
        for a in actions["finished"].as_array().into_iter().flatten() {
            let id = a["instance_id"].as_str().unwrap_or_default();
            if self.handed.contains(id) && a["how"] != "completed" {
                violations
                    .push(format!("the lifecycle action of {id} expired after the drainer had it: {a}"));
            }
        }
        for a in actions["pending"].as_array().into_iter().flatten() {
            violations.push(format!("a lifecycle action is still pending at the end: {a}"));
        }
        let (_, desired, _) = self.world.group_size(GROUP).await;
        if desired != self.expected_desired {
            violations.push(format!(
                "desired capacity {desired}, but the removals leave {}",
                self.expected_desired
            ));
        }
    }
}

type Invocation<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Done> + 'a>>;

/// A lifecycle message handed to the drainer, as SNS invokes it.
fn deliver<'a>(f: &'a Functions, event: Value) -> Invocation<'a> {
    Box::pin(async move {
        let result =
            lifecycle_drainer::handler(&f.lifecycle, LambdaEvent::new(event.clone(), Context::default()))
                .await;
        Done::Lifecycle(event, result)
    })
}

fn spot<'a>(f: &'a Functions, event: Value) -> Invocation<'a> {
    Box::pin(async move {
        Done::Spot(spot_drainer::handler(&f.spot, LambdaEvent::new(event, Context::default())).await)
    })
}

fn scale_in<'a>(f: &'a Functions) -> Invocation<'a> {
    Box::pin(async move {
        let event = integration_tests::sample_event("scale-in-scheduled.json");
        Done::ScaleIn(
            scale_in_cleaner::handler(&f.scale_in, LambdaEvent::new(event, Context::default())).await,
        )
    })
}

/// The instance a lifecycle message is about.
fn instance_of(event: &Value) -> String {
    let body: Value = serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap_or("{}"))
        .unwrap_or_default();
    body["EC2InstanceId"].as_str().unwrap_or_default().to_owned()
}

fn count(report: &mut Report, kind: &'static str) {
    *report.events.entry(kind).or_default() += 1;
}

/// One seed: the schedule, the checks, the report.
pub async fn day(seed: u64) -> Report {
    let started = Instant::now();
    let mut rng = Rng(seed);
    let (mut fleet, functions) = Fleet::new().await;
    let f = &functions;
    let mut report = Report { seed, ..Report::default() };
    let mut violations = Vec::new();
    // Service tasks spread over the fleet, a few standalone ones, and one service task that never stops.
    let mut service_tasks = Vec::new();
    for (i, arn) in fleet.registered.values().cloned().collect::<Vec<_>>().iter().enumerate() {
        let service = if i % 2 == 0 { "api" } else { "web" };
        service_tasks.extend(
            fleet.world.start_sized_tasks(CLUSTER, arn, 2, Some(format!("service:{service}")), TASK).await,
        );
        if rng.chance(30) {
            fleet.world.start_sized_tasks(CLUSTER, arn, 1, None, TASK).await;
        }
    }
    let stuck: Vec<String> = rng.pick(&service_tasks).cloned().into_iter().collect();
    fleet.world.emulator.draining_with(200 + rng.below(1500) as u64, 100, &stuck);

    let mut in_flight: FuturesUnordered<Invocation<'_>> = FuturesUnordered::new();
    let mut late: Vec<Value> = Vec::new();
    let mut faulty_steps = 0;
    for step in 0..STEPS + 16 {
        let scheduling = step < STEPS;
        fleet.boot_new_instances().await;
        let in_service = fleet.in_service().await;
        let doomed: Vec<String> =
            fleet.doomed.iter().filter(|(at, _)| *at <= step).map(|(_, id)| id.clone()).collect();
        fleet.doomed.retain(|(at, _)| *at > step);
        for id in doomed {
            if fleet.terminate(&id, false).await {
                count(&mut report, "spot interruption (group replaces it)");
            }
        }
        if scheduling {
            let statuses = fleet.statuses().await;
            let active: Vec<String> = in_service
                .iter()
                .filter(|id| statuses.get(*id).is_some_and(|s| s == "ACTIVE"))
                .cloned()
                .collect();
            match rng.below(9) {
                0 | 1 => {
                    let (min, desired, _) = fleet.world.group_size(GROUP).await;
                    if let (Some(id), true) = (rng.pick(&in_service).cloned(), desired > min)
                        && fleet.terminate(&id, true).await
                    {
                        count(&mut report, "scale-in termination");
                    }
                }
                2 => {
                    if let Some(id) = rng.pick(&in_service).cloned()
                        && fleet.terminate(&id, false).await
                    {
                        count(&mut report, "refresh termination");
                    }
                }
                3 => {
                    if let Some(id) = rng.pick(&in_service).cloned() {
                        let stop = rng.chance(40);
                        let kind = if stop {
                            "spot-interruption-stop.json"
                        } else {
                            "spot-interruption-terminate.json"
                        };
                        if stop {
                            fleet.stopped_for_spot.push(id.clone());
                        } else {
                            fleet.doomed.push((step + 2, id.clone()));
                        }
                        in_flight.push(spot(f, spot_event(kind, &id)));
                        count(&mut report, "spot warning");
                    }
                }
                4 => {
                    if let Some(id) = fleet.stopped_for_spot.pop() {
                        let mut event = spot_event("spot-instance-running.json", &id);
                        event["time"] =
                            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                        in_flight.push(spot(f, event));
                        count(&mut report, "spot instance back");
                    }
                }
                5 => {
                    in_flight.push(scale_in(f));
                    count(&mut report, "scale-in run");
                }
                6 => {
                    if let Some(id) = rng.pick(&active).cloned()
                        && let Some(arn) = fleet.registered.get(&id)
                    {
                        let drained = fleet
                            .world
                            .ecs
                            .update_container_instances_state()
                            .cluster(CLUSTER)
                            .container_instances(arn)
                            .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
                            .send()
                            .await;
                        if drained.is_ok() {
                            fleet.others_drains.insert(id);
                            count(&mut report, "another tool's drain");
                        }
                    }
                }
                7 => {
                    let arns: Vec<String> =
                        active.iter().filter_map(|id| fleet.registered.get(id).cloned()).collect();
                    if let Some(arn) = rng.pick(&arns).cloned() {
                        let group = rng.chance(70).then(|| "service:api".to_owned());
                        fleet.world.start_sized_tasks(CLUSTER, &arn, 1, group, TASK).await;
                        count(&mut report, "load");
                    }
                }
                _ => {
                    let errors = ["ThrottlingException", "InternalFailure", "503"];
                    fleet.world.emulator.random_faults(seed.wrapping_mul(1000) + step as u64, 0.08, &errors);
                    faulty_steps = 3;
                    count(&mut report, "fault burst");
                }
            }
        }
        if faulty_steps > 0 {
            faulty_steps -= 1;
            if faulty_steps == 0 {
                fleet.world.emulator.control("DELETE", "/faults/random", None);
            }
        }
        // Lifecycle messages and continuations reach the drainer: some twice, some a step late.
        let mut messages = fleet.world.sns_events(&fleet.hooks).await;
        messages.append(&mut late);
        for event in messages {
            let instance = instance_of(&event);
            if instance.is_empty() {
                continue; // a test notification
            }
            if scheduling && rng.chance(15) {
                late.push(event);
                count(&mut report, "late delivery");
                continue;
            }
            fleet.handed.insert(instance);
            if rng.chance(15) {
                in_flight.push(deliver(f, event.clone()));
                count(&mut report, "duplicate delivery");
            }
            in_flight.push(deliver(f, event));
            count(&mut report, "lifecycle delivery");
        }
        // Let the invocations run for a step, collecting what ends.
        let pause = tokio::time::sleep(STEP);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                Some(done) = in_flight.next() => settle(&mut fleet, &mut report, &mut late, done),
            }
        }
        fleet.check(step, &mut violations).await;
    }
    fleet.world.emulator.control("DELETE", "/faults/random", None);
    while let Some(done) = in_flight.next().await {
        settle(&mut fleet, &mut report, &mut late, done);
    }
    fleet.check_at_the_end(&mut violations).await;
    report.faults = fleet.world.emulator.random_faults_injected();
    report.violations = violations;
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// What an invocation's end means for the checks; a failed lifecycle invocation is retried, as Lambda
/// retries an asynchronous invocation (later: here, at the next step).
fn settle(fleet: &mut Fleet, report: &mut Report, late: &mut Vec<Value>, done: Done) {
    match done {
        Done::Lifecycle(event, Ok(o)) if o.action == lifecycle_drainer::Action::TimedOut => {
            fleet.timed_out.insert(instance_of(&event));
        }
        Done::Lifecycle(event, Err(_)) => {
            count(report, "failed lifecycle invocation, retried");
            late.push(event);
        }
        Done::Spot(Err(_)) => count(report, "failed spot invocation"),
        Done::ScaleIn(result) => {
            let outcome = match &result {
                Ok(o) => Some(o),
                Err(scale_in_cleaner::Error::Incomplete { outcome, .. }) => Some(outcome.as_ref()),
                Err(_) => None,
            };
            if let Some(o) = outcome {
                let removed = o.totals.terminated + o.totals.reaped;
                fleet.expected_desired -= i32::try_from(removed).unwrap_or(0);
            }
        }
        _ => {}
    }
}

/// The seeds to run: `SHIPSHAPE_CHAOS_SEEDS` is a count (seeds 1 to N) or a list of seeds to replay.
fn seeds() -> Vec<u64> {
    let raw = std::env::var("SHIPSHAPE_CHAOS_SEEDS").unwrap_or_else(|_| "3".into());
    if raw.contains(',') {
        raw.split(',').filter_map(|s| s.trim().parse().ok()).collect()
    } else {
        (1..=raw.trim().parse::<u64>().unwrap_or(3)).collect()
    }
}

/// Days run side by side: each has its own emulator, and most of a day is waiting.
const SIDE_BY_SIDE: usize = 4;

#[tokio::test]
async fn a_day_in_the_fleet_breaks_no_promise() {
    integration_tests::needs_emulator!();
    let started = Instant::now();
    let reports: Vec<Report> =
        futures_util::stream::iter(seeds()).map(day).buffer_unordered(SIDE_BY_SIDE).collect().await;
    let text = markdown(&reports, started.elapsed());
    if let Ok(path) = std::env::var("SHIPSHAPE_CHAOS_REPORT") {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.violations.is_empty()).collect();
    assert!(failed.is_empty(), "{text}");
}

fn markdown(reports: &[Report], took: Duration) -> String {
    let mut events: BTreeMap<&str, usize> = BTreeMap::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    for r in reports {
        for (k, v) in &r.events {
            *events.entry(k).or_default() += v;
        }
        for (k, v) in &r.faults {
            *faults.entry(k.clone()).or_default() += v;
        }
    }
    let violations: usize = reports.iter().map(|r| r.violations.len()).sum();
    let mut out = format!(
        "# A day in the fleet\n\n{} seeds in {:.0} s ({} side by side): **{violations} violations**.\n\n\
         Each seed runs the spot-drainer, the lifecycle-drainer and the scale-in-cleaner (their handlers, the real \
         SDK) against a fresh emulator: {STEPS} steps of {} ms, hooks with a 4 s heartbeat timeout, drains of \
         seconds. Replay one with `make chaos SEEDS=<seed>,`.\n\n## Events\n\n| event | count |\n|---|---|\n",
        reports.len(),
        took.as_secs_f64(),
        SIDE_BY_SIDE,
        STEP.as_millis()
    );
    for (k, v) in &events {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    out.push_str("\n## Faults injected (throttling and 5xx)\n\n| operation | count |\n|---|---|\n");
    for (k, v) in &faults {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    out.push_str("\n## Seeds\n\n| seed | seconds | violations |\n|---|---|---|\n");
    for r in reports {
        out.push_str(&format!("| {} | {:.1} | {} |\n", r.seed, r.seconds, r.violations.len()));
    }
    for r in reports.iter().filter(|r| !r.violations.is_empty()) {
        out.push_str(&format!("\n### Seed {}\n\n", r.seed));
        for v in &r.violations {
            out.push_str(&format!("- {v}\n"));
        }
    }
    out
}
