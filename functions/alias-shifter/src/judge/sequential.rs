//! The false-rollback budget of a rollout, spent over its judgements. Pure.
//!
//! Every judgement of a rollout tests the new version again, on more data: at 5 % per test, nine tests of
//! two identical versions roll a quarter of the rollouts back. So the rollout has one budget, `1 −
//! error-rate-confidence` (the chance of rolling back a version no worse than the old one), and each
//! judgement may spend a share of it; the shares add up to the budget, so whatever the correlation between
//! the judgements, the rollout's chance of a false rollback stays within it (Bonferroni's inequality; the
//! alpha-spending idea of Lan and DeMets, with a union bound instead of their joint distribution, which a
//! judgement whose window grows by an unknown amount of traffic cannot rely on).
//!
//! The shares follow the information each judgement adds, planned from the weights (a weight `w` splits a
//! period's requests `w : 1 − w`, and a comparison learns in proportion to `w (1 − w)`), with
//! [`FINAL_SHARE`] kept for the last judgement before the switch, which sees the most: a badly broken
//! version is found early, a subtle difference late. With a bake, [`BAKE_SHARE`] of the budget is kept for
//! its checks. A judgement that finds too little traffic to compare makes no test and spends nothing, so
//! the next one (a longer window) has the same share.

/// The share of a phase's budget kept for its last judgement.
pub const FINAL_SHARE: f64 = 0.9;
/// The share of the rollout's budget kept for the bake, when there is one.
pub const BAKE_SHARE: f64 = 0.2;

/// Which judgement of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// The weight at this index (0-based), and its extra intervals.
    Weight(usize),
    /// The approval gate before the switch, after the last weight passed: the wait is judged.
    Gate,
    /// A check of the bake (1-based) of `checks`.
    Bake { check: u32, checks: u32 },
}

/// The rollout's shape, as far as the budget is concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'a> {
    /// The whole budget: `1 − error-rate-confidence`.
    pub alpha: f64,
    pub weights: &'a [f64],
    /// Whether an approval gate judges the wait before the switch.
    pub gate: bool,
    /// The bake's checks (0: no bake).
    pub bake_checks: u32,
}

impl Plan<'_> {
    /// The share of the budget `test` may spend.
    pub fn allowance(&self, test: Test) -> f64 {
        let weighted = !self.weights.is_empty();
        let bake = if self.bake_checks == 0 {
            0.0
        } else if weighted {
            self.alpha * BAKE_SHARE
        } else {
            self.alpha
        };
        match test {
            Test::Bake { check, checks } => spend(bake, &vec![1.0; checks as usize], check as usize - 1),
            Test::Weight(_) | Test::Gate if !weighted => 0.0,
            Test::Weight(k) => spend(self.alpha - bake, &self.planned(), k.min(self.weights.len() - 1)),
            Test::Gate if self.gate => spend(self.alpha - bake, &self.planned(), self.weights.len()),
            Test::Gate => 0.0,
        }
    }

    /// The information each judgement before the switch adds: `w (1 − w)` per weight, and the gate's wait
    /// at the last weight.
    fn planned(&self) -> Vec<f64> {
        let mut q: Vec<f64> = self.weights.iter().map(|w| w * (1.0 - w)).collect();
        if self.gate {
            q.push(q.last().copied().unwrap_or(0.0));
        }
        q
    }
}

/// The share of `budget` for judgement `k` of those whose information is `q`: [`FINAL_SHARE`] for the last,
/// the rest in proportion to the information up to each.
fn spend(budget: f64, q: &[f64], k: usize) -> f64 {
    let cumulative = |i: usize| -> f64 {
        if i + 1 >= q.len() {
            return budget;
        }
        let before_last: f64 = q[..q.len() - 1].iter().sum();
        let so_far: f64 = q[..=i].iter().sum();
        if before_last <= 0.0 { 0.0 } else { budget * (1.0 - FINAL_SHARE) * so_far / before_last }
    };
    if k >= q.len() {
        return 0.0;
    }
    let before = if k == 0 { 0.0 } else { cumulative(k - 1) };
    (cumulative(k) - before).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear() -> Vec<f64> {
        (1..10).map(|i| f64::from(i) / 10.0).collect()
    }

    #[test]
    fn the_shares_add_up_to_the_budget() {
        let weights = linear();
        let plan = Plan { alpha: 0.01, weights: &weights, gate: false, bake_checks: 0 };
        let total: f64 = (0..9).map(|k| plan.allowance(Test::Weight(k))).sum();
        assert!((total - 0.01).abs() < 1e-12, "{total}");
        assert!((plan.allowance(Test::Weight(8)) - 0.009).abs() < 1e-12);
        // The middle weights learn most: w (1 - w) peaks at one half.
        assert!(plan.allowance(Test::Weight(4)) > plan.allowance(Test::Weight(0)));
        assert_eq!(plan.allowance(Test::Gate), 0.0, "no gate, no share");
    }

    #[test]
    fn a_gate_and_a_bake_have_their_shares() {
        let weights = linear();
        let plan = Plan { alpha: 0.01, weights: &weights, gate: true, bake_checks: 4 };
        let before: f64 =
            (0..9).map(|k| plan.allowance(Test::Weight(k))).sum::<f64>() + plan.allowance(Test::Gate);
        let bake: f64 = (1..=4).map(|check| plan.allowance(Test::Bake { check, checks: 4 })).sum();
        assert!((before - 0.008).abs() < 1e-12 && (bake - 0.002).abs() < 1e-12, "{before} {bake}");
        assert!((plan.allowance(Test::Gate) - 0.008 * FINAL_SHARE).abs() < 1e-12);
    }

    #[test]
    fn a_canary_spends_its_budget_at_once_and_all_at_once_in_its_bake() {
        let canary = [0.1];
        let plan = Plan { alpha: 0.05, weights: &canary, gate: false, bake_checks: 0 };
        assert_eq!(plan.allowance(Test::Weight(0)), 0.05);
        let plan = Plan { alpha: 0.05, weights: &[], gate: false, bake_checks: 1 };
        assert_eq!(plan.allowance(Test::Bake { check: 1, checks: 1 }), 0.05);
        assert_eq!(plan.allowance(Test::Weight(0)), 0.0);
    }
}
