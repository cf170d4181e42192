//! The rollout against AWS: validate, set weights, judge each step, switch or roll back.

use std::collections::HashMap;

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, State as FunctionState};
use chrono::{DateTime, Duration, DurationRound, Utc};
use shared::AwsError;
use shared::error::aws;
use shared::events::InvalidEvent;
use tracing::{info, warn};

use crate::health::{self, Metrics, Thresholds, Verdict};
use crate::input::Rollout;
use crate::state::{State, Status, StepReport};
use crate::{Deps, Error};

/// Extra intervals a step may wait for `min-invocations` before passing on what it saw.
pub const MAX_EXTENSIONS: u32 = 2;

/// How long a Pending new version is waited for: 30 reads, 2 s apart.
const PENDING_READS: u32 = 30;
const PENDING_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// The alias as `GetAlias` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Alias {
    primary: String,
    weights: HashMap<String, f64>,
    revision_id: String,
}

async fn get_alias(deps: &Deps, r: &Rollout) -> Result<Alias, AwsError> {
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
async fn update_alias(
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

fn not_found(e: &AwsError) -> bool {
    e.code_is("ResourceNotFoundException")
}

/// What Lambda requires to be equal between the two versions of a weighted alias: "the same execution
/// role" and "the same dead-letter queue configuration, or no dead-letter queue configuration"
/// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub role: String,
    pub dead_letter_queue: String,
}

impl Routing {
    fn of(c: &GetFunctionConfigurationOutput) -> Self {
        Routing {
            role: c.role().unwrap_or("?").to_owned(),
            dead_letter_queue: c
                .dead_letter_config()
                .and_then(|d| d.target_arn())
                .unwrap_or("none")
                .to_owned(),
        }
    }
}

/// Whether the new version and the primary can share an alias's traffic; the error says what differs.
pub fn routable_together(new_version: &str, new: &Routing, primary: &Routing) -> Result<(), String> {
    if new.role != primary.role {
        return Err(format!(
            "version {new_version} runs as {}, the primary as {}: Lambda routes an alias only between versions with the same execution role",
            new.role, primary.role
        ));
    }
    if new.dead_letter_queue != primary.dead_letter_queue {
        return Err(format!(
            "version {new_version} has dead-letter queue {}, the primary {}: Lambda routes an alias only between versions with the same dead-letter configuration",
            new.dead_letter_queue, primary.dead_letter_queue
        ));
    }
    Ok(())
}

/// Everything that must hold before the first change. Publishes `$LATEST` first when asked (not in a dry
/// run); returns the state to start from.
async fn validate(deps: &Deps, r: &Rollout, now: DateTime<Utc>) -> Result<State, Error> {
    let invalid = |field: &str, reason: String| Error::InvalidInput(InvalidEvent::new(field, reason));
    if !deps.config.allowed_functions.is_empty()
        && !deps
            .config
            .allowed_functions
            .iter()
            .any(|f| f == r.function_short_name() || *f == r.function_name)
    {
        return Err(invalid(
            "function-name",
            format!(
                "{} is not among the functions this shifter may shift (ALLOWED_FUNCTIONS)",
                r.function_name
            ),
        ));
    }
    match deps.lambda.get_function_configuration().function_name(&r.function_name).send().await {
        Ok(_) => {}
        Err(e) => {
            let e = AwsError::from_sdk("GetFunctionConfiguration", e);
            return Err(if not_found(&e) {
                invalid("function-name", format!("no function {}", r.function_name))
            } else {
                e.into()
            });
        }
    }
    let alias = match get_alias(deps, r).await {
        Ok(a) => a,
        Err(e) if not_found(&e) => {
            return Err(invalid(
                "alias-name",
                format!("function {} has no alias {}", r.function_name, r.alias_name),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !alias.weights.is_empty() {
        return Err(invalid(
            "alias-name",
            format!(
                "a shift is already in progress on {} (additional version weights {:?}); finish or roll it back first",
                r.resource(),
                alias.weights
            ),
        ));
    }
    let new_version = match (&r.new_version, r.publish && !r.dry_run) {
        (Some(v), _) => v.clone(),
        (None, true) => {
            let out = deps
                .lambda
                .publish_version()
                .function_name(&r.function_name)
                .description(format!("published by shipshape alias-shifter for {}", r.alias_name))
                .send()
                .await
                .map_err(aws("PublishVersion"))?;
            out.version().unwrap_or_default().to_owned()
        }
        (None, false) => "$LATEST (to be published)".to_owned(),
    };
    if new_version == alias.primary {
        return Err(invalid(
            if r.publish { "publish" } else { "new-version" },
            format!("version {new_version} is already the primary of {}", r.resource()),
        ));
    }
    if !r.publish || !r.dry_run {
        let config = |version: String| async move {
            deps.lambda
                .get_function_configuration()
                .function_name(&r.function_name)
                .qualifier(version)
                .send()
                .await
                .map_err(aws("GetFunctionConfiguration"))
        };
        // A version just published can be Pending for a while (its function's VPC or SnapStart set-up):
        // wait for it rather than refuse it.
        let mut pending_reads = 0;
        let new = loop {
            let c = match config(new_version.clone()).await {
                Ok(c) => c,
                Err(e) if not_found(&e) => {
                    return Err(invalid(
                        "new-version",
                        format!("function {} has no version {new_version}", r.function_name),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            if c.state() != Some(&FunctionState::Pending) || pending_reads >= PENDING_READS {
                break c;
            }
            pending_reads += 1;
            tokio::time::sleep(PENDING_POLL).await;
        };
        if let Some(state) = new.state().filter(|s| **s != FunctionState::Active) {
            let why = new.state_reason().map(|r| format!(" ({r})")).unwrap_or_default();
            return Err(invalid(
                "new-version",
                format!("version {new_version} is {}, not Active{why}", state.as_str()),
            ));
        }
        let old = config(alias.primary.clone()).await?;
        routable_together(&new_version, &Routing::of(&new), &Routing::of(&old))
            .map_err(|why| invalid("new-version", why))?;
    }
    if !r.alarms.is_empty() {
        let found = alarm_states(deps, &r.alarms).await?;
        let missing: Vec<&String> = r.alarms.iter().filter(|a| !found.contains_key(*a)).collect();
        if !missing.is_empty() {
            return Err(invalid("alarms", format!("no CloudWatch alarm named {missing:?}")));
        }
    }
    Ok(State {
        status: Status::Shifting,
        function_name: r.function_name.clone(),
        alias_name: r.alias_name.clone(),
        new_version,
        original_version: alias.primary,
        revision_id: alias.revision_id,
        step: 0,
        step_started_at: now,
        extensions: 0,
        wait_seconds: 0,
        started_at: now,
        finished_at: None,
        reason: None,
        steps: Vec::new(),
        rollout: r.clone(),
        notification: None,
    })
}

/// Validates and sets the first weight (or switches at once, for `all-at-once`).
pub async fn start(deps: &Deps, r: &Rollout) -> Result<State, Error> {
    let now = Utc::now();
    let mut state = validate(deps, r, now).await?;
    if r.dry_run {
        state.status = Status::DryRun;
        state.finished_at = Some(now);
        state.reason = Some(format!(
            "would route {:?} of {} to version {} ({} s per step), then make it the primary",
            r.weights,
            r.resource(),
            state.new_version,
            r.step_seconds()
        ));
        return Ok(state);
    }
    info!(function = %r.function_name, alias = %r.alias_name, from = %state.original_version, to = %state.new_version, weights = ?r.weights, "shift starting");
    match advance(deps, &mut state).await {
        Ok(()) => Ok(state),
        Err(e) => rollback(deps, state, format!("{e}")).await,
    }
}

/// Sets the weight at `state.step`, or switches the primary when the weights are done.
async fn advance(deps: &Deps, state: &mut State) -> Result<(), AwsError> {
    let r = state.rollout.clone();
    let now = Utc::now();
    match state.current_weight() {
        Some(w) => {
            state.revision_id = update_alias(
                deps,
                &r,
                None,
                HashMap::from([(state.new_version.clone(), w)]),
                Some(&state.revision_id),
            )
            .await?;
            info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, weight = w, "weight set");
            state.step_started_at = now;
            state.extensions = 0;
            state.wait_seconds = r.step_seconds();
        }
        None => {
            state.revision_id =
                update_alias(deps, &r, Some(&state.new_version), HashMap::new(), Some(&state.revision_id))
                    .await?;
            info!(function = %r.function_name, alias = %r.alias_name, version = %state.new_version, "primary switched");
            state.steps.push(StepReport {
                step: state.steps.iter().filter(|s| s.decision != "wait").count() + 1,
                weight: 1.0,
                started_at: now,
                checked_at: None,
                metrics: None,
                error_rate: None,
                alarms_in_alarm: Vec::new(),
                decision: "switched".into(),
                reason: None,
            });
            state.status = Status::Succeeded;
            state.finished_at = Some(now);
            state.wait_seconds = 0;
        }
    }
    Ok(())
}

/// Judges the current step and moves on: the next weight, the switch, another interval, or a rollback.
pub async fn step(deps: &Deps, mut state: State) -> Result<State, Error> {
    if state.is_final() {
        return Ok(state);
    }
    let r = state.rollout.clone();
    let alias = match get_alias(deps, &r).await {
        Ok(a) => a,
        Err(e) => return rollback(deps, state, e.to_string()).await,
    };
    if alias.revision_id != state.revision_id {
        let why = format!(
            "{} changed since this shift set it (revision {} expected, {} found): primary {}, weights {:?}",
            r.resource(),
            state.revision_id,
            alias.revision_id,
            alias.primary,
            alias.weights
        );
        return rollback(deps, state, why).await;
    }
    let checked_at = Utc::now();
    let (metrics, alarms) = match observe(deps, &state, checked_at).await {
        Ok(seen) => seen,
        Err(e) => return rollback(deps, state, e.to_string()).await,
    };
    let thresholds = Thresholds {
        max_error_rate: r.max_error_rate,
        min_invocations: if r.health_check { r.min_invocations } else { 0.0 },
        max_extensions: MAX_EXTENSIONS,
    };
    // Without a health check `observe` read no metrics: only the alarms can fail the step.
    let verdict = health::judge(&metrics, &alarms, &thresholds, state.extensions);
    let (decision, reason) = match &verdict {
        Verdict::Healthy if !r.health_check && r.alarms.is_empty() => ("not-checked", None),
        Verdict::Healthy => ("healthy", None),
        Verdict::Unhealthy(why) => ("unhealthy", Some(why.clone())),
        Verdict::Wait(why) => ("wait", Some(why.clone())),
        Verdict::PassedOnLowTraffic(why) => ("passed-on-low-traffic", Some(why.clone())),
    };
    info!(function = %r.function_name, alias = %r.alias_name, weight = ?state.current_weight(), ?verdict, invocations = metrics.invocations, errors = metrics.errors, "step judged");
    state.steps.push(StepReport {
        step: state.step + 1,
        weight: state.current_weight().unwrap_or(1.0),
        started_at: state.step_started_at,
        checked_at: Some(checked_at),
        error_rate: metrics.error_rate(),
        metrics: r.health_check.then_some(metrics),
        alarms_in_alarm: alarms,
        decision: decision.into(),
        reason,
    });
    match verdict {
        Verdict::Unhealthy(why) => rollback(deps, state, why).await,
        Verdict::Wait(_) => {
            state.extensions += 1;
            state.wait_seconds = r.interval.max(1);
            Ok(state)
        }
        Verdict::Healthy | Verdict::PassedOnLowTraffic(_) => {
            state.step += 1;
            match advance(deps, &mut state).await {
                Ok(()) => Ok(state),
                Err(e) => rollback(deps, state, e.to_string()).await,
            }
        }
    }
}

/// The new version's metrics behind the alias since the step started, and the alarms in ALARM.
async fn observe(deps: &Deps, state: &State, now: DateTime<Utc>) -> Result<(Metrics, Vec<String>), AwsError> {
    let r = &state.rollout;
    let metrics = if r.health_check { metrics(deps, state, now).await? } else { Metrics::default() };
    let alarms = if r.alarms.is_empty() {
        Vec::new()
    } else {
        let states = alarm_states(deps, &r.alarms).await?;
        r.alarms.iter().filter(|a| states.get(*a) == Some(&StateValue::Alarm)).cloned().collect()
    };
    Ok((metrics, alarms))
}

/// `Invocations` and `Errors` of `ExecutedVersion = new` behind this alias (`FunctionName`, `Resource =
/// function:alias`, `ExecutedVersion`: the dimension set Lambda publishes for weighted aliases), and the
/// alias's `Throttles`, summed per minute from the minute the step started.
async fn metrics(deps: &Deps, state: &State, now: DateTime<Utc>) -> Result<Metrics, AwsError> {
    let r = &state.rollout;
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
    dims.push(dim("ExecutedVersion", &state.new_version));
    let queries =
        vec![query("invocations", "Invocations", dims.clone()), query("errors", "Errors", dims), throttles];
    let minute = Duration::minutes(1);
    let start = state.step_started_at.duration_trunc(minute).unwrap_or(state.step_started_at);
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

async fn alarm_states(deps: &Deps, names: &[String]) -> Result<HashMap<String, StateValue>, AwsError> {
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

/// Puts the alias back on the original version with no additional weights, if it still routes to the new
/// version as this rollout left it; a change someone else made is left alone and reported.
pub async fn rollback(deps: &Deps, mut state: State, reason: String) -> Result<State, Error> {
    let r = state.rollout.clone();
    warn!(function = %r.function_name, alias = %r.alias_name, reason = %reason, "rolling back");
    let now = Utc::now();
    state.finished_at = Some(now);
    state.wait_seconds = 0;
    let alias =
        get_alias(deps, &r).await.map_err(|e| Error::RollbackFailed { reason: reason.clone(), error: e })?;
    let ours =
        alias.primary == state.original_version && alias.weights.keys().all(|v| *v == state.new_version);
    let switched_by_us = alias.primary == state.new_version
        && alias.weights.is_empty()
        && alias.revision_id == state.revision_id;
    if !(ours || switched_by_us) {
        state.status = Status::LeftAsFound;
        state.reason = Some(format!(
            "{reason}; {} now has primary {} and weights {:?}, which this rollout did not set: left as found",
            r.resource(),
            alias.primary,
            alias.weights
        ));
        return Ok(state);
    }
    if alias.primary != state.original_version || !alias.weights.is_empty() {
        state.revision_id =
            update_alias(deps, &r, Some(&state.original_version), HashMap::new(), Some(&alias.revision_id))
                .await
                .map_err(|e| Error::RollbackFailed { reason: reason.clone(), error: e })?;
    }
    state.status = Status::RolledBack;
    state.reason = Some(reason);
    info!(function = %r.function_name, alias = %r.alias_name, version = %state.original_version, "rolled back");
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(role: &str, dlq: &str) -> Routing {
        Routing { role: role.into(), dead_letter_queue: dlq.into() }
    }

    #[test]
    fn versions_share_an_alias_only_with_the_same_role_and_dead_letter_queue() {
        let base = routing("arn:aws:iam::1:role/a", "none");
        assert_eq!(routable_together("2", &base, &base.clone()), Ok(()));
        let role = routable_together("2", &routing("arn:aws:iam::1:role/b", "none"), &base).unwrap_err();
        assert!(role.contains("same execution role"), "{role}");
        let dlq =
            routable_together("2", &routing("arn:aws:iam::1:role/a", "arn:aws:sqs:us-east-1:1:q"), &base);
        assert!(dlq.unwrap_err().contains("dead-letter queue arn:aws:sqs:us-east-1:1:q, the primary none"));
    }
}
