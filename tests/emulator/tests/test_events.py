"""The event feed: what EventBridge would carry of EC2 and ECS changes, when they happened."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

from shipshape_emulator.client import AMI, ControlError, Emulator, health_event

ENVELOPE = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]


def feed(emulator: Emulator, since: int = 0) -> list[dict[str, Any]]:
    events = emulator.events(since)["events"]
    for event in events:
        assert list(event) == ENVELOPE and event["version"] == "0" and event["account"] == "123456789012"
        assert event["region"] == "us-east-1"
        datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    return events


def of(events: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["detail-type"] == detail_type]


def ec2_states(events: list[dict[str, Any]], instance_id: str) -> list[str]:
    return [e["detail"]["state"] for e in of(events, "EC2 Instance State-change Notification")
            if e["detail"]["instance-id"] == instance_id]


def task_events(events: list[dict[str, Any]], task_arn: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in of(events, "ECS Task State Change") if e["detail"]["taskArn"] == task_arn]


def ms(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000


@pytest.fixture
def fleet(emulator: Emulator) -> dict[str, Any]:
    """Group 'web' of 2 registered in cluster 'web', task definition 'app'."""
    ids = emulator.group("web", 2)
    emulator.ecs.create_cluster(clusterName="web")
    arns = [emulator.register("web", i) for i in ids]
    emulator.ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "a", "image": "nginx", "cpu": 64, "memory": 128}]
    )
    return {"ids": ids, "arns": arns}


def test_ec2_state_changes_come_in_aws_s_two_steps(emulator: Emulator) -> None:
    [instance] = [i["InstanceId"] for i in emulator.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"]]
    emulator.ec2.stop_instances(InstanceIds=[instance])
    emulator.ec2.stop_instances(InstanceIds=[instance])  # already stopped: no change, no event
    emulator.ec2.start_instances(InstanceIds=[instance])
    emulator.ec2.terminate_instances(InstanceIds=[instance])
    events = feed(emulator)
    assert ec2_states(events, instance) == [
        "pending", "running", "stopping", "stopped", "pending", "running", "shutting-down", "terminated"]
    first = events[0]
    assert (first["source"], first["resources"], first["detail"]) == (
        "aws.ec2", [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"], {"instance-id": instance, "state": "pending"})
    assert len({e["id"] for e in events}) == len(events)


def test_the_cursor_gives_only_what_is_new(emulator: Emulator) -> None:
    emulator.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)
    first = emulator.events()
    assert first["cursor"] == 2 and len(first["events"]) == 2
    assert emulator.events(first["cursor"]) == {"events": [], "cursor": 2}
    emulator.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)
    later = emulator.events(first["cursor"])
    assert later["cursor"] == 4 and [e["detail"]["state"] for e in later["events"]] == ["pending", "running"]
    assert emulator.events(1)["events"] == first["events"][1:] + later["events"]


@pytest.mark.parametrize("query", ["?since=-1", "?since=x", "?since=99", "?from=0"])
def test_a_bad_cursor_is_refused(emulator: Emulator, query: str) -> None:
    with pytest.raises(ControlError) as err:
        emulator.control("GET", f"/events{query}")
    assert err.value.status == 400


def test_reset_clears_the_feed(emulator: Emulator) -> None:
    emulator.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)
    assert emulator.events()["cursor"] == 2
    emulator.reset()
    assert emulator.events() == {"events": [], "cursor": 0}


def test_start_and_stop_task(emulator: Emulator, fleet: dict) -> None:
    cursor = emulator.events()["cursor"]
    task = emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[fleet["arns"][0]],
                                   startedBy="me")["tasks"][0]["taskArn"]
    emulator.ecs.stop_task(cluster="web", task=task, reason="enough")
    events = feed(emulator, cursor)
    started, stopped = task_events(events, task)
    assert of(events, "ECS Task State Change")[0]["resources"] == [task]
    assert of(events, "ECS Task State Change")[0]["source"] == "aws.ecs"
    assert {k: started[k] for k in ("lastStatus", "desiredStatus", "group", "launchType", "version", "startedBy",
                                    "clusterArn", "containerInstanceArn", "taskDefinitionArn", "availabilityZone")} == {
        "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "group": "family:app", "launchType": "EC2", "version": 1,
        "startedBy": "me", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/web",
        "containerInstanceArn": fleet["arns"][0], "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/app:1",
        "availabilityZone": "us-east-1a",
    }
    [container] = started["containers"]
    assert {k: container[k] for k in ("name", "image", "lastStatus", "taskArn", "cpu", "memory")} == {
        "name": "a", "image": "nginx", "lastStatus": "RUNNING", "taskArn": task, "cpu": "64", "memory": "128"}
    assert started["createdAt"] == started["startedAt"] == started["updatedAt"]
    assert "stoppedAt" not in started and "stopCode" not in started
    assert {k: stopped[k] for k in ("lastStatus", "desiredStatus", "stoppedReason", "stopCode", "version")} == {
        "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stoppedReason": "enough", "stopCode": "UserInitiated",
        "version": 2}
    assert stopped["stoppedAt"] == stopped["executionStoppedAt"] == stopped["updatedAt"] == stopped["stoppingAt"]
    assert stopped["containers"][0]["lastStatus"] == "STOPPED"
    assert ms(stopped["createdAt"]) <= ms(stopped["stoppedAt"])


def test_a_drain_is_in_the_feed_as_it_fell_due_however_late_one_reads(emulator: Emulator, fleet: dict) -> None:
    emulator.draining(stop_after_ms=200, step_ms=100)
    old = emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[fleet["arns"][0]],
                                  group="service:api")["tasks"][0]["taskArn"]
    cursor = emulator.events()["cursor"]
    emulator.ecs.update_container_instances_state(cluster="web", containerInstances=[fleet["arns"][0]], status="DRAINING")
    drained_at = time.time() * 1000
    time.sleep(1.2)  # no request meanwhile: the whole drain falls due before anyone looks
    events = feed(emulator, cursor)
    read_at = time.time() * 1000
    [ci] = of(events, "ECS Container Instance State Change")
    assert (ci["detail"]["status"], ci["detail"]["containerInstanceArn"]) == ("DRAINING", fleet["arns"][0])
    stops = task_events(events, old)
    assert [(s["lastStatus"], s["desiredStatus"]) for s in stops] == [
        ("DEACTIVATING", "STOPPED"), ("STOPPING", "STOPPED"), ("DEPROVISIONING", "STOPPED"), ("STOPPED", "STOPPED")]
    [replacement] = {e["detail"]["taskArn"] for e in of(events, "ECS Task State Change")} - {old}
    starts = task_events(events, replacement)
    assert [s["lastStatus"] for s in starts] == ["PENDING", "RUNNING"]
    assert starts[0]["containerInstanceArn"] == fleet["arns"][1] and starts[0]["group"] == "service:api"
    pending, running = (ms(s["updatedAt"]) for s in starts)
    times = [ms(s["updatedAt"]) for s in stops]
    # The schedule: replacement after 200 ms, RUNNING 100 ms later, then the old task's states 100 ms apart.
    assert drained_at - 50 <= pending - 200 <= drained_at + 50
    assert running - pending == pytest.approx(100, abs=2)
    assert times[0] == pytest.approx(running, abs=2)
    assert [b - a for a, b in zip(times, times[1:])] == pytest.approx([100, 100, 100], abs=2)
    assert times[-1] < read_at - 500  # when it happened, not when it was read
    assert [s["version"] for s in stops] == [2, 3, 4, 5]
    assert stops[-1]["stopCode"] == "ServiceSchedulerInitiated"
    assert stops[-1]["stoppedAt"] == stops[-1]["updatedAt"] and stops[0]["stoppingAt"] == stops[0]["updatedAt"]
    order = [(e["detail"]["taskArn"], e["detail"]["lastStatus"]) for e in of(events, "ECS Task State Change")]
    assert order.index((replacement, "RUNNING")) < order.index((old, "DEACTIVATING"))


def test_reading_often_or_once_gives_the_same_drain(emulator: Emulator, fleet: dict) -> None:
    emulator.draining(stop_after_ms=100, step_ms=100)
    old = emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[fleet["arns"][0]],
                                  group="service:api")["tasks"][0]["taskArn"]
    cursor = emulator.events()["cursor"]
    emulator.ecs.update_container_instances_state(cluster="web", containerInstances=[fleet["arns"][0]], status="DRAINING")
    seen: list[dict[str, Any]] = []
    deadline = time.time() + 1.2
    while time.time() < deadline:
        page = emulator.events(cursor)
        seen += page["events"]
        cursor = page["cursor"]
        time.sleep(0.03)
    stops = task_events(seen, old)
    assert [s["lastStatus"] for s in stops] == ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
    times = [ms(s["updatedAt"]) for s in stops]
    assert [b - a for a, b in zip(times, times[1:])] == pytest.approx([100, 100, 100], abs=2)


def test_container_instance_events(emulator: Emulator, fleet: dict) -> None:
    registered = of(feed(emulator), "ECS Container Instance State Change")
    assert [(e["detail"]["containerInstanceArn"], e["detail"]["status"], e["detail"]["agentConnected"], e["detail"]["version"])
            for e in registered] == [(arn, "ACTIVE", True, 1) for arn in fleet["arns"]]
    detail = registered[0]["detail"]
    assert detail["ec2InstanceId"] == fleet["ids"][0] and detail["clusterArn"].endswith(":cluster/web")
    assert {r["name"] for r in detail["registeredResources"]} >= {"CPU", "MEMORY"}
    assert registered[0]["resources"] == [fleet["arns"][0]]
    cursor = emulator.events()["cursor"]
    emulator.agent(fleet["arns"][0], connected=False)
    emulator.agent(fleet["arns"][0], connected=True)
    emulator.ecs.deregister_container_instance(cluster="web", containerInstance=fleet["arns"][1])
    changes = [(e["detail"]["containerInstanceArn"], e["detail"]["status"], e["detail"]["agentConnected"], e["detail"]["version"])
               for e in of(feed(emulator, cursor), "ECS Container Instance State Change")]
    assert changes == [(fleet["arns"][0], "ACTIVE", False, 2), (fleet["arns"][0], "ACTIVE", True, 3),
                       (fleet["arns"][1], "INACTIVE", False, 2)]


def test_a_terminated_host_s_events(emulator: Emulator, fleet: dict) -> None:
    task = emulator.ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[fleet["arns"][0]])["tasks"][0]["taskArn"]
    cursor = emulator.events()["cursor"]
    emulator.ec2.terminate_instances(InstanceIds=[fleet["ids"][0]])
    events = feed(emulator, cursor)
    kinds = [(e["detail-type"], e["detail"].get("state") or e["detail"].get("lastStatus") or e["detail"].get("status"))
             for e in events if fleet["ids"][0] in str(e)]
    assert kinds[:2] == [("EC2 Instance State-change Notification", "shutting-down"),
                         ("EC2 Instance State-change Notification", "terminated")]
    [stopped] = task_events(events, task)
    assert (stopped["lastStatus"], stopped["stoppedReason"]) == ("STOPPED", f"Host EC2 (instance {fleet['ids'][0]}) terminated.")
    [ci] = of(events, "ECS Container Instance State Change")
    assert (ci["detail"]["status"], ci["detail"]["agentConnected"]) == ("INACTIVE", False)
    # The group replaces the instance: a new one, pending then running.
    launched = [e["detail"]["instance-id"] for e in of(events, "EC2 Instance State-change Notification")
                if e["detail"]["state"] == "pending"]
    assert len(launched) == 1 and launched[0] not in fleet["ids"]


def test_a_warm_pool_return_stops_the_instance_and_disconnects_its_agent(emulator: Emulator, fleet: dict) -> None:
    emulator.autoscaling.put_warm_pool(AutoScalingGroupName="web", MaxGroupPreparedCapacity=2,
                                       InstanceReusePolicy={"ReuseOnScaleIn": True})
    cursor = emulator.events()["cursor"]
    emulator.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    events = feed(emulator, cursor)
    [leaving] = {e["detail"]["instance-id"] for e in of(events, "EC2 Instance State-change Notification")}
    assert ec2_states(events, leaving) == ["stopping", "stopped"]
    [ci] = of(events, "ECS Container Instance State Change")
    assert (ci["detail"]["ec2InstanceId"], ci["detail"]["status"], ci["detail"]["agentConnected"]) == (leaving, "ACTIVE", False)


def test_a_health_event_for_scheduled_maintenance() -> None:
    sent = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    event = health_event(["i-0abc", "i-0def"], "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", sent=sent)
    assert list(event) == ENVELOPE
    assert (event["source"], event["detail-type"], event["time"], event["resources"]) == (
        "aws.health", "AWS Health Event", "2026-11-22T10:00:00Z", ["i-0abc", "i-0def"])
    detail = event["detail"]
    assert (detail["service"], detail["eventTypeCategory"], detail["eventTypeCode"], detail["eventScopeCode"]) == (
        "EC2", "scheduledChange", "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED", "ACCOUNT_SPECIFIC")
    assert detail["eventArn"].startswith(
        "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED/AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED_")
    assert (detail["startTime"], detail["endTime"]) == ("Sun, 06 Dec 2026 10:00:00 GMT", "Sun, 06 Dec 2026 12:00:00 GMT")
    assert [e["entityValue"] for e in detail["affectedEntities"]] == ["i-0abc", "i-0def"]
    retirement = health_event(["i-0abc"], sent=sent)["detail"]
    assert retirement["eventTypeCode"] == "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    assert retirement["startTime"] == retirement["endTime"]
    with pytest.raises(ValueError):
        health_event(["i-0abc"], "AWS_EC2_OPERATIONAL_ISSUE")
