use serde_json::json;

use super::*;
use crate::rollout::Rollout;
use crate::rollout::schedule::Kind;

fn call_field(v: Value) -> String {
    Request::parse(&v).err().map(|e| e.field).unwrap_or_else(|| "(accepted)".into())
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
    assert_eq!(call_field(json!({"mode": "step", "state": {"x": 1}})), "state");
    assert_eq!(call_field(json!({"mode": "jump"})), "mode");
    assert_eq!(call_field(json!({"mode": "step", "rollout": {}})), "rollout");
    assert_eq!(call_field(json!({"mode": "step", "extra": 1})), "extra");
    let abort = json!({"mode": "abort", "function-name": "f", "alias-name": "live", "reason": "p99"});
    assert!(
        matches!(Request::parse(&abort), Ok(Request::Abort(t, why)) if t.alias_name == "live" && why == "p99")
    );
    assert_eq!(call_field(json!({"mode": "abort", "function-name": "f"})), "alias-name");
    assert_eq!(
        call_field(json!({"mode": "promote", "function-name": "f", "alias-name": "live", "reason": "x"})),
        "reason"
    );
    assert_eq!(call_field(json!({"mode": "request-approval", "state": {}})), "task-token");
}
