//! The judge, on traffic as Lambda reports it: late metrics, no metrics, the old version as baseline, the
//! bake, the hooks, alarms.

use super::*;

/// Each of these would have been promoted by a judge that reads a step's metrics at `interval +
/// metric-delay`: the hanging version's invocations have not ended then, so none is counted.
#[tokio::test]
async fn a_hanging_new_version_is_not_promoted() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    world.function_with_timeout("api", 3, 4).await;
    traffic(&world, &[("1", FAST), ("2", Behaviour::hanging(1.0))]);
    let state =
        call(&deps(&world, &[]), rollout(json!({"type": "canary", "canary-weight": 0.3, "interval": 2})))
            .await
            .unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    let new = state.steps[0].new.unwrap();
    assert!(
        new.invocations > 0.0 && new.errors == new.invocations,
        "every hung invocation timed out: {new:?}"
    );
    assert!(state.reason.as_deref().unwrap().starts_with("error rate 100.00%"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());
}

/// Errors of traffic between a step's window and its judgement (the weight is still routed then) are read
/// again before the switch: the last step's judgement covers every step so far.
#[tokio::test]
async fn late_errors_are_seen_before_the_switch() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state = call(&deps, json!({"mode": "start", "rollout": rollout(json!({}))})).await.unwrap();
    let window = |s: &State| alias_shifter::judge::windows(&s.look(1)).current;
    // The first step's window ends at `to`; from then until its judgement, version 2 fails.
    let to = window(&state).to;
    let until = |at: chrono::DateTime<chrono::Utc>| (at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until(to) + Duration::from_millis(100)).await;
    traffic(&world, &[("1", FAST), ("2", Behaviour::errors(1.0))]);
    tokio::time::sleep(until(state.judge_at.unwrap()) - Duration::from_millis(300)).await;
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.steps[0].decision, StepDecision::Healthy, "the step's own window was clean: {state:#?}");
    assert_eq!(state.steps[0].new.unwrap().errors, 0.0);
    wait(&state).await;
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.steps[1].new.unwrap().errors, 0.0, "the last step's own window was clean too");
    assert!(
        state.reason.as_deref().unwrap().starts_with("over the rollout so far: error rate"),
        "{:?}",
        state.reason
    );
    assert_eq!(alias(&world).await, on_one());
}

/// CloudWatch answers a query with `InternalError` and no value: that is not zero errors. The step is
/// inconclusive, never a pass.
#[tokio::test]
async fn a_query_cloudwatch_could_not_answer_is_not_a_pass() {
    integration_tests::needs_emulator!();
    let world = world().await;
    traffic(&world, &[("1", FAST), ("2", Behaviour::errors(0.5))]);
    world.emulator.metric_status(&[("new_errors", "InternalError")]);
    let state =
        call(&deps(&world, &[]), rollout(json!({"type": "canary", "max-extensions": 0}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.steps[0].decision, StepDecision::Inconclusive);
    let why = state.reason.as_deref().unwrap();
    assert!(why.contains("InternalError") && why.contains("new_errors"), "{why}");
    assert_eq!(alias(&world).await, on_one());
}

/// No measured traffic on the new version is inconclusive, never a pass: after the extra intervals, the
/// rollout is rolled back.
#[tokio::test]
async fn no_data_is_not_promoted() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let state =
        call(&deps(&world, &[]), rollout(json!({"type": "canary", "max-extensions": 1}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    // Judged twice, on a window that grew: the second line replaced the first.
    let decisions: Vec<(StepDecision, u32)> =
        state.steps.iter().map(|s| (s.decision, s.judgements)).collect();
    assert_eq!(decisions, [(StepDecision::Inconclusive, 2)]);
    assert_eq!(
        state.reason.as_deref(),
        Some("inconclusive after 1 extra interval(s): no invocation of the new version was measured")
    );
    assert_eq!(alias(&world).await, on_one());
}

fn compared(extra: Value) -> Value {
    let mut p = rollout(json!({"type": "canary", "canary-weight": 0.5, "interval": 2, "max-error-rate": 0.5,
        "error-rate-confidence": 0.95, "min-invocations": 20}));
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[tokio::test]
async fn old_and_new_erring_alike_passes() {
    integration_tests::needs_emulator!();
    let world = world().await;
    traffic(&world, &[("1", Behaviour::errors(0.1)), ("2", Behaviour::errors(0.1))]);
    let state = call(&deps(&world, &[]), compared(json!({}))).await.unwrap();
    assert_eq!(state.status, Status::Succeeded, "{state:#?}");
    let (new, old) = (state.steps[0].new.unwrap(), state.steps[0].old.unwrap());
    assert!(new.errors > 0.0 && old.errors > 0.0, "both erred: {new:?} {old:?}");
}

/// Within max-error-rate, but clearly worse than the old version at the same time.
#[tokio::test]
async fn a_new_version_worse_than_the_old_is_rolled_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    traffic(&world, &[("1", Behaviour::errors(0.05)), ("2", Behaviour::errors(0.4))]);
    let state = call(&deps(&world, &[]), compared(json!({}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    let why = state.reason.as_deref().unwrap();
    // A canary is the rollout's one judgement before the switch: it has the whole 5 % budget.
    assert!(
        why.contains("above version 1's") && why.contains("at a 5.000% chance of a false rollback"),
        "{why}"
    );
    assert_eq!(alias(&world).await, on_one());
}

/// Slower, without an error: the p99 against the old version's. The metrics come in small pages.
#[tokio::test]
async fn a_duration_regression_is_rolled_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.emulator.metric_page_size(7);
    traffic(&world, &[("1", Behaviour::taking(100.0)), ("2", Behaviour::taking(400.0))]);
    let state = call(&deps(&world, &[]), compared(json!({"max-duration-ratio": 1.5}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    let (new, old) = (state.steps[0].new.unwrap(), state.steps[0].old.unwrap());
    assert_eq!((new.errors, old.errors), (0.0, 0.0));
    assert!(new.p99.unwrap() > 2.0 * old.p99.unwrap(), "{new:?} {old:?}");
    assert!(state.reason.as_deref().unwrap().contains("above max-duration-ratio 1.5"), "{:?}", state.reason);
    assert!(world.emulator.calls_of("monitoring:GetMetricData") > 1, "pages followed");
    assert_eq!(alias(&world).await, on_one());
}

/// After the switch the new primary is judged for `bake-seconds`; failing then sends the alias back.
#[tokio::test]
async fn a_failure_in_the_bake_goes_back_to_the_original_version() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let start = rollout(json!({"type": "canary", "canary-weight": 0.5, "bake-seconds": 2}));
    let state = call(&deps, json!({"mode": "start", "rollout": start})).await.unwrap();
    wait(&state).await;
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::Baking, "{state:#?}");
    assert_eq!(alias(&world).await, ("2".into(), HashMap::new()));
    assert!(description(&world).await.contains(": 1 -> 2, baking since "));
    traffic(&world, &[("1", FAST), ("2", Behaviour::errors(0.3))]);
    let mut state = state;
    while state.status == Status::Baking {
        wait(&state).await;
        state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    }
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    let bake = state.steps.last().unwrap();
    assert_eq!((bake.decision, bake.weight), (StepDecision::Unhealthy, 1.0));
    assert!(bake.old.unwrap().invocations > 0.0, "judged against version 1 before the switch");
    assert_eq!(alias(&world).await, on_one());
    assert_eq!(description(&world).await, "");
}

/// A rollout whose pre-traffic hook fails changes nothing; the hook got the rollout.
#[tokio::test]
async fn a_failing_pre_traffic_hook_changes_nothing() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("smoke", 1).await;
    world.emulator.answer_with_error("smoke", "SmokeFailed", "login returns 500");
    let deps = deps(&world, &[("HOOK_FUNCTIONS", "smoke")]);
    let state = call(&deps, rollout(json!({"pre-traffic-function": "smoke"}))).await.unwrap();
    assert_eq!(state.status, Status::Stopped, "{state:#?}");
    assert!(
        state.reason.as_deref().unwrap().contains("pre-traffic hook smoke failed: Unhandled error"),
        "{:?}",
        state.reason
    );
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(alias(&world).await, on_one());
    let [called] = world.emulator.invocations().try_into().unwrap();
    assert_eq!(
        (&called["payload"]["hook"], &called["payload"]["new-version"]),
        (&json!("pre-traffic"), &json!("2"))
    );
}

/// The post-traffic hook runs after the switch; failing, it sends the alias back.
#[tokio::test]
async fn a_failing_post_traffic_hook_rolls_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("check", 1).await;
    world.emulator.answer_with("check", json!({"passed": false, "reason": "orders do not reach the queue"}));
    let deps = deps(&world, &[("HOOK_FUNCTIONS", "smoke,check")]);
    let state =
        call(&deps, rollout(json!({"type": "all-at-once", "post-traffic-function": "check"}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(
        state.reason.as_deref(),
        Some("post-traffic hook check failed: orders do not reach the queue")
    );
    assert_eq!(state.steps.last().unwrap().decision, StepDecision::Switched);
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 2, "the switch, then the rollback");
    assert_eq!(alias(&world).await, on_one());
}

#[tokio::test]
async fn an_alarm_in_alarm_rolls_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.alarm("api-errors", "ALARM").await;
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let state = call(&deps(&world, &[]), rollout(json!({"alarms": ["api-errors"]}))).await.unwrap();
    assert_eq!(state.status, Status::RolledBack);
    assert_eq!(state.steps[0].alarms_in_alarm, ["api-errors"]);
    assert_eq!(alias(&world).await, on_one());
}

/// A composite alarm is read with its state: DescribeAlarms returns composite alarms only when asked for.
#[tokio::test]
async fn a_composite_alarm_is_read() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.alarm("api-errors", "OK").await;
    world
        .cloudwatch
        .put_composite_alarm()
        .alarm_name("api-bad")
        .alarm_rule("ALARM(\"api-errors\")")
        .send()
        .await
        .unwrap();
    let set = |state: &'static str| {
        world
            .cloudwatch
            .set_alarm_state()
            .alarm_name("api-bad")
            .state_value(state.into())
            .state_reason("test")
            .send()
    };
    set("OK").await.unwrap();
    let deps = deps(&world, &[]);
    let alarms_only = rollout(json!({"type": "canary", "health-check": false, "alarms": ["api-bad"]}));
    let state = call(&deps, alarms_only.clone()).await.unwrap();
    assert_eq!((state.status, state.steps[0].decision), (Status::Succeeded, StepDecision::Healthy));

    let back = rollout(json!({"new-version": "1"}));
    call(&deps, {
        let mut b = back;
        b["type"] = json!("all-at-once");
        b["health-check"] = json!(false);
        b
    })
    .await
    .unwrap();
    set("ALARM").await.unwrap();
    let state = call(&deps, alarms_only).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.reason.as_deref(), Some("alarm in ALARM: api-bad"));
    assert_eq!(alias(&world).await, on_one());
}

/// An alarm that cannot say (INSUFFICIENT_DATA), or that was deleted after the start, is not a pass: the
/// step is inconclusive, in alarms-only mode too.
#[tokio::test]
async fn an_alarm_without_data_or_deleted_is_inconclusive() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    world.alarm("api-latency", "INSUFFICIENT_DATA").await;
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let alarms_only = rollout(
        json!({"type": "canary", "health-check": false, "alarms": ["api-latency"], "max-extensions": 0}),
    );
    let state = call(&deps, alarms_only.clone()).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.steps[0].decision, StepDecision::Inconclusive);
    assert!(state.reason.as_deref().unwrap().contains("api-latency"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());

    world.alarm("api-latency", "OK").await;
    let started = call(&deps, json!({"mode": "start", "rollout": alarms_only})).await.unwrap();
    world.cloudwatch.delete_alarms().alarm_names("api-latency").send().await.unwrap();
    wait(&started).await;
    let state = call(&deps, json!({"mode": "step", "state": started})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert!(state.reason.as_deref().unwrap().contains("no longer exists"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());
}

/// Alarms only: a step is judged when its traffic can have reached the alarm (its periods, the timeout,
/// the delay), not at the end of its interval.
#[tokio::test]
async fn alarms_only_waits_for_the_traffic_to_reach_the_alarm() {
    integration_tests::needs_emulator!();
    let world = World::new().await;
    world.function_with_timeout("api", 3, 3).await;
    world.alarm("api-errors", "OK").await;
    let alarms_only = rollout(json!({"type": "canary", "health-check": false, "alarms": ["api-errors"]}));
    let state = call(&deps(&world, &[]), json!({"mode": "start", "rollout": alarms_only})).await.unwrap();
    // 1 s of traffic, a 3 s timeout, a 1 s delay.
    assert!(state.wait_seconds >= 5, "judged before the traffic can be in: {}", state.wait_seconds);
}

/// A manual run counts the hooks' time: one that cannot fit its post-traffic hook (up to 4 minutes) and a
/// rollback after it is refused before any change, rather than switched and cut off by Lambda.
#[tokio::test]
async fn a_manual_run_counts_the_hooks_time() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("check", 1).await;
    world.emulator.answer_with("check", json!({"passed": true}));
    let mut context = Context::default();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis() + 100_000).unwrap();
    let payload = rollout(json!({"type": "all-at-once", "post-traffic-function": "check"}));
    let deps = deps(&world, &[("HOOK_FUNCTIONS", "check")]);
    let err = handler(&deps, LambdaEvent::new(payload, context)).await.unwrap_err();
    assert_eq!(err.error_type(), "TooLongForOneInvocation", "{err}");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert!(world.emulator.invocations().is_empty());
}

/// A hook is never invoked twice: an invocation that failed on Lambda's side may have run, so it is not
/// retried; the hook failed, and the switch is undone.
#[tokio::test]
async fn a_hook_that_may_have_run_is_not_invoked_again() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("check", 1).await;
    world.emulator.answer_with("check", json!({"passed": true}));
    world.emulator.fail("Invoke", 1, "ServiceException");
    let deps = deps(&world, &[("HOOK_FUNCTIONS", "check")]);
    let state =
        call(&deps, rollout(json!({"type": "all-at-once", "post-traffic-function": "check"}))).await.unwrap();
    assert_eq!(world.emulator.calls_of("lambda:Invoke"), 1, "{state:#?}");
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert!(state.reason.as_deref().unwrap().contains("ServiceException"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());
}

/// A slow post-traffic hook gets the time the invocation has left, less what the rollback needs: past it,
/// the hook has failed and the alias goes back, before Lambda could end the function with the new version
/// the primary and no verdict. (A state machine step has 300 s; this one is given 33.)
#[tokio::test]
async fn a_slow_hook_is_cut_short_in_time_to_roll_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    world.function("check", 1).await;
    world.emulator.answer_with("check", json!({"passed": true}));
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let deps = deps(&world, &[("HOOK_FUNCTIONS", "check")]);
    let payload = rollout(json!({"type": "canary", "post-traffic-function": "check"}));
    let started = call(&deps, json!({"mode": "start", "rollout": payload})).await.unwrap();
    wait(&started).await;
    world.emulator.delay("Invoke", 1, 6_000);
    let mut context = Context::default();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis() + 33_000).unwrap();
    let began = std::time::Instant::now();
    let reply =
        handler(&deps, LambdaEvent::new(json!({"mode": "step", "state": started}), context)).await.unwrap();
    let Reply::State(state) = reply else { panic!("not a state") };
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert!(state.reason.as_deref().unwrap().contains("did not answer within"), "{:?}", state.reason);
    assert!(began.elapsed() < Duration::from_secs(5), "it waited {:?}", began.elapsed());
    assert_eq!(alias(&world).await, on_one());
}

/// A bake judged weeks after the switch (a long bake, a late approval) reads its data at the resolution
/// CloudWatch keeps it: a request for data older than 15 days at a 1-minute (here 1-second) period answers
/// nothing at all.
#[tokio::test]
async fn a_bake_read_weeks_later_reads_cloudwatch_at_its_resolution() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let bake =
        rollout(json!({"type": "all-at-once", "bake-seconds": 3600, "interval": 600, "max-error-rate": 0.1}));
    let mut state = call(&deps, json!({"mode": "start", "rollout": bake})).await.unwrap();
    assert_eq!(state.status, Status::Baking, "{state:#?}");
    // The same shift, as if it had switched 20 days ago: its mark says so too.
    let days = chrono::Duration::days(20);
    state.started_at -= days;
    state.switched_at = state.switched_at.map(|t| t - days);
    state.step_started_at -= days;
    let out = world
        .lambda
        .update_alias()
        .function_name("api")
        .name("live")
        .description(state.marker().to_string())
        .send()
        .await
        .unwrap();
    state.revision_id = out.revision_id().unwrap().to_owned();
    // Then, the new primary failed half its requests; before the shift, the alias failed none.
    let switched = state.switched_at.unwrap();
    let alias_dims = [("FunctionName", "api"), ("Resource", "api:live")];
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
    let after = ms(switched + chrono::Duration::seconds(90));
    world.metric_at(&alias_dims, after, &[("Invocations", 100.0), ("Errors", 50.0)]).await;
    let before = ms(state.started_at - chrono::Duration::seconds(600));
    world.metric_at(&alias_dims, before, &[("Invocations", 100.0), ("Errors", 0.0)]).await;
    let state = call(&deps, json!({"mode": "step", "state": state})).await.unwrap();
    assert_eq!(state.status, Status::RolledBack, "{state:#?}");
    assert_eq!(state.steps.last().unwrap().new.unwrap().invocations, 100.0);
    assert!(state.reason.as_deref().unwrap().starts_with("error rate 50.00%"), "{:?}", state.reason);
    assert_eq!(alias(&world).await, on_one());
}
