"""Auto Scaling's describe calls in AWS's page sizes, which moto 5.x does not keep.

- ``DescribeAutoScalingInstances``
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingInstances.html):
  ``InstanceIds`` "Array Members: Maximum number of 50 items"; ``MaxRecords`` "The default value is 50 and
  the maximum value is 50"; ``NextToken`` for the rest. moto returns every instance in one answer and
  ignores both.
- ``DescribeAutoScalingGroups``
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html):
  ``MaxRecords`` "The default value is 50 and the maximum value is 100"; ``AutoScalingGroupNames`` "By
  default, you can only specify up to 50 names. You can optionally increase this limit using the
  MaxRecords property." moto pages, but its token is the last group's name (not opaque, not tied to the
  request: a token sent with other names fails with HTTP 500), and ``MaxRecords`` above 100 is an HTTP 500
  instead of a ``ValidationError``.

A token sent with other parameters than the call that produced it is refused with ``InvalidNextToken``
("The NextToken value is not valid.", an error both operations document).
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from ..paging import page


class InvalidNextToken(AutoscalingClientError):
    code = "InvalidNextToken"


def _refuse(message: str) -> Exception:
    return InvalidNextToken(f"The NextToken value is not valid. {message}")


def _max_records(self: AutoScalingResponse, most: int) -> int:
    value = self._get_param("MaxRecords")
    if value is None:
        return 50
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= most:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at 'maxRecords' failed to satisfy constraint: "
            f"Member must have value between 1 and {most}"
        )
    return number


def _result(key: str, items: list[Any], rest: str | None) -> ActionResult:
    result: dict[str, Any] = {key: items}
    if rest is not None:
        result["NextToken"] = rest
    return ActionResult(result)


def describe_auto_scaling_instances(self: AutoScalingResponse) -> ActionResult:
    ids = self._get_param("InstanceIds") or []
    if len(ids) > 50:
        raise ValidationError(
            f"1 validation error detected: Value '{ids}' at 'instanceIds' failed to satisfy constraint: "
            "Member must have length less than or equal to 50"
        )
    limit = _max_records(self, 50)
    states = self.autoscaling_backend.describe_auto_scaling_instances(instance_ids=ids)
    chunk, rest = page(states, limit, self._get_param("NextToken"), {"InstanceIds": ids}, _refuse)
    return _result("AutoScalingInstances", chunk, rest)


def describe_auto_scaling_groups(self: AutoScalingResponse) -> ActionResult:
    names = self._get_param("AutoScalingGroupNames") or []
    filters = self._get_param("Filters", [])
    limit = _max_records(self, 100)
    if len(names) > max(50, limit):
        raise ValidationError(
            f"The number of AutoScalingGroupNames ({len(names)}) exceeds {max(50, limit)}; raise MaxRecords "
            "(up to 100) to name more."
        )
    groups = self.autoscaling_backend.describe_auto_scaling_groups(names, filters=filters)
    query = {"AutoScalingGroupNames": names, "Filters": filters}
    chunk, rest = page(groups, limit, self._get_param("NextToken"), query, _refuse)
    return _result("AutoScalingGroups", chunk, rest)


def install() -> None:
    AutoScalingResponse.describe_auto_scaling_instances = describe_auto_scaling_instances  # type: ignore[method-assign]
    AutoScalingResponse.describe_auto_scaling_groups = describe_auto_scaling_groups  # type: ignore[method-assign]


def tick() -> None:
    """No timers."""


def reset() -> None:
    """Nothing kept outside moto's own state."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
