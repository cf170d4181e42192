//! What a rollout tells people: the final report by SNS, and the metrics an invocation records.

use shared::metrics::{Metrics, Record};
use shared::notify::Message;

use crate::state::{State, Status};

/// The state an invocation ended with, and what it was handed (state machine steps), so that a finished
/// shift passed again is counted once.
#[derive(Debug)]
pub struct Invocation<'a> {
    pub state: &'a State,
    /// The status and number of steps of the state the call was handed, if any.
    pub before: Option<(Status, usize)>,
}

impl Record for Invocation<'_> {
    /// `ShiftSteps` (steps judged or switched in this invocation), `ShiftsSucceeded` and `Rollbacks` (EMF),
    /// counted once: when this invocation made the change, not when a finished state is passed again.
    fn record(&self, m: &mut Metrics) {
        let state = self.state;
        if state.status == Status::DryRun || self.before.is_some_and(|(status, _)| status != Status::Shifting)
        {
            return;
        }
        let steps_before = self.before.map_or(0, |(_, n)| n);
        m.count("ShiftSteps", state.steps.len().saturating_sub(steps_before));
        m.count("ShiftsSucceeded", usize::from(state.status == Status::Succeeded));
        m.count("Rollbacks", usize::from(state.status == Status::RolledBack));
    }
}

/// The report of a rollout that ended (not between state machine steps, not a dry run).
pub fn finished(state: &State) -> Option<Message> {
    if !state.is_final() || state.status == Status::DryRun {
        return None;
    }
    let outcome = match state.status {
        Status::Succeeded => "succeeded",
        Status::RolledBack => "rolled back",
        _ => "left as found",
    };
    Some(Message {
        subject: format!(
            "shipshape alias-shifter: {} -> version {}: {outcome}",
            state.rollout.resource(),
            state.new_version
        ),
        body: serde_json::to_string_pretty(state).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::Rollout;

    fn state(status: Status) -> State {
        let payload = serde_json::json!({"function-name": "api", "alias-name": "live", "new-version": "2"});
        let rollout = Rollout::parse(&payload).unwrap_or_else(|e| panic!("{e}"));
        let now = Utc::now();
        State {
            status,
            function_name: "api".into(),
            alias_name: "live".into(),
            new_version: "2".into(),
            original_version: "1".into(),
            revision_id: "r".into(),
            step: 1,
            step_started_at: now,
            extensions: 0,
            wait_seconds: 0,
            started_at: now,
            finished_at: Some(now),
            reason: None,
            steps: Vec::new(),
            rollout,
            notification: None,
        }
    }

    fn recorded(state: &State, before: Option<(Status, usize)>) -> Metrics {
        let mut m = Metrics::new("f");
        Invocation { state, before }.record(&mut m);
        m
    }

    #[test]
    fn metrics_count_what_this_invocation_did() {
        let rolled_back = state(Status::RolledBack);
        let m = recorded(&rolled_back, Some((Status::Shifting, 0)));
        assert_eq!((m.get("Rollbacks"), m.get("ShiftsSucceeded")), (Some(1.0), Some(0.0)));
        assert!(
            recorded(&rolled_back, Some((Status::RolledBack, 0))).is_empty(),
            "passed again: counted once"
        );
    }

    #[test]
    fn a_dry_run_records_nothing_and_reports_nothing() {
        let dry = state(Status::DryRun);
        assert!(recorded(&dry, None).is_empty());
        assert!(finished(&dry).is_none());
        assert!(finished(&state(Status::Shifting)).is_none());
    }

    #[test]
    fn the_report_subject_says_how_it_ended() {
        let report = finished(&state(Status::Succeeded)).unwrap_or_else(|| panic!("no report"));
        assert_eq!(report.subject, "shipshape alias-shifter: api:live -> version 2: succeeded");
    }
}
