"""A stopped EC2 instance: its ECS agent disconnects, its tasks stop, its container instance stays."""

from __future__ import annotations

from typing import Any

import pytest

from shipshape_emulator.client import Emulator


@pytest.fixture
def host(emulator: Emulator, cluster: dict[str, Any]) -> dict[str, Any]:
    """Two tasks on the first instance of the 'web' cluster (one stopped already), one on the second."""
    emulator.ecs.register_task_definition(family="app", containerDefinitions=[{"name": "a", "image": "x", "cpu": 100, "memory": 100}])
    arns = list(cluster["arns"].values())

    def start(arn: str) -> str:
        return emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[arn])["tasks"][0]["taskArn"]

    running, done, other = start(arns[0]), start(arns[0]), start(arns[1])
    emulator.ecs.stop_task(cluster="web", task=done)
    return {**cluster, "running": running, "done": done, "other": other, "ci": arns[0]}


def describe(emulator: Emulator, arn: str) -> dict[str, Any]:
    return emulator.ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]


def test_stopping_the_instance_stops_its_tasks_and_disconnects_its_agent(emulator: Emulator, host: dict) -> None:
    instance = host["instance_ids"][0]
    emulator.ec2.stop_instances(InstanceIds=[instance])
    tasks = {t["taskArn"]: t for t in emulator.ecs.describe_tasks(cluster="web", tasks=[host["running"], host["other"]])["tasks"]}
    assert (tasks[host["running"]]["lastStatus"], tasks[host["running"]]["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert tasks[host["running"]]["stoppedReason"] == f"Host EC2 (instance {instance}) stopped."
    assert tasks[host["other"]]["lastStatus"] == "RUNNING"
    ci = describe(emulator, host["ci"])
    assert (ci["status"], ci["agentConnected"], ci["runningTasksCount"]) == ("ACTIVE", False, 0)
    remaining = {r["name"]: r.get("integerValue") for r in ci["remainingResources"]}
    registered = {r["name"]: r.get("integerValue") for r in ci["registeredResources"]}
    assert remaining == registered
    assert host["ci"] in emulator.ecs.list_container_instances(cluster="web")["containerInstanceArns"]
    [stop] = emulator.stops()
    assert stop["instance_id"] == instance and stop["at"].endswith("Z")
    assert stop["tasks_not_stopped"] == [{"task_arn": host["running"], "last_status": "RUNNING", "group": "family:app"}]


def test_a_disconnected_agent_sees_nothing_of_the_stop(emulator: Emulator, host: dict) -> None:
    emulator.agent(host["ci"], connected=False)
    emulator.ec2.stop_instances(InstanceIds=[host["instance_ids"][0]])
    [task] = emulator.ecs.describe_tasks(cluster="web", tasks=[host["running"]])["tasks"]
    assert task["lastStatus"] == "RUNNING"
    assert emulator.stops()[0]["tasks_not_stopped"] == []


def test_starting_again_leaves_the_agent_to_the_test(emulator: Emulator, host: dict) -> None:
    instance = host["instance_ids"][0]
    emulator.ec2.stop_instances(InstanceIds=[instance])
    emulator.ec2.stop_instances(InstanceIds=[instance])  # already stopped: not a second stop
    emulator.ec2.start_instances(InstanceIds=[instance])
    assert describe(emulator, host["ci"])["agentConnected"] is False
    emulator.agent(host["ci"], connected=True)
    assert describe(emulator, host["ci"])["agentConnected"] is True
    assert len(emulator.stops()) == 1


def test_a_terminated_stopped_instance_keeps_its_container_instance(emulator: Emulator, host: dict) -> None:
    instance = host["instance_ids"][0]
    emulator.ec2.stop_instances(InstanceIds=[instance])
    emulator.ec2.terminate_instances(InstanceIds=[instance])
    # "stopped container instances ... aren't automatically deregistered when terminated"
    assert host["ci"] in emulator.ecs.list_container_instances(cluster="web")["containerInstanceArns"]


def test_reset_clears_the_record(emulator: Emulator, host: dict) -> None:
    emulator.ec2.stop_instances(InstanceIds=[host["instance_ids"][0]])
    emulator.reset()
    assert emulator.stops() == []


def test_a_terminated_instance_cannot_be_started(emulator: Emulator, host: dict) -> None:
    stopped, gone = host["instance_ids"][0], host["instance_ids"][1]
    emulator.ec2.stop_instances(InstanceIds=[stopped])
    emulator.ec2.terminate_instances(InstanceIds=[gone])
    with pytest.raises(Exception) as refused:
        emulator.ec2.start_instances(InstanceIds=[stopped, gone])
    assert "IncorrectInstanceState" in str(refused.value) and gone in str(refused.value)
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in emulator.ec2.describe_instances(InstanceIds=[stopped, gone])["Reservations"]
        for i in r["Instances"]
    }
    assert states == {stopped: "stopped", gone: "terminated"}  # none of them started
