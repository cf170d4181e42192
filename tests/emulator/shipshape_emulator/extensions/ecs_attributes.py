"""ECS PutAttributes and DeleteAttributes on container instances as AWS documents them.

AWS (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PutAttributes.html, API_Attribute.html):
``targetId`` is a container instance's short id or full ARN ("If you specify the target ID using the short
form, you must also specify the target type"). moto 5.2 accepts the ARN only without ``targetType`` and
answers TargetNotFoundException for the documented ARN + ``targetType=container-instance`` form.
DeleteAttributes: "For custom attributes, specify the attribute name and target ID, but don't specify the
value" (API_DeleteAttributes.html); moto deletes only when the given value matches the stored one, so the
documented call without a value deletes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse

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


def install() -> None:
    EC2ContainerServiceResponse.put_attributes = put_attributes  # type: ignore[method-assign]
    EC2ContainerServiceResponse.delete_attributes = delete_attributes  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
