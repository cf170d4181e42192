//! What a run tells people: the summary it returns, its totals, the SNS message of a run that changed
//! something, and its metrics.

use serde::Serialize;
use shared::metrics::{Metrics, Record};
use shared::notify::{Message, Notification};

use crate::plan::{Capacity, Decision, Entry, Progress};

/// One cluster's part of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterOutcome {
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Capacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Capacity>,
    pub instances: Vec<Entry>,
    /// Why the cluster was not (fully) handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ClusterOutcome {
    pub fn entry(&self, ec2_instance_id: &str) -> Option<&Entry> {
        self.instances.iter().find(|e| e.ec2_instance_id == ec2_instance_id)
    }
}

/// Instances per decision carried out (planned, in a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    pub terminated: usize,
    pub drained: usize,
    pub reaped: usize,
    pub reactivated: usize,
    pub waiting: usize,
}

/// The summary returned to the caller and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub dry_run: bool,
    pub totals: Totals,
    pub clusters: Vec<ClusterOutcome>,
    /// Configured clusters that do not exist.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_clusters: Vec<String>,
    /// Lambda's deadline came near: the clusters or changes left were not started.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
    pub notification: Notification,
}

impl Outcome {
    pub fn cluster(&self, name: &str) -> Option<&ClusterOutcome> {
        self.clusters.iter().find(|c| c.cluster == name)
    }
}

impl Record for Outcome {
    /// `ScaleInRemovals` (terminated, reaped included), `ScaleInDrains` and `ScaleInReactivations` (EMF);
    /// a dry run records nothing.
    fn record(&self, m: &mut Metrics) {
        if self.dry_run {
            return;
        }
        m.count("ScaleInRemovals", self.totals.terminated + self.totals.reaped);
        m.count("ScaleInDrains", self.totals.drained);
        m.count("ScaleInReactivations", self.totals.reactivated);
    }
}

/// Adds what was carried out (what is planned, in a dry run) to the totals.
pub fn add_totals(totals: &mut Totals, entries: &[Entry], dry_run: bool) {
    for e in entries {
        let counted = if dry_run { Some(e.decision) } else { e.applied() };
        match counted {
            Some(Decision::Terminate) => totals.terminated += 1,
            Some(Decision::Drain) => totals.drained += 1,
            Some(Decision::Reap) => totals.reaped += 1,
            Some(Decision::Reactivate) => totals.reactivated += 1,
            Some(Decision::Wait) => totals.waiting += 1,
            Some(Decision::Keep | Decision::Skip) | None => {}
        }
    }
}

/// One message per run that changed something; `None` for a dry run or a run that changed nothing.
pub fn changes(outcome: &Outcome) -> Option<Message> {
    let t = outcome.totals;
    if outcome.dry_run || t.terminated + t.drained + t.reaped + t.reactivated == 0 {
        return None;
    }
    let mut lines = Vec::new();
    for c in &outcome.clusters {
        for e in &c.instances {
            let verb = match e.applied() {
                Some(Decision::Terminate) => "terminated (was empty)",
                Some(Decision::Drain) => "set DRAINING",
                Some(Decision::Reap) => "terminated (drained earlier)",
                Some(Decision::Reactivate) => "set back to ACTIVE",
                _ => continue,
            };
            let deferred = match e.progress {
                Progress::Deferred { tasks } => {
                    format!(" {tasks} task(s) arrived before it could be terminated; reaped on a later run.")
                }
                _ => String::new(),
            };
            lines.push(format!(
                "{} {} ({}) in {}: {verb}. {}{deferred}",
                c.cluster,
                e.ec2_instance_id,
                e.availability_zone.as_deref().unwrap_or("?"),
                e.group.as_deref().unwrap_or("no group"),
                e.detail
            ));
        }
    }
    let subject = format!(
        "shipshape scale-in: {} terminated, {} drained, {} reactivated",
        t.terminated + t.reaped,
        t.drained,
        t.reactivated
    );
    Some(Message { subject, body: lines.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(dry_run: bool) -> Outcome {
        Outcome {
            dry_run,
            totals: Totals { terminated: 1, drained: 2, reaped: 3, reactivated: 1, waiting: 4 },
            clusters: Vec::new(),
            missing_clusters: Vec::new(),
            stopped_early: false,
            notification: Notification::Off,
        }
    }

    #[test]
    fn metrics_count_removals_drains_and_reactivations() {
        let mut m = Metrics::new("f");
        outcome(false).record(&mut m);
        assert_eq!(m.get("ScaleInRemovals"), Some(4.0));
        assert_eq!(m.get("ScaleInDrains"), Some(2.0));
        assert_eq!(m.get("ScaleInReactivations"), Some(1.0));
    }

    #[test]
    fn a_dry_run_records_no_metrics_and_sends_nothing() {
        let mut m = Metrics::new("f");
        outcome(true).record(&mut m);
        assert!(m.is_empty());
        assert!(changes(&outcome(true)).is_none());
    }
}
