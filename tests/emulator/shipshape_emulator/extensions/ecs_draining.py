"""ECS container instance draining, which moto 5.x reduces to a status.

moto sets the status to DRAINING and nothing more. In AWS, "service tasks on the container instance that
are in the RUNNING state are stopped and replaced"; "tasks that are not part of a service aren't
affected" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html).
A stopping task passes through DEACTIVATING, STOPPING and DEPROVISIONING before STOPPED
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html); its
desired status is STOPPED from the start, so runningTasksCount no longer counts it while it still runs.

Here a service task (group "service:<name>") on a DRAINING instance starts stopping ``stop_after_ms`` after
the drain began and moves one state every ``step_ms``. An instance whose agent is disconnected freezes,
as in AWS. ``GET /_shipshape/ecs/draining`` shows the timings, ``POST`` sets them
(``{"stop_after_ms": 1000, "step_ms": 300}`` by default).

moto also advances a task's lastStatus on every DescribeTasks by default; AWS does not, so ``install``
turns that off.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager

DEFAULTS = {"stop_after_ms": 1000, "step_ms": 300}
DRAINING: dict[str, Any] = dict(DEFAULTS)
_STOPPING = ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
_drain_lock = threading.RLock()


def install() -> None:
    """Tasks keep their lastStatus until something (here: a drain) moves them on."""
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**12})


def reset() -> None:
    DRAINING.update(DEFAULTS)
    install()


def draining_settings() -> dict[str, Any]:
    return dict(DRAINING)


def configure_draining(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - set(DRAINING)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    for key, value in spec.items():
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{key}: a whole number of milliseconds, 0 or more")
    DRAINING.update(spec)
    return dict(DRAINING)


def tick() -> None:
    now = time.monotonic()
    stop_after, step = DRAINING["stop_after_ms"] / 1000, DRAINING["step_ms"] / 1000
    with _drain_lock:
        for regions in list(ecs_backends.values()):
            for backend in list(regions.values()):
                _tick_backend(backend, now, stop_after, step)


def _tick_backend(backend: Any, now: float, stop_after: float, step: float) -> None:
    for cluster_name, instances in list(backend.container_instances.items()):
        draining = {}
        for ci in instances.values():
            if ci.status == "DRAINING":
                since = ci.__dict__.setdefault("_shipshape_draining_since", now)
                if ci.agent_connected:
                    draining[ci.container_instance_arn] = (ci, since)
            else:
                ci.__dict__.pop("_shipshape_draining_since", None)
        if not draining:
            continue
        cluster = backend.clusters.get(cluster_name)
        for task in list(backend.tasks.get(cluster_name, {}).values()):
            entry = draining.get(task.container_instance_arn)
            if entry is None or not str(task.group or "").startswith("service:"):
                continue
            ci, since = entry
            started = task.__dict__.get("_shipshape_stop_started")
            if started is None:
                if task.desired_status != "RUNNING" or task.last_status != "RUNNING" or now < since + stop_after:
                    continue
                # Time passes between requests too: the stop began when it was due, not when we looked.
                task.__dict__["_shipshape_stop_started"] = since + stop_after
                task.desired_status = "STOPPED"
                task.stopped_reason = "Service tasks on a DRAINING container instance are stopped and replaced"
                task.last_status = _STOPPING[0]
                backend.update_container_instance_resources(ci, task.resource_requirements, removing=True)
                if cluster is not None:
                    backend.update_cluster_resources(cluster, -1, task_state="RUNNING")
                continue
            index = min(len(_STOPPING) - 1, int((now - started) / step) if step > 0 else len(_STOPPING) - 1)
            task.last_status = _STOPPING[index]


ENDPOINTS = {"/ecs/draining": {"GET": draining_settings, "POST": configure_draining}}
