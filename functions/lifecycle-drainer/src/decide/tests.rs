use std::collections::BTreeMap;

use super::*;

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
}

fn reg(status: InstanceStatus, running: i32, marked_at: Option<i64>) -> Found {
    let mut attributes = BTreeMap::new();
    if let Some(at) = marked_at {
        let m = Marker::new(shared::drain::Owner::LifecycleDrainer, "terminating", t(at));
        attributes.insert(shared::drain::marker::ATTRIBUTE.to_owned(), m.value());
    }
    Found {
        cluster: "web".into(),
        container_instance_arn: format!("arn:ci/{status}/{running}"),
        ec2_instance_id: "i-12345678".into(),
        status,
        running_tasks: running,
        pending_tasks: 0,
        agent_connected: true,
        attributes,
    }
}

#[test]
fn the_kind_of_action_follows_the_hook_and_the_state() {
    use LifecycleState as S;
    assert_eq!(kind(Transition::Terminating, S::TerminatingWait), Some(Kind::Terminating));
    assert_eq!(kind(Transition::Terminating, S::WarmedTerminatingWait), Some(Kind::Terminating));
    assert_eq!(kind(Transition::Launching, S::PendingWait), Some(Kind::Launching));
    assert_eq!(kind(Transition::Launching, S::WarmedPendingWait), Some(Kind::IntoWarmPool));
    // Back to the warm pool on scale in (`ReuseOnScaleIn`): stopped there with its tasks, so drained first.
    assert_eq!(kind(Transition::Terminating, S::WarmedPendingWait), Some(Kind::Terminating));
    for (transition, state) in [
        (Transition::Terminating, S::InService),
        (Transition::Terminating, S::PendingWait),
        (Transition::Launching, S::TerminatingWait),
        (Transition::Launching, S::Unknown),
    ] {
        assert_eq!(kind(transition, state), None, "{transition:?} {state}");
    }
}

#[test]
fn the_deadline_is_the_sooner_of_ours_and_the_hooks_lifetime() {
    let (began, period) = (t(0), Duration::from_secs(60));
    let d = |since, timeout, global| deadline((began, since), Duration::from_secs(timeout), global, period);
    assert_eq!(d(Some(began), 900, 172_800), (t(900), TimeoutCause::Ours));
    // A 30 s heartbeat timeout gives the hook 3,000 s in all, counted from when it began; we answer two
    // periods and a minute before.
    assert_eq!(d(Some(began), 7200, 3000), (t(2820), TimeoutCause::HookLifetime));
    // Ours counts from the drain's start: a load balancer's deregistration delay before it costs nothing.
    assert_eq!(d(Some(t(300)), 900, 172_800), (t(1200), TimeoutCause::Ours));
    // Not drained yet: only the hook's lifetime can be up.
    assert_eq!(d(None, 900, 172_800).1, TimeoutCause::HookLifetime);
}

#[test]
fn a_drain_counts_from_its_earliest_marker_never_before_the_wait() {
    let began = t(100);
    assert_eq!(drain_began(&[reg(InstanceStatus::Active, 2, None)], began), None);
    let regs = [reg(InstanceStatus::Draining, 2, Some(400)), reg(InstanceStatus::Draining, 0, Some(300))];
    assert_eq!(drain_began(&regs, began), Some(t(300)));
    // Drained by someone else before the action began: counted from the action.
    assert_eq!(drain_began(&[reg(InstanceStatus::Draining, 2, Some(0))], began), Some(began));
    // A marker left on an ACTIVE registration stands for no drain: the drain has not begun.
    assert_eq!(drain_began(&[reg(InstanceStatus::Active, 2, Some(150))], began), None);
    assert_eq!(drained_at(&[reg(InstanceStatus::Active, 0, Some(150))]), None);
}

#[test]
fn heartbeats_go_out_before_the_pass_after_next_would_be_too_late() {
    let period = Duration::from_secs(60);
    assert!(heartbeat_due(600, None, t(0), period), "none sent by this sandbox yet");
    assert!(!heartbeat_due(600, Some(t(0)), t(479), period));
    assert!(heartbeat_due(600, Some(t(0)), t(480), period));
    assert!(heartbeat_due(60, Some(t(0)), t(0), period), "a hook shorter than two periods: every pass");
    assert!(outlasts_two_periods(121, period) && !outlasts_two_periods(120, period));
}

#[test]
fn a_terminating_instance_is_drained_then_looked_at() {
    let until = (t(900), TimeoutCause::Ours);
    assert_eq!(drain(&[], until, t(0)), Drain::NotEcs);
    let active = reg(InstanceStatus::Active, 2, None);
    let unmarked = reg(InstanceStatus::Draining, 0, None);
    assert_eq!(
        drain(&[active.clone(), unmarked.clone()], until, t(0)),
        Drain::Start {
            activate: vec![active.container_instance_arn.clone()],
            mark: vec![unmarked.container_instance_arn.clone()]
        }
    );
    assert_eq!(drain(&[reg(InstanceStatus::Draining, 2, Some(0))], until, t(5)), Drain::Busy(2));
    assert_eq!(
        drain(
            &[reg(InstanceStatus::Draining, 0, Some(0)), reg(InstanceStatus::Draining, 0, Some(3))],
            until,
            t(5)
        ),
        Drain::Look
    );
    assert_eq!(drain(&[active], until, t(900)), Drain::TimeUp(TimeoutCause::Ours));
}

#[test]
fn the_drain_began_with_its_latest_marker() {
    assert_eq!(
        drained_at(&[reg(InstanceStatus::Draining, 0, Some(3)), reg(InstanceStatus::Draining, 0, Some(7))]),
        Some(t(7))
    );
    assert_eq!(drained_at(&[reg(InstanceStatus::Draining, 0, None)]), None);
}

#[test]
fn a_launch_is_ready_when_ecs_can_place_tasks() {
    let mut disconnected = reg(InstanceStatus::Active, 0, None);
    disconnected.agent_connected = false;
    let deadline = t(300);
    assert_eq!(launch(&[reg(InstanceStatus::Active, 0, None)], deadline, t(0)), Launch::Ready);
    assert_eq!(
        launch(&[disconnected.clone(), reg(InstanceStatus::Active, 0, None)], deadline, t(0)),
        Launch::Ready
    );
    assert!(
        matches!(launch(&[disconnected.clone()], deadline, t(0)), Launch::NotYet(why) if why.contains("agent"))
    );
    assert!(matches!(launch(&[], deadline, t(0)), Launch::NotYet(_)));
    assert!(matches!(launch(&[disconnected], deadline, t(300)), Launch::Abandon(_)));
    assert_eq!(launch(&[reg(InstanceStatus::Draining, 0, None)], deadline, t(0)), Launch::DrainedByOthers);
    // Our drain from its return to the warm pool: undone as it comes back.
    let ours = reg(InstanceStatus::Draining, 0, Some(-600));
    assert_eq!(
        launch(std::slice::from_ref(&ours), deadline, t(0)),
        Launch::Undo(vec![ours.container_instance_arn])
    );
    assert!(takes_tasks_in_warm_pool(&[reg(InstanceStatus::Active, 0, None)]));
    assert!(!takes_tasks_in_warm_pool(&[]));
}
