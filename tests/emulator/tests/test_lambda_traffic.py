"""Traffic through an alias as Lambda reports it, CloudWatch's reads as AWS answers them, and functions that
answer as told."""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import ControlError, Emulator


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


@pytest.fixture
def fn(emulator: Emulator) -> Any:
    """Function api (Timeout 1 s) with versions 1 and 2, alias live on 1."""
    lam = emulator.awslambda
    lam.create_function(FunctionName="api", Runtime="provided.al2023", Role=emulator.role("api"), Handler="bootstrap",
                        Code={"ZipFile": _zip()}, Timeout=1)
    for _ in range(2):
        lam.update_function_code(FunctionName="api", ZipFile=_zip())
        lam.publish_version(FunctionName="api")
    lam.create_alias(FunctionName="api", Name="live", FunctionVersion="1")
    return lam


def dims(version: str | None = None) -> list[dict[str, str]]:
    out = [{"Name": "FunctionName", "Value": "api"}, {"Name": "Resource", "Value": "api:live"}]
    return out + ([{"Name": "ExecutedVersion", "Value": version}] if version else [])


def query(qid: str, metric: str, stat: str, dimensions: list[dict[str, str]], period: int = 1) -> dict[str, Any]:
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": dimensions},
                                      "Period": period, "Stat": stat}}


def totals(emulator: Emulator, queries: list[dict[str, Any]], start: datetime, end: datetime, **kw: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    token = None
    while True:
        page = emulator.cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end,
                                                   **({"NextToken": token} if token else {}), **kw)
        for r in page["MetricDataResults"]:
            out.setdefault(r["Id"], []).extend(r["Values"])
        token = page.get("NextToken")
        if not token:
            return out


def test_metrics_carry_the_invocation_start_and_appear_after_it_ends_plus_the_lag(emulator: Emulator, fn: Any) -> None:
    fn.update_alias(FunctionName="api", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    # Version 2 hangs until its 1 s timeout; the lag is 0.5 s.
    emulator.traffic("api", "live", rate=20, lag_ms=500, seed=3, versions={"2": {"hang_rate": 1.0}, "1": {"duration_ms": 10}})
    time.sleep(0.7)
    emulator.traffic("api", "live", rate=0)
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    qs = [query("n2", "Invocations", "Sum", dims("2")), query("n1", "Invocations", "Sum", dims("1"))]
    early = totals(emulator, qs, start, end)
    assert sum(early.get("n2", [])) == 0, "a hanging invocation is not counted before it ends"
    assert sum(early.get("n1", [])) > 0, "fast invocations show after the lag"
    time.sleep(1.7)  # the last started 0.7 s in: it ends 1 s later, and shows 0.5 s after that
    late = totals(emulator, qs + [query("e2", "Errors", "Sum", dims("2")), query("d2", "Duration", "Maximum", dims("2"))], start, end)
    counts = emulator.control("GET", "/lambda/traffic")["api:live"]["counts"]
    assert sum(late["n2"]) == counts["2"]["invocations"] > 0
    assert sum(late["e2"]) == sum(late["n2"]), "timeouts are errors"
    assert max(late["d2"]) == 1000.0, "a timed-out invocation's duration is the timeout"
    assert sum(late["n1"]) + sum(late["n2"]) == sum(c["invocations"] for c in counts.values())


def test_executed_version_only_while_the_alias_is_weighted(emulator: Emulator, fn: Any) -> None:
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    emulator.traffic("api", "live", rate=50, lag_ms=0, versions={"1": {"duration_ms": 1}})
    time.sleep(0.3)
    emulator.traffic("api", "live", rate=0)
    time.sleep(0.1)
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    got = totals(emulator, [query("alias", "Invocations", "Sum", dims()), query("v1", "Invocations", "Sum", dims("1"))], start, end)
    assert sum(got["alias"]) > 0 and got["v1"] == []


def test_percentiles_pages_and_the_exact_dimension_set(emulator: Emulator) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    data = [{"MetricName": "Duration", "Dimensions": dims("2"), "Value": float(v), "Timestamp": now} for v in range(1, 101)]
    for i in range(0, 100, 20):
        emulator.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[i : i + 20])
    other = [{"MetricName": "Duration", "Dimensions": dims("2"), "Value": 1e6, "Timestamp": now}]
    emulator.cloudwatch.put_metric_data(Namespace="Other", MetricData=other)
    start, end = now - timedelta(seconds=5), now + timedelta(seconds=5)
    qs = [query("p90", "Duration", "p90", dims("2")), query("p99", "Duration", "p99", dims("2")),
          query("max", "Duration", "Maximum", dims("2")), query("none", "Duration", "p90", dims())]
    assert totals(emulator, qs, start, end) == {"p90": [90.0], "p99": [99.0], "max": [100.0], "none": []}

    # Ten one-second data points per query, five per page.
    for s in range(10):
        emulator.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims("2"), "Value": 1.0, "Timestamp": now - timedelta(seconds=s + 1)}])
    emulator.control("POST", "/cloudwatch", {"page_datapoints": 5})
    pages = []
    token = None
    inv = [query("a", "Invocations", "Sum", dims("2")), query("b", "Invocations", "SampleCount", dims("2"))]
    while True:
        page = emulator.cloudwatch.get_metric_data(MetricDataQueries=inv, StartTime=now - timedelta(seconds=20), EndTime=now,
                                                   **({"NextToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    assert len(pages) == 4
    assert pages[0]["MetricDataResults"][0]["StatusCode"] == "PartialData"
    assert sum(len(r["Values"]) for p in pages for r in p["MetricDataResults"]) == 20


def test_the_start_is_rounded_down_as_aws_rounds_it(emulator: Emulator) -> None:
    minute = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=2)
    emulator.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims(), "Value": 7.0, "Timestamp": minute + timedelta(seconds=10)}])
    got = totals(emulator, [query("q", "Invocations", "Sum", dims(), period=60)], minute + timedelta(seconds=30), minute + timedelta(minutes=1))
    assert got == {"q": [7.0]}, "a start within the minute reads the whole minute"


def test_composite_alarms_only_when_asked_for(emulator: Emulator) -> None:
    cw = emulator.cloudwatch
    cw.put_metric_alarm(AlarmName="errors", Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
    cw.put_composite_alarm(AlarmName="any", AlarmRule='ALARM("errors")')
    names = ["errors", "any"]
    default = cw.describe_alarms(AlarmNames=names)
    assert [a["AlarmName"] for a in default["MetricAlarms"]] == ["errors"] and default["CompositeAlarms"] == []
    both = cw.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert [a["AlarmName"] for a in both["CompositeAlarms"]] == ["any"]


def test_a_function_answers_as_told_and_its_invocations_are_kept(emulator: Emulator, fn: Any) -> None:
    emulator.answer("api", error="CheckFailed", message="login page returns 500")
    out = fn.invoke(FunctionName="api", Qualifier="2", Payload=json.dumps({"step": 1}).encode())
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read()) == {"errorType": "CheckFailed", "errorMessage": "login page returns 500"}
    emulator.answer("api", result={"passed": True})
    out = fn.invoke(FunctionName="api:2", Payload=b"{}")
    assert "FunctionError" not in out and json.loads(out["Payload"].read()) == {"passed": True}
    seen = emulator.control("GET", "/lambda/invoke")["invocations"]
    assert seen == [{"function": "api", "qualifier": "2", "payload": {"step": 1}}, {"function": "api", "qualifier": "2", "payload": {}}]
    with pytest.raises(ClientError) as err:
        fn.invoke(FunctionName="api", Qualifier="9", Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_bad_settings_are_refused_by_name(emulator: Emulator) -> None:
    for body, field in [({"function": "api", "alias": "live", "rate": -1}, "rate"),
                        ({"function": "api", "alias": "live", "versions": {"2": {"error_rate": 2}}}, "error_rate"),
                        ({"function": "api", "alias": "live", "speed": 1}, "speed"),
                        ({"alias": "live"}, "function")]:
        with pytest.raises(ControlError) as err:
            emulator.control("POST", "/lambda/traffic", body)
        assert err.value.status == 400 and field in err.value.body["error"], body
    with pytest.raises(ControlError):
        emulator.control("POST", "/cloudwatch", {"page_datapoints": 0})


def test_alias_descriptions_are_limited_as_in_aws(emulator: Emulator, fn: Any) -> None:
    with pytest.raises(ClientError) as err:
        fn.update_alias(FunctionName="api", Name="live", Description="x" * 257)
    assert "256" in err.value.response["Error"]["Message"]
    fn.update_alias(FunctionName="api", Name="live", Description="x" * 256)


def test_a_failed_query_says_so_in_its_status(emulator: Emulator) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    emulator.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Errors", "Dimensions": dims("2"), "Value": 3.0, "Timestamp": now}])
    emulator.control("POST", "/cloudwatch", {"status": {"bad": "InternalError"}})
    qs = [query("bad", "Errors", "Sum", dims("2")), query("good", "Errors", "Sum", dims("2"))]
    page = emulator.cloudwatch.get_metric_data(MetricDataQueries=qs, StartTime=now - timedelta(seconds=5),
                                               EndTime=now + timedelta(seconds=5))
    got = {r["Id"]: (r["StatusCode"], r["Values"]) for r in page["MetricDataResults"]}
    assert got == {"bad": ("InternalError", []), "good": ("Complete", [3.0])}
    with pytest.raises(ControlError):
        emulator.control("POST", "/cloudwatch", {"status": {"bad": "Fine"}})


def test_old_data_only_at_the_period_cloudwatch_keeps(emulator: Emulator) -> None:
    old = (datetime.now(timezone.utc) - timedelta(days=20)).replace(minute=7, second=0, microsecond=0)
    emulator.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims(), "Value": 5.0, "Timestamp": old}])
    span = (old - timedelta(minutes=1), old + timedelta(minutes=10))
    assert totals(emulator, [query("q", "Invocations", "Sum", dims(), period=60)], *span) == {"q": []}
    # A multiple of 300, and the start rounded down to the 5-minute clock interval (10:06 -> 10:05).
    assert totals(emulator, [query("q", "Invocations", "Sum", dims(), period=300)], *span) == {"q": [5.0]}
