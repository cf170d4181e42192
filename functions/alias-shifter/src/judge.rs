//! One judgement: the windows of the current step (or bake check), one `GetMetricData` call over all of
//! them, the alarms, and the verdict.

use aws_sdk_cloudwatch::types::StateValue;
use chrono::{DateTime, Duration, Utc};
use shared::AwsError;

use crate::Deps;
use crate::aws;
use crate::health::{self, Baseline, Criteria, Verdict};
use crate::series::Source;
use crate::state::{State, Status, StepDecision, StepReport};
use crate::window::{self, Window, seconds};

/// What a judgement found, and its line in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub report: StepReport,
}

/// The windows a judgement reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    /// The current step's traffic, or the bake's so far.
    pub current: Window,
    /// Every step's traffic so far, late data included (weights only).
    pub so_far: Option<Window>,
    /// What the new primary is compared with in the bake: the original version before the switch,
    /// during the weighted steps (`Source::Old`), or the alias before the shift when there were none
    /// (`Source::Alias`).
    pub before: Option<(Window, Source)>,
}

/// The windows of the state's current judgement (see [`crate::window`] for the rule).
pub fn windows(state: &State, period: u32) -> Windows {
    let t = state.timing(period);
    let r = &state.rollout;
    let held = seconds(r.interval.saturating_mul(u64::from(state.extensions) + 1));
    match (state.status, state.switched_at) {
        (Status::Baking, Some(switched)) => {
            // From the first whole period after the switch: the alias's metrics before it are the old
            // version's.
            let start = window::ceil(switched, &t);
            let (end, last) =
                window::bake_check_end(switched, r.interval, r.bake_seconds, state.bake_checks + 1);
            let end = if last {
                end + seconds(r.interval.saturating_mul(u64::from(state.extensions)))
            } else {
                end
            };
            let current = window::window(start, end.max(start), &t);
            let to = window::floor(state.started_at, &t);
            let span = seconds(r.bake_seconds).max(Duration::seconds(i64::from(t.period.max(1))));
            let from = window::floor(to - span, &t);
            let before = match state.weights_started_at {
                Some(first) => (window::window(first, switched, &t), Source::Old),
                None => (Window { from, to, judge_at: to }, Source::Alias),
            };
            Windows { current, so_far: None, before: Some(before) }
        }
        _ => {
            let end = state.step_started_at + held;
            let current = window::window(state.step_started_at, end, &t);
            let first = state.weights_started_at.unwrap_or(state.step_started_at);
            Windows { current, so_far: Some(window::window(first, end, &t)), before: None }
        }
    }
}

/// When the current judgement can be made: with a health check, once its window is complete; with alarms
/// only, at the end of the interval.
pub fn judge_at(state: &State, period: u32) -> DateTime<Utc> {
    let w = windows(state, period).current;
    if state.rollout.health_check { w.judge_at } else { w.to }
}

fn criteria(state: &State) -> Criteria {
    let r = &state.rollout;
    Criteria {
        max_error_rate: r.max_error_rate,
        min_invocations: r.min_invocations_floor(),
        error_rate_confidence: r.error_rate_confidence,
        max_duration_ratio: r.max_duration_ratio,
        max_throttle_rate: r.max_throttle_rate,
    }
}

/// Judges the current step or bake check at `now`.
pub async fn judge(deps: &Deps, state: &State, now: DateTime<Utc>) -> Result<Judged, AwsError> {
    let r = &state.rollout;
    let w = windows(state, deps.config.metric_period);
    let firing = if r.alarms.is_empty() {
        Vec::new()
    } else {
        let states = aws::alarm_states(deps, &r.alarms).await?;
        r.alarms.iter().filter(|a| states.get(*a) == Some(&StateValue::Alarm)).cloned().collect()
    };
    let baking = state.status == Status::Baking;
    let mut report = StepReport {
        step: if baking { state.switch_step() } else { state.step + 1 },
        weight: if baking { 1.0 } else { state.current_weight().unwrap_or(1.0) },
        started_at: if baking {
            state.switched_at.unwrap_or(state.step_started_at)
        } else {
            state.step_started_at
        },
        window: None,
        judged_at: Some(now),
        new: None,
        old: None,
        alarms_in_alarm: firing.clone(),
        decision: StepDecision::NotChecked,
        reason: None,
    };
    let alarms = health::alarms(&firing);
    let verdict = if !r.health_check {
        alarms.unwrap_or(Verdict::Healthy)
    } else {
        let before = w.before.map(|(b, _)| b);
        let span = [w.so_far, before].into_iter().flatten().fold(w.current, |a, b| a.union(&b));
        let versions = (state.new_version.as_str(), state.original_version.as_str());
        let series = aws::metric_data(deps, r, versions, span.from, span.to).await?;
        let c = criteria(state);
        report.window = Some(w.current);
        let verdict = match w.before {
            Some((before, source)) => {
                let (new, old) = (series.figures(Source::Alias, &w.current), series.figures(source, &before));
                (report.new, report.old) = (Some(new), Some(old));
                let label = match source {
                    Source::Alias => "the alias before the shift".to_owned(),
                    _ => format!("version {} before the switch", state.original_version),
                };
                health::judge(&new, Some(Baseline { label: &label, figures: &old }), &c)
            }
            None => {
                let label = format!("version {}", state.original_version);
                let (new, old) =
                    (series.figures(Source::New, &w.current), series.figures(Source::Old, &w.current));
                (report.new, report.old) = (Some(new), Some(old));
                let step = health::judge(&new, Some(Baseline { label: &label, figures: &old }), &c);
                let so_far = w.so_far.map_or(Verdict::Healthy, |all| {
                    let old = series.figures(Source::Old, &all);
                    health::judge(
                        &series.figures(Source::New, &all),
                        Some(Baseline { label: &label, figures: &old }),
                        &c,
                    )
                });
                health::combine(step, so_far)
            }
        };
        alarms.unwrap_or(verdict)
    };
    report.decision = match &verdict {
        Verdict::Healthy if !r.health_check && r.alarms.is_empty() => StepDecision::NotChecked,
        Verdict::Healthy => StepDecision::Healthy,
        Verdict::Unhealthy(_) => StepDecision::Unhealthy,
        Verdict::Inconclusive(_) => StepDecision::Inconclusive,
    };
    report.reason = match &verdict {
        Verdict::Healthy => None,
        Verdict::Unhealthy(why) | Verdict::Inconclusive(why) => Some(why.clone()),
    };
    Ok(Judged { verdict, report })
}
