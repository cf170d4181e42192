//! A rollout by hand (`aws lambda invoke` with the payload): run in this invocation while it has the time,
//! and continued by a new invocation of this function when it has not (Lambda's 900 s is less than most
//! rollouts: the `aws-lambda-deploy` sample's 10 steps of 120 s need about 45 minutes).

use std::time::Duration;

use serde_json::json;
use shared::edge::Budget;
use tracing::info;

use crate::shift::{self, switch::rollback};
use crate::{Call, Error, HOOK_TIMEOUT, Rollout, SAFETY_MARGIN, State, aws, judge};

/// A whole rollout: in this invocation if it fits, else begun here and continued asynchronously (see
/// [`carry_on`]). Without this function's ARN (tests) a rollout that does not fit is refused before any
/// change.
pub async fn run(c: &Call<'_>, r: &Rollout, myself: &str) -> Result<State, Error> {
    if r.approval {
        return Err(shift::validate::invalid(
            "approval",
            "needs the state machine (a person answers between its calls): start it with aws stepfunctions start-execution",
        ));
    }
    let prepared = shift::validate::prepare(c.deps, r).await?;
    let timing = judge::window::Timing {
        period: c.deps.config.metric_period,
        timeout: prepared.timeout,
        metric_delay: r.metric_delay,
    };
    let hooks = [&r.pre_traffic_function, &r.post_traffic_function].iter().filter(|h| h.is_some()).count();
    let needed = Duration::from_secs(judge::window::rollout_seconds(
        r.weights.len(),
        r.interval,
        r.bake_seconds,
        &timing,
    )) + HOOK_TIMEOUT * u32::try_from(hooks).unwrap_or(2)
        + SAFETY_MARGIN;
    if let Some(left) = c.budget.remaining()
        && !r.dry_run
        && needed > left
        && myself.is_empty()
    {
        return Err(Error::TooLongForOneInvocation {
            needed: needed.as_secs(),
            left: left.as_secs(),
            steps: r.weights.len(),
        });
    }
    let state = shift::begin(c, r, prepared).await?;
    carry_on(c, state, myself).await
}

/// Steps the rollout while this invocation has the time for the next step and a rollback after it; then
/// hands the state to a new invocation of this function (asynchronous: Lambda queues it, and does not
/// retry it), which does the same. A hand-over that fails rolls the alias back.
pub async fn carry_on(c: &Call<'_>, state: State, myself: &str) -> Result<State, Error> {
    let hand_over = async |s: State| -> Result<State, Error> {
        if myself.is_empty() {
            return rollback(c, s, "ran out of time in this invocation".to_owned()).await;
        }
        match aws::invoke_async(c.deps, myself, &json!({"mode": "continue", "state": s})).await {
            Ok(()) => {
                info!(function = %s.function_name, alias = %s.alias_name, step = s.step, "continued in a new invocation");
                let mut s = s;
                s.reason = Some(format!("continued in a new invocation of {myself}, which reports the end"));
                Ok(s)
            }
            Err(e) => rollback(c, s, format!("could not continue in a new invocation: {e}")).await,
        }
    };
    drive(
        state,
        c.budget,
        async |s| shift::step(c, s).await,
        async |s, why| rollback(c, s, why).await,
        hand_over,
    )
    .await
}

/// Steps a rollout until it ends, sleeping on tokio's clock as each step asks. A step that fails rolls the
/// alias back. A step is taken only if it, and a rollback after it, fit in the time left (before the switch,
/// that includes the post-traffic hook's); otherwise `out_of_time` has the state.
pub async fn drive(
    mut state: State,
    budget: Budget,
    mut step: impl AsyncFnMut(State) -> Result<State, Error>,
    mut rollback: impl AsyncFnMut(State, String) -> Result<State, Error>,
    mut out_of_time: impl AsyncFnMut(State) -> Result<State, Error>,
) -> Result<State, Error> {
    while !state.is_final() {
        let wait = Duration::from_secs(state.wait_seconds);
        let hook = state.switched_at.is_none() && state.rollout.post_traffic_function.is_some();
        let step_time = if hook { HOOK_TIMEOUT } else { Duration::ZERO };
        if !budget.has_more_than(wait + step_time + SAFETY_MARGIN) {
            return out_of_time(state).await;
        }
        tokio::time::sleep(wait).await;
        state = match step(state.clone()).await {
            Ok(next) => next,
            Err(e) => return rollback(state, e.to_string()).await,
        };
    }
    Ok(state)
}

#[cfg(test)]
mod tests;
