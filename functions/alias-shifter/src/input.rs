//! The invocation payload, typed and checked field by field before anything touches AWS.
//!
//! A whole rollout by hand is the rollout payload itself ([`rollout`]). The state machine wraps it:
//! `{"mode": "start", "rollout": {...}}`, then `{"mode": "step", "state": {...}}` with the state the
//! previous call returned, `{"mode": "request-approval", "state": {...}, "task-token": "..."}` at the
//! approval gate and `{"mode": "approved", "state": {...}, "approval": {...}}` after it, and
//! `{"mode": "rollback", "state": {...}, "error": {...}}` when a step failed outright. A person controls a
//! running shift with `{"mode": "abort", "function-name", "alias-name", "reason"}` and `{"mode":
//! "promote", "function-name", "alias-name"}`.

use serde::Deserialize;
use serde_json::Value;
use shared::events::{self, InvalidEvent};

use crate::rollout::{Rollout, check_alias_name, check_function_name};
use crate::state::{State, Status};

/// The alias a person's request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub function_name: String,
    pub alias_name: String,
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A whole rollout within this invocation (a manual `aws lambda invoke`).
    Run(Rollout),
    /// The state machine's first call: validate and set the first weight.
    Start(Rollout),
    /// The state machine's next call: judge the current step, then move on.
    Step(Box<State>),
    /// The rest of a rollout started by hand that did not fit in one invocation (the shifter invokes
    /// itself asynchronously with it): step on, and continue again when out of time.
    Continue(Box<State>),
    /// The state machine's failure branch, with what failed.
    Rollback(Box<State>, String),
    /// The approval gate: send the task token to a person.
    RequestApproval(Box<State>, String),
    /// A person approved (their `send-task-success` output): go on.
    Approved(Box<State>, Value),
    /// Roll the alias back now, whatever step the shift is at.
    Abort(Target, String),
    /// Finish the shift after its current step passes.
    Promote(Target),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
enum Mode {
    Start,
    Step,
    Continue,
    Rollback,
    RequestApproval,
    Approved,
    Abort,
    Promote,
}

/// A call with a mode, and what it carries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Call {
    mode: Mode,
    rollout: Option<Value>,
    state: Option<Value>,
    error: Option<Caught>,
    task_token: Option<String>,
    approval: Option<Value>,
    function_name: Option<String>,
    alias_name: Option<String>,
    reason: Option<String>,
}

/// The `{"Error", "Cause"}` a state machine's `Catch` records.
#[derive(Debug, Default, Deserialize)]
struct Caught {
    #[serde(rename = "Error", default)]
    error: Option<String>,
    #[serde(rename = "Cause", default)]
    cause: Option<String>,
}

impl Request {
    pub fn parse(payload: &Value) -> Result<Self, InvalidEvent> {
        let obj =
            payload.as_object().ok_or_else(|| InvalidEvent::new("(payload)", "expected a JSON object"))?;
        if !obj.contains_key("mode") {
            return Ok(Request::Run(Rollout::parse(payload)?));
        }
        let call: Call = events::from_value(payload, "").map_err(|e| {
            if e.field == "mode" {
                InvalidEvent::new(
                    "mode",
                    "expected start, step, continue, rollback, request-approval, approved, abort or promote (or no mode for a whole rollout)",
                )
            } else {
                e
            }
        })?;
        call.only(Self::fields(call.mode))?;
        let state = |raw: Option<Value>| -> Result<Box<State>, InvalidEvent> {
            let raw = raw.ok_or_else(|| InvalidEvent::new("state", "missing"))?;
            events::from_value(&raw, "state").map(Box::new).map_err(|e| {
                InvalidEvent::new(
                    "state",
                    format!("not a state this function returned: `{}` {}", e.field, e.reason),
                )
            })
        };
        let target = |call: &Call| -> Result<Target, InvalidEvent> {
            let function_name =
                call.function_name.clone().ok_or_else(|| InvalidEvent::new("function-name", "missing"))?;
            let alias_name =
                call.alias_name.clone().ok_or_else(|| InvalidEvent::new("alias-name", "missing"))?;
            check_function_name("function-name", &function_name, false)?;
            check_alias_name("alias-name", &alias_name)?;
            Ok(Target { function_name, alias_name })
        };
        match call.mode {
            Mode::Start => {
                let rollout = call.rollout.ok_or_else(|| InvalidEvent::new("rollout", "missing"))?;
                Ok(Request::Start(Rollout::parse(&rollout)?))
            }
            Mode::Step => Ok(Request::Step(state(call.state)?)),
            Mode::Continue => Ok(Request::Continue(state(call.state)?)),
            Mode::Rollback => {
                let state = state(call.state)?;
                let why = failure(call.error.unwrap_or_default(), &state);
                Ok(Request::Rollback(state, why))
            }
            Mode::RequestApproval => {
                let token = call.task_token.clone().filter(|t| (1..=1024).contains(&t.len()));
                let token =
                    token.ok_or_else(|| InvalidEvent::new("task-token", "missing (1 to 1024 characters)"))?;
                Ok(Request::RequestApproval(state(call.state)?, token))
            }
            Mode::Approved => {
                let approval = call.approval.clone().unwrap_or(Value::Null);
                Ok(Request::Approved(state(call.state)?, approval))
            }
            Mode::Abort => {
                let reason = call.reason.clone().unwrap_or_else(|| "aborted by request".to_owned());
                if reason.is_empty() || reason.chars().count() > 200 {
                    return Err(InvalidEvent::new("reason", "1 to 200 characters"));
                }
                Ok(Request::Abort(target(&call)?, reason))
            }
            Mode::Promote => Ok(Request::Promote(target(&call)?)),
        }
    }

    /// The fields each mode takes besides `mode`.
    fn fields(mode: Mode) -> &'static [&'static str] {
        match mode {
            Mode::Start => &["rollout"],
            Mode::Step | Mode::Continue => &["state"],
            Mode::Rollback => &["state", "error"],
            Mode::RequestApproval => &["state", "task-token"],
            Mode::Approved => &["state", "approval"],
            Mode::Abort => &["function-name", "alias-name", "reason"],
            Mode::Promote => &["function-name", "alias-name"],
        }
    }
}

impl Call {
    /// A field of another mode is refused by name, so a mistaken call never half-works.
    fn only(&self, allowed: &[&str]) -> Result<(), InvalidEvent> {
        let given = [
            ("rollout", self.rollout.is_some()),
            ("state", self.state.is_some()),
            ("error", self.error.is_some()),
            ("task-token", self.task_token.is_some()),
            ("approval", self.approval.is_some()),
            ("function-name", self.function_name.is_some()),
            ("alias-name", self.alias_name.is_some()),
            ("reason", self.reason.is_some()),
        ];
        match given.iter().find(|(name, present)| *present && !allowed.contains(name)) {
            Some((name, _)) => {
                Err(InvalidEvent::new(*name, format!("not taken by mode {}", <&str>::from(self.mode))))
            }
            None => Ok(()),
        }
    }
}

/// Why the state machine calls rollback: a person's rejection, an approval that never came, or a step
/// that failed.
fn failure(caught: Caught, state: &State) -> String {
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    match (nonempty(caught.error), nonempty(caught.cause)) {
        (Some(e), cause) if e == "Rejected" => {
            format!("rejected at the approval gate{}", cause.map(|c| format!(": {c}")).unwrap_or_default())
        }
        (Some(e), _) if e == "States.Timeout" && state.status == Status::AwaitingApproval => {
            format!("no approval within approval-timeout {} s", state.rollout.approval_timeout)
        }
        (Some(e), Some(c)) => format!("the state machine's step failed: {e}: {c}"),
        (Some(e), None) => format!("the state machine's step failed: {e}"),
        _ => "the state machine's step failed".to_owned(),
    }
}

#[cfg(test)]
mod tests;
