//! Settings, read once at cold start: `ALLOWED_FUNCTIONS`, `NOTIFICATION_TOPIC_ARN`.

use shared::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The functions it may shift (names or ARNs); empty: any.
    pub allowed_functions: Vec<String>,
    /// Default topic for reports; a payload's `notification-topic-arn` wins.
    pub notification_topic_arn: Option<String>,
}

impl Config {
    pub fn from_env(mut env: Env<'_>) -> Result<Self, ConfigError> {
        let allowed_functions = env.list("ALLOWED_FUNCTIONS");
        let notification_topic_arn = env.topic_arn("NOTIFICATION_TOPIC_ARN");
        env.finish()?;
        Ok(Config { allowed_functions, notification_topic_arn })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_bad_topic_is_named() {
        let map = HashMap::from([("ALLOWED_FUNCTIONS", "api, worker"), ("NOTIFICATION_TOPIC_ARN", "nope")]);
        let err = Config::from_env(Env::from_map(&map)).err().map(|e| e.problems[0].variable.clone());
        assert_eq!(err.as_deref(), Some("NOTIFICATION_TOPIC_ARN"));
    }

    #[test]
    fn allowed_functions_are_a_list() {
        let map = HashMap::from([("ALLOWED_FUNCTIONS", "api, worker")]);
        let c = Config::from_env(Env::from_map(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.allowed_functions, ["api", "worker"]);
    }
}
