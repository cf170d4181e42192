//! What more than one shipshape function needs.
//!
//! - [`config`]: settings read once from the environment at cold start, every bad variable named;
//! - [`events`]: typed `detail`s of the EventBridge events we consume;
//! - [`error`]: AWS SDK errors mapped at the call site, with the operation's name;
//! - [`logging`]: `tracing` set up for Lambda (JSON when Lambda's log format is JSON);
//! - [`aws`]: one SDK configuration for every client (retries, timeouts);
//! - [`ecs`]: find an EC2 instance's container instance, set it DRAINING, count what still runs;
//! - [`notify`]: optional SNS messages meant for a person;
//! - [`metrics`]: CloudWatch metrics in the Embedded Metric Format, one stdout line per invocation.

pub mod aws;
pub mod config;
pub mod ecs;
pub mod error;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod notify;

pub use error::AwsError;
