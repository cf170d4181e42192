"""ECS capacity providers for EC2 as placement sees them, which moto 5.x keeps as names only.

AWS ("Amazon ECS capacity providers for the EC2 launch type",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/asg-capacity-providers.html, and "Amazon ECS
capacity providers", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-capacity-providers.html):

- A container instance launched by the Auto Scaling group of a capacity provider of its cluster is
  associated with that provider, and ``DescribeContainerInstances`` names it in ``capacityProviderName``
  ("Use DescribeContainerInstances to confirm whether a container instance is associated with a capacity
  provider or not"). The association is made when the instance registers.
- A service has either a ``launchType`` or a ``capacityProviderStrategy``; "If no capacityProviderStrategy or
  launchType is specified, the defaultCapacityProviderStrategy for the cluster is used"
  (API_CreateService.html), and the service keeps that strategy. moto drops the strategy and answers
  ``launchType`` EC2.
- A strategy's tasks go to its providers: ``base`` tasks first to the provider that has one, then by
  ``weight``; "any capacity providers with a weight of 0 can't be used to place tasks" when the strategy
  has several (API_CapacityProviderStrategyItem.html). ECS does not fall back to another provider of the
  strategy when the one it picks has no room (aws/containers-roadmap#773: the base "seems to be a
  constraint").

How the emulator does it: ``RegisterContainerInstance`` sets ``capacityProviderName`` from the instance's
group; ``CreateService`` keeps the strategy (or the cluster's default); a replacement of a service task
(``ecs_placement.eligible``) goes only to instances of the provider its strategy picks: the one with a
``base`` still unmet, else the one furthest below its weight's share of the service's tasks (ties in the
strategy's order). A service with a launch type places on any instance.
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.core.responses import ActionResult
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse


def _group_of(account_id: str, region: str, instance_id: str) -> Any:
    backend = autoscaling_backends[account_id][region]
    for group in backend.autoscaling_groups.values():
        if any(state.instance.id == instance_id for state in group.instance_states):
            return group
    return None


def provider_of_group(backend: Any, cluster: Any, group: Any) -> str | None:
    """The capacity provider of the cluster whose Auto Scaling group is ``group`` (by ARN or name)."""
    for name in getattr(cluster, "capacity_providers", None) or []:
        provider = backend.capacity_providers.get(name)
        if provider is None:
            continue
        ref = (provider.auto_scaling_group_provider or {}).get("autoScalingGroupArn", "")
        if ref in (group.arn, group.name) or ref.endswith(f":autoScalingGroupName/{group.name}"):
            return provider.name
    return None


def usable(strategy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of a strategy that can place tasks: all of a single-item strategy, else those with a
    weight or a base."""
    if len(strategy) <= 1:
        return list(strategy)
    return [s for s in strategy if (s.get("weight") or 0) > 0 or (s.get("base") or 0) > 0]


def chosen(backend: Any, cluster: Any, service: Any, replacing: Any) -> str | None:
    """The provider a new task of ``service`` goes to, or None when the service has no strategy (any
    instance). ``replacing``: the task it replaces, not counted."""
    items = usable(getattr(service, "capacity_provider_strategy", None) or [])
    if not items:
        return None
    counts = {s["capacityProvider"]: 0 for s in items}
    for task in backend.tasks.get(cluster.name, {}).values():
        if task is replacing or task.group != f"service:{service.name}" or task.desired_status != "RUNNING":
            continue
        ci = backend.container_instances.get(cluster.name, {}).get((task.container_instance_arn or "").rsplit("/", 1)[-1])
        name = getattr(ci, "capacity_provider_name", None)
        if name in counts:
            counts[name] += 1
    for s in items:
        if counts[s["capacityProvider"]] < (s.get("base") or 0):
            return s["capacityProvider"]
    total = sum(counts.values()) + 1
    weights = sum(s.get("weight") or 0 for s in items) or 1
    deficit = [((s.get("weight") or 0) * total / weights - counts[s["capacityProvider"]], -n) for n, s in enumerate(items)]
    return items[max(range(len(items)), key=lambda n: deficit[n])]["capacityProvider"]


# --- Patches -------------------------------------------------------------------------------------------------


def register_container_instance(self: EC2ContainerServiceBackend, cluster_str: str, ec2_instance_id: str) -> Any:
    cluster = self.clusters.get(cluster_str.split("/")[-1])
    if cluster is None:
        return _original["register_container_instance"](self, cluster_str, ec2_instance_id)
    return register_in(self, cluster, ec2_instance_id, _group_of(self.account_id, self.region_name, ec2_instance_id))


def register_in(backend: Any, cluster: Any, ec2_instance_id: str, group: Any) -> Any:
    """Registers an instance of Auto Scaling group `group` (or of none), as the agent does."""
    ci = _original["register_container_instance"](backend, cluster.name, ec2_instance_id)
    ci.capacity_provider_name = provider_of_group(backend, cluster, group) if group is not None else None
    return ci


def create_service(self: EC2ContainerServiceResponse) -> ActionResult:
    result = _original["create_service"](self)
    service = result.result["service"]  # type: ignore[index]
    strategy = self._get_param("capacityProviderStrategy")
    if not strategy and not self._get_param("launchType"):
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
        strategy = getattr(cluster, "default_capacity_provider_strategy", None)
    service.capacity_provider_strategy = list(strategy or [])
    if service.capacity_provider_strategy:
        service.launch_type = None
    return result


def update_service(self: EC2ContainerServiceResponse) -> ActionResult:
    result = _original["update_service"](self)
    service = result.result["service"]  # type: ignore[index]
    strategy = self._get_param("capacityProviderStrategy")
    if strategy is not None:
        service.capacity_provider_strategy = list(strategy)
    elif not hasattr(service, "capacity_provider_strategy"):
        service.capacity_provider_strategy = []
    return result


_original: dict[str, Any] = {}


def install() -> None:
    _original["register_container_instance"] = EC2ContainerServiceBackend.register_container_instance
    EC2ContainerServiceBackend.register_container_instance = register_container_instance  # type: ignore[method-assign]
    for name, handler in (("create_service", create_service), ("update_service", update_service)):
        _original[name] = getattr(EC2ContainerServiceResponse, name)
        setattr(EC2ContainerServiceResponse, name, handler)


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
