//! Settings, read once at cold start: `CLUSTERS`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`,
//! `MAX_REMOVALS_PER_RUN`, `MIN_INSTANCE_AGE_MINUTES`, `AUTO_SCALING_GROUPS`, `NOTIFICATION_TOPIC_ARN`,
//! `DRY_RUN`.

use chrono::Duration;
use shared::config::{ConfigError, Env};
use shared::ecs::ClusterScope;

use crate::plan::Settings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    pub settings: Settings,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let settings = Settings {
            reserve_cpu_percent: env.number("RESERVE_CPU_PERCENT", 20, 0, 100),
            reserve_memory_percent: env.number("RESERVE_MEMORY_PERCENT", 20, 0, 100),
            max_removals: env.number("MAX_REMOVALS_PER_RUN", 2, 0, 100),
            min_instance_age: Duration::minutes(env.number("MIN_INSTANCE_AGE_MINUTES", 30, 0, 10_080)),
            groups: env.list("AUTO_SCALING_GROUPS"),
        };
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config { clusters, settings, notification_topic_arn, dry_run })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn defaults() {
        let map = HashMap::new();
        let config = Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.clusters, ClusterScope::All);
        assert_eq!(
            config.settings,
            Settings {
                reserve_cpu_percent: 20,
                reserve_memory_percent: 20,
                max_removals: 2,
                min_instance_age: Duration::minutes(30),
                groups: Vec::new(),
            }
        );
        assert!(!config.dry_run);
        assert_eq!(config.notification_topic_arn, None);
    }

    #[test]
    fn every_bad_setting_is_named() {
        let map = HashMap::from([
            ("RESERVE_CPU_PERCENT", "120"),
            ("RESERVE_MEMORY_PERCENT", "ten"),
            ("MAX_REMOVALS_PER_RUN", "-1"),
            ("MIN_INSTANCE_AGE_MINUTES", "1.5"),
            ("DRY_RUN", "perhaps"),
            ("NOTIFICATION_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).err().unwrap_or_else(|| panic!("accepted"));
        let named: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            named,
            [
                "RESERVE_CPU_PERCENT",
                "RESERVE_MEMORY_PERCENT",
                "MAX_REMOVALS_PER_RUN",
                "MIN_INSTANCE_AGE_MINUTES",
                "NOTIFICATION_TOPIC_ARN",
                "DRY_RUN"
            ]
        );
    }
}
