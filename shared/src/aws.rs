//! One SDK configuration for every client a function builds.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Standard retry mode (throttling and 5xx retried with jittered exponential backoff), with more attempts
/// than the SDK's default 3: a wave of Spot interruptions or an instance refresh makes many functions call
/// ECS at once, and a throttled drain is a failed drain. Five attempts back off for at most ~15 s in all,
/// well inside the 2-minute Spot warning.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(5)
}

/// A hung connection must not eat the 2-minute warning: each attempt gets 10 s, then it is retried.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .build()
}

/// The configuration Lambda gives us (region and credentials from the environment) with our retries and
/// timeouts. `AWS_ENDPOINT_URL` is honoured by the SDK itself, which is how the demo points a function at
/// the local emulator.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}
