//! alias-shifter against the emulator, with the real SDK. The emulator's traffic generator sends
//! invocations through the alias split by its live weights and reports them as Lambda does (stamped with
//! their start, visible after they end plus a lag), so steps are judged on second-scale windows: versions
//! time out after 1 s, the metric period is 1 s, the metric delay 1 s.

mod judging;
mod state_machine;

use std::collections::HashMap;
use std::time::Duration;

use alias_shifter::{Config, Deps, Error, Reply, State, Status, StepDecision, handler};
use integration_tests::traffic::{Behaviour, Traffic};
use integration_tests::{World, sample_event};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::config::Env;
use shared::edge::ErrorType;
use shared::notify::Notification;

/// The shifter's settings, with 1-second metric periods (the emulator's resolution) unless given.
fn deps(world: &World, env: &[(&str, &str)]) -> Deps {
    let mut map: HashMap<&str, &str> = HashMap::from([("METRIC_PERIOD_SECONDS", "1")]);
    map.extend(env.iter().copied());
    Deps::new(&world.sdk, Config::from_env(Env::from_map(&map)).expect("config"))
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Reply, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

/// An invocation that returns a rollout's state.
async fn call(deps: &Deps, payload: Value) -> Result<State, Error> {
    match invoke(deps, payload).await? {
        Reply::State(s) => Ok(*s),
        Reply::Control(c) => panic!("a control report, not a state: {c:?}"),
    }
}

/// Function `api` with versions 1-3 (each times out after 1 s) and alias `live` on 1.
async fn world() -> World {
    let world = World::new().await;
    world.function_with_timeout("api", 3, 1).await;
    world.emulator.reset_calls();
    world
}

/// A rollout of `api:live` to version 2: 3 linear steps of 1 s, judged 1 s after their traffic ended.
fn rollout(extra: Value) -> Value {
    let mut p = json!({"function-name": "api", "alias-name": "live", "new-version": "2", "steps": 3,
        "interval": 1, "metric-delay": 1, "type": "linear", "health-check": true});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// 40 requests a second through `api:live`, visible 300 ms after each ends.
fn traffic(world: &World, versions: &[(&str, Behaviour)]) {
    world.emulator.traffic("api", "live", &Traffic { rate: 40.0, lag_ms: 300, versions });
}

const FAST: Behaviour = Behaviour { error_rate: 0.0, duration_ms: 50.0, hang_rate: 0.0, throttle_rate: 0.0 };

/// Sleeps until the state's next judgement is due, as the state machine's Wait state does.
async fn wait(state: &State) {
    tokio::time::sleep(Duration::from_secs(state.wait_seconds)).await;
}

async fn alias(world: &World) -> (String, HashMap<String, f64>) {
    world.alias("api", "live").await
}

async fn description(world: &World) -> String {
    let out = world.lambda.get_alias().function_name("api").name("live").send().await.unwrap();
    out.description().unwrap_or_default().to_owned()
}

fn on_one() -> (String, HashMap<String, f64>) {
    ("1".into(), HashMap::new())
}

#[tokio::test]
async fn a_healthy_linear_rollout_ends_on_the_new_version_with_no_weights() {
    integration_tests::needs_emulator!();
    let world = world().await;
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state = call(&deps(&world, &[]), rollout(json!({}))).await.unwrap();

    assert_eq!(state.status, Status::Succeeded, "{state:#?}");
    assert_eq!(alias(&world).await, ("2".into(), HashMap::new()));
    assert_eq!(description(&world).await, "", "the alias's own description is back");
    let decisions: Vec<(StepDecision, f64)> = state.steps.iter().map(|s| (s.decision, s.weight)).collect();
    assert_eq!(
        decisions,
        [(StepDecision::Healthy, 0.3333), (StepDecision::Healthy, 0.6667), (StepDecision::Switched, 1.0)]
    );
    // Each step was judged on its own traffic, once complete: both versions measured.
    for s in &state.steps[..2] {
        let (new, old) = (s.new.unwrap(), s.old.unwrap());
        assert!(new.invocations > 0.0 && old.invocations > 0.0, "{s:?}");
        assert!(s.judged_at.unwrap() >= s.window.unwrap().judge_at);
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 3);
    assert_eq!(world.emulator.calls_of("monitoring:GetMetricData"), 2, "one call per judgement");
    assert_eq!(state.notification, Some(Notification::Off));
}

/// Each call of the state machine with the state the previous one returned; an early call changes nothing.
#[tokio::test]
async fn step_mode_judges_once_the_traffic_is_complete_and_rolls_back_on_errors() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({"max-error-rate": 0.05}))}))
        .await
        .unwrap();
    assert_eq!(state.status, Status::Shifting);
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.3333)]));
    let mark = description(&world).await;
    assert!(mark.contains(": 1 -> 2, weight 1 of 2 since "), "the shift's mark: {mark}");
    assert!(state.wait_seconds >= 3, "1 s of traffic, 1 s timeout, 1 s delay: {}", state.wait_seconds);

    let early = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!((early.status, early.steps.len()), (Status::Shifting, 0), "too early: nothing judged");
    wait(&early).await;
    let state = call(&deps, json!({"mode": "step", "state": early})).await.unwrap();
    assert_eq!((state.status, state.steps[0].decision), (Status::Shifting, StepDecision::Healthy));
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.6667)]));

    traffic(&world, &[("1", FAST), ("2", Behaviour::errors(0.5))]);
    wait(&state).await;
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.steps[1].decision, StepDecision::Unhealthy);
    assert!(state.reason.as_deref().unwrap().contains("above max-error-rate 5.00%"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());
    assert_eq!(description(&world).await, "");

    // A late call with the final state changes nothing.
    world.emulator.reset_calls();
    let again = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(again.status, Status::RolledBack);
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
}

#[tokio::test]
async fn an_api_error_mid_way_rolls_back_naming_the_call() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    wait(&state).await;
    world.emulator.fail("GetMetricData", 1, "AccessDenied");
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack);
    assert!(state.reason.as_deref().unwrap().contains("GetMetricData"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());
}

/// The state machine's `Catch` (a step timed out or crashed) calls rollback with the state and the error.
#[tokio::test]
async fn the_failure_branch_rolls_back_with_the_caught_error_once() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let mut state = serde_json::to_value(
        call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap(),
    )
    .unwrap();
    // ResultPath "$.error" keeps the state and adds the error next to it.
    state["error"] = json!({"Error": "States.Timeout", "Cause": "the step ran over its time"});
    let payload = json!({"mode": "rollback", "state": state, "error": state["error"]});
    let rolled = call(&deps, payload.clone()).await.unwrap();
    assert_eq!(rolled.status, Status::RolledBack);
    assert_eq!(
        rolled.reason.as_deref(),
        Some("the state machine's step failed: States.Timeout: the step ran over its time")
    );
    assert_eq!(alias(&world).await, on_one());

    // Delivered twice: the alias is already back, so nothing more is changed.
    world.emulator.reset_calls();
    let again = call(&deps, payload).await.unwrap();
    assert_eq!(again.status, Status::RolledBack);
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
}

#[tokio::test]
async fn a_concurrent_alias_change_aborts_the_shift() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let routing = |weights: HashMap<String, f64>| {
        aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(weights))
            .build()
    };
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    // Someone raises the weight by hand: the shift notices (RevisionId) and rolls the alias back.
    let half = routing(HashMap::from([("2".to_owned(), 0.5)]));
    world.lambda.update_alias().function_name("api").name("live").routing_config(half).send().await.unwrap();
    let rolled = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(rolled.status, Status::RolledBack);
    assert!(rolled.reason.as_deref().unwrap().contains("changed since this shift set it"));
    assert_eq!(alias(&world).await, on_one());

    // Someone moves the alias elsewhere: that is left as found, only the shift's mark is taken off.
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    let none = routing(HashMap::new());
    world
        .lambda
        .update_alias()
        .function_name("api")
        .name("live")
        .function_version("3")
        .routing_config(none)
        .send()
        .await
        .unwrap();
    let left = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(left.status, Status::LeftAsFound);
    assert_eq!(alias(&world).await, ("3".into(), HashMap::new()));
    assert_eq!(description(&world).await, "");
}

#[tokio::test]
async fn every_validation_error_names_its_field() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let busy = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
        .additional_version_weights("3", 0.1)
        .build();
    world
        .lambda
        .create_alias()
        .function_name("api")
        .name("busy")
        .function_version("1")
        .routing_config(busy)
        .send()
        .await
        .unwrap();
    world
        .lambda
        .create_alias()
        .function_name("api")
        .name("marked")
        .function_version("1")
        .description("shipshape alias-shifter shift 20260101T000000.000Z: 1 -> 2, baking")
        .send()
        .await
        .unwrap();
    let deps_all = deps(&world, &[("HOOK_FUNCTIONS", "smoke")]);
    let cases = [
        (json!({"function-name": "nope"}), "function-name", "no function nope"),
        (json!({"alias-name": "missing"}), "alias-name", "has no alias missing"),
        (json!({"alias-name": "busy"}), "alias-name", "already in progress"),
        (json!({"alias-name": "marked"}), "alias-name", "a shift is in progress"),
        (json!({"new-version": "9"}), "new-version", "has no version 9"),
        (json!({"new-version": "1"}), "new-version", "already the primary"),
        (json!({"new-version": "$LATEST"}), "new-version", "$LATEST"),
        (json!({"alarms": ["no-such-alarm"]}), "alarms", "no-such-alarm"),
        (json!({"steps": 0}), "steps", "from 1 to 100"),
        (json!({"interval": "soon"}), "interval", "whole number"),
        (json!({"pre-traffic-function": "other"}), "pre-traffic-function", "HOOK_FUNCTIONS"),
        (json!({"approval": true}), "approval", "state machine"),
        (json!({"max-duration-ratio": 0.5}), "max-duration-ratio", "from 1 to 100"),
    ];
    for (extra, field, fragment) in cases {
        let err = invoke(&deps_all, rollout(extra.clone())).await.expect_err(&extra.to_string());
        let Error::InvalidInput(e) = &err else { panic!("{extra}: {err}") };
        assert_eq!(e.field, field, "{extra}: {err}");
        assert!(err.to_string().contains(fragment), "{extra}: {err}");
        assert_eq!(err.error_type(), "InvalidInput");
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(alias(&world).await, on_one());
}

/// An alias on `$LATEST` cannot take weights, and a rollback to it would route to whatever code `$LATEST`
/// holds then, which nobody judged: a shift from it is refused before any change, even all at once.
#[tokio::test]
async fn a_shift_from_latest_is_refused_before_any_change() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world
        .lambda
        .create_alias()
        .function_name("api")
        .name("edge")
        .function_version("$LATEST")
        .send()
        .await
        .unwrap();
    for kind in ["all-at-once", "linear"] {
        let payload =
            rollout(json!({"alias-name": "edge", "type": kind, "health-check": false, "bake-seconds": 1}));
        let err = invoke(&deps(&world, &[]), payload).await.expect_err(kind);
        let Error::InvalidInput(e) = &err else { panic!("{kind}: {err}") };
        assert_eq!(e.field, "alias-name", "{kind}: {err}");
        assert!(err.to_string().contains("$LATEST"), "{kind}: {err}");
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(world.alias("api", "edge").await, ("$LATEST".into(), HashMap::new()));
}

#[tokio::test]
async fn a_function_not_allowed_is_refused_in_every_mode_before_any_change() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let only_worker = deps(&world, &[("ALLOWED_FUNCTIONS", "worker")]);
    let err = invoke(&only_worker, rollout(json!({}))).await.unwrap_err();
    assert!(err.to_string().contains("ALLOWED_FUNCTIONS"), "{err}");
    // A state that another shifter (with api allowed) returned is refused too, and so are the controls.
    let state =
        call(&deps(&world, &[]), json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    world.emulator.reset_calls();
    for payload in [
        json!({"mode": "step", "state": state}),
        json!({"mode": "rollback", "state": state}),
        json!({"mode": "abort", "function-name": "api", "alias-name": "live"}),
    ] {
        let err = invoke(&only_worker, payload).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput", "{err}");
        assert!(err.to_string().contains("ALLOWED_FUNCTIONS"), "{err}");
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.3333)]));
}

/// A state handed back by a caller is checked against the alias as it is: forged or stale, it is refused
/// by name and nothing is changed.
#[tokio::test]
async fn a_forged_or_stale_state_is_refused_and_the_alias_untouched() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let first = call(&deps, json!({"mode": "start", "rollout": rollout(json!({"steps": 4}))})).await.unwrap();
    wait(&first).await;
    let between = call(&deps, json!({"mode": "step", "state": first.clone()})).await.unwrap();
    wait(&between).await;
    let second = call(&deps, json!({"mode": "step", "state": between})).await.unwrap();
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.75)]));
    let marked = description(&world).await;
    world.emulator.reset_calls();

    let good = serde_json::to_value(&second).unwrap();
    let forged = |field: &str, value: Value| {
        let mut s = good.clone();
        s[field] = value;
        s
    };
    let cases = [
        // "Roll back" to a version that was never the primary.
        ("rollback", forged("original-version", json!("3")), "StateMismatch"),
        // Another shift's id.
        ("step", forged("started-at", json!("2020-01-01T00:00:00Z")), "StateMismatch"),
        // The rollout's thresholds out of their range.
        (
            "step",
            {
                let mut s = good.clone();
                s["rollout"]["max-error-rate"] = json!(5);
                s
            },
            "InvalidInput",
        ),
        // The first step's state, delivered again two steps later (one step later is a retry: see
        // a_retried_step_takes_over_what_its_first_attempt_did).
        ("step", serde_json::to_value(&first).unwrap(), "StateMismatch"),
    ];
    for (mode, state, error) in cases {
        let err = invoke(&deps, json!({"mode": mode, "state": state})).await.expect_err(mode);
        assert_eq!(err.error_type(), error, "{err}");
        assert!(err.to_string().contains("nothing was changed") || error == "InvalidInput", "{err}");
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.75)]));
    assert_eq!(description(&world).await, marked);
}

/// The mark vouches for the whole rollout, not only its shift and versions: a state whose criteria, hooks,
/// timing or requests were changed is refused before anything is judged or changed.
#[tokio::test]
async fn a_state_with_a_changed_rollout_or_timing_is_refused() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", Behaviour::errors(0.5))]);
    let started =
        call(&deps, json!({"mode": "start", "rollout": rollout(json!({"type": "canary"}))})).await.unwrap();
    let marked = description(&world).await;
    let good = serde_json::to_value(&started).unwrap();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut s = good.clone();
        edit(&mut s);
        s
    };
    world.emulator.reset_calls();
    let cases = [
        // Judged on nothing but alarms (none): promoted at once.
        ("health-check", with(&|s| s["rollout"]["health-check"] = json!(false))),
        ("max-error-rate", with(&|s| s["rollout"]["max-error-rate"] = json!(1))),
        ("timeout-seconds", with(&|s| s["timeout-seconds"] = json!(0))),
        ("step-started-at", with(&|s| s["step-started-at"] = json!("2020-01-01T00:00:00Z"))),
        ("alias-description", with(&|s| s["alias-description"] = json!("restored by a forger"))),
    ];
    // Baking before the switch would "finish" the rollout with the new version never the primary.
    let baking =
        invoke(&deps, json!({"mode": "step", "state": with(&|s| s["status"] = json!("baking"))})).await;
    assert_eq!(baking.unwrap_err().error_type(), "InvalidInput");
    for (what, state) in cases {
        let err = invoke(&deps, json!({"mode": "step", "state": state})).await.expect_err(what);
        assert_eq!(err.error_type(), "StateMismatch", "{what}: {err}");
    }
    // A promotion nobody asked for, or a judgement time before the traffic is in, changes nothing either.
    let promoted = call(&deps, json!({"mode": "step", "state": with(&|s| s["promote"] = json!(true))})).await;
    let early = call(
        &deps,
        json!({"mode": "step", "state": with(&|s| s["judge-at"] = json!("2020-01-01T00:00:00Z"))}),
    );
    for state in [promoted.unwrap(), early.await.unwrap()] {
        assert_eq!((state.status, state.steps.len()), (Status::Shifting, 0), "{state:#?}");
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(world.emulator.calls_of("monitoring:GetMetricData"), 0, "nothing judged");
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.1)]));
    assert_eq!(description(&world).await, marked);
}

/// HOOK_FUNCTIONS holds in every mode: a running shift's hook that is no longer allowed is not invoked.
#[tokio::test]
async fn a_hook_no_longer_allowed_is_not_invoked() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("check", 1).await;
    world.emulator.answer_with("check", json!({"passed": true}));
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let payload = rollout(json!({"type": "canary", "post-traffic-function": "check"}));
    let started =
        call(&deps(&world, &[("HOOK_FUNCTIONS", "check")]), json!({"mode": "start", "rollout": payload}))
            .await
            .unwrap();
    wait(&started).await;
    let err = invoke(&deps(&world, &[]), json!({"mode": "step", "state": started})).await.unwrap_err();
    let Error::InvalidInput(e) = &err else { panic!("{err}") };
    assert_eq!(e.field, "state.rollout.post-traffic-function", "{err}");
    assert!(world.emulator.invocations().is_empty(), "the hook was not invoked");
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.1)]));
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let state =
        call(&deps(&world, &[]), rollout(json!({"dry-run": true, "publish": true, "new-version": null})))
            .await
            .unwrap();
    assert_eq!(state.status, Status::DryRun);
    assert!(state.reason.as_deref().unwrap().contains("would route [0.3333, 0.6667]"));
    let calls = world.emulator.calls();
    assert!(
        calls.keys().all(|k| k.contains(":Get") || k.contains(":Describe") || k.contains(":List")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_rollout_too_long_for_one_invocation_is_refused_before_any_change() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let mut context = Context::default();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis() + 60_000).unwrap();
    let payload = rollout(json!({"steps": 10, "interval": 120}));
    let err = handler(&deps(&world, &[]), LambdaEvent::new(payload, context)).await.unwrap_err();
    assert_eq!(err.error_type(), "TooLongForOneInvocation");
    assert!(err.to_string().contains("state machine"), "{err}");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
}

#[tokio::test]
async fn the_report_goes_to_the_topic_with_a_link_to_both_versions() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let topic = world.topic("shifts").await;
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state =
        call(&deps(&world, &[]), rollout(json!({"notification-topic-arn": topic.arn, "type": "canary"})))
            .await
            .unwrap();
    assert!(matches!(state.notification, Some(Notification::Sent { .. })), "{:?}", state.notification);
    let events = world.sns_events(&topic).await;
    assert_eq!(events.len(), 1);
    let sns = &events[0]["Records"][0]["Sns"];
    assert_eq!(sns["Subject"], "shipshape alias-shifter: api:live -> version 2: succeeded");
    let body = sns["Message"].as_str().unwrap();
    assert!(body.contains("step 1, weight 10%: healthy (new: "), "{body}");
    assert!(
        body.contains("#metricsV2:graph=")
            && body.contains("~'ExecutedVersion~'1~")
            && body.contains("~'ExecutedVersion~'2~"),
        "{body}"
    );
    let report: Value = serde_json::from_str(body.split_once("Report:\n").unwrap().1).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["steps"].as_array().unwrap().len(), 2);
}

/// The `aws-lambda-deploy` sample's payload, by hand, with its real interval, metric period and delay: too
/// long for one invocation, so the shifter sets the first weight and continues in a new invocation of
/// itself (asynchronous), which continues again when it runs out of time.
#[tokio::test]
async fn the_sample_payload_by_hand_continues_in_new_invocations() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("shifter", 1).await;
    world.emulator.answer_with("shifter", json!({}));
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let mut payload = sample_event("shift-linear.json");
    payload["function-name"] = json!("api");
    let deps = deps(&world, &[("METRIC_PERIOD_SECONDS", "60")]);
    let context = || {
        let mut c = Context::default();
        c.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:shifter".into();
        c.deadline = u64::try_from(chrono::Utc::now().timestamp_millis() + 60_000).unwrap();
        c
    };
    let Reply::State(state) = handler(&deps, LambdaEvent::new(payload, context())).await.unwrap() else {
        panic!("not a state")
    };
    assert_eq!(state.status, Status::Shifting, "{state:#?}");
    assert!(
        state.reason.as_deref().unwrap().starts_with("continued in a new invocation"),
        "{:?}",
        state.reason
    );
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.25)]));
    assert!(state.wait_seconds > 180, "120 s of traffic, a minute of delay: {}", state.wait_seconds);
    let [handed] = world.emulator.invocations().try_into().unwrap();
    assert_eq!((&handed["function"], &handed["payload"]["mode"]), (&json!("shifter"), &json!("continue")));
    // The new invocation carries on from the state it was given (here out of time at once, so again).
    let Reply::State(again) =
        handler(&deps, LambdaEvent::new(handed["payload"].clone(), context())).await.unwrap()
    else {
        panic!("not a state")
    };
    assert_eq!((again.status, again.step), (Status::Shifting, 0), "{again:#?}");
    assert_eq!(world.emulator.invocations().len(), 2);
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 1, "only the first weight");
}

/// `abort` puts the traffic back at once, with nothing but the function and alias; the running shift
/// ends rolled back at its next check.
#[tokio::test]
async fn abort_rolls_back_now_and_the_shift_ends_at_its_next_check() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    let abort = json!({"mode": "abort", "function-name": "api", "alias-name": "live", "reason": "p99 up"});
    let Reply::Control(done) = invoke(&deps, abort.clone()).await.unwrap() else {
        panic!("not a control report")
    };
    assert!(done.changed && done.primary == "1" && done.weights.is_empty(), "{done:?}");
    assert_eq!(alias(&world).await, on_one());
    let Reply::Control(again) = invoke(&deps, abort).await.unwrap() else { panic!("not a control report") };
    assert!(!again.changed, "a repeated abort changes nothing");

    let ended = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!((ended.status, ended.reason.as_deref()), (Status::RolledBack, Some("aborted: p99 up")));
    assert_eq!(alias(&world).await, on_one());
    assert_eq!(description(&world).await, "");
    let none = invoke(&deps, json!({"mode": "promote", "function-name": "api", "alias-name": "live"})).await;
    assert_eq!(none.unwrap_err().error_type(), "InvalidInput", "no shift left to promote");
}

/// `promote` finishes the shift after its current step passes: the remaining weights are skipped.
#[tokio::test]
async fn promote_switches_after_the_current_step_passes() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state =
        call(&deps, json!({"mode": "start", "rollout": rollout(json!({"steps": 10}))})).await.unwrap();
    let Reply::Control(done) =
        invoke(&deps, json!({"mode": "promote", "function-name": "api", "alias-name": "live"}))
            .await
            .unwrap()
    else {
        panic!("not a control report")
    };
    assert!(done.changed && done.shift.ends_with(" | promote"), "{done:?}");
    assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.1)]), "the routing is untouched");
    wait(&state).await;
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::Succeeded, "{state:#?}");
    let decisions: Vec<StepDecision> = state.steps.iter().map(|s| s.decision).collect();
    assert_eq!(decisions, [StepDecision::Healthy, StepDecision::Switched]);
    assert_eq!(alias(&world).await, ("2".into(), HashMap::new()));
}

/// A `promote` that lands between a step's read of the alias and its `UpdateAlias` makes the update fail
/// on the stale `RevisionId`: the shift reads the alias again, finds the request, and honours it.
#[tokio::test]
async fn a_promote_racing_a_step_is_honoured_not_rolled_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    wait(&state).await;
    world.alias_race("api", "live", " | promote");
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::Succeeded, "{state:#?}");
    assert_eq!(alias(&world).await, ("2".into(), HashMap::new()));
    assert_eq!(description(&world).await, "");
}

/// Step Functions retries a Step whose first attempt advanced the alias but whose answer was lost (a
/// `Lambda.ServiceException`): the retry carries the older state. It takes the alias as the first attempt
/// left it, instead of refusing it as stale (which the state machine would roll back).
#[tokio::test]
async fn a_retried_step_takes_over_what_its_first_attempt_did() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let first = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    wait(&first).await;
    let lost = call(&deps, json!({"mode": "step", "state": first.clone()})).await.unwrap();
    assert_eq!((lost.status, lost.step), (Status::Shifting, 1));
    world.emulator.reset_calls();
    let retried = call(&deps, json!({"mode": "step", "state": first})).await.unwrap();
    assert_eq!((retried.status, retried.step), (Status::Shifting, 1), "{retried:#?}");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(retried.judge_at, lost.judge_at);
    // And it carries on from there to the end.
    let mut state = retried;
    while state.status == Status::Shifting {
        wait(&state).await;
        state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    }
    assert_eq!(state.status, Status::Succeeded, "{state:#?}");
}

/// A retry that finds the alias switched is taken over only without a post-traffic hook: with one, the
/// earlier attempt may still be running the hook, and only it knows the answer. The retry is refused (the
/// state machine then rolls back), so a version whose hook failed never stays the primary.
#[tokio::test]
async fn a_retry_after_a_switch_with_a_post_traffic_hook_is_not_taken_over() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("check", 1).await;
    world.emulator.answer_with("check", json!({"passed": true}));
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let deps = deps(&world, &[("HOOK_FUNCTIONS", "check")]);
    let payload = rollout(json!({"type": "canary", "post-traffic-function": "check", "bake-seconds": 60}));
    let first = call(&deps, json!({"mode": "start", "rollout": payload})).await.unwrap();
    wait(&first).await;
    let switched = call(&deps, json!({"mode": "step", "state": first.clone()})).await.unwrap();
    assert_eq!(switched.status, Status::Baking, "{switched:#?}");
    let err = invoke(&deps, json!({"mode": "step", "state": first})).await.unwrap_err();
    assert_eq!(err.error_type(), "StateMismatch", "{err}");
}
