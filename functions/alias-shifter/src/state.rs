//! The rollout's state and report: returned to the caller, and carried between the state machine's calls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::notify::Notification;

use crate::health::Metrics;
use crate::input::Rollout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A weight is set; the next call judges it after `wait-seconds`.
    Shifting,
    /// The new version is the alias's primary, with no additional weights.
    Succeeded,
    /// The alias is back on the original version with no additional weights; `reason` says why.
    RolledBack,
    /// Someone else changed the alias mid-way: nothing was done to it; `reason` says what was found.
    LeftAsFound,
    /// Validated and planned; nothing changed.
    DryRun,
}

/// What a step's check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum StepDecision {
    Healthy,
    Unhealthy,
    /// Too little traffic yet: held another interval.
    Wait,
    /// Too little traffic, out of extensions: passed on what was seen.
    PassedOnLowTraffic,
    /// Neither a health check nor alarms: nothing to judge.
    NotChecked,
    /// The final step: the new version became the primary.
    Switched,
}

/// One step of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StepReport {
    /// 1-based; the switch of the primary is the last step, with weight 1.
    pub step: usize,
    pub weight: f64,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms_in_alarm: Vec<String>,
    pub decision: StepDecision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    pub status: Status,
    pub function_name: String,
    pub alias_name: String,
    pub new_version: String,
    /// The alias's primary version when the rollout started; rollbacks return to it.
    pub original_version: String,
    /// The alias's revision after this rollout's last change: any other value means someone else changed
    /// it.
    pub revision_id: String,
    /// Index in `rollout.weights` of the weight being observed.
    pub step: usize,
    pub step_started_at: DateTime<Utc>,
    /// Extra intervals the current step waited for traffic.
    pub extensions: u32,
    /// How long the state machine waits before the next call.
    pub wait_seconds: u64,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps: Vec<StepReport>,
    pub rollout: Rollout,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

impl State {
    pub fn is_final(&self) -> bool {
        self.status != Status::Shifting
    }

    pub fn current_weight(&self) -> Option<f64> {
        self.rollout.weights.get(self.step).copied()
    }
}
