"""The events AWS would send to EventBridge for what happens in the emulator, as a feed to read.

Tests and benchmarks hand the functions the events ECS and EC2 emit, as they happen, without polling AWS
state themselves: ``GET /_shipshape/events?since=<cursor>`` answers ``{"events": [...], "cursor": n}``,
every event after the first ``since`` ones (``since`` 0, the default: from the start), in order, and the
cursor to ask from next time. A ``since`` beyond the feed (a cursor from before a reset) is refused with
400. ``POST /moto-api/reset`` clears the feed.

Each event is a complete EventBridge event, ``version`` "0", ``id``, ``detail-type``, ``source``,
``account``, ``time`` (``yyyy-mm-ddThh:mm:ssZ``), ``region``, ``resources``, ``detail``:

- ``EC2 Instance State-change Notification`` (``aws.ec2``), ``detail: {"instance-id", "state"}``,
  ``resources`` the instance's ARN (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html):
  "When you launch or start an instance, it enters the pending state and then the running state. When you
  stop an instance, it enters the stopping state and then the stopped state. When you terminate an
  instance, it enters the shutting-down state and then the terminated state." moto moves an instance to
  ``running``, ``stopped`` or ``terminated`` in one step; the feed has both events of each change, at the
  moment of the change.
- ``ECS Task State Change`` (``aws.ecs``), whenever a task is created or its ``lastStatus`` or
  ``desiredStatus`` changes: by RunTask/StartTask, StopTask, a drain (``ecs_draining``: the stopping
  states DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED, and the replacements, PENDING then RUNNING), the
  termination or stop of its host (``terminations``, ``ec2_stop``). ``detail`` "resembles the Task object
  that is returned from a DescribeTasks API operation", with ISO timestamps
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html): ``attachments``,
  ``availabilityZone``, ``clusterArn``, ``containerInstanceArn``, ``containers`` (``containerArn``,
  ``lastStatus``, ``name``, ``image``, ``taskArn``, ``networkInterfaces``, ``cpu``, ``memory``),
  ``createdAt``, ``cpu``, ``memory``, ``desiredStatus``, ``group``, ``launchType``, ``lastStatus``,
  ``overrides``, ``startedAt``, ``startedBy``, ``stoppingAt``, ``stoppedAt``, ``executionStoppedAt``,
  ``stoppedReason``, ``stopCode`` (``UserInitiated`` for StopTask, ``ServiceSchedulerInitiated`` for a
  drain), ``updatedAt``, ``taskArn``, ``taskDefinitionArn`` and ``version``, which "is incremented" with
  each change of the task (the times and fields that do not apply yet are left out).
- ``ECS Container Instance State Change`` (``aws.ecs``) when a container instance registers, when its
  ``status`` changes (UpdateContainerInstancesState, deregistration: INACTIVE) and when its agent connects
  or disconnects (``/_shipshape/ecs/agent``, a stopped instance, deregistration: "Deregistering a
  container instance changes the status of the container instance and the connection status of the Amazon
  ECS container agent", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_container_instance_events.html).
  ``detail`` resembles the ContainerInstance object: ``agentConnected``, ``attributes``, ``clusterArn``,
  ``containerInstanceArn``, ``ec2InstanceId``, ``pendingTasksCount``, ``registeredAt``,
  ``registeredResources``, ``remainingResources``, ``runningTasksCount``, ``status``, ``version``,
  ``versionInfo``, ``updatedAt``. AWS also sends one when a task's start or stop changes the instance's
  remaining resources; the feed does not.

Timing. AWS services send their events to EventBridge "as either best effort or durable delivery
attempts. Best effort delivery means that the service attempts to send all events to EventBridge, but in
some rare cases an event might not be delivered"
(https://docs.aws.amazon.com/eventbridge/latest/ref/event-delivery-level.html); they typically arrive
seconds after the change, not necessarily in order, and a consumer must rely on neither. The feed is
closer than that: every event is there, in order, and exact about when its change happened:
``time`` (to the second, as EventBridge writes it) and ``detail.updatedAt`` (to the millisecond) are the
moment the emulator made the change, and for a drain, which catches up on every request with what fell due
since the last one, the moment it fell due, not the moment someone looked. Events are in the order the
emulator made the changes; the changes a drain catches up on are in the order they fell due. A change is in
the feed at the latest when the next request reaches the emulator (every request, and the read of the feed
itself, first brings the emulator's timers up to date). The changes one request makes to one task or
container instance are one event, with the state the request left it in.

How: ``install`` wraps the moto models where the changes happen (EC2 ``Instance`` start, stop and
terminate and ``run_instances``; assignments to a ``Task``'s ``last_status`` and ``desired_status`` and a
``ContainerInstance``'s ``status`` and ``agent_connected``; their creation; ECS StopTask and
DeregisterContainerInstance) and ``ecs_draining.tick``, so that a drain's changes carry the time the drain
gives them; the changes become events on every tick, before the feed is read.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ecs.models import ContainerInstance, EC2ContainerServiceBackend, Task

from . import ecs_draining

FEED: list[dict[str, Any]] = []
_KEY = "_shipshape_events"
_lock = threading.RLock()
_local = threading.local()
_seq = [0]


@dataclass
class Record:
    """One change, noted when it happened; turned into events by ``_flush``."""

    seq: int
    kind: str  # "ec2" | "task" | "ci"
    obj: Any
    wall: float  # time.time() of the change
    drain: bool  # made by a drain's catch-up: its time is the one the drain says it fell due
    snap: dict[str, Any]
    old_last: str | None = None
    created: bool = False
    override: dict[str, Any] = field(default_factory=dict)
    stop_code: str | None = None
    at: float = 0.0


_RECORDS: list[Record] = []


def _note(kind: str, obj: Any, snap: dict[str, Any], **extra: Any) -> None:
    with _lock:
        _seq[0] += 1
        _RECORDS.append(Record(_seq[0], kind, obj, time.time(), getattr(_local, "drain", False), snap,
                               stop_code=getattr(_local, "stop_code", None), **extra))


def _iso(wall: float, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(wall, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if millis else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(detail_type: str, source: str, account: str, region: str, at: float, resources: list[str],
              detail: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source, "account": account,
            "time": _iso(at, millis=False), "region": region, "resources": resources, "detail": detail}


# --- EC2 ----------------------------------------------------------------------------------------------------


_EC2_STEPS = {"running": ("pending", "running"), "stopped": ("stopping", "stopped"),
              "terminated": ("shutting-down", "terminated")}


def _ec2_changed(instance: Any, previous: str | None) -> None:
    now = instance._state.name
    if now != previous:
        for state in _EC2_STEPS.get(now, (now,)):
            _note("ec2", instance, {"state": state})


def _wrap_instance(name: str) -> None:
    original = getattr(Instance, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        previous = self._state.name
        out = original(self, *args, **kwargs)
        _ec2_changed(self, previous)
        return out

    setattr(Instance, name, wrapper)


def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
    reservation = _original["run_instances"](self, *args, **kwargs)
    for instance in reservation.instances:
        _ec2_changed(instance, None)
    return reservation


def _ec2_event(record: Record) -> dict[str, Any]:
    instance = record.obj
    region, account = instance.region_name, instance.owner_id
    return _envelope("EC2 Instance State-change Notification", "aws.ec2", account, region, record.at,
                     [f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"],
                     {"instance-id": instance.id, "state": record.snap["state"]})


# --- ECS tasks ------------------------------------------------------------------------------------------------


def _task_snap(task: Any) -> dict[str, Any]:
    return {"lastStatus": task.last_status, "desiredStatus": task.desired_status, "stoppedReason": task.stopped_reason}


def _task_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original["task_init"](self, *args, **kwargs)
    definition = args[1] if len(args) > 1 else kwargs.get("task_definition")
    region, account = self.region_name, self._account_id
    containers = [
        {"containerArn": f"arn:aws:ecs:{region}:{account}:container/{self.cluster_name}/{self.id}/{uuid.uuid4()}",
         "name": c.get("name"), "image": c.get("image"), "cpu": str(c.get("cpu") or 0),
         **({"memory": str(c["memory"])} if c.get("memory") else {})}
        for c in getattr(definition, "container_definitions", [])
    ]
    self.__dict__[_KEY] = {"version": 0, "containers": containers,
                           "cpu": getattr(definition, "cpu", None), "memory": getattr(definition, "memory", None)}
    _note("task", self, _task_snap(self), created=True)


def _task_setattr(self: Any, name: str, value: Any) -> None:
    watched = name in ("last_status", "desired_status") and _KEY in self.__dict__
    if watched:
        old_last, old = self.last_status, getattr(self, name)
    _original["task_setattr"](self, name, value)
    if watched and getattr(self, name) != old:
        _note("task", self, _task_snap(self), old_last=old_last)


def stop_task(self: Any, *args: Any, **kwargs: Any) -> Any:
    previous = getattr(_local, "stop_code", None)
    _local.stop_code = "UserInitiated"
    try:
        return _original["stop_task"](self, *args, **kwargs)
    finally:
        _local.stop_code = previous


def _task_stored(task: Any) -> bool:
    return task._backend.tasks.get(task.cluster_name, {}).get(task.task_arn) is task


def _container_status(task_status: str) -> str:
    if task_status in ("PROVISIONING", "PENDING", "ACTIVATING"):
        return "PENDING"
    if task_status in ("DEPROVISIONING", "STOPPED"):
        return "STOPPED"
    return "RUNNING"


def _task_event(task: Any, snap: dict[str, Any], at: float, stop_code: str | None) -> dict[str, Any]:
    info = task.__dict__[_KEY]
    info["version"] += 1
    last, desired, iso = snap["lastStatus"], snap["desiredStatus"], _iso(at)
    info.setdefault("createdAt", iso)
    if last == "RUNNING":
        info.setdefault("startedAt", iso)
    if desired == "STOPPED":
        info.setdefault("stoppingAt", iso)
        if stop_code:
            info.setdefault("stopCode", stop_code)
        elif snap.get("stoppedReason") == ecs_draining._REASON:
            info.setdefault("stopCode", "ServiceSchedulerInitiated")
    if last == "STOPPED":
        info.setdefault("stoppedAt", iso)
    region, account = task.region_name, task._account_id
    detail: dict[str, Any] = {"attachments": list(task.attachments or [])}
    zone = _task_zone(task)
    if zone:
        detail["availabilityZone"] = zone
    detail["clusterArn"] = task.cluster_arn
    if task.container_instance_arn:
        detail["containerInstanceArn"] = task.container_instance_arn
    detail["containers"] = [
        {**c, "lastStatus": _container_status(last), "taskArn": task.task_arn, "networkInterfaces": []}
        for c in info["containers"]
    ]
    detail["createdAt"] = info["createdAt"]
    if info.get("cpu"):
        detail["cpu"] = str(info["cpu"])
    if info.get("memory"):
        detail["memory"] = str(info["memory"])
    detail.update({"desiredStatus": desired, "group": task.group, "launchType": task.launch_type or "EC2",
                   "lastStatus": last})
    detail["overrides"] = task.overrides or {"containerOverrides": [{"name": c["name"]} for c in info["containers"]]}
    for key in ("startedAt",):
        if key in info:
            detail[key] = info[key]
    if task.started_by:
        detail["startedBy"] = task.started_by
    if desired == "STOPPED":
        detail["stoppingAt"] = info["stoppingAt"]
        if "stopCode" in info:
            detail["stopCode"] = info["stopCode"]
    if last == "STOPPED":
        detail["stoppedAt"] = detail["executionStoppedAt"] = info["stoppedAt"]
    if snap.get("stoppedReason"):
        detail["stoppedReason"] = snap["stoppedReason"]
    detail.update({"updatedAt": iso, "taskArn": task.task_arn, "taskDefinitionArn": task.task_definition_arn,
                   "version": info["version"]})
    return _envelope("ECS Task State Change", "aws.ecs", account, region, at, [task.task_arn], copy.deepcopy(detail))


def _task_zone(task: Any) -> str | None:
    arn = task.container_instance_arn
    if not arn:
        return None
    ci = task._backend.container_instances.get(task.cluster_name, {}).get(arn.rsplit("/", 1)[-1])
    return ci.attributes.get("ecs.availability-zone") if ci is not None else None


# --- ECS container instances ----------------------------------------------------------------------------------


def _ci_snap(ci: Any) -> dict[str, Any]:
    return {"status": ci.status, "agentConnected": ci.agent_connected}


def _ci_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original["ci_init"](self, *args, **kwargs)
    self.__dict__[_KEY] = {"version": 0}
    _note("ci", self, _ci_snap(self), created=True)


def _ci_setattr(self: Any, name: str, value: Any) -> None:
    watched = name in ("status", "agent_connected") and _KEY in self.__dict__
    if watched:
        old = getattr(self, name)
    _original["ci_setattr"](self, name, value)
    if watched and getattr(self, name) != old:
        _note("ci", self, _ci_snap(self))


def deregister_container_instance(self: Any, *args: Any, **kwargs: Any) -> Any:
    ci = _original["deregister"](self, *args, **kwargs)
    if _KEY in ci.__dict__:
        _note("ci", ci, {"status": "INACTIVE", "agentConnected": False},
              override={"status": "INACTIVE", "agentConnected": False})
    return ci


def _ci_event(ci: Any, snap: dict[str, Any], at: float) -> dict[str, Any]:
    info = ci.__dict__[_KEY]
    info["version"] += 1
    region, account = ci.region_name, ci._account_id
    cluster = ci._backend.clusters.get(ci.cluster_name)
    registered = getattr(ci, "registered_at", None)
    detail = {
        "agentConnected": snap["agentConnected"],
        "attributes": [{"name": k} if v is None else {"name": k, "value": v} for k, v in ci.attributes.items()],
        "clusterArn": cluster.arn if cluster is not None else f"arn:aws:ecs:{region}:{account}:cluster/{ci.cluster_name}",
        "containerInstanceArn": ci.container_instance_arn,
        "ec2InstanceId": ci.ec2_instance_id,
        "pendingTasksCount": ci.pending_tasks_count,
        "registeredResources": ci.registered_resources,
        "remainingResources": ci.remaining_resources,
        "runningTasksCount": ci.running_tasks_count,
        "status": snap["status"],
        "version": info["version"],
        "versionInfo": ci.version_info,
        "updatedAt": _iso(at),
    }
    if registered is not None:
        detail["registeredAt"] = registered.replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return _envelope("ECS Container Instance State Change", "aws.ecs", account, region, at,
                     [ci.container_instance_arn], copy.deepcopy(detail))  # as it is now, not as it will be


def _ci_stored(ci: Any) -> bool:
    return ci._backend.container_instances.get(ci.cluster_name, {}).get(ci.id) is ci


# --- From changes to events -----------------------------------------------------------------------------------


def _drain_time(record: Record, offset: float) -> float:
    """When a drain's change fell due: its state's start in the drain's own schedule (``ecs_draining``, in
    ``time.monotonic()``; ``offset`` turns that into wall time)."""
    meta = record.obj.__dict__.get(ecs_draining._KEY) or {}
    step = ecs_draining.DRAINING["step_ms"] / 1000
    last = record.snap.get("lastStatus")
    due = None
    if record.kind == "task" and last in ecs_draining._STOPPING and "stop_started" in meta:
        due = meta["stop_started"] + ecs_draining._STOPPING.index(last) * step
    elif record.kind == "task" and record.snap.get("desiredStatus") == "STOPPED" and "stop_started" in meta:
        due = meta["stop_started"]  # the stop began; its first state follows at the same moment
    elif record.kind == "task" and "running_at" in meta:
        due = meta["running_at"] if last == "RUNNING" and not record.created else meta["running_at"] - step
    return record.wall if due is None else min(record.wall, offset + due)


def _flush() -> None:
    """Turns the changes noted so far into events, in the feed."""
    with _lock:
        batch = list(_RECORDS)
        _RECORDS.clear()
    if not batch:
        return
    offset = time.time() - time.monotonic()  # one for the batch: a moment the drain names is one time
    for record in batch:
        record.at = _drain_time(record, offset) if record.drain else record.wall
    # Changes one after another to the same task or container instance at the same moment are one event.
    groups: list[list[Record]] = []
    for record in batch:
        last = groups[-1][-1] if groups else None
        if (last is not None and record.kind != "ec2" and last.obj is record.obj
                and (not record.drain or last.at == record.at)):
            groups[-1].append(record)
        else:
            groups.append([record])
    final = {id(g[-1].obj): i for i, g in enumerate(groups)}
    out: list[tuple[float, int, dict[str, Any]]] = []
    for index, group in enumerate(groups):
        first, last = group[0], group[-1]
        obj = first.obj
        if first.kind == "ec2":
            out.append((first.at, first.seq, _ec2_event(first)))
            continue
        override = {k: v for r in group for k, v in r.override.items()}
        if first.kind == "ci":
            if not override and not _ci_stored(obj):
                continue
            snap = {**(_ci_snap(obj) if final[id(obj)] == index else last.snap), **override}
            out.append((first.at, first.seq, _ci_event(obj, snap, first.at)))
            continue
        if not _task_stored(obj):
            continue
        snap = _task_snap(obj) if final[id(obj)] == index else dict(last.snap)
        stop_code = next((r.stop_code for r in group if r.stop_code), None)
        if first.drain and snap["lastStatus"] in ecs_draining._STOPPING:
            meta = obj.__dict__.get(ecs_draining._KEY) or {}
            step = ecs_draining.DRAINING["step_ms"] / 1000
            target = ecs_draining._STOPPING.index(snap["lastStatus"])
            begin = ecs_draining._STOPPING.index(first.old_last) + 1 if first.old_last in ecs_draining._STOPPING else 0
            for passed in range(begin, target):  # states the catch-up went through without stopping
                at = first.at
                if "stop_started" in meta:
                    at = min(first.at, offset + meta["stop_started"] + passed * step)
                out.append((at, first.seq, _task_event(obj, {**snap, "lastStatus": ecs_draining._STOPPING[passed]}, at, stop_code)))
        out.append((first.at, first.seq, _task_event(obj, snap, first.at, stop_code)))
    out.sort(key=lambda e: (e[0], e[1]))
    with _lock:
        FEED.extend(event for _, _, event in out)


def _drain_tick() -> None:
    """``ecs_draining.tick``, with what it changes dated as the drain dates it."""
    _flush()
    _local.drain = True
    try:
        _original["drain_tick"]()
    finally:
        _local.drain = False
    _flush()


# --- Extension interface --------------------------------------------------------------------------------------


_original: dict[str, Any] = {}


def install() -> None:
    _original["run_instances"] = InstanceBackend.run_instances
    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
    for name in ("start", "stop", "terminate"):
        _wrap_instance(name)
    _original["task_init"] = Task.__init__
    _original["task_setattr"] = Task.__setattr__
    Task.__init__ = _task_init  # type: ignore[method-assign]
    Task.__setattr__ = _task_setattr  # type: ignore[method-assign,assignment]
    _original["ci_init"] = ContainerInstance.__init__
    _original["ci_setattr"] = ContainerInstance.__setattr__
    ContainerInstance.__init__ = _ci_init  # type: ignore[method-assign]
    ContainerInstance.__setattr__ = _ci_setattr  # type: ignore[method-assign,assignment]
    _original["stop_task"] = EC2ContainerServiceBackend.stop_task
    EC2ContainerServiceBackend.stop_task = stop_task  # type: ignore[method-assign]
    _original["deregister"] = EC2ContainerServiceBackend.deregister_container_instance
    EC2ContainerServiceBackend.deregister_container_instance = deregister_container_instance  # type: ignore[method-assign]
    _original["drain_tick"] = ecs_draining.tick
    ecs_draining.tick = _drain_tick  # type: ignore[assignment]


def tick() -> None:
    _flush()


def reset() -> None:
    with _lock:
        _RECORDS.clear()
        FEED.clear()


def events(query: dict[str, str]) -> dict[str, Any]:
    unknown = set(query) - {"since"}
    if unknown:
        raise ValueError(f"unknown parameters: {sorted(unknown)}")
    since = query.get("since", "0")
    if not since.isdigit():
        raise ValueError("since: a cursor, a whole number of 0 or more")
    _flush()
    with _lock:
        start = int(since)
        if start > len(FEED):
            raise ValueError(f"since {start} is past the end of the feed (cursor {len(FEED)}): was it reset?")
        return {"events": FEED[start:], "cursor": len(FEED)}


ENDPOINTS = {"/events": {"GET": events}}
