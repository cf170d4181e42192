//! The in-invocation loop, in paused time: each step's wait is slept on tokio's clock.

use std::time::Duration;

use chrono::Utc;
use shared::edge::Budget;
use tokio::time::Instant;

use super::*;
use crate::state::{self, Status, StepDecision};

fn shifting(wait_seconds: u64) -> State {
    State { wait_seconds, ..state::fixture(Utc::now()) }
}

fn judged(mut s: State) -> State {
    s.steps.push(state::StepReport::of(&s, StepDecision::Healthy, s.step_started_at));
    s.step += 1;
    if s.step == 3 {
        s.status = Status::Succeeded;
    }
    s
}

async fn rolled_back(mut s: State, why: String) -> Result<State, Error> {
    s.status = Status::RolledBack;
    s.reason = Some(why);
    Ok(s)
}

async fn out_of_time(s: State) -> Result<State, Error> {
    rolled_back(s, "ran out of time in this invocation".into()).await
}

#[tokio::test(start_paused = true)]
async fn each_step_is_judged_after_the_wait_it_asked_for() {
    let started = Instant::now();
    let mut at = Vec::new();
    let state = drive(
        shifting(183),
        Budget::of(Duration::from_secs(900)),
        async |s| {
            at.push(started.elapsed().as_secs());
            Ok(judged(s))
        },
        rolled_back,
        out_of_time,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.status, Status::Succeeded);
    assert_eq!(at, [183, 366, 549]);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_about_to_outlive_the_invocation_is_rolled_back_first() {
    let state = drive(
        shifting(400),
        Budget::of(Duration::from_secs(900)),
        async |s| Ok(judged(s)),
        rolled_back,
        out_of_time,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Two waits of 400 s fit in 900 s; a third would eat into the 30 s kept for the rollback.
    assert_eq!((state.status, state.steps.len()), (Status::RolledBack, 2));
    assert_eq!(state.reason.as_deref(), Some("ran out of time in this invocation"));
}

#[tokio::test(start_paused = true)]
async fn a_step_that_fails_rolls_back_with_its_error() {
    let failing = async |_: State| -> Result<State, Error> { Err(Error::StateMismatch("gone".into())) };
    let state = drive(shifting(1), Budget::unlimited(), failing, rolled_back, out_of_time)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.status, Status::RolledBack);
    assert_eq!(state.reason.as_deref(), Some("a state that does not match the alias: gone"));
}

/// The step that may switch runs the post-traffic hook (up to 240 s): it is taken only if the hook and a
/// rollback after it still fit; otherwise the alias goes back before the switch.
#[tokio::test(start_paused = true)]
async fn a_switch_whose_hook_would_outlive_the_invocation_is_not_made() {
    let mut s = shifting(60);
    s.step = 2;
    s.rollout.post_traffic_function = Some("check".into());
    let stepped = std::cell::Cell::new(false);
    let state = drive(
        s,
        Budget::of(Duration::from_secs(300)),
        async |s| {
            stepped.set(true);
            Ok(judged(s))
        },
        rolled_back,
        out_of_time,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // 60 s of wait and 30 s of margin fit in 300 s; with 240 s for the hook they do not.
    assert!(!stepped.get(), "the step that switches was taken");
    assert_eq!(state.status, Status::RolledBack);
}
