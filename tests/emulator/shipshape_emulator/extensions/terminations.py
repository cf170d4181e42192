"""Every EC2 instance termination, with the ECS tasks it took down, for invariant checks.

``GET /_shipshape/terminations`` lists one entry per EC2 instance terminated, in order::

    {"instance_id": "i-...", "at": "2026-11-22T10:00:00.000Z",
     "how": "lifecycle-completed" | "lifecycle-timed-out" | "direct",
     "result": "CONTINUE" | "ABANDON" | null, "group": "<Auto Scaling group>" | null,
     "tasks_not_stopped": [{"task_arn": ..., "last_status": ..., "group": ...}]}

``how`` says what let the instance go: a terminating lifecycle action that was completed or timed out
(``result`` is then the action's result), or anything without a lifecycle action
(``TerminateInstanceInAutoScalingGroup`` on a group without a terminating hook, a scale-in, EC2
``TerminateInstances``). ``group`` is the Auto Scaling group the instance belonged to.
``tasks_not_stopped`` are the ECS tasks on the instance's container instance whose last status was not
STOPPED at that moment: whatever a drain left behind. A safe drain leaves nothing there.

What follows a termination, as in AWS: "If you terminate a running container instance, Amazon ECS
automatically deregisters the instance from your cluster (stopped container instances or instances with
disconnected agents aren't automatically deregistered when terminated)"
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterContainerInstance.html). So a
container instance whose agent is connected is deregistered (INACTIVE, gone from ListContainerInstances)
and its tasks, which ran on the terminated host, are STOPPED; one whose agent is disconnected stays
registered as it was, its tasks as ECS last saw them. moto leaves every container instance ACTIVE with its
agent connected and its tasks RUNNING.

Cleared by ``POST /moto-api/reset``.

EC2 forgets a terminated instance after a while: "Recently terminated instances might appear in the
returned results. This interval is usually less than one hour"
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html); after that, naming it
fails the request with ``InvalidInstanceID.NotFound``, for every id named with it. moto keeps terminated
instances for good, so ``POST /_shipshape/ec2/forget`` with ``{"instance_id": "i-..."}`` plays that hour
passing: the instance, which must be terminated, is gone from EC2 (its container instances stay as ECS
left them).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from moto.ec2.models.instances import InstanceBackend
from moto.ecs.models import ecs_backends

RECORD: list[dict[str, Any]] = []
_lock = threading.RLock()
_cause = threading.local()


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@contextmanager
def cause(how: str, result: str | None, group: str | None) -> Iterator[None]:
    """What terminates the instances terminated inside this block (on this thread)."""
    previous = getattr(_cause, "value", None)
    _cause.value = {"how": how, "result": result, "group": group}
    try:
        yield
    finally:
        _cause.value = previous


def _container_instances(account_id: str, region: str, instance_id: str) -> list[tuple[Any, str, Any]]:
    """(ECS backend, cluster name, container instance) of an EC2 instance, in every cluster."""
    backend = ecs_backends[account_id][region]
    return [
        (backend, cluster_name, ci)
        for cluster_name, instances in list(backend.container_instances.items())
        if cluster_name != "orphaned"
        for ci in list(instances.values())
        if ci.ec2_instance_id == instance_id
    ]


def _tasks_on(backend: Any, cluster_name: str, ci: Any) -> list[Any]:
    return [
        task
        for task in backend.tasks.get(cluster_name, {}).values()
        if task.container_instance_arn == ci.container_instance_arn
    ]


def _terminated(ec2: Any, instance: Any) -> None:
    how = getattr(_cause, "value", None) or {"how": "direct", "result": None, "group": None}
    group = how["group"] or getattr(getattr(instance, "autoscaling_group", None), "name", None)
    found = _container_instances(ec2.account_id, ec2.region_name, instance.id)
    left = [
        {"task_arn": task.task_arn, "last_status": task.last_status, "group": task.group}
        for backend, cluster_name, ci in found
        for task in _tasks_on(backend, cluster_name, ci)
        if task.last_status != "STOPPED"
    ]
    with _lock:
        RECORD.append({"instance_id": instance.id, "at": _now_iso(), "how": how["how"], "result": how["result"],
                       "group": group, "tasks_not_stopped": left})
    for backend, cluster_name, ci in found:
        if not ci.agent_connected:
            continue
        for task in _tasks_on(backend, cluster_name, ci):
            if task.last_status != "STOPPED":
                task.desired_status = "STOPPED"
                task.last_status = "STOPPED"
                task.stopped_reason = f"Host EC2 (instance {instance.id}) terminated."
        ci.running_tasks_count = 0
        ci.status = "INACTIVE"
        backend.deregister_container_instance(cluster_name, ci.container_instance_arn, force=True)


def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
    before = {}
    for instance_id in instance_ids or []:
        try:
            before[instance_id] = self.get_instance(instance_id)._state.name
        except Exception:
            pass
    out = _original_terminate_instances(self, instance_ids)
    for instance, _previous in out:
        if before.get(instance.id) != "terminated" and instance._state.name == "terminated":
            _terminated(self, instance)
    return out


_original_terminate_instances = InstanceBackend.terminate_instances


def install() -> None:
    InstanceBackend.terminate_instances = terminate_instances  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    with _lock:
        RECORD.clear()


def terminations() -> list[dict[str, Any]]:
    with _lock:
        return [dict(entry) for entry in RECORD]


def forget(spec: dict[str, Any]) -> dict[str, Any]:
    instance_id = spec.get("instance_id") if isinstance(spec, dict) else None
    if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
        raise ValueError("instance_id: required, an EC2 instance id")
    from moto.ec2.models import ec2_backends

    for account in ec2_backends.values():
        for backend in account.values():
            for reservation in list(backend.reservations.values()):
                for instance in list(reservation.instances):
                    if instance.id != instance_id:
                        continue
                    if instance._state.name != "terminated":
                        raise ValueError(f"instance_id: {instance_id} is {instance._state.name}, not terminated")
                    reservation.instances.remove(instance)
                    return {"forgotten": instance_id}
    raise ValueError(f"instance_id: {instance_id} is not known to EC2")


ENDPOINTS = {"/terminations": {"GET": terminations}, "/ec2/forget": {"POST": forget}}
