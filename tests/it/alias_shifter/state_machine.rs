//! The stack's state machine (`functions/alias-shifter/state-machine.asl.json`), followed as Step
//! Functions follows it, with the handler as its Lambda and its Wait states slept for real.

use integration_tests::step_functions::{self, Answer, CALLBACK, Execution, Waits};

use super::*;

/// Runs the definition on `input`. `on_task(n, state, payload)` may take over the n-th Task (0-based): an
/// injected failure, or the answer to a callback; otherwise the handler is invoked with the payload.
async fn execute(
    deps: &Deps,
    input: Value,
    mut on_task: impl AsyncFnMut(usize, &str, &Value) -> Option<Answer>,
) -> Execution {
    let def = step_functions::definition("functions/alias-shifter/state-machine.asl.json");
    step_functions::execute(&def, input, Waits::Sleep, async |n, name, payload| {
        let state = &def["States"][name];
        let function = if state["Resource"] == CALLBACK {
            &state["Parameters"]["FunctionName"]
        } else {
            &state["Resource"]
        };
        assert_eq!(function, "${ShifterArn}");
        if let Some(answer) = on_task(n, name, &payload).await {
            return answer;
        }
        let result = invoke(deps, payload).await;
        Answer::Lambda(
            result
                .map(|s| serde_json::to_value(s).unwrap())
                .map_err(|e| (e.error_type().to_owned(), e.to_string())),
        )
    })
    .await
}

#[tokio::test]
async fn the_state_machine_runs_a_rollout_to_the_end_waiting_between_steps() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    world.new_code("api").await;
    // The sample input, shortened to seconds: publish, linear steps, a traffic floor.
    let mut input = sample_event("shift-state-machine-input.json");
    input["function-name"] = json!("api");
    input["steps"] = json!(3);
    input["interval"] = json!(1);
    input["metric-delay"] = json!(1);
    input["min-invocations"] = json!(5);
    traffic(&world, &[("1", FAST)]);
    let run = execute(&deps, input, async |_, _, _| None).await;
    assert_eq!(run.end, "Done", "{}", run.output);
    assert_eq!(run.output["status"], "succeeded");
    assert_eq!(run.output["new-version"], "4", "the version PublishVersion returned");
    assert_eq!(run.waits.len(), 2, "one Wait per weight: {:?}", run.waits);
    assert!(
        run.waits.iter().all(|w| (3..=5).contains(w)),
        "interval + timeout + delay, rounded: {:?}",
        run.waits
    );
    assert_eq!(alias(&world).await, ("4".into(), HashMap::new()));
}

#[tokio::test]
async fn the_state_machine_rolls_back_on_errors() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", Behaviour::errors(0.5))]);
    let run = execute(&deps, rollout(json!({"min-invocations": 5})), async |_, _, _| None).await;
    assert_eq!(run.end, "RolledBack");
    assert!(run.output.as_str().unwrap().contains("above max-error-rate"), "{}", run.output);
    assert_eq!(alias(&world).await, on_one());
}

/// The second step's Lambda call times out: Catch, then the rollback call, with the error as reason.
#[tokio::test]
async fn the_state_machine_rolls_back_a_step_that_times_out() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let run = execute(&deps, rollout(json!({})), async |n, name, _| {
        (n == 2 && name == "Step")
            .then(|| Answer::Lambda(Err(("States.Timeout".into(), "injected by the test".into()))))
    })
    .await;
    assert_eq!(run.end, "RolledBack");
    assert_eq!(run.output, "the state machine's step failed: States.Timeout: injected by the test");
    assert_eq!(alias(&world).await, on_one());
}

/// Bad input fails the execution at Start with the function's error, and changes nothing.
#[tokio::test]
async fn the_state_machine_stops_at_bad_input() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let deps = deps(&world, &[]);
    let run = execute(&deps, rollout(json!({"new-version": "9"})), async |_, _, _| None).await;
    assert_eq!(run.end, "failed:InvalidInput");
    assert_eq!(world.emulator.calls_of("lambda:UpdateAlias"), 0);
    assert_eq!(alias(&world).await, on_one());
}

/// The approval request as a person receives it: the token is in the message's command.
async fn token_from_topic(world: &World, topic: &integration_tests::Topic) -> String {
    let events = world.sns_events(topic).await;
    let sns = &events.last().expect("the approval request")["Records"][0]["Sns"];
    assert!(sns["Subject"].as_str().unwrap().ends_with("approval needed"), "{sns}");
    let body = sns["Message"].as_str().unwrap();
    let after = body.split_once("--task-token '").expect("the approve command").1;
    after.split_once('\'').unwrap().0.to_owned()
}

/// A canary held for approval before the switch: the request goes to the topic, a person approves with
/// the token, and the new version becomes the primary; or rejects, and the alias goes back.
#[tokio::test]
async fn the_approval_gate_pauses_then_promotes_or_rolls_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let topic = world.topic("approvals").await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let gated = rollout(json!({"type": "canary", "approval": true, "notification-topic-arn": topic.arn}));

    for approve in [true, false] {
        let run = execute(&deps, gated.clone(), async |_, name, payload| {
            if name != "Approve" {
                return None;
            }
            assert_eq!(payload["state"]["status"], "awaiting-approval");
            assert_eq!(alias(&world).await.1, HashMap::from([("2".to_owned(), 0.1)]), "paused at the canary");
            if let Err(e) = invoke(&deps, payload.clone()).await {
                return Some(Answer::Lambda(Err((e.error_type().to_owned(), e.to_string()))));
            }
            let token = token_from_topic(&world, &topic).await;
            Some(if approve {
                Answer::Success { token, output: json!({"approved-by": "qa"}) }
            } else {
                Answer::Failure { token, error: "Rejected".into(), cause: "checkout p99 looks off".into() }
            })
        })
        .await;
        if approve {
            assert_eq!(run.end, "Done", "{}", run.output);
            assert_eq!(run.tasks, ["Start", "Step", "Approve", "Approved"]);
            let decisions: Vec<&str> = run.output["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["decision"].as_str().unwrap())
                .collect();
            // The wait is judged after the approval, before the switch.
            assert_eq!(decisions, ["healthy", "approved", "healthy", "switched"]);
            assert_eq!(alias(&world).await, ("2".into(), HashMap::new()));
            // Back to version 1 for the second round.
            let back = json!({"function-name": "api", "alias-name": "live", "new-version": "1", "type": "all-at-once", "health-check": false});
            call(&deps, back).await.unwrap();
            world.sns_events(&topic).await;
        } else {
            assert_eq!(run.end, "RolledBack", "{}", run.output);
            assert_eq!(run.output, "rejected at the approval gate: checkout p99 looks off");
            assert_eq!(run.tasks, ["Start", "Step", "Approve", "Rollback"]);
            assert_eq!(alias(&world).await, on_one());
        }
    }
}

/// Nobody answers within `approval-timeout`: the Task times out and the rollout is rolled back.
#[tokio::test]
async fn an_unanswered_approval_rolls_back() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let topic = world.topic("approvals").await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let gated = rollout(
        json!({"type": "canary", "approval": true, "approval-timeout": 600, "notification-topic-arn": topic.arn}),
    );
    let run = execute(&deps, gated, async |_, name, payload| {
        (name == "Approve").then(|| {
            let _ = payload;
            Answer::NoAnswer
        })
    })
    .await;
    assert_eq!(run.end, "RolledBack", "{}", run.output);
    assert_eq!(run.output, "no approval within approval-timeout 600 s");
    assert_eq!(alias(&world).await, on_one());
}

/// The shifter plans each call after `start` within the time the state machine gives it (a call that runs
/// longer would be rolled back by the state machine while it still runs).
#[test]
fn each_task_gives_the_shifter_the_time_it_plans_for() {
    let def = step_functions::definition("functions/alias-shifter/state-machine.asl.json");
    for task in ["Step", "Approved"] {
        assert_eq!(def["States"][task]["TimeoutSeconds"], alias_shifter::STEP_TIMEOUT.as_secs(), "{task}");
    }
}

/// Approval is not a pass for what happened while waiting for it: the wait's traffic (what is complete of
/// it) and the alarms are judged before the switch, and a version that started failing is rolled back.
#[tokio::test]
async fn the_approval_gate_judges_the_wait_before_switching() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let topic = world.topic("approvals").await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let gated = rollout(json!({"type": "canary", "canary-weight": 0.5, "approval": true,
        "notification-topic-arn": topic.arn, "max-error-rate": 0.05}));
    let run = execute(&deps, gated, async |_, name, payload| {
        if name != "Approve" {
            return None;
        }
        invoke(&deps, payload.clone()).await.unwrap();
        // While the request waits, the canary starts failing; a person approves 4 s later.
        traffic(&world, &[("1", FAST), ("2", Behaviour::errors(1.0))]);
        tokio::time::sleep(Duration::from_secs(4)).await;
        let token = token_from_topic(&world, &topic).await;
        Some(Answer::Success { token, output: json!({"approved-by": "qa"}) })
    })
    .await;
    assert_eq!(run.end, "RolledBack", "{}", run.output);
    assert!(run.output.as_str().unwrap().contains("error rate"), "{}", run.output);
    assert_eq!(alias(&world).await, on_one());
}

/// A promotion asked for while the shift waits for approval is refused, not swallowed: the approval is
/// the question being asked.
#[tokio::test]
async fn a_promotion_while_awaiting_approval_is_refused() {
    integration_tests::needs_emulator!();
    let world = world().await;
    let topic = world.topic("approvals").await;
    let deps = deps(&world, &[]);
    traffic(&world, &[("1", FAST), ("2", FAST)]);
    let gated = rollout(json!({"type": "canary", "approval": true, "notification-topic-arn": topic.arn}));
    let run = execute(&deps, gated, async |_, name, payload| {
        if name != "Approve" {
            return None;
        }
        invoke(&deps, payload.clone()).await.unwrap();
        let before = description(&world).await;
        let promote = json!({"mode": "promote", "function-name": "api", "alias-name": "live"});
        let err = invoke(&deps, promote).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput", "{err}");
        assert!(err.to_string().contains("approval"), "{err}");
        assert_eq!(description(&world).await, before, "nothing written");
        let token = token_from_topic(&world, &topic).await;
        Some(Answer::Failure { token, error: "Rejected".into(), cause: "not now".into() })
    })
    .await;
    assert_eq!(run.end, "RolledBack", "{}", run.output);
}
