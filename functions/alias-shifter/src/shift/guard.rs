//! A state handed back by a caller is checked before anything is done with it: against the configuration
//! (the function may be shifted), against what `start` accepts (the rollout), and against the alias as it
//! is (this shift's mark, at this state's step, and the revision it left).

use super::validate::{check_allowed, check_hooks, invalid};
use crate::aws::{self, Alias};
use crate::marker::{Marker, Phase};
use crate::state::{State, Status};
use crate::{Deps, Error};

/// What the alias shows for a state that checks out.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// As this state left it.
    AsLeft(Alias),
    /// A person's request since (`abort` or `promote`, in the mark): the routing is as they left it.
    Request(Alias),
    /// Someone changed the alias since, without a request: the shift cannot vouch for it any more.
    Changed(Alias),
    /// This shift's next phase: an earlier attempt of this same call moved the alias on, and its answer
    /// was lost (Step Functions retries a task whose Lambda call failed on the service's side).
    Ahead(Alias),
}

/// The state's own fields: allowed function, a rollout `start` would accept, names that agree.
pub fn check_fields(deps: &Deps, state: &State) -> Result<(), Error> {
    check_allowed(deps, "state.function-name", &state.function_name)?;
    state.rollout.recheck()?;
    check_hooks(deps, &state.rollout, "state.rollout.")?;
    if state.function_name != state.rollout.function_name || state.alias_name != state.rollout.alias_name {
        return Err(invalid("state", "its function and alias are not its rollout's"));
    }
    // Baking is the phase after the switch, and only then (a state "baking" before it would "finish" a
    // rollout whose new version never became the primary).
    let contradictory = match state.status {
        Status::Baking => state.switched_at.is_none(),
        Status::Shifting => state.switched_at.is_some(),
        _ => false,
    };
    if contradictory {
        return Err(invalid("state.status", "baking before the switch, or shifting after it"));
    }
    let version = |v: &str| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit());
    if !version(&state.new_version)
        || !version(&state.original_version)
        || state.new_version == state.original_version
    {
        return Err(invalid("state", "its versions are not two published versions"));
    }
    Ok(())
}

/// The shift's mark on the alias, if it is this state's shift: the same id, versions and rollout (its
/// digest), at any step.
pub fn this_shift(state: &State, alias: &Alias) -> Option<Marker> {
    let expected = state.marker();
    Marker::parse(&alias.description).filter(|m| {
        m.shift == expected.shift
            && m.digest == expected.digest
            && m.from == expected.from
            && m.to == expected.to
    })
}

fn mismatch(state: &State, alias: &Alias, what: &str) -> Error {
    Error::StateMismatch(format!(
        "{}:{} {what} (its description: {:?}; this state: shift {}, {} -> {}, {:?}); nothing was changed",
        state.function_name,
        state.alias_name,
        alias.description,
        state.shift_id(),
        state.original_version,
        state.new_version,
        state.phase()
    ))
}

/// Checks the state, then reads the alias: it must carry this shift's mark (its id, versions and rollout)
/// at this state's step, begun when this state says. A later step on the alias means the state is stale
/// (a duplicate or late delivery); no mark, another shift's, other versions, another rollout or other times
/// mean it is forged or the alias was taken over. Both are refused, changing nothing. Also returns the
/// mark, with a person's request if any.
pub async fn check(deps: &Deps, state: &State) -> Result<(Found, Marker), Error> {
    check_fields(deps, state)?;
    let alias = aws::get_alias(deps, &state.function_name, &state.alias_name).await?;
    let Some(marker) = this_shift(state, &alias) else {
        return Err(mismatch(
            state,
            &alias,
            "does not carry this shift's mark (its id, versions and rollout)",
        ));
    };
    let (on_alias, here) = (marker.phase.order(), state.phase().order());
    if on_alias > here && next_phase(state, &marker) {
        return Ok((Found::Ahead(alias), marker));
    }
    if on_alias > here {
        return Err(mismatch(state, &alias, "is further on than this state: the state is stale"));
    }
    if on_alias < here {
        return Err(mismatch(state, &alias, "is at an earlier step than this state says"));
    }
    if marker.since != state.marker().since {
        return Err(mismatch(state, &alias, "began this step at another time than this state says"));
    }
    if marker.awaiting != (state.status == Status::AwaitingApproval) {
        return Err(mismatch(state, &alias, "does not wait for approval as this state says"));
    }
    let found = match (alias.revision_id == state.revision_id, &marker.control) {
        (true, _) => Found::AsLeft(alias),
        (false, Some(_)) => Found::Request(alias),
        (false, None) => Found::Changed(alias),
    };
    Ok((found, marker))
}

/// Whether the alias shows the phase a call with this state would have moved it to: the next weight, or the
/// switch (after a step, or an approval), and not back in time.
fn next_phase(state: &State, marker: &Marker) -> bool {
    let next = match (state.phase(), marker.phase) {
        (Phase::Weight { step, .. }, Phase::Weight { step: on, .. }) => on == step + 1,
        // Not after a post-traffic hook: the earlier attempt may still be running it, and only it knows
        // the hook's answer.
        (Phase::Weight { .. }, Phase::Baking) => state.rollout.post_traffic_function.is_none(),
        (Phase::Baking, _) => false,
    };
    let moving = matches!(state.status, Status::Shifting | Status::AwaitingApproval);
    next && moving && !marker.awaiting && marker.since >= state.marker().since
}
