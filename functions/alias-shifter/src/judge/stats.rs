//! The statistics of the judge: the new version's failed requests against the old version's, stratified by
//! metric period (Cochran–Mantel–Haenszel), and the normal quantile. Pure.
//!
//! Both versions serve the same requests at the same time, but not in the same proportion in every period:
//! a linear shift sends 10 % of one period's traffic to the new version and 90 % of a later one's. Pooled
//! over periods, a failure both versions share late in the rollout (a dependency's outage) would look like
//! the new version's (Simpson's paradox). So each period is its own 2×2 table (new / old, failed / not),
//! the new version's failures are compared with what that period's table expects of it if both versions
//! failed alike, and the differences are added up over the periods: the Cochran–Mantel–Haenszel score
//! `S = Σ (a − n₁ m₁ / N)` with variance `V = Σ n₁ n₀ m₁ m₀ / (N² (N − 1))`, and `z = (S − ½) / √V` (the
//! continuity correction keeps a single failure among few requests from counting as proof).
//!
//! Failures are rare, so `S` is skewed: when the new version has the smaller share of requests its upper
//! tail is heavier than the normal's, and a normal critical value would roll back identical versions more
//! often than asked (1 failure in 100 requests against none in 9,000 gives `z` 4.7, while it happens 1.1 %
//! of the time). The critical value is raised for that skewness (Cornish–Fisher, `c = z + γ (z² − 1) / 6`,
//! with `γ` from the hypergeometric third moments of the periods' tables), and never lowered: the expansion
//! is not to be trusted that far, and lowering it would trade false rollbacks for detection.

/// The stratified score of the new version's failed requests, over some periods.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    /// Failures of the new version above what each period expects of it: `Σ (a − n₁ m₁ / N)`.
    pub excess: f64,
    /// Its variance when both versions fail alike: `Σ n₁ n₀ m₁ m₀ / (N² (N − 1))`.
    pub variance: f64,
    /// Its third central moment then: `Σ n₁ m₁ m₀ n₀ (m₀ − m₁) (n₀ − n₁) / (N³ (N − 1) (N − 2))`.
    pub third: f64,
}

/// Half a failure: the continuity correction.
const CORRECTION: f64 = 0.5;

impl Score {
    /// One period: `a` of the new version's `n1` requests failed, `c` of the old version's `n0`.
    pub fn add(&mut self, a: f64, n1: f64, c: f64, n0: f64) {
        let n = n1 + n0;
        if n1 <= 0.0 || n0 <= 0.0 || n < 2.0 {
            return;
        }
        let (failed, ok) = (a + c, n - a - c);
        self.excess += a - n1 * failed / n;
        self.variance += n1 * n0 * failed * ok / (n * n * (n - 1.0));
        if n > 2.0 {
            self.third +=
                n1 * failed * ok * n0 * (ok - failed) * (n0 - n1) / (n * n * n * (n - 1.0) * (n - 2.0));
        }
    }

    /// The skewness of the score when both versions fail alike.
    pub fn skewness(&self) -> f64 {
        if self.variance <= 0.0 { 0.0 } else { self.third / self.variance.powf(1.5) }
    }

    /// The one-sided statistic: how many standard deviations the new version fails above the old one.
    pub fn z(&self) -> f64 {
        if self.variance <= 0.0 {
            return 0.0;
        }
        (self.excess - CORRECTION).max(0.0) / self.variance.sqrt()
    }
}

/// The outcome of [`worse`]: the z statistic, the critical value it was held to, and the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub z: f64,
    pub critical: f64,
    pub worse: bool,
}

/// Does the new version fail more than the old one, at a chance `alpha` of saying so when both fail alike?
pub fn worse(score: &Score, alpha: f64) -> Comparison {
    let normal = normal_quantile(1.0 - alpha);
    let critical = normal + score.skewness().max(0.0) * (normal * normal - 1.0) / 6.0;
    let z = score.z();
    Comparison { z, critical, worse: z > critical }
}

/// The standard normal distribution's quantile: the `z` with `P(Z <= z) = p`, for `0 < p < 1` (Acklam's
/// rational approximation, relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    let p = p.clamp(1e-15, 1.0 - 1e-15);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(periods: &[(f64, f64, f64, f64)]) -> Score {
        let mut s = Score::default();
        for (a, n1, c, n0) in periods {
            s.add(*a, *n1, *c, *n0);
        }
        s
    }

    #[test]
    fn quantiles_match_the_tables() {
        for (p, z) in
            [(0.5, 0.0), (0.9, 1.281_551_6), (0.95, 1.644_853_6), (0.99, 2.326_347_9), (0.001, -3.090_232_3)]
        {
            assert!((normal_quantile(p) - z).abs() < 1e-6, "{p}: {}", normal_quantile(p));
        }
        assert!((normal_quantile(1.0 - 1e-6) - 4.753_424_3).abs() < 1e-5);
    }

    #[test]
    fn alike_failures_are_not_a_difference() {
        // Both versions fail 5 %, or not at all, or always.
        assert!(!worse(&score(&[(50.0, 1000.0, 450.0, 9000.0)]), 0.05).worse);
        assert!(!worse(&score(&[(0.0, 100.0, 0.0, 900.0)]), 0.05).worse);
        assert!(!worse(&score(&[(100.0, 100.0, 900.0, 900.0)]), 0.05).worse);
        // One failure in 100 against none in 900 is within chance; against none in 9,000 it happens 1.1 %
        // of the time: not proof at 1 %, though z is 4.7.
        assert!(!worse(&score(&[(1.0, 100.0, 0.0, 900.0)]), 0.05).worse);
        let one = score(&[(1.0, 100.0, 0.0, 9000.0)]);
        assert!(one.z() > 4.0 && !worse(&one, 0.01).worse, "{:?}", worse(&one, 0.01));
    }

    #[test]
    fn a_worse_new_version_is_found_and_a_better_one_never() {
        let c = worse(&score(&[(45.0, 300.0, 15.0, 300.0)]), 0.05);
        assert!(c.worse && c.z > 3.0, "{c:?}");
        assert!(!worse(&score(&[(15.0, 300.0, 45.0, 300.0)]), 0.05).worse);
        // Nothing to compare with: no verdict.
        assert!(!worse(&score(&[(5.0, 10.0, 0.0, 0.0)]), 0.05).worse);
    }

    /// A failure both versions share late in a rollout, when the new version has most of the traffic, is
    /// not the new version's: pooled, the periods say it is (Simpson's paradox); stratified, they do not.
    #[test]
    fn a_shared_failure_late_in_a_rollout_is_not_blamed_on_the_new_version() {
        // 10 % new, nothing fails; then 90 % new while a dependency fails 20 % of everyone's requests.
        let periods = [(0.0, 100.0, 0.0, 900.0), (180.0, 900.0, 20.0, 100.0)];
        let (pooled_new, pooled_old) = ((180.0, 1000.0), (20.0, 1000.0));
        let pooled = score(&[(pooled_new.0, pooled_new.1, pooled_old.0, pooled_old.1)]);
        assert!(worse(&pooled, 0.01).worse, "pooled, the new version looks 9 times worse");
        assert!(!worse(&score(&periods), 0.01).worse, "{:?}", score(&periods));
    }

    #[test]
    fn a_smaller_chance_needs_more_evidence() {
        // z about 2.3: found at 5 %, not at 0.1 %.
        let s = score(&[(32.0, 500.0, 14.0, 500.0)]);
        assert!(worse(&s, 0.05).worse);
        assert!(!worse(&s, 0.001).worse);
    }
}
