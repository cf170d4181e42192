"""CloudWatch's read APIs answered as AWS answers them, which moto 5.x does not.

``GetMetricData`` (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html):

- percentile statistics: ``MetricStat.Stat`` may be ``p90``, ``p99``, ``p99.9`` ("Percentile statistics",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html); moto
  answers only Sum, Average, Minimum, Maximum and SampleCount. Here a percentile is the nearest-rank
  percentile of the values in the period (CloudWatch estimates it; for whole-number percentiles of a few
  thousand values the two agree to within one value);
- pages: "MaxDatapoints: The maximum number of data points the request should return before paginating.
  If you omit this, the default of 100,800 is used", with ``NextToken`` and ``StatusCode`` ``PartialData``
  on a result that continues on the next page; moto returns everything at once. ``POST
  /_shipshape/cloudwatch`` with ``{"page_datapoints": n}`` lowers the page size (for tests of the
  caller's paging); ``GET`` shows it;
- the metric: namespace, name and exactly the dimension set asked for (moto drops the namespace when
  dimensions are given);
- the start: "If you set Period to 5, 10, 20, or 30, the start time of your request is rounded down to the
  nearest time that corresponds to even 5-, 10-, 20-, or 30-second divisions of a minute"; with a period
  of a minute or more, "Start time less than 15 days ago - Round down to the nearest whole minute", "between
  15 and 63 days ago - Round down to the nearest 5-minute clock interval", "greater than 63 days ago -
  Round down to the nearest 1-hour clock interval" (GetMetricData, ``StartTime``). Periods of 1 second are
  answered at 1-second resolution: AWS stores Lambda's metrics at 1-minute resolution, and the emulator is
  finer only so that tests can use second-scale windows;
- old data: "If the StartTime parameter specifies a time stamp that is greater than 3 hours ago, you must
  specify the period as follows or no data points in that time range is returned: ... Start time between
  15 and 63 days ago - Use a multiple of 300 seconds (5 minutes). Start time greater than 63 days ago -
  Use a multiple of 3600 seconds (1 hour)" (``MetricStat``, ``Period``): such a query answers no data
  point (and ``Complete``);
- the status of each result: "``InternalError`` indicates that an error occurred. Retry your request using
  ``NextToken``, if present", and ``Forbidden`` (``MetricDataResult``, ``StatusCode``). ``POST
  /_shipshape/cloudwatch`` with ``{"status": {"new_errors": "InternalError"}}`` answers the queries with
  those ids with that status and no data point, on every page, until changed (``{}`` clears it).

``DescribeAlarms`` (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html):
"AlarmTypes: ... If you omit this parameter, only metric alarms are returned, even if composite alarms
exist in the account." moto returns composite alarms whatever was asked.

``PutCompositeAlarm``, which moto's server does not route, is stored as moto stores a composite alarm; its
rule is not evaluated: its state changes with ``SetAlarmState``, which AWS also accepts for composite
alarms.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.cloudwatch.exceptions import InvalidParameterValue, ValidationError
from moto.cloudwatch.models import MetricDatum
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

AWS_PAGE = 100_800
SETTINGS: dict[str, Any] = {"page_datapoints": AWS_PAGE, "status": {}}
STATUSES = {"Complete", "InternalError", "PartialData", "Forbidden"}
DAY = 86_400
_original_describe_alarms = CloudWatchResponse.describe_alarms


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def statistic(stat: str, values: list[float]) -> float:
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):
        try:
            p = float(stat[1:])
        except ValueError:
            p = -1.0
        if 0 <= p <= 100:
            return percentile(values, p)
    raise InvalidParameterValue(f"The value {stat} for parameter MetricDataQueries.member.MetricStat.Stat is not supported.")


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _age_days(start: datetime) -> float:
    return (datetime.now(timezone.utc) - start).total_seconds() / DAY


def _rounded_start(start: datetime, period: int) -> datetime:
    age = _age_days(start)
    unit = 3600 if age > 63 else 300 if age > 15 else 60 if period >= 60 else period
    seconds = int(start.timestamp())
    return datetime.fromtimestamp(seconds - seconds % unit, tz=timezone.utc)


def _period_kept(start: datetime, period: int) -> bool:
    """Whether CloudWatch still holds data of that age at that period."""
    age = _age_days(start)
    return not ((age > 63 and period % 3600) or (age > 15 and period % 300))


def _series(backend: Any, query: dict[str, Any], start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """(period start, statistic) of one MetricStat query, oldest first, periods with data only."""
    stat = query["MetricStat"]
    metric = stat["Metric"]
    period = int(stat["Period"])
    if period < 1:
        raise InvalidParameterValue("The parameter Period must be greater than 0.")
    wanted = sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
    unit = stat.get("Unit")
    if not _period_kept(start, period):
        return []
    start = _rounded_start(start, period)
    buckets: dict[int, list[float]] = {}
    for md in backend.get_all_metrics():
        if not isinstance(md, MetricDatum) or md.namespace != metric["Namespace"] or md.name != metric["MetricName"]:
            continue
        if sorted((d.name, d.value) for d in md.dimensions) != wanted or (unit and md.unit != unit):
            continue
        at = _utc(md.timestamp)
        if start <= at < end:
            buckets.setdefault(int((at - start).total_seconds()) // period, []).append(md.value)
    return [(start + timedelta(seconds=i * period), statistic(stat["Stat"], v)) for i, v in sorted(buckets.items())]


def get_metric_data(self: CloudWatchResponse) -> ActionResult:
    params = self._get_params()
    start, end = _utc(params["StartTime"]), _utc(params["EndTime"])
    if start >= end:
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    queries = params.get("MetricDataQueries", [])
    if not queries or len(queries) > 500:
        raise ValidationError("The collection MetricDataQueries must not be empty and must contain at most 500 items.")
    if any("MetricStat" not in q for q in queries):
        raise ValidationError("The emulator answers MetricStat queries only.")
    page = min(int(params.get("MaxDatapoints") or AWS_PAGE), SETTINGS["page_datapoints"])
    descending = (params.get("ScanBy") or "TimestampDescending") == "TimestampDescending"
    token = params.get("NextToken")
    skip = int(json.loads(base64.b64decode(token))["skip"]) if token else 0

    results, taken, seen = [], 0, 0
    for query in queries:
        failed = SETTINGS["status"].get(query["Id"])
        series = [] if failed else _series(self.cloudwatch_backend, query, start, end)
        if descending:
            series.reverse()
        chunk = series[max(0, skip - seen) :][: max(0, page - taken)]
        seen += len(series)
        taken += len(chunk)
        if query.get("ReturnData", True):
            complete = seen <= skip + taken
            results.append({
                "id": query["Id"],
                "label": query.get("Label") or query["Id"],
                "timestamps": [t for t, _ in chunk],
                "values": [v for _, v in chunk],
                "status_code": failed or ("Complete" if complete else "PartialData"),
            })
    answer: dict[str, Any] = {"MetricDataResults": results}
    if skip + taken < seen:
        answer["NextToken"] = base64.b64encode(json.dumps({"skip": skip + taken}).encode()).decode()
    return ActionResult(answer)


def describe_alarms(self: CloudWatchResponse) -> ActionResult:
    types = self._get_param("AlarmTypes") or ["MetricAlarm"]
    answer = _original_describe_alarms(self)
    result = dict(answer.result)  # type: ignore[call-overload]
    if "MetricAlarm" not in types:
        result["MetricAlarms"] = []
    if "CompositeAlarm" not in types:
        result["CompositeAlarms"] = []
    return ActionResult(result)


def settings() -> dict[str, Any]:
    return {"page_datapoints": SETTINGS["page_datapoints"], "status": dict(SETTINGS["status"])}


def configure(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    value = spec.get("page_datapoints", SETTINGS["page_datapoints"])
    if not isinstance(value, int) or not 1 <= value <= AWS_PAGE:
        raise ValueError(f"page_datapoints: a whole number from 1 to {AWS_PAGE}")
    status = spec.get("status", SETTINGS["status"])
    if not isinstance(status, dict) or any(v not in STATUSES - {"Complete", "PartialData"} for v in status.values()):
        raise ValueError("status: an object of query id to InternalError or Forbidden")
    SETTINGS["page_datapoints"] = value
    SETTINGS["status"] = dict(status)
    return settings()


def install() -> None:
    # moto's handler of PutMetricAlarm reads AlarmRule too, and keeps it as a composite alarm's rule.
    CloudWatchResponse.put_composite_alarm = CloudWatchResponse.put_metric_alarm  # type: ignore[attr-defined]
    CloudWatchResponse.get_metric_data = get_metric_data  # type: ignore[method-assign]
    CloudWatchResponse.describe_alarms = describe_alarms  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    SETTINGS["page_datapoints"] = AWS_PAGE
    SETTINGS["status"] = {}


ENDPOINTS: dict[str, dict[str, Any]] = {"/cloudwatch": {"GET": settings, "POST": configure}}
