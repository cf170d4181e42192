//! Rollouts judged on synthetic CloudWatch answers: the judge's operating characteristic. Pure and seeded.
//!
//! A rollout is a real [`State`] moved on by the real judge ([`assess`]) and the real next move
//! ([`State::next_move`]); only the metrics are made up, as CloudWatch would answer them: per period,
//! each version's invocations (the alias's requests split at random by the weight, as Lambda routes them)
//! and errors (each request failing at its version's rate), and per window each version's `Duration` p90
//! and p99, the percentiles of that window's durations (each version's lognormal). The benchmark
//! (`examples/judge_benchmark.rs`) runs a grid of them; the unit tests a few.

use chrono::{DateTime, Duration, Utc};

use crate::judge::health::Verdict;
use crate::judge::series::{self, Role, Series, Source, Stat, duration_id, id};
use crate::judge::stats::{Score, normal_quantile};
use crate::judge::window::Window;
use crate::judge::{Kind, assess, windows};
use crate::state::{Move, State, Status};

/// A seeded source of randomness (SplitMix64): the same seed, the same rollouts, on any machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        normal_quantile(self.uniform())
    }

    /// Successes in `n` trials of probability `p`: exact (geometric gaps) for a mean up to 100, the normal
    /// approximation beyond, where it is within a fraction of a success.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        let mean = n as f64 * p;
        if mean > 100.0 {
            let x = (mean + self.normal() * (mean * (1.0 - p)).sqrt()).round();
            return x.clamp(0.0, n as f64) as u64;
        }
        let (mut count, mut at) = (0u64, 0u64);
        let log_q = (1.0 - p).ln();
        loop {
            at += (self.uniform().ln() / log_q).floor() as u64 + 1;
            if at > n {
                return count;
            }
            count += 1;
        }
    }

    /// Gamma(`shape`, 1) (Marsaglia and Tsang).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        x / (x + self.gamma(b))
    }
}

/// How the traffic and the two versions behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    /// The alias's requests in each step's interval.
    pub per_step: f64,
    /// The old version's share of failed requests.
    pub error_rate: f64,
    /// The new version's, as a multiple of the old one's.
    pub error_ratio: f64,
    /// The old version's median duration (ms) and the spread of its log (lognormal).
    pub median_ms: f64,
    pub sigma: f64,
    /// The new version's durations, as a multiple of the old one's (every percentile).
    pub duration_ratio: f64,
}

/// How a simulated rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The new version became the primary.
    Switched,
    /// Rolled back as unhealthy, at this judgement (1-based) of the weights.
    Unhealthy(usize),
    /// Rolled back because the judgements stayed inconclusive (too little traffic).
    Inconclusive,
}

/// The window percentiles of `n` durations of a lognormal (nearest rank, as CloudWatch's): the 90th and
/// 99th order statistics drawn together (a Beta, then the rest of the interval), none without invocations.
fn percentiles(rng: &mut Rng, n: u64, median_ms: f64, sigma: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let rank = |p: f64| ((p * n as f64).ceil() as u64).clamp(1, n);
    let (k1, k2) = (rank(0.9), rank(0.99));
    let u1 = rng.beta(k1 as f64, (n - k1 + 1) as f64);
    let u2 = if k2 > k1 { u1 + (1.0 - u1) * rng.beta((k2 - k1) as f64, (n - k2 + 1) as f64) } else { u1 };
    let at = |u: f64| median_ms * (sigma * normal_quantile(u)).exp();
    Some((at(u1), at(u2)))
}

/// One rollout of `state` (at its first weight, started at `state.step_started_at`) on synthetic traffic,
/// judged with 60 s metric periods until it switches or rolls back.
pub fn rollout(mut state: State, traffic: &Traffic, rng: &mut Rng) -> Outcome {
    const PERIOD: u32 = 60;
    let mut series = Series::default();
    let mut made: Option<DateTime<Utc>> = None;
    let mut judgements = 0;
    loop {
        let look = state.look(PERIOD);
        let w = windows(&look);
        let Kind::Weight { .. } = look.kind else { return Outcome::Switched };
        let per_period = traffic.per_step * f64::from(PERIOD) / state.rollout.interval.max(1) as f64;
        let mut t = made.unwrap_or(w.current.from);
        while t < w.current.to {
            period(&mut series, t, per_period, state.current_weight().unwrap_or(1.0), traffic, rng);
            t += Duration::seconds(i64::from(PERIOD));
        }
        made = Some(t);
        durations(&mut series, &w.current, traffic, rng);
        judgements += 1;
        let a = assess(&look, &state.criteria(), Some(&series), &[], &state.original_version);
        match state.next_move(&a.verdict) {
            _ if matches!(a.verdict, Verdict::Unhealthy(_)) => return Outcome::Unhealthy(judgements),
            Move::NextWeight => {
                state.step += 1;
                state.step_started_at = w.current.to.max(state.step_started_at);
                state.extensions = 0;
            }
            Move::Extend => state.extensions += 1,
            Move::Switch | Move::Hold(_) | Move::NextCheck | Move::Finish => return Outcome::Switched,
            Move::GiveUp(_) => return Outcome::Inconclusive,
        }
        state.status = Status::Shifting;
    }
}

/// The stratified score over every weight of `state`'s rollout, each held one interval, on synthetic
/// traffic: what a single test after the last weight, with the whole budget, would see (about the most any
/// test of the same data could find).
pub fn final_score(state: &State, traffic: &Traffic, rng: &mut Rng) -> Score {
    let mut series = Series::default();
    let interval = Duration::seconds(i64::try_from(state.rollout.interval).unwrap_or(i64::MAX));
    let periods = (state.rollout.interval / 60).max(1);
    let per_period = traffic.per_step / periods as f64;
    let mut t = state.step_started_at;
    for w in &state.rollout.weights {
        for p in 0..periods {
            let at = t + Duration::seconds(i64::try_from(p * 60).unwrap_or(0));
            period(&mut series, at, per_period, *w, traffic, rng);
        }
        t += interval;
    }
    let all = Window { from: state.step_started_at, to: t, judge_at: t };
    series.score(&all)
}

/// One period's counts: the alias's requests routed by the weight, each version's failures.
fn period(series: &mut Series, at: DateTime<Utc>, requests: f64, weight: f64, t: &Traffic, rng: &mut Rng) {
    let total = requests.round() as u64;
    let new = rng.binomial(total, weight);
    let old = total - new;
    let new_errors = rng.binomial(new, (t.error_rate * t.error_ratio).min(1.0));
    let old_errors = rng.binomial(old, t.error_rate);
    for (source, n, e) in [(Source::New, new, new_errors), (Source::Old, old, old_errors)] {
        series.add(&id(source, Stat::Invocations), at, n as f64);
        series.add(&id(source, Stat::Errors), at, e as f64);
        series.add(&id(source, Stat::Throttles), at, 0.0);
    }
    for (source, stat) in series::queries() {
        series.expect(&id(source, stat));
        series.status(&id(source, stat), "Complete");
    }
}

/// The window's percentiles of each version, from its invocations in the window.
fn durations(series: &mut Series, window: &Window, t: &Traffic, rng: &mut Rng) {
    for (source, scale) in [(Source::New, t.duration_ratio), (Source::Old, 1.0)] {
        let n = series.figures(source, window).invocations as u64;
        if let Some((p90, p99)) = percentiles(rng, n, t.median_ms * scale, t.sigma) {
            series.duration(&duration_id(Role::Window, source, Stat::P90), p90);
            series.duration(&duration_id(Role::Window, source, Stat::P99), p99);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_right_mean_and_spread() {
        let mut rng = Rng::new(7);
        for (n, p) in [(1000, 0.01), (100, 0.3), (5000, 0.5), (10, 0.9)] {
            let draws: Vec<f64> = (0..4000).map(|_| rng.binomial(n, p) as f64).collect();
            let mean = draws.iter().sum::<f64>() / 4000.0;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4000.0;
            let (m, v) = (n as f64 * p, n as f64 * p * (1.0 - p));
            assert!((mean - m).abs() < 4.0 * (v / 4000.0).sqrt() + 1e-9, "{n} {p}: mean {mean} vs {m}");
            assert!((var / v - 1.0).abs() < 0.15, "{n} {p}: variance {var} vs {v}");
        }
        // The median of 1,000 lognormal durations is near the distribution's.
        let p90: Vec<f64> =
            (0..2000).filter_map(|_| percentiles(&mut rng, 1000, 100.0, 0.5)).map(|p| p.0).collect();
        let mean = p90.iter().sum::<f64>() / p90.len() as f64;
        let expected = 100.0 * (0.5 * normal_quantile(0.9)).exp();
        assert!((mean / expected - 1.0).abs() < 0.01, "{mean} vs {expected}");
    }
}

#[cfg(test)]
mod rollouts {
    use super::*;
    use crate::state::fixture;

    /// Rollouts of the sample's linear shift (nine weights), 1,000 requests a step, the old version failing
    /// 1 %, the new one `ratio` times that: the share rolled back as unhealthy before the switch.
    fn rolled_back(confidence: f64, ratio: f64, seed: u64, n: u32) -> f64 {
        let mut rng = Rng::new(seed);
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut state = fixture(start);
        state.rollout =
            crate::Rollout::parse(&serde_json::json!({"function-name": "api", "alias-name": "live",
            "new-version": "2", "steps": 10, "interval": 120, "error-rate-confidence": confidence}))
            .unwrap_or_else(|e| panic!("{e}"));
        let traffic = Traffic {
            per_step: 1000.0,
            error_rate: 0.01,
            error_ratio: ratio,
            median_ms: 100.0,
            sigma: 0.5,
            duration_ratio: 1.0,
        };
        let unhealthy = (0..n)
            .filter(|_| matches!(rollout(state.clone(), &traffic, &mut rng), Outcome::Unhealthy(_)))
            .count();
        unhealthy as f64 / f64::from(n)
    }

    /// Each judgement tests the rollout so far again: held to the whole budget every time, nine tests roll
    /// back a quarter of rollouts of identical versions. Shared out, the budget holds over the rollout.
    #[test]
    fn identical_versions_are_rolled_back_within_the_budget() {
        let at_1 = rolled_back(0.99, 1.0, 11, 2000);
        assert!(at_1 <= 0.012, "{at_1}");
        let at_5 = rolled_back(0.95, 1.0, 12, 1000);
        assert!(at_5 <= 0.05, "{at_5}");
        let found = rolled_back(0.99, 3.0, 13, 300);
        assert!(found >= 0.95, "a version failing three times as often: {found}");
    }
}
