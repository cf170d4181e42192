"""ECS task placement as AWS documents it, where moto 5.x checks CPU, memory and TCP ports only.

AWS ("Use strategies to define Amazon ECS task placement",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement-strategies.html): ECS places a
task on a container instance that satisfies "the CPU, GPU, memory, and port requirements in the task
definition", then "the task placement constraints", then orders them by "the task placement strategies";
"For tasks running as part of an Amazon ECS service, the task placement strategy is spread using the
attribute:ecs.availability-zone". What the emulator adds, for the replacements a drain places
(``ecs_draining``) and for ``StartTask``'s bookkeeping:

- A task's requirements (task-level ``cpu``/``memory`` when set, else its containers' ``cpu`` and
  ``memoryReservation`` or ``memory``): static host ports by protocol, ``PORTS`` (tcp) and ``PORTS_UDP``
  (udp) as ``remainingResources`` lists them, from ``portMappings`` in ``bridge`` mode when ``hostPort``
  is set and not 0 (0 or none is a dynamic port, "Docker chooses a random port"), in ``host`` mode the
  ``hostPort`` or the ``containerPort``; none in ``awsvpc`` mode (task-networking.html). moto counts a
  ``hostPort`` of 0 as a port and ignores the protocol.
- GPUs: ``resourceRequirements`` of type ``GPU`` ("the number of physical GPUs the Amazon ECS container
  agent reserves for the container", API_ResourceRequirement.html). ``RegisterContainerInstance`` takes
  the instance's GPU ids in ``totalResources`` (name ``GPU``, ``stringSetValue``), as the agent sends them;
  ``remainingResources`` lists the GPU ids no task has reserved. moto ignores both.
- ``awsvpc`` tasks each take a network interface: "by default a c5.large instance may have up to three
  ENIs attached to it. The primary network interface for the instance counts as one ... you can typically
  only run two such tasks" and with ``awsvpcTrunking`` ten (container-instance-eni.html; instances with
  the ``ecs.awsvpc-trunk-id`` attribute). ``TASK_ENI_LIMITS`` holds the types the tests use; an instance of
  another type takes no ``awsvpc`` task here.
- ``StartTask`` takes ``networkConfiguration`` for ``awsvpc`` tasks ("The VPC subnet and security group
  configuration for tasks that receive their own elastic network interface", API_StartTask.html); moto
  drops it and then refuses the task for lacking it.
- ``RegisterContainerInstance`` keeps the ``attributes`` it is given ("The container instance attributes
  that this container instance supports", API_RegisterContainerInstance.html), so a test registers an
  instance of another type or with custom attributes; moto ignores them.
- ``CreateService`` and ``UpdateService`` keep ``placementConstraints`` and ``placementStrategy`` (moto
  drops them), and ``DescribeServices`` shows them.
- Constraints (task-placement-constraints.html): ``distinctInstance`` ("Place each task on a different
  container instance", for the tasks of the service's group with desired status RUNNING) and ``memberOf``
  (a cluster query language expression, evaluated by ``ecs_query``) from the task definition and the
  service. An expression ``ecs_query`` does not emulate places the task nowhere.
- Capacity providers (``ecs_capacity_providers``): a service with a capacity provider strategy places
  only on instances of the provider its strategy picks.
- Order: a service spreading over zones (no strategy, or ``spread`` on ``attribute:ecs.availability-zone``)
  prefers the zone with the fewest of its tasks, then the instance with the most memory left; others the
  instance with the most memory left (ties in ARN order).
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.models import EC2ContainerServiceBackend, Task
from moto.ecs.responses import EC2ContainerServiceResponse

from . import ecs_capacity_providers, ecs_query

# Tasks in awsvpc mode per instance type, without and with ENI trunking (eni-trunking-supported-instance-types).
TASK_ENI_LIMITS = {"m5.large": (2, 10), "m5.xlarge": (3, 20), "c5.large": (2, 10), "c5.xlarge": (3, 20)}
_ZONE = "attribute:ecs.availability-zone"
_KEY = "_shipshape_placement"


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def requirements(task_definition: Any) -> dict[str, Any]:
    """What a task of this definition reserves on its instance."""
    containers = task_definition.container_definitions
    cpu = _int(task_definition.cpu)
    memory = _int(task_definition.memory)
    if cpu is None:
        cpu = sum(_int(c.get("cpu")) or 0 for c in containers)
    if memory is None:
        memory = sum(_int(c.get("memoryReservation")) or _int(c.get("memory")) or 0 for c in containers)
    mode = task_definition.network_mode or "bridge"
    tcp: list[int] = []
    udp: list[int] = []
    if mode in ("bridge", "host"):
        for c in containers:
            for m in c.get("portMappings") or []:
                port = m.get("hostPort") if mode == "bridge" else (m.get("hostPort") or m.get("containerPort"))
                if port:
                    (udp if m.get("protocol") == "udp" else tcp).append(int(port))
    gpus = sum(
        _int(r.get("value")) or 0
        for c in containers
        for r in c.get("resourceRequirements") or []
        if r.get("type") == "GPU"
    )
    return {"CPU": cpu, "MEMORY": memory, "PORTS": tcp, "PORTS_UDP": udp, "GPU": gpus, "AWSVPC": mode == "awsvpc"}


def _resource(ci: Any, name: str, remaining: bool = True) -> dict[str, Any] | None:
    resources = ci.remaining_resources if remaining else ci.registered_resources
    return next((r for r in resources if r.get("name") == name), None)


def _strings(ci: Any, name: str, remaining: bool = True) -> list[str]:
    found = _resource(ci, name, remaining)
    return found.setdefault("stringSetValue", []) if found is not None else []


def _meta(ci: Any) -> dict[str, Any]:
    return ci.__dict__.setdefault(_KEY, {"awsvpc": 0})


def eni_limit(ci: Any) -> int | None:
    limits = TASK_ENI_LIMITS.get(ci.attributes.get("ecs.instance-type") or "")
    if limits is None:
        return None
    return limits[1] if "ecs.awsvpc-trunk-id" in ci.attributes else limits[0]


def fits(ci: Any, needs: dict[str, Any]) -> bool:
    """CPU, GPU, memory, ports and network interfaces: what the instance has left for the task."""
    if needs.get("CPU", 0) > (_resource(ci, "CPU") or {}).get("integerValue", 0):
        return False
    if needs.get("MEMORY", 0) > (_resource(ci, "MEMORY") or {}).get("integerValue", 0):
        return False
    for name in ("PORTS", "PORTS_UDP"):
        if any(str(p) in _strings(ci, name) for p in needs.get(name, [])):
            return False
    if needs.get("GPU", 0) > len(_strings(ci, "GPU")):
        return False
    if needs.get("AWSVPC"):
        limit = eni_limit(ci)
        if limit is None or _meta(ci)["awsvpc"] >= limit:
            return False
    return True


def reserve(ci: Any, needs: dict[str, Any]) -> None:
    for name in ("CPU", "MEMORY"):
        if (r := _resource(ci, name)) is not None:
            r["integerValue"] -= needs.get(name, 0) or 0
    for name in ("PORTS", "PORTS_UDP"):
        _strings(ci, name).extend(str(p) for p in needs.get(name, []))
    free = _strings(ci, "GPU")
    del free[: needs.get("GPU", 0)]
    _meta(ci)["awsvpc"] += 1 if needs.get("AWSVPC") else 0


def release(ci: Any, needs: dict[str, Any]) -> None:
    for name in ("CPU", "MEMORY"):
        if (r := _resource(ci, name)) is not None:
            r["integerValue"] += needs.get(name, 0) or 0
    for name in ("PORTS", "PORTS_UDP"):
        used = _strings(ci, name)
        for p in needs.get(name, []):
            if str(p) in used:
                used.remove(str(p))
    free = _strings(ci, "GPU")
    back = [g for g in _strings(ci, "GPU", remaining=False) if g not in free][: needs.get("GPU", 0)]
    free.extend(back)
    if needs.get("AWSVPC"):
        _meta(ci)["awsvpc"] = max(0, _meta(ci)["awsvpc"] - 1)


def update_container_instance_resources(self: EC2ContainerServiceBackend, ci: Any, needs: dict[str, Any], removing: bool = False) -> None:
    (release if removing else reserve)(ci, needs)
    ci.running_tasks_count += -1 if removing else 1


def constraints(backend: Any, task_definition_arn: str, service: Any) -> list[dict[str, Any]]:
    definition = backend.describe_task_definition(task_definition_arn)
    return [*(definition.placement_constraints or []), *(getattr(service, "placement_constraints", None) or [])]


def eligible(backend: Any, cluster: Any, old: Any, service: Any) -> list[Any]:
    """The ACTIVE, connected instances a replacement of ``old`` may go to, in the order ECS prefers."""
    needs = old.resource_requirements or {}
    rules = constraints(backend, old.task_definition_arn, service)
    groups = ecs_query.groups_on(backend, cluster.name)
    member_of = []
    for rule in rules:
        if rule.get("type") == "memberOf":
            try:
                member_of.append(ecs_query.parse(rule.get("expression")))
            except ecs_query.Unsupported:
                return []
    distinct = any(rule.get("type") == "distinctInstance" for rule in rules)
    provider = ecs_capacity_providers.chosen(backend, cluster, service, old) if service is not None else None
    found = [
        ci
        for ci in backend.container_instances.get(cluster.name, {}).values()
        if ci.status == "ACTIVE" and ci.agent_connected and fits(ci, needs)
        and (provider is None or getattr(ci, "capacity_provider_name", None) == provider)
        and all(p(ci, groups) for p in member_of)
        and not (distinct and old.group in groups(ci))
    ]
    memory = lambda ci: (_resource(ci, "MEMORY") or {}).get("integerValue", 0)  # noqa: E731
    if spreads_over_zones(service):
        per_zone: dict[str, int] = {}
        for task in backend.tasks.get(cluster.name, {}).values():
            host = backend.container_instances.get(cluster.name, {}).get((task.container_instance_arn or "").rsplit("/", 1)[-1])
            if host is not None and task.group == old.group and task.desired_status == "RUNNING":
                zone = host.attributes.get("ecs.availability-zone")
                per_zone[zone] = per_zone.get(zone, 0) + 1
        return sorted(found, key=lambda ci: (per_zone.get(ci.attributes.get("ecs.availability-zone"), 0), -memory(ci), ci.container_instance_arn))
    return sorted(found, key=lambda ci: (-memory(ci), ci.container_instance_arn))


def spreads_over_zones(service: Any) -> bool:
    strategies = getattr(service, "placement_strategy", None) or []
    return not strategies or any(s.get("type") == "spread" and s.get("field") == _ZONE for s in strategies)


# --- Patches -------------------------------------------------------------------------------------------------


def register_container_instance(self: EC2ContainerServiceResponse) -> ActionResult:
    result = _original["register_container_instance"](self)
    ci = result.result["containerInstance"]  # type: ignore[index]
    for attr in self._get_param("attributes") or []:
        ci.attributes[attr["name"]] = attr.get("value")
    for resource in self._get_param("totalResources") or []:
        if resource.get("name") == "GPU":
            ids = list(resource.get("stringSetValue") or [])
            for resources in (ci.registered_resources, ci.remaining_resources):
                resources[:] = [r for r in resources if r.get("name") != "GPU"]
                resources.append({"name": "GPU", "type": "STRINGSET", "stringSetValue": list(ids),
                                  "doubleValue": 0.0, "integerValue": 0, "longValue": 0})
    return result


def start_task(self: EC2ContainerServiceResponse) -> ActionResult:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    definition = backend.describe_task_definition(self._get_param("taskDefinition"))
    group = self._get_param("group") or f"family:{definition.family}"
    tasks = []
    for arn in self._get_param("containerInstances") or []:
        ci = backend.container_instances[cluster.name][arn.rsplit("/", 1)[-1]]
        tasks.append(start_one(backend, cluster, definition, ci, group, overrides=self._get_param("overrides") or {},
                               started_by=self._get_param("startedBy") or "", tags=self._get_param("tags"),
                               networking_configuration=self._get_param("networkConfiguration")))
    return ActionResult({"tasks": tasks, "failures": []})


def start_one(backend: Any, cluster: Any, definition: Any, ci: Any, group: str, **extra: Any) -> Any:
    """One task of `definition` started on `ci`, holding what it reserves there."""
    needs = requirements(definition)
    task = Task(cluster, definition, ci.container_instance_arn, needs, backend=backend, group=group, **extra)
    backend.update_container_instance_resources(ci, needs)
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    return task


def _keep_placement(self: EC2ContainerServiceResponse, result: ActionResult) -> ActionResult:
    service = result.result["service"]  # type: ignore[index]
    for param, attr in (("placementConstraints", "placement_constraints"), ("placementStrategy", "placement_strategy")):
        value = self._get_param(param)
        if value is not None or not hasattr(service, attr):
            setattr(service, attr, value or [])
    return result


def create_service(self: EC2ContainerServiceResponse) -> ActionResult:
    return _keep_placement(self, _original["create_service"](self))


def update_service(self: EC2ContainerServiceResponse) -> ActionResult:
    # moto sets every parameter it is given as an attribute of the service; these two it would set in
    # the wire's spelling.
    return _keep_placement(self, _original["update_service"](self))


_original: dict[str, Any] = {}


def install() -> None:
    for name, handler in (("register_container_instance", register_container_instance), ("start_task", start_task),
                          ("create_service", create_service), ("update_service", update_service)):
        _original[name] = getattr(EC2ContainerServiceResponse, name)
        setattr(EC2ContainerServiceResponse, name, handler)
    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(requirements)  # type: ignore[method-assign]
    EC2ContainerServiceBackend._can_be_placed = staticmethod(fits)  # type: ignore[method-assign]
    EC2ContainerServiceBackend.update_container_instance_resources = update_container_instance_resources  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state (the counts live on moto's container instances)."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
