//! One judgement against AWS: the alarms, one `GetMetricData` call over every window the look reads, and
//! the judge's verdict on them.

use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Utc};
use shared::AwsError;

use crate::Deps;
use crate::aws;
use crate::judge::health::{AlarmState, Verdict};
use crate::judge::series::{Role, Series, Source};
use crate::judge::window::Window;
use crate::judge::{self, Assessment, Look, window};
use crate::state::{State, StepDecision, StepReport};

/// What a judgement found, and its line in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub report: StepReport,
}

/// Judges a look of the state (its current step or bake check, or the wait for approval) at `now`.
pub async fn judge(deps: &Deps, state: &State, look: Look, now: DateTime<Utc>) -> Result<Judged, AwsError> {
    let r = &state.rollout;
    let alarms = if r.alarms.is_empty() {
        Vec::new()
    } else {
        let states = aws::alarm_states(deps, &r.alarms).await?;
        let state = |name: &String| match states.get(name) {
            None => AlarmState::Missing,
            Some(StateValue::Alarm) => AlarmState::Alarm,
            Some(StateValue::Ok) => AlarmState::Ok,
            Some(_) => AlarmState::InsufficientData,
        };
        r.alarms.iter().map(|name| (name.clone(), state(name))).collect()
    };
    let series = if r.health_check { Some(read(deps, state, &look, now).await?) } else { None };
    let a: Assessment =
        judge::assess(&look, &state.criteria(), series.as_ref(), &alarms, &state.original_version);
    let decision = match &a.verdict {
        Verdict::Healthy if !r.health_check && r.alarms.is_empty() => StepDecision::NotChecked,
        Verdict::Healthy => StepDecision::Healthy,
        Verdict::Unhealthy(_) => StepDecision::Unhealthy,
        Verdict::Inconclusive(_) => StepDecision::Inconclusive,
    };
    let verdict = a.verdict.clone();
    Ok(Judged { verdict, report: StepReport::judged(state, a, decision, now) })
}

/// The counts of every window the look reads, and with `max-duration-ratio` each window's percentiles.
async fn read(deps: &Deps, state: &State, look: &Look, now: DateTime<Utc>) -> Result<Series, AwsError> {
    let r = &state.rollout;
    let w = judge::windows(look);
    let span = w.span();
    let versions = (state.new_version.as_str(), state.original_version.as_str());
    let base = deps.config.metric_period;
    let mut series =
        aws::metric_data(deps, r, versions, &window::reads(span.from, span.to, now, base)).await?;
    if r.max_duration_ratio.is_some() {
        let coarsest =
            |at: &Window| window::reads(at.from, at.to, now, base).first().map_or(base, |x| x.period);
        let windows = match w.before {
            Some((before, source)) => {
                vec![((Role::Window, vec![Source::Alias]), w.current), ((Role::Before, vec![source]), before)]
            }
            None => vec![((Role::Window, vec![Source::New, Source::Old]), w.current)],
        };
        for ((role, sources), at) in windows {
            let which = (role, sources.as_slice());
            aws::percentiles(deps, r, versions, which, &at, coarsest(&at), &mut series).await?;
        }
    }
    Ok(series)
}
