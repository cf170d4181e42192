"""Call counts and fault injection, seen through boto3 as an SDK sees AWS."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def client(emulator: Any, service: str, attempts: int = 1) -> Any:
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}),
    )


def test_calls_are_counted_per_service_and_operation(emulator: Any) -> None:
    ecs = client(emulator, "ecs")
    ecs.list_clusters()
    ecs.list_clusters()
    client(emulator, "sns").list_topics()
    status, calls = emulator.control("GET", "/calls")
    assert status == 200
    assert calls == {"ecs:ListClusters": 2, "sns:ListTopics": 1}
    emulator.control("POST", "/calls/reset")
    assert emulator.control("GET", "/calls")[1] == {}


def test_json_protocol_throttling_then_success(emulator: Any) -> None:
    ecs = client(emulator, "ecs")
    emulator.control("POST", "/faults", {"operation": "ListClusters", "error": "ThrottlingException"})
    with pytest.raises(ClientError) as err:
        ecs.list_clusters()
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ecs.list_clusters()["clusterArns"] == []
    assert emulator.control("GET", "/calls")[1] == {"ecs:ListClusters": 2}


def test_injected_faults_are_retried_by_the_sdk(emulator: Any) -> None:
    emulator.control("POST", "/faults", {"operation": "ListClusters", "count": 2, "error": "ServiceUnavailable"})
    assert client(emulator, "ecs", attempts=3).list_clusters()["clusterArns"] == []
    assert emulator.control("GET", "/calls")[1] == {"ecs:ListClusters": 3}
    assert emulator.control("GET", "/faults")[1] == []


def test_query_protocol_error_shape(emulator: Any) -> None:
    emulator.control("POST", "/faults", {"operation": "ListTopics", "error": "Throttling"})
    with pytest.raises(ClientError) as err:
        client(emulator, "sns").list_topics()
    assert err.value.response["Error"]["Code"] == "Throttling"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bare_500(emulator: Any) -> None:
    emulator.control("POST", "/faults", {"operation": "ListClusters", "error": "500"})
    with pytest.raises(ClientError) as err:
        client(emulator, "ecs").list_clusters()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert err.value.response["Error"]["Code"] == "InternalFailure"


def test_fault_scoped_to_a_service_leaves_others_alone(emulator: Any) -> None:
    emulator.control("POST", "/faults", {"operation": "ListTopics", "service": "ecs", "error": "Throttling"})
    assert "Topics" in client(emulator, "sns").list_topics()
    assert len(emulator.control("GET", "/faults")[1]) == 1


def test_delay_without_error_answers_late(emulator: Any) -> None:
    emulator.control("POST", "/faults", {"operation": "ListClusters", "delay_ms": 300})
    started = time.monotonic()
    assert client(emulator, "ecs").list_clusters()["clusterArns"] == []
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({}, "operation"),
        ({"operation": "X", "count": 0, "error": "Throttling"}, "count"),
        ({"operation": "X"}, "needs error"),
        ({"operation": "X", "status": 200}, "status"),
        ({"operation": "X", "error": "E", "colour": "red"}, "unknown fields"),
    ],
)
def test_bad_fault_specs_are_rejected_by_field(emulator: Any, body: dict, fragment: str) -> None:
    status, resp = emulator.control("POST", "/faults", body)
    assert status == 400
    assert fragment in resp["error"]


def test_unknown_control_path_is_404(emulator: Any) -> None:
    assert emulator.control("GET", "/nope")[0] == 404
