//! `cloudwatch:GetMetricData`: every statistic a judgement needs, in one call per resolution.

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::DateTime;
use shared::AwsError;
use shared::error::aws;

use crate::Deps;
use crate::judge::series::{self, Series, Source};
use crate::judge::window::Read;
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
        let queries = queries(r, versions, read.period);
        let mut token = None;
        let mut last = std::collections::HashMap::new();
        loop {
            let page = deps
                .cloudwatch
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(SmithyTime::from_secs(read.from.timestamp()))
                .end_time(SmithyTime::from_secs(read.to.timestamp()))
                .set_next_token(token)
                .send()
                .await
                .map_err(aws("GetMetricData"))?;
            for result in page.metric_data_results() {
                let id = result.id().unwrap_or_default();
                last.insert(
                    id.to_owned(),
                    result.status_code().map_or("no status", |s| s.as_str()).to_owned(),
                );
                for (at, value) in result.timestamps().iter().zip(result.values()) {
                    if let Some(at) = DateTime::from_timestamp(at.secs(), 0) {
                        out.add(id, at, *value);
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
    }
    Ok(out)
}

fn queries(r: &Rollout, versions: (&str, &str), period: u32) -> Vec<MetricDataQuery> {
    let period = i32::try_from(period).unwrap_or(60);
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    series::queries()
        .map(|(source, stat)| {
            let mut dims = vec![dim("FunctionName", r.function_short_name()), dim("Resource", &r.resource())];
            match source {
                Source::New => dims.push(dim("ExecutedVersion", versions.0)),
                Source::Old => dims.push(dim("ExecutedVersion", versions.1)),
                Source::Alias => {}
            }
            let (metric, statistic) = stat.metric();
            let metric = Metric::builder()
                .namespace("AWS/Lambda")
                .metric_name(metric)
                .set_dimensions(Some(dims))
                .build();
            MetricDataQuery::builder()
                .id(series::id(source, stat))
                .metric_stat(MetricStat::builder().metric(metric).period(period).stat(statistic).build())
                .return_data(true)
                .build()
        })
        .collect()
}
