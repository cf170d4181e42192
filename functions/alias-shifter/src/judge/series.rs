//! `GetMetricData` answers, cut into windows. Pure.
//!
//! A judgement reads the counts of every window it needs (the step, the rollout so far, the bake, the
//! baseline) over their union, period by period (one call, or up to three for old data, see
//! `window::reads`), and sums each window's periods here, or scores them period by period; and, when the
//! rollout compares durations, each window's percentiles at the window's own period (one data point per
//! query: the percentile of every invocation in it).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use strum::IntoEnumIterator;

use super::health::Figures;
use super::stats::Score;
use super::window::{Read, Window};

/// Whose metrics a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Source {
    /// The new version behind the alias (`ExecutedVersion`).
    New,
    /// The original version behind the alias (`ExecutedVersion`).
    Old,
    /// The alias, whatever version ran (`Resource` only): before the shift and after the switch, when the
    /// alias routes to one version and Lambda need not publish `ExecutedVersion`.
    Alias,
}

/// What is read of each source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Stat {
    Invocations,
    Errors,
    Throttles,
    P90,
    P99,
}

impl Stat {
    /// The metric and the statistic asked of CloudWatch.
    pub fn metric(self) -> (&'static str, &'static str) {
        match self {
            Stat::Invocations => ("Invocations", "Sum"),
            Stat::Errors => ("Errors", "Sum"),
            Stat::Throttles => ("Throttles", "Sum"),
            Stat::P90 => ("Duration", "p90"),
            Stat::P99 => ("Duration", "p99"),
        }
    }
}

/// Which window a duration was read over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// The window judged.
    Window,
    /// The bake's baseline before the switch.
    Before,
}

/// The query id of a source's count (`new_invocations`): ids start with a lower-case letter.
pub fn id(source: Source, stat: Stat) -> String {
    format!("{}_{}", <&str>::from(source), <&str>::from(stat))
}

/// The query id of a window's percentile (`window_new_p90`).
pub fn duration_id(role: Role, source: Source, stat: Stat) -> String {
    format!("{}_{}", <&str>::from(role), id(source, stat))
}

/// Every count a judgement reads, period by period: one query each.
pub fn queries() -> impl Iterator<Item = (Source, Stat)> {
    let counts = [Stat::Invocations, Stat::Errors, Stat::Throttles];
    Source::iter().flat_map(move |s| counts.into_iter().map(move |t| (s, t)))
}

/// The periods' values by query id, and the status CloudWatch gave each query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: HashMap<String, HashMap<DateTime<Utc>, f64>>,
    /// The status of each query's last page: `Complete` when all its data points were returned.
    status: HashMap<String, String>,
    /// The requests made, when some data was read at a coarser period than the windows' (old data).
    reads: Vec<Read>,
    /// The queries asked: each must end `Complete`.
    expected: Vec<String>,
    /// Windows' percentiles, by query id (see [`duration_id`]).
    durations: HashMap<String, f64>,
}

impl Series {
    /// A request's final status for a query: with several requests, one not `Complete` stands.
    pub fn status(&mut self, id: &str, status: &str) {
        let kept = self.status.get(id).is_some_and(|s| s != "Complete");
        if !kept {
            self.status.insert(id.to_owned(), status.to_owned());
        }
    }

    /// The requests the values came from (old data is read at coarser periods).
    pub fn read_as(&mut self, reads: &[Read]) {
        self.reads = reads.to_vec();
    }

    /// Whether the period a data point stamped `at` summarises overlaps `window`: a point read at a coarser
    /// period than the window's may start before it.
    fn belongs(&self, window: &Window, at: DateTime<Utc>) -> bool {
        let period = self.reads.iter().find(|r| r.from <= at && at < r.to).map_or(0, |r| r.period);
        match period {
            0 => window.covers(at),
            p => at < window.to && window.from < at + chrono::Duration::seconds(i64::from(p)),
        }
    }

    /// A query asked of CloudWatch: its answer must end `Complete`.
    pub fn expect(&mut self, id: &str) {
        if !self.expected.iter().any(|e| e == id) {
            self.expected.push(id.to_owned());
        }
    }

    /// Every query asked whose answer is not `Complete` (`InternalError`, `Forbidden`, missing), with its
    /// status: its values are not all there, so they prove nothing.
    pub fn incomplete(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .expected
            .iter()
            .filter_map(|id| match self.status.get(id).map(String::as_str) {
                Some("Complete") => None,
                other => Some((id.clone(), other.unwrap_or("no answer").to_owned())),
            })
            .collect();
        out.sort();
        out
    }

    /// A window's percentile, read at the window's own period.
    pub fn duration(&mut self, id: &str, value: f64) {
        self.durations.insert(id.to_owned(), value);
    }

    /// A source's p90 and p99 over the window in `role`, if read.
    pub fn percentiles(&self, role: Role, source: Source) -> (Option<f64>, Option<f64>) {
        let get = |stat| self.durations.get(&duration_id(role, source, stat)).copied();
        (get(Stat::P90), get(Stat::P99))
    }

    /// A period's value (pages of one answer may repeat none; a repeated one replaces the first).
    pub fn add(&mut self, id: &str, at: DateTime<Utc>, value: f64) {
        self.points.entry(id.to_owned()).or_default().insert(at, value);
    }

    fn values(&self, source: Source, stat: Stat) -> impl Iterator<Item = (&DateTime<Utc>, &f64)> {
        self.points.get(&id(source, stat)).into_iter().flatten()
    }

    /// A source's counts over the periods `window` covers (no percentile: see [`Series::percentiles`]).
    pub fn figures(&self, source: Source, window: &Window) -> Figures {
        let sum = |stat| {
            self.values(source, stat)
                .filter(|(at, _)| self.belongs(window, **at))
                .fold(0.0, |total, (_, v)| total + v)
        };
        Figures {
            invocations: sum(Stat::Invocations),
            errors: sum(Stat::Errors),
            throttles: sum(Stat::Throttles),
            p90: None,
            p99: None,
        }
    }

    /// The new version's failed requests (errors and throttles) against the old version's, period by
    /// period over `window` (see [`super::stats`]).
    pub fn score(&self, window: &Window) -> Score {
        let mut periods: Vec<DateTime<Utc>> = [Source::New, Source::Old]
            .into_iter()
            .flat_map(|s| self.values(s, Stat::Invocations).chain(self.values(s, Stat::Throttles)))
            .map(|(at, _)| *at)
            .filter(|at| self.belongs(window, *at))
            .collect();
        periods.sort();
        periods.dedup();
        let at = |source, stat, t: &DateTime<Utc>| {
            self.points.get(&id(source, stat)).and_then(|p| p.get(t)).copied().unwrap_or(0.0)
        };
        let mut score = Score::default();
        for t in &periods {
            let side = |s| {
                let throttles = at(s, Stat::Throttles, t);
                (at(s, Stat::Errors, t) + throttles, at(s, Stat::Invocations, t) + throttles)
            };
            let ((a, n1), (c, n0)) = (side(Source::New), side(Source::Old));
            score.add(a, n1, c, n0);
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::window::Read;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn w(from: i64, to: i64) -> Window {
        Window { from: at(from), to: at(to), judge_at: at(to) }
    }

    #[test]
    fn a_query_not_complete_is_named() {
        let mut s = Series::default();
        for (source, stat) in queries() {
            s.expect(&id(source, stat));
            s.status(&id(source, stat), "Complete");
        }
        assert!(s.incomplete().is_empty());
        // Several requests (old data at coarser periods): one that did not complete stands.
        s.status("new_errors", "InternalError");
        s.status("new_errors", "Complete");
        s.expect("window_old_p99");
        s.status("window_old_p99", "Forbidden");
        s.expect("window_new_p99");
        assert_eq!(
            s.incomplete(),
            [
                ("new_errors".to_owned(), "InternalError".to_owned()),
                ("window_new_p99".to_owned(), "no answer".to_owned()),
                ("window_old_p99".to_owned(), "Forbidden".to_owned()),
            ]
        );
    }

    #[test]
    fn a_window_sums_its_periods_only() {
        let mut s = Series::default();
        for (t, inv, err) in [(0, 10.0, 1.0), (60, 20.0, 0.0), (120, 30.0, 3.0)] {
            s.add("new_invocations", at(t), inv);
            s.add("new_errors", at(t), err);
        }
        let f = s.figures(Source::New, &w(60, 180));
        assert_eq!((f.invocations, f.errors), (50.0, 3.0));
        let none = s.figures(Source::Old, &w(0, 180));
        assert_eq!(none, Figures::default());
        assert!(none.throttles.is_sign_positive(), "no -0 in a report");
    }

    #[test]
    fn a_period_read_coarser_than_the_window_counts_where_it_overlaps() {
        let mut s = Series::default();
        s.read_as(&[
            Read { from: at(0), to: at(600), period: 300 },
            Read { from: at(600), to: at(900), period: 60 },
        ]);
        s.add("new_invocations", at(300), 7.0);
        s.add("new_invocations", at(600), 1.0);
        s.add("new_invocations", at(660), 2.0);
        // A window from 540: the 5-minute period from 300 overlaps it, the minute from 600 is in it.
        assert_eq!(s.figures(Source::New, &w(540, 660)).invocations, 8.0);
        assert_eq!(s.figures(Source::New, &w(600, 720)).invocations, 3.0);
    }

    /// Each period is scored on its own: a period where only one version ran adds nothing.
    #[test]
    fn failures_are_scored_period_by_period() {
        let mut s = Series::default();
        for (t, new, new_err, old, old_err) in [(0, 0.0, 0.0, 100.0, 9.0), (60, 50.0, 5.0, 50.0, 0.0)] {
            s.add("new_invocations", at(t), new);
            s.add("new_errors", at(t), new_err);
            s.add("old_invocations", at(t), old);
            s.add("old_errors", at(t), old_err);
        }
        s.add("new_throttles", at(60), 5.0);
        let mut expected = Score::default();
        expected.add(10.0, 55.0, 0.0, 50.0);
        assert_eq!(s.score(&w(0, 120)), expected);
        assert_eq!(s.score(&w(0, 60)), Score::default());
    }

    #[test]
    fn counts_are_read_per_period_and_percentiles_per_window() {
        let ids: Vec<String> = queries().map(|(s, t)| id(s, t)).collect();
        assert_eq!(ids.len(), 9);
        assert!(ids.contains(&"alias_invocations".to_owned()) && ids.contains(&"new_throttles".to_owned()));
        assert_eq!(Stat::P99.metric(), ("Duration", "p99"));
        let mut s = Series::default();
        s.duration(&duration_id(Role::Window, Source::New, Stat::P90), 120.0);
        assert_eq!(s.percentiles(Role::Window, Source::New), (Some(120.0), None));
        assert_eq!(s.percentiles(Role::Before, Source::New), (None, None));
    }
}
