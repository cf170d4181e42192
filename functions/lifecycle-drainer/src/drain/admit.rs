//! The checks every message passes before the drain or the launch changes anything.

use chrono::{DateTime, Utc};
use shared::autoscaling::InGroup;
use shared::events::InvalidEvent;

use super::{Effects, HookRead};
use crate::decide::{self, SMALLEST_GLOBAL_TIMEOUT, Stage};
use crate::input::Work;
use crate::{Action, Config, Error, Outcome};

/// What the checks every message passes before anything is changed found.
pub(crate) enum Admitted {
    /// The action is open and ours: the hook's heartbeat timeout (when it could be read) and lifetime.
    Proceed { heartbeat_timeout: Option<u32>, global_timeout: u32 },
    /// Nothing to do (a hook that is not ours, an action already over): the outcome says why.
    Over(Box<Outcome>),
}

/// The checks before anything is changed, for a launch and a termination alike: the hook is ours
/// (`LIFECYCLE_HOOK_NAMES`), the group is served (`AUTO_SCALING_GROUPS`), a continuation's state is
/// consistent, the group has the hook, and Auto Scaling has the instance in the message's group, waiting
/// in the state the message's transition pauses it in. A message about an instance that is in service is
/// not from Auto Scaling (forged, or very stale): draining it would take capacity away for nothing.
pub(crate) async fn admit<E: Effects>(
    fx: &E,
    config: &Config,
    work: &Work,
    outcome: &mut Outcome,
    now: DateTime<Utc>,
) -> Result<Admitted, Error> {
    let m = &work.message;
    if !config.answers(&m.lifecycle_hook_name) {
        outcome.reason = Some(format!("hook {} is not in LIFECYCLE_HOOK_NAMES", m.lifecycle_hook_name));
        return Ok(Admitted::Over(Box::new(outcome.clone())));
    }
    if !config.serves(&m.auto_scaling_group_name) {
        return Err(InvalidEvent::new(
            "AutoScalingGroupName",
            format!("{} is not in AUTO_SCALING_GROUPS; nothing was changed", m.auto_scaling_group_name),
        )
        .into());
    }
    work.check_continuation(config, now)?;
    let (heartbeat_timeout, global_timeout) = match fx.hook().await {
        HookRead::Found { heartbeat_timeout, global_timeout } => (Some(heartbeat_timeout), global_timeout),
        HookRead::Missing => {
            return Err(InvalidEvent::new(
                "LifecycleHookName",
                format!(
                    "group {} has no lifecycle hook {}; nothing was changed",
                    m.auto_scaling_group_name, m.lifecycle_hook_name
                ),
            )
            .into());
        }
        HookRead::Unreadable => {
            outcome.warnings.push(format!(
                "the hook could not be read: heartbeats every 15 s, and its lifetime taken as {SMALLEST_GLOBAL_TIMEOUT} s"
            ));
            (None, SMALLEST_GLOBAL_TIMEOUT)
        }
    };
    let place = fx.lifecycle_state().await?;
    if let Some(InGroup { group, .. }) = &place
        && *group != m.auto_scaling_group_name
    {
        return Err(InvalidEvent::new(
            "AutoScalingGroupName",
            format!(
                "{} is in group {group}, not {}; nothing was changed",
                m.ec2_instance_id, m.auto_scaling_group_name
            ),
        )
        .into());
    }
    match decide::stage(work.launching(), m.into_warm_pool(), place.as_ref().map(|p| p.state.as_str())) {
        Stage::Waiting => Ok(Admitted::Proceed { heartbeat_timeout, global_timeout }),
        Stage::Over(why) => {
            let mut over = outcome.clone();
            over.action = Action::AlreadyCompleted;
            over.reason = Some(format!("no active lifecycle action: {why}"));
            Ok(Admitted::Over(Box::new(over)))
        }
        Stage::NotFromAutoScaling(why) => Err(InvalidEvent::new(
            "EC2InstanceId",
            format!("{} {why}: the message is not from Auto Scaling; nothing was changed", m.ec2_instance_id),
        )
        .into()),
    }
}
