"""EC2 scheduled events in ``DescribeInstanceStatus``, and ``LaunchTime`` after a restart, which moto 5.x
does not emulate.

AWS:

- "Scheduled events for your instances"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instances-status-check_sched.html): AWS
  schedules an instance stop, retirement, instance or system reboot, or system maintenance; each shows in
  ``DescribeInstanceStatus`` under ``Events`` ("InstanceStatusEvent",
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceStatusEvent.html): ``Code``
  (``instance-reboot | system-reboot | system-maintenance | instance-retirement | instance-stop``),
  ``Description``, ``InstanceEventId``, ``NotBefore``, ``NotAfter``, ``NotBeforeDeadline``. "After a scheduled
  event is completed, it can still be described for up to a week. If the event has been completed, this
  description starts with the following text: [Completed]." A cancelled event is no longer listed ("your
  instance should no longer have a scheduled event associated with it").
- ``LaunchTime``: "The time that the instance was last launched" (the Instance type): starting a stopped
  instance sets it again. moto keeps the first launch's time.

Control endpoints (``POST``), each answering the instance's events as ``DescribeInstanceStatus`` lists them:

- ``/ec2/events``: ``{"instance_id": "i-...", "code": "instance-retirement", "not_before": "<ISO time>",
  "not_after": "<ISO time>" (optional), "description": "..." (optional)}`` schedules an event;
- ``/ec2/events/complete``: ``{"instance_id", "event_id"}``: the event is done, its description now starts
  with ``[Completed]``;
- ``/ec2/events/cancel``: ``{"instance_id", "event_id"}``: AWS cancelled it; it is no longer listed.

``GET /ec2/events`` lists every instance's events. Cleared by ``POST /moto-api/reset``.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

from moto.core.utils import utcnow
from moto.ec2.models.instances import Instance

CODES = {"instance-reboot", "system-reboot", "system-maintenance", "instance-retirement", "instance-stop"}
DESCRIPTIONS = {
    "instance-reboot": "The instance is scheduled for a reboot",
    "system-reboot": "The instance is scheduled for a reboot",
    "system-maintenance": "The instance is scheduled for system maintenance",
    "instance-retirement": "The instance is running on degraded hardware",
    "instance-stop": "The instance is running on degraded hardware",
}

EVENTS: dict[str, list[dict[str, Any]]] = {}  # by instance id, in the order scheduled
_lock = threading.RLock()
_original_start: list[Any] = []


def _events(instance: Any) -> list[dict[str, Any]]:
    with _lock:
        return [dict(e) for e in EVENTS.get(instance.id, [])]


def _start(instance: Any) -> Any:
    previous = _original_start[0](instance)
    if previous.name != "running":
        instance.launch_time = utcnow()
    return previous


def _time(spec: dict[str, Any], field: str, required: bool) -> datetime | None:
    raw = spec.get(field)
    if raw is None and not required:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: an ISO 8601 time, got {raw!r}") from None


def _instance_id(spec: dict[str, Any]) -> str:
    instance_id = spec.get("instance_id")
    if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
        raise ValueError("instance_id: required, an EC2 instance id")
    return instance_id


def schedule(spec: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = set(spec) - {"instance_id", "code", "not_before", "not_after", "description"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    instance_id = _instance_id(spec)
    code = spec.get("code")
    if code not in CODES:
        raise ValueError(f"code: one of {sorted(CODES)}")
    event: dict[str, Any] = {
        "InstanceEventId": f"instance-event-{uuid.uuid4().hex[:17]}",
        "Code": code,
        "Description": spec.get("description") or DESCRIPTIONS[code],
        "NotBefore": _time(spec, "not_before", True),
    }
    not_after = _time(spec, "not_after", False)
    if not_after is not None:
        event["NotAfter"] = not_after
    with _lock:
        EVENTS.setdefault(instance_id, []).append(event)
        return [dict(e) for e in EVENTS[instance_id]]


def _find(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    instance_id = _instance_id(spec)
    for event in EVENTS.get(instance_id, []):
        if event["InstanceEventId"] == spec.get("event_id"):
            return instance_id, event
    raise ValueError(f"event_id: {spec.get('event_id')!r} is not an event of {instance_id}")


def complete(spec: dict[str, Any]) -> list[dict[str, Any]]:
    with _lock:
        instance_id, event = _find(spec)
        if not event["Description"].startswith("[Completed]"):
            event["Description"] = f"[Completed] {event['Description']}"
        return [dict(e) for e in EVENTS[instance_id]]


def cancel(spec: dict[str, Any]) -> list[dict[str, Any]]:
    with _lock:
        instance_id, event = _find(spec)
        EVENTS[instance_id].remove(event)
        return [dict(e) for e in EVENTS[instance_id]]


def listing() -> dict[str, Any]:
    with _lock:
        return {i: [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.items()} for e in events]
                for i, events in EVENTS.items()}


def install() -> None:
    _original_start[:] = [Instance.start]
    Instance.start = _start  # type: ignore[method-assign]
    # moto serializes DescribeInstanceStatus from the Instance model by the API's member names.
    Instance.events = property(_events)  # type: ignore[attr-defined]


def tick() -> None:
    """No timers: an event is completed or cancelled by the test."""


def reset() -> None:
    with _lock:
        EVENTS.clear()


def _listed(spec: dict[str, Any]) -> Any:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in spec.items()}


ENDPOINTS = {
    "/ec2/events": {"GET": listing, "POST": lambda spec: [_listed(e) for e in schedule(spec)]},
    "/ec2/events/complete": {"POST": lambda spec: [_listed(e) for e in complete(spec)]},
    "/ec2/events/cancel": {"POST": lambda spec: [_listed(e) for e in cancel(spec)]},
}
