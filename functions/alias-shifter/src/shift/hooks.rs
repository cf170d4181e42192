//! The validation hooks: a function invoked before the first weight and after the switch.

use serde_json::json;
use tracing::info;

use crate::aws::{self, HookAnswer};
use crate::state::{Hook, HookReport, State};
use crate::{Call, HOOK_TIMEOUT, SAFETY_MARGIN};

/// Invokes a hook with the rollout, once, for at most [`HOOK_TIMEOUT`] and never past the time the
/// invocation keeps for a rollback; `Err` with the reason when it failed, timed out or could not be invoked.
pub(crate) async fn run(c: &Call<'_>, state: &mut State, hook: Hook, function: &str) -> Result<(), String> {
    let payload = json!({
        "hook": hook, "function-name": state.function_name, "alias-name": state.alias_name,
        "new-version": state.new_version, "original-version": state.original_version, "rollout": state.rollout,
    });
    let limit = c
        .budget
        .remaining()
        .map_or(HOOK_TIMEOUT, |left| left.saturating_sub(SAFETY_MARGIN))
        .min(HOOK_TIMEOUT);
    let answer = tokio::time::timeout(limit, aws::invoke_hook(c.deps, function, &payload)).await;
    let (passed, detail) = match answer {
        Ok(Ok(HookAnswer::Passed)) => (true, None),
        Ok(Ok(HookAnswer::Failed(why))) => (false, Some(why)),
        Ok(Err(e)) => (false, Some(e.to_string())),
        Err(_) => (false, Some(format!("did not answer within {} s, the time left for it", limit.as_secs()))),
    };
    info!(function = %state.function_name, alias = %state.alias_name, hook = <&str>::from(hook), hook_function = %function, passed, "hook ran");
    state.hooks.push(HookReport { hook, function: function.to_owned(), passed, detail: detail.clone() });
    if passed {
        Ok(())
    } else {
        Err(format!("{} hook {function} failed: {}", <&str>::from(hook), detail.unwrap_or_default()))
    }
}
