//! The statistics of the judge: a one-sided test of two proportions. Pure.

/// The outcome of [`greater`]: the z statistic, the critical value it was held to, and the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub z: f64,
    pub critical: f64,
    pub greater: bool,
}

/// Is `x1 / n1` (the new version's share of failed requests) greater than `x2 / n2` (the old one's) at
/// `confidence` (0.95: wrong one time in twenty when both versions fail alike)? The one-sided z-test of two
/// proportions with the pooled standard error and Yates' continuity correction,
/// `z = (p1 - p2 - (1/n1 + 1/n2) / 2) / sqrt(p (1 - p) (1/n1 + 1/n2))`: without the correction a single
/// error among few requests (1 in 100 against 0 in 900) would count as proof. It needs enough requests on
/// both sides to be meaningful: the judge asks for `min-invocations` of each first.
pub fn greater(x1: f64, n1: f64, x2: f64, n2: f64, confidence: f64) -> Comparison {
    let critical = normal_quantile(confidence);
    if n1 <= 0.0 || n2 <= 0.0 {
        return Comparison { z: 0.0, critical, greater: false };
    }
    let (p1, p2) = (x1 / n1, x2 / n2);
    let pooled = (x1 + x2) / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    // Both all-good or both all-failed: no difference to find.
    if variance <= 0.0 {
        return Comparison { z: 0.0, critical, greater: false };
    }
    let correction = (1.0 / n1 + 1.0 / n2) / 2.0;
    let z = (p1 - p2 - correction).max(0.0) / variance.sqrt();
    Comparison { z, critical, greater: z > critical }
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
    let p = p.clamp(1e-12, 1.0 - 1e-12);
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

    #[test]
    fn quantiles_match_the_tables() {
        for (p, z) in
            [(0.5, 0.0), (0.9, 1.281_551_6), (0.95, 1.644_853_6), (0.99, 2.326_347_9), (0.001, -3.090_232_3)]
        {
            assert!((normal_quantile(p) - z).abs() < 1e-6, "{p}: {}", normal_quantile(p));
        }
    }

    #[test]
    fn alike_error_rates_are_not_a_difference() {
        // Both versions fail 5 %: the new one is not worse.
        assert!(!greater(50.0, 1000.0, 450.0, 9000.0, 0.95).greater);
        // One error in 100 against none in 900 is within chance.
        assert!(!greater(1.0, 100.0, 0.0, 900.0, 0.95).greater);
        assert!(!greater(0.0, 100.0, 0.0, 900.0, 0.95).greater);
        assert!(!greater(100.0, 100.0, 900.0, 900.0, 0.95).greater);
    }

    #[test]
    fn a_worse_new_version_is_found() {
        // 15 % against 5 %, a few hundred requests each.
        let c = greater(45.0, 300.0, 15.0, 300.0, 0.95);
        assert!(c.greater && c.z > 3.0, "{c:?}");
        // Better is never "greater".
        assert!(!greater(15.0, 300.0, 45.0, 300.0, 0.95).greater);
        // Nothing to compare with: no verdict.
        assert!(!greater(5.0, 10.0, 0.0, 0.0, 0.95).greater);
    }

    #[test]
    fn a_higher_confidence_needs_more_evidence() {
        // z = 1.9: significant at 95 %, not at 99 %.
        let (x1, n1, x2, n2) = (32.0, 500.0, 18.0, 500.0);
        assert!(greater(x1, n1, x2, n2, 0.95).greater);
        assert!(!greater(x1, n1, x2, n2, 0.99).greater);
    }
}
