//! One reconcile pass: read what Auto Scaling, ECS and our markers say now, decide for each open lifecycle
//! action of ours, act. Heartbeats go first (they keep the hooks alive whatever happens after), then the
//! instances are read in batches, and only instances whose counts show no task are listed and described.
//! The AWS side is behind [`Effects`], so the pass runs in paused time in its tests.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::autoscaling::{Group, LifecycleState};
use shared::drain::act::Change;
use shared::drain::hooks::{Answered, Hook, Transition};
use shared::drain::instances::Registrations;
use shared::drain::{Marker, Owner};
use shared::ecs::{Found, TaskLeft};
use shared::edge::Clock;
use shared::events::InstanceId;
use tracing::warn;

use crate::decide::{self, Kind};
use crate::memory::{Key, Shared};
use crate::{ActionReport, Config, Error, LifecycleResult, Step};

mod launch;
mod terminate;

/// At most this many instances are looked at (their tasks listed and described) in one pass: the rest
/// wait for the next, soonest deadline first. ECS's read bucket is shared by the whole account.
pub const LOOKS_PER_PASS: usize = 100;

/// What a pass covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every configured group (every group of the account when none is configured).
    All,
    /// One instance, named by an event.
    Instance(InstanceId),
}

/// The AWS side of a pass ([`crate::aws::Aws`], and the tests' fake).
#[allow(
    async_fn_in_trait,
    reason = "implemented only here (AWS, and the tests); run on one thread, Send not needed"
)]
pub trait Effects {
    /// The groups in scope with their instances' lifecycle states (one instance's group, for an event).
    async fn groups(&self, scope: &Scope) -> Result<Vec<Group>, Error>;
    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, Error>;
    /// When each of `instances` began to wait in `group`, by its scaling activity.
    async fn began(
        &self,
        group: &str,
        instances: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, Error>;
    async fn registrations(&self, ids: &[InstanceId]) -> Result<Registrations, Error>;
    async fn tasks_left(&self, registrations: &[Found]) -> Result<Vec<TaskLeft>, AwsError>;
    async fn drain(&self, cluster: &str, targets: &[Found], marker: &Marker) -> Result<Change, Error>;
    async fn mark(&self, cluster: &str, targets: &[Found], marker: &Marker) -> Result<(), Error>;
    /// Sets registrations DRAINING under our marker ACTIVE again (the drain core's undo).
    async fn undo(&self, cluster: &str, targets: &[Found]) -> Result<Change, Error>;
    async fn heartbeat(&self, hook: &Hook, instance_id: &str) -> Result<Answered, Error>;
    async fn complete(
        &self,
        hook: &Hook,
        instance_id: &str,
        result: LifecycleResult,
    ) -> Result<Answered, Error>;
}

/// An open lifecycle action of ours, and what the pass learns of it.
#[derive(Debug, Clone)]
pub struct Open {
    pub hook: Hook,
    pub instance_id: InstanceId,
    pub state: LifecycleState,
    pub kind: Kind,
    pub began: DateTime<Utc>,
    pub report: ActionReport,
}

impl Open {
    pub fn key(&self) -> Key {
        (self.hook.group.clone(), self.hook.name.clone(), self.instance_id.to_string(), self.state.into())
    }
}

/// What the pass did, and what it noticed along the way.
#[derive(Debug, Default)]
pub struct Pass {
    pub actions: Vec<ActionReport>,
    pub warnings: Vec<String>,
}

pub async fn run<E: Effects>(
    fx: &E,
    config: &Config,
    memory: &Shared,
    scope: &Scope,
    clock: Clock,
) -> Result<Pass, Error> {
    let mut pass = Pass::default();
    let began = clock.now();
    let mut lost = remembered_heartbeats(fx, config, memory, began).await;
    let (mut open, waiting) = match followed(memory, scope) {
        Some(open) => (open, HashSet::new()),
        None => open_actions(fx, config, scope, &mut pass.warnings).await?,
    };
    if *scope == Scope::All {
        let gone = memory.with(|m| {
            m.last_full_pass = Some(began);
            m.keep_only(&waiting)
        });
        lost.extend(gone.iter().filter_map(|(k, h)| lost_report(k, h, "no longer waiting")));
    }
    if config.dry_run {
        lost.clear(); // nothing of ours was ever going to answer
    }
    open.retain(|o| !memory.with(|m| m.answered.contains(&o.key())));
    begin_times(fx, memory, &mut open, clock.now(), &mut pass.warnings).await;
    heartbeats(fx, config, memory, &mut open, (began, clock.now())).await;
    let ids: Vec<InstanceId> = open.iter().map(|o| o.instance_id.clone()).collect();
    let registrations = match fx.registrations(&ids).await {
        Ok(registrations) => registrations,
        Err(e) => {
            terminate::unreadable(fx, config, &mut open, &e.to_string(), clock).await;
            for o in open.iter().filter(|o| o.report.step.ends_action()) {
                remember(memory, o, &[]); // answered by us: never taken for lost
            }
            return Err(e);
        }
    };
    for missing in &registrations.missing_clusters {
        pass.warnings.push(format!("cluster {missing} does not exist; skipped"));
    }
    open.sort_by_key(|o| terminate::time_up(config, o, registrations.of(o.instance_id.as_str())).0);
    let mut looks = LOOKS_PER_PASS;
    let mut starts = Vec::new();
    for (i, o) in open.iter_mut().enumerate() {
        if o.report.step == Step::AlreadyCompleted {
            continue;
        }
        let regs = registrations.of(o.instance_id.as_str());
        o.report.container_instances = regs.iter().map(|f| f.container_instance_arn.clone()).collect();
        if !holds(memory, o) {
            o.report.reason = Some(
                "Warmed:Pending:Wait is also a launch into the warm pool: drained once a heartbeat shows our terminating hook holds it"
                    .into(),
            );
            continue;
        }
        match o.kind {
            Kind::Terminating => match terminate::plan(config, o, regs, clock.now()) {
                decide::Drain::Start { activate, mark } => {
                    starts.push(terminate::Start { action: i, activate, mark })
                }
                plan => terminate::run(fx, config, o, regs, plan, &mut looks, clock).await,
            },
            Kind::Launching | Kind::IntoWarmPool => launch::run(fx, config, o, regs, clock).await,
        }
    }
    // Every drain this pass begins, in one batch per cluster.
    terminate::start(fx, config, &mut open, &registrations, &starts, clock.now()).await;
    for o in open {
        remember(memory, &o, registrations.of(o.instance_id.as_str()));
        pass.actions.push(o.report);
    }
    pass.actions.extend(lost);
    if *scope == Scope::All {
        memory.with(|m| {
            m.draining = pass
                .actions
                .iter()
                .filter(|a| matches!(a.step, Step::Drained | Step::Waiting))
                .flat_map(|a| a.container_instances.iter().cloned())
                .collect();
            m.synced = true;
        });
    }
    Ok(pass)
}

/// An instance's open actions as an earlier pass in this sandbox found them (its group, hook and wait
/// state), so that a look at it reads no group and no hook again: the calls that follow (the heartbeat,
/// the completion) are answered by Auto Scaling for the action itself, and an action over since is told so.
fn followed(memory: &Shared, scope: &Scope) -> Option<Vec<Open>> {
    let Scope::Instance(id) = scope else { return None };
    let known = memory.with(|m| m.following(id.as_str()));
    let open: Vec<Open> = known
        .into_iter()
        .filter_map(|(key, hook)| {
            let state = LifecycleState::of(key.3);
            let kind = decide::kind(hook.transition, state)?;
            let report = ActionReport::new(id, &hook, kind);
            Some(Open { hook, instance_id: id.clone(), state, kind, began: Utc::now(), report })
        })
        .collect();
    (!open.is_empty()).then_some(open)
}

/// The lifecycle actions of ours in scope: instances waiting in a group we serve, for a hook of ours; and
/// the key of each.
async fn open_actions<E: Effects>(
    fx: &E,
    config: &Config,
    scope: &Scope,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Open>, HashSet<Key>), Error> {
    let mut open = Vec::new();
    for group in fx.groups(scope).await? {
        if !config.serves(&group.name) {
            continue;
        }
        let waiting: Vec<_> = group.instances.iter().filter(|(_, s)| s.waiting()).collect();
        if waiting.is_empty() {
            continue;
        }
        let hooks: Vec<Hook> =
            fx.hooks(&group.name).await?.into_iter().filter(|h| config.hooks.ours(h)).collect();
        for hook in &hooks {
            if !decide::outlasts_two_periods(hook.heartbeat_timeout, config.period) {
                warnings.push(format!(
                    "hook {} of group {} has a heartbeat timeout of {} s, not more than two reconcile periods ({} s each): a late pass may let it expire",
                    hook.name, group.name, hook.heartbeat_timeout, config.period.as_secs()
                ));
            }
        }
        for (id, state) in waiting {
            let Ok(instance_id) = InstanceId::parse("EC2InstanceId", id) else { continue };
            for hook in &hooks {
                let Some(kind) = decide::kind(hook.transition, *state) else { continue };
                let report = ActionReport::new(&instance_id, hook, kind);
                let (hook, instance_id, state) = (hook.clone(), instance_id.clone(), *state);
                open.push(Open { hook, instance_id, state, kind, began: Utc::now(), report });
            }
        }
    }
    let keys = open.iter().map(Open::key).collect();
    Ok((open, keys))
}

/// Sends the heartbeats that are due, before anything else: whatever fails later in the pass, no hook of
/// ours expires because of it. An action found over is marked so, and skipped by the rest of the pass.
async fn heartbeats<E: Effects>(
    fx: &E,
    config: &Config,
    memory: &Shared,
    open: &mut [Open],
    (began, now): (DateTime<Utc>, DateTime<Utc>),
) {
    for o in open.iter_mut() {
        let last = memory.with(|m| m.heartbeats.get(&o.key()).copied());
        let since = memory.with(|m| m.hook_timer_since(&o.key()));
        if last.is_some_and(|l| l >= began) {
            o.report.heartbeat = true; // sent at the start of this invocation
            continue;
        }
        // A terminating hook's action in Warmed:Pending:Wait is in doubt until Auto Scaling accepts a
        // heartbeat for it (see `holds`): one is sent at once.
        let probe = o.kind == Kind::Terminating && !memory.with(|m| m.confirmed(&o.key()));
        if config.dry_run
            || !(probe || decide::heartbeat_due(o.hook.heartbeat_timeout, since, now, config.period))
        {
            continue;
        }
        match fx.heartbeat(&o.hook, o.instance_id.as_str()).await {
            Ok(Answered::Done) => {
                o.report.heartbeat = true;
                memory.with(|m| m.heartbeats.insert(o.key(), now));
            }
            Ok(Answered::NoActiveAction(message)) => {
                let followed = memory.with(|m| {
                    m.answered.insert(o.key());
                    m.confirmed(&o.key()) && m.open.remove(&o.key()).is_some()
                });
                if followed { o.report.lost(&message) } else { o.report.over(message) }
            }
            Err(e) => {
                warn!(instance_id = %o.instance_id, error = %e, "heartbeat failed; the next pass tries again")
            }
        }
    }
}

/// The heartbeats due for the actions the last pass left open, before anything is read; those found over
/// without our answer, reported.
async fn remembered_heartbeats<E: Effects>(
    fx: &E,
    config: &Config,
    memory: &Shared,
    now: DateTime<Utc>,
) -> Vec<ActionReport> {
    let mut lost = Vec::new();
    if config.dry_run {
        return lost;
    }
    let due: Vec<(Key, Hook)> = memory.with(|m| {
        m.open
            .iter()
            .filter(|(k, h)| {
                decide::heartbeat_due(h.heartbeat_timeout, m.hook_timer_since(k), now, config.period)
            })
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect()
    });
    for (key, hook) in due {
        match fx.heartbeat(&hook, &key.2).await {
            Ok(Answered::Done) => memory.with(|m| m.heartbeats.insert(key, now)),
            Ok(Answered::NoActiveAction(message)) => memory.with(|m| {
                m.open.remove(&key);
                m.answered.insert(key.clone());
                lost.extend(lost_report(&key, &hook, &message));
                None
            }),
            Err(e) => {
                warn!(instance_id = %key.2, error = %e, "heartbeat failed; the pass tries again");
                None
            }
        };
    }
    lost
}

/// Whether the hook is known to hold the instance. Only `Warmed:Pending:Wait` is in doubt: a launch into the
/// warm pool waits there too, for a launching hook, and a terminating hook of ours would then drain a new
/// instance. A heartbeat that Auto Scaling accepted for our hook settles it.
fn holds(memory: &Shared, o: &Open) -> bool {
    o.kind != Kind::Terminating
        || o.state != LifecycleState::WarmedPendingWait
        || o.report.heartbeat
        || memory.with(|m| m.heartbeats.contains_key(&o.key()))
}

/// An action this sandbox followed, found over without our answer (its key holds a checked instance id).
fn lost_report(key: &Key, hook: &Hook, message: &str) -> Option<ActionReport> {
    let kind = if hook.transition == Transition::Terminating { Kind::Terminating } else { Kind::Launching };
    let mut report = ActionReport::new(&InstanceId::parse("EC2InstanceId", &key.2).ok()?, hook, kind);
    report.lost(message);
    Some(report)
}

/// When each action began: remembered, or its scaling activity's start, or (neither known) now, the
/// first time this sandbox sees it. An activity that cannot be read costs a warning, not the pass.
async fn begin_times<E: Effects>(
    fx: &E,
    memory: &Shared,
    open: &mut [Open],
    now: DateTime<Utc>,
    warnings: &mut Vec<String>,
) {
    let mut unknown: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in open.iter() {
        if !memory.with(|m| m.began.contains_key(o.instance_id.as_str())) {
            unknown.entry(o.hook.group.clone()).or_default().insert(o.instance_id.to_string());
        }
    }
    for (group, ids) in unknown {
        let found = fx.began(&group, &ids).await.unwrap_or_else(|e| {
            warn!(group = %group, error = %e, "cannot read the scaling activities; waits count from now");
            warnings.push(format!(
                "cannot read the scaling activities of group {group} ({e}): waits count from now"
            ));
            BTreeMap::new()
        });
        memory.with(|m| {
            for id in ids {
                match found.get(&id) {
                    Some(at) => m.began.entry(id).or_insert((*at).min(now)),
                    None => {
                        m.seen_only.insert(id.clone());
                        m.began.entry(id).or_insert(now)
                    }
                };
            }
        });
    }
    for o in open.iter_mut() {
        o.began = memory.with(|m| m.began.get(o.instance_id.as_str()).copied()).unwrap_or(now);
    }
}

fn remember(memory: &Shared, o: &Open, regs: &[Found]) {
    memory.with(|m| {
        let arns = regs.iter().map(|f| f.container_instance_arn.clone());
        if o.report.step.ends_action() {
            m.open.remove(&o.key());
        } else {
            m.open.insert(o.key(), o.hook.clone());
        }
        match o.report.step {
            Step::Drained | Step::Waiting if o.kind == Kind::Terminating => m.draining.extend(arns),
            step if step.ends_action() => {
                m.answered.insert(o.key());
                m.heartbeats.remove(&o.key());
                for arn in arns {
                    m.draining.remove(&arn);
                }
            }
            _ => {}
        }
    });
}

/// Completes an action (never in a dry run), and says what became of it.
pub async fn complete<E: Effects>(
    fx: &E,
    config: &Config,
    o: &mut Open,
    result: LifecycleResult,
    step: Step,
    clock: Clock,
) {
    o.report.waited_seconds = (clock.now() - o.began).num_seconds();
    if config.dry_run {
        o.report.would(step, result);
        return;
    }
    match fx.complete(&o.hook, o.instance_id.as_str(), result).await {
        Ok(Answered::Done) => {
            o.report.step = step;
            o.report.result = Some(result);
        }
        Ok(Answered::NoActiveAction(message)) => o.report.over(message),
        Err(e) => o.report.failed(&e),
    }
}

/// The marker our drains of a terminating instance carry: the drain's time is counted from it.
pub fn our_marker(now: DateTime<Utc>) -> Marker {
    Marker::new(Owner::LifecycleDrainer, "terminating", now)
}

#[cfg(test)]
mod tests;
