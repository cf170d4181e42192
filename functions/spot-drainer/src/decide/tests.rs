use std::time::Duration;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_default()
}

fn ours(trigger: Trigger) -> Marker {
    Marker::new(Owner::SpotDrainer, trigger.name(), at("2026-11-22T10:00:00Z"))
}

fn ec2(state: &str, launched: &str, events: &[&str]) -> Ec2 {
    Ec2 {
        state: Some(state.into()),
        launched: Some(at(launched)),
        open_events: events.iter().map(|e| (*e).to_owned()).collect(),
        events_known: true,
    }
}

#[test]
fn a_maintenance_drain_stands_while_ec2_says_nothing_of_its_events() {
    let now = at("2026-11-22T12:00:00Z");
    let mut unknown = ec2("running", "2026-11-01T00:00:00Z", &[]);
    unknown.events_known = false;
    assert_eq!(sweep(&ours(Trigger::Scheduled), &unknown, now, None, false), Sweep::Leave);
    let known = ec2("running", "2026-11-01T00:00:00Z", &[]);
    assert!(matches!(sweep(&ours(Trigger::Scheduled), &known, now, None, false), Sweep::Undo(_)));
}

#[test]
fn only_active_instances_are_drained() {
    assert_eq!(decide(InstanceStatus::Active, false), Action::Drained);
    assert_eq!(decide(InstanceStatus::Active, true), Action::DryRun);
    assert_eq!(decide(InstanceStatus::Draining, false), Action::AlreadyDraining);
    for status in [
        InstanceStatus::Registering,
        InstanceStatus::Deregistering,
        InstanceStatus::RegistrationFailed,
        InstanceStatus::Inactive,
        InstanceStatus::Unknown,
    ] {
        assert_eq!(decide(status, false), Action::NotDrainable, "{status}");
    }
}

#[test]
fn only_drains_that_may_be_undone_carry_a_marker() {
    let now = at("2026-11-22T10:00:00Z");
    assert_eq!(marker_for(Trigger::Terminate, now), None);
    for t in [Trigger::Stop, Trigger::Hibernate, Trigger::Rebalance, Trigger::Scheduled] {
        assert_eq!(marker_for(t, now).map(|m| m.reason), Some(t.name().to_owned()), "{t:?}");
    }
}

#[test]
fn a_new_warning_stamps_our_marker_again() {
    let later = at("2026-11-22T11:00:00Z");
    let stop = ours(Trigger::Stop);
    assert_eq!(after_warning(Some(&stop), Trigger::Stop, later).map(|m| m.at), Some(later));
    assert_eq!(
        after_warning(Some(&ours(Trigger::Rebalance)), Trigger::Terminate, later).map(|m| m.reason),
        Some("terminate".into())
    );
    assert_eq!(after_warning(Some(&stop), Trigger::Stop, stop.at), None, "nothing newer");
    assert_eq!(after_warning(None, Trigger::Stop, later), None);
    let theirs = Marker::new(Owner::ScaleInCleaner, "consolidation", stop.at);
    assert_eq!(after_warning(Some(&theirs), Trigger::Stop, later), None, "not ours");
    assert_eq!(after_warning(Some(&stop.pending()), Trigger::Stop, later), None, "not known to be ours");
    // Never back in time, never to a weaker reason: a late or forged event must not make it undoable.
    let earlier = at("1970-01-01T00:00:00Z");
    let hibernate = after_warning(Some(&stop), Trigger::Hibernate, earlier).expect("another reason");
    assert_eq!((hibernate.reason.as_str(), hibernate.at), ("hibernate", stop.at));
    assert_eq!(after_warning(Some(&stop), Trigger::Rebalance, later), None, "a weaker reason");
    assert_eq!(after_warning(Some(&stop), Trigger::Scheduled, later), None, "a weaker reason");
}

#[test]
fn a_stop_drain_is_undone_only_once_the_instance_runs_again_after_it() {
    let now = at("2026-11-22T12:00:00Z");
    let stop = ours(Trigger::Stop);
    assert!(matches!(
        sweep(&stop, &ec2("running", "2026-11-22T11:00:00Z", &[]), now, None, false),
        Sweep::Undo(_)
    ));
    assert_eq!(
        sweep(&stop, &ec2("running", "2026-11-22T09:00:00Z", &[]), now, None, false),
        Sweep::Leave,
        "never stopped since"
    );
    assert_eq!(sweep(&stop, &ec2("stopped", "2026-11-22T11:00:00Z", &[]), now, None, false), Sweep::Leave);
    assert_eq!(sweep(&stop, &Ec2::default(), now, None, false), Sweep::Leave, "EC2 does not know it");
}

#[test]
fn a_maintenance_drain_stands_while_ec2_schedules_it() {
    let now = at("2026-11-22T12:00:00Z");
    let scheduled = ours(Trigger::Scheduled);
    let open = ec2("running", "2026-11-20T00:00:00Z", &["The instance is running on degraded hardware"]);
    assert_eq!(sweep(&scheduled, &open, now, None, false), Sweep::Leave);
    assert_eq!(sweep(&scheduled, &open, now, None, true), Sweep::Replace);
    let gone = ec2("running", "2026-11-20T00:00:00Z", &[]);
    assert!(
        matches!(sweep(&scheduled, &gone, now, None, true), Sweep::Undo(_)),
        "cancelled or done, still running"
    );
    assert_eq!(
        sweep(&scheduled, &ec2("stopped", "2026-11-20T00:00:00Z", &[]), now, None, false),
        Sweep::Leave
    );
    assert!(event_over("[Completed] The instance is running on degraded hardware"));
    assert!(!event_over("The instance is scheduled for a reboot"));
}

#[test]
fn a_careful_rebalance_drain_is_undone_when_no_warning_followed() {
    let rebalance = ours(Trigger::Rebalance);
    let hour = Some(Duration::from_secs(3600));
    let running = ec2("running", "2026-11-20T00:00:00Z", &[]);
    assert!(matches!(sweep(&rebalance, &running, at("2026-11-22T11:00:00Z"), hour, false), Sweep::Undo(_)));
    assert_eq!(sweep(&rebalance, &running, at("2026-11-22T10:59:59Z"), hour, false), Sweep::Leave);
    assert_eq!(
        sweep(&rebalance, &running, at("2026-11-23T10:00:00Z"), None, false),
        Sweep::Leave,
        "immediate mode"
    );
    assert_eq!(
        sweep(&ours(Trigger::Terminate), &running, at("2026-11-23T10:00:00Z"), hour, true),
        Sweep::Leave
    );
}

#[test]
fn a_careful_drain_keeps_the_reserve_at_its_exact_edge() {
    let room = |used: i64| Room { registered: (1000, 1000), remaining: (1000 - used, 1000 - used) };
    // Two others of 1000 with 600 used each: 800 spare of 2000 once the instance's 200 move.
    assert_eq!(spare_without(room(200), &[room(600), room(600)], 30, 30), Ok(()));
    assert_eq!(spare_without(room(200), &[room(600), room(600)], 20, 20), Ok(()));
    assert!(spare_without(room(201), &[room(600), room(600)], 30, 0).unwrap_err().contains("spare CPU"));
    assert!(spare_without(room(200), &[], 0, 20).is_err(), "nowhere to go");
}

#[test]
fn drain_on_filters_triggers() {
    assert!(wanted(Trigger::Stop, &[Trigger::Stop]));
    assert!(!wanted(Trigger::Rebalance, &[Trigger::Terminate, Trigger::Stop, Trigger::Hibernate]));
}

#[test]
fn a_warning_takes_over_a_drain_the_scale_in_cleaner_could_undo() {
    let when = at("2026-11-22T11:00:00Z");
    let cleaner = Marker::new(Owner::ScaleInCleaner, "consolidation", at("2026-11-22T10:00:00Z"));
    assert_eq!(take_over(Some(&cleaner), Trigger::Terminate, when), None, "the cleaner's to reap");
    assert_eq!(take_over(Some(&cleaner), Trigger::Rebalance, when), None, "a risk only");
    // Dated no earlier than the cleaner's drain: an old event never makes it undoable.
    let old = at("1970-01-01T00:00:00Z");
    assert_eq!(
        take_over(Some(&cleaner), Trigger::Hibernate, old),
        Some(Marker::new(Owner::SpotDrainer, "hibernate", cleaner.at))
    );
    assert_eq!(
        take_over(Some(&cleaner), Trigger::Stop, when),
        Some(Marker::new(Owner::SpotDrainer, "stop", when))
    );
    assert!(take_over(Some(&cleaner.pending()), Trigger::Stop, when).is_some());
    let lifecycle = Marker::new(Owner::LifecycleDrainer, "terminating", when);
    assert_eq!(take_over(Some(&lifecycle), Trigger::Stop, when), None, "never undone by its owner");
    assert_eq!(take_over(None, Trigger::Stop, when), None);
}
