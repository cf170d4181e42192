//! What a person asks of a running shift: abort, promote, and the answer at the approval gate.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use shared::notify::Notification;
use tracing::{info, warn};

use crate::aws::{self, Change};
use crate::input::Target;
use crate::judge::health::Verdict;
use crate::marker::{Control, Marker, Phase};
use crate::report;
use crate::shift::guard::{self, Found};
use crate::shift::judging;
use crate::shift::switch::{rollback, take_over};
use crate::shift::validate::{check_allowed, invalid};
use crate::shift::{heed, proceed};
use crate::state::{State, Status, StepDecision, StepReport};
use crate::{Call, Deps, Error};

/// What a person's `abort` or `promote` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ControlReport {
    pub action: &'static str,
    pub function_name: String,
    pub alias_name: String,
    /// The shift's mark, as the alias now carries it.
    pub shift: String,
    pub primary: String,
    pub weights: HashMap<String, f64>,
    /// Whether this call changed the alias (a repeated request changes nothing).
    pub changed: bool,
    pub note: String,
}

async fn marked(deps: &Deps, target: &Target) -> Result<(aws::Alias, Marker), Error> {
    check_allowed(deps, "function-name", &target.function_name)?;
    let alias = aws::get_alias(deps, &target.function_name, &target.alias_name).await?;
    let Some(marker) = Marker::parse(&alias.description) else {
        return Err(invalid(
            "alias-name",
            format!(
                "no shift is in progress on {}:{} (its description carries no alias-shifter mark)",
                target.function_name, target.alias_name
            ),
        ));
    };
    Ok((alias, marker))
}

/// Rolls the alias back now: every request to the original version (the mark says which), and the
/// request noted in the mark, so that the running shift ends rolled back at its next check.
pub async fn abort(deps: &Deps, target: &Target, reason: &str) -> Result<ControlReport, Error> {
    let (alias, marker) = marked(deps, target).await?;
    let report = |alias: &aws::Alias, description: &str, changed| ControlReport {
        action: "abort",
        function_name: target.function_name.clone(),
        alias_name: target.alias_name.clone(),
        shift: description.to_owned(),
        primary: alias.primary.clone(),
        weights: alias.weights.clone(),
        changed,
        note: format!(
            "all traffic is on version {}; the shift ends rolled back at its next check",
            marker.from
        ),
    };
    if matches!(marker.control, Some(Control::Abort(_))) {
        return Ok(report(&alias, &alias.description, false));
    }
    let ours = match marker.phase {
        Phase::Weight { .. } => alias.primary == marker.from && alias.weights.keys().all(|v| *v == marker.to),
        Phase::Baking => alias.primary == marker.to && alias.weights.is_empty(),
    };
    if !ours {
        return Err(invalid(
            "alias-name",
            format!(
                "{}:{} routes to {} with weights {:?}, not as its shift left it: nothing was changed",
                target.function_name, target.alias_name, alias.primary, alias.weights
            ),
        ));
    }
    let description = marker.with(Control::Abort(reason.to_owned()));
    let change = Change {
        primary: Some(&marker.from),
        weights: Some(HashMap::new()),
        description: Some(&description),
    };
    aws::update_alias(deps, &target.function_name, &target.alias_name, change, &alias.revision_id).await?;
    warn!(function = %target.function_name, alias = %target.alias_name, reason, "abort requested: traffic back on the original version");
    let now = aws::Alias { primary: marker.from.clone(), weights: HashMap::new(), ..alias };
    Ok(report(&now, &description, true))
}

/// Asks the running shift to finish after its current step passes (skipping the remaining weights and the
/// approval gate; the bake still runs).
pub async fn promote(deps: &Deps, target: &Target) -> Result<ControlReport, Error> {
    let (alias, marker) = marked(deps, target).await?;
    if marker.phase == Phase::Baking {
        return Err(invalid(
            "alias-name",
            "the new version is already the primary (baking): nothing to promote",
        ));
    }
    if matches!(marker.control, Some(Control::Abort(_))) {
        return Err(invalid("alias-name", "an abort was already requested"));
    }
    if marker.awaiting {
        return Err(invalid(
            "alias-name",
            "the shift is waiting for a person's approval: answer the approval request (aws stepfunctions send-task-success, or send-task-failure to reject), or abort it",
        ));
    }
    let changed = marker.control.is_none();
    let description = marker.with(Control::Promote);
    if changed {
        let change = Change { description: Some(&description), ..Change::default() };
        aws::update_alias(deps, &target.function_name, &target.alias_name, change, &alias.revision_id)
            .await?;
        info!(function = %target.function_name, alias = %target.alias_name, "promotion requested");
    }
    Ok(ControlReport {
        action: "promote",
        function_name: target.function_name.clone(),
        alias_name: target.alias_name.clone(),
        shift: description,
        primary: alias.primary,
        weights: alias.weights,
        changed,
        note: "the shift switches to the new version after its current step passes".to_owned(),
    })
}

/// The approval gate: sends the task token to the notification topic, with the commands to answer.
pub async fn request_approval(
    c: &Call<'_>,
    mut state: State,
    token: &str,
    shifter: &str,
) -> Result<State, Error> {
    if state.status != Status::AwaitingApproval {
        return Err(invalid("state.status", "not awaiting approval"));
    }
    let (found, marker) = guard::check(c.deps, &state).await?;
    if matches!(found, Found::Changed(_) | Found::Ahead(_)) || marker.control.is_some() {
        return Err(Error::StateMismatch(format!(
            "{} was aborted or changed while waiting for approval: not asking for it",
            state.rollout.resource()
        )));
    }
    let message = report::approval_request(&state, token, shifter, &c.deps.region);
    let notifier = c.deps.notifier.to(state.rollout.notification_topic_arn.clone());
    let sent = notifier.send(&message).await;
    match &sent {
        Notification::Sent { .. } => {}
        Notification::Failed { error } => return Err(Error::ApprovalNotSent(error.clone())),
        Notification::Off | Notification::Skipped => {
            return Err(invalid("approval", "needs a notification topic to send the approval request to"));
        }
    }
    state.notification = Some(sent);
    Ok(state)
}

/// A person approved at the gate: the rollout goes on.
pub async fn approved(c: &Call<'_>, mut state: State, approval: &Value) -> Result<State, Error> {
    if state.is_final() {
        return Ok(state);
    }
    if state.status != Status::AwaitingApproval {
        return Err(invalid("state.status", "not awaiting approval"));
    }
    let (found, marker) = guard::check(c.deps, &state).await?;
    if let Found::Ahead(alias) = &found
        && !matches!(marker.control, Some(Control::Abort(_)))
    {
        return Ok(take_over(c, state, alias, &marker));
    }
    if let Some(why) = heed(&mut state, found, &marker) {
        return rollback(c, state, why).await;
    }
    let said: String = approval.to_string().chars().take(200).collect();
    info!(function = %state.function_name, alias = %state.alias_name, approval = %said, "approved");
    let line =
        StepReport::of(&state, StepDecision::Approved, c.now()).because(Some(format!("approved: {said}")));
    state.record(line);
    // An approval is not a pass for what happened while waiting for it: the wait is judged first.
    let now = c.now();
    let look = state.waited(c.deps.config.metric_period, now);
    match judging::judge(c.deps, &state, look, now).await {
        Ok(judged) => {
            let verdict = judged.verdict.clone();
            state.record(judged.report);
            if let Verdict::Unhealthy(why) = verdict {
                return rollback(c, state, format!("while waiting for approval: {why}")).await;
            }
        }
        Err(e) => return rollback(c, state, e.to_string()).await,
    }
    match proceed(c, &mut state).await {
        Ok(()) => Ok(state),
        Err(e) => rollback(c, state, e.to_string()).await,
    }
}
