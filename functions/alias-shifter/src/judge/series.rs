//! One `GetMetricData` answer, cut into windows. Pure.
//!
//! A judgement reads every window it needs (the step, the rollout so far, the bake, the baseline) with one
//! call over their union, period by period, and sums each window's periods here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use strum::IntoEnumIterator;

use super::health::Figures;
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

/// The query id of a source's statistic (`new_invocations`): ids start with a lower-case letter.
pub fn id(source: Source, stat: Stat) -> String {
    format!("{}_{}", <&str>::from(source), <&str>::from(stat))
}

/// Every (source, statistic) a judgement reads: one query each.
pub fn queries() -> impl Iterator<Item = (Source, Stat)> {
    Source::iter().flat_map(|s| Stat::iter().map(move |t| (s, t)))
}

/// The periods' values by query id, and the status CloudWatch gave each query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: HashMap<String, HashMap<DateTime<Utc>, f64>>,
    /// The status of each query's last page: `Complete` when all its data points were returned.
    status: HashMap<String, String>,
    /// The requests made, when some data was read at a coarser period than the windows' (old data).
    reads: Vec<Read>,
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

    /// Every query whose answer is not `Complete` (`InternalError`, `Forbidden`, missing), with its status:
    /// its values are not all there, so they prove nothing.
    pub fn incomplete(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = queries()
            .map(|(source, stat)| id(source, stat))
            .filter_map(|id| match self.status.get(&id).map(String::as_str) {
                Some("Complete") => None,
                other => Some((id, other.unwrap_or("no answer").to_owned())),
            })
            .collect();
        out.sort();
        out
    }

    /// A period's value (pages of one answer may repeat none; a repeated one replaces the first).
    pub fn add(&mut self, id: &str, at: DateTime<Utc>, value: f64) {
        self.points.entry(id.to_owned()).or_default().insert(at, value);
    }

    fn values(&self, source: Source, stat: Stat) -> impl Iterator<Item = (&DateTime<Utc>, &f64)> {
        self.points.get(&id(source, stat)).into_iter().flatten()
    }

    /// A source's figures over the periods `window` covers.
    pub fn figures(&self, source: Source, window: &Window) -> Figures {
        let sum = |stat| {
            self.values(source, stat).filter(|(at, _)| self.belongs(window, **at)).map(|(_, v)| v).sum()
        };
        let invocations: HashMap<&DateTime<Utc>, f64> =
            self.values(source, Stat::Invocations).map(|(at, v)| (at, *v)).collect();
        let percentile = |stat| {
            let (weighted, count) = self
                .values(source, stat)
                .filter(|(at, _)| self.belongs(window, **at))
                .filter_map(|(at, v)| invocations.get(at).filter(|n| **n > 0.0).map(|n| (v * n, *n)))
                .fold((0.0, 0.0), |(w, c), (vw, n)| (w + vw, c + n));
            (count > 0.0).then(|| weighted / count)
        };
        Figures {
            invocations: sum(Stat::Invocations),
            errors: sum(Stat::Errors),
            throttles: sum(Stat::Throttles),
            p90: percentile(Stat::P90),
            p99: percentile(Stat::P99),
        }
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
            s.status(&id(source, stat), "Complete");
        }
        assert!(s.incomplete().is_empty());
        // Several requests (old data at coarser periods): one that did not complete stands.
        s.status("new_errors", "InternalError");
        s.status("new_errors", "Complete");
        s.status("old_p99", "Forbidden");
        assert_eq!(
            s.incomplete(),
            [
                ("new_errors".to_owned(), "InternalError".to_owned()),
                ("old_p99".to_owned(), "Forbidden".to_owned())
            ]
        );
        assert_eq!(Series::default().incomplete().len(), 15, "no answer is not a complete one");
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
        assert_eq!(s.figures(Source::Old, &w(0, 180)), Figures::default());
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

    #[test]
    fn percentiles_are_weighted_by_each_periods_invocations() {
        let mut s = Series::default();
        s.add("old_invocations", at(0), 30.0);
        s.add("old_p99", at(0), 100.0);
        s.add("old_invocations", at(60), 10.0);
        s.add("old_p99", at(60), 500.0);
        let f = s.figures(Source::Old, &w(0, 120));
        assert_eq!(f.p99, Some(200.0));
        assert_eq!(f.p90, None);
    }

    #[test]
    fn every_source_reads_every_statistic_once() {
        let ids: Vec<String> = queries().map(|(s, t)| id(s, t)).collect();
        assert_eq!(ids.len(), 15);
        assert!(ids.contains(&"alias_p90".to_owned()) && ids.contains(&"new_throttles".to_owned()));
        assert_eq!(Stat::P99.metric(), ("Duration", "p99"));
    }
}
