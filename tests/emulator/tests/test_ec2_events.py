"""EC2 scheduled events in DescribeInstanceStatus, and LaunchTime after a restart, through boto3."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shipshape_emulator.client import ControlError, Emulator


def events_of(emulator: Emulator, instance: str) -> list[dict[str, Any]]:
    statuses = emulator.ec2.describe_instance_status(InstanceIds=[instance], IncludeAllInstances=True)["InstanceStatuses"]
    assert [s["InstanceId"] for s in statuses] == [instance]
    return statuses[0].get("Events", [])


def test_a_scheduled_event_is_listed_then_completed_or_cancelled(emulator: Emulator) -> None:
    a, b = emulator.group("web", 2)
    scheduled = emulator.control("POST", "/ec2/events", {
        "instance_id": a, "code": "instance-retirement", "not_before": "2026-12-20T10:00:00Z",
        "not_after": "2026-12-20T12:00:00Z"})
    event_id = scheduled[0]["InstanceEventId"]
    listed = events_of(emulator, a)
    assert [(e["Code"], e["InstanceEventId"]) for e in listed] == [("instance-retirement", event_id)]
    assert listed[0]["NotBefore"].isoformat().startswith("2026-12-20T10:00:00")
    assert listed[0]["Description"] == "The instance is running on degraded hardware"
    assert events_of(emulator, b) == []
    emulator.control("POST", "/ec2/events/complete", {"instance_id": a, "event_id": event_id})
    assert events_of(emulator, a)[0]["Description"].startswith("[Completed] ")
    second = emulator.control("POST", "/ec2/events", {
        "instance_id": a, "code": "system-reboot", "not_before": "2026-12-21T10:00:00Z"})[1]["InstanceEventId"]
    emulator.control("POST", "/ec2/events/cancel", {"instance_id": a, "event_id": second})
    assert [e["InstanceEventId"] for e in events_of(emulator, a)] == [event_id]
    emulator.reset()


def test_bad_events_name_the_field(emulator: Emulator) -> None:
    (a,) = emulator.group("web", 1)
    for body, field in [({"instance_id": a, "code": "reboot", "not_before": "2026-12-20T10:00:00Z"}, "code"),
                        ({"instance_id": a, "code": "system-reboot", "not_before": "soon"}, "not_before"),
                        ({"code": "system-reboot", "not_before": "2026-12-20T10:00:00Z"}, "instance_id"),
                        ({"instance_id": a, "event_id": "nope"}, "event_id")]:
        path = "/ec2/events/cancel" if "event_id" in body else "/ec2/events"
        with pytest.raises(ControlError) as err:
            emulator.control("POST", path, body)
        assert field in str(err.value), body


def test_a_restarted_instance_has_a_new_launch_time(emulator: Emulator) -> None:
    (a,) = emulator.group("web", 1)

    def launched() -> Any:
        return emulator.ec2.describe_instances(InstanceIds=[a])["Reservations"][0]["Instances"][0]["LaunchTime"]

    first = launched()
    time.sleep(1.1)
    emulator.ec2.stop_instances(InstanceIds=[a])
    assert launched() == first
    emulator.ec2.start_instances(InstanceIds=[a])
    assert launched() > first
