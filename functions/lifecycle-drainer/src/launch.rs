//! A launch, held until ECS can place tasks on the instance: its container instance registered in a
//! configured cluster, ACTIVE, its agent connected. Then `CONTINUE`; `ABANDON` once `LAUNCH_TIMEOUT_SECONDS`
//! have passed since the instance began to wait, so that a broken AMI or agent never counts as capacity
//! (Auto Scaling terminates the instance and launches another). A launch into the warm pool is completed at
//! once: the instance is stopped there, and is checked when it leaves the pool. An instance we drained on its
//! way back into the warm pool comes back DRAINING: it is set ACTIVE again first.

use std::time::Duration;

use shared::edge::{Budget, Clock};
use tracing::{info, warn};

use crate::decide::{self, Readiness, Seen};
use crate::drain::{Completion, Effects, Ended, finish, gone};
use crate::input::Work;
use crate::{Action, Config, Error, LifecycleResult, Outcome};

/// Stop watching this long before Lambda's own deadline, to leave time to complete the action.
const LAMBDA_DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// One launch's readiness check. `hook`: the hook's heartbeat timeout (when read) and lifetime.
pub async fn run<E: Effects>(
    fx: &E,
    config: &Config,
    work: &Work,
    mut outcome: Outcome,
    budget: Budget,
    clock: Clock,
    (heartbeat_timeout, global_timeout): (Option<u32>, u32),
) -> Result<Outcome, Error> {
    let m = &work.message;
    let started = clock.now();
    if m.into_warm_pool() {
        outcome.reason = Some("a launch into the warm pool: checked when it leaves the pool".into());
        if config.dry_run {
            outcome.action = Action::DryRun;
            return Ok(outcome);
        }
        let done = Ended { action: Action::EnteredWarmPool, result: LifecycleResult::Continue };
        return finish(fx, outcome, done, started, clock).await;
    }
    let window_end =
        decide::window_end(started, config.poll_window, budget.remaining(), LAMBDA_DEADLINE_MARGIN);
    let deadline = decide::launch_deadline(work.began_at, config.launch_timeout, global_timeout, window_end);
    let heartbeat_interval = decide::heartbeat_interval(heartbeat_timeout);
    let mut last_heartbeat_at = started;
    let mut reactivated = false;
    loop {
        outcome.polls += 1;
        let found = fx.find().await?.found;
        if let Some(f) = &found {
            (outcome.cluster, outcome.container_instance_arn) =
                (Some(f.cluster.clone()), Some(f.container_instance_arn.clone()));
        }
        let seen = found.as_ref().map(|f| Seen {
            status: f.status,
            agent_connected: f.agent_connected,
            drained_by_us: f.attributes.contains_key(crate::aws::MARKER),
        });
        let why = match decide::readiness(seen) {
            Readiness::Ready if config.dry_run => {
                outcome.action = Action::DryRun;
                return Ok(outcome);
            }
            Readiness::Ready => {
                let done = Ended { action: Action::Ready, result: LifecycleResult::Continue };
                return finish(fx, outcome, done, work.began_at, clock).await;
            }
            Readiness::Reactivate if !config.dry_run && !reactivated => {
                if let Some(f) = &found {
                    fx.reactivate(f).await?;
                    info!(instance_id = %m.ec2_instance_id, "back from the warm pool: set ACTIVE again");
                }
                reactivated = true;
                continue;
            }
            Readiness::Reactivate => "DRAINING (drained by us on its way into the warm pool)".to_owned(),
            Readiness::DrainedByOthers => {
                outcome
                    .warnings
                    .push("its container instance is DRAINING, not by this function: left as it is".into());
                if config.dry_run {
                    outcome.action = Action::DryRun;
                    return Ok(outcome);
                }
                let done = Ended { action: Action::Ready, result: LifecycleResult::Continue };
                return finish(fx, outcome, done, work.began_at, clock).await;
            }
            Readiness::NotYet(why) => why,
        };
        let now = clock.now();
        if now >= deadline {
            outcome.reason = Some(format!(
                "not ready {} s after it began to wait (LAUNCH_TIMEOUT_SECONDS={}): {why}",
                (now - work.began_at).num_seconds(),
                config.launch_timeout.as_secs()
            ));
            warn!(instance_id = %m.ec2_instance_id, reason = outcome.reason.as_deref(), "launch abandoned");
            if config.dry_run {
                outcome.action = Action::DryRun;
                return Ok(outcome);
            }
            let done = Ended { action: Action::NotReady, result: LifecycleResult::Abandon };
            return finish(fx, outcome, done, work.began_at, clock).await;
        }
        let heartbeat_due =
            outcome.polls == 1 || now - last_heartbeat_at >= decide::to_chrono(heartbeat_interval);
        if heartbeat_due && !config.dry_run {
            if let Completion::NoActiveAction(message) = fx.heartbeat().await? {
                return Ok(gone(outcome, Some(message), work.began_at, clock.now()));
            }
            outcome.heartbeats += 1;
            last_heartbeat_at = clock.now();
        }
        let now = clock.now();
        let until = |t: chrono::DateTime<chrono::Utc>| (t - now).to_std().unwrap_or_default();
        let jittered = decide::jittered(config.poll_interval, m.ec2_instance_id.as_str(), outcome.polls);
        let pause = jittered
            .min(until(deadline))
            .min(until(last_heartbeat_at + decide::to_chrono(heartbeat_interval)));
        tokio::time::sleep(pause).await;
    }
}
