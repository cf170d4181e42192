//! Every sample in `events/` parses into its handler's input type.

use integration_tests::{repo_root, sample_event};

#[test]
fn every_sample_event_parses() {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in &names {
        let event = sample_event(name);
        if name == "spot-aws-state-change-pending.json" {
            // The rule sends `running` only: this one is refused, naming the field.
            assert_eq!(spot_drainer::input::parse(&event).unwrap_err().field, "detail.state");
        } else if name.starts_with("spot-") {
            spot_drainer::input::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("lifecycle-") {
            let input = lifecycle_drainer::input::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Every lifecycle sample but the test notification and a running task is something to act on.
            let ignored = matches!(input, lifecycle_drainer::input::Input::Ignore(_));
            let acknowledged =
                name.contains("test-notification") || name.contains("task-state-change-running");
            assert_eq!(ignored, acknowledged, "{name}: {input:?}");
        } else if name.starts_with("shift-") {
            alias_shifter::Rollout::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("scale-in-") {
            scale_in_cleaner::input::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            panic!("{name}: no handler claims this sample; map its prefix to a parser here");
        }
    }
}

/// Every sample AWS's documentation prints for the drainers' triggers (`events/*-aws-*`), handed to its
/// function against the emulator: each is answered, never with `Internal`; one the function refuses (a
/// state change the rule never sends) is refused naming its field, and changes nothing.
#[tokio::test]
async fn every_event_aws_documents_is_answered_and_a_refused_one_changes_nothing() {
    integration_tests::needs_emulator!();
    use lambda_runtime::{Context, LambdaEvent};
    use shared::edge::ErrorType;
    let world = integration_tests::World::new().await;
    world.cluster("web").await;
    let env: std::collections::HashMap<&str, &str> =
        [("CLUSTERS", "web"), ("DRAIN_ON", "terminate,stop,hibernate,rebalance,scheduled")].into();
    let spot = spot_drainer::Deps::new(
        &world.sdk,
        spot_drainer::Config::from_env(shared::config::Env::from_map(&env)).unwrap(),
    );
    let lifecycle = lifecycle_drainer::Deps::new(
        &world.sdk,
        lifecycle_drainer::Config::from_env(shared::config::Env::from_map(&env)).unwrap(),
    );
    let refused = [("spot-aws-state-change-pending.json", "detail.state")];
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("-aws-"))
        .collect();
    names.sort();
    assert!(names.len() >= 18, "{names:?}");
    for name in &names {
        let event = LambdaEvent::new(sample_event(name), Context::default());
        world.emulator.reset_calls();
        let answer: Result<(), (String, String)> = if name.starts_with("spot-") {
            spot_drainer::handler(&spot, event)
                .await
                .map(|_| ())
                .map_err(|e| (e.error_type().to_owned(), e.to_string()))
        } else {
            lifecycle_drainer::handler(&lifecycle, event)
                .await
                .map(|_| ())
                .map_err(|e| (e.error_type().to_owned(), e.to_string()))
        };
        match refused.iter().find(|(n, _)| n == name) {
            None => assert!(answer.is_ok(), "{name}: {answer:?}"),
            Some((_, field)) => {
                let (kind, message) = answer.expect_err(name);
                assert_eq!(kind, "InvalidEvent", "{name}: {message}");
                assert!(message.contains(field), "{name}: {message}");
                let calls = world.emulator.calls();
                assert!(
                    calls.keys().all(|c| c.contains(":Describe") || c.contains(":List")),
                    "{name} changed something: {calls:?}"
                );
            }
        }
    }
}
