//! A launching instance: let go (CONTINUE) once ECS can place tasks on it, abandoned (ABANDON) once it is not
//! ready by its deadline, so that a broken AMI or agent never counts as capacity. A launch into the warm
//! pool goes on at once: the instance is stopped there, and looked at when it leaves the pool.

use shared::ecs::Found;
use shared::edge::Clock;
use tracing::warn;

use super::terminate::time_up;
use super::{Effects, Open, complete};
use crate::decide::{self, Kind, Launch};
use crate::{Config, LifecycleResult, Step};

pub async fn run<E: Effects>(fx: &E, config: &Config, o: &mut Open, regs: &[Found], clock: Clock) {
    if o.kind == Kind::IntoWarmPool {
        if decide::takes_tasks_in_warm_pool(regs) {
            o.report.warnings.push(
                "its container instance is ACTIVE while the instance enters the warm pool: ECS may place tasks on it \
                 there; set ECS_WARM_POOLS_CHECK=true in the agent's configuration (agent 1.59.0 or later)"
                    .into(),
            );
        }
        o.report.reason = Some("a launch into the warm pool: looked at when it leaves the pool".into());
        return complete(fx, config, o, LifecycleResult::Continue, Step::EnteredWarmPool, clock).await;
    }
    let (deadline, _) = time_up(config, o, regs);
    match decide::launch(regs, deadline, clock.now()) {
        Launch::Ready => complete(fx, config, o, LifecycleResult::Continue, Step::Ready, clock).await,
        Launch::DrainedByOthers => {
            o.report
                .warnings
                .push("its container instance is DRAINING, not by this function: left as it is".into());
            complete(fx, config, o, LifecycleResult::Continue, Step::Ready, clock).await;
        }
        Launch::Undo(arns) => {
            let ours: Vec<Found> =
                regs.iter().filter(|f| arns.contains(&f.container_instance_arn)).cloned().collect();
            o.report.step = Step::NotYet;
            o.report.reason =
                Some("DRAINING by our drain when it went back to the warm pool: set ACTIVE again".into());
            for cluster in ours.iter().map(|f| f.cluster.clone()).collect::<std::collections::BTreeSet<_>>() {
                let here: Vec<Found> = ours.iter().filter(|f| f.cluster == cluster).cloned().collect();
                if let Err(e) = fx.undo(&cluster, &here).await {
                    warn!(instance_id = %o.instance_id, error = %e, "could not undo our drain; next pass");
                    o.report.warnings.push(format!("could not set it ACTIVE again: {e}"));
                }
            }
        }
        Launch::NotYet(why) => {
            o.report.step = Step::NotYet;
            o.report.reason = Some(why);
        }
        Launch::Abandon(why) => {
            o.report.reason = Some(format!(
                "not ready {} s after it began to wait (LAUNCH_TIMEOUT_SECONDS={}): {why}",
                (clock.now() - o.began).num_seconds(),
                config.launch_timeout.as_secs()
            ));
            warn!(instance_id = %o.instance_id, reason = o.report.reason.as_deref(), "launch abandoned");
            complete(fx, config, o, LifecycleResult::Abandon, Step::NotReady, clock).await;
        }
    }
}
