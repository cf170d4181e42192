//! `cloudwatch:GetMetricData`: every statistic a judgement needs, in one call.

use aws_sdk_cloudwatch::primitives::DateTime as SmithyTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::{DateTime, Utc};
use shared::AwsError;
use shared::error::aws;

use crate::Deps;
use crate::judge::series::{self, Series, Source};
use crate::rollout::Rollout;

/// Lambda's metrics of the alias (`FunctionName`, `Resource = function:alias`) and of each of its two
/// versions behind it (plus `ExecutedVersion`: the dimension set Lambda publishes for a weighted alias),
/// period by period over `[from, to)`: one `GetMetricData` call with all fifteen queries, its pages
/// followed with `NextToken`.
pub async fn metric_data(
    deps: &Deps,
    r: &Rollout,
    versions: (&str, &str),
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Series, AwsError> {
    let period = i32::try_from(deps.config.metric_period).unwrap_or(60);
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let queries: Vec<MetricDataQuery> = series::queries()
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
        .collect();
    let mut out = Series::default();
    let mut token = None;
    loop {
        let page = deps
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(SmithyTime::from_secs(from.timestamp()))
            .end_time(SmithyTime::from_secs(to.timestamp()))
            .set_next_token(token)
            .send()
            .await
            .map_err(aws("GetMetricData"))?;
        for result in page.metric_data_results() {
            let id = result.id().unwrap_or_default();
            out.status(id, result.status_code().map_or("no status", |s| s.as_str()));
            for (at, value) in result.timestamps().iter().zip(result.values()) {
                if let Some(at) = DateTime::from_timestamp(at.secs(), 0) {
                    out.add(id, at, *value);
                }
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}
