//! The alias-shifter's AWS calls: `lambda:GetFunctionConfiguration`, `lambda:GetAlias`,
//! `lambda:UpdateAlias` (always with the `RevisionId` read before), `lambda:PublishVersion`,
//! `lambda:InvokeFunction` (hooks), `cloudwatch:GetMetricData` ([`metric_data`]),
//! `cloudwatch:DescribeAlarms`. Each error is mapped with its operation's name.

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use serde_json::Value;
use shared::AwsError;
use shared::error::aws;

pub use self::metric_data::{metric_data, percentiles};
use crate::Deps;
use crate::rollout::Rollout;

mod metric_data;

/// The alias as `GetAlias` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub primary: String,
    pub weights: HashMap<String, f64>,
    pub revision_id: String,
    pub description: String,
}

/// What to change with `UpdateAlias`; `None` leaves that part as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change<'a> {
    pub primary: Option<&'a str>,
    pub weights: Option<HashMap<String, f64>>,
    pub description: Option<&'a str>,
}

pub fn not_found(e: &AwsError) -> bool {
    e.code_is("ResourceNotFoundException")
}

pub async fn get_alias(deps: &Deps, function: &str, alias: &str) -> Result<Alias, AwsError> {
    let out =
        deps.lambda.get_alias().function_name(function).name(alias).send().await.map_err(aws("GetAlias"))?;
    Ok(Alias {
        primary: out.function_version().unwrap_or_default().to_owned(),
        weights: out
            .routing_config()
            .and_then(|c| c.additional_version_weights())
            .cloned()
            .unwrap_or_default(),
        revision_id: out.revision_id().unwrap_or_default().to_owned(),
        description: out.description().unwrap_or_default().to_owned(),
    })
}

/// `UpdateAlias` with the revision read before, so a concurrent change fails instead of being overwritten.
pub async fn update_alias(
    deps: &Deps,
    function: &str,
    alias: &str,
    change: Change<'_>,
    revision_id: &str,
) -> Result<String, AwsError> {
    let routing = change
        .weights
        .map(|w| AliasRoutingConfiguration::builder().set_additional_version_weights(Some(w)).build());
    let out = deps
        .lambda
        .update_alias()
        .function_name(function)
        .name(alias)
        .set_function_version(change.primary.map(str::to_owned))
        .set_routing_config(routing)
        .set_description(change.description.map(str::to_owned))
        .revision_id(revision_id)
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

/// A validation hook's answer: passed, or failed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    Passed,
    Failed(String),
}

/// Invokes a hook synchronously with `payload`. It fails by raising an error (a function error, a timeout)
/// or by returning `{"passed": false, "reason": "..."}`.
pub async fn invoke_hook(deps: &Deps, function: &str, payload: &Value) -> Result<HookAnswer, AwsError> {
    let out = deps
        .hooks
        .invoke()
        .function_name(function)
        .payload(Blob::new(serde_json::to_vec(payload).unwrap_or_default()))
        .send()
        .await
        .map_err(aws("Invoke"))?;
    let body = out.payload().map(|b| String::from_utf8_lossy(b.as_ref()).into_owned()).unwrap_or_default();
    let cut = |s: &str| s.chars().take(500).collect::<String>();
    if let Some(kind) = out.function_error() {
        return Ok(HookAnswer::Failed(format!("{kind} error: {}", cut(&body))));
    }
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if answer.get("passed") == Some(&Value::Bool(false)) {
        let why = answer.get("reason").and_then(Value::as_str).unwrap_or("it returned passed: false");
        return Ok(HookAnswer::Failed(cut(why)));
    }
    Ok(HookAnswer::Passed)
}

/// Invokes `function` asynchronously with `payload` (Lambda queues it; `InvocationType: Event`).
pub async fn invoke_async(deps: &Deps, function: &str, payload: &Value) -> Result<(), AwsError> {
    deps.lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(Blob::new(serde_json::to_vec(payload).unwrap_or_default()))
        .send()
        .await
        .map_err(aws("Invoke"))?;
    Ok(())
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
