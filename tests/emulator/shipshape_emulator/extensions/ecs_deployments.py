"""ECS service deployments and their rollout state, which moto 5.x leaves IN_PROGRESS forever (it
compares the desired count with an environment variable) and never starts anew on UpdateService; and a
service's running and pending counts, which moto takes from that variable too.

AWS (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html, ``rolloutState``):
"When a service deployment is started, it begins in an IN_PROGRESS state. When the service reaches a
steady state, the deployment transitions to a COMPLETED state." A service's ``deployments`` are its PRIMARY
deployment (the newest) and the ACTIVE ones it replaces, which are gone once it completes
(API_Deployment.html, ``status``). ``UpdateService`` with a new ``taskDefinition`` or
``forceNewDeployment`` starts a new deployment (API_UpdateService.html).

How the emulator does it: a deployment, started by CreateService or such an UpdateService, is
IN_PROGRESS for ``rollout_ms`` (0 by default: COMPLETED by the next request), then COMPLETED, and the
deployments it replaced are removed. ``POST /_shipshape/ecs/deployments {"rollout_ms": n}`` sets the time
for deployments started from then on (``null``: they never complete, a rollout that hangs); ``GET`` shows
it and the deployments in progress.

Counts (API_Service.html): ``runningCount`` is "The number of tasks in the cluster that are in the RUNNING
state", ``pendingCount`` those "in the PENDING state"; ``DescribeServices`` counts the service's tasks
(group ``service:<name>``) as they are when it answers, so a service whose drained task could not be
placed shows fewer running tasks than its ``desiredCount``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse

DEFAULTS: dict[str, Any] = {"rollout_ms": 0}
SETTINGS: dict[str, Any] = dict(DEFAULTS)
# Deployment id -> when it completes (monotonic seconds; None: never).
DUE: dict[str, float | None] = {}
_lock = threading.RLock()


def _start(service: Any) -> None:
    """A new PRIMARY deployment of the service's task definition; the previous ones become ACTIVE."""
    if getattr(service, "deployment_controller", {}).get("type", "ECS") != "ECS":
        return
    now = utcnow()
    for d in service.deployments:
        d["status"] = "ACTIVE"
    deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19}"
    service.deployments.insert(0, {
        "id": deployment_id, "status": "PRIMARY", "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count, "pendingCount": 0, "runningCount": service.desired_count,
        "failedTasks": 0, "createdAt": now, "updatedAt": now, "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS", "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    })
    ms = SETTINGS["rollout_ms"]
    with _lock:
        DUE[deployment_id] = None if ms is None else time.monotonic() + ms / 1000


def create_service(self: EC2ContainerServiceResponse) -> ActionResult:
    result = _original["create_service"](self)
    service = result.result["service"]  # type: ignore[index]
    service.deployments = []
    _start(service)
    return result


def update_service(self: EC2ContainerServiceResponse) -> ActionResult:
    cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
    name = str(self._get_param("service")).rsplit("/", 1)[-1]
    before = self.ecs_backend.services.get(f"{cluster.name}:{name}")
    definition = getattr(before, "task_definition", None)
    result = _original["update_service"](self)
    service = result.result["service"]  # type: ignore[index]
    if self._get_param("forceNewDeployment") or service.task_definition != definition:
        _start(service)
    return result


def describe_services(self: EC2ContainerServiceBackend, cluster_str: str, service_names: list[str]) -> Any:
    services, failures = _original["describe_services"](self, cluster_str, service_names)
    if services:
        cluster = self._get_cluster(cluster_str)
        counts: dict[str, list[int]] = {}
        for task in self.tasks.get(cluster.name, {}).values():
            group = str(task.group or "")
            if group.startswith("service:"):
                count = counts.setdefault(group, [0, 0])
                if task.last_status == "RUNNING":
                    count[0] += 1
                elif task.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"):
                    count[1] += 1
        for service in services:
            service.running_count, service.pending_count = counts.get(f"service:{service.name}", [0, 0])
    return services, failures


def tick() -> None:
    now = time.monotonic()
    with _lock:
        for regions in list(ecs_backends.values()):
            for backend in list(regions.values()):
                for service in list(backend.services.values()):
                    _settle(service, now)


def _settle(service: Any, now: float) -> None:
    deployments = getattr(service, "deployments", None) or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None or primary.get("rolloutState") != "IN_PROGRESS":
        return
    due = DUE.get(primary["id"], 0.0)
    if due is None or due > now:
        return
    primary["rolloutState"] = "COMPLETED"
    primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
    primary["updatedAt"] = utcnow()
    service.deployments = [primary]
    DUE.pop(primary["id"], None)


def settings() -> dict[str, Any]:
    with _lock:
        return {**SETTINGS, "in_progress": sorted(DUE)}


def configure(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    ms = spec.get("rollout_ms", 0)
    if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool) or ms < 0):
        raise ValueError("rollout_ms: a whole number of milliseconds, 0 or more, or null for never")
    with _lock:
        SETTINGS.update(spec)
    return settings()


_original: dict[str, Any] = {}


def install() -> None:
    for name, handler in (("create_service", create_service), ("update_service", update_service)):
        _original[name] = getattr(EC2ContainerServiceResponse, name)
        setattr(EC2ContainerServiceResponse, name, handler)
    _original["describe_services"] = EC2ContainerServiceBackend.describe_services
    EC2ContainerServiceBackend.describe_services = describe_services  # type: ignore[method-assign]


def reset() -> None:
    with _lock:
        SETTINGS.clear()
        SETTINGS.update(DEFAULTS)
        DUE.clear()


ENDPOINTS = {"/ecs/deployments": {"GET": settings, "POST": configure}}
