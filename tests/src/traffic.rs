//! Traffic through an alias as Lambda serves and reports it, and functions that answer `Invoke` as told:
//! the emulator's `lambda_traffic` extension, seen from the tests.

use serde_json::{Value, json};

use crate::emulator::Emulator;

/// How one version behaves under traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Share of invocations that fail.
    pub error_rate: f64,
    /// Typical duration (each varies by ±20 %); one that reaches the version's timeout is a timeout.
    pub duration_ms: f64,
    /// Share of invocations that run until the version's timeout and fail.
    pub hang_rate: f64,
    /// Share of requests throttled.
    pub throttle_rate: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour { error_rate: 0.0, duration_ms: 100.0, hang_rate: 0.0, throttle_rate: 0.0 }
    }
}

impl Behaviour {
    pub fn errors(error_rate: f64) -> Self {
        Behaviour { error_rate, ..Self::default() }
    }

    pub fn taking(duration_ms: f64) -> Self {
        Behaviour { duration_ms, ..Self::default() }
    }

    pub fn hanging(hang_rate: f64) -> Self {
        Behaviour { hang_rate, ..Self::default() }
    }

    fn json(&self) -> Value {
        json!({"error_rate": self.error_rate, "duration_ms": self.duration_ms, "hang_rate": self.hang_rate,
               "throttle_rate": self.throttle_rate})
    }
}

/// A traffic generator's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic<'a> {
    /// Invocations per second.
    pub rate: f64,
    /// CloudWatch's ingestion lag after an invocation ends.
    pub lag_ms: u64,
    pub versions: &'a [(&'a str, Behaviour)],
}

impl Emulator {
    /// Starts (or changes) traffic through `function:alias`: invocations split by the alias's live
    /// weights, metrics stamped with each invocation's start and visible after it ends plus the lag.
    pub fn traffic(&self, function: &str, alias: &str, t: &Traffic<'_>) {
        let versions: serde_json::Map<String, Value> =
            t.versions.iter().map(|(v, b)| ((*v).to_owned(), b.json())).collect();
        self.control(
            "POST",
            "/lambda/traffic",
            Some(json!({"function": function, "alias": alias, "rate": t.rate, "lag_ms": t.lag_ms, "versions": versions, "seed": 7})),
        );
    }

    /// Stops new invocations; those in flight still land.
    pub fn stop_traffic(&self, function: &str, alias: &str) {
        self.control(
            "POST",
            "/lambda/traffic",
            Some(json!({"function": function, "alias": alias, "rate": 0})),
        );
    }

    /// Per version: invocations, errors and throttles generated so far.
    pub fn traffic_counts(&self, function: &str, alias: &str) -> Value {
        self.control("GET", "/lambda/traffic", None)[format!("{function}:{alias}")]["counts"].clone()
    }

    /// `Invoke` of `function` fails with a function error.
    pub fn answer_with_error(&self, function: &str, error: &str, message: &str) {
        self.control(
            "POST",
            "/lambda/invoke",
            Some(json!({"function": function, "error": error, "message": message})),
        );
    }

    /// `Invoke` of `function` returns `result`.
    pub fn answer_with(&self, function: &str, result: Value) {
        self.control("POST", "/lambda/invoke", Some(json!({"function": function, "result": result})));
    }

    /// The invocations of functions told how to answer: `{"function", "qualifier", "payload"}` each.
    pub fn invocations(&self) -> Vec<Value> {
        self.control("GET", "/lambda/invoke", None)["invocations"].as_array().cloned().unwrap_or_default()
    }

    /// GetMetricData answers the queries with these ids with this status (`InternalError`, `Forbidden`)
    /// and no data point; none: every query answered as usual.
    pub fn metric_status(&self, failed: &[(&str, &str)]) {
        let status: serde_json::Map<String, Value> =
            failed.iter().map(|(id, code)| ((*id).to_owned(), json!(code))).collect();
        self.control("POST", "/cloudwatch", Some(json!({"status": status})));
    }

    /// GetMetricData answers at most `n` data points per page.
    pub fn metric_page_size(&self, n: u64) {
        self.control("POST", "/cloudwatch", Some(json!({"page_datapoints": n})));
    }
}
