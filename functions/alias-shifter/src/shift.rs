//! The rollout against AWS: start (hooks, the first weight), judge each step once its traffic is complete,
//! move on (the next weight, the approval gate, the switch, the bake), or roll back. The moves of the
//! alias itself, the rollback among them, are in [`switch`].

pub mod guard;
mod hooks;
pub mod judging;
pub mod switch;
pub mod validate;

use tracing::info;

use self::guard::Found;
use self::switch::{Halt, advance, finish, hold, rollback, schedule};
use self::validate::Prepared;
use crate::Call;
use crate::Error;
use crate::judge::health::Verdict;
use crate::judge::window;
use crate::marker::{Control, Marker};
use crate::rollout::Rollout;
use crate::state::{Hook, Move, State, Status};

/// Validates, runs the pre-traffic hook, and sets the first weight (or switches, for `all-at-once`).
pub async fn start(c: &Call<'_>, r: &Rollout) -> Result<State, Error> {
    let prepared = validate::prepare(c.deps, r).await?;
    begin(c, r, prepared).await
}

/// [`start`] after its read-only checks: the first changes.
pub async fn begin(c: &Call<'_>, r: &Rollout, p: Prepared) -> Result<State, Error> {
    let now = c.now();
    let mut state = fresh(r, &p, now);
    if r.dry_run {
        state.status = Status::DryRun;
        state.finished_at = Some(now);
        state.reason = Some(format!(
            "would route {:?} of {} to version {} ({} s per weight, judged once its traffic is complete: up to {} s later), then make it the primary",
            r.weights,
            r.resource(),
            state.new_version,
            r.interval,
            window::rollout_seconds(1, 0, 0, &state.timing(c.deps.config.metric_period))
        ));
        return Ok(state);
    }
    if r.publish {
        validate::publish(c.deps, r, &p, &mut state).await?;
    }
    info!(function = %r.function_name, alias = %r.alias_name, from = %state.original_version, to = %state.new_version, weights = ?r.weights, "shift starting");
    if let Some(hook) = r.pre_traffic_function.clone()
        && let Err(why) = hooks::run(c, &mut state, Hook::PreTraffic, &hook).await
    {
        state.status = Status::Stopped;
        state.finished_at = Some(c.now());
        state.reason = Some(why);
        return Ok(state);
    }
    match advance(c, &mut state).await {
        Ok(()) => Ok(state),
        Err(e) => rollback(c, state, e.to_string()).await,
    }
}

/// The state of a rollout about to start.
fn fresh(r: &Rollout, p: &Prepared, now: chrono::DateTime<chrono::Utc>) -> State {
    State {
        status: Status::Shifting,
        function_name: r.function_name.clone(),
        alias_name: r.alias_name.clone(),
        new_version: r.new_version.clone().unwrap_or_else(|| "$LATEST (to be published)".to_owned()),
        original_version: p.alias.primary.clone(),
        revision_id: p.alias.revision_id.clone(),
        alias_description: p.alias.description.clone(),
        timeout_seconds: p.timeout,
        step: 0,
        step_started_at: now,
        extensions: 0,
        judge_at: None,
        wait_seconds: 0,
        promote: false,
        started_at: now,
        weights_started_at: None,
        switched_at: None,
        bake_checks: 0,
        finished_at: None,
        reason: None,
        steps: Vec::new(),
        hooks: Vec::new(),
        rollout: r.clone(),
        notification: None,
    }
}

/// Judges the current step (or bake check) once its traffic is complete, and moves on.
pub async fn step(c: &Call<'_>, mut state: State) -> Result<State, Error> {
    if state.is_final() {
        return Ok(state);
    }
    if state.status == Status::AwaitingApproval {
        return Err(validate::invalid("state.status", "awaiting approval: answer the approval request"));
    }
    let (found, marker) = guard::check(c.deps, &state).await?;
    if let Found::Ahead(alias) = &found
        && !matches!(marker.control, Some(Control::Abort(_)))
    {
        return Ok(switch::take_over(c, state, alias, &marker));
    }
    if let Some(why) = heed(&mut state, found, &marker) {
        return rollback(c, state, why).await;
    }
    let now = c.now();
    // When the traffic is complete follows from the state's bound times, not from its judge-at.
    let due = state.judge_at(c.deps.config.metric_period);
    state.judge_at = Some(due);
    if now < due {
        // Called before the traffic is complete (an early or repeated call): nothing to judge yet.
        state.wait_seconds = window::wait_seconds(now, due);
        return Ok(state);
    }
    let look = state.look(c.deps.config.metric_period);
    let judged = match judging::judge(c.deps, &state, look, now).await {
        Ok(j) => j,
        Err(e) => return rollback(c, state, e.to_string()).await,
    };
    let r = &state.rollout;
    info!(function = %r.function_name, alias = %r.alias_name, status = <&str>::from(state.status), step = judged.report.step, verdict = ?judged.verdict, new = ?judged.report.new, old = ?judged.report.old, "step judged");
    state.record(judged.report);
    if let Verdict::Unhealthy(why) = judged.verdict {
        return rollback(c, state, why).await;
    }
    move_on(c, state, judged.verdict).await
}

/// What the alias's mark asks for, heeded; the reason to roll back, if any: a person's abort, or someone
/// else's change to the alias.
pub(crate) fn heed(state: &mut State, found: Found, marker: &Marker) -> Option<String> {
    if let Some(Control::Abort(why)) = &marker.control {
        return Some(format!("aborted: {why}"));
    }
    // Only the mark says whether a person asked for a promotion, never the state handed back.
    state.promote = marker.control == Some(Control::Promote);
    match found {
        Found::AsLeft(_) | Found::Ahead(_) => None,
        Found::Request(alias) => {
            info!(function = %state.function_name, alias = %state.alias_name, promote = state.promote, "a person's request");
            state.revision_id = alias.revision_id;
            None
        }
        Found::Changed(alias) => Some(format!(
            "{} changed since this shift set it (revision {} expected, {} found): primary {}, weights {:?}",
            state.rollout.resource(),
            state.revision_id,
            alias.revision_id,
            alias.primary,
            alias.weights
        )),
    }
}

/// Moves on after a verdict that is not unhealthy. A person's request written to the alias meanwhile makes
/// the move's `UpdateAlias` fail on the stale `RevisionId`: the alias is read again, the request heeded,
/// and the move made again (a `promote` is not a reason to roll back).
async fn move_on(c: &Call<'_>, mut state: State, verdict: Verdict) -> Result<State, Error> {
    for _ in 0..3 {
        let mut next = state.clone();
        let step = next.next_move(&verdict);
        match apply(c, &mut next, step).await {
            Ok(()) => return Ok(next),
            Err(Halt::Failed(Error::Aws(e))) if e.code_is("PreconditionFailedException") => {
                let (found, marker) = guard::check(c.deps, &state).await?;
                if let Found::Ahead(alias) = &found {
                    // Another call with this same state moved the alias first (a duplicate delivery).
                    return Ok(switch::take_over(c, state, alias, &marker));
                }
                if let Some(why) = heed(&mut state, found, &marker) {
                    return rollback(c, state, why).await;
                }
            }
            Err(e) => return rollback(c, state, e.to_string()).await,
        }
    }
    rollback(c, state, "the alias kept changing while the shift tried to move it on".to_owned()).await
}

/// Makes a move.
async fn apply(c: &Call<'_>, state: &mut State, step: Move) -> Result<(), Halt> {
    match step {
        Move::NextWeight | Move::Switch => {
            state.step = if step == Move::Switch { state.rollout.weights.len() } else { state.step + 1 };
            advance(c, state).await
        }
        Move::NextCheck | Move::Finish => {
            state.bake_checks += 1;
            state.extensions = 0;
            if step == Move::Finish {
                return finish(c, state, true).await;
            }
            schedule(c, state);
            Ok(())
        }
        Move::Extend => {
            state.extensions += 1;
            schedule(c, state);
            Ok(())
        }
        Move::Hold(why) => hold(c, state, why).await,
        Move::GiveUp(why) => Err(Halt::Because(why)),
    }
}

/// A person approved: the switch (or the next weight, after an inconclusive pause), or, in a bake, the end.
pub(crate) async fn proceed(c: &Call<'_>, state: &mut State) -> Result<(), Halt> {
    state.reason = None;
    if state.switched_at.is_some() {
        state.status = Status::Baking;
        return finish(c, state, true).await;
    }
    state.status = Status::Shifting;
    state.step = (state.step + 1).min(state.rollout.weights.len());
    advance(c, state).await
}
