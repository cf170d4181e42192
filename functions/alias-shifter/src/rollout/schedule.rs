//! Weight schedules: the share of the alias's traffic the new version gets at each step. Pure.
//!
//! Every schedule is strictly increasing within (0, 1). The last step is not a weight: the alias's primary
//! version is switched to the new one with no additional weights (an alias routes to at most two versions,
//! and a weight of 1.0 left behind would pin the old version as primary).

use serde::{Deserialize, Serialize};

/// Weights are kept to 4 decimals (0.01 %), the precision anyone reads them at.
const PRECISION: f64 = 10_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Kind {
    /// `steps` equal increments: 1/steps, 2/steps, ... then all.
    Linear,
    /// One step at `canary-weight`, then all.
    Canary,
    /// From `canary-weight`, doubling while under 1, then all.
    Exponential,
    /// Straight to the new version.
    AllAtOnce,
    /// The `weights` given.
    Custom,
}

pub fn round(w: f64) -> f64 {
    (w * PRECISION).round() / PRECISION
}

/// The routed weights before the switch; the error names what is wrong (the caller knows the field).
pub fn weights(kind: Kind, steps: u32, canary_weight: f64, custom: &[f64]) -> Result<Vec<f64>, String> {
    let out = match kind {
        Kind::Linear => (1..steps).map(|i| round(f64::from(i) / f64::from(steps))).collect(),
        Kind::Canary => vec![round(canary_weight)],
        Kind::Exponential => {
            let mut out = Vec::new();
            let mut w = canary_weight;
            while w < 1.0 {
                out.push(round(w));
                w *= 2.0;
            }
            out
        }
        Kind::AllAtOnce => Vec::new(),
        Kind::Custom => custom.iter().copied().map(round).collect(),
    };
    check(&out)?;
    Ok(out)
}

/// Strictly increasing, each within (0, 1) after rounding.
pub fn check(weights: &[f64]) -> Result<(), String> {
    for (i, w) in weights.iter().enumerate() {
        if !(*w > 0.0 && *w < 1.0) {
            return Err(format!("weight {w} (step {}) is not between 0 and 1, both excluded", i + 1));
        }
        if i > 0 && *w <= weights[i - 1] {
            return Err(format!(
                "weight {w} (step {}) is not above the step before ({})",
                i + 1,
                weights[i - 1]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_never_repeats_or_falls_for_any_step_count() {
        for steps in 1..=100 {
            let w = weights(Kind::Linear, steps, 0.1, &[]).unwrap_or_else(|e| panic!("{steps}: {e}"));
            assert_eq!(w.len(), usize::try_from(steps - 1).unwrap_or(0), "{steps}");
            assert_eq!(check(&w), Ok(()), "{steps}");
        }
        assert_eq!(weights(Kind::Linear, 4, 0.1, &[]), Ok(vec![0.25, 0.5, 0.75]));
        assert_eq!(weights(Kind::Linear, 3, 0.1, &[]), Ok(vec![0.3333, 0.6667]));
        assert_eq!(weights(Kind::Linear, 1, 0.1, &[]), Ok(vec![]));
    }

    #[test]
    fn a_canary_is_one_weight() {
        assert_eq!(weights(Kind::Canary, 10, 0.1, &[]), Ok(vec![0.1]));
    }

    #[test]
    fn exponential_doubles_while_under_one() {
        assert_eq!(weights(Kind::Exponential, 10, 0.05, &[]), Ok(vec![0.05, 0.1, 0.2, 0.4, 0.8]));
        assert_eq!(weights(Kind::Exponential, 10, 0.5, &[]), Ok(vec![0.5]));
    }

    #[test]
    fn all_at_once_has_no_weights() {
        assert_eq!(weights(Kind::AllAtOnce, 10, 0.1, &[]), Ok(vec![]));
    }

    #[test]
    fn kinds_parse_from_their_payload_names() {
        for (name, kind) in
            [("linear", Kind::Linear), ("all-at-once", Kind::AllAtOnce), ("custom", Kind::Custom)]
        {
            assert_eq!(name.parse::<Kind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap_or_default(), name);
        }
        assert!("blue-green".parse::<Kind>().is_err());
    }

    #[test]
    fn custom_weights_must_rise_within_the_open_interval() {
        assert_eq!(weights(Kind::Custom, 0, 0.0, &[0.01, 0.1, 0.5]), Ok(vec![0.01, 0.1, 0.5]));
        assert!(weights(Kind::Custom, 0, 0.0, &[0.1, 0.1]).unwrap_err().contains("not above"));
        assert!(weights(Kind::Custom, 0, 0.0, &[0.5, 0.2]).unwrap_err().contains("step 2"));
        assert!(weights(Kind::Custom, 0, 0.0, &[0.5, 1.0]).unwrap_err().contains("between 0 and 1"));
        assert!(weights(Kind::Custom, 0, 0.0, &[0.0]).is_err());
        // Distinct inputs that round to the same weight are refused, not silently merged.
        assert!(weights(Kind::Custom, 0, 0.0, &[0.10001, 0.10002]).is_err());
    }
}
