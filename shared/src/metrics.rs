//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per invocation, which
//! CloudWatch Logs turns into metrics. No API call and no IAM permission beyond writing logs
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
//!
//! Every metric is in the [`NAMESPACE`] namespace with one dimension, `FunctionName` (the deployed
//! function's name, as Lambda's own `AWS/Lambda` metrics use it), so the stack's dashboard can show each
//! function's figures next to its errors and durations.

use std::io::Write;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "shipshape";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// An invocation's summary that knows which metrics it stands for.
pub trait Record {
    fn record(&self, m: &mut Metrics);
}

/// Writes the metrics `outcome` records for the running function (`fallback`: its name in a local run).
pub fn emit(fallback: &str, outcome: &impl Record) {
    let mut m = Metrics::for_function(fallback);
    outcome.record(&mut m);
    m.emit();
}

/// The metrics of one invocation, written with [`Metrics::emit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    function_name: String,
    values: Vec<(&'static str, f64, Unit)>,
}

impl Metrics {
    /// For the running function: `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else `fallback` (a local run).
    pub fn for_function(fallback: &str) -> Self {
        // Lambda sets it once for the sandbox's life: read at the first invocation, not at every one.
        static FROM_LAMBDA: OnceLock<Option<String>> = OnceLock::new();
        let name = FROM_LAMBDA.get_or_init(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok());
        Self::new(name.as_deref().unwrap_or(fallback))
    }

    pub fn new(function_name: &str) -> Self {
        Metrics { function_name: function_name.to_owned(), values: Vec::new() }
    }

    /// Adds a value; a zero count is kept, so that "nothing happened" is a data point and not a gap.
    pub fn add(&mut self, name: &'static str, value: f64, unit: Unit) -> &mut Self {
        self.values.push((name, value, unit));
        self
    }

    pub fn count(&mut self, name: &'static str, value: usize) -> &mut Self {
        self.add(name, value as f64, Unit::Count)
    }

    /// The value recorded under `name`, if any.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| *v)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The EMF document, or `None` when there is nothing to record.
    pub fn render(&self, timestamp_ms: i64) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        // One definition per name; several values of a name (one per drain that ended) are an array, as the
        // format allows ("Target members ... MUST be numerics or arrays of numerics").
        let mut names: Vec<(&'static str, Unit, Vec<f64>)> = Vec::new();
        for (name, value, unit) in &self.values {
            match names.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, _, values)) => values.push(*value),
                None => names.push((name, *unit, vec![*value])),
            }
        }
        let definitions: Vec<Value> =
            names.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": definitions,
                }],
            }),
        );
        doc.insert("FunctionName".into(), json!(self.function_name));
        for (name, _, values) in &names {
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            doc.insert((*name).to_owned(), value);
        }
        Some(Value::Object(doc))
    }

    /// Writes the document as one line on stdout, where Lambda sends it to CloudWatch Logs. A failed
    /// write is logged: metrics never fail the work they describe.
    pub fn emit(&self) {
        let Some(doc) = self.render(chrono::Utc::now().timestamp_millis()) else { return };
        let mut line = doc.to_string();
        line.push('\n');
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write the metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_embedded_metric_format() {
        let mut m = Metrics::new("stack-SpotDrainer-1A2B");
        m.count("DrainsStarted", 1).count("InstancesNotFound", 0).add("DrainDuration", 42.5, Unit::Seconds);
        let doc = m.render(1_700_000_000_000).unwrap_or_default();
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "shipshape",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "DrainsStarted", "Unit": "Count"},
                            {"Name": "InstancesNotFound", "Unit": "Count"},
                            {"Name": "DrainDuration", "Unit": "Seconds"},
                        ],
                    }],
                },
                "FunctionName": "stack-SpotDrainer-1A2B",
                "DrainsStarted": 1.0,
                "InstancesNotFound": 0.0,
                "DrainDuration": 42.5,
            })
        );
        // One line: CloudWatch Logs reads one log event per line.
        assert!(!doc.to_string().contains('\n'));
    }

    #[test]
    fn several_values_of_a_name_are_one_array() {
        let mut m = Metrics::new("f");
        m.add("DrainDuration", 1.0, Unit::Seconds).count("DrainsCompleted", 2).add(
            "DrainDuration",
            3.0,
            Unit::Seconds,
        );
        let doc = m.render(0).unwrap_or_default();
        assert_eq!(doc["DrainDuration"], json!([1.0, 3.0]));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn nothing_to_record_writes_nothing() {
        assert_eq!(Metrics::new("f").render(0), None);
    }
}
