//! Settings, read once at cold start: `CLUSTERS`, `RESERVE_CPU_PERCENT`, `RESERVE_MEMORY_PERCENT`,
//! `MAX_REMOVALS_PER_RUN`, `MIN_INSTANCE_AGE_MINUTES`, `AUTO_SCALING_GROUPS`, `SCALE_IN_COOLDOWN_MINUTES`,
//! `SCALE_IN_WINDOWS`, `SCALE_IN_BUDGET_PERCENT`, `STALLED_DRAIN_MINUTES`, `NOTIFICATION_TOPIC_ARN`,
//! `DRY_RUN`.

use chrono::Duration;
use shared::config::{ConfigError, Env};
use shared::ecs::ClusterScope;

use crate::plan::Settings;
use crate::plan::window::Windows;

/// A week, in minutes: the longest of the time settings.
const WEEK: i64 = 10_080;

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
        let minutes = |env: &mut Env<'_>, name: &str, default: i64| {
            Duration::minutes(env.number(name, default, 0, WEEK))
        };
        let settings = Settings {
            reserve_cpu_percent: env.number("RESERVE_CPU_PERCENT", 20, 0, 100),
            reserve_memory_percent: env.number("RESERVE_MEMORY_PERCENT", 20, 0, 100),
            max_removals: env.number("MAX_REMOVALS_PER_RUN", 2, 0, 100),
            min_instance_age: minutes(&mut env, "MIN_INSTANCE_AGE_MINUTES", 30),
            groups: env.list("AUTO_SCALING_GROUPS"),
            cooldown: minutes(&mut env, "SCALE_IN_COOLDOWN_MINUTES", 15),
            windows: windows(&mut env, "SCALE_IN_WINDOWS"),
            budget_percent: env.number("SCALE_IN_BUDGET_PERCENT", 10, 0, 100),
            // At least a minute: with 0, the first "unable to place" event, which ECS reports while it
            // is still placing, would undo a drain at once.
            stalled_after: Duration::minutes(env.number("STALLED_DRAIN_MINUTES", 60, 1, WEEK)),
        };
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config { clusters, settings, notification_topic_arn, dry_run })
    }
}

fn windows(env: &mut Env<'_>, name: &str) -> Windows {
    let raw = env.get(name).unwrap_or_default();
    Windows::parse(&raw).unwrap_or_else(|why| {
        env.problem(name, Some(&raw), why);
        Windows::default()
    })
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
                cooldown: Duration::minutes(15),
                windows: Windows::default(),
                budget_percent: 10,
                stalled_after: Duration::minutes(60),
            }
        );
        assert!(config.settings.windows.always());
        assert!(!config.dry_run);
        assert_eq!(config.notification_topic_arn, None);
    }

    #[test]
    fn windows_and_budgets_are_read() {
        let map = HashMap::from([
            ("SCALE_IN_WINDOWS", "Mon-Fri 20:00-06:00 UTC; Sat,Sun 00:00-24:00 UTC"),
            ("SCALE_IN_BUDGET_PERCENT", "25"),
            ("SCALE_IN_COOLDOWN_MINUTES", "0"),
            ("STALLED_DRAIN_MINUTES", "45"),
        ]);
        let config = Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.settings.windows.always());
        assert_eq!(config.settings.budget_percent, 25);
        assert_eq!(config.settings.cooldown, Duration::zero());
        assert_eq!(config.settings.stalled_after, Duration::minutes(45));
    }

    #[test]
    fn every_bad_setting_is_named() {
        let map = HashMap::from([
            ("RESERVE_CPU_PERCENT", "120"),
            ("RESERVE_MEMORY_PERCENT", "ten"),
            ("MAX_REMOVALS_PER_RUN", "-1"),
            ("MIN_INSTANCE_AGE_MINUTES", "1.5"),
            ("SCALE_IN_COOLDOWN_MINUTES", "20000"),
            ("SCALE_IN_WINDOWS", "weekdays 20:00-06:00 UTC"),
            ("SCALE_IN_BUDGET_PERCENT", "101"),
            ("STALLED_DRAIN_MINUTES", "soon"),
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
                "SCALE_IN_COOLDOWN_MINUTES",
                "SCALE_IN_WINDOWS",
                "SCALE_IN_BUDGET_PERCENT",
                "STALLED_DRAIN_MINUTES",
                "NOTIFICATION_TOPIC_ARN",
                "DRY_RUN"
            ]
        );
        assert!(err.to_string().contains("\"weekdays\" is not a day"), "{err}");

        let zero = HashMap::from([("STALLED_DRAIN_MINUTES", "0")]);
        let err = Config::from_env(Env::from_map(&zero)).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(
            err.problems.iter().map(|p| p.variable.as_str()).collect::<Vec<_>>(),
            ["STALLED_DRAIN_MINUTES"]
        );
    }
}
