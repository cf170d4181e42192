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

The query language is evaluated by ``ecs_query`` (the one evaluator the emulator's placement uses too);
an expression it does not emulate is answered with ``InvalidParameterException`` naming the unsupported
part, so a test never passes against a filter the emulator silently ignored.

The other list and describe calls our functions make, as the API reference documents them and moto 5.2
does not:

- ``ListTasks`` (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html):
  ``maxResults`` 1 to 100, "If this parameter isn't used, then ListTasks returns up to 100 results and a
  nextToken value if applicable"; ``desiredStatus`` "The default status filter is RUNNING" (moto lists
  every task, STOPPED ones included); ``serviceName`` limits the results to the service's tasks (moto
  ignores it); ``containerInstance`` is an id or an ARN (moto matches any substring); ``family``,
  ``startedBy`` ("When you specify startedBy as the filter, it must be the only filter that you use") and
  ``launchType``.
- ``ListServices`` (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServices.html):
  "If this parameter isn't used, then ListServices returns up to 10 results and a nextToken value if
  applicable", ``maxResults`` 1 to 100, filters ``schedulingStrategy`` and ``launchType``. moto returns
  every service at once.
- ``ListClusters`` (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListClusters.html):
  up to 100 results by default, ``maxResults`` 1 to 100. moto returns every cluster at once.
- ``DescribeCapacityProviders`` (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeCapacityProviders.html):
  ``capacityProviders`` is optional (every provider is described without it; moto fails with HTTP 500)
  and takes up to 100 names; ``maxResults`` 1 to 10, "If this parameter is not used, then
  DescribeCapacityProviders returns up to 10 results and a nextToken value if applicable", with names
  given or not.
- ``DescribeServices`` ("You may specify up to 10 services to describe in a single operation",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html): longer lists are
  refused with ``InvalidParameterException``; moto takes any number.
- ``DescribeTasks`` ("A list of up to 100 task IDs or full ARN entries",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html), ``DescribeContainerInstances`` ("up to 100",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeContainerInstances.html) and ``UpdateContainerInstancesState``
  ("A list of up to 10 container instance IDs or full ARN entries",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateContainerInstancesState.html): longer lists are refused with
  ``InvalidParameterException``; moto takes any number. ``DescribeTasks`` also looks only in the cluster
  it is asked about and reports unknown tasks in ``failures`` with reason ``MISSING``; moto searches every
  cluster by substring and leaves unknown tasks out silently.

Every page is ordered the same way (ARNs sorted) so that a ``nextToken`` continues where its page ended.

Eventual consistency: "The Amazon ECS API follows an eventual consistency model ... the result of an API
command you run that affects your Amazon ECS resources might not be immediately visible to all
subsequent commands you run" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html).
With ``POST /_shipshape/ecs/consistency`` ``{"describe_tasks_lag_seconds": 5}``, a task started less than
that long ago is listed by ``ListTasks`` but answered by ``DescribeTasks`` with a ``MISSING`` failure, as
a task not yet visible to it would be. With ``{"list_tasks_lag_seconds": 5}``, a task started less than that
long ago is not listed by ``ListTasks`` yet: RunTask's reference says results "might not be immediately
visible", and a task placed a moment before an instance is drained may be missing from the first listing
after it. Both are off (0) by default and after a reset, and can be set together or one at a time.
"""

from __future__ import annotations

import time
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import CapacityProviderFailure, Task
from moto.ecs.responses import DESCRIBE_TASKS_TAGS, EC2ContainerServiceResponse

from ..paging import page
from . import ecs_query

PAGE_LIMIT = 100
STATUSES = {"ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"}


def parse_filter(expression: str | None) -> ecs_query.Predicate:
    """The predicate of a cluster query language expression, or ``InvalidParameterException``."""
    try:
        return ecs_query.parse(expression)
    except ecs_query.Unsupported as why:
        raise InvalidParameterException(f"The filter '{expression}' is not emulated: {why}") from None


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
    groups = ecs_query.groups_on(self.ecs_backend, cluster.name)
    arns = sorted(
        ci.container_instance_arn
        for ci in instances
        if (ci.status == status if status else ci.status != "INACTIVE") and matches(ci, groups)
    )
    query = {"cluster": cluster.name, "status": status, "filter": expression}
    return _paged("containerInstanceArns", arns, limit, next_token, query)


def _refuse(message: str) -> Exception:
    return InvalidParameterException(message)


def _paged(key: str, items: list[Any], limit: int, token: str | None, query: dict[str, Any]) -> ActionResult:
    chunk, rest = page(items, limit, token, query, _refuse)
    result: dict[str, Any] = {key: chunk}
    if rest is not None:
        result["nextToken"] = rest
    return ActionResult(result)


def _limit(self: EC2ContainerServiceResponse, default: int, most: int) -> int:
    value = self._get_param("maxResults")
    if value is None:
        return default
    if not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidParameterException(f"maxResults must be between 1 and {most}.")
    return value


def _at_most(items: list[Any] | None, most: int, name: str) -> list[Any]:
    if items is not None and len(items) > most:
        raise InvalidParameterException(f"{name} can have at most {most} items.")
    return items or []


def _launch_type(task: Any) -> str:
    return task.launch_type or ("EC2" if task.container_instance_arn else "FARGATE")


def _family(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def list_tasks(self: EC2ContainerServiceResponse) -> ActionResult:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    instance = self._get_param("containerInstance")
    family = self._get_param("family")
    started_by = self._get_param("startedBy")
    service = self._get_param("serviceName")
    desired = self._get_param("desiredStatus") or "RUNNING"
    launch_type = self._get_param("launchType")
    limit = _limit(self, 100, 100)
    if desired not in ("RUNNING", "PENDING", "STOPPED"):
        raise InvalidParameterException(f"desiredStatus must be one of RUNNING, PENDING, STOPPED, got '{desired}'.")
    if started_by and (instance or family or service or launch_type):
        raise InvalidParameterException("When you specify startedBy as the filter, it must be the only filter that you use.")
    instance_id = instance.rsplit("/", 1)[-1] if instance else None
    service_name = service.rsplit("/", 1)[-1] if service else None
    listed_before = time.monotonic() - _settings["list_tasks_lag_seconds"]
    arns = sorted(
        task.task_arn
        for task in backend.tasks.get(cluster.name, {}).values()
        if task.desired_status == desired
        and task.__dict__.get(_CREATED, listed_before) <= listed_before
        and (instance_id is None or (task.container_instance_arn or "").rsplit("/", 1)[-1] == instance_id)
        and (family is None or _family(task.task_definition_arn) == family)
        and (started_by is None or task.started_by == started_by)
        and (service_name is None or task.group == f"service:{service_name}")
        and (launch_type is None or _launch_type(task) == launch_type)
    )
    query = {"cluster": cluster.name, "containerInstance": instance_id, "family": family, "startedBy": started_by,
             "serviceName": service_name, "desiredStatus": desired, "launchType": launch_type}
    return _paged("taskArns", arns, limit, self._get_param("nextToken"), query)


def list_services(self: EC2ContainerServiceResponse) -> ActionResult:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    strategy = self._get_param("schedulingStrategy")
    launch_type = self._get_param("launchType")
    limit = _limit(self, 10, 100)
    arns = backend.list_services(cluster.name, strategy, launch_type=launch_type)
    query = {"cluster": cluster.name, "schedulingStrategy": strategy, "launchType": launch_type}
    return _paged("serviceArns", arns, limit, self._get_param("nextToken"), query)


def list_clusters(self: EC2ContainerServiceResponse) -> ActionResult:
    limit = _limit(self, 100, 100)
    return _paged("clusterArns", sorted(self.ecs_backend.list_clusters()), limit, self._get_param("nextToken"), {})


def describe_capacity_providers(self: EC2ContainerServiceResponse) -> ActionResult:
    backend = self.ecs_backend
    names = self._get_param("capacityProviders")
    _at_most(names, 100, "capacityProviders")
    limit = _limit(self, 10, 10)
    wanted: list[Any] = list(names) if names else [p.name for p in backend.capacity_providers.values()]
    chunk, rest = page(wanted, limit, self._get_param("nextToken"), {"capacityProviders": names}, _refuse)
    providers, failures = [], []
    for name in chunk:
        provider = backend._get_provider(name)
        if provider is not None:
            providers.append(provider)
        else:
            failures.append(CapacityProviderFailure("MISSING", name, backend.account_id, backend.region_name))
    result: dict[str, Any] = {"capacityProviders": providers, "failures": failures}
    if rest is not None:
        result["nextToken"] = rest
    return ActionResult(result)


def describe_tasks(self: EC2ContainerServiceResponse) -> ActionResult:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    wanted = _at_most(self._get_param("tasks"), 100, "tasks")
    if not wanted:
        raise InvalidParameterException("Tasks cannot be empty.")
    by_id = {arn.rsplit("/", 1)[-1]: task for arn, task in backend.tasks.get(cluster.name, {}).items()}
    tasks, failures = [], []
    visible_before = time.monotonic() - _settings["describe_tasks_lag_seconds"]
    for name in wanted:
        task = by_id.get(name.rsplit("/", 1)[-1])
        if task is not None and task.__dict__.get(_CREATED, visible_before) > visible_before:
            task = None
        if task is not None and task not in tasks:
            tasks.append(task)
        elif task is None:
            arn = name if name.startswith("arn:") else f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:task/{cluster.name}/{name}"
            failures.append({"arn": arn, "reason": "MISSING"})
    if "TAGS" in (self._get_param("include") or []):
        self._include_in_response(DESCRIBE_TASKS_TAGS)
    else:
        self._exclude_from_response(DESCRIBE_TASKS_TAGS)
    return ActionResult({"tasks": tasks, "failures": failures})


def describe_container_instances(self: EC2ContainerServiceResponse) -> ActionResult:
    _at_most(self._get_param("containerInstances"), 100, "containerInstances")
    # AWS answers an ARN the cluster does not have with a MISSING failure
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeContainerInstances.html,
    # "failures"); moto raises a KeyError (HTTP 500) when the cluster never had a container instance.
    cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
    self.ecs_backend.container_instances.setdefault(cluster.name, {})
    return _original["describe_container_instances"](self)


def describe_services(self: EC2ContainerServiceResponse) -> ActionResult:
    _at_most(self._get_param("services"), 10, "services")
    return _original["describe_services"](self)


def update_container_instances_state(self: EC2ContainerServiceResponse) -> ActionResult:
    _at_most(self._get_param("containerInstances"), 10, "containerInstances")
    return _original["update_container_instances_state"](self)


_PATCHED = {
    "list_container_instances": list_container_instances,
    "list_tasks": list_tasks,
    "list_services": list_services,
    "list_clusters": list_clusters,
    "describe_capacity_providers": describe_capacity_providers,
    "describe_tasks": describe_tasks,
    "describe_container_instances": describe_container_instances,
    "describe_services": describe_services,
    "update_container_instances_state": update_container_instances_state,
}
_original = {name: getattr(EC2ContainerServiceResponse, name) for name in _PATCHED}


_CREATED = "_shipshape_created"
_DEFAULTS: dict[str, float] = {"describe_tasks_lag_seconds": 0.0, "list_tasks_lag_seconds": 0.0}
_settings: dict[str, float] = dict(_DEFAULTS)
_task_init = Task.__init__


def _init_task(task: Any, *args: Any, **kwargs: Any) -> None:
    _task_init(task, *args, **kwargs)
    task.__dict__[_CREATED] = time.monotonic()


def install() -> None:
    for name, handler in _PATCHED.items():
        setattr(EC2ContainerServiceResponse, name, handler)
    Task.__init__ = _init_task  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    _settings.update(_DEFAULTS)


def consistency_settings() -> dict[str, Any]:
    return dict(_settings)


def configure_consistency(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - set(_settings)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    for name in body:
        lag = float(body[name])
        if not 0 <= lag <= 300:
            raise ValueError(f"{name} must be between 0 and 300")
        _settings[name] = lag
    return dict(_settings)


ENDPOINTS = {"/ecs/consistency": {"GET": consistency_settings, "POST": configure_consistency}}
