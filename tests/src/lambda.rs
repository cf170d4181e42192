//! Lambda and CloudWatch fixtures: functions with versions and an alias, per-version metrics, alarms.

use serde_json::json;

use crate::World;

/// An empty zip archive (just its end-of-central-directory record): enough code for a function that is
/// never run.
const EMPTY_ZIP: [u8; 22] = [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

impl World {
    /// Function `name` with published versions 1..=`versions` and alias `live` on version 1.
    pub async fn function(&self, name: &str, versions: usize) {
        self.function_with_timeout(name, versions, 3).await;
    }

    /// [`World::function`] whose versions have a `Timeout` of `timeout` seconds.
    pub async fn function_with_timeout(&self, name: &str, versions: usize, timeout: i32) {
        use aws_sdk_lambda::primitives::Blob;
        use aws_sdk_lambda::types::{FunctionCode, Runtime};
        let role = self.emulator.control("POST", "/iam/role", Some(json!({"name": format!("{name}-role")})));
        self.lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role["arn"].as_str().unwrap_or_default())
            .code(FunctionCode::builder().zip_file(Blob::new(EMPTY_ZIP.to_vec())).build())
            .timeout(timeout)
            .send()
            .await
            .expect("CreateFunction");
        for _ in 0..versions {
            self.new_code(name).await;
            self.lambda.publish_version().function_name(name).send().await.expect("PublishVersion");
        }
        self.lambda
            .create_alias()
            .function_name(name)
            .name("live")
            .function_version("1")
            .send()
            .await
            .expect("CreateAlias");
    }

    /// Uploads code to `$LATEST`, so that the next PublishVersion has something new to publish.
    pub async fn new_code(&self, name: &str) {
        self.lambda
            .update_function_code()
            .function_name(name)
            .zip_file(aws_sdk_lambda::primitives::Blob::new(EMPTY_ZIP.to_vec()))
            .send()
            .await
            .expect("UpdateFunctionCode");
    }

    /// The alias's (primary version, additional version weights).
    pub async fn alias(
        &self,
        function: &str,
        alias: &str,
    ) -> (String, std::collections::HashMap<String, f64>) {
        let out = self.lambda.get_alias().function_name(function).name(alias).send().await.expect("GetAlias");
        (
            out.function_version().unwrap_or_default().to_owned(),
            out.routing_config().and_then(|c| c.additional_version_weights()).cloned().unwrap_or_default(),
        )
    }

    /// Lambda's per-version metrics behind an alias, as Lambda publishes them, timestamped now.
    pub async fn lambda_metrics(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        invocations: f64,
        errors: f64,
    ) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let dims = vec![
            Dimension::builder().name("FunctionName").value(function).build(),
            Dimension::builder().name("Resource").value(format!("{function}:{alias}")).build(),
            Dimension::builder().name("ExecutedVersion").value(version).build(),
        ];
        let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
        let datum = |name: &str, value: f64| {
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dims.clone()))
                .value(value)
                .timestamp(now)
                .build()
        };
        self.cloudwatch
            .put_metric_data()
            .namespace("AWS/Lambda")
            .metric_data(datum("Invocations", invocations))
            .metric_data(datum("Errors", errors))
            .send()
            .await
            .expect("PutMetricData");
    }

    /// The next `UpdateAlias` of `function:alias` (with a `RevisionId`) finds `append` added to the alias's
    /// description just before it: someone else's write between the caller's read and its update.
    pub fn alias_race(&self, function: &str, alias: &str, append: &str) {
        self.emulator.control(
            "POST",
            "/lambda/alias-race",
            Some(json!({"function": function, "alias": alias, "append": append})),
        );
    }

    /// Data points of `AWS/Lambda` metrics with these dimensions, stamped `at_ms` (milliseconds since the
    /// epoch; in the past, too).
    pub async fn metric_at(&self, dimensions: &[(&str, &str)], at_ms: i64, values: &[(&str, f64)]) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let dims: Vec<Dimension> =
            dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build()).collect();
        let when = aws_sdk_cloudwatch::primitives::DateTime::from_millis(at_ms);
        let mut put = self.cloudwatch.put_metric_data().namespace("AWS/Lambda");
        for (name, value) in values {
            put = put.metric_data(
                MetricDatum::builder()
                    .metric_name(*name)
                    .set_dimensions(Some(dims.clone()))
                    .value(*value)
                    .timestamp(when)
                    .build(),
            );
        }
        put.send().await.expect("PutMetricData");
    }

    /// A CloudWatch alarm `name` in state `state` (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub async fn alarm(&self, name: &str, state: &str) {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/Lambda")
            .metric_name("Errors")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("PutMetricAlarm");
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(StateValue::from(state))
            .state_reason("set by the test")
            .send()
            .await
            .expect("SetAlarmState");
    }
}
