"""Lifecycle hooks and ECS draining, as the emulator extends moto."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import AMI, Emulator

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


@pytest.fixture
def hooked(emulator: Emulator) -> dict[str, Any]:
    """A group of 3 with a terminating hook whose SNS topic feeds an SQS queue."""
    asg, sqs = emulator.client("autoscaling"), emulator.client("sqs")
    topic, queue = emulator.topic("hooks")
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=AMI, InstanceType="m5.large")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchConfigurationName="lc", MinSize=0, MaxSize=5, DesiredCapacity=3,
        AvailabilityZones=["us-east-1a"],
    )
    ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]
    return {"asg": asg, "sqs": sqs, "queue": queue, "topic": topic, "ids": ids}


def put_hook(h: dict[str, Any], timeout: int = 300, result: str = "ABANDON") -> None:
    h["asg"].put_lifecycle_hook(
        LifecycleHookName="drain", AutoScalingGroupName="web",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=timeout,
        DefaultResult=result, NotificationTargetARN=h["topic"],
        RoleARN="arn:aws:iam::123456789012:role/hooks",
    )


def messages(h: dict[str, Any]) -> list[dict[str, Any]]:
    out = h["sqs"].receive_message(QueueUrl=h["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(json.loads(m["Body"])["Message"]) for m in out.get("Messages", [])]


def lifecycle_state(h: dict[str, Any], instance_id: str) -> str | None:
    found = h["asg"].describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return found[0]["LifecycleState"] if found else None


def finished(emulator: Emulator) -> list[dict[str, Any]]:
    """The finished lifecycle actions, each checked for its ISO time ``at`` and shown without it."""
    out = []
    for entry in emulator.lifecycle_actions()["finished"]:
        entry = dict(entry)
        assert entry.pop("at").endswith("Z")
        out.append(entry)
    return out


def desired(h: dict[str, Any]) -> int:
    return h["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]["DesiredCapacity"]


def test_hook_keeps_its_target_and_sends_a_test_notification(hooked):
    put_hook(hooked)
    hook = hooked["asg"].describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"][0]
    assert hook["NotificationTargetARN"] == hooked["topic"]
    assert hook["RoleARN"] == "arn:aws:iam::123456789012:role/hooks"
    assert hook["HeartbeatTimeout"] == 300
    assert hook["GlobalTimeout"] == 30000
    [test] = messages(hooked)
    assert test["Event"] == "autoscaling:TEST_NOTIFICATION"
    assert test["AutoScalingGroupName"] == "web"


def test_hook_validation(hooked):
    with pytest.raises(ClientError, match="HeartbeatTimeout"):
        put_hook(hooked, timeout=10)
    with pytest.raises(ClientError, match="No AutoScalingGroup"):
        hooked["asg"].put_lifecycle_hook(
            LifecycleHookName="x", AutoScalingGroupName="nope", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING"
        )


def test_terminate_waits_for_the_hook_then_completes_by_token(hooked, emulator):
    put_hook(hooked)
    messages(hooked)  # the test notification
    victim = hooked["ids"][0]
    activity = hooked["asg"].terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert activity["Activity"]["StatusCode"] == "InProgress"
    assert lifecycle_state(hooked, victim) == "Terminating:Wait"
    assert desired(hooked) == 2
    [msg] = messages(hooked)
    assert msg["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert msg["EC2InstanceId"] == victim and msg["LifecycleHookName"] == "drain"
    assert msg["AutoScalingGroupName"] == "web" and msg["Origin"] == "AutoScalingGroup"

    hooked["asg"].complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE",
        LifecycleActionToken=msg["LifecycleActionToken"], InstanceId=victim,
    )
    assert lifecycle_state(hooked, victim) is None
    ec2 = emulator.client("ec2")
    state = ec2.describe_instances(InstanceIds=[victim])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"
    assert desired(hooked) == 2
    assert len(hooked["asg"].describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]) == 2
    assert finished(emulator) == [{"instance_id": victim, "group": "web", "hook": "drain", "transition": TERMINATING, "result": "CONTINUE", "how": "completed"}]

    with pytest.raises(ClientError, match="No active Lifecycle Action found"):
        hooked["asg"].complete_lifecycle_action(
            LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE", InstanceId=victim
        )


def test_complete_by_instance_id_and_wrong_hook(hooked):
    put_hook(hooked)
    victim = hooked["ids"][1]
    hooked["asg"].terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    with pytest.raises(ClientError, match="No active Lifecycle Action found"):
        hooked["asg"].complete_lifecycle_action(
            LifecycleHookName="other", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE", InstanceId=victim
        )
    hooked["asg"].complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="ABANDON", InstanceId=victim
    )
    assert lifecycle_state(hooked, victim) is None
    # Not decremented: the group replaces the instance.
    assert len(hooked["asg"].describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]) == 3


def test_heartbeat_timeout_applies_the_default_result(hooked, emulator):
    emulator.min_heartbeat_timeout(1)
    put_hook(hooked, timeout=1, result="CONTINUE")
    kept, dropped = hooked["ids"][0], hooked["ids"][1]
    for victim in (kept, dropped):
        hooked["asg"].terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    for _ in range(3):
        time.sleep(0.5)
        hooked["asg"].record_lifecycle_action_heartbeat(
            LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=kept
        )
    assert lifecycle_state(hooked, kept) == "Terminating:Wait"
    assert lifecycle_state(hooked, dropped) is None
    assert {"instance_id": dropped, "group": "web", "hook": "drain", "transition": TERMINATING, "result": "CONTINUE", "how": "timed-out"} in finished(emulator)


def test_without_a_hook_terminate_is_immediate(hooked):
    victim = hooked["ids"][2]
    hooked["asg"].terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert lifecycle_state(hooked, victim) is None
    assert desired(hooked) == 2


def test_a_terminated_instance_leaves_its_cluster(hooked, emulator):
    put_hook(hooked)
    ecs = emulator.client("ecs")
    ecs.create_cluster(clusterName="web")
    for i in hooked["ids"]:
        ecs.register_container_instance(cluster="web", instanceIdentityDocument=json.dumps({"instanceId": i, "region": "us-east-1"}))
    victim = hooked["ids"][0]
    hooked["asg"].terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert len(ecs.list_container_instances(cluster="web")["containerInstanceArns"]) == 3  # still waiting
    hooked["asg"].complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE", InstanceId=victim
    )
    left = ecs.list_container_instances(cluster="web", filter=f"ec2InstanceId == {victim}")["containerInstanceArns"]
    assert left == []
    assert len(ecs.list_container_instances(cluster="web")["containerInstanceArns"]) == 2


def test_terminate_with_decrement_at_min_size_is_refused(hooked):
    asg = hooked["asg"]
    asg.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=3)
    with pytest.raises(ClientError) as err:
        asg.terminate_instance_in_auto_scaling_group(InstanceId=hooked["ids"][0], ShouldDecrementDesiredCapacity=True)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "desiredSize equals minSize (3)" in err.value.response["Error"]["Message"]
    group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 3 and len(group["Instances"]) == 3
    # Without the decrement a replacement is launched, so the minimum holds and AWS accepts it.
    asg.terminate_instance_in_auto_scaling_group(InstanceId=hooked["ids"][0], ShouldDecrementDesiredCapacity=False)
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 3


def test_describe_lifecycle_hooks_reports_heartbeat_and_global_timeouts(hooked):
    asg = hooked["asg"]
    for name, timeout in (("short", 60), ("long", 7200), ("default", None)):
        asg.put_lifecycle_hook(
            LifecycleHookName=name, AutoScalingGroupName="web", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            **({"HeartbeatTimeout": timeout} if timeout else {}),
        )
    hooks = {h["LifecycleHookName"]: h for h in asg.describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"]}
    # GlobalTimeout: 100 x HeartbeatTimeout or 172800 (48 hours), whichever is smaller; the default heartbeat is 3600.
    assert (hooks["short"]["HeartbeatTimeout"], hooks["short"]["GlobalTimeout"]) == (60, 6000)
    assert (hooks["long"]["HeartbeatTimeout"], hooks["long"]["GlobalTimeout"]) == (7200, 172800)
    assert (hooks["default"]["HeartbeatTimeout"], hooks["default"]["GlobalTimeout"]) == (3600, 172800)


def test_terminating_wait_is_described_until_the_instance_is_gone(hooked):
    put_hook(hooked)
    asg, victim = hooked["asg"], hooked["ids"][0]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    listed = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]}
    assert listed[victim] == "Terminating:Wait" and len(listed) == 3
    in_group = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]}
    assert in_group[victim] == "Terminating:Wait"
    asg.complete_lifecycle_action(LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE", InstanceId=victim)
    listed = [i["InstanceId"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]]
    assert victim not in listed and len(listed) == 2
    assert asg.describe_auto_scaling_instances(InstanceIds=[victim])["AutoScalingInstances"] == []
    assert victim not in [i["InstanceId"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]


def _message_age(message: dict[str, Any]) -> float:
    from datetime import datetime, timezone

    sent = datetime.strptime(message["Time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - sent).total_seconds()


def test_a_late_message_began_long_ago_and_its_deadlines_count_from_then(hooked, emulator):
    put_hook(hooked, timeout=60, result="ABANDON")  # global timeout 6000 s
    messages(hooked)
    status = emulator.lifecycle_started_ago(5990, heartbeat_age=10)
    assert status["settings"]["lifecycle_started_ago_seconds"] == 5990 and status["settings"]["heartbeat_age_seconds"] == 10
    asg, late = hooked["asg"], hooked["ids"][0]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=late, ShouldDecrementDesiredCapacity=False)
    [msg] = messages(hooked)
    assert 5989 <= _message_age(msg) <= 5995
    [pending] = emulator.lifecycle_actions()["pending"]
    assert 49 <= pending["heartbeat_left"] <= 50 and 9 <= pending["global_left"] <= 10
    # A heartbeat restarts the heartbeat timeout only; the global timeout still runs out 10 s from now.
    asg.record_lifecycle_action_heartbeat(LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=late)
    [pending] = emulator.lifecycle_actions()["pending"]
    assert 59 <= pending["heartbeat_left"] <= 60 and pending["global_left"] <= 10
    advanced = emulator.advance_lifecycle(11)
    assert advanced["pending"][0]["global_left"] < 0  # applied on the next tick
    assert lifecycle_state(hooked, late) is None
    assert finished(emulator) == [{"instance_id": late, "group": "web", "hook": "drain", "transition": TERMINATING, "result": "ABANDON", "how": "timed-out"}]
    with pytest.raises(ClientError, match="No active Lifecycle Action found"):
        asg.complete_lifecycle_action(LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleActionResult="CONTINUE", InstanceId=late)


def test_the_setting_stays_for_later_actions_and_the_heartbeat_follows_by_default(hooked, emulator):
    put_hook(hooked, timeout=60, result="CONTINUE")
    messages(hooked)
    emulator.lifecycle_started_ago(100)  # the heartbeat timeout (60 s) ran out 40 s ago
    asg = hooked["asg"]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=hooked["ids"][0], ShouldDecrementDesiredCapacity=False)
    assert lifecycle_state(hooked, hooked["ids"][0]) is None  # timed out on the very next request
    asg.terminate_instance_in_auto_scaling_group(InstanceId=hooked["ids"][1], ShouldDecrementDesiredCapacity=False)
    assert lifecycle_state(hooked, hooked["ids"][1]) is None
    assert [m["EC2InstanceId"] for m in messages(hooked)] == hooked["ids"][:2]
    assert [f["how"] for f in finished(emulator)] == ["timed-out", "timed-out"]
    emulator.lifecycle_started_ago(0)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=hooked["ids"][2], ShouldDecrementDesiredCapacity=False)
    assert lifecycle_state(hooked, hooked["ids"][2]) == "Terminating:Wait"
    [msg] = messages(hooked)
    assert _message_age(msg) < 5


def test_advance_ages_every_pending_action(hooked, emulator):
    put_hook(hooked, timeout=300, result="CONTINUE")
    asg = hooked["asg"]
    for victim in hooked["ids"][:2]:
        asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    status = emulator.advance_lifecycle(200)
    assert [round(p["heartbeat_left"] / 10) for p in status["pending"]] == [10, 10]
    asg.record_lifecycle_action_heartbeat(LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=hooked["ids"][0])
    emulator.advance_lifecycle(150)
    assert lifecycle_state(hooked, hooked["ids"][0]) == "Terminating:Wait"
    assert lifecycle_state(hooked, hooked["ids"][1]) is None
    [done] = finished(emulator)
    assert (done["instance_id"], done["how"], done["result"]) == (hooked["ids"][1], "timed-out", "CONTINUE")


@pytest.mark.parametrize("path, body, fragment", [
    ("/autoscaling", {"lifecycle_started_ago_seconds": 10, "heartbeat_age_seconds": 20}, "heartbeat_age_seconds"),
    ("/autoscaling", {"lifecycle_started_ago_seconds": -1}, "lifecycle_started_ago_seconds"),
    ("/autoscaling", {"lifecycle_started_ago_seconds": "1"}, "lifecycle_started_ago_seconds"),
    ("/autoscaling", {"min_heartbeat_timeout": 0}, "min_heartbeat_timeout"),
    ("/autoscaling", {"started": 1}, "unknown fields"),
    ("/autoscaling/advance", {}, "seconds"),
    ("/autoscaling/advance", {"seconds": -5}, "seconds"),
])
def test_bad_lifecycle_settings_are_refused(emulator, path, body, fragment):
    from shipshape_emulator.client import ControlError

    with pytest.raises(ControlError) as err:
        emulator.control("POST", path, body)
    assert err.value.status == 400 and fragment in err.value.body["error"]


def test_settings_change_only_what_is_given(emulator):
    emulator.min_heartbeat_timeout(5)
    emulator.lifecycle_started_ago(30)
    settings = emulator.lifecycle_actions()["settings"]
    assert settings == {"min_heartbeat_timeout": 5, "lifecycle_started_ago_seconds": 30, "heartbeat_age_seconds": None}
    emulator.control("POST", "/autoscaling", {"heartbeat_age_seconds": 3})
    assert emulator.lifecycle_actions()["settings"]["heartbeat_age_seconds"] == 3


def test_each_lifecycle_action_is_a_scaling_activity(hooked, emulator):
    put_hook(hooked)
    asg = hooked["asg"]
    first, second, _ = hooked["ids"]
    emulator.control("POST", "/autoscaling", {"lifecycle_started_ago_seconds": 120})
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    emulator.control("POST", "/autoscaling", {"lifecycle_started_ago_seconds": 0})
    asg.terminate_instance_in_auto_scaling_group(InstanceId=second, ShouldDecrementDesiredCapacity=True)
    asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName="drain",
                                  InstanceId=second, LifecycleActionResult="CONTINUE")
    activities = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    # Still in progress first, then by start time, newest first.
    assert [(a["Description"], a["StatusCode"]) for a in activities] == [
        (f"Terminating EC2 instance: {first}", "MidLifecycleAction"),
        (f"Terminating EC2 instance: {second}", "Successful"),
    ]
    waited = time.time() - activities[0]["StartTime"].timestamp()
    assert 115 <= waited <= 130, waited
    assert "EndTime" in activities[1] and "EndTime" not in activities[0]
    assert asg.describe_scaling_activities(AutoScalingGroupName="other")["Activities"] == []
    page = asg.describe_scaling_activities(AutoScalingGroupName="web", MaxRecords=1)
    assert len(page["Activities"]) == 1 and "NextToken" in page
    rest = asg.describe_scaling_activities(AutoScalingGroupName="web", MaxRecords=1, NextToken=page["NextToken"])
    assert rest["Activities"][0]["Description"].endswith(second) and "NextToken" not in rest
    with pytest.raises(ClientError):
        asg.describe_scaling_activities(AutoScalingGroupName="web", MaxRecords=101)
