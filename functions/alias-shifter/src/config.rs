//! Settings, read once at cold start: `ALLOWED_FUNCTIONS`, `HOOK_FUNCTIONS`, `NOTIFICATION_TOPIC_ARN`,
//! `METRIC_PERIOD_SECONDS`.

use shared::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The functions it may shift (names or ARNs); empty: any.
    pub allowed_functions: Vec<String>,
    /// The functions a rollout may name as validation hooks (names); empty: none.
    pub hook_functions: Vec<String>,
    /// Default topic for reports; a payload's `notification-topic-arn` wins.
    pub notification_topic_arn: Option<String>,
    /// The period of the metrics read, in seconds: 60 for Lambda's metrics, which have 1-minute resolution
    /// in CloudWatch. Only the emulator's tests set less, to judge second-scale steps.
    pub metric_period: u32,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let allowed_functions = env.list("ALLOWED_FUNCTIONS");
        let hook_functions = env.list("HOOK_FUNCTIONS");
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        let metric_period = env.number("METRIC_PERIOD_SECONDS", 60u32, 1, 3600);
        // The periods GetMetricData takes: 1, 5, 10, 30 (high resolution) or a multiple of 60.
        if ![1, 5, 10, 30].contains(&metric_period) && !metric_period.is_multiple_of(60) {
            let raw = metric_period.to_string();
            env.problem("METRIC_PERIOD_SECONDS", Some(&raw), "expected 1, 5, 10, 30 or a multiple of 60");
        }
        env.finish()?;
        Ok(Config { allowed_functions, hook_functions, notification_topic_arn, metric_period })
    }

    /// Whether `function` (a name or ARN) may be shifted.
    pub fn may_shift(&self, function: &str, short_name: &str) -> bool {
        self.allowed_functions.is_empty()
            || self.allowed_functions.iter().any(|f| f == short_name || f == function)
    }

    /// Whether `short_name` may be a rollout's hook.
    pub fn may_call_hook(&self, short_name: &str) -> bool {
        self.hook_functions.iter().any(|f| f == short_name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn problems(map: &HashMap<&str, &str>) -> Vec<String> {
        Config::from_env(Env::from_map(map))
            .err()
            .map(|e| e.problems.into_iter().map(|p| p.variable).collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_bad_variable_is_named() {
        let map = HashMap::from([("NOTIFICATION_TOPIC_ARN", "nope"), ("METRIC_PERIOD_SECONDS", "45")]);
        assert_eq!(problems(&map), ["NOTIFICATION_TOPIC_ARN", "METRIC_PERIOD_SECONDS"]);
    }

    #[test]
    fn lists_and_defaults() {
        let map = HashMap::from([("ALLOWED_FUNCTIONS", "api, worker"), ("HOOK_FUNCTIONS", "smoke-test")]);
        let c = Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.allowed_functions, ["api", "worker"]);
        assert_eq!(c.metric_period, 60);
        assert!(c.may_shift("api", "api") && !c.may_shift("other", "other"));
        assert!(c.may_call_hook("smoke-test") && !c.may_call_hook("api"));
        let none = Config::from_env(Env::from_map(&HashMap::new())).unwrap_or_else(|e| panic!("{e}"));
        assert!(none.may_shift("any", "any") && !none.may_call_hook("smoke-test"));
    }
}
