"""A container instance's ECS agent connection, set by a test.

AWS reports ``agentConnected`` false for an instance whose agent is stopped or unhealthy, and places no
tasks on it (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerInstance.html); moto
keeps every agent connected. A test disconnects one, as when the ECS agent stops or loses its connection:
``POST /_shipshape/ecs/agent {"container_instance_arn": "...", "connected": false}``.
"""

from __future__ import annotations

from typing import Any

from moto.ecs.models import ecs_backends


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


def install() -> None:
    """Nothing to patch: moto models the flag, only nothing sets it."""


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state."""


ENDPOINTS = {"/ecs/agent": {"POST": set_agent}}
