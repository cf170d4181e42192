use serde_json::json;

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
    assert_eq!(field(with("function-name", json!("my fn"))), "function-name");
    assert_eq!(field(with("alias-name", json!("42"))), "alias-name");
    assert_eq!(field(with("new-version", json!("$LATEST"))), "new-version");
    assert_eq!(field(with("new-version", json!("v2"))), "new-version");
    assert_eq!(field(with("steps", json!(0))), "steps");
    assert_eq!(field(with("steps", json!(101))), "steps");
    assert_eq!(field(with("interval", json!(-1))), "interval");
    assert_eq!(field(with("interval", json!(1.5))), "interval");
    assert_eq!(field(with("type", json!("blue-green"))), "type");
    assert_eq!(field(with("weights", json!([0.5, 0.2]))), "weights");
    assert_eq!(field(with("canary-weight", json!(1.0))), "canary-weight");
    assert_eq!(field(with("max-error-rate", json!(2))), "max-error-rate");
    assert_eq!(field(with("alarms", json!([""]))), "alarms");
    assert_eq!(field(with("health-check", json!("yes"))), "health-check");
    assert_eq!(field(with("notification-topic-arn", json!("arn:aws:sqs:r:1:q"))), "notification-topic-arn");
    assert_eq!(field(with("new_version", json!(2))), "new_version");
    assert_eq!(field(with("publish", json!(true))), "new-version");
}

#[test]
fn types_and_modes() {
    let r = Rollout::parse(&json!({"function-name": "f", "alias-name": "live", "new-version": "3",
        "type": "canary", "canary-weight": 0.05, "interval": "300"}))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.weights.clone(), r.interval), (vec![0.05], 300));
    let r = Rollout::parse(
        &json!({"function-name": "f", "alias-name": "live", "publish": true, "weights": [0.1, 0.5]}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.kind, r.new_version), (Kind::Custom, None));

    let start =
        json!({"mode": "start", "rollout": {"function-name": "f", "alias-name": "live", "new-version": 2}});
    assert!(matches!(Request::parse(&start), Ok(Request::Start(_))));
    let bad = Request::parse(&json!({"mode": "step", "state": {"x": 1}})).err().map(|e| e.field);
    assert_eq!(bad.as_deref(), Some("state"));
    let bad = Request::parse(&json!({"mode": "jump"})).err().map(|e| e.field);
    assert_eq!(bad.as_deref(), Some("mode"));
}
