"""Smithy RPC v2 CBOR in front of moto (the Rust SDK's CloudWatch client speaks it), and REST operation names."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

import cbor2

from shipshape_emulator.client import Emulator

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/monitoring/aws4_request, "
        "SignedHeaders=host, Signature=0")


def cbor_call(emulator: Emulator, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(
        f"{emulator.url}/service/GraniteServiceVersion20100801/operation/{operation}",
        data=cbor2.dumps(body),
        method="POST",
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                 "Accept": "application/cbor", "Authorization": AUTH},
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), cbor2.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), cbor2.loads(err.read())


def test_get_metric_data_round_trips_with_timestamps_as_tag_1(emulator: Emulator) -> None:
    now = int(time.time()) // 60 * 60
    emulator.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[{
        "MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "api"}],
        "Timestamp": datetime.fromtimestamp(now, timezone.utc), "Value": 7.0}])
    query = {"Id": "inv", "ReturnData": True, "MetricStat": {"Period": 60, "Stat": "Sum", "Metric": {
        "Namespace": "AWS/Lambda", "MetricName": "Invocations",
        "Dimensions": [{"Name": "FunctionName", "Value": "api"}]}}}
    status, headers, out = cbor_call(emulator, "GetMetricData", {
        "MetricDataQueries": [query], "StartTime": cbor2.CBORTag(1, now - 60), "EndTime": cbor2.CBORTag(1, now + 120)})
    assert status == 200, out
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    [result] = out["MetricDataResults"]
    assert result["Id"] == "inv" and result["Values"] == [7.0]
    # cbor2 decodes tag 1 into an aware datetime: the timestamp went out as a timestamp, not a number.
    assert all(isinstance(t, datetime) for t in result["Timestamps"])
    assert emulator.calls()["monitoring:GetMetricData"] == 1


def test_errors_carry_type_and_message(emulator: Emulator) -> None:
    emulator.fault("DescribeAlarms", error="ThrottlingException")
    status, headers, out = cbor_call(emulator, "DescribeAlarms", {"AlarmNames": ["x"]})
    assert status == 400
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    assert out["__type"] == "ThrottlingException" and "message" in out
    status, _, out = cbor_call(emulator, "DescribeAlarms", {"AlarmNames": ["x"]})
    assert status == 200 and out.get("MetricAlarms", []) == []


def test_rest_operations_are_counted_by_name(emulator: Emulator) -> None:
    lam = emulator.client("lambda")
    lam.list_functions()
    try:
        lam.get_alias(FunctionName="nope", Name="live")
    except lam.exceptions.ResourceNotFoundException:
        pass
    calls = emulator.calls()
    assert calls == {"lambda:ListFunctions": 1, "lambda:GetAlias": 1}
