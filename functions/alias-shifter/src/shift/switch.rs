//! The moves of the alias: the next weight, the switch of the primary, the end of the shift, and the
//! rollback. Every `UpdateAlias` carries the `RevisionId` read before it and writes the shift's mark.

use std::collections::HashMap;

use tracing::{info, warn};

use super::{guard, hooks};
use chrono::DateTime;

use crate::aws::{self, Alias, Change};
use crate::judge::window;
use crate::marker::{Control, Marker, Phase};
use crate::state::{Hook, State, Status, StepDecision, StepReport};
use crate::{Call, Error};

/// Why a rollout cannot go on; the caller rolls the alias back with it as the reason.
#[derive(Debug)]
pub(crate) enum Halt {
    Failed(Error),
    Because(String),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

impl From<shared::AwsError> for Halt {
    fn from(e: shared::AwsError) -> Self {
        Halt::Failed(e.into())
    }
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Halt::Failed(e) => e.fmt(f),
            Halt::Because(why) => f.write_str(why),
        }
    }
}

/// When the next judgement is due, and how long the state machine waits for it.
pub(crate) fn schedule(c: &Call<'_>, state: &mut State) {
    let at = state.judge_at(c.deps.config.metric_period);
    state.judge_at = Some(at);
    state.wait_seconds = window::wait_seconds(c.now(), at);
}

/// Sets the weight at `state.step`, or switches the primary when the weights are done.
pub(crate) async fn advance(c: &Call<'_>, state: &mut State) -> Result<(), Halt> {
    let r = state.rollout.clone();
    let Some(w) = state.current_weight() else { return switch(c, state).await };
    // The mark carries the step's start, so the state is moved on first and kept only if the alias is.
    let mut next = state.clone();
    let now = c.now();
    next.step_started_at = now;
    next.weights_started_at.get_or_insert(now);
    next.extensions = 0;
    let marker = next.marker().to_string();
    let change = Change {
        weights: Some(HashMap::from([(state.new_version.clone(), w)])),
        description: Some(&marker),
        ..Change::default()
    };
    next.revision_id =
        aws::update_alias(c.deps, &r.function_name, &r.alias_name, change, &state.revision_id).await?;
    *state = next;
    info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, weight = w, "weight set");
    schedule(c, state);
    Ok(())
}

/// The new version becomes the primary; then the post-traffic hook and the bake, if any.
async fn switch(c: &Call<'_>, state: &mut State) -> Result<(), Halt> {
    let r = state.rollout.clone();
    let judged_after = r.bake_seconds > 0 || r.post_traffic_function.is_some();
    let mut next = state.clone();
    let now = c.now();
    next.status = Status::Baking;
    next.switched_at = Some(now);
    let marker = next.marker().to_string();
    let description = if judged_after { marker.as_str() } else { state.alias_description.as_str() };
    let change = Change {
        primary: Some(&state.new_version),
        weights: Some(HashMap::new()),
        description: Some(description),
    };
    next.revision_id =
        aws::update_alias(c.deps, &r.function_name, &r.alias_name, change, &state.revision_id).await?;
    *state = next;
    info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, "primary switched");
    let promoted = state.promote.then(|| "promoted by request".to_owned());
    state.record(StepReport::of(state, StepDecision::Switched, now).because(promoted));
    state.extensions = 0;
    if let Some(hook) = r.post_traffic_function.clone()
        && let Err(why) = hooks::run(c, state, Hook::PostTraffic, &hook).await
    {
        return Err(Halt::Because(why));
    }
    if r.bake_seconds > 0 {
        schedule(c, state);
        return Ok(());
    }
    finish(c, state, judged_after).await
}

/// Waits for a person: the mark says so (a `promote` is then refused: the approval is the question asked),
/// and the state machine sends the approval request.
pub(crate) async fn hold(c: &Call<'_>, state: &mut State, why: String) -> Result<(), Halt> {
    let mut next = state.clone();
    next.status = Status::AwaitingApproval;
    next.reason = Some(format!("waiting for {why}"));
    next.wait_seconds = 0;
    next.judge_at = None;
    let marker = next.marker().to_string();
    let change = Change { description: Some(&marker), ..Change::default() };
    next.revision_id =
        aws::update_alias(c.deps, &state.function_name, &state.alias_name, change, &state.revision_id)
            .await?;
    *state = next;
    warn!(function = %state.function_name, alias = %state.alias_name, reason = %why, "waiting for approval");
    Ok(())
}

/// A retried call finds the alias one phase on, with this shift's mark: an earlier attempt judged the step
/// and moved on, and its answer was lost. The state is taken to where that attempt left the alias.
pub(crate) fn take_over(c: &Call<'_>, mut state: State, alias: &Alias, marker: &Marker) -> State {
    let now = c.now();
    let since = DateTime::from_timestamp_millis(marker.since).unwrap_or(now);
    let why =
        "judged by an earlier attempt of this call, whose answer was lost; taken over as it left the alias";
    state.record(StepReport::of(&state, StepDecision::Healthy, now).because(Some(why.to_owned())));
    match marker.phase {
        Phase::Weight { step, .. } => {
            state.step = step;
            state.step_started_at = since;
        }
        Phase::Baking => {
            state.step = state.rollout.weights.len();
            (state.status, state.switched_at) = (Status::Baking, Some(since));
            state.record(StepReport::of(&state, StepDecision::Switched, since));
        }
    }
    state.extensions = 0;
    state.revision_id.clone_from(&alias.revision_id);
    state.promote = marker.control == Some(Control::Promote);
    info!(function = %state.function_name, alias = %state.alias_name, step = state.step, "taken over from an earlier attempt");
    schedule(c, &mut state);
    state
}

/// The rollout succeeded: the alias's own description back, if the shift's mark is still on it.
pub(crate) async fn finish(c: &Call<'_>, state: &mut State, marked: bool) -> Result<(), Halt> {
    if marked {
        let change = Change { description: Some(&state.alias_description), ..Change::default() };
        state.revision_id =
            aws::update_alias(c.deps, &state.function_name, &state.alias_name, change, &state.revision_id)
                .await?;
    }
    state.status = Status::Succeeded;
    state.finished_at = Some(c.now());
    state.wait_seconds = 0;
    state.judge_at = None;
    Ok(())
}

/// Puts the alias back on the original version with no additional weights and its own description, if it
/// still routes as this shift left it; a change someone else made is left as found (only the shift's mark
/// is taken off). The state must be this shift's: the mark on the alias vouches for its versions.
pub async fn rollback(c: &Call<'_>, mut state: State, reason: String) -> Result<State, Error> {
    if state.is_final() {
        return Ok(state);
    }
    let reason = crate::state::cut(&reason, 1000);
    guard::check_fields(c.deps, &state)?;
    let r = state.rollout.clone();
    warn!(function = %r.function_name, alias = %r.alias_name, reason = %reason, "rolling back");
    state.finished_at = Some(c.now());
    state.wait_seconds = 0;
    state.judge_at = None;
    let failed = |error| Error::RollbackFailed { reason: reason.clone(), error };
    let alias = aws::get_alias(c.deps, &r.function_name, &r.alias_name).await.map_err(failed)?;
    let marker = guard::this_shift(&state, &alias);
    let untouched = alias.primary == state.original_version && alias.weights.is_empty();
    if marker.is_none() {
        if untouched && !Marker::present(&alias.description) {
            // The shift failed before its first change: nothing to undo.
            state.status = Status::RolledBack;
            state.reason = Some(reason);
            return Ok(state);
        }
        return Err(Error::StateMismatch(format!(
            "{} does not carry this shift's mark (its description: {:?}): the state is forged, or someone else took the alias over; nothing was changed",
            r.resource(),
            alias.description
        )));
    }
    let weighted =
        alias.primary == state.original_version && alias.weights.keys().all(|v| *v == state.new_version);
    let switched = marker.as_ref().is_some_and(|m| m.phase == Phase::Baking)
        && alias.primary == state.new_version
        && alias.weights.is_empty();
    let change = if weighted || switched {
        Change {
            primary: Some(&state.original_version),
            weights: Some(HashMap::new()),
            description: Some(&state.alias_description),
        }
    } else {
        // Not ours to move any more: take the mark off, leave the routing as found.
        Change { description: Some(&state.alias_description), ..Change::default() }
    };
    state.revision_id =
        aws::update_alias(c.deps, &r.function_name, &r.alias_name, change, &alias.revision_id)
            .await
            .map_err(failed)?;
    if weighted || switched {
        state.status = Status::RolledBack;
        state.reason = Some(reason);
        info!(function = %r.function_name, alias = %r.alias_name, version = %state.original_version, "rolled back");
    } else {
        state.status = Status::LeftAsFound;
        state.reason = Some(format!(
            "{reason}; {} now has primary {} and weights {:?}, which this rollout did not set: left as found",
            r.resource(),
            alias.primary,
            alias.weights
        ));
    }
    Ok(state)
}
