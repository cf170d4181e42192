//! Settings, read once at cold start: `CLUSTERS`, `LIFECYCLE_HOOK_NAMES`, `DRAIN_TIMEOUT_SECONDS`,
//! `TIMEOUT_RESULT`, `POLL_INTERVAL_SECONDS`, `POLL_WINDOW_SECONDS`, `MAX_HOPS`, `LAUNCH_TIMEOUT_SECONDS`,
//! `AUTO_SCALING_GROUPS`, `CONTINUATION_TOPIC_ARN`, `NOTIFICATION_TOPIC_ARN`, `DRY_RUN`.

use std::time::Duration;

use serde::Serialize;
use shared::config::{ConfigError, Env};
use shared::ecs::ClusterScope;

/// Continuations allowed beyond what `DRAIN_TIMEOUT_SECONDS` needs, by default.
const HOP_MARGIN: u32 = 2;

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
    /// Empty: answer every hook that reaches us.
    pub hook_names: Vec<String>,
    /// The groups whose hooks it answers; empty: any group.
    pub groups: Vec<String>,
    pub drain_timeout: Duration,
    pub timeout_result: LifecycleResult,
    pub poll_interval: Duration,
    pub poll_window: Duration,
    pub max_hops: u32,
    /// How long a launch may wait for its container instance to be ready before it is abandoned, from when
    /// the instance began to wait; within one invocation's window.
    pub launch_timeout: Duration,
    /// Where continuations go; without it, the SNS topic the message came from.
    pub continuation_topic_arn: Option<String>,
    pub notification_topic_arn: Option<String>,
    pub dry_run: bool,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let clusters = ClusterScope::from_env(&mut env, "CLUSTERS");
        let hook_names = env.list("LIFECYCLE_HOOK_NAMES");
        let groups = env.list("AUTO_SCALING_GROUPS");
        let drain_timeout = Duration::from_secs(env.number("DRAIN_TIMEOUT_SECONDS", 900, 1, 172_800));
        let timeout_result = match env.get("TIMEOUT_RESULT") {
            None => LifecycleResult::Continue,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                env.problem("TIMEOUT_RESULT", Some(&raw), "expected CONTINUE or ABANDON");
                LifecycleResult::Continue
            }),
        };
        let poll_interval = Duration::from_secs(env.number("POLL_INTERVAL_SECONDS", 15, 1, 300));
        let poll_window = Duration::from_secs(env.number("POLL_WINDOW_SECONDS", 600, 1, 870));
        // The hop cap is a safety net, not a second timeout: it must let the drain reach its deadline, and
        // no more than that plus a small margin, so that a forged continuation cannot loop for long.
        let needed = drain_timeout.as_secs().div_ceil(poll_window.as_secs().max(1));
        let default_hops = u32::try_from(needed).unwrap_or(u32::MAX).saturating_add(HOP_MARGIN);
        let max_hops = env.number("MAX_HOPS", default_hops, 0, 10_000);
        if u64::from(max_hops) < needed {
            env.problem(
                "MAX_HOPS",
                Some(&max_hops.to_string()),
                format!("too low: DRAIN_TIMEOUT_SECONDS / POLL_WINDOW_SECONDS needs at least {needed}"),
            );
        }
        // By default 10 minutes, or the poll window if that is shorter.
        let default_launch = poll_window.as_secs().min(600);
        let launch_timeout =
            Duration::from_secs(env.number("LAUNCH_TIMEOUT_SECONDS", default_launch, 1, 870));
        if launch_timeout > poll_window {
            env.problem(
                "LAUNCH_TIMEOUT_SECONDS",
                Some(&launch_timeout.as_secs().to_string()),
                format!(
                    "longer than POLL_WINDOW_SECONDS={}: a launch is watched within one invocation",
                    poll_window.as_secs()
                ),
            );
        }
        let continuation_topic_arn = env.topic_arn("CONTINUATION_TOPIC_ARN");
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let dry_run = env.bool("DRY_RUN", false);
        env.finish()?;
        Ok(Config {
            clusters,
            hook_names,
            groups,
            drain_timeout,
            timeout_result,
            poll_interval,
            poll_window,
            max_hops,
            launch_timeout,
            continuation_topic_arn,
            notification_topic_arn,
            dry_run,
        })
    }

    /// Whether a hook of this name is ours to answer: a name in `LIFECYCLE_HOOK_NAMES`, or one of the
    /// stack's numbered hooks of that name (`<name>-01` to `<name>-99`, one per group it hooks).
    pub fn answers(&self, hook_name: &str) -> bool {
        let numbered = |h: &str| {
            hook_name
                .strip_prefix(h)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
        };
        self.hook_names.is_empty() || self.hook_names.iter().any(|h| h == hook_name || numbered(h))
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
        assert_eq!(c.poll_interval, Duration::from_secs(15));
        assert_eq!(c.poll_window, Duration::from_secs(600));
        assert!(c.hook_names.is_empty());
        assert!(c.groups.is_empty());
        assert!(!c.dry_run);
        assert_eq!(c.max_hops, 2 + 2, "900 s in windows of 600 s, and a margin of 2");
    }

    #[test]
    fn a_hook_name_answers_for_its_numbered_hooks() {
        let map = HashMap::from([("LIFECYCLE_HOOK_NAMES", "shipshape-drain")]);
        let c = Config::from_env(Env::from_map(&map)).unwrap();
        for ours in ["shipshape-drain", "shipshape-drain-01", "shipshape-drain-50"] {
            assert!(c.answers(ours), "{ours}");
        }
        for other in ["other", "shipshape-drain-1", "shipshape-drain-x1", "shipshape-drain-001", "shipshape"]
        {
            assert!(!c.answers(other), "{other}");
        }
    }

    #[test]
    fn the_default_hop_cap_follows_the_timeout() {
        let map = HashMap::from([("DRAIN_TIMEOUT_SECONDS", "3600"), ("POLL_WINDOW_SECONDS", "600")]);
        assert_eq!(Config::from_env(Env::from_map(&map)).unwrap().max_hops, 8);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let map = HashMap::from([
            ("TIMEOUT_RESULT", "retry"),
            ("DRAIN_TIMEOUT_SECONDS", "0"),
            ("POLL_INTERVAL_SECONDS", "often"),
            ("CONTINUATION_TOPIC_ARN", "hooks"),
            ("POLL_WINDOW_SECONDS", "300"),
            ("LAUNCH_TIMEOUT_SECONDS", "600"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "DRAIN_TIMEOUT_SECONDS",
                "TIMEOUT_RESULT",
                "POLL_INTERVAL_SECONDS",
                "LAUNCH_TIMEOUT_SECONDS",
                "CONTINUATION_TOPIC_ARN"
            ]
        );
    }

    #[test]
    fn the_timeout_result_takes_any_case() {
        let map = HashMap::from([("TIMEOUT_RESULT", "abandon")]);
        assert_eq!(Config::from_env(Env::from_map(&map)).unwrap().timeout_result, LifecycleResult::Abandon);
    }

    #[test]
    fn the_hop_cap_must_reach_the_deadline() {
        let map = HashMap::from([
            ("DRAIN_TIMEOUT_SECONDS", "3600"),
            ("POLL_WINDOW_SECONDS", "600"),
            ("MAX_HOPS", "5"),
        ]);
        let err = Config::from_env(Env::from_map(&map)).unwrap_err();
        assert_eq!(err.problems[0].variable, "MAX_HOPS");
        let map = HashMap::from([
            ("DRAIN_TIMEOUT_SECONDS", "3600"),
            ("POLL_WINDOW_SECONDS", "600"),
            ("MAX_HOPS", "6"),
        ]);
        assert!(Config::from_env(Env::from_map(&map)).is_ok());
    }

    #[test]
    fn result_names_match_the_summary() {
        for r in [LifecycleResult::Continue, LifecycleResult::Abandon] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
