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
    EC2ContainerServiceResponse.list_container_instances = list_container_instances  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
