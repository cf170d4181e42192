//! A day in the fleet: the three ECS functions together, with the real SDK, against the emulator, under a
//! seeded random schedule of what happens to a fleet: Spot warnings (stopped instances run again later),
//! scale-ins and instance-refresh style terminations through lifecycle hooks, scheduled maintenance EC2
//! schedules and AWS Health announces (or cancels), agents that register an instance twice, other tools'
//! drains, load, bursts of throttling and 5xx answers, tasks slow to stop and tasks that never stop,
//! ListTasks lagging behind. Every event kind the functions take arrives as AWS would send it: lost, late,
//! repeated, by SNS or by EventBridge, and forged. The schedules fire (one may be dropped), and the
//! lifecycle-drainer runs one invocation at a time, its reserved concurrency. Time is compressed by
//! configuration: hooks of 4 s, drains of seconds, a reconcile every step. After every step, and at the
//! end, it checks the bundle's first promise:
//!
//! - no instance is terminated while a task on it is not STOPPED, unless its drain reached its deadline and
//!   completed with `TIMEOUT_RESULT` and said so;
//! - every lifecycle action of our hook was completed by us, before it expired, and none is left pending;
//! - nothing we did not drain is reactivated, nothing `Terminating:*` is reactivated, nothing stopped is;
//! - a forged event drains nothing: no instance in service carries a lifecycle drain, no instance EC2 never
//!   scheduled maintenance for carries a maintenance drain;
//! - nothing is left DRAINING for good: a drain of ours whose reason EC2 shows gone is undone by the end;
//! - no group goes below its minimum size, and its desired capacity matches the removals.
//!
//! `make test` runs a few seeds; `make chaos SEEDS=N` many, and writes `bench/results/chaos.md`
//! (`SHIPSHAPE_CHAOS_SEEDS`: a count, or a comma-separated list of seeds to replay one;
//! `SHIPSHAPE_CHAOS_REPORT`: where to write the report).

mod day;
mod events;
mod fleet;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

/// Steps of the schedule, and the pause between two.
const STEPS: usize = 24;
const STEP: Duration = Duration::from_millis(700);

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
        futures_util::stream::iter(seeds()).map(day::day).buffer_unordered(SIDE_BY_SIDE).collect().await;
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
         SDK) against a fresh emulator: {STEPS} steps of {} ms, hooks with a {} s heartbeat timeout, drains of \
         seconds, a reconcile every step, every event kind lost, late, repeated or forged at times. Replay one \
         with `make chaos SEEDS=<seed>,`.\n\n## Events\n\n| event | count |\n|---|---|\n",
        reports.len(),
        took.as_secs_f64(),
        SIDE_BY_SIDE,
        STEP.as_millis(),
        fleet::HEARTBEAT_TIMEOUT
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
