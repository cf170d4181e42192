"""ECS task scale-in protection, which moto 5.x does not implement.

AWS (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateTaskProtection.html,
API_GetTaskProtection.html, developerguide/task-scale-in-protection.html):

- ``UpdateTaskProtection``: ``cluster``, ``tasks`` ("A list of up to 10 task IDs or full ARN entries"),
  ``protectionEnabled``, ``expiresInMinutes`` ("from 1 minute to up to 2,880 minutes (48 hours)"; the
  default is 2 hours). "This operation is only supported for tasks belonging to an Amazon ECS service.
  Invoking this operation for a standalone task will result in an TASK_NOT_VALID failure." Answers
  ``protectedTasks`` (``taskArn``, ``protectionEnabled``, ``expirationDate``) and ``failures``.
- ``GetTaskProtection``: ``cluster``, ``tasks`` ("A list of up to 100 task IDs or full ARN entries").
  Unknown tasks are ``MISSING`` failures. Protection ends at its expiration date.

Longer lists and bad durations are refused with ``InvalidParameterException``.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse

DEFAULT_MINUTES = 120
# Task ARN -> when its protection ends.
PROTECTED: dict[str, datetime] = {}
_lock = threading.Lock()


def _tasks(self: EC2ContainerServiceResponse, most: int) -> tuple[Any, list[tuple[str, Any]]]:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    wanted = self._get_param("tasks") or []
    if len(wanted) > most:
        raise InvalidParameterException(f"tasks can have at most {most} items.")
    by_id = {arn.rsplit("/", 1)[-1]: task for arn, task in backend.tasks.get(cluster.name, {}).items()}
    found = []
    for name in wanted:
        task = by_id.get(name.rsplit("/", 1)[-1])
        arn = task.task_arn if task is not None else (
            name if name.startswith("arn:") else f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:task/{cluster.name}/{name}")
        found.append((arn, task))
    return cluster, found


def _answer(arn: str, now: datetime) -> dict[str, Any]:
    until = PROTECTED.get(arn)
    on = until is not None and until > now
    return {"taskArn": arn, "protectionEnabled": on, **({"expirationDate": until} if on else {})}


def update_task_protection(self: EC2ContainerServiceResponse) -> ActionResult:
    _, found = _tasks(self, 10)
    enabled = bool(self._get_param("protectionEnabled"))
    minutes = self._get_param("expiresInMinutes")
    minutes = DEFAULT_MINUTES if minutes is None else int(minutes)
    if enabled and not 1 <= minutes <= 2880:
        raise InvalidParameterException("expiresInMinutes must be between 1 and 2880.")
    now = datetime.now(timezone.utc)
    protected, failures = [], []
    with _lock:
        for arn, task in found:
            if task is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            elif not str(task.group or "").startswith("service:"):
                failures.append({"arn": arn, "reason": "TASK_NOT_VALID", "detail": "The task is not part of a service."})
            else:
                if enabled:
                    PROTECTED[arn] = now + timedelta(minutes=minutes)
                else:
                    PROTECTED.pop(arn, None)
                protected.append(_answer(arn, now))
    return ActionResult({"protectedTasks": protected, "failures": failures})


def protect(arn: str, minutes: int = DEFAULT_MINUTES) -> None:
    """Protection on for a service task, as UpdateTaskProtection sets it (``bulk``)."""
    with _lock:
        PROTECTED[arn] = datetime.now(timezone.utc) + timedelta(minutes=minutes)


def get_task_protection(self: EC2ContainerServiceResponse) -> ActionResult:
    _, found = _tasks(self, 100)
    now = datetime.now(timezone.utc)
    protected, failures = [], []
    with _lock:
        for arn, task in found:
            if task is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                protected.append(_answer(arn, now))
    return ActionResult({"protectedTasks": protected, "failures": failures})


def install() -> None:
    EC2ContainerServiceResponse.update_task_protection = update_task_protection  # type: ignore[attr-defined]
    EC2ContainerServiceResponse.get_task_protection = get_task_protection  # type: ignore[attr-defined]


def tick() -> None:
    """Protection ends by its date, read at each call: no timer."""


def reset() -> None:
    with _lock:
        PROTECTED.clear()


ENDPOINTS: dict[str, dict[str, Any]] = {}
