//! Settings, read once at cold start: `CLUSTERS`, `LIFECYCLE_HOOK_NAMES`, `LIFECYCLE_TOPIC_ARN`,
//! `AUTO_SCALING_GROUPS`, `DRAIN_TIMEOUT_SECONDS`, `TIMEOUT_RESULT`, `LAUNCH_TIMEOUT_SECONDS`,
//! `RECONCILE_PERIOD_SECONDS`, `SETTLE_SECONDS`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.
//!
//! The drainer before the reconcile took `POLL_INTERVAL_SECONDS`, `POLL_WINDOW_SECONDS`, `MAX_HOPS` and
//! `CONTINUATION_TOPIC_ARN`; they are ignored now.

use std::time::Duration;

use serde::Serialize;
use shared::config::{ConfigError, Env};
use shared::drain::hooks::HookNames;
use shared::ecs::ClusterScope;

/// The result a lifecycle action is completed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE", ascii_case_insensitive)]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clusters: ClusterScope,
    /// The hooks we answer: by name, and only those notifying our topic (or EventBridge).
    pub hooks: HookNames,
    /// The groups whose hooks it answers; empty: any group.
    pub groups: Vec<String>,
    /// How long a drain may wait for its tasks, from when the instance began to wait.
    pub drain_timeout: Duration,
    pub timeout_result: LifecycleResult,
    /// How long a launch may wait for its container instance to be ready, from when it began to wait.
    pub launch_timeout: Duration,
    /// How often the schedule reconciles (the template's rate): heartbeats are timed to outlast it.
    pub period: Duration,
    /// How long after an instance is set DRAINING an empty look at its tasks is trusted: ECS's lists are
    /// eventually consistent, and a task placed just before the drain may not be listed at once.
    pub settle: Duration,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let names = env.list("LIFECYCLE_HOOK_NAMES");
        let topic = env.topic_arn("LIFECYCLE_TOPIC_ARN");
        let groups = env.list("AUTO_SCALING_GROUPS");
        let drain_timeout = Duration::from_secs(env.number("DRAIN_TIMEOUT_SECONDS", 900, 1, 172_800));
        let timeout_result = match env.get("TIMEOUT_RESULT") {
            None => LifecycleResult::Continue,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                env.problem("TIMEOUT_RESULT", Some(&raw), "expected CONTINUE or ABANDON");
                LifecycleResult::Continue
            }),
        };
        let launch_timeout = Duration::from_secs(env.number("LAUNCH_TIMEOUT_SECONDS", 600, 1, 172_800));
        let period = Duration::from_secs(env.number("RECONCILE_PERIOD_SECONDS", 60, 1, 3600));
        let settle = Duration::from_secs(env.number("SETTLE_SECONDS", 10, 0, 600));
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config {
            clusters,
            hooks: HookNames { names, topic },
            groups,
            drain_timeout,
            timeout_result,
            launch_timeout,
            period,
            settle,
            notification_topic_arn,
            dry_run,
        })
    }

    /// Whether this group's lifecycle actions are ours to complete.
    pub fn serves(&self, group: &str) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| g == group)
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
        assert_eq!(c.drain_timeout, Duration::from_secs(900));
        assert_eq!(c.timeout_result, LifecycleResult::Continue);
        assert_eq!(c.launch_timeout, Duration::from_secs(600));
        assert_eq!(c.period, Duration::from_secs(60));
        assert_eq!(c.settle, Duration::from_secs(10));
        assert_eq!(c.hooks, HookNames::default());
        assert!(c.groups.is_empty());
        assert!(!c.dry_run);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let map = HashMap::from([
            ("TIMEOUT_RESULT", "retry"),
            ("DRAIN_TIMEOUT_SECONDS", "0"),
            ("RECONCILE_PERIOD_SECONDS", "often"),
            ("LIFECYCLE_TOPIC_ARN", "hooks"),
            ("SETTLE_SECONDS", "601"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "LIFECYCLE_TOPIC_ARN",
                "DRAIN_TIMEOUT_SECONDS",
                "TIMEOUT_RESULT",
                "RECONCILE_PERIOD_SECONDS",
                "SETTLE_SECONDS"
            ]
        );
    }

    #[test]
    fn the_old_poll_settings_are_ignored() {
        let map = HashMap::from([
            ("POLL_WINDOW_SECONDS", "600"),
            ("MAX_HOPS", "x"),
            ("CONTINUATION_TOPIC_ARN", "y"),
        ]);
        assert!(Config::from_env(Env::from_map(&map)).is_ok());
    }

    #[test]
    fn the_timeout_result_takes_any_case() {
        let map = HashMap::from([("TIMEOUT_RESULT", "abandon")]);
        assert_eq!(Config::from_env(Env::from_map(&map)).unwrap().timeout_result, LifecycleResult::Abandon);
    }

    #[test]
    fn result_names_match_the_summary() {
        for r in [LifecycleResult::Continue, LifecycleResult::Abandon] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
