//! What more than one shipshape function needs.
//!
//! - [`edge`]: the Lambda edge: the invocation's time [`edge::Budget`], a [`edge::Clock`] that paused-time
//!   tests control, stable `errorType`s ([`edge::ErrorType`]) and the [`edge::Internal`] error for our bugs;
//! - [`config`]: settings read once from the environment at cold start, every bad variable named;
//! - [`events`]: the one way inputs are parsed (every error names its field path), typed EventBridge
//!   `detail`s, checked instance ids;
//! - [`error`]: AWS SDK errors mapped at the call site, with the operation's name; the drainers' error;
//! - [`logging`]: `tracing` set up for Lambda (JSON when Lambda's log format is JSON);
//! - [`aws`]: one SDK configuration for every client (retries, timeouts);
//! - [`autoscaling`]: where Auto Scaling has an instance, in which lifecycle state, and since when;
//! - [`drain`]: the drain core both drainers and the scale-in-cleaner use: markers, drains and undos,
//!   every registration of an instance, the tasks left on it, lifecycle hooks;
//! - [`ecs`]: find an EC2 instance's container instance, set it DRAINING, count what still runs;
//! - [`notify`]: optional SNS messages meant for a person;
//! - [`metrics`]: CloudWatch metrics in the Embedded Metric Format, one stdout line per invocation.

pub mod autoscaling;
pub mod aws;
pub mod config;
pub mod drain;
pub mod ecs;
pub mod edge;
pub mod error;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pace;

pub use error::AwsError;
