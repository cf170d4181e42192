"""The termination record: every EC2 instance terminated, how, and the ECS tasks it took down."""

from __future__ import annotations

from typing import Any

import pytest

from shipshape_emulator.client import AMI, Emulator


@pytest.fixture
def fleet(emulator: Emulator) -> dict[str, Any]:
    """Group 'web' of 3 instances registered in cluster 'web', a service task and a standalone task on the first."""
    ids = emulator.group("web", 3)
    emulator.ecs.create_cluster(clusterName="web")
    arns = [emulator.register("web", i) for i in ids]
    emulator.ecs.register_task_definition(family="app", containerDefinitions=[{"name": "a", "image": "x", "cpu": 10, "memory": 10}])
    service = emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[arns[0]], group="service:api")["tasks"][0]["taskArn"]
    alone = emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[arns[0]])["tasks"][0]["taskArn"]
    return {"ids": ids, "arns": arns, "service": service, "alone": alone}


def hook(emulator: Emulator, timeout: int = 300, result: str = "ABANDON") -> None:
    emulator.autoscaling.put_lifecycle_hook(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=timeout, DefaultResult=result,
    )


def tasks(emulator: Emulator, *arns: str) -> dict[str, tuple[str, str]]:
    described = emulator.ecs.describe_tasks(cluster="web", tasks=list(arns))["tasks"]
    return {t["taskArn"]: (t["lastStatus"], t.get("stoppedReason", "")) for t in described}


def test_a_completed_lifecycle_action_records_the_tasks_left_running(emulator: Emulator, fleet: dict) -> None:
    hook(emulator)
    victim = fleet["ids"][0]
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert emulator.terminations() == []  # waiting for the hook: nothing terminated yet
    emulator.autoscaling.complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE", InstanceId=victim
    )
    [entry] = emulator.terminations()
    assert entry["at"].endswith("Z")
    assert {k: v for k, v in entry.items() if k not in ("at", "tasks_not_stopped")} == {
        "instance_id": victim, "how": "lifecycle-completed", "result": "CONTINUE", "group": "web",
    }
    assert sorted(entry["tasks_not_stopped"], key=lambda t: t["group"]) == [
        {"task_arn": fleet["alone"], "last_status": "RUNNING", "group": "family:app"},
        {"task_arn": fleet["service"], "last_status": "RUNNING", "group": "service:api"},
    ]
    # The host is gone: its tasks stopped and its container instance left the cluster.
    assert tasks(emulator, fleet["service"], fleet["alone"]) == {
        arn: ("STOPPED", f"Host EC2 (instance {victim}) terminated.") for arn in (fleet["service"], fleet["alone"])
    }
    assert fleet["arns"][0] not in emulator.ecs.list_container_instances(cluster="web")["containerInstanceArns"]


def test_a_timed_out_action_records_the_default_result(emulator: Emulator, fleet: dict) -> None:
    hook(emulator, timeout=60, result="ABANDON")
    emulator.ecs.stop_task(cluster="web", task=fleet["service"])
    emulator.ecs.stop_task(cluster="web", task=fleet["alone"])
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=fleet["ids"][0], ShouldDecrementDesiredCapacity=False)
    emulator.advance_lifecycle(61)
    [entry] = emulator.terminations()
    assert (entry["how"], entry["result"], entry["group"], entry["tasks_not_stopped"]) == ("lifecycle-timed-out", "ABANDON", "web", [])


def test_terminating_without_a_hook_is_direct(emulator: Emulator, fleet: dict) -> None:
    victim = fleet["ids"][1]
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    [entry] = emulator.terminations()
    assert (entry["instance_id"], entry["how"], entry["result"], entry["group"], entry["tasks_not_stopped"]) == (
        victim, "direct", None, "web", [])


def test_ec2_terminate_instances_is_recorded_once(emulator: Emulator, fleet: dict) -> None:
    [loose] = [i["InstanceId"] for i in emulator.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"]]
    emulator.ec2.terminate_instances(InstanceIds=[loose, fleet["ids"][0]])
    emulator.ec2.terminate_instances(InstanceIds=[loose])
    entries = {e["instance_id"]: e for e in emulator.terminations()}
    assert set(entries) == {loose, fleet["ids"][0]}
    assert (entries[loose]["how"], entries[loose]["group"], entries[loose]["tasks_not_stopped"]) == ("direct", None, [])
    assert entries[fleet["ids"][0]]["group"] == "web"
    assert len(entries[fleet["ids"][0]]["tasks_not_stopped"]) == 2


def test_a_disconnected_agent_keeps_its_container_instance_and_tasks(emulator: Emulator, fleet: dict) -> None:
    emulator.agent(fleet["arns"][0], connected=False)
    emulator.ec2.terminate_instances(InstanceIds=[fleet["ids"][0]])
    [entry] = emulator.terminations()
    assert len(entry["tasks_not_stopped"]) == 2
    # "instances with disconnected agents aren't automatically deregistered when terminated"
    assert fleet["arns"][0] in emulator.ecs.list_container_instances(cluster="web")["containerInstanceArns"]
    assert {s for s, _ in tasks(emulator, fleet["service"], fleet["alone"]).values()} == {"RUNNING"}


def test_reset_clears_the_record(emulator: Emulator, fleet: dict) -> None:
    emulator.ec2.terminate_instances(InstanceIds=[fleet["ids"][2]])
    assert len(emulator.terminations()) == 1
    emulator.reset()
    assert emulator.terminations() == []


def test_ec2_forgets_a_terminated_instance_and_every_request_naming_it_fails(emulator: Emulator) -> None:
    ids = emulator.group("old", 2)
    with pytest.raises(Exception) as refused:
        emulator.control("POST", "/ec2/forget", {"instance_id": ids[0]})
    assert "not terminated" in str(refused.value)
    emulator.ec2.terminate_instances(InstanceIds=[ids[0]])
    emulator.control("POST", "/ec2/forget", {"instance_id": ids[0]})
    for call in (emulator.ec2.describe_instances, emulator.ec2.describe_instance_status):
        with pytest.raises(Exception) as gone:
            call(InstanceIds=[ids[1], ids[0]])
        assert "InvalidInstanceID.NotFound" in str(gone.value)
    assert emulator.ec2.describe_instance_status(InstanceIds=[ids[1]])["InstanceStatuses"][0]["InstanceId"] == ids[1]
