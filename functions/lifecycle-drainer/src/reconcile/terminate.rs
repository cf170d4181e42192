//! A terminating instance: drain every registration of it, then complete the action once no task is left
//! on any of them (and the drain has settled), or at its deadline.

use chrono::{DateTime, Utc};
use shared::drain::instances::Registrations;
use shared::drain::tasks;
use shared::ecs::{Found, InstanceStatus};
use shared::edge::Clock;
use tracing::{info, warn};

use super::{Effects, Open, complete, our_marker};
use crate::decide::{self, Drain, TimeoutCause};
use crate::{Config, LifecycleResult, Step};

/// When the action's time is up, and why: a drain's from its start, a launch's from its wait's.
pub fn time_up(config: &Config, o: &Open, regs: &[Found]) -> (DateTime<Utc>, TimeoutCause) {
    let (since, timeout) = if o.kind == decide::Kind::Terminating {
        (decide::drain_began(regs, o.began), config.drain_timeout)
    } else {
        (Some(o.began), config.launch_timeout)
    };
    decide::deadline((o.began, since), timeout, o.hook.global_timeout, config.period)
}

/// ECS could not be read this pass: a terminating action whose hook's lifetime is about to end is completed
/// with `TIMEOUT_RESULT` anyway, with what went wrong: Auto Scaling would otherwise apply the hook's default
/// result, and nobody would say so. Nothing else is done blind.
pub async fn unreadable<E: Effects>(fx: &E, config: &Config, open: &mut [Open], why: &str, clock: Clock) {
    for o in open.iter_mut().filter(|o| o.kind == decide::Kind::Terminating) {
        if o.report.step == Step::AlreadyCompleted {
            continue;
        }
        let (deadline, cause) =
            decide::deadline((o.began, None), config.drain_timeout, o.hook.global_timeout, config.period);
        if clock.now() < deadline {
            continue;
        }
        o.report.reason = Some(cause.reason().into());
        o.report.warnings.push(format!("its container instances could not be read: {why}"));
        warn!(instance_id = %o.instance_id, error = why, "hook lifetime ends while ECS cannot be read");
        complete(fx, config, o, config.timeout_result, Step::TimedOut, clock).await;
    }
}

/// What the instance needs next ([`decide::drain`]).
pub fn plan(config: &Config, o: &Open, regs: &[Found], now: DateTime<Utc>) -> Drain {
    decide::drain(regs, time_up(config, o, regs), now)
}

/// Does what `plan` says, but for [`Drain::Start`], which [`start`] does for every action of a pass at once.
pub async fn run<E: Effects>(
    fx: &E,
    config: &Config,
    o: &mut Open,
    regs: &[Found],
    plan: Drain,
    looks: &mut usize,
    clock: Clock,
) {
    match plan {
        Drain::NotEcs => {
            o.report.reason = Some("not a container instance of the configured clusters".into());
            complete(fx, config, o, LifecycleResult::Continue, Step::NotAnEcsInstance, clock).await;
        }
        Drain::Busy(running) => {
            o.report.step = Step::Waiting;
            o.report.tasks_left = usize::try_from(running).unwrap_or(usize::MAX);
        }
        Drain::Look if *looks == 0 => {
            o.report.step = Step::Waiting;
            o.report.reason =
                Some("left for the next pass: enough instances were looked at in this one".into());
        }
        Drain::Look => {
            *looks -= 1;
            look(fx, config, o, regs, clock).await;
        }
        Drain::TimeUp(cause) => time_is_up(fx, config, o, regs, cause, clock).await,
        Drain::Start { .. } => {}
    }
}

/// A drain to begin: the action (by index), its registrations to set DRAINING and to mark, by ARN.
#[derive(Debug, Clone)]
pub struct Start {
    pub action: usize,
    pub activate: Vec<String>,
    pub mark: Vec<String>,
}

/// Sets the ACTIVE registrations of every action in `starts` DRAINING and marks those DRAINING without a
/// marker: one batch per cluster (ECS takes 10 container instances a call), whatever the number of drains.
pub async fn start<E: Effects>(
    fx: &E,
    config: &Config,
    open: &mut [Open],
    registrations: &Registrations,
    starts: &[Start],
    now: DateTime<Utc>,
) {
    for s in starts {
        let o = &mut open[s.action];
        o.report.tasks_left =
            usize::try_from(tasks::counted(registrations.of(o.instance_id.as_str()))).unwrap_or(usize::MAX);
        (o.report.step, o.report.reason) = if config.dry_run {
            (Step::DryRun, Some("would set it DRAINING".into()))
        } else {
            (Step::Drained, None)
        };
    }
    if config.dry_run || starts.is_empty() {
        return;
    }
    let marker = our_marker(now);
    let all: Vec<&Found> =
        starts.iter().flat_map(|s| registrations.of(open[s.action].instance_id.as_str())).collect();
    let wanted = |pick: &dyn Fn(&Start) -> &Vec<String>| -> Vec<String> {
        starts.iter().flat_map(|s| pick(s).clone()).collect()
    };
    let (activate, mark) = (wanted(&|s| &s.activate), wanted(&|s| &s.mark));
    for cluster in clusters(&all) {
        let here = |arns: &[String]| -> Vec<Found> {
            all.iter()
                .filter(|f| f.cluster == cluster && arns.contains(&f.container_instance_arn))
                .map(|f| (*f).clone())
                .collect()
        };
        let (to_drain, to_mark) = (here(&activate), here(&mark));
        let failed = |open: &mut [Open], arns: &[Found], why: String| {
            for s in starts.iter().filter(|s| {
                arns.iter().any(|f| {
                    s.activate.contains(&f.container_instance_arn)
                        || s.mark.contains(&f.container_instance_arn)
                })
            }) {
                let o = &mut open[s.action];
                (o.report.step, o.report.reason) = (Step::Failed, Some(why.clone()));
            }
        };
        if !to_drain.is_empty() {
            match fx.drain(&cluster, &to_drain, &marker).await {
                Ok(change) => {
                    for refused in change.refused {
                        warn!(container_instance_arn = %refused.arn, reason = %refused.reason, "ECS refused to drain");
                        for s in starts.iter().filter(|s| s.activate.contains(&refused.arn)) {
                            open[s.action]
                                .report
                                .warnings
                                .push(format!("ECS refused to drain {}: {}", refused.arn, refused.reason));
                        }
                    }
                }
                Err(e) => failed(open, &to_drain, e.to_string()),
            }
        }
        if !to_mark.is_empty()
            && let Err(e) = fx.mark(&cluster, &to_mark, &marker).await
        {
            failed(open, &to_mark, e.to_string());
        }
    }
    info!(drains = starts.len(), "set DRAINING for their lifecycle actions");
}

/// Lists and describes the tasks on every registration: none left once the drain has settled completes
/// the action with CONTINUE.
async fn look<E: Effects>(fx: &E, config: &Config, o: &mut Open, regs: &[Found], clock: Clock) {
    let left = match fx.tasks_left(regs).await {
        Ok(left) => left,
        Err(e) => return o.report.failed(&e.into()),
    };
    o.report.set_tasks(&left);
    let now = clock.now();
    let settled = decide::drained_at(regs).is_some_and(|at| tasks::settled(at, now, config.settle));
    match (left.is_empty(), settled) {
        (true, true) => complete(fx, config, o, LifecycleResult::Continue, Step::Completed, clock).await,
        (true, false) => {
            o.report.step = Step::Waiting;
            o.report.reason = Some(format!(
                "no task listed, but DRAINING for less than SETTLE_SECONDS={} s (ECS's lists may lag)",
                config.settle.as_secs()
            ));
        }
        (false, _) => o.report.step = Step::Waiting,
    }
}

/// The deadline passed: one last look, for the report, then complete with `TIMEOUT_RESULT`.
async fn time_is_up<E: Effects>(
    fx: &E,
    config: &Config,
    o: &mut Open,
    regs: &[Found],
    cause: TimeoutCause,
    clock: Clock,
) {
    let listed = match fx.tasks_left(regs).await {
        Ok(left) => {
            o.report.set_tasks(&left);
            true
        }
        Err(e) => {
            warn!(instance_id = %o.instance_id, error = %e, "cannot list what is left before the deadline");
            o.report.warnings.push(format!("the tasks left could not be listed: {e}"));
            false
        }
    };
    // Only a listing that worked can show the instance empty: a failed one is not "nothing left".
    if listed && o.report.tasks_left == 0 && regs.iter().all(|r| r.status != InstanceStatus::Active) {
        return complete(fx, config, o, LifecycleResult::Continue, Step::Completed, clock).await;
    }
    o.report.reason = Some(cause.reason().into());
    warn!(
        instance_id = %o.instance_id,
        tasks_left = o.report.tasks_left,
        reason = o.report.reason.as_deref(),
        "drain timed out"
    );
    complete(fx, config, o, config.timeout_result, Step::TimedOut, clock).await;
}

fn clusters(regs: &[&Found]) -> Vec<String> {
    let mut clusters: Vec<String> = regs.iter().map(|r| r.cluster.clone()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    clusters
}
