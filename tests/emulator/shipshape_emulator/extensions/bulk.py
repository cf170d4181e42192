"""Seeding a large cluster in one request, for the benchmarks: what RegisterContainerInstance, PutAttributes,
StartTask and UpdateTaskProtection would do for thousands of instances and tens of thousands of tasks,
through the same code those calls run (moto's backend and this emulator's extensions), without a request
each. Through the API, 5,000 registrations and 50,000 task starts take many minutes: each request pays
HTTP and serialization, and every request ticks the drain extension over every task, so seeding alone grows
with the square of the tasks.

``POST /_shipshape/bulk/ecs``::

    {"cluster": "fleet",
     "instances": [{"instance_id": "i-...", "attributes": {"tier": "gold"}}, ...],
     "tasks": [{"family": "svc-000", "instance": 17, "group": "service:svc-000", "protected": false}, ...]}

Each instance is registered as the ECS agent registers it (its capacity provider from its Auto Scaling
group, ``ecs_capacity_providers``), with the given attributes added; each task is started on the instance
at that position in ``instances``, holding its resources as StartTask's (``ecs_placement``). Answers
``{"container_instance_arns": [...], "task_arns": [...]}`` in the same order. Nothing is checked beyond what
those calls check: the benchmark's fleet is built to fit.
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.ecs.models import ecs_backends

from . import ecs_capacity_providers, ecs_placement, ecs_protection

ACCOUNT = "123456789012"
REGION = "us-east-1"


def seed(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {"cluster", "instances", "tasks"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    if not isinstance(spec.get("cluster"), str):
        raise ValueError("cluster: a cluster name")
    backend = ecs_backends[ACCOUNT][REGION]
    if spec["cluster"] not in backend.clusters:
        raise ValueError(f"cluster: {spec['cluster']!r} does not exist")
    cluster = backend.clusters[spec["cluster"]]
    groups = {
        state.instance.id: group
        for group in autoscaling_backends[ACCOUNT][REGION].autoscaling_groups.values()
        for state in group.instance_states
    }
    registered = []
    for n, entry in enumerate(spec.get("instances") or []):
        instance_id = entry.get("instance_id") if isinstance(entry, dict) else None
        if not isinstance(instance_id, str):
            raise ValueError(f"instances[{n}].instance_id: an EC2 instance id")
        ci = ecs_capacity_providers.register_in(backend, cluster, instance_id, groups.get(instance_id))
        for name, value in (entry.get("attributes") or {}).items():
            ci.attributes[name] = value
        registered.append(ci)
    started = []
    definitions: dict[str, Any] = {}
    for n, entry in enumerate(spec.get("tasks") or []):
        family, at = entry.get("family"), entry.get("instance")
        if not isinstance(family, str) or not isinstance(at, int) or not 0 <= at < len(registered):
            raise ValueError(f"tasks[{n}]: a family and the position of an instance in instances")
        definition = definitions.get(family) or definitions.setdefault(family, backend.describe_task_definition(family))
        group = entry.get("group") or f"family:{definition.family}"
        task = ecs_placement.start_one(backend, cluster, definition, registered[at], group)
        if entry.get("protected"):
            ecs_protection.protect(task.task_arn)
        started.append(task.task_arn)
    return {"container_instance_arns": [ci.container_instance_arn for ci in registered], "task_arns": started}


def install() -> None:
    """Nothing to patch."""


def tick() -> None:
    """No timers."""


def reset() -> None:
    """No state of its own."""


ENDPOINTS = {"/bulk/ecs": {"POST": seed}}
