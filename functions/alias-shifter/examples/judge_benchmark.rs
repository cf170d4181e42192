//! The judge's operating characteristic: seeded rollouts judged by the real judge on synthetic CloudWatch
//! answers (see `alias_shifter::simulate`), over a grid of traffic, error rates, schedules and how much
//! worse the new version is. Writes a Markdown report: `judge_benchmark <report.md>` (`make bench`).

use std::fmt::Write as _;
use std::time::Instant;

use alias_shifter::judge::stats::{self, normal_quantile};
use alias_shifter::simulate::{self, Outcome, Rng, Traffic};
use alias_shifter::{Rollout, State};
use chrono::DateTime;
use serde_json::{Value, json};

const SEED: u64 = 20_261_207;
/// Rollouts per cell: more where the rate to measure is small (false rollbacks).
const EQUAL_RUNS: u32 = 40_000;
const WORSE_RUNS: u32 = 2_000;
const CONFIDENCE: f64 = 0.99;
const DURATION_RATIO: f64 = 1.5;

/// What one cell measured.
struct Cell {
    runs: u32,
    unhealthy: u32,
    inconclusive: u32,
    /// Judgements before the rollback, summed over the unhealthy rollouts.
    judgements: usize,
}

/// The Wilson score interval of `k` in `n` at 95 %.
fn wilson(k: u32, n: u32) -> (f64, f64) {
    let (k, n) = (f64::from(k), f64::from(n));
    let z = normal_quantile(0.975);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn pct(k: u32, n: u32) -> String {
    let (lo, hi) = wilson(k, n);
    format!("{:.2} % [{:.2}, {:.2}]", 100.0 * f64::from(k) / f64::from(n), 100.0 * lo, 100.0 * hi)
}

fn state(schedule: &Value, extra: &Value) -> State {
    let mut payload = json!({"function-name": "api", "alias-name": "live", "new-version": "2",
        "interval": 120, "error-rate-confidence": CONFIDENCE});
    for (k, v) in schedule.as_object().into_iter().chain(extra.as_object()).flatten() {
        payload[k] = v.clone();
    }
    let rollout = Rollout::parse(&payload).unwrap_or_else(|e| panic!("{payload}: {e}"));
    let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let mut s: State = serde_json::from_value(json!({
        "status": "shifting", "function-name": "api", "alias-name": "live", "new-version": "2",
        "original-version": "1", "revision-id": "r", "timeout-seconds": 3, "step": 0,
        "step-started-at": start, "extensions": 0, "wait-seconds": 0, "started-at": start,
        "weights-started-at": start, "steps": [], "rollout": rollout,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    s.rollout.metric_delay = 60;
    s
}

fn run(state: &State, traffic: &Traffic, runs: u32, rng: &mut Rng) -> Cell {
    let mut cell = Cell { runs, unhealthy: 0, inconclusive: 0, judgements: 0 };
    for _ in 0..runs {
        match simulate::rollout(state.clone(), traffic, rng) {
            Outcome::Unhealthy(at) => {
                cell.unhealthy += 1;
                cell.judgements += at;
            }
            Outcome::Inconclusive => cell.inconclusive += 1,
            Outcome::Switched => {}
        }
    }
    cell
}

fn traffic(per_step: f64, error_rate: f64, error_ratio: f64, duration_ratio: f64) -> Traffic {
    Traffic { per_step, error_rate, error_ratio, median_ms: 100.0, sigma: 0.5, duration_ratio }
}

struct Report {
    out: String,
    worst_equal: (f64, String),
    target: Option<(u32, u32)>,
}

fn line(
    report: &mut Report,
    (schedule, label): (&str, &str),
    state: &State,
    t: Traffic,
    equal: bool,
    rng: &mut Rng,
) {
    let runs = if equal { EQUAL_RUNS } else { WORSE_RUNS };
    let cell = run(state, &t, runs, rng);
    let mean = if cell.unhealthy == 0 { 0.0 } else { cell.judgements as f64 / f64::from(cell.unhealthy) };
    let _ = writeln!(
        report.out,
        "| {label} | {} | {} | {} | {mean:.1} |",
        runs,
        pct(cell.unhealthy, runs),
        pct(cell.inconclusive, runs)
    );
    let rate = f64::from(cell.unhealthy) / f64::from(runs);
    if equal && rate >= report.worst_equal.0 {
        report.worst_equal = (rate, format!("{schedule}, {label}: {}", pct(cell.unhealthy, runs)));
    }
}

/// The grid of error rates and regressions, for each schedule.
fn errors(report: &mut Report, schedules: &[(&str, Value)], rng: &mut Rng) {
    report.out.push_str("## Errors: `error-rate-confidence` 0.99, no duration check\n\n");
    for (name, schedule) in schedules {
        let s = state(schedule, &json!({}));
        let _ = writeln!(
            report.out,
            "### {name}\n\n| requests a step, old version's error rate, new version | rollouts | rolled back as unhealthy (95 % CI) | rolled back, too little traffic | judgements before the rollback |\n|---|---|---|---|---|"
        );
        for per_step in [100.0, 1000.0, 10_000.0] {
            for rate in [0.001, 0.01, 0.05] {
                for ratio in [1.0, 1.5, 2.0, 5.0] {
                    let label = format!(
                        "{per_step:.0}, {:.1} %, {}",
                        rate * 100.0,
                        if ratio == 1.0 { "equal".to_owned() } else { format!("{ratio}x errors") }
                    );
                    let t = traffic(per_step, rate, ratio, 1.0);
                    if name.starts_with("linear") && per_step == 1000.0 && rate == 0.01 && ratio == 2.0 {
                        let cell = run(&s, &t, WORSE_RUNS, rng);
                        report.target = Some((cell.unhealthy, cell.runs));
                        let mean = cell.judgements as f64 / f64::from(cell.unhealthy.max(1));
                        let _ = writeln!(
                            report.out,
                            "| **{label}** | {} | **{}** | {} | {mean:.1} |",
                            cell.runs,
                            pct(cell.unhealthy, cell.runs),
                            pct(cell.inconclusive, cell.runs)
                        );
                        continue;
                    }
                    line(report, (name, &label), &s, t, ratio == 1.0, rng);
                }
            }
        }
        report.out.push('\n');
    }
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "bench/results/alias-shifter-judge.md".to_owned());
    let began = Instant::now();
    let mut rng = Rng::new(SEED);
    let mut report = Report { out: String::new(), worst_equal: (0.0, String::new()), target: None };
    let schedules = [
        ("linear, 10 steps (9 weights)", json!({"type": "linear", "steps": 10})),
        ("canary, 10 %", json!({"type": "canary", "canary-weight": 0.1})),
    ];
    errors(&mut report, &schedules, &mut rng);
    let _ = writeln!(
        report.out,
        "## Durations: `max-duration-ratio` {DURATION_RATIO} and `error-rate-confidence` 0.99, errors 1 % on both\n"
    );
    for (name, schedule) in &schedules {
        let s = state(schedule, &json!({"max-duration-ratio": DURATION_RATIO}));
        let _ = writeln!(
            report.out,
            "### {name}\n\n| requests a step, new version | rollouts | rolled back as unhealthy (95 % CI) | rolled back, too little traffic | judgements before the rollback |\n|---|---|---|---|---|"
        );
        for per_step in [100.0, 1000.0, 10_000.0] {
            for ratio in [1.0, 1.5, 2.0, 5.0] {
                let label = format!(
                    "{per_step:.0}, {}",
                    if ratio == 1.0 { "equal".to_owned() } else { format!("{ratio}x durations") }
                );
                let named = format!("{name}, durations checked");
                line(
                    &mut report,
                    (&named, &label),
                    &s,
                    traffic(per_step, 0.01, 1.0, ratio),
                    ratio == 1.0,
                    &mut rng,
                );
            }
        }
        report.out.push('\n');
    }
    let bound = {
        let s = state(&schedules[0].1, &json!({}));
        let t = traffic(1000.0, 0.01, 2.0, 1.0);
        let alpha = 1.0 - CONFIDENCE;
        let found = (0..WORSE_RUNS)
            .filter(|_| stats::worse(&simulate::final_score(&s, &t, &mut rng), alpha).worse)
            .count();
        u32::try_from(found).unwrap_or(0)
    };
    write(&path, &report, bound, began.elapsed().as_secs_f64());
}

fn write(path: &str, report: &Report, bound: u32, seconds: f64) {
    let (k, n) = report.target.unwrap_or((0, 1));
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    let mut head = String::new();
    let _ = writeln!(head, "# alias-shifter: the judge's operating characteristic\n");
    let _ = writeln!(
        head,
        "Generated by `make bench` (`cargo run --release -p alias-shifter --example judge_benchmark`), seed {SEED}, in {seconds:.0} s. Each rollout is a real rollout state judged by the real judge (`judge::assess`) and moved on by the real rule (`State::next_move`) on synthetic CloudWatch answers (`simulate.rs`): 60 s periods, 120 s per weight; each period's requests split at random by the weight, each request failing at its version's rate; each window's p90 and p99 the percentiles of its calls' durations (lognormal, median 100 ms, sigma 0.5; a worse version's durations all multiplied). `max-extensions` 2, no bake, no approval: every rollback counted is one before the switch. Intervals are Wilson 95 % intervals. How the judge decides: the README, section \"How a step is judged\".\n"
    );
    let _ = writeln!(head, "## Targets\n");
    let _ = writeln!(
        head,
        "- At most 1 % false rollbacks (equal versions rolled back as unhealthy) in every cell: {}; the worst cell: {}.",
        met(report.worst_equal.0 <= 0.01),
        report.worst_equal.1
    );
    let _ = writeln!(
        head,
        "- At least 90 % of 2x errors found before the switch, linear 10 steps, 1,000 requests a step, 1 %: {} ({}).",
        met(f64::from(k) / f64::from(n) >= 0.9),
        pct(k, n)
    );
    let _ = writeln!(
        head,
        "- The most any test at a 1 % chance of a false rollback can find there: a single test after the last weight, on all of the rollout's traffic with the whole budget, finds {} of the same rollouts ({WORSE_RUNS} of them): the 90 % target is above what the traffic of that cell holds.\n",
        pct(bound, WORSE_RUNS)
    );
    let text = format!("{head}{}", report.out);
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
    eprintln!("wrote {path} in {seconds:.0} s");
}
