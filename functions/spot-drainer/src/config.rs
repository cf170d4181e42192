//! Settings, read once at cold start: `CLUSTERS`, `DRAIN_ON`, `REPLACE_ON_SCHEDULED`, `REBALANCE_MODE`,
//! `REBALANCE_UNDO_MINUTES`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`, `AUTO_SCALING_GROUPS`,
//! `LIFECYCLE_HOOK_NAMES` and `LIFECYCLE_TOPIC_ARN` (the lifecycle-drainer's hooks, which wait for a drain),
//! `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.

use std::time::Duration;

use serde::Serialize;
use shared::config::{ConfigError, Env};
use shared::drain::hooks::HookNames;
use shared::ecs::ClusterScope;

use crate::input::Trigger;

/// How a rebalance recommendation drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", ascii_case_insensitive)]
pub enum RebalanceMode {
    /// Drain at once.
    Immediate,
    /// Drain only while the cluster keeps its spare capacity without the instance, and undo the drain when
    /// no interruption warning follows within `REBALANCE_UNDO_MINUTES`.
    Careful,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    pub drain_on: Vec<Trigger>,
    /// Scheduled maintenance: once drained, have the Auto Scaling group replace the instance.
    pub replace_on_scheduled: bool,
    /// The groups whose instances may be replaced; empty: any group.
    pub groups: Vec<String>,
    /// The lifecycle-drainer's hooks: a terminating hook of these holds an instance until its drain is
    /// done; any other hook (another tool's) waits for nobody's drain.
    pub hooks: HookNames,
    pub rebalance_mode: RebalanceMode,
    pub rebalance_undo: Duration,
    /// The spare capacity a careful rebalance drain keeps, in percent of the registered capacity that stays.
    pub reserve_cpu_percent: u32,
    pub reserve_memory_percent: u32,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let mut drain_on = Vec::new();
        let listed = env.list("DRAIN_ON");
        for item in &listed {
            match item.parse::<Trigger>() {
                Ok(t) if !t.is_a_drain_choice() => unknown_trigger(&mut env, item),
                Err(_) => unknown_trigger(&mut env, item),
                Ok(t) if !drain_on.contains(&t) => drain_on.push(t),
                Ok(_) => {}
            }
        }
        if listed.is_empty() {
            drain_on = vec![Trigger::Terminate, Trigger::Stop, Trigger::Hibernate];
        }
        let replace_on_scheduled = env.bool("REPLACE_ON_SCHEDULED", false);
        let groups = env.list("AUTO_SCALING_GROUPS");
        let hooks = HookNames {
            names: env.list("LIFECYCLE_HOOK_NAMES"),
            topic: env.topic_arn("LIFECYCLE_TOPIC_ARN"),
        };
        let rebalance_mode = match env.get("REBALANCE_MODE") {
            None => RebalanceMode::Immediate,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                env.problem("REBALANCE_MODE", Some(&raw), "expected immediate or careful");
                RebalanceMode::Immediate
            }),
        };
        let rebalance_undo = Duration::from_secs(60 * env.number("REBALANCE_UNDO_MINUTES", 60, 1, 1440));
        let reserve_cpu_percent = env.number("RESERVE_CPU_PERCENT", 20, 0, 100);
        let reserve_memory_percent = env.number("RESERVE_MEMORY_PERCENT", 20, 0, 100);
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config {
            clusters,
            drain_on,
            replace_on_scheduled,
            groups,
            hooks,
            rebalance_mode,
            rebalance_undo,
            reserve_cpu_percent,
            reserve_memory_percent,
            notification_topic_arn,
            dry_run,
        })
    }
}

fn unknown_trigger(env: &mut Env<'_>, item: &str) {
    env.problem(
        "DRAIN_ON",
        Some(item),
        "unknown trigger (expected terminate, stop, hibernate, rebalance or scheduled)",
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn defaults() {
        let map = HashMap::new();
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        assert_eq!(c.clusters, ClusterScope::All);
        assert_eq!(c.drain_on, [Trigger::Terminate, Trigger::Stop, Trigger::Hibernate]);
        assert!(!c.dry_run);
        assert!(!c.replace_on_scheduled);
        assert_eq!(c.rebalance_mode, RebalanceMode::Immediate);
        assert_eq!(c.rebalance_undo, Duration::from_secs(3600));
        assert_eq!(c.notification_topic_arn, None);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let map = HashMap::from([
            ("DRAIN_ON", "terminate,reboot,running"),
            ("DRY_RUN", "sure"),
            ("CLUSTERS", "a b"),
            ("REBALANCE_MODE", "lazy"),
            ("REBALANCE_UNDO_MINUTES", "0"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            ["CLUSTERS", "DRAIN_ON", "DRAIN_ON", "REBALANCE_MODE", "REBALANCE_UNDO_MINUTES", "DRY_RUN"]
        );
    }

    #[test]
    fn rebalance_and_scheduled_are_opt_in_and_duplicates_count_once() {
        let map = HashMap::from([
            ("DRAIN_ON", "Terminate, rebalance,terminate,scheduled"),
            ("REBALANCE_MODE", "Careful"),
        ]);
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        assert_eq!(c.drain_on, [Trigger::Terminate, Trigger::Rebalance, Trigger::Scheduled]);
        assert_eq!(c.rebalance_mode, RebalanceMode::Careful);
    }
}
