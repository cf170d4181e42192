"""Task scale-in protection, and service deployments with their rollout state."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import ControlError, Emulator


def test_task_protection_for_service_tasks_only_until_it_expires(emulator: Emulator, cluster: dict) -> None:
    ecs = emulator.ecs
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}])
    arn = list(cluster["arns"].values())[0]
    service = ecs.start_task(cluster="web", taskDefinition="web", containerInstances=[arn], group="service:api")["tasks"][0]["taskArn"]
    standalone = ecs.start_task(cluster="web", taskDefinition="web", containerInstances=[arn])["tasks"][0]["taskArn"]

    out = ecs.update_task_protection(cluster="web", tasks=[service, standalone, "nope"], protectionEnabled=True, expiresInMinutes=60)
    assert [p["taskArn"] for p in out["protectedTasks"]] == [service]
    assert {f["reason"] for f in out["failures"]} == {"TASK_NOT_VALID", "MISSING"}
    got = ecs.get_task_protection(cluster="web", tasks=[service, standalone])["protectedTasks"]
    assert {p["taskArn"]: p["protectionEnabled"] for p in got} == {service: True, standalone: False}
    assert "expirationDate" in got[0]

    ecs.update_task_protection(cluster="web", tasks=[service], protectionEnabled=False)
    assert not ecs.get_task_protection(cluster="web", tasks=[service])["protectedTasks"][0]["protectionEnabled"]


@pytest.mark.parametrize("call, kwargs, fragment", [
    ("update_task_protection", {"tasks": [f"t{i}" for i in range(11)], "protectionEnabled": True}, "at most 10"),
    ("update_task_protection", {"tasks": ["t"], "protectionEnabled": True, "expiresInMinutes": 2881}, "2880"),
    ("get_task_protection", {"tasks": [f"t{i}" for i in range(101)]}, "at most 100"),
])
def test_protection_limits(emulator: Emulator, cluster: dict, call: str, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ClientError) as err:
        getattr(emulator.ecs, call)(cluster="web", **kwargs)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert fragment in err.value.response["Error"]["Message"]


def rollout(emulator: Emulator) -> list[tuple[str, str]]:
    service = emulator.ecs.describe_services(cluster="web", services=["api"])["services"][0]
    return [(d["status"], d["rolloutState"]) for d in service["deployments"]]


def test_deployments_roll_out_and_complete(emulator: Emulator, cluster: dict) -> None:
    ecs = emulator.ecs
    for family in ("web", "web2"):
        ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}])
    ecs.create_service(cluster="web", serviceName="api", taskDefinition="web", desiredCount=3)
    assert rollout(emulator) == [("PRIMARY", "COMPLETED")], "0 ms by default: done by the next request"

    emulator.control("POST", "/ecs/deployments", {"rollout_ms": 300})
    ecs.update_service(cluster="web", service="api", taskDefinition="web2")
    assert rollout(emulator) == [("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")]
    time.sleep(0.35)
    assert rollout(emulator) == [("PRIMARY", "COMPLETED")]

    emulator.control("POST", "/ecs/deployments", {"rollout_ms": None})
    ecs.update_service(cluster="web", service="api", forceNewDeployment=True)
    ecs.update_service(cluster="web", service="api", desiredCount=4)  # no new deployment
    assert rollout(emulator) == [("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")]
    assert len(emulator.control("GET", "/ecs/deployments")["in_progress"]) == 1


def test_describe_services_takes_ten(emulator: Emulator, cluster: dict) -> None:
    with pytest.raises(ClientError) as err:
        emulator.ecs.describe_services(cluster="web", services=[f"s{i}" for i in range(11)])
    assert "at most 10" in err.value.response["Error"]["Message"]
    with pytest.raises(ControlError):
        emulator.control("POST", "/ecs/deployments", {"rollout_ms": -1})


def test_a_service_counts_its_running_and_pending_tasks(emulator: Emulator, cluster: dict) -> None:
    ecs = emulator.ecs
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}])
    ecs.register_task_definition(family="big", containerDefinitions=[{"name": "a", "image": "x", "cpu": 0, "memory": 7482}])
    ecs.create_service(cluster="web", serviceName="api", taskDefinition="web", desiredCount=2,
                       deploymentConfiguration={"minimumHealthyPercent": 0, "maximumPercent": 100})
    counts = lambda: [(s["desiredCount"], s["runningCount"], s["pendingCount"])  # noqa: E731
                      for s in ecs.describe_services(cluster="web", services=["api"])["services"]]
    assert counts() == [(2, 0, 0)], "moto's own counts come from an environment variable"
    first, second, third = cluster["arns"].values()
    for arn in (first, second):
        ecs.start_task(cluster="web", taskDefinition="web", containerInstances=[arn], group="service:api")
    assert counts() == [(2, 2, 0)]
    # The other instances are full: a drained task is stopped first (minimumHealthyPercent 0) and its
    # replacement cannot be placed, so the service runs one task short.
    for arn in (second, third):
        ecs.start_task(cluster="web", taskDefinition="big", containerInstances=[arn])
    emulator.draining(stop_after_ms=0, step_ms=0)
    ecs.update_container_instances_state(cluster="web", containerInstances=[first], status="DRAINING")
    assert counts() == [(2, 1, 0)]
