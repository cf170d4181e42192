//! The alias-shifter's AWS calls: `lambda:GetFunctionConfiguration`, `lambda:GetAlias`,
//! `lambda:UpdateAlias` (always with the `RevisionId` read before), `lambda:PublishVersion`,
//! `cloudwatch:GetMetricData`, `cloudwatch:DescribeAlarms`.

use std::collections::HashMap;

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use chrono::{DateTime, Duration, DurationRound, Utc};
use shared::AwsError;
use shared::error::aws;

use crate::Deps;
use crate::health::Metrics;
use crate::input::Rollout;

/// The alias as `GetAlias` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub primary: String,
    pub weights: HashMap<String, f64>,
    pub revision_id: String,
}

pub fn not_found(e: &AwsError) -> bool {
    e.code_is("ResourceNotFoundException")
}

pub async fn get_alias(deps: &Deps, r: &Rollout) -> Result<Alias, AwsError> {
    let out = deps
        .lambda
        .get_alias()
        .function_name(&r.function_name)
        .name(&r.alias_name)
        .send()
        .await
        .map_err(aws("GetAlias"))?;
    Ok(Alias {
        primary: out.function_version().unwrap_or_default().to_owned(),
        weights: out
            .routing_config()
            .and_then(|c| c.additional_version_weights())
            .cloned()
            .unwrap_or_default(),
        revision_id: out.revision_id().unwrap_or_default().to_owned(),
    })
}

/// `UpdateAlias` with the revision read before, so a concurrent change fails instead of being overwritten.
pub async fn update_alias(
    deps: &Deps,
    r: &Rollout,
    primary: Option<&str>,
    weights: HashMap<String, f64>,
    revision_id: Option<&str>,
) -> Result<String, AwsError> {
    let out = deps
        .lambda
        .update_alias()
        .function_name(&r.function_name)
        .name(&r.alias_name)
        .set_function_version(primary.map(str::to_owned))
        .routing_config(
            AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build(),
        )
        .set_revision_id(revision_id.map(str::to_owned))
        .send()
        .await
        .map_err(aws("UpdateAlias"))?;
    Ok(out.revision_id().unwrap_or_default().to_owned())
}

/// The function's configuration, of `version` if given.
pub async fn function_configuration(
    deps: &Deps,
    r: &Rollout,
    version: Option<&str>,
) -> Result<GetFunctionConfigurationOutput, AwsError> {
    deps.lambda
        .get_function_configuration()
        .function_name(&r.function_name)
        .set_qualifier(version.map(str::to_owned))
        .send()
        .await
        .map_err(aws("GetFunctionConfiguration"))
}

/// Publishes `$LATEST`; the version number.
pub async fn publish_version(deps: &Deps, r: &Rollout) -> Result<String, AwsError> {
    let out = deps
        .lambda
        .publish_version()
        .function_name(&r.function_name)
        .description(format!("published by shipshape alias-shifter for {}", r.alias_name))
        .send()
        .await
        .map_err(aws("PublishVersion"))?;
    Ok(out.version().unwrap_or_default().to_owned())
}

/// `Invocations` and `Errors` of `ExecutedVersion = version` behind this alias (`FunctionName`, `Resource =
/// function:alias`, `ExecutedVersion`: the dimension set Lambda publishes for weighted aliases), and the
/// alias's `Throttles`, summed per minute from the minute `since` falls in until the minute after `now`.
pub async fn version_metrics(
    deps: &Deps,
    r: &Rollout,
    version: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Metrics, AwsError> {
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let mut dims = vec![dim("FunctionName", r.function_short_name()), dim("Resource", &r.resource())];
    let query = |id: &str, metric: &str, dims: Vec<Dimension>| {
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/Lambda")
                            .metric_name(metric)
                            .set_dimensions(Some(dims))
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .return_data(true)
            .build()
    };
    let throttles = query("throttles", "Throttles", dims.clone());
    dims.push(dim("ExecutedVersion", version));
    let queries =
        vec![query("invocations", "Invocations", dims.clone()), query("errors", "Errors", dims), throttles];
    let minute = Duration::minutes(1);
    let start = since.duration_trunc(minute).unwrap_or(since);
    let end = now.duration_trunc(minute).unwrap_or(now) + minute;
    let mut sums: HashMap<String, f64> = HashMap::new();
    let mut token = None;
    loop {
        let out = deps
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(SmithyTime::from_secs(start.timestamp()))
            .end_time(SmithyTime::from_secs(end.timestamp()))
            .set_next_token(token)
            .send()
            .await
            .map_err(aws("GetMetricData"))?;
        for result in out.metric_data_results() {
            *sums.entry(result.id().unwrap_or_default().to_owned()).or_default() +=
                result.values().iter().sum::<f64>();
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let get = |k: &str| sums.get(k).copied().unwrap_or(0.0);
    Ok(Metrics { invocations: get("invocations"), errors: get("errors"), throttles: get("throttles") })
}

/// The state of each named alarm, metric or composite.
pub async fn alarm_states(deps: &Deps, names: &[String]) -> Result<HashMap<String, StateValue>, AwsError> {
    let mut out = HashMap::new();
    for batch in names.chunks(100) {
        let resp = deps
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(batch.to_vec()))
            // Without AlarmTypes only metric alarms are returned.
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .max_records(100)
            .send()
            .await
            .map_err(aws("DescribeAlarms"))?;
        let metric = resp.metric_alarms().iter().map(|a| (a.alarm_name(), a.state_value()));
        let composite = resp.composite_alarms().iter().map(|a| (a.alarm_name(), a.state_value()));
        for (name, state) in metric.chain(composite) {
            if let (Some(name), Some(state)) = (name, state) {
                out.insert(name.to_owned(), state.clone());
            }
        }
    }
    Ok(out)
}
