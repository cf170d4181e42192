//! Settings, read once at cold start: `CLUSTERS`, `DRAIN_ON`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.

use shared::config::{ConfigError, Env};
use shared::ecs::ClusterScope;

use crate::input::Trigger;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    pub drain_on: Vec<Trigger>,
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
                Ok(Trigger::Running) | Err(_) => env.problem(
                    "DRAIN_ON",
                    Some(item),
                    "unknown trigger (expected terminate, stop, hibernate or rebalance)",
                ),
                Ok(t) if !drain_on.contains(&t) => drain_on.push(t),
                Ok(_) => {}
            }
        }
        if listed.is_empty() {
            drain_on = vec![Trigger::Terminate, Trigger::Stop, Trigger::Hibernate];
        }
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config { clusters, drain_on, notification_topic_arn, dry_run })
    }
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
        assert_eq!(c.notification_topic_arn, None);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let map = HashMap::from([
            ("DRAIN_ON", "terminate,reboot,running"),
            ("DRY_RUN", "sure"),
            ("CLUSTERS", "a b"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, ["CLUSTERS", "DRAIN_ON", "DRAIN_ON", "DRY_RUN"]);
    }

    #[test]
    fn rebalance_is_opt_in_and_duplicates_count_once() {
        let map = HashMap::from([("DRAIN_ON", "Terminate, rebalance,terminate")]);
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        assert_eq!(c.drain_on, [Trigger::Terminate, Trigger::Rebalance]);
    }
}
