//! The reconcile's decisions, as pure functions of what a pass read and of the time (an argument, never read
//! here): when a heartbeat is due, when an action's time is up, what a terminating instance needs next,
//! whether a launch is ready.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::autoscaling::LifecycleState;
use shared::drain::Marker;
use shared::drain::hooks::Transition;
use shared::drain::marker::Owner;
use shared::ecs::{Found, InstanceStatus};

/// What an open lifecycle action of ours is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The instance leaves: drained, then let go (`Terminating:Wait`; `Warmed:Terminating:Wait` for one
    /// terminated from the warm pool; `Warmed:Pending:Wait` for one going back to the pool on scale in).
    Terminating,
    /// The instance joins the group: let go once ECS can place tasks on it (`Pending:Wait`).
    Launching,
    /// The instance enters the warm pool, stopped there (`Warmed:Pending:Wait`): let go at once, and looked
    /// at when it leaves the pool.
    IntoWarmPool,
}

/// The action a hook of `transition` holds an instance in `state` for; `None` when that hook does not
/// hold instances in that state. A terminating hook holds an instance in `Warmed:Pending:Wait` when the
/// group returns instances to its warm pool on scale in (`ReuseOnScaleIn`, "Use lifecycle hooks with a warm
/// pool"): the ECS guide advises against it for ECS groups, but Auto Scaling accepts it, and the instance
/// is stopped there with its tasks. It is drained like any termination.
pub fn kind(transition: Transition, state: LifecycleState) -> Option<Kind> {
    match (transition, state) {
        (
            Transition::Terminating,
            LifecycleState::TerminatingWait
            | LifecycleState::WarmedTerminatingWait
            | LifecycleState::WarmedPendingWait,
        ) => Some(Kind::Terminating),
        (Transition::Launching, LifecycleState::PendingWait) => Some(Kind::Launching),
        (Transition::Launching, LifecycleState::WarmedPendingWait) => Some(Kind::IntoWarmPool),
        _ => None,
    }
}

/// How long before the hook's `GlobalTimeout` an action of ours is completed by us, beyond two reconcile
/// periods (a pass may start late, or fail, and the next must still be in time): Auto Scaling never applies
/// the hook's default result to a drain of ours.
pub const GLOBAL_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);

/// The margin before the hook's `GlobalTimeout` with passes `period` apart.
pub fn global_timeout_margin(period: Duration) -> Duration {
    period * 2 + GLOBAL_TIMEOUT_MARGIN
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutCause {
    /// `DRAIN_TIMEOUT_SECONDS` since the drain began (`LAUNCH_TIMEOUT_SECONDS` since the instance began to
    /// wait).
    Ours,
    /// The hook's `GlobalTimeout` (less a margin) came first.
    HookLifetime,
}

impl TimeoutCause {
    pub fn reason(self) -> &'static str {
        match self {
            TimeoutCause::Ours => "DRAIN_TIMEOUT_SECONDS reached",
            TimeoutCause::HookLifetime => {
                "the hook's GlobalTimeout is near (it runs from when the instance began to wait, and no heartbeat extends it)"
            }
        }
    }
}

/// When an action's time is up: `timeout` after `since` (when our count starts: the drain's start; `None`
/// while it has not started, so it starts before its time can be up), never later than the hook's
/// `GlobalTimeout` from when the instance `began` to wait, less [`global_timeout_margin`]; which it is.
pub fn deadline(
    (began, since): (DateTime<Utc>, Option<DateTime<Utc>>),
    timeout: Duration,
    global_timeout: u32,
    period: Duration,
) -> (DateTime<Utc>, TimeoutCause) {
    let ours = since.map_or(DateTime::<Utc>::MAX_UTC, |s| s + to_chrono(timeout));
    let lifetime = Duration::from_secs(global_timeout.into()).saturating_sub(global_timeout_margin(period));
    let hook = began + to_chrono(lifetime);
    if hook < ours { (hook, TimeoutCause::HookLifetime) } else { (ours, TimeoutCause::Ours) }
}

/// When our count of a drain's time starts: when it began (its earliest marker), never before the instance
/// began to wait (a drain by someone else before the action counts from the action). `None` before any
/// registration is marked. Auto Scaling's wait can begin long after the scaling activity's start (a load
/// balancer's deregistration delay comes first), so the drain's own start is what `DRAIN_TIMEOUT_SECONDS`
/// counts from.
pub fn drain_began(registrations: &[Found], began: DateTime<Utc>) -> Option<DateTime<Utc>> {
    draining_markers(registrations).map(|m| m.at).min().map(|at| at.max(began))
}

/// The markers of the DRAINING registrations: one left on an ACTIVE registration stands for no drain.
fn draining_markers(registrations: &[Found]) -> impl Iterator<Item = Marker> + '_ {
    registrations
        .iter()
        .filter(|f| f.status == InstanceStatus::Draining)
        .filter_map(|f| Marker::read(&f.attributes))
}

/// Whether to send a heartbeat now: none sent yet by this sandbox (it may have been a while), or the hook
/// would otherwise run out before the pass after next (a pass may start late, or fail).
pub fn heartbeat_due(
    heartbeat_timeout: u32,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    period: Duration,
) -> bool {
    let Some(last) = last else { return true };
    last + to_chrono(Duration::from_secs(heartbeat_timeout.into())) <= now + to_chrono(period * 2)
}

/// Whether passes `period` apart can keep a hook alive: its heartbeat timeout must outlast two of them.
pub fn outlasts_two_periods(heartbeat_timeout: u32, period: Duration) -> bool {
    Duration::from_secs(heartbeat_timeout.into()) > period * 2
}

/// What a terminating instance needs next, from its registrations (every container instance of it in the
/// configured clusters, as described in this pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drain {
    /// Not a container instance of the configured clusters: nothing to drain.
    NotEcs,
    /// Some registrations are ACTIVE (to set DRAINING), or DRAINING without a marker (to mark as ours: the
    /// drain's time is counted from now). By ARN.
    Start { activate: Vec<String>, mark: Vec<String> },
    /// Its time is up.
    TimeUp(TimeoutCause),
    /// The counts show tasks running or pending.
    Busy(i64),
    /// The counts show none: look at the tasks.
    Look,
}

pub fn drain(
    registrations: &[Found],
    (deadline, cause): (DateTime<Utc>, TimeoutCause),
    now: DateTime<Utc>,
) -> Drain {
    if registrations.is_empty() {
        return Drain::NotEcs;
    }
    let activate: Vec<String> = registrations
        .iter()
        .filter(|f| f.status == InstanceStatus::Active)
        .map(|f| f.container_instance_arn.clone())
        .collect();
    let mark: Vec<String> = registrations
        .iter()
        .filter(|f| f.status == InstanceStatus::Draining && Marker::read(&f.attributes).is_none())
        .map(|f| f.container_instance_arn.clone())
        .collect();
    if now >= deadline {
        return Drain::TimeUp(cause);
    }
    if !activate.is_empty() || !mark.is_empty() {
        return Drain::Start { activate, mark };
    }
    match shared::drain::tasks::counted(registrations) {
        0 => Drain::Look,
        busy => Drain::Busy(busy),
    }
}

/// When the drain began, for the settle rule: the latest marker on its registrations (a registration drained
/// later restarts the count); `None` when none carries one.
pub fn drained_at(registrations: &[Found]) -> Option<DateTime<Utc>> {
    draining_markers(registrations).map(|m| m.at).max()
}

/// Whether a launching instance can take tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// ACTIVE with its agent connected: ECS can place tasks on it.
    Ready,
    /// DRAINING, not by us: whoever drained it meant it; its launch goes on, with a warning.
    DrainedByOthers,
    /// DRAINING by our own drain of an earlier scale in that returned it to the warm pool: these
    /// registrations (by ARN) are to be set ACTIVE again; ready on a later pass.
    Undo(Vec<String>),
    /// Not yet, and why.
    NotYet(String),
    /// Not ready by its deadline: let Auto Scaling replace it.
    Abandon(String),
}

pub fn launch(registrations: &[Found], deadline: DateTime<Utc>, now: DateTime<Utc>) -> Launch {
    let ready = registrations.iter().any(|f| f.status == InstanceStatus::Active && f.agent_connected);
    if ready {
        return Launch::Ready;
    }
    let ours: Vec<String> = registrations
        .iter()
        .filter(|f| f.status == InstanceStatus::Draining)
        // Held, or pending (our drain happened and its held write failed).
        .filter(|f| Marker::read(&f.attributes).is_some_and(|m| m.owner == Owner::LifecycleDrainer))
        .map(|f| f.container_instance_arn.clone())
        .collect();
    if !ours.is_empty() {
        return Launch::Undo(ours);
    }
    if registrations.iter().any(|f| f.status == InstanceStatus::Draining) {
        return Launch::DrainedByOthers;
    }
    let why = match registrations.first() {
        None => "no container instance registered in the configured clusters".to_owned(),
        Some(f) if f.status == InstanceStatus::Active => {
            "ACTIVE, but its ECS agent is not connected".to_owned()
        }
        Some(f) => format!("container instance is {}", f.status),
    };
    if now >= deadline { Launch::Abandon(why) } else { Launch::NotYet(why) }
}

/// A container instance that can take tasks while its EC2 instance is in the warm pool: the agent lacks
/// `ECS_WARM_POOLS_CHECK=true`, and ECS may place tasks on an instance about to be stopped.
pub fn takes_tasks_in_warm_pool(registrations: &[Found]) -> bool {
    registrations.iter().any(|f| f.status == InstanceStatus::Active && f.agent_connected)
}

pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests;
