"""ECS behaviour moto 5.x lacks, patched into its backend.

moto 5.2 answers ``ListContainerInstances`` with every instance of the cluster: it ignores ``filter``,
``maxResults`` and ``nextToken``, treats a missing ``status`` as "any status", and returns an empty list
for a cluster that does not exist. AWS behaves as follows
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListContainerInstances.html):

- ``cluster``: unknown cluster -> ``ClusterNotFoundException``.
- ``status``: ACTIVE | DRAINING | REGISTERING | DEREGISTERING | REGISTRATION_FAILED; "If you don't
  specify this parameter, the default is to include container instances set to all states other than
  INACTIVE."
- ``maxResults``: 1 to 100; without it, up to 100 results and a ``nextToken`` when more remain.
- ``nextToken``: opaque; continue where the previous page stopped.
- ``filter``: the cluster query language
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html).

Only the part of the query language our functions use is emulated: expressions ``attribute op value``
joined by ``and``, where ``op`` is ``==``, ``!=``, ``in [a, b]``, ``exists`` or ``!exists``, and
``attribute`` is ``ec2InstanceId``, ``runningTasksCount``, ``agentConnected`` or ``attribute:<name>``.
Anything else is answered with ``InvalidParameterException`` naming the unsupported part, so a test
never passes against a filter the emulator silently ignored.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse

PAGE_LIMIT = 100
STATUSES = {"ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"}

Predicate = Callable[[Any], bool]

_CLAUSE = re.compile(
    r"""^\s*(?P<attr>[A-Za-z][\w.:\-]*)\s*
        (?:(?P<op>==|!=)\s*(?P<value>[^\s\[\]]+)
          |in\s*\[(?P<list>[^\]]*)\]
          |(?P<exists>!?exists))\s*$""",
    re.VERBOSE,
)


NAMED_ATTRIBUTES = {"ec2InstanceId", "runningTasksCount", "agentConnected"}


def _check_attribute(attr: str) -> None:
    if attr not in NAMED_ATTRIBUTES and not attr.startswith("attribute:"):
        raise InvalidParameterException(
            f"The filter attribute '{attr}' is not emulated (shipshape emulator supports ec2InstanceId, "
            "runningTasksCount, agentConnected and attribute:<name>)."
        )


def _attribute_value(instance: Any, attr: str) -> str | None:
    if attr == "ec2InstanceId":
        return instance.ec2_instance_id
    if attr == "runningTasksCount":
        return str(instance.running_tasks_count)
    if attr == "agentConnected":
        return "true" if instance.agent_connected else "false"
    value = instance.attributes.get(attr[len("attribute:") :])
    # An attribute set without a value exists but compares equal to nothing.
    return value if value is None else str(value)


def _clause(text: str) -> Predicate:
    m = _CLAUSE.match(text)
    if not m:
        raise InvalidParameterException(f"The filter expression '{text.strip()}' is not emulated.")
    attr = m.group("attr")
    _check_attribute(attr)
    if m.group("exists"):
        negate = m.group("exists").startswith("!")
        return lambda ci: (_attribute_value(ci, attr) is not None) != negate
    if m.group("list") is not None:
        wanted = {v.strip() for v in m.group("list").split(",") if v.strip()}
        return lambda ci: _attribute_value(ci, attr) in wanted
    value, op = m.group("value"), m.group("op")
    if op == "==":
        return lambda ci: _attribute_value(ci, attr) == value
    return lambda ci: _attribute_value(ci, attr) != value


def parse_filter(expression: str | None) -> Predicate:
    """Turns a cluster query language expression into a predicate over moto ContainerInstances."""
    if expression is None or not expression.strip():
        return lambda ci: True
    if re.search(r"\s(or|\|\|)\s|\(|&&", expression):
        raise InvalidParameterException(
            f"The filter '{expression}' uses or/parentheses, which are not emulated."
        )
    clauses = [_clause(part) for part in re.split(r"\s+and\s+", expression.strip())]
    return lambda ci: all(c(ci) for c in clauses)


def encode_token(offset: int, query: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": query}).encode()).decode()


def decode_token(token: str, query: dict[str, Any]) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise InvalidParameterException("The nextToken is not valid.")
    if data.get("q") != query:
        # AWS rejects a token used with different parameters than the call that produced it.
        raise InvalidParameterException("The nextToken does not match the request parameters.")
    return offset


def list_container_instances(self: EC2ContainerServiceResponse) -> ActionResult:
    cluster_str = self._get_param("cluster", "default")
    status = self._get_param("status")
    expression = self._get_param("filter")
    max_results = self._get_param("maxResults")
    next_token = self._get_param("nextToken")

    cluster = self.ecs_backend._get_cluster(cluster_str)  # ClusterNotFoundException, as in AWS
    if status is not None and status not in STATUSES:
        raise InvalidParameterException(f"status must be one of {sorted(STATUSES)}, got '{status}'.")
    if max_results is not None and not (1 <= int(max_results) <= PAGE_LIMIT):
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    limit = int(max_results) if max_results is not None else PAGE_LIMIT
    matches = parse_filter(expression)

    instances = self.ecs_backend.container_instances.get(cluster.name, {}).values()
    arns = sorted(
        ci.container_instance_arn
        for ci in instances
        if (ci.status == status if status else ci.status != "INACTIVE") and matches(ci)
    )
    query = {"cluster": cluster.name, "status": status, "filter": expression}
    start = decode_token(next_token, query) if next_token else 0
    page = arns[start : start + limit]
    result: dict[str, Any] = {"containerInstanceArns": page}
    if start + limit < len(arns):
        result["nextToken"] = encode_token(start + limit, query)
    return ActionResult(result)


def install() -> None:
    keep_tasks_running()
    EC2ContainerServiceResponse.list_container_instances = list_container_instances  # type: ignore[method-assign]
    EC2ContainerServiceResponse.put_attributes = put_attributes  # type: ignore[method-assign]
    EC2ContainerServiceResponse.delete_attributes = delete_attributes  # type: ignore[method-assign]


# --- Draining ------------------------------------------------------------------------------------------
# moto sets the status to DRAINING and nothing more. In AWS, "service tasks on the container instance that
# are in the RUNNING state are stopped and replaced"; "tasks that are not part of a service aren't
# affected" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html).
# A stopping task passes through DEACTIVATING, STOPPING and DEPROVISIONING before STOPPED
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html); its
# desired status is STOPPED from the start, so runningTasksCount no longer counts it while it still runs.
# Here a service task (group "service:<name>") on a DRAINING instance starts stopping `stop_after_ms` after
# the drain began and moves one state every `step_ms`. An instance whose agent is disconnected freezes,
# as in AWS. Set the timings with POST /_shipshape/ecs/draining.

import threading as _threading
import time as _time

from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager

DRAINING: dict[str, Any] = {"stop_after_ms": 1000, "step_ms": 300}
_STOPPING = ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
_drain_lock = _threading.RLock()


def keep_tasks_running() -> None:
    # moto advances a task's lastStatus on every DescribeTasks by default; AWS does not.
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**12})


def reset() -> None:
    DRAINING.update(stop_after_ms=1000, step_ms=300)
    keep_tasks_running()


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
    now = _time.monotonic()
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


# --- Attributes ----------------------------------------------------------------------------------------
# AWS (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PutAttributes.html, API_Attribute.html):
# ``targetId`` is a container instance's short id or full ARN ("If you specify the target ID using the short
# form, you must also specify the target type"). moto 5.2 accepts the ARN only without ``targetType`` and
# answers TargetNotFoundException for the documented ARN + ``targetType=container-instance`` form.
# DeleteAttributes: "For custom attributes, specify the attribute name and target ID, but don't specify the
# value" (API_DeleteAttributes.html); moto deletes only when the given value matches the stored one, so the
# documented call without a value deletes nothing.

_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9\-_/\\.]{1,128}$")
_ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9\-_.@/\\: ]{1,128}$")


def _attribute_targets(self: EC2ContainerServiceResponse) -> tuple[Any, list[tuple[Any, dict[str, Any]]]]:
    cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
    attributes = self._get_param("attributes")
    if not attributes:
        raise InvalidParameterException("attributes can not be empty")
    if len(attributes) > 10:
        raise InvalidParameterException("You can specify up to 10 attributes in a single call.")
    instances = self.ecs_backend.container_instances.get(cluster.name, {})
    targets = []
    for attr in attributes:
        name, value = attr.get("name", ""), attr.get("value")
        if not _ATTRIBUTE_NAME.match(name):
            raise InvalidParameterException(f"Attribute name '{name}' is not valid.")
        if value is not None and not _ATTRIBUTE_VALUE.match(value):
            raise InvalidParameterException(f"Attribute value '{value}' is not valid.")
        target_id, target_type = attr.get("targetId"), attr.get("targetType")
        if target_id is None:
            raise InvalidParameterException("targetId is required.")
        if not target_id.startswith("arn:") and target_type != "container-instance":
            raise InvalidParameterException("targetType is required with a short targetId.")
        instance = instances.get(target_id.rsplit("/", 1)[-1])
        if instance is None:
            raise _target_not_found(target_id)
        targets.append((instance, attr))
    return cluster, targets


def _target_not_found(target_id: str) -> Exception:
    from moto.ecs.exceptions import ECSException

    return ECSException("TargetNotFoundException", f"Could not find {target_id}")


def put_attributes(self: EC2ContainerServiceResponse) -> ActionResult:
    _, targets = _attribute_targets(self)
    for instance, attr in targets:
        instance.attributes[attr["name"]] = attr.get("value")
    return ActionResult({"attributes": [attr for _, attr in targets]})


def delete_attributes(self: EC2ContainerServiceResponse) -> ActionResult:
    _, targets = _attribute_targets(self)
    for instance, attr in targets:
        instance.attributes.pop(attr["name"], None)
    return ActionResult({"attributes": [attr for _, attr in targets]})


# --- Agent connection ------------------------------------------------------------------------------------
# A test sets a container instance's agent as disconnected (as when the ECS agent stops or loses its
# connection): POST /_shipshape/ecs/agent {"container_instance_arn": "...", "connected": false}.


def set_agent(spec: dict[str, Any]) -> dict[str, Any]:
    arn, connected = spec.get("container_instance_arn"), spec.get("connected")
    if not isinstance(arn, str) or not isinstance(connected, bool):
        raise ValueError("container_instance_arn: a string, connected: true or false")
    for regions in list(ecs_backends.values()):
        for backend in list(regions.values()):
            for instances in backend.container_instances.values():
                for ci in instances.values():
                    if ci.container_instance_arn == arn:
                        ci.agent_connected = connected
                        return {"container_instance_arn": arn, "connected": connected}
    raise ValueError(f"no container instance {arn}")


ENDPOINTS = {
    "/ecs/draining": {"GET": draining_settings, "POST": configure_draining},
    "/ecs/agent": {"POST": set_agent},
}
