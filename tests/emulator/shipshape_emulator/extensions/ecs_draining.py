"""ECS container instance draining as AWS documents it, which moto 5.x reduces to a status.

AWS ("Draining Amazon ECS container instances",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html):

- "Any tasks that are part of a service that are in a PENDING state are stopped immediately."
- "Tasks that are part of a service on the container instance that are in a RUNNING state are transitioned
  to a STOPPED state. The service scheduler attempts to replace the tasks according to the service's
  deployment type and deployment configuration parameters, minimumHealthyPercent and maximumPercent."
  "If the minimum is 100%, the service scheduler can't remove existing tasks until the replacement tasks
  are considered healthy" (RUNNING, without a load balancer); "a minimum of 50% allows the scheduler to
  stop two existing tasks before starting two new tasks"; "The maximumPercent parameter represents an
  upper limit on the number of running tasks during task replacement".
- "If there isn't enough container instance capacity, a service event message will be sent indicating
  the issue"; the task keeps running until its replacement runs.
- Standalone tasks (not started by a service) are not affected: they keep running and the instance stays
  DRAINING.
- A stopping task passes through DEACTIVATING, STOPPING and DEPROVISIONING before STOPPED
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html); its
  desired status is STOPPED from the start, so ``runningTasksCount`` ("tasks ... that have a desired status
  of RUNNING", API_ContainerInstance.html) no longer counts it, but it holds its CPU, memory and ports
  until it is STOPPED.

The deployment configuration's defaults for a replica service are ``maximumPercent`` 200 and
``minimumHealthyPercent`` 100 (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html);
for a daemon service 100 and 0. moto ignores ``deploymentConfiguration`` in CreateService; ``install``
keeps it, so DescribeServices shows it and the drain follows it.

How the emulator does it, on every tick (every request):

- A task whose ``group`` is ``service:<name>`` belongs to service ``<name>`` of its cluster: the one created
  with CreateService if there is one (its deployment configuration and, if larger, its desiredCount),
  otherwise a replica service with the defaults whose desired count is the number of tasks it runs.
- ``stop_after_ms`` after an instance is set to DRAINING, each of its RUNNING service tasks is replaced.
  When stopping it first would leave fewer RUNNING tasks than ``minimumHealthyPercent`` of the desired
  count (always, at 100 %), a replacement of the same task definition and group is first started on
  another container instance where ECS would place it (``ecs_placement``: ACTIVE, agent connected, with
  the CPU, GPUs, memory, ports and network interfaces the task reserves, meeting its ``memberOf`` and
  ``distinctInstance`` constraints; the zone with the fewest of the service's tasks first for a service
  spreading over zones, then the most memory left), but only while the service's RUNNING and PENDING tasks
  stay within ``maximumPercent``; the service gets the event "(service <name>) has started 1 tasks: (task
  <id>)." (service-event-messages.html). The replacement is PENDING for ``step_ms`` (it holds its resources and counts
  as pending on its instance), then RUNNING; then the old task begins stopping. When the minimum allows,
  the old task begins stopping at once and its replacement is started as soon as there is room.
- A stopping task moves one state every ``step_ms``; its resources and the cluster's running count are
  given back when it reaches STOPPED.
- When no instance can take a replacement, the old task keeps RUNNING and the drain stalls; the service
  gets the event "(service <name>) was unable to place a task because no container instance met all of its
  requirements." (newest first in DescribeServices ``events``, once per stalled task), also listed by
  ``GET /_shipshape/ecs/draining`` under ``unable_to_place``. Later ticks try again, so the task moves as
  soon as capacity appears.
- Daemon services (created with ``schedulingStrategy`` DAEMON) run one task per instance and are never
  placed on a DRAINING one: their task there stops without a replacement, once the instance's replica
  service tasks have stopped.
- An instance whose agent is disconnected freezes, as in AWS: nothing on it starts or moves on.
- Time passes between requests too: what fell due since the last request happened when it fell due.

Settings, ``POST /_shipshape/ecs/draining`` (each optional; ``GET`` shows them with ``unable_to_place``):
``stop_after_ms`` (1000) and ``step_ms`` (300) as above, and ``never_stop``: task ARNs a drain never touches
(neither replaced nor stopped: a task stuck in a deployment that never finishes), replacing the list.

moto also advances a task's lastStatus on every DescribeTasks by default; AWS does not, so ``install``
turns that off. moto's StopTask gives a task's resources back a second time when the task is already
stopping or STOPPED; AWS leaves such a task as it is, and so does the emulator.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Task, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api import state_manager

from . import ecs_placement

DEFAULTS: dict[str, Any] = {"stop_after_ms": 1000, "step_ms": 300}
DRAINING: dict[str, Any] = {**DEFAULTS, "never_stop": []}
UNABLE_TO_PLACE: list[dict[str, Any]] = []
REPLICA = {"minimumHealthyPercent": 100, "maximumPercent": 200}
DAEMON = {"minimumHealthyPercent": 0, "maximumPercent": 100}
_STOPPING = ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
_REASON = "Service tasks on a DRAINING container instance are stopped and replaced"
_KEY = "_shipshape_drain"
_drain_lock = threading.RLock()
_last_tick = [0.0]


def _meta(obj: Any) -> dict[str, Any]:
    return obj.__dict__.setdefault(_KEY, {})


def _iso(monotonic: float) -> str:
    wall = time.time() - (time.monotonic() - monotonic)
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- Patches -------------------------------------------------------------------------------------------------


def update_container_instances_state(self: EC2ContainerServiceBackend, cluster_str: str, ids: list[str], status: str) -> Any:
    """The drain starts when the status is set, not when the emulator next looks."""
    now = time.monotonic()
    instances, failures = _original_update_state(self, cluster_str, ids, status)
    with _drain_lock:
        for ci in instances:
            if ci.status == "DRAINING":
                _meta(ci).setdefault("since", now)
            else:
                _meta(ci).pop("since", None)
    return instances, failures


def stop_task(self: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str) -> Any:
    with _drain_lock:
        cluster = self._get_cluster(cluster_str)
        task_id = task_str.split("/")[-1]
        task = next((t for arn, t in self.tasks.get(cluster.name, {}).items() if arn.endswith(task_id)), None)
        if task is not None and task.desired_status == "STOPPED":
            return task  # already stopping or stopped: AWS changes nothing, moto would free its resources again
        pending = task is not None and task.last_status == "PENDING"
        out = _original_stop_task(self, cluster_str, task_str, reason)
        if task is not None:
            _meta(task)["freed"] = True
            ci = _instance_of(self, cluster.name, task)
            if pending and ci is not None:
                ci.pending_tasks_count = max(0, ci.pending_tasks_count - 1)
        return out


def create_service(self: EC2ContainerServiceResponse) -> Any:
    result = _original_create_service(self)
    cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
    service = self.ecs_backend.services.get(f"{cluster.name}:{self._get_param('serviceName')}")
    if service is not None:
        defaults = DAEMON if service.scheduling_strategy == "DAEMON" else REPLICA
        service.deployment_configuration = {**defaults, **(self._get_param("deploymentConfiguration") or {})}
    return result


_original_update_state = EC2ContainerServiceBackend.update_container_instances_state
_original_stop_task = EC2ContainerServiceBackend.stop_task
_original_create_service = EC2ContainerServiceResponse.create_service


def install() -> None:
    """Tasks keep their lastStatus until something (here: a drain) moves them on."""
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**12})
    EC2ContainerServiceBackend.update_container_instances_state = update_container_instances_state  # type: ignore[method-assign]
    EC2ContainerServiceBackend.stop_task = stop_task  # type: ignore[method-assign]
    EC2ContainerServiceResponse.create_service = create_service  # type: ignore[method-assign]


def reset() -> None:
    with _drain_lock:
        DRAINING.clear()
        DRAINING.update({**DEFAULTS, "never_stop": []})
        UNABLE_TO_PLACE.clear()
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**12})


# --- Control endpoint ----------------------------------------------------------------------------------------


def draining_settings() -> dict[str, Any]:
    with _drain_lock:
        return {**DRAINING, "never_stop": list(DRAINING["never_stop"]),
                "unable_to_place": [dict(e) for e in UNABLE_TO_PLACE]}


def configure_draining(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - set(DRAINING)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    for key in DEFAULTS:
        value = spec.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key}: a whole number of milliseconds, 0 or more")
    never = spec.get("never_stop", [])
    if not isinstance(never, list) or not all(isinstance(a, str) and a for a in never):
        raise ValueError("never_stop: a list of task ARNs")
    with _drain_lock:
        DRAINING.update(spec)
    return draining_settings()


# --- The drain -----------------------------------------------------------------------------------------------


def tick() -> None:
    now = time.monotonic()
    with _drain_lock:
        floor = _last_tick[0]
        for regions in list(ecs_backends.values()):
            for backend in list(regions.values()):
                for _ in range(50):  # until nothing more falls due at this moment
                    if not _pass(backend, now, floor):
                        break
        _last_tick[0] = now


def _instance_of(backend: Any, cluster_name: str, task: Any) -> Any:
    arn = task.container_instance_arn
    if not arn:
        return None
    return backend.container_instances.get(cluster_name, {}).get(arn.rsplit("/", 1)[-1])


def _never_stop(task: Any) -> bool:
    return any(task.task_arn == a or task.task_arn.rsplit("/", 1)[-1] == a for a in DRAINING["never_stop"])


def _pass(backend: Any, now: float, floor: float) -> bool:
    step = DRAINING["step_ms"] / 1000
    changed = False
    for cluster_name, tasks in list(backend.tasks.items()):
        cluster = backend.clusters.get(cluster_name)
        if cluster is None:
            continue
        owed = False
        for task in list(tasks.values()):
            changed |= _progress(backend, cluster, task, now, step)
            owed = owed or bool((task.__dict__.get(_KEY) or {}).get("owed"))
        # Nothing draining and no replacement owed: no service has anything to do (the rest of a pass
        # costs a lookup per task, on every request, in a cluster of tens of thousands of tasks).
        instances = backend.container_instances.get(cluster_name, {}).values()
        if not owed and not any(ci.status == "DRAINING" for ci in instances):
            continue
        services: dict[str, list[Any]] = {}
        for task in tasks.values():
            if str(task.group or "").startswith("service:"):
                services.setdefault(task.group[len("service:") :], []).append(task)
        for name in sorted(services):
            changed |= _drain_service(backend, cluster, name, services[name], now, floor)
    return changed


def _progress(backend: Any, cluster: Any, task: Any, now: float, step: float) -> bool:
    """A stopping task one state further, a pending replacement RUNNING, when their time has come."""
    meta = task.__dict__.get(_KEY)
    if not meta:
        return False
    ci = _instance_of(backend, cluster.name, task)
    if ci is not None and not ci.agent_connected:
        return False
    if "stop_started" in meta and not meta.get("freed"):
        if task.last_status == "STOPPED":  # stopped some other way (StopTask, its host terminated)
            meta["freed"] = True
            return False
        elapsed = now - meta["stop_started"]
        if elapsed < 0:
            return False
        state = _STOPPING[min(len(_STOPPING) - 1, int(elapsed / step))] if step > 0 else "STOPPED"
        if state == task.last_status:
            return False
        task.last_status = state
        if state == "STOPPED":
            meta["freed"] = True
            meta["stopped_at"] = meta["stop_started"] + (len(_STOPPING) - 1) * step
            if ci is not None:
                ecs_placement.release(ci, task.resource_requirements or {})
            cluster.running_tasks_count = max(0, cluster.running_tasks_count - 1)
        return True
    running_at = meta.get("running_at")
    if running_at is not None and task.desired_status == "RUNNING" and task.last_status == "PENDING" and now >= running_at:
        task.last_status = "RUNNING"
        if ci is not None:
            ci.pending_tasks_count = max(0, ci.pending_tasks_count - 1)
        return True
    return False


def _begin_stop(backend: Any, cluster: Any, task: Any, at: float) -> None:
    ci = _instance_of(backend, cluster.name, task)
    if task.last_status == "PENDING" and ci is not None:
        ci.pending_tasks_count = max(0, ci.pending_tasks_count - 1)
    task.desired_status = "STOPPED"
    task.stopped_reason = _REASON
    task.last_status = _STOPPING[0]
    if ci is not None:
        ci.running_tasks_count = max(0, ci.running_tasks_count - 1)
    _meta(task)["stop_started"] = at


def _place(backend: Any, cluster: Any, old: Any, at: float, name: str, service: Any) -> Any:
    """A replacement for ``old`` where ECS would place it (``ecs_placement``), or None."""
    needs = old.resource_requirements or {}
    candidates = ecs_placement.eligible(backend, cluster, old, service)
    if not candidates:
        return None
    ci = candidates[0]
    definition = backend.describe_task_definition(old.task_definition_arn)
    task = Task(
        cluster,
        definition,
        ci.container_instance_arn,
        needs,
        backend=backend,
        group=old.group,
        launch_type=old.launch_type,
        started_by=old.started_by,
        networking_configuration=getattr(old, "network_configuration", None),
    )
    backend.update_container_instance_resources(ci, needs)
    backend.update_cluster_resources(cluster, 1)
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    step = DRAINING["step_ms"] / 1000
    meta = _meta(task)
    meta["replaces"] = old.task_arn
    meta["running_at"] = at + step
    if step > 0:
        task.last_status = "PENDING"
        ci.pending_tasks_count += 1
    if service is not None:
        message = f"(service {name}) has started 1 tasks: (task {task.task_arn.rsplit('/', 1)[-1]})."
        service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _wall(at), "message": message})
    return task


def _wall(monotonic: float) -> datetime:
    return datetime.fromtimestamp(time.time() - (time.monotonic() - monotonic), timezone.utc)


def _unable(cluster: Any, name: str, service: Any, old: Any, at: float) -> None:
    meta = _meta(old)
    if meta.get("unable"):
        return  # once per stalled task; ECS does not repeat the event every few seconds either
    meta["unable"] = True
    message = f"(service {name}) was unable to place a task because no container instance met all of its requirements."
    if service is not None:
        service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _wall(at), "message": message})
    UNABLE_TO_PLACE.append({"service": name, "cluster": cluster.name, "task": old.task_arn, "at": _iso(at)})


def _counts(service: Any, tasks: list[Any], config: dict[str, Any]) -> tuple[int, int, int, int]:
    """(RUNNING tasks, RUNNING or PENDING tasks, minimum healthy, maximum) of a service, right now."""
    by_arn = {t.task_arn: t for t in tasks}
    active = [t for t in tasks if t.desired_status == "RUNNING" and t.last_status in ("PENDING", "RUNNING")]
    healthy = [t for t in active if t.last_status == "RUNNING"]
    # A replacement whose old task still runs does not raise the count the service wants; a stopped
    # task whose replacement is still to be placed does not lower it.
    in_flight = sum(
        1 for t in active
        if (old := by_arn.get(_meta(t).get("replaces", ""))) is not None and old.desired_status == "RUNNING"
    )
    owed = sum(1 for t in tasks if _meta(t).get("owed"))
    desired = max(getattr(service, "desired_count", 0) or 0, len(active) - in_flight + owed)
    minimum = math.ceil(desired * config["minimumHealthyPercent"] / 100)
    maximum = math.floor(desired * config["maximumPercent"] / 100)
    return len(healthy), len(active), minimum, maximum


def _drain_service(backend: Any, cluster: Any, name: str, tasks: list[Any], now: float, floor: float) -> bool:
    service = backend.services.get(f"{cluster.name}:{name}")
    if service is not None and service.status != "ACTIVE":
        service = None
    daemon = service is not None and service.scheduling_strategy == "DAEMON"
    config = {**(DAEMON if daemon else REPLICA), **(getattr(service, "deployment_configuration", None) or {})}
    stop_after = DRAINING["stop_after_ms"] / 1000
    changed = False

    def draining(task: Any) -> tuple[Any, float] | None:
        ci = _instance_of(backend, cluster.name, task)
        if ci is None or ci.status != "DRAINING" or not ci.agent_connected:
            return None
        return ci, _meta(ci).setdefault("since", now)

    # Service tasks still PENDING on a DRAINING instance are stopped immediately.
    for task in tasks:
        found = draining(task)
        if found and task.desired_status == "RUNNING" and task.last_status == "PENDING" and not _never_stop(task):
            _begin_stop(backend, cluster, task, max(found[1], floor))
            changed = True

    due = []
    for task in tasks:
        found = draining(task)
        if found is None or task.desired_status != "RUNNING" or task.last_status != "RUNNING" or _never_stop(task):
            continue
        if found[1] + stop_after <= now:
            due.append((found[1] + stop_after, task.task_arn, task, found[0]))
    for due_at, _, task, ci in sorted(due, key=lambda d: (d[0], d[1])):
        at = max(due_at, floor)
        meta = _meta(task)
        replacement = backend.tasks[cluster.name].get(meta.get("replacement", ""))
        if replacement is not None and replacement.desired_status != "RUNNING":
            replacement = None  # it was stopped before it could take over: start another
            meta.pop("replacement", None)
        if replacement is not None:
            if replacement.last_status == "RUNNING":
                _begin_stop(backend, cluster, task, max(at, _meta(replacement).get("running_at", at)))
                changed = True
            continue
        if daemon:
            others = [
                t for t in backend.tasks[cluster.name].values()
                if t.container_instance_arn == task.container_instance_arn and t.last_status != "STOPPED"
                and str(t.group or "").startswith("service:") and t.group != task.group
            ]
            if not any(_is_replica(backend, cluster, t) for t in others):
                _begin_stop(backend, cluster, task, at)
                changed = True
            continue
        healthy, active, minimum, maximum = _counts(service, tasks, config)
        if healthy - 1 >= minimum:
            _begin_stop(backend, cluster, task, at)
            meta["owed"] = True
            changed = True
        elif active < maximum:
            placed = _place(backend, cluster, task, at, name, service)
            if placed is not None:
                meta["replacement"] = placed.task_arn
                tasks.append(placed)
                changed = True
            else:
                _unable(cluster, name, service, task, at)

    # Tasks that stopped before their replacement: start it as soon as there is room.
    for task in sorted((t for t in tasks if _meta(t).get("owed")), key=lambda t: t.task_arn):
        _, active, _, maximum = _counts(service, tasks, config)
        if active >= maximum:
            break
        at = max(_meta(task).get("stop_started", now), floor)
        placed = _place(backend, cluster, task, at, name, service)
        if placed is None:
            _unable(cluster, name, service, task, at)
            break
        _meta(task)["owed"] = False
        _meta(task)["replacement"] = placed.task_arn
        tasks.append(placed)
        changed = True
    return changed


def _is_replica(backend: Any, cluster: Any, task: Any) -> bool:
    service = backend.services.get(f"{cluster.name}:{task.group[len('service:') :]}")
    return service is None or service.scheduling_strategy != "DAEMON"


ENDPOINTS = {"/ecs/draining": {"GET": draining_settings, "POST": configure_draining}}
