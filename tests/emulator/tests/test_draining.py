"""ECS container instance draining as AWS documents it: replacements first, within the deployment
configuration, resources held until STOPPED, and a stall when nothing can take a task."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from shipshape_emulator.client import Emulator

FULL_CPU, FULL_MEMORY = 4096, 7482  # what moto registers for every container instance


def definition(emulator: Emulator, family: str, cpu: int = 256, memory: int = 512) -> None:
    emulator.ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "x", "cpu": cpu, "memory": memory}])


def start(emulator: Emulator, family: str, instance: str, group: str | None = None) -> str:
    kwargs = {"group": group} if group else {}
    return emulator.ecs.start_task(cluster="web", taskDefinition=family, containerInstances=[instance], **kwargs)["tasks"][0]["taskArn"]


def described(emulator: Emulator, *arns: str) -> dict[str, dict[str, Any]]:
    return {t["taskArn"]: t for t in emulator.ecs.describe_tasks(cluster="web", tasks=list(arns))["tasks"]}


def service_tasks(emulator: Emulator, service: str) -> dict[str, dict[str, Any]]:
    """Every task of a service, running or stopped, described."""
    arns = [a for status in ("RUNNING", "STOPPED")
            for a in emulator.ecs.list_tasks(cluster="web", serviceName=service, desiredStatus=status)["taskArns"]]
    return described(emulator, *arns) if arns else {}


def instance(emulator: Emulator, arn: str) -> dict[str, Any]:
    ci = emulator.ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]
    ci["remaining"] = {r["name"]: r.get("integerValue") for r in ci["remainingResources"] if r["name"] in ("CPU", "MEMORY")}
    return ci


def drain(emulator: Emulator, arn: str) -> None:
    emulator.ecs.update_container_instances_state(cluster="web", containerInstances=[arn], status="DRAINING")


def until(condition: Callable[[], Any], seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_replacement_runs_before_the_old_task_stops_and_resources_are_held_until_stopped(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=100, step_ms=300)  # wide steps, so that polling sees each one
    definition(emulator, "web")
    arns = [cluster["arns"][i] for i in cluster["instance_ids"]]
    old = start(emulator, "web", arns[0], group="service:web")
    alone = start(emulator, "web", arns[0])
    drain(emulator, arns[0])
    seen_pending = held_while_stopping = False
    while True:
        # The instance is read before and after the tasks: a task seen stopping was not STOPPED before
        # (so its resources were held then), and its desired status stays STOPPED after.
        before = instance(emulator, arns[0])
        tasks = service_tasks(emulator, "web")
        after = instance(emulator, arns[0])
        state = tasks[old]["lastStatus"]
        others = [t for arn, t in tasks.items() if arn != old]
        assert len(others) <= 1
        if others:
            new = others[0]
            assert new["containerInstanceArn"] in arns[1:] and new["group"] == "service:web"
            assert new["taskDefinitionArn"] == tasks[old]["taskDefinitionArn"]
            seen_pending |= new["lastStatus"] == "PENDING" and state == "RUNNING"
        if state != "RUNNING":
            # The old task stops only once its replacement runs (minimumHealthyPercent 100).
            assert others and others[0]["lastStatus"] == "RUNNING" and tasks[old]["desiredStatus"] == "STOPPED"
        if state in ("DEACTIVATING", "STOPPING", "DEPROVISIONING"):
            assert after["runningTasksCount"] == 1  # desired STOPPED no longer counts ...
            assert before["remaining"] == {"CPU": FULL_CPU - 512, "MEMORY": FULL_MEMORY - 1024}  # ... but still holds its share
            held_while_stopping = True
        if state == "STOPPED":
            break
        time.sleep(0.02)
    assert seen_pending and held_while_stopping
    assert instance(emulator, arns[0])["remaining"] == {"CPU": FULL_CPU - 256, "MEMORY": FULL_MEMORY - 512}
    assert described(emulator, alone)[alone]["lastStatus"] == "RUNNING"  # standalone tasks stay
    assert instance(emulator, arns[0])["status"] == "DRAINING"


def test_the_replacement_goes_where_most_memory_is_left(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=0)
    definition(emulator, "web")
    definition(emulator, "filler", cpu=0, memory=2000)
    arns = sorted(cluster["arns"].values())
    start(emulator, "filler", arns[1])
    old = start(emulator, "web", arns[0], group="service:web")
    drain(emulator, arns[0])
    tasks = until(lambda: (t := service_tasks(emulator, "web")) and t[old]["lastStatus"] == "STOPPED" and t)
    [new] = [t for arn, t in tasks.items() if arn != old]
    assert new["containerInstanceArn"] == arns[2] and new["lastStatus"] == "RUNNING"


def test_with_no_room_the_task_keeps_running_and_the_service_says_why(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=0)
    definition(emulator, "web")
    definition(emulator, "filler", cpu=0, memory=FULL_MEMORY)
    arns = sorted(cluster["arns"].values())
    fillers = [start(emulator, "filler", a) for a in arns[1:]]
    emulator.ecs.create_service(cluster="web", serviceName="api", taskDefinition="web", desiredCount=1)
    old = start(emulator, "web", arns[0], group="service:api")
    drain(emulator, arns[0])
    for _ in range(3):
        assert list(service_tasks(emulator, "api")) == [old]
        assert described(emulator, old)[old]["lastStatus"] == "RUNNING"
    [event] = emulator.ecs.describe_services(cluster="web", services=["api"])["services"][0]["events"]
    assert event["message"] == "(service api) was unable to place a task because no container instance met all of its requirements."
    [stalled] = emulator.draining_status()["unable_to_place"]
    assert {k: stalled[k] for k in ("service", "cluster", "task")} == {"service": "api", "cluster": "web", "task": old}
    assert stalled["at"].endswith("Z")
    # Room appears: the next request moves the task.
    emulator.ecs.stop_task(cluster="web", task=fillers[1])
    tasks = service_tasks(emulator, "api")
    assert tasks[old]["lastStatus"] == "STOPPED"
    assert [t["containerInstanceArn"] for arn, t in tasks.items() if arn != old] == [arns[2]]


def test_a_lower_minimum_stops_first_and_the_maximum_bounds_the_replacements(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=150)
    definition(emulator, "web")
    arns = sorted(cluster["arns"].values())
    emulator.ecs.create_service(cluster="web", serviceName="api", taskDefinition="web", desiredCount=2,
                                deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100})
    olds = sorted(start(emulator, "web", arns[0], group="service:api") for _ in range(2))
    drain(emulator, arns[0])
    first = service_tasks(emulator, "api")
    assert first[olds[0]]["desiredStatus"] == "STOPPED"  # 50 % lets one stop before its replacement
    assert first[olds[1]]["desiredStatus"] == "RUNNING"  # the other must wait for its own
    while True:
        tasks = service_tasks(emulator, "api")
        active = [t for t in tasks.values() if t["desiredStatus"] == "RUNNING"]
        healthy = [t for t in active if t["lastStatus"] == "RUNNING"]
        assert len(active) <= 2 and len(healthy) >= 1  # maximumPercent 100, minimumHealthyPercent 50
        if all(tasks[o]["lastStatus"] == "STOPPED" for o in olds) and len(healthy) == 2:
            break
        time.sleep(0.02)
    assert len(tasks) == 4 and all(t["containerInstanceArn"] != arns[0] for t in active)


def test_never_stop_tasks_stay_and_others_move(emulator: Emulator, cluster: dict) -> None:
    definition(emulator, "web")
    arns = sorted(cluster["arns"].values())
    stuck, moving = start(emulator, "web", arns[0], group="service:web"), start(emulator, "web", arns[0], group="service:web")
    emulator.draining(stop_after_ms=0, step_ms=0, never_stop=[stuck])
    drain(emulator, arns[0])
    tasks = until(lambda: (t := service_tasks(emulator, "web")) and t[moving]["lastStatus"] == "STOPPED" and t)
    assert (tasks[stuck]["desiredStatus"], tasks[stuck]["lastStatus"]) == ("RUNNING", "RUNNING")
    assert len(tasks) == 3  # one replacement, for the task that moved
    assert instance(emulator, arns[0])["runningTasksCount"] == 1


def test_stop_task_on_a_stopping_task_changes_nothing(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=300)
    definition(emulator, "web")
    arns = sorted(cluster["arns"].values())
    old = start(emulator, "web", arns[0], group="service:web")
    drain(emulator, arns[0])
    until(lambda: described(emulator, old)[old]["lastStatus"] == "DEACTIVATING")
    stopped = emulator.ecs.stop_task(cluster="web", task=old)["task"]
    assert stopped["lastStatus"] == "DEACTIVATING"
    assert instance(emulator, arns[0])["remaining"] == {"CPU": FULL_CPU - 256, "MEMORY": FULL_MEMORY - 512}
    until(lambda: described(emulator, old)[old]["lastStatus"] == "STOPPED")
    assert instance(emulator, arns[0])["remaining"] == {"CPU": FULL_CPU, "MEMORY": FULL_MEMORY}


def test_a_pending_service_task_on_a_draining_instance_stops_at_once(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=2000)
    definition(emulator, "web")
    arns = sorted(cluster["arns"].values())
    old = start(emulator, "web", arns[0], group="service:web")
    drain(emulator, arns[0])
    [pending] = [t for arn, t in service_tasks(emulator, "web").items() if arn != old]
    assert pending["lastStatus"] == "PENDING"
    assert instance(emulator, pending["containerInstanceArn"])["pendingTasksCount"] == 1
    drain(emulator, pending["containerInstanceArn"])
    tasks = service_tasks(emulator, "web")
    assert tasks[pending["taskArn"]]["desiredStatus"] == "STOPPED"
    [again] = [t for arn, t in tasks.items() if arn not in (old, pending["taskArn"])]
    assert again["containerInstanceArn"] not in (arns[0], pending["containerInstanceArn"])
    assert tasks[old]["lastStatus"] == "RUNNING"


def test_a_disconnected_agent_freezes_the_drain(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=0)
    definition(emulator, "web")
    arns = sorted(cluster["arns"].values())
    old = start(emulator, "web", arns[0], group="service:web")
    emulator.agent(arns[0], connected=False)
    drain(emulator, arns[0])
    assert list(service_tasks(emulator, "web")) == [old]
    emulator.agent(arns[0], connected=True)
    assert service_tasks(emulator, "web")[old]["lastStatus"] == "STOPPED"


def test_daemon_tasks_stop_last_and_are_not_replaced(emulator: Emulator, cluster: dict) -> None:
    emulator.draining(stop_after_ms=0, step_ms=100)
    definition(emulator, "web")
    arns = sorted(cluster["arns"].values())
    emulator.ecs.create_service(cluster="web", serviceName="agent", taskDefinition="web", schedulingStrategy="DAEMON")
    daemon = start(emulator, "web", arns[0], group="service:agent")
    replica = start(emulator, "web", arns[0], group="service:web")
    drain(emulator, arns[0])
    while True:
        state = described(emulator, daemon, replica)
        if state[replica]["lastStatus"] != "STOPPED":
            assert state[daemon]["desiredStatus"] == "RUNNING"
        elif state[daemon]["lastStatus"] == "STOPPED":
            break
        time.sleep(0.02)
    assert list(service_tasks(emulator, "agent")) == [daemon]


@pytest.mark.parametrize("strategy, expected", [
    ("REPLICA", {"maximumPercent": 200, "minimumHealthyPercent": 100}),
    ("DAEMON", {"maximumPercent": 100, "minimumHealthyPercent": 0}),
])
def test_describe_services_shows_the_deployment_configuration(emulator: Emulator, cluster: dict, strategy: str, expected: dict) -> None:
    definition(emulator, "web")
    emulator.ecs.create_service(cluster="web", serviceName="s", taskDefinition="web", desiredCount=0, schedulingStrategy=strategy)
    config = emulator.ecs.describe_services(cluster="web", services=["s"])["services"][0]["deploymentConfiguration"]
    assert {k: config[k] for k in expected} == expected


def test_bad_draining_settings_are_refused(emulator: Emulator) -> None:
    from shipshape_emulator.client import ControlError

    for body in ({"never_stop": "arn"}, {"never_stop": [1]}, {"step_ms": -1}, {"stop_after": 1}):
        with pytest.raises(ControlError) as err:
            emulator.control("POST", "/ecs/draining", body)
        assert err.value.status == 400
