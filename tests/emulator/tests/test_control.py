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


def outcomes(emulator: Emulator, calls: int) -> list[str]:
    ecs = client(emulator, "ecs")
    out = []
    for _ in range(calls):
        try:
            ecs.list_clusters()
            out.append("ok")
        except ClientError as err:
            out.append(f'{err.response["ResponseMetadata"]["HTTPStatusCode"]} {err.response["Error"]["Code"]}')
    return out


def test_random_faults_are_reproducible_from_their_seed(emulator: Emulator) -> None:
    settings = {"seed": 7, "rate": 0.5, "errors": ["ThrottlingException", "500"], "operations": ["ListClusters"]}
    status = emulator.control("POST", "/faults/random", settings)
    assert status == {"settings": {**settings, "services": None}, "injected": {}}
    first = outcomes(emulator, 40)
    assert client(emulator, "sns").list_topics()["Topics"] == []  # other operations are left alone
    failed = [o for o in first if o != "ok"]
    assert set(failed) == {"400 ThrottlingException", "500 InternalFailure"}
    assert 8 <= len(failed) <= 32
    assert emulator.chaos_status()["injected"] == {"ecs:ListClusters": len(failed)}
    emulator.chaos(**settings)  # the same seed again: the same requests fail the same way
    assert outcomes(emulator, 40) == first
    emulator.chaos(**{**settings, "seed": 8})
    assert outcomes(emulator, 40) != first


def test_queued_faults_come_first_and_scopes_hold(emulator: Emulator) -> None:
    emulator.fault("ListClusters", error="ServiceUnavailable")
    emulator.chaos(1, 1.0, ["Throttling"], services=["ecs"])
    assert outcomes(emulator, 2) == ["503 ServiceUnavailable", "400 Throttling"]
    assert emulator.chaos_status()["injected"] == {"ecs:ListClusters": 1}
    assert "Topics" in client(emulator, "sns").list_topics()  # not an ecs call
    emulator.chaos(1, 1.0, ["Throttling"], services=["sns"])
    with pytest.raises(ClientError) as err:
        client(emulator, "sns").list_topics()
    assert err.value.response["Error"]["Code"] == "Throttling"  # the query protocol's error shape
    assert outcomes(emulator, 1) == ["ok"]


def test_control_requests_are_never_faulted_and_delete_turns_it_off(emulator: Emulator) -> None:
    emulator.chaos(3, 1.0, ["InternalFailure"])
    assert emulator.calls() == {}
    emulator.control("GET", "/autoscaling")
    assert outcomes(emulator, 1) == ["500 InternalFailure"]
    status = emulator.control("DELETE", "/faults/random")
    assert status == {"settings": None, "injected": {"ecs:ListClusters": 1}}
    assert outcomes(emulator, 3) == ["ok"] * 3


@pytest.mark.parametrize("body, fragment", [
    ({"rate": 0.1, "errors": ["E"]}, "seed"),
    ({"seed": 1, "rate": 1.5, "errors": ["E"]}, "rate"),
    ({"seed": 1, "rate": 0.1, "errors": []}, "errors"),
    ({"seed": 1, "rate": 0.1, "errors": ["200"]}, "errors"),
    ({"seed": 1, "rate": 0.1, "errors": ["E"], "operations": "ListTasks"}, "operations"),
    ({"seed": 1, "rate": 0.1, "errors": ["E"], "colour": "red"}, "unknown fields"),
])
def test_bad_random_fault_specs_are_refused(emulator: Emulator, body: dict, fragment: str) -> None:
    with pytest.raises(ControlError) as err:
        emulator.control("POST", "/faults/random", body)
    assert err.value.status == 400 and fragment in err.value.body["error"]
