//! `cloudwatch:GetMetricData`: every count a judgement needs, in one call per resolution, and each window's
//! percentiles in one call per window.

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::DateTime;
use shared::AwsError;
use shared::error::aws;

use crate::Deps;
use crate::judge::series::{self, Role, Series, Source, Stat};
use crate::judge::window::{Read, Timing, Window, ceil, floor};
use crate::rollout::Rollout;

/// Lambda's metrics of the alias (`FunctionName`, `Resource = function:alias`) and of each of its two
/// versions behind it (plus `ExecutedVersion`: the dimension set Lambda publishes for a weighted alias),
/// period by period over each read (see `judge::window::reads`): one `GetMetricData` call per read with all
/// fifteen queries, its pages followed with `NextToken`, each query's final status kept.
pub async fn metric_data(
    deps: &Deps,
    r: &Rollout,
    versions: (&str, &str),
    reads: &[Read],
) -> Result<Series, AwsError> {
    let mut out = Series::default();
    out.read_as(reads);
    for read in reads {
        let queries: Vec<MetricDataQuery> = series::queries()
            .map(|(source, stat)| query(r, versions, source, stat, series::id(source, stat), read.period))
            .collect();
        fetch(deps, &queries, read, &mut out, |out, id, _, value| out.add(id, value.0, value.1)).await?;
    }
    Ok(out)
}

/// The `Duration` p90 and p99 of `sources` over `window` as a whole: one data point per query, read at the
/// window's own period (in whole periods of the resolution CloudWatch keeps for the window's start).
pub async fn percentiles(
    deps: &Deps,
    r: &Rollout,
    versions: (&str, &str),
    (role, sources): (Role, &[Source]),
    window: &Window,
    coarsest: u32,
    out: &mut Series,
) -> Result<(), AwsError> {
    let t = Timing { period: coarsest, timeout: 0, metric_delay: 0 };
    let (from, to) = (floor(window.from, &t), ceil(window.to, &t));
    let span = u32::try_from((to - from).num_seconds()).unwrap_or(u32::MAX).max(coarsest);
    let read = Read { from, to: from + chrono::Duration::seconds(i64::from(span)), period: span };
    let queries: Vec<MetricDataQuery> = sources
        .iter()
        .flat_map(|s| [(*s, Stat::P90), (*s, Stat::P99)])
        .map(|(source, stat)| query(r, versions, source, stat, series::duration_id(role, source, stat), span))
        .collect();
    fetch(deps, &queries, &read, out, |out, id, _, value| out.duration(id, value.1)).await
}

/// One request, its pages followed with `NextToken`; each value handed to `keep`, each query's final
/// status kept in `out`.
async fn fetch(
    deps: &Deps,
    queries: &[MetricDataQuery],
    read: &Read,
    out: &mut Series,
    keep: impl Fn(&mut Series, &str, usize, (DateTime<chrono::Utc>, f64)),
) -> Result<(), AwsError> {
    let mut token = None;
    let mut last = std::collections::HashMap::new();
    for q in queries {
        out.expect(q.id().unwrap_or_default());
    }
    loop {
        let page = deps
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries.to_vec()))
            .start_time(SmithyTime::from_secs(read.from.timestamp()))
            .end_time(SmithyTime::from_secs(read.to.timestamp()))
            .set_next_token(token)
            .send()
            .await
            .map_err(aws("GetMetricData"))?;
        for result in page.metric_data_results() {
            let id = result.id().unwrap_or_default();
            last.insert(id.to_owned(), result.status_code().map_or("no status", |s| s.as_str()).to_owned());
            for (i, (at, value)) in result.timestamps().iter().zip(result.values()).enumerate() {
                if let Some(at) = DateTime::from_timestamp(at.secs(), 0) {
                    keep(out, id, i, (at, *value));
                }
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for (id, status) in last {
        out.status(&id, &status);
    }
    Ok(())
}

/// One query: a source's statistic, with the dimensions Lambda publishes it with.
fn query(
    r: &Rollout,
    versions: (&str, &str),
    source: Source,
    stat: Stat,
    id: String,
    period: u32,
) -> MetricDataQuery {
    let period = i32::try_from(period).unwrap_or(i32::MAX);
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let mut dims = vec![dim("FunctionName", r.function_short_name()), dim("Resource", &r.resource())];
    match source {
        Source::New => dims.push(dim("ExecutedVersion", versions.0)),
        Source::Old => dims.push(dim("ExecutedVersion", versions.1)),
        Source::Alias => {}
    }
    let (metric, statistic) = stat.metric();
    let metric =
        Metric::builder().namespace("AWS/Lambda").metric_name(metric).set_dimensions(Some(dims)).build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(statistic).build())
        .return_data(true)
        .build()
}
