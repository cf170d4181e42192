use serde_json::{Value, json};

use super::*;

fn field(v: Value) -> String {
    Rollout::parse(&v).err().map(|e| e.field).unwrap_or_else(|| "(accepted)".into())
}

#[test]
fn the_sample_payload_is_accepted_unchanged() {
    let r =
        Rollout::parse(&json!({"function-name": "MyFunction", "alias-name": "MyAlias", "new-version": "2",
        "steps": 10, "interval": 120, "type": "linear", "health-check": true}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.new_version.as_deref(), Some("2"));
    assert_eq!(r.weights.len(), 9);
    assert_eq!(r.interval, 120);
    assert_eq!(r.resource(), "MyFunction:MyAlias");
    // Today's behaviour: any error fails a step; no comparison, no bake, no gate.
    assert_eq!((r.max_error_rate, r.error_rate_confidence, r.max_duration_ratio), (0.0, None, None));
    assert_eq!((r.bake_seconds, r.approval, r.max_extensions), (0, false, 2));
    assert_eq!(r.min_invocations_floor(), 1.0);
}

#[test]
fn every_bad_field_is_named() {
    let base = json!({"function-name": "f", "alias-name": "live", "new-version": 2});
    let with = |k: &str, v: Value| {
        let mut p = base.clone();
        p[k] = v;
        p
    };
    assert_eq!(field(base.clone()), "(accepted)");
    assert_eq!(field(json!({"alias-name": "live", "new-version": 2})), "function-name");
    for (k, v) in [
        ("function-name", json!("my fn")),
        ("alias-name", json!("42")),
        ("new-version", json!("$LATEST")),
        ("new-version", json!("v2")),
        ("steps", json!(0)),
        ("steps", json!(101)),
        ("interval", json!(-1)),
        ("interval", json!(1.5)),
        ("type", json!("blue-green")),
        ("canary-weight", json!(1.0)),
        ("max-error-rate", json!(2)),
        ("alarms", json!([""])),
        ("health-check", json!("yes")),
        ("notification-topic-arn", json!("arn:aws:sqs:r:1:q")),
        ("error-rate-confidence", json!(0.3)),
        ("max-duration-ratio", json!(0.9)),
        ("max-throttle-rate", json!(-0.1)),
        ("max-extensions", json!(11)),
        ("bake-seconds", json!("soon")),
        ("pre-traffic-function", json!("a b")),
        ("post-traffic-function", json!("")),
        ("approval", json!("yes")),
        ("approval-timeout", json!(10)),
    ] {
        assert_eq!(field(with(k, v.clone())), k, "{k}: {v}");
    }
    assert_eq!(field(with("weights", json!([0.5, 0.2]))), "weights");
    assert_eq!(field(with("new_version", json!(2))), "new_version");
    assert_eq!(field(with("publish", json!(true))), "new-version");
}

#[test]
fn hooks_may_be_named_qualified_or_by_arn() {
    let base = json!({"function-name": "f", "alias-name": "live", "new-version": 2});
    for hook in [
        "smoke",
        "smoke:live",
        "smoke:7",
        "smoke:$LATEST",
        "arn:aws:lambda:us-east-1:123456789012:function:smoke:live",
    ] {
        let mut p = base.clone();
        p["pre-traffic-function"] = json!(hook);
        assert_eq!(field(p), "(accepted)", "{hook}");
    }
    assert_eq!(short_name("arn:aws:lambda:us-east-1:123456789012:function:smoke:live"), "smoke");
    assert_eq!(short_name("smoke:live"), "smoke");
}

#[test]
fn a_rollout_handed_back_must_be_one_parse_accepts() {
    let r = Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "new-version": "3",
        "type": "custom", "weights": [0.1, 0.5], "bake-seconds": 60, "error-rate-confidence": 0.95}))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.recheck(), Ok(()));
    let published = Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "publish": true}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(published.recheck(), Ok(()));
    let forged = Rollout { max_error_rate: 7.0, ..r.clone() };
    assert_eq!(forged.recheck().err().map(|e| e.field).as_deref(), Some("state.rollout.max-error-rate"));
    // Linear weights follow from the steps: other weights are not what start accepted.
    let linear =
        Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "new-version": "3", "steps": 4}))
            .unwrap_or_else(|e| panic!("{e}"));
    let forged = Rollout { weights: vec![0.1, 0.9], ..linear };
    assert_eq!(forged.recheck().err().map(|e| e.field).as_deref(), Some("state.rollout"));
}

/// With the comparison on and no threshold given, one error is not a failure: the comparison with the old
/// version decides.
#[test]
fn a_comparison_without_a_threshold_is_judged_by_the_comparison() {
    use crate::judge::health::{self, Baseline, Evidence, Figures, Verdict};
    use crate::judge::stats::Score;
    let r = Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "new-version": "3",
        "error-rate-confidence": 0.95}))
    .unwrap_or_else(|e| panic!("{e}"));
    let fig = |invocations, errors| Figures { invocations, errors, ..Figures::default() };
    let old = fig(9000.0, 10.0);
    let mut failures = Score::default();
    failures.add(1.0, 1000.0, 10.0, 9000.0);
    let e = Evidence {
        new: fig(1000.0, 1.0),
        so_far: None,
        baseline: Some(Baseline { label: "version 2", figures: &old }),
        failures,
    };
    assert_eq!(health::judge(&e, &r.criteria()), Verdict::Healthy);
    // Given, the threshold still holds.
    let strict = Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "new-version": "3",
        "error-rate-confidence": 0.95, "max-error-rate": 0}))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(health::judge(&e, &strict.criteria()), Verdict::Unhealthy(_)));
}
