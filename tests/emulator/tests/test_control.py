"""Call counts and fault injection, seen through boto3 as an SDK sees AWS."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from shipshape_emulator.client import ControlError, Emulator


def client(emulator: Emulator, service: str, attempts: int = 1) -> Any:
    return emulator.client(service, Config(retries={"total_max_attempts": attempts, "mode": "standard"}))


def test_calls_are_counted_per_service_and_operation(emulator: Emulator) -> None:
    ecs = client(emulator, "ecs")
    ecs.list_clusters()
    ecs.list_clusters()
    client(emulator, "sns").list_topics()
    assert emulator.calls() == {"ecs:ListClusters": 2, "sns:ListTopics": 1}
    emulator.reset_calls()
    assert emulator.calls() == {}


def test_json_protocol_throttling_then_success(emulator: Emulator) -> None:
    ecs = client(emulator, "ecs")
    emulator.fault("ListClusters", error="ThrottlingException")
    with pytest.raises(ClientError) as err:
        ecs.list_clusters()
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ecs.list_clusters()["clusterArns"] == []
    assert emulator.calls() == {"ecs:ListClusters": 2}


def test_injected_faults_are_retried_by_the_sdk(emulator: Emulator) -> None:
    emulator.fault("ListClusters", count=2, error="ServiceUnavailable")
    assert client(emulator, "ecs", attempts=3).list_clusters()["clusterArns"] == []
    assert emulator.calls() == {"ecs:ListClusters": 3}
    assert emulator.faults() == []


def test_query_protocol_error_shape(emulator: Emulator) -> None:
    emulator.fault("ListTopics", error="Throttling")
    with pytest.raises(ClientError) as err:
        client(emulator, "sns").list_topics()
    assert err.value.response["Error"]["Code"] == "Throttling"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bare_500(emulator: Emulator) -> None:
    emulator.fault("ListClusters", error="500")
    with pytest.raises(ClientError) as err:
        client(emulator, "ecs").list_clusters()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert err.value.response["Error"]["Code"] == "InternalFailure"


def test_fault_scoped_to_a_service_leaves_others_alone(emulator: Emulator) -> None:
    emulator.fault("ListTopics", service="ecs", error="Throttling")
    assert "Topics" in client(emulator, "sns").list_topics()
    assert len(emulator.faults()) == 1


def test_delay_without_error_answers_late(emulator: Emulator) -> None:
    emulator.fault("ListClusters", delay_ms=300)
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
def test_bad_fault_specs_are_rejected_by_field(emulator: Emulator, body: dict, fragment: str) -> None:
    with pytest.raises(ControlError) as err:
        emulator.control("POST", "/faults", body)
    assert err.value.status == 400
    assert fragment in err.value.body["error"]


def test_unknown_control_path_is_404(emulator: Emulator) -> None:
    with pytest.raises(ControlError) as err:
        emulator.control("GET", "/nope")
    assert err.value.status == 404
