"""Warm pools: instances launched into the pool, taken from it on scale-out, returned to it on scale-in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from shipshape_emulator.client import Emulator

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


@pytest.fixture
def web(emulator: Emulator) -> dict[str, Any]:
    """Group 'web' of 2 instances (max 4) registered in cluster 'web', and a topic 'hooks' feeding a queue."""
    ids = emulator.group("web", 2)
    emulator.ecs.create_cluster(clusterName="web")
    arns = {i: emulator.register("web", i) for i in ids}
    topic, queue = emulator.topic("hooks")
    return {"ids": ids, "arns": arns, "topic": topic, "queue": queue}


def hook(emulator: Emulator, web: dict[str, Any], transition: str, name: str, result: str = "CONTINUE") -> None:
    emulator.autoscaling.put_lifecycle_hook(
        LifecycleHookName=name, AutoScalingGroupName="web", LifecycleTransition=transition, HeartbeatTimeout=300,
        DefaultResult=result, NotificationTargetARN=web["topic"], RoleARN="arn:aws:iam::123456789012:role/hooks",
    )


def messages(emulator: Emulator, web: dict[str, Any]) -> list[dict[str, Any]]:
    out = emulator.sqs.receive_message(QueueUrl=web["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
    found = [json.loads(json.loads(m["Body"])["Message"]) for m in out.get("Messages", [])]
    return [m for m in found if m.get("Event") != "autoscaling:TEST_NOTIFICATION"]


def pool(emulator: Emulator) -> dict[str, str]:
    described = emulator.autoscaling.describe_warm_pool(AutoScalingGroupName="web")
    return {i["InstanceId"]: i["LifecycleState"] for i in described["Instances"]}


def in_group(emulator: Emulator) -> dict[str, str]:
    group = emulator.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def ec2_state(emulator: Emulator, instance_id: str) -> str:
    return emulator.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def complete(emulator: Emulator, instance_id: str, hook_name: str, result: str = "CONTINUE") -> None:
    emulator.autoscaling.complete_lifecycle_action(
        LifecycleHookName=hook_name, AutoScalingGroupName="web", LifecycleActionResult=result, InstanceId=instance_id
    )


def test_a_new_pool_fills_to_max_minus_desired_with_stopped_instances(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web")
    warm = pool(emulator)
    assert len(warm) == 2 and set(warm.values()) == {"Warmed:Stopped"}
    assert {ec2_state(emulator, i) for i in warm} == {"stopped"}
    assert set(in_group(emulator)) == set(web["ids"])  # pool instances are not the group's
    described = emulator.autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    assert {i["InstanceId"]: i["LifecycleState"] for i in described if i["InstanceId"] in warm} == warm
    group = emulator.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert group["WarmPoolSize"] == 2 and group["WarmPoolConfiguration"]["PoolState"] == "Stopped"


def test_a_new_maximum_resizes_the_pool(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web")
    emulator.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=5)
    assert len(pool(emulator)) == 3
    emulator.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=3)
    assert len(pool(emulator)) == 1


@pytest.mark.parametrize("settings, size", [
    ({"MinSize": 3}, 3),
    ({"MaxGroupPreparedCapacity": 3}, 1),
    ({"MaxGroupPreparedCapacity": 1}, 0),
    ({"MaxGroupPreparedCapacity": 1, "MinSize": 1}, 1),
    ({"MaxGroupPreparedCapacity": -1}, 2),
])
def test_the_pool_size(emulator: Emulator, web: dict, settings: dict, size: int) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", **settings)
    assert len(pool(emulator)) == size


def test_running_pool_state_keeps_instances_running(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", PoolState="Running", MaxGroupPreparedCapacity=3)
    [(instance, state)] = pool(emulator).items()
    assert (state, ec2_state(emulator, instance)) == ("Warmed:Running", "running")


def test_with_a_launch_hook_instances_enter_the_pool_through_warmed_pending_wait(emulator: Emulator, web: dict) -> None:
    hook(emulator, web, LAUNCHING, "boot")
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", PoolState="Hibernated", MaxGroupPreparedCapacity=3)
    [(instance, state)] = pool(emulator).items()
    assert state == "Warmed:Pending:Wait" and ec2_state(emulator, instance) == "running"
    [msg] = messages(emulator, web)
    assert (msg["EC2InstanceId"], msg["LifecycleTransition"], msg["Origin"], msg["Destination"]) == (
        instance, LAUNCHING, "EC2", "WarmPool")
    complete(emulator, instance, "boot")
    assert pool(emulator) == {instance: "Warmed:Hibernated"} and ec2_state(emulator, instance) == "stopped"


def test_an_abandoned_warm_launch_is_terminated_and_replaced(emulator: Emulator, web: dict) -> None:
    hook(emulator, web, LAUNCHING, "boot")
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=3)
    [first] = pool(emulator)
    complete(emulator, first, "boot", "ABANDON")
    [second] = pool(emulator)
    assert second != first and pool(emulator)[second] == "Warmed:Pending:Wait"
    assert ec2_state(emulator, first) == "terminated"
    assert [(t["instance_id"], t["how"]) for t in emulator.terminations()] == [(first, "lifecycle-abandoned")]


def test_a_scale_out_takes_from_the_pool_through_the_launch_hook(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web")
    warm = list(pool(emulator))
    hook(emulator, web, LAUNCHING, "boot")
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    states = in_group(emulator)
    [taken] = [i for i in states if i not in web["ids"]]
    assert taken in warm and states[taken] == "Pending:Wait" and ec2_state(emulator, taken) == "running"
    [msg] = messages(emulator, web)
    assert (msg["EC2InstanceId"], msg["Origin"], msg["Destination"]) == (taken, "WarmPool", "AutoScalingGroup")
    assert taken not in pool(emulator) and len(pool(emulator)) == 1  # max 4 - desired 3
    complete(emulator, taken, "boot")
    assert in_group(emulator)[taken] == "InService"


def test_a_depleted_pool_launches_directly_into_the_group(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=3)
    [warm] = pool(emulator)
    hook(emulator, web, LAUNCHING, "boot")
    emulator.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=5, DesiredCapacity=4)
    new = [i for i in in_group(emulator) if i not in web["ids"]]
    assert warm in new and len(new) == 2
    origins = {m["EC2InstanceId"]: m["Origin"] for m in messages(emulator, web)}
    assert origins[warm] == "WarmPool" and {o for i, o in origins.items() if i != warm} == {"EC2"}


def test_instances_still_warming_do_not_leave_the_pool(emulator: Emulator, web: dict) -> None:
    hook(emulator, web, LAUNCHING, "boot")
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=3)
    [warming] = pool(emulator)
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    assert warming not in in_group(emulator) and pool(emulator)[warming] == "Warmed:Pending:Wait"


def test_reuse_on_scale_in_returns_the_instance_through_warmed_pending_wait(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MinSize=0, MaxGroupPreparedCapacity=2,
                                       InstanceReusePolicy={"ReuseOnScaleIn": True})
    assert pool(emulator) == {}
    hook(emulator, web, TERMINATING, "drain")
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    [(leaving, state)] = pool(emulator).items()
    assert state == "Warmed:Pending:Wait" and leaving in web["ids"]
    assert leaving not in in_group(emulator)
    assert emulator.autoscaling.describe_auto_scaling_instances(InstanceIds=[leaving])["AutoScalingInstances"][0][
        "LifecycleState"] == "Warmed:Pending:Wait"
    [msg] = messages(emulator, web)
    assert (msg["EC2InstanceId"], msg["LifecycleTransition"], msg["Origin"], msg["Destination"]) == (
        leaving, TERMINATING, "AutoScalingGroup", "WarmPool")
    complete(emulator, leaving, "drain")
    assert pool(emulator) == {leaving: "Warmed:Stopped"}
    assert ec2_state(emulator, leaving) == "stopped"
    assert emulator.terminations() == []
    # Its container instance stays registered, its agent disconnected.
    ci = emulator.ecs.describe_container_instances(cluster="web", containerInstances=[web["arns"][leaving]])["containerInstances"][0]
    assert (ci["status"], ci["agentConnected"]) == ("ACTIVE", False)
    assert [s["instance_id"] for s in emulator.control("GET", "/stops")] == [leaving]


def test_reuse_on_scale_in_without_a_hook_stops_the_instance_at_once(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=2,
                                       InstanceReusePolicy={"ReuseOnScaleIn": True})
    emulator.ecs.register_task_definition(family="app", containerDefinitions=[{"name": "a", "image": "x", "cpu": 10, "memory": 10}])
    arns = list(web["arns"].values())
    tasks = [emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[a])["tasks"][0]["taskArn"] for a in arns]
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    [(leaving, state)] = pool(emulator).items()
    assert state == "Warmed:Stopped" and ec2_state(emulator, leaving) == "stopped"
    [stop] = emulator.control("GET", "/stops")
    [task] = [t for t, a in zip(tasks, arns) if a == web["arns"][leaving]]
    assert stop["instance_id"] == leaving and [t["task_arn"] for t in stop["tasks_not_stopped"]] == [task]
    described = emulator.ecs.describe_tasks(cluster="web", tasks=[task])["tasks"][0]
    assert (described["lastStatus"], described["stoppedReason"]) == ("STOPPED", f"Host EC2 (instance {leaving}) stopped.")
    ci = emulator.ecs.describe_container_instances(cluster="web", containerInstances=[web["arns"][leaving]])["containerInstances"][0]
    assert (ci["agentConnected"], ci["runningTasksCount"]) == (False, 0)


def test_a_returned_instance_serves_the_next_scale_out_and_its_agent_waits_for_the_test(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=2,
                                       InstanceReusePolicy={"ReuseOnScaleIn": True})
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    [back] = pool(emulator)
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=2)
    assert in_group(emulator)[back] == "InService" and ec2_state(emulator, back) == "running"
    arn = web["arns"][back]
    ci = emulator.ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]
    assert ci["agentConnected"] is False
    emulator.agent(arn, connected=True)
    ci = emulator.ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]
    assert ci["agentConnected"] is True


def test_terminate_in_group_still_terminates_with_reuse(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=2,
                                       InstanceReusePolicy={"ReuseOnScaleIn": True})
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=web["ids"][0], ShouldDecrementDesiredCapacity=True)
    assert ec2_state(emulator, web["ids"][0]) == "terminated"
    assert web["ids"][0] not in pool(emulator)


def test_terminating_a_warm_instance_launches_another(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web")
    first, second = pool(emulator)
    activity = emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=False)
    assert activity["Activity"]["Description"] == f"Terminating EC2 instance: {first}"
    emulator.ec2.terminate_instances(InstanceIds=[second])
    warm = pool(emulator)
    assert len(warm) == 2 and first not in warm and second not in warm
    assert {ec2_state(emulator, i) for i in (first, second)} == {"terminated"}


def test_delete_warm_pool_terminates_its_instances(emulator: Emulator, web: dict) -> None:
    hook(emulator, web, LAUNCHING, "boot")
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web")
    warm = list(pool(emulator))
    assert len(emulator.lifecycle_actions()["pending"]) == 2
    emulator.autoscaling.delete_warm_pool(AutoScalingGroupName="web", ForceDelete=True)
    assert emulator.lifecycle_actions()["pending"] == []
    assert {ec2_state(emulator, i) for i in warm} == {"terminated"}
    described = emulator.autoscaling.describe_warm_pool(AutoScalingGroupName="web")
    assert described["Instances"] == [] and "WarmPoolConfiguration" not in described


def test_describe_warm_pool_pages(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=10)
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web")
    first = emulator.autoscaling.describe_warm_pool(AutoScalingGroupName="web", MaxRecords=5)
    rest = emulator.autoscaling.describe_warm_pool(AutoScalingGroupName="web", MaxRecords=5, NextToken=first["NextToken"])
    assert len(first["Instances"]) == 5 and len(rest["Instances"]) == 3 and "NextToken" not in rest
    with pytest.raises(ClientError, match="maxRecords"):
        emulator.autoscaling.describe_warm_pool(AutoScalingGroupName="web", MaxRecords=51)


@pytest.mark.parametrize("settings, fragment", [
    ({"PoolState": "Frozen"}, "poolState"),
    ({"MinSize": -1}, "minSize"),
    ({"MaxGroupPreparedCapacity": -2}, "maxGroupPreparedCapacity"),
])
def test_put_warm_pool_validates(emulator: Emulator, web: dict, settings: dict, fragment: str) -> None:
    unchecked = emulator.client("autoscaling", Config(parameter_validation=False))  # as an SDK that sends anything
    with pytest.raises(ClientError, match=fragment):
        unchecked.put_warm_pool(AutoScalingGroupName="web", **settings)


def test_a_warm_pool_needs_a_group(emulator: Emulator) -> None:
    with pytest.raises(ClientError) as err:
        emulator.autoscaling.put_warm_pool(AutoScalingGroupName="nope")
    assert err.value.response["Error"]["Code"] == "ValidationError"
