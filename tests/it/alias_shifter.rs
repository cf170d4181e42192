//! alias-shifter against the emulator, with the real SDK.

use std::collections::HashMap;

use alias_shifter::{Config, Deps, Error, State, Status, StepDecision, handler};
use integration_tests::step_functions::{self, Execution};
use integration_tests::{World, sample_event};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::config::Env;
use shared::edge::ErrorType;
use shared::notify::Notification;

fn deps(world: &World, env: &[(&str, &str)]) -> Deps {
    let map: HashMap<&str, &str> = env.iter().copied().collect();
    Deps::new(&world.sdk, Config::from_env(Env::from_map(&map)).expect("config"))
}

async fn invoke(deps: &Deps, payload: Value) -> Result<State, Error> {
    handler(deps, LambdaEvent::new(payload, Context::default())).await
}

/// Function `api` with versions 1-3 and alias `live` on 1.
async fn world() -> World {
    let world = World::new().await;
    world.function("api", 3).await;
    world.emulator.reset_calls();
    world
}

/// A rollout of `api:live` to version 2 that runs at once: no interval, no metric delay.
fn rollout(extra: Value) -> Value {
    let mut p = json!({"function-name": "api", "alias-name": "live", "new-version": "2", "steps": 3,
        "interval": 0, "metric-delay": 0, "type": "linear", "health-check": true});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[tokio::test]
async fn a_healthy_linear_rollout_ends_on_the_new_version_with_no_weights() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let state = invoke(&deps(&world, &[]), rollout(json!({}))).await.unwrap();

    assert_eq!(state.status, Status::Succeeded, "{state:#?}");
    assert_eq!(world.alias("api", "live").await, ("2".into(), HashMap::new()));
    let decisions: Vec<(StepDecision, f64)> = state.steps.iter().map(|s| (s.decision, s.weight)).collect();
    assert_eq!(
        decisions,
        [(StepDecision::Healthy, 0.3333), (StepDecision::Healthy, 0.6667), (StepDecision::Switched, 1.0)]
    );
    assert_eq!(state.original_version, "1");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 3);
    assert_eq!(state.notification, Some(Notification::Off));
}

/// What the state machine does: start, then step after each wait, with the state the last call returned.
#[tokio::test]
async fn step_mode_errors_at_step_two_roll_back_to_the_original() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let start = json!({"mode": "start", "rollout": rollout(json!({"max-error-rate": 0.05}))});

    let state = invoke(&deps, start).await.unwrap();
    assert_eq!(state.status, Status::Shifting);
    assert_eq!(world.alias("api", "live").await.1, HashMap::from([("2".to_owned(), 0.3333)]));

    world.lambda_metrics("api", "live", "2", 100.0, 1.0).await;
    let state = invoke(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::Shifting);
    assert_eq!(state.steps[0].decision, StepDecision::Healthy);
    assert_eq!(world.alias("api", "live").await.1, HashMap::from([("2".to_owned(), 0.6667)]));

    world.lambda_metrics("api", "live", "2", 100.0, 20.0).await;
    let state = invoke(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.steps[1].decision, StepDecision::Unhealthy);
    assert!(state.reason.as_deref().unwrap().contains("above max-error-rate 5.00%"), "{:?}", state.reason);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));

    // A late call with the final state changes nothing.
    world.emulator.reset_calls();
    let again = invoke(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(again.status, Status::RolledBack);
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
}

#[tokio::test]
async fn an_api_error_mid_way_rolls_back_naming_the_call() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let state = invoke(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    world.emulator.fail("GetMetricData", 1, "AccessDenied");
    let state = invoke(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack);
    assert!(state.reason.as_deref().unwrap().contains("GetMetricData"), "{:?}", state.reason);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}

/// The state machine's `Catch` (a step timed out or crashed) calls rollback with the state and the error.
#[tokio::test]
async fn the_state_machine_failure_branch_rolls_back_with_the_caught_error() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let mut state = serde_json::to_value(
        invoke(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap(),
    )
    .unwrap();
    // ResultPath "$.error" keeps the state and adds the error next to it.
    state["error"] = json!({"Error": "States.Timeout", "Cause": "the step ran over its time"});
    let payload = json!({"mode": "rollback", "state": state, "error": state["error"]});
    let rolled = invoke(&deps, payload.clone()).await.unwrap();
    assert_eq!(rolled.status, Status::RolledBack);
    assert_eq!(
        rolled.reason.as_deref(),
        Some("the state machine's step failed: States.Timeout: the step ran over its time")
    );
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));

    // Delivered twice: the alias is already back, so nothing more is changed.
    world.emulator.reset_calls();
    let again = invoke(&deps, payload).await.unwrap();
    assert_eq!(again.status, Status::RolledBack);
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
}

#[tokio::test]
async fn an_alarm_in_alarm_rolls_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.alarm("api-errors", "ALARM").await;
    let state = invoke(&deps(&world, &[]), rollout(json!({"alarms": ["api-errors"]}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack);
    assert_eq!(state.steps[0].alarms_in_alarm, ["api-errors"]);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}

#[tokio::test]
async fn a_concurrent_alias_change_aborts_the_shift() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let state = invoke(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();

    // Someone raises the weight by hand: the shift notices (RevisionId) and rolls the alias back.
    world
        .lambda
        .update_alias()
        .function_name("api")
        .name("live")
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .additional_version_weights("2", 0.5)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rolled = invoke(&deps, json!({"mode": "step", "state": state.clone()})).await.unwrap();
    assert_eq!(rolled.status, Status::RolledBack);
    assert!(rolled.reason.as_deref().unwrap().contains("changed since this shift set it"));
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));

    // Someone moves the alias elsewhere: that is left as found.
    let state = invoke(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    world
        .lambda
        .update_alias()
        .function_name("api")
        .name("live")
        .function_version("3")
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(HashMap::new()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let left = invoke(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(left.status, Status::LeftAsFound);
    assert_eq!(world.alias("api", "live").await, ("3".into(), HashMap::new()));
}

#[tokio::test]
async fn every_validation_error_names_its_field() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world
        .lambda
        .create_alias()
        .function_name("api")
        .name("busy")
        .function_version("1")
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .additional_version_weights("3", 0.1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let deps_all = deps(&world, &[]);
    let cases = [
        (json!({"function-name": "nope"}), "function-name", "no function nope"),
        (json!({"alias-name": "missing"}), "alias-name", "has no alias missing"),
        (json!({"alias-name": "busy"}), "alias-name", "already in progress"),
        (json!({"new-version": "9"}), "new-version", "has no version 9"),
        (json!({"new-version": "1"}), "new-version", "already the primary"),
        (json!({"new-version": "$LATEST"}), "new-version", "$LATEST"),
        (json!({"alarms": ["no-such-alarm"]}), "alarms", "no-such-alarm"),
        (json!({"steps": 0}), "steps", "from 1 to 100"),
        (json!({"interval": "soon"}), "interval", "whole number"),
    ];
    for (extra, field, fragment) in cases {
        let err = invoke(&deps_all, rollout(extra.clone())).await.expect_err(&extra.to_string());
        let Error::InvalidInput(e) = &err else { panic!("{extra}: {err}") };
        assert_eq!(e.field, field, "{extra}: {err}");
        assert!(err.to_string().contains(fragment), "{extra}: {err}");
        assert_eq!(err.error_type(), "InvalidInput");
    }
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}

#[tokio::test]
async fn a_function_not_allowed_is_refused_before_any_change() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let only_worker = deps(&world, &[("ALLOWED_FUNCTIONS", "worker")]);
    let err = invoke(&only_worker, rollout(json!({}))).await.unwrap_err();
    assert!(err.to_string().contains("ALLOWED_FUNCTIONS"), "{err}");
    assert_eq!(err.error_type(), "InvalidInput");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let state =
        invoke(&deps(&world, &[]), rollout(json!({"dry-run": true, "publish": true, "new-version": null})))
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
    assert_eq!(world.emulator.total_calls(), 0);
}

#[tokio::test]
async fn a_published_canary_waits_for_traffic_then_passes_on_what_it_saw() {
    integration_tests::needs_emulator!();
    let world = world().await;
    // New code in $LATEST; without a change AWS would hand back version 3 instead of publishing.
    world.new_code("api").await;
    let deps = deps(&world, &[]);
    let start = json!({"mode": "start", "rollout": rollout(json!({"publish": true, "new-version": null,
        "type": "canary", "canary-weight": 0.1, "min-invocations": 50}))});
    let mut state = invoke(&deps, start).await.unwrap();
    assert_eq!(state.new_version, "4", "the version PublishVersion returned");
    assert_eq!(world.alias("api", "live").await.1, HashMap::from([("4".to_owned(), 0.1)]));

    // No traffic: two more intervals, then it passes on what it saw, and the canary goes to 100 %.
    for _ in 0..3 {
        state = invoke(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    }
    let decisions: Vec<StepDecision> = state.steps.iter().map(|s| s.decision).collect();
    assert_eq!(
        decisions,
        [StepDecision::Wait, StepDecision::Wait, StepDecision::PassedOnLowTraffic, StepDecision::Switched]
    );
    assert_eq!(state.status, Status::Succeeded);
    assert_eq!(world.alias("api", "live").await, ("4".into(), HashMap::new()));
}

#[tokio::test]
async fn the_report_goes_to_the_topic() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let topic = world.topic("shifts").await;
    let state =
        invoke(&deps(&world, &[]), rollout(json!({"notification-topic-arn": topic.arn}))).await.unwrap();
    assert!(matches!(state.notification, Some(Notification::Sent { .. })), "{:?}", state.notification);
    let events = world.sns_events(&topic).await;
    assert_eq!(events.len(), 1);
    let sns = &events[0]["Records"][0]["Sns"];
    assert_eq!(sns["Subject"], "shipshape alias-shifter: api:live -> version 2: succeeded");
    let report: Value = serde_json::from_str(sns["Message"].as_str().unwrap()).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["steps"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn sample_payloads_run() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let mut payload = sample_event("shift-linear.json");
    payload["function-name"] = json!("api");
    payload["alias-name"] = json!("live");
    payload["new-version"] = json!("2");
    payload["interval"] = json!(0);
    payload["metric-delay"] = json!(0);
    let state = invoke(&deps(&world, &[]), payload).await.unwrap();
    assert_eq!(state.status, Status::Succeeded);
}

/// The stack's state machine (`functions/alias-shifter/state-machine.asl.json`), followed as Step Functions
/// follows it, with the handler as its Lambda. `before_task(n, name)` runs before the n-th Task (0-based)
/// and may return an error name to fail that Task with, as a timeout or crash would.
async fn execute(
    deps: &Deps,
    input: Value,
    mut before_task: impl AsyncFnMut(usize, &str) -> Option<String>,
) -> Execution {
    let def = step_functions::definition("functions/alias-shifter/state-machine.asl.json");
    step_functions::execute(&def, input, async |n, name, payload| {
        assert_eq!(def["States"][name]["Resource"], "${ShifterArn}");
        if let Some(error) = before_task(n, name).await {
            return Err((error, "injected by the test".to_owned()));
        }
        let result = invoke(deps, payload).await;
        result
            .map(|s| serde_json::to_value(s).unwrap())
            .map_err(|e| (e.error_type().to_owned(), e.to_string()))
    })
    .await
}

#[tokio::test]
async fn the_state_machine_runs_a_rollout_to_the_end_waiting_between_steps() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    world.new_code("api").await;
    // The sample input as it is, but for the function's name: publish, 10 linear steps of 600 s.
    let mut input = sample_event("shift-state-machine-input.json");
    input["function-name"] = json!("api");
    let run = execute(&deps, input, async |_, _| {
        world.lambda_metrics("api", "live", "4", 100.0, 0.0).await;
        None
    })
    .await;
    assert_eq!(run.end, "Done", "{}", run.output);
    assert_eq!(run.waits, [660; 9], "interval + metric delay, once per weight");
    assert_eq!(run.output["status"], "succeeded");
    assert_eq!(run.output["steps"].as_array().unwrap().len(), 10);
    assert_eq!(world.alias("api", "live").await, ("4".into(), HashMap::new()));
}

#[tokio::test]
async fn the_state_machine_rolls_back_on_errors() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let run = execute(&deps, rollout(json!({"min-invocations": 10})), async |n, _| {
        world.lambda_metrics("api", "live", "2", 100.0, if n == 2 { 30.0 } else { 0.0 }).await;
        None
    })
    .await;
    assert_eq!(run.end, "RolledBack");
    assert!(run.output.as_str().unwrap().contains("above max-error-rate"), "{}", run.output);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}

/// The second step's Lambda call times out: Catch, then the rollback call, with the error as reason.
#[tokio::test]
async fn the_state_machine_rolls_back_a_step_that_times_out() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let run = execute(&deps, rollout(json!({"min-invocations": 0})), async |n, name| {
        (n == 2 && name == "Step").then(|| "States.Timeout".to_owned())
    })
    .await;
    assert_eq!(run.end, "RolledBack");
    assert_eq!(run.output, "the state machine's step failed: States.Timeout: injected by the test");
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}

/// Bad input fails the execution at Start with the function's error, and changes nothing.
#[tokio::test]
async fn the_state_machine_stops_at_bad_input() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let run = execute(&deps, rollout(json!({"new-version": "9"})), async |_, _| None).await;
    assert_eq!(run.end, "failed:InvalidInput");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(world.alias("api", "live").await, ("1".into(), HashMap::new()));
}
