//! Logs through `tracing`: JSON objects with flat fields (`instance_id`, `cluster`, ...) when the function's
//! log format is JSON (`LoggingConfig.LogFormat: JSON` sets `AWS_LAMBDA_LOG_FORMAT`), plain text otherwise.
//! The level comes from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO.

use lambda_runtime::tracing::subscriber::{self, EnvFilter, filter::LevelFilter};

pub fn init() {
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    // Lambda stamps every line with its own time; ours would only be noise.
    let builder = subscriber::fmt().with_env_filter(filter).with_target(false).without_time();
    // `try_init`: a second call (tests, the demo) keeps the first subscriber instead of panicking.
    let _ = if format.eq_ignore_ascii_case("json") {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}
