"""Launching lifecycle hooks: instances a group launches wait in Pending:Wait for them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import AMI, Emulator

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


@pytest.fixture
def web(emulator: Emulator) -> dict[str, Any]:
    """Group 'web' of 2 (max 6) and a topic 'hooks' feeding a queue; no hooks yet."""
    ids = emulator.group("web", 2)
    emulator.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=6)
    topic, queue = emulator.topic("hooks")
    return {"ids": ids, "topic": topic, "queue": queue}


def put_hook(emulator: Emulator, web: dict[str, Any], transition: str = LAUNCHING, name: str = "boot",
             timeout: int = 300, result: str = "ABANDON") -> None:
    emulator.autoscaling.put_lifecycle_hook(
        LifecycleHookName=name, AutoScalingGroupName="web", LifecycleTransition=transition,
        HeartbeatTimeout=timeout, DefaultResult=result, NotificationTargetARN=web["topic"],
        RoleARN="arn:aws:iam::123456789012:role/hooks", NotificationMetadata="meta",
    )


def messages(emulator: Emulator, web: dict[str, Any]) -> list[dict[str, Any]]:
    """Lifecycle messages received since the last call, test notifications left out."""
    out = emulator.sqs.receive_message(QueueUrl=web["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
    found = [json.loads(json.loads(m["Body"])["Message"]) for m in out.get("Messages", [])]
    return [m for m in found if m.get("Event") != "autoscaling:TEST_NOTIFICATION"]


def group_states(emulator: Emulator, name: str = "web") -> dict[str, str]:
    group = emulator.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def described_state(emulator: Emulator, instance_id: str) -> str | None:
    found = emulator.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return found[0]["LifecycleState"] if found else None


def new_ids(emulator: Emulator, known: list[str]) -> list[str]:
    return [i for i in group_states(emulator) if i not in known]


def complete(emulator: Emulator, instance_id: str, result: str = "CONTINUE", hook: str = "boot") -> None:
    emulator.autoscaling.complete_lifecycle_action(
        LifecycleHookName=hook, AutoScalingGroupName="web", LifecycleActionResult=result, InstanceId=instance_id
    )


def test_a_scale_out_waits_in_pending_wait_and_continue_puts_it_in_service(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web)
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    [new] = new_ids(emulator, web["ids"])
    assert group_states(emulator)[new] == "Pending:Wait"
    assert described_state(emulator, new) == "Pending:Wait"
    [msg] = messages(emulator, web)
    assert {k: msg[k] for k in ("Origin", "Destination", "LifecycleTransition", "EC2InstanceId", "LifecycleHookName",
                                "AutoScalingGroupName", "Service", "NotificationMetadata")} == {
        "Origin": "EC2", "Destination": "AutoScalingGroup", "LifecycleTransition": LAUNCHING, "EC2InstanceId": new,
        "LifecycleHookName": "boot", "AutoScalingGroupName": "web", "Service": "AWS Auto Scaling",
        "NotificationMetadata": "meta",
    }
    assert msg["LifecycleActionToken"] and msg["Time"].endswith("Z")
    [pending] = emulator.lifecycle_actions()["pending"]
    assert (pending["instance_id"], pending["transition"], pending["token"]) == (new, LAUNCHING, msg["LifecycleActionToken"])

    # Waiting instances count toward the desired capacity: asking again launches nothing more.
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    assert len(group_states(emulator)) == 3

    emulator.autoscaling.complete_lifecycle_action(
        LifecycleHookName="boot", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE",
        LifecycleActionToken=msg["LifecycleActionToken"],
    )
    assert group_states(emulator)[new] == "InService"
    [done] = emulator.lifecycle_actions()["finished"]
    assert {k: done[k] for k in ("instance_id", "transition", "result", "how")} == {
        "instance_id": new, "transition": LAUNCHING, "result": "CONTINUE", "how": "completed"}
    assert emulator.terminations() == []


def test_abandon_terminates_the_instance_and_the_replacement_waits_again(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web)
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    [first] = new_ids(emulator, web["ids"])
    messages(emulator, web)
    complete(emulator, first, "ABANDON")
    [replacement] = new_ids(emulator, web["ids"])
    assert replacement != first
    assert group_states(emulator)[replacement] == "Pending:Wait"
    assert described_state(emulator, first) is None
    state = emulator.ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"
    [record] = emulator.terminations()
    assert (record["instance_id"], record["how"], record["result"], record["group"]) == (first, "lifecycle-abandoned", "ABANDON", "web")
    [msg] = messages(emulator, web)
    assert msg["EC2InstanceId"] == replacement and msg["LifecycleTransition"] == LAUNCHING
    assert emulator.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 3


def test_the_default_result_applies_when_the_heartbeat_times_out(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web, timeout=60, result="CONTINUE")
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=4)
    waiting = new_ids(emulator, web["ids"])
    assert len(waiting) == 2
    emulator.advance_lifecycle(30)
    emulator.autoscaling.record_lifecycle_action_heartbeat(LifecycleHookName="boot", AutoScalingGroupName="web", InstanceId=waiting[0])
    emulator.advance_lifecycle(40)
    states = group_states(emulator)
    assert (states[waiting[0]], states[waiting[1]]) == ("Pending:Wait", "InService")
    assert [(f["instance_id"], f["how"], f["result"]) for f in emulator.lifecycle_actions()["finished"]] == [
        (waiting[1], "timed-out", "CONTINUE")]


def test_an_abandoning_timeout_terminates_and_replaces(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web, timeout=60, result="ABANDON")
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    [first] = new_ids(emulator, web["ids"])
    emulator.advance_lifecycle(61)
    [second] = new_ids(emulator, web["ids"])
    assert second != first and group_states(emulator)[second] == "Pending:Wait"
    assert [(t["instance_id"], t["how"]) for t in emulator.terminations()] == [(first, "lifecycle-abandoned")]


def test_a_late_launch_message_and_its_deadlines(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web, timeout=60)
    emulator.lifecycle_started_ago(50)
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    [pending] = emulator.lifecycle_actions()["pending"]
    assert 9 <= pending["heartbeat_left"] <= 10 and pending["transition"] == LAUNCHING


def test_a_replacement_after_terminate_without_decrement_waits_for_the_launch_hook(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web)
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=web["ids"][0], ShouldDecrementDesiredCapacity=False)
    [replacement] = new_ids(emulator, web["ids"])
    assert group_states(emulator)[replacement] == "Pending:Wait"
    assert web["ids"][0] not in group_states(emulator)


def test_with_both_hooks_the_replacement_launches_once_the_terminating_action_ends(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web)
    put_hook(emulator, web, transition=TERMINATING, name="drain")
    victim = web["ids"][0]
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    assert group_states(emulator)[victim] == "Terminating:Wait" and len(group_states(emulator)) == 2
    complete(emulator, victim, "CONTINUE", hook="drain")
    [replacement] = new_ids(emulator, web["ids"])
    assert group_states(emulator)[replacement] == "Pending:Wait"
    assert [m["LifecycleTransition"] for m in messages(emulator, web)] == [TERMINATING, LAUNCHING]


def test_ec2_terminate_instances_replaces_through_the_launch_hook(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web)
    emulator.ec2.terminate_instances(InstanceIds=[web["ids"][1]])
    [replacement] = new_ids(emulator, web["ids"])
    assert group_states(emulator)[replacement] == "Pending:Wait"


def test_a_scale_in_goes_through_the_terminating_hook(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web, transition=TERMINATING, name="drain")
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    states = group_states(emulator)
    [leaving] = [i for i, s in states.items() if s == "Terminating:Wait"]
    [msg] = messages(emulator, web)
    assert (msg["EC2InstanceId"], msg["Origin"], msg["Destination"], msg["LifecycleTransition"]) == (
        leaving, "AutoScalingGroup", "EC2", TERMINATING)
    assert emulator.terminations() == []
    complete(emulator, leaving, "CONTINUE", hook="drain")
    assert len(group_states(emulator)) == 1 and leaving not in group_states(emulator)
    [record] = emulator.terminations()
    assert (record["instance_id"], record["how"]) == (leaving, "lifecycle-completed")


def test_a_scale_in_without_a_hook_terminates_at_once(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    assert len(group_states(emulator)) == 1
    assert [t["how"] for t in emulator.terminations()] == ["direct"]


def test_protected_instances_stay_on_scale_in(emulator: Emulator, web: dict) -> None:
    emulator.autoscaling.set_instance_protection(AutoScalingGroupName="web", InstanceIds=[web["ids"][0]], ProtectedFromScaleIn=True)
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    assert list(group_states(emulator)) == [web["ids"][0]]


def test_hooks_given_at_creation_apply_to_the_first_instances(emulator: Emulator) -> None:
    topic, queue = emulator.topic("boot")
    emulator.autoscaling.create_launch_configuration(LaunchConfigurationName="lc", ImageId=AMI, InstanceType="m5.large")
    emulator.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="fresh", LaunchConfigurationName="lc", MinSize=2, MaxSize=4,
        AvailabilityZones=["us-east-1a"],
        LifecycleHookSpecificationList=[{
            "LifecycleHookName": "boot", "LifecycleTransition": LAUNCHING, "HeartbeatTimeout": 120,
            "DefaultResult": "CONTINUE", "NotificationTargetARN": topic, "RoleARN": "arn:aws:iam::123456789012:role/hooks",
        }],
    )
    assert set(group_states(emulator, "fresh").values()) == {"Pending:Wait"} and len(group_states(emulator, "fresh")) == 2
    [hook] = emulator.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="fresh")["LifecycleHooks"]
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"], hook["NotificationTargetARN"]) == (120, "CONTINUE", topic)
    out = emulator.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    kinds = sorted(json.loads(json.loads(m["Body"])["Message"]).get("LifecycleTransition", "test") for m in out)
    assert kinds == [LAUNCHING, LAUNCHING, "test"]


def test_a_bad_hook_specification_creates_no_group(emulator: Emulator) -> None:
    emulator.autoscaling.create_launch_configuration(LaunchConfigurationName="lc", ImageId=AMI, InstanceType="m5.large")
    with pytest.raises(ClientError, match="HeartbeatTimeout"):
        emulator.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="bad", LaunchConfigurationName="lc", MinSize=1, MaxSize=2, AvailabilityZones=["us-east-1a"],
            LifecycleHookSpecificationList=[{"LifecycleHookName": "x", "LifecycleTransition": LAUNCHING, "HeartbeatTimeout": 5}],
        )
    assert emulator.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["bad"])["AutoScalingGroups"] == []
    assert emulator.ec2.describe_instances()["Reservations"] == []


def test_deleting_the_group_ends_its_pending_actions(emulator: Emulator, web: dict) -> None:
    put_hook(emulator, web)
    put_hook(emulator, web, transition=TERMINATING, name="drain")
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=3)
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=web["ids"][0], ShouldDecrementDesiredCapacity=True)
    assert len(emulator.lifecycle_actions()["pending"]) == 2
    emulator.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    assert emulator.lifecycle_actions()["pending"] == []
    running = [i for r in emulator.ec2.describe_instances()["Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    assert running == []
