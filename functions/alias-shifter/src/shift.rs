//! The rollout against AWS: validate, set weights, judge each step, switch or roll back.

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_lambda::types::State as FunctionState;
use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::events::InvalidEvent;
use tracing::{info, warn};

use crate::aws::{self, Alias, not_found};
use crate::health::{self, Metrics, Thresholds, Verdict};
use crate::input::Rollout;
use crate::routing::{Routing, routable_together};
use crate::state::{State, Status, StepDecision, StepReport};
use crate::{Deps, Error};

/// Extra intervals a step may wait for `min-invocations` before passing on what it saw.
pub const MAX_EXTENSIONS: u32 = 2;

/// How long a Pending new version is waited for: 30 reads, 2 s apart.
const PENDING_READS: u32 = 30;
const PENDING_POLL: std::time::Duration = std::time::Duration::from_secs(2);

fn invalid(field: &str, reason: String) -> Error {
    Error::InvalidInput(InvalidEvent::new(field, reason))
}

/// Everything that must hold before the first change. Publishes `$LATEST` first when asked (not in a dry
/// run); returns the state to start from.
async fn validate(deps: &Deps, r: &Rollout, now: DateTime<Utc>) -> Result<State, Error> {
    let allowed = &deps.config.allowed_functions;
    if !allowed.is_empty() && !allowed.iter().any(|f| f == r.function_short_name() || *f == r.function_name) {
        return Err(invalid(
            "function-name",
            format!(
                "{} is not among the functions this shifter may shift (ALLOWED_FUNCTIONS)",
                r.function_name
            ),
        ));
    }
    match aws::function_configuration(deps, r, None).await {
        Ok(_) => {}
        Err(e) if not_found(&e) => {
            return Err(invalid("function-name", format!("no function {}", r.function_name)));
        }
        Err(e) => return Err(e.into()),
    }
    let alias = match aws::get_alias(deps, r).await {
        Ok(a) => a,
        Err(e) if not_found(&e) => {
            return Err(invalid(
                "alias-name",
                format!("function {} has no alias {}", r.function_name, r.alias_name),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !alias.weights.is_empty() {
        return Err(invalid(
            "alias-name",
            format!(
                "a shift is already in progress on {} (additional version weights {:?}); finish or roll it back first",
                r.resource(),
                alias.weights
            ),
        ));
    }
    let new_version = match (&r.new_version, r.publish && !r.dry_run) {
        (Some(v), _) => v.clone(),
        (None, true) => aws::publish_version(deps, r).await?,
        (None, false) => "$LATEST (to be published)".to_owned(),
    };
    if new_version == alias.primary {
        return Err(invalid(
            if r.publish { "publish" } else { "new-version" },
            format!("version {new_version} is already the primary of {}", r.resource()),
        ));
    }
    if !r.publish || !r.dry_run {
        check_new_version(deps, r, &new_version, &alias).await?;
    }
    if !r.alarms.is_empty() {
        let found = aws::alarm_states(deps, &r.alarms).await?;
        let missing: Vec<&String> = r.alarms.iter().filter(|a| !found.contains_key(*a)).collect();
        if !missing.is_empty() {
            return Err(invalid("alarms", format!("no CloudWatch alarm named {missing:?}")));
        }
    }
    Ok(State {
        status: Status::Shifting,
        function_name: r.function_name.clone(),
        alias_name: r.alias_name.clone(),
        new_version,
        original_version: alias.primary,
        revision_id: alias.revision_id,
        step: 0,
        step_started_at: now,
        extensions: 0,
        wait_seconds: 0,
        started_at: now,
        finished_at: None,
        reason: None,
        steps: Vec::new(),
        rollout: r.clone(),
        notification: None,
    })
}

/// The new version exists, is Active (a just-published Pending one is waited for: its function's VPC or
/// SnapStart set-up), and can share the alias with the primary.
async fn check_new_version(deps: &Deps, r: &Rollout, new_version: &str, alias: &Alias) -> Result<(), Error> {
    let mut pending_reads = 0;
    let new = loop {
        let c = match aws::function_configuration(deps, r, Some(new_version)).await {
            Ok(c) => c,
            Err(e) if not_found(&e) => {
                return Err(invalid(
                    "new-version",
                    format!("function {} has no version {new_version}", r.function_name),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if c.state() != Some(&FunctionState::Pending) || pending_reads >= PENDING_READS {
            break c;
        }
        pending_reads += 1;
        tokio::time::sleep(PENDING_POLL).await;
    };
    if let Some(state) = new.state().filter(|s| **s != FunctionState::Active) {
        let why = new.state_reason().map(|r| format!(" ({r})")).unwrap_or_default();
        return Err(invalid(
            "new-version",
            format!("version {new_version} is {}, not Active{why}", state.as_str()),
        ));
    }
    let old = aws::function_configuration(deps, r, Some(&alias.primary)).await?;
    routable_together(new_version, &Routing::of(&new), &Routing::of(&old))
        .map_err(|why| invalid("new-version", why))
}

/// Validates and sets the first weight (or switches at once, for `all-at-once`).
pub async fn start(deps: &Deps, r: &Rollout) -> Result<State, Error> {
    let now = Utc::now();
    let mut state = validate(deps, r, now).await?;
    if r.dry_run {
        state.status = Status::DryRun;
        state.finished_at = Some(now);
        state.reason = Some(format!(
            "would route {:?} of {} to version {} ({} s per step), then make it the primary",
            r.weights,
            r.resource(),
            state.new_version,
            r.step_seconds()
        ));
        return Ok(state);
    }
    info!(function = %r.function_name, alias = %r.alias_name, from = %state.original_version, to = %state.new_version, weights = ?r.weights, "shift starting");
    match advance(deps, &mut state).await {
        Ok(()) => Ok(state),
        Err(e) => rollback(deps, state, format!("{e}")).await,
    }
}

/// Sets the weight at `state.step`, or switches the primary when the weights are done.
async fn advance(deps: &Deps, state: &mut State) -> Result<(), AwsError> {
    let r = state.rollout.clone();
    let now = Utc::now();
    match state.current_weight() {
        Some(w) => {
            let weights = HashMap::from([(state.new_version.clone(), w)]);
            state.revision_id = aws::update_alias(deps, &r, None, weights, Some(&state.revision_id)).await?;
            info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, weight = w, "weight set");
            state.step_started_at = now;
            state.extensions = 0;
            state.wait_seconds = r.step_seconds();
        }
        None => {
            state.revision_id = aws::update_alias(
                deps,
                &r,
                Some(&state.new_version),
                HashMap::new(),
                Some(&state.revision_id),
            )
            .await?;
            info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, "primary switched");
            state.steps.push(StepReport {
                step: state.steps.iter().filter(|s| s.decision != StepDecision::Wait).count() + 1,
                weight: 1.0,
                started_at: now,
                checked_at: None,
                metrics: None,
                error_rate: None,
                alarms_in_alarm: Vec::new(),
                decision: StepDecision::Switched,
                reason: None,
            });
            state.status = Status::Succeeded;
            state.finished_at = Some(now);
            state.wait_seconds = 0;
        }
    }
    Ok(())
}

/// Judges the current step and moves on: the next weight, the switch, another interval, or a rollback.
pub async fn step(deps: &Deps, mut state: State) -> Result<State, Error> {
    if state.is_final() {
        return Ok(state);
    }
    let r = state.rollout.clone();
    let alias = match aws::get_alias(deps, &r).await {
        Ok(a) => a,
        Err(e) => return rollback(deps, state, e.to_string()).await,
    };
    if alias.revision_id != state.revision_id {
        let why = format!(
            "{} changed since this shift set it (revision {} expected, {} found): primary {}, weights {:?}",
            r.resource(),
            state.revision_id,
            alias.revision_id,
            alias.primary,
            alias.weights
        );
        return rollback(deps, state, why).await;
    }
    let checked_at = Utc::now();
    let (metrics, alarms) = match observe(deps, &state, checked_at).await {
        Ok(seen) => seen,
        Err(e) => return rollback(deps, state, e.to_string()).await,
    };
    let thresholds = Thresholds {
        max_error_rate: r.max_error_rate,
        min_invocations: if r.health_check { r.min_invocations } else { 0.0 },
        max_extensions: MAX_EXTENSIONS,
    };
    // Without a health check `observe` read no metrics: only the alarms can fail the step.
    let verdict = health::judge(&metrics, &alarms, &thresholds, state.extensions);
    let (decision, reason) = match &verdict {
        Verdict::Healthy if !r.health_check && r.alarms.is_empty() => (StepDecision::NotChecked, None),
        Verdict::Healthy => (StepDecision::Healthy, None),
        Verdict::Unhealthy(why) => (StepDecision::Unhealthy, Some(why.clone())),
        Verdict::Wait(why) => (StepDecision::Wait, Some(why.clone())),
        Verdict::PassedOnLowTraffic(why) => (StepDecision::PassedOnLowTraffic, Some(why.clone())),
    };
    info!(function = %r.function_name, alias = %r.alias_name, weight = ?state.current_weight(), ?verdict, invocations = metrics.invocations, errors = metrics.errors, "step judged");
    state.steps.push(StepReport {
        step: state.step + 1,
        weight: state.current_weight().unwrap_or(1.0),
        started_at: state.step_started_at,
        checked_at: Some(checked_at),
        error_rate: metrics.error_rate(),
        metrics: r.health_check.then_some(metrics),
        alarms_in_alarm: alarms,
        decision,
        reason,
    });
    match verdict {
        Verdict::Unhealthy(why) => rollback(deps, state, why).await,
        Verdict::Wait(_) => {
            state.extensions += 1;
            state.wait_seconds = r.interval.max(1);
            Ok(state)
        }
        Verdict::Healthy | Verdict::PassedOnLowTraffic(_) => {
            state.step += 1;
            match advance(deps, &mut state).await {
                Ok(()) => Ok(state),
                Err(e) => rollback(deps, state, e.to_string()).await,
            }
        }
    }
}

/// The new version's metrics behind the alias since the step started, and the alarms in ALARM.
async fn observe(deps: &Deps, state: &State, now: DateTime<Utc>) -> Result<(Metrics, Vec<String>), AwsError> {
    let r = &state.rollout;
    let metrics = if r.health_check {
        aws::version_metrics(deps, r, &state.new_version, state.step_started_at, now).await?
    } else {
        Metrics::default()
    };
    let alarms = if r.alarms.is_empty() {
        Vec::new()
    } else {
        let states = aws::alarm_states(deps, &r.alarms).await?;
        r.alarms.iter().filter(|a| states.get(*a) == Some(&StateValue::Alarm)).cloned().collect()
    };
    Ok((metrics, alarms))
}

/// Puts the alias back on the original version with no additional weights, if it still routes to the new
/// version as this rollout left it; a change someone else made is left alone and reported.
pub async fn rollback(deps: &Deps, mut state: State, reason: String) -> Result<State, Error> {
    let r = state.rollout.clone();
    warn!(function = %r.function_name, alias = %r.alias_name, reason = %reason, "rolling back");
    state.finished_at = Some(Utc::now());
    state.wait_seconds = 0;
    let failed = |error: AwsError| Error::RollbackFailed { reason: reason.clone(), error };
    let alias = aws::get_alias(deps, &r).await.map_err(failed)?;
    let ours =
        alias.primary == state.original_version && alias.weights.keys().all(|v| *v == state.new_version);
    let switched_by_us = alias.primary == state.new_version
        && alias.weights.is_empty()
        && alias.revision_id == state.revision_id;
    if !(ours || switched_by_us) {
        state.status = Status::LeftAsFound;
        state.reason = Some(format!(
            "{reason}; {} now has primary {} and weights {:?}, which this rollout did not set: left as found",
            r.resource(),
            alias.primary,
            alias.weights
        ));
        return Ok(state);
    }
    if alias.primary != state.original_version || !alias.weights.is_empty() {
        state.revision_id = aws::update_alias(
            deps,
            &r,
            Some(&state.original_version),
            HashMap::new(),
            Some(&alias.revision_id),
        )
        .await
        .map_err(failed)?;
    }
    state.status = Status::RolledBack;
    state.reason = Some(reason);
    info!(function = %r.function_name, alias = %r.alias_name, version = %state.original_version, "rolled back");
    Ok(state)
}
