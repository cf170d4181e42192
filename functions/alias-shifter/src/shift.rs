//! The rollout against AWS: start (hooks, the first weight), judge each step once its traffic is complete,
//! move on (the next weight, the approval gate, the switch, the bake), or roll back.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::json;
use tracing::{info, warn};

use crate::aws::{self, Change, HookAnswer};
use crate::control::rollback;
use crate::guard::{self, Found};
use crate::health::Verdict;
use crate::input::Rollout;
use crate::judge;
use crate::marker::{Control, Marker, Phase};
use crate::state::{Hook, HookReport, State, Status, StepDecision, StepReport};
use crate::validate::{self, Prepared};
use crate::window;
use crate::{Deps, Error};

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

/// Validates, runs the pre-traffic hook, and sets the first weight (or switches, for `all-at-once`).
pub async fn start(deps: &Deps, r: &Rollout) -> Result<State, Error> {
    let prepared = validate::prepare(deps, r).await?;
    begin(deps, r, prepared).await
}

/// [`start`] after its read-only checks: the first changes.
pub async fn begin(deps: &Deps, r: &Rollout, p: Prepared) -> Result<State, Error> {
    let now = Utc::now();
    let mut state = State {
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
    };
    if r.dry_run {
        state.status = Status::DryRun;
        state.finished_at = Some(now);
        state.reason = Some(format!(
            "would route {:?} of {} to version {} ({} s per weight, judged once its traffic is complete: up to {} s later), then make it the primary",
            r.weights,
            r.resource(),
            state.new_version,
            r.interval,
            window::rollout_seconds(1, 0, 0, &state.timing(deps.config.metric_period))
        ));
        return Ok(state);
    }
    if r.publish {
        let version = aws::publish_version(deps, r).await?;
        if version == p.alias.primary {
            return Err(validate::invalid(
                "publish",
                format!("$LATEST is unchanged since version {version}, the primary of {}", r.resource()),
            ));
        }
        let new = validate::check_new_version(deps, r, &version, &p.primary).await?;
        let timeout = u32::try_from(new.timeout().unwrap_or(3)).unwrap_or(900);
        state.timeout_seconds = state.timeout_seconds.max(timeout);
        state.new_version = version;
    }
    info!(function = %r.function_name, alias = %r.alias_name, from = %state.original_version, to = %state.new_version, weights = ?r.weights, "shift starting");
    if let Some(hook) = r.pre_traffic_function.clone()
        && let Err(why) = run_hook(deps, &mut state, Hook::PreTraffic, &hook).await
    {
        state.status = Status::Stopped;
        state.finished_at = Some(Utc::now());
        state.reason = Some(why);
        return Ok(state);
    }
    match advance(deps, &mut state).await {
        Ok(()) => Ok(state),
        Err(e) => rollback(deps, state, e.to_string()).await,
    }
}

/// Invokes a hook with the rollout; `Err` with the reason when it failed (or could not be invoked).
async fn run_hook(deps: &Deps, state: &mut State, hook: Hook, function: &str) -> Result<(), String> {
    let payload = json!({
        "hook": hook, "function-name": state.function_name, "alias-name": state.alias_name,
        "new-version": state.new_version, "original-version": state.original_version, "rollout": state.rollout,
    });
    let answer = aws::invoke_hook(deps, function, &payload).await;
    let (passed, detail) = match answer {
        Ok(HookAnswer::Passed) => (true, None),
        Ok(HookAnswer::Failed(why)) => (false, Some(why)),
        Err(e) => (false, Some(e.to_string())),
    };
    info!(function = %state.function_name, alias = %state.alias_name, hook = <&str>::from(hook), hook_function = %function, passed, "hook ran");
    state.hooks.push(HookReport { hook, function: function.to_owned(), passed, detail: detail.clone() });
    if passed {
        Ok(())
    } else {
        Err(format!("{} hook {function} failed: {}", <&str>::from(hook), detail.unwrap_or_default()))
    }
}

/// Sets the weight at `state.step`, or switches the primary when the weights are done.
async fn advance(deps: &Deps, state: &mut State) -> Result<(), Halt> {
    let r = state.rollout.clone();
    let now = Utc::now();
    let Some(w) = state.current_weight() else { return switch(deps, state).await };
    let marker = state.marker().to_string();
    let change = Change {
        weights: Some(HashMap::from([(state.new_version.clone(), w)])),
        description: Some(&marker),
        ..Change::default()
    };
    state.revision_id =
        aws::update_alias(deps, &r.function_name, &r.alias_name, change, &state.revision_id).await?;
    info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, weight = w, "weight set");
    state.step_started_at = now;
    state.weights_started_at.get_or_insert(now);
    state.extensions = 0;
    schedule(deps, state, now);
    Ok(())
}

/// When the next judgement is due, and how long the state machine waits for it.
fn schedule(deps: &Deps, state: &mut State, now: chrono::DateTime<Utc>) {
    let at = judge::judge_at(state, deps.config.metric_period);
    state.judge_at = Some(at);
    state.wait_seconds = window::wait_seconds(now, at);
}

/// The new version becomes the primary; then the post-traffic hook and the bake, if any.
async fn switch(deps: &Deps, state: &mut State) -> Result<(), Halt> {
    let r = state.rollout.clone();
    let now = Utc::now();
    let judged_after = r.bake_seconds > 0 || r.post_traffic_function.is_some();
    let marker = Marker { phase: Phase::Baking, ..state.marker() }.to_string();
    let description = if judged_after { marker.as_str() } else { state.alias_description.as_str() };
    let change = Change {
        primary: Some(&state.new_version),
        weights: Some(HashMap::new()),
        description: Some(description),
    };
    state.revision_id =
        aws::update_alias(deps, &r.function_name, &r.alias_name, change, &state.revision_id).await?;
    info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, "primary switched");
    state.status = Status::Baking;
    state.switched_at = Some(now);
    state.steps.push(StepReport {
        step: state.switch_step(),
        weight: 1.0,
        started_at: now,
        window: None,
        judged_at: None,
        new: None,
        old: None,
        alarms_in_alarm: Vec::new(),
        decision: StepDecision::Switched,
        reason: state.promote.then(|| "promoted by request".to_owned()),
    });
    state.extensions = 0;
    if let Some(hook) = r.post_traffic_function.clone()
        && let Err(why) = run_hook(deps, state, Hook::PostTraffic, &hook).await
    {
        return Err(Halt::Because(why));
    }
    if r.bake_seconds > 0 {
        schedule(deps, state, now);
        return Ok(());
    }
    finish(deps, state, judged_after).await
}

/// The rollout succeeded: the alias's own description back, if the shift's mark is still on it.
async fn finish(deps: &Deps, state: &mut State, marked: bool) -> Result<(), Halt> {
    if marked {
        let change = Change { description: Some(&state.alias_description), ..Change::default() };
        state.revision_id =
            aws::update_alias(deps, &state.function_name, &state.alias_name, change, &state.revision_id)
                .await?;
    }
    state.status = Status::Succeeded;
    state.finished_at = Some(Utc::now());
    state.wait_seconds = 0;
    state.judge_at = None;
    Ok(())
}

/// Judges the current step (or bake check) once its traffic is complete, and moves on.
pub async fn step(deps: &Deps, mut state: State) -> Result<State, Error> {
    if state.is_final() {
        return Ok(state);
    }
    if state.status == Status::AwaitingApproval {
        return Err(validate::invalid("state.status", "awaiting approval: answer the approval request"));
    }
    match guard::check(deps, &state).await? {
        Found::AsLeft(_) => {}
        Found::Request(alias, Control::Promote) => {
            info!(function = %state.function_name, alias = %state.alias_name, "promotion requested");
            state.revision_id = alias.revision_id;
            state.promote = true;
        }
        Found::Request(_, Control::Abort(why)) => {
            return rollback(deps, state, format!("aborted: {why}")).await;
        }
        Found::Changed(alias) => {
            let why = format!(
                "{} changed since this shift set it (revision {} expected, {} found): primary {}, weights {:?}",
                state.rollout.resource(),
                state.revision_id,
                alias.revision_id,
                alias.primary,
                alias.weights
            );
            return rollback(deps, state, why).await;
        }
    }
    let now = Utc::now();
    if let Some(at) = state.judge_at.filter(|at| now < *at) {
        // Called before the traffic is complete (an early or repeated call): nothing to judge yet.
        state.wait_seconds = window::wait_seconds(now, at);
        return Ok(state);
    }
    let judged = match judge::judge(deps, &state, now).await {
        Ok(j) => j,
        Err(e) => return rollback(deps, state, e.to_string()).await,
    };
    let r = &state.rollout;
    info!(function = %r.function_name, alias = %r.alias_name, status = <&str>::from(state.status), step = judged.report.step, verdict = ?judged.verdict, new = ?judged.report.new, old = ?judged.report.old, "step judged");
    state.steps.push(judged.report);
    let result = match (state.status, judged.verdict) {
        (_, Verdict::Unhealthy(why)) => return rollback(deps, state, why).await,
        (_, Verdict::Inconclusive(why)) => inconclusive(deps, &mut state, why, now).await,
        (Status::Baking, Verdict::Healthy) => baked(deps, &mut state, now).await,
        (_, Verdict::Healthy) => passed(deps, &mut state).await,
    };
    match result {
        Ok(()) => Ok(state),
        Err(e) => rollback(deps, state, e.to_string()).await,
    }
}

/// A weight passed: the next one, the approval gate, or the switch.
async fn passed(deps: &Deps, state: &mut State) -> Result<(), Halt> {
    let last = state.step + 1 >= state.rollout.weights.len() || state.promote;
    if last && state.rollout.approval && !state.promote {
        pause(state, "approval before the switch".to_owned());
        return Ok(());
    }
    state.step = if last { state.rollout.weights.len() } else { state.step + 1 };
    advance(deps, state).await
}

/// Too little traffic: another interval, or a person's decision, or a rollback. Intermediate bake checks
/// just go on: only the bake as a whole must have traffic.
async fn inconclusive(
    deps: &Deps,
    state: &mut State,
    why: String,
    now: chrono::DateTime<Utc>,
) -> Result<(), Halt> {
    let r = &state.rollout;
    let (_, last_check) = window::bake_check_end(
        state.switched_at.unwrap_or(now),
        r.interval,
        r.bake_seconds,
        state.bake_checks + 1,
    );
    if state.status == Status::Baking && !last_check {
        return baked(deps, state, now).await;
    }
    if state.extensions < r.max_extensions {
        state.extensions += 1;
        schedule(deps, state, now);
        return Ok(());
    }
    if r.approval {
        pause(state, format!("inconclusive after {} extra interval(s): {why}", state.extensions));
        return Ok(());
    }
    Err(Halt::Because(format!("inconclusive after {} extra interval(s): {why}", state.extensions)))
}

fn pause(state: &mut State, why: String) {
    warn!(function = %state.function_name, alias = %state.alias_name, reason = %why, "waiting for approval");
    state.status = Status::AwaitingApproval;
    state.reason = Some(format!("waiting for {why}"));
    state.wait_seconds = 0;
    state.judge_at = None;
}

/// A bake check passed: the next one, or the end of the rollout.
async fn baked(deps: &Deps, state: &mut State, now: chrono::DateTime<Utc>) -> Result<(), Halt> {
    let r = &state.rollout;
    let (_, last) = window::bake_check_end(
        state.switched_at.unwrap_or(now),
        r.interval,
        r.bake_seconds,
        state.bake_checks + 1,
    );
    state.bake_checks += 1;
    if last {
        return finish(deps, state, true).await;
    }
    state.extensions = 0;
    schedule(deps, state, now);
    Ok(())
}

/// A person approved: the switch (or the next weight, after an inconclusive pause), or, in a bake, the end.
pub(crate) async fn proceed(deps: &Deps, state: &mut State) -> Result<(), Halt> {
    state.reason = None;
    if state.switched_at.is_some() {
        state.status = Status::Baking;
        return finish(deps, state, true).await;
    }
    state.status = Status::Shifting;
    state.step = (state.step + 1).min(state.rollout.weights.len());
    advance(deps, state).await
}
