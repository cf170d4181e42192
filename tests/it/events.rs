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
        if name.starts_with("spot-") {
            spot_drainer::input::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("lifecycle-") {
            let input = lifecycle_drainer::input::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Every lifecycle sample but the test notification is something to act on.
            let ignored = matches!(input, lifecycle_drainer::input::Input::Ignore(_));
            assert_eq!(ignored, name.contains("test-notification"), "{name}: {input:?}");
        } else if name.starts_with("shift-") {
            alias_shifter::Rollout::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("scale-in-") {
            scale_in_cleaner::input::parse(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            panic!("{name}: no handler claims this sample; map its prefix to a parser here");
        }
    }
}
