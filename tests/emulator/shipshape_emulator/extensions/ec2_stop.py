"""What stopping an EC2 instance does to its ECS container instance, which moto 5.x leaves untouched.

AWS:

- The agent stops with the instance: ``agentConnected`` is "true if the agent is connected to Amazon ECS.
  An instance with an agent that may be unhealthy or stopped returns false"
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerInstance.html).
- The container instance stays registered: "stopped container instances or instances with disconnected
  agents aren't automatically deregistered when terminated"
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterContainerInstance.html).
- Its tasks stop: "A task was stopped when an EC2 instance was stopped. When you stop a container instance,
  the tasks that are running on it are transitioned to the STOPPED status."
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwe_events.html)

So when an EC2 instance stops (EC2 ``StopInstances``, or a warm pool stopping it): on each of its container
instances whose agent was connected, every task not yet STOPPED becomes STOPPED (desired and last status,
``stoppedReason`` "Host EC2 (instance <id>) stopped.", as ``terminations`` words a terminated host), the
instance's resources are all free again and its task counts 0, and the agent is disconnected. One whose agent
was already disconnected is left as ECS last saw it. When the instance starts again its agent stays
disconnected until the test connects it (``POST /_shipshape/ecs/agent``): a test decides when an agent
comes up.

``GET /_shipshape/stops`` lists one entry per EC2 instance stopped, in order, like the termination record::

    {"instance_id": "i-...", "at": "2026-11-22T10:00:00.000Z",
     "tasks_not_stopped": [{"task_arn": ..., "last_status": ..., "group": ...}]}

``tasks_not_stopped``: the tasks the stop took down (a drain that finished in time leaves none). Cleared by
``POST /moto-api/reset``.

Starting a terminated instance is refused, which moto 5.x allows: "You can't connect to or restart an
instance after you've terminated it"
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/terminating-instances.html); the call fails with
``IncorrectInstanceState`` ("The instance is in an incorrect state, so the requested action can't be
completed", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) and starts none of
the instances named.
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timezone
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import InstanceBackend
from moto.ecs.models import ecs_backends

RECORD: list[dict[str, Any]] = []
_lock = threading.RLock()
_original_stop_instances: list[Any] = []
_original_start_instances: list[Any] = []


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _stopped(ec2: Any, instance: Any) -> None:
    backend = ecs_backends[ec2.account_id][ec2.region_name]
    left = []
    for cluster_name, container_instances in list(backend.container_instances.items()):
        if cluster_name == "orphaned":
            continue
        for ci in list(container_instances.values()):
            if ci.ec2_instance_id != instance.id or not ci.agent_connected:
                continue
            tasks = [
                t for t in backend.tasks.get(cluster_name, {}).values()
                if t.container_instance_arn == ci.container_instance_arn and t.last_status != "STOPPED"
            ]
            for task in tasks:
                left.append({"task_arn": task.task_arn, "last_status": task.last_status, "group": task.group})
                task.desired_status = "STOPPED"
                task.last_status = "STOPPED"
                task.stopped_reason = f"Host EC2 (instance {instance.id}) stopped."
            cluster = backend.clusters.get(cluster_name)
            if cluster is not None:
                cluster.running_tasks_count = max(0, cluster.running_tasks_count - len(tasks))
            ci.running_tasks_count = 0
            ci.pending_tasks_count = 0
            ci.remaining_resources = copy.deepcopy(ci.registered_resources)
            ci.agent_connected = False
    with _lock:
        RECORD.append({"instance_id": instance.id, "at": _now_iso(), "tasks_not_stopped": left})


def stop_instances(self: Any, instance_ids: list[str]) -> Any:
    out = _original_stop_instances[0](self, instance_ids)
    for instance, previous in out:
        if previous.name != "stopped" and instance._state.name == "stopped":
            _stopped(self, instance)
    return out


def start_instances(self: Any, instance_ids: list[str]) -> Any:
    for instance in self.get_multi_instances_by_id(instance_ids):
        if instance._state.name in ("shutting-down", "terminated"):
            raise EC2ClientError(
                "IncorrectInstanceState",
                f"The instance '{instance.id}' is not in a state from which it can be started.",
            )
    return _original_start_instances[0](self, instance_ids)


def install() -> None:
    _original_stop_instances[:] = [InstanceBackend.stop_instances]
    InstanceBackend.stop_instances = stop_instances  # type: ignore[method-assign]
    _original_start_instances[:] = [InstanceBackend.start_instances]
    InstanceBackend.start_instances = start_instances  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    with _lock:
        RECORD.clear()


def stops() -> list[dict[str, Any]]:
    with _lock:
        return [dict(entry) for entry in RECORD]


ENDPOINTS = {"/stops": {"GET": stops}}
