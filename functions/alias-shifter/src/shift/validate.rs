//! Everything that must hold before a rollout changes anything, read-only; and the new version's own
//! checks, made again after `publish`.

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::State as FunctionState;
use shared::events::InvalidEvent;

use crate::aws::{self, Alias, not_found};
use crate::marker::Marker;
use crate::rollout::{Rollout, short_name};
use crate::routing::{Routing, routable_together};
use crate::state::State;
use crate::{Deps, Error};

/// How long a Pending new version is waited for: 30 reads, 2 s apart.
const PENDING_READS: u32 = 30;
const PENDING_POLL: std::time::Duration = std::time::Duration::from_secs(2);

pub fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidInput(InvalidEvent::new(field, reason))
}

/// What the pre-flight found.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub alias: Alias,
    /// The primary's configuration (role, dead-letter queue, timeout).
    pub primary: GetFunctionConfigurationOutput,
    /// The longer `Timeout` of the primary and the new version (`$LATEST`'s when it is to be published).
    pub timeout: u32,
}

/// `ALLOWED_FUNCTIONS`, in every mode.
pub fn check_allowed(deps: &Deps, field: &str, function: &str) -> Result<(), Error> {
    if deps.config.may_shift(function, short_name(function)) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{function} is not among the functions this shifter may shift (ALLOWED_FUNCTIONS)"),
        ))
    }
}

/// `HOOK_FUNCTIONS`, in every mode: the rollout's hooks must be allowed now (`prefix`: where the rollout
/// is in the payload, `state.rollout.` in a state).
pub fn check_hooks(deps: &Deps, r: &Rollout, prefix: &str) -> Result<(), Error> {
    for (field, hook) in [
        ("pre-traffic-function", &r.pre_traffic_function),
        ("post-traffic-function", &r.post_traffic_function),
    ] {
        if let Some(hook) = hook
            && !deps.config.may_call_hook(short_name(hook))
        {
            return Err(invalid(
                &format!("{prefix}{field}"),
                format!(
                    "{hook} is not among the hook functions this shifter may invoke (HOOK_FUNCTIONS, the stack's ShiftHookFunctionNames)"
                ),
            ));
        }
    }
    Ok(())
}

/// Every check that needs no change, in the order a person would fix them.
pub async fn prepare(deps: &Deps, r: &Rollout) -> Result<Prepared, Error> {
    check_allowed(deps, "function-name", &r.function_name)?;
    check_hooks(deps, r, "")?;
    if r.approval && r.notification_topic_arn.is_none() && deps.config.notification_topic_arn.is_none() {
        return Err(invalid("approval", "needs a notification topic to send the approval request to"));
    }
    let latest = match aws::function_configuration(deps, r, None).await {
        Ok(c) => c,
        Err(e) if not_found(&e) => {
            return Err(invalid("function-name", format!("no function {}", r.function_name)));
        }
        Err(e) => return Err(e.into()),
    };
    let alias = match aws::get_alias(deps, &r.function_name, &r.alias_name).await {
        Ok(a) => a,
        Err(e) if not_found(&e) => {
            return Err(invalid(
                "alias-name",
                format!("function {} has no alias {}", r.function_name, r.alias_name),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if alias.primary.is_empty() || !alias.primary.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "alias-name",
            format!(
                "{} points to {}: it cannot share traffic, and a rollback to it would route to whatever code it holds then, which nobody judged; point the alias to a published version first (aws lambda publish-version, then update-alias)",
                r.resource(),
                alias.primary
            ),
        ));
    }
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
    if Marker::present(&alias.description) {
        return Err(invalid(
            "alias-name",
            format!(
                "a shift is in progress on {} (its description: {:?}); abort it first, or clear the description if that shift is no longer running",
                r.resource(),
                alias.description
            ),
        ));
    }
    let primary = aws::function_configuration(deps, r, Some(&alias.primary)).await?;
    let new_timeout = match &r.new_version {
        Some(v) if *v == alias.primary => {
            return Err(invalid(
                "new-version",
                format!("version {v} is already the primary of {}", r.resource()),
            ));
        }
        Some(v) => check_new_version(deps, r, v, &primary).await?.timeout().unwrap_or(3),
        None => latest.timeout().unwrap_or(3),
    };
    if !r.alarms.is_empty() {
        let found = aws::alarm_states(deps, &r.alarms).await?;
        let missing: Vec<&String> = r.alarms.iter().filter(|a| !found.contains_key(*a)).collect();
        if !missing.is_empty() {
            return Err(invalid("alarms", format!("no CloudWatch alarm named {missing:?}")));
        }
    }
    let timeout = u32::try_from(new_timeout.max(primary.timeout().unwrap_or(3))).unwrap_or(900);
    Ok(Prepared { alias, primary, timeout })
}

/// The new version exists, is Active (a just-published Pending one is waited for: its function's VPC or
/// SnapStart set-up), and can share the alias with the primary.
pub async fn check_new_version(
    deps: &Deps,
    r: &Rollout,
    new_version: &str,
    primary: &GetFunctionConfigurationOutput,
) -> Result<GetFunctionConfigurationOutput, Error> {
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
    routable_together(new_version, &Routing::of(&new), &Routing::of(primary))
        .map_err(|why| invalid("new-version", why))?;
    Ok(new)
}

/// `publish`: `$LATEST` becomes a version, checked as a given one is; the rollout goes to it.
pub async fn publish(deps: &Deps, r: &Rollout, p: &Prepared, state: &mut State) -> Result<(), Error> {
    let version = aws::publish_version(deps, r).await?;
    if version == p.alias.primary {
        return Err(invalid(
            "publish",
            format!("$LATEST is unchanged since version {version}, the primary of {}", r.resource()),
        ));
    }
    let new = check_new_version(deps, r, &version, &p.primary).await?;
    let timeout = u32::try_from(new.timeout().unwrap_or(3)).unwrap_or(900);
    state.timeout_seconds = state.timeout_seconds.max(timeout);
    state.new_version = version;
    Ok(())
}
