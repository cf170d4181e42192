//! The validation hooks: a function invoked before the first weight and after the switch.

use serde_json::json;
use tracing::info;

use crate::Call;
use crate::aws::{self, HookAnswer};
use crate::state::{Hook, HookReport, State};

/// Invokes a hook with the rollout; `Err` with the reason when it failed (or could not be invoked).
pub(crate) async fn run(c: &Call<'_>, state: &mut State, hook: Hook, function: &str) -> Result<(), String> {
    let payload = json!({
        "hook": hook, "function-name": state.function_name, "alias-name": state.alias_name,
        "new-version": state.new_version, "original-version": state.original_version, "rollout": state.rollout,
    });
    let answer = aws::invoke_hook(c.deps, function, &payload).await;
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
