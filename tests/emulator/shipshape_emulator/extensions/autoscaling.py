"""Auto Scaling lifecycle hooks and their lifecycle actions, which moto 5.x does not emulate.

moto keeps a hook's name, transition, heartbeat timeout and default result, but discards its notification
target and role, never sends a notification, has no ``Terminating:Wait`` state, and answers
``CompleteLifecycleAction`` and ``RecordLifecycleActionHeartbeat`` with HTTP 500. This module adds what
AWS documents (https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html):

- ``PutLifecycleHook`` keeps ``NotificationTargetARN``, ``RoleARN`` and ``NotificationMetadata``,
  validates ``HeartbeatTimeout`` (30 to 7200 seconds) and ``DefaultResult`` (CONTINUE | ABANDON), and
  sends ``autoscaling:TEST_NOTIFICATION`` to an SNS target when the hook is created
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/prepare-for-lifecycle-notifications.html).
- ``TerminateInstanceInAutoScalingGroup`` on a group with a terminating hook puts the instance in
  ``Terminating:Wait``, creates a lifecycle action with a token, and publishes the lifecycle message to
  the hook's SNS target in AWS's format (``Origin``, ``Destination``, ``LifecycleTransition``,
  ``LifecycleActionToken``, ``EC2InstanceId``, ...). Desired capacity drops at once when asked to.
- ``CompleteLifecycleAction`` (by ``LifecycleActionToken`` or ``InstanceId``): the instance moves on and
  terminates, with CONTINUE or ABANDON alike for a terminating hook
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html).
  Without an active action: ``ValidationError`` "No active Lifecycle Action found with instance ID ...".
- ``RecordLifecycleActionHeartbeat`` restarts the heartbeat timeout
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html).
- When the heartbeat timeout passes, the hook's default result is applied; the global timeout is
  100 x the heartbeat timeout or 48 hours, whichever is smaller.
- The same action machinery serves launching hooks (``autoscaling_launch``: ``Pending:Wait``, and
  ``Warmed:Pending:Wait`` for instances entering a warm pool) and terminating hooks on instances returning
  to a warm pool (``autoscaling_warm_pool``); each action knows its ``LifecycleTransition``, the ``Origin``
  and ``Destination`` its message names, and what completing it does
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html: "The values of
  Origin and Destination can be the following: EC2 | AutoScalingGroup | WarmPool").
- ``TerminateInstanceInAutoScalingGroup`` with ``ShouldDecrementDesiredCapacity=true`` on a group whose
  desired capacity equals its minimum fails with AWS's ``ValidationError`` ("Currently, desiredSize equals
  minSize (N). Terminating instance without replacement will violate group's min size constraint. ...");
  moto lets the group fall below its minimum. The message is the one AWS returns, as quoted in
  https://github.com/hashicorp/nomad-autoscaler/pull/1290 and
  https://github.com/buildkite/elastic-ci-stack-for-aws/issues/1261; the API reference
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html)
  lists ``ValidationError`` among the call's errors.

Test-only knobs, ``POST /_shipshape/autoscaling`` with any of (each stays until set again, and
``POST /moto-api/reset`` restores the defaults):

- ``{"min_heartbeat_timeout": 1}``: accept heartbeat timeouts shorter than AWS's 30 seconds so a test can
  watch a timeout without waiting half a minute (default 30).
- ``{"lifecycle_started_ago_seconds": N}``: every lifecycle action created from then on, launching or
  terminating, behaves as if its instance had entered its wait state N seconds ago: its message's ``Time`` is N
  seconds in the past, its global timeout counts from then, and so does its heartbeat timeout unless
  ``"heartbeat_age_seconds": M`` (at most N) says the last heartbeat was M seconds ago. This is how a
  message arrives late, as after Lambda's asynchronous retries ("Error handling and automatic retries in
  Lambda": retried after about 1 and then 2 minutes, queued for up to 6 hours). Default 0;
  ``heartbeat_age_seconds`` null means "the same as N".

- ``DescribeScalingActivities``: moto answers an empty list. Every lifecycle action here is a scaling
  activity, as in AWS (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html): ``Description``
  "Terminating EC2 instance: i-..." or "Launching a new EC2 instance: i-...", ``StartTime`` when the
  instance began to wait (dated back by ``lifecycle_started_ago_seconds`` like the message's ``Time``),
  ``StatusCode`` ``MidLifecycleAction`` while the action waits, then ``Successful`` with an ``EndTime``.
  "Activities are sorted by start time. Activities still in progress are described first"; ``MaxRecords``
  "The default value is 100 and the maximum value is 100", with a ``NextToken`` for the rest;
  ``AutoScalingGroupName`` limits them to a group (without it, every group's).

``POST /_shipshape/autoscaling/advance {"seconds": N}`` ages every pending lifecycle action by N seconds
at once, as if N seconds had passed for Auto Scaling; an action whose heartbeat or global deadline has
passed gets its hook's default result on the next tick. It answers the status.

``GET /_shipshape/autoscaling`` answers ``{"settings": {...}, "pending": [...], "finished": [...]}``; a
pending action shows ``instance_id``, ``group``, ``hook``, ``transition`` (the hook's
``LifecycleTransition``), ``token``, and the seconds left until its heartbeat and global deadlines
(``heartbeat_left``, ``global_left``); a finished one ``instance_id``, ``group``, ``hook``,
``transition``, ``result``, ``how`` ("completed" or "timed-out") and ``at`` (ISO time the result was
applied). Timers are checked on every request the emulator receives (see ``tick``). The instance's
termination is recorded by ``terminations``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.sns.models import sns_backends

from . import terminations
from ..paging import page

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
GLOBAL_TIMEOUT_MAX = 172800

DEFAULTS: dict[str, Any] = {"min_heartbeat_timeout": 30, "lifecycle_started_ago_seconds": 0, "heartbeat_age_seconds": None}
SETTINGS: dict[str, Any] = dict(DEFAULTS)
_lock = threading.RLock()


@dataclass
class Action:
    backend: Any
    group: str
    hook: Any
    instance_id: str
    token: str
    heartbeat_deadline: float  # time.monotonic() at which the heartbeat timeout runs out
    global_deadline: float  # and the global timeout
    transition: str = TERMINATING
    origin: str = "AutoScalingGroup"
    destination: str = "EC2"
    # What the result does to the instance: proceed(action, result, how). None: it terminates.
    proceed: Callable[["Action", str, str], None] | None = None


ACTIONS: dict[str, Action] = {}  # by instance id
HISTORY: list[dict[str, Any]] = []  # finished actions, for tests: GET /_shipshape/autoscaling
# Scaling activities, by the instance whose pending action they describe (finished ones stay listed).
ACTIVITIES: list[dict[str, Any]] = []


def reset() -> None:
    with _lock:
        ACTIONS.clear()
        HISTORY.clear()
        ACTIVITIES.clear()
        SETTINGS.clear()
        SETTINGS.update(DEFAULTS)


def _now_iso(ago: float = 0) -> str:
    return datetime.fromtimestamp(time.time() - ago, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _publish(backend: Any, hook: Any, message: dict[str, Any], subject: str) -> None:
    target = getattr(hook, "notification_target_arn", None) or ""
    if not target.startswith("arn:") or ":sns:" not in target:
        return
    _, _, _, region, account, _ = target.split(":", 5)
    try:
        sns_backends[account][region].publish(message=json.dumps(message), arn=target, subject=subject)
    except Exception as err:  # AWS drops undeliverable notifications; so do we, loudly
        print(f"shipshape-emulator: lifecycle notification to {target} failed: {err}", flush=True)


def _group_arn(backend: Any, group: str) -> str:
    g = backend.autoscaling_groups.get(group)
    return getattr(g, "arn", "") if g else ""


def hooks_for(backend: Any, group: str, transition: str) -> list[Any]:
    """The group's lifecycle hooks for `transition`, in the order they were created."""
    return [h for h in backend.describe_lifecycle_hooks(group) if h.lifecycle_transition == transition]


def put_hook(backend: Any, group: str, spec: dict[str, Any]) -> Any:
    """PutLifecycleHook, from its parameters (``LifecycleHookName``, ``LifecycleTransition``, ...); also what
    CreateAutoScalingGroup's ``LifecycleHookSpecificationList`` adds before the group launches anything."""
    name = spec.get("LifecycleHookName")
    transition = spec.get("LifecycleTransition")
    timeout = spec.get("HeartbeatTimeout")
    result = spec.get("DefaultResult")
    if group not in backend.autoscaling_groups:
        raise ValidationError(f"No AutoScalingGroup named {group}")
    existing = backend.lifecycle_hooks.get(f"{group}_{name}")
    if existing is None and transition not in (TERMINATING, LAUNCHING):
        raise ValidationError(f"Invalid Lifecycle Transition: {transition}")
    if timeout is not None:
        timeout = int(timeout)
        if not (SETTINGS["min_heartbeat_timeout"] <= timeout <= 7200):
            raise ValidationError("HeartbeatTimeout must be between 30 and 7200 seconds")
    if result is not None and result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid Default Result: {result}")
    # PutLifecycleHook creates or updates: unspecified fields keep their values on update.
    hook = backend.create_lifecycle_hook(
        name=name,
        as_name=group,
        transition=transition or (existing.lifecycle_transition if existing else None),
        timeout=timeout or (existing.heartbeat_timeout if existing else None),
        result=result or (existing.default_result if existing else None),
    )
    hook.notification_target_arn = spec.get("NotificationTargetARN") or (
        existing.notification_target_arn if existing else None
    )
    hook.role_arn = spec.get("RoleARN") or (existing.role_arn if existing else None)
    hook.notification_metadata = spec.get("NotificationMetadata") or (
        getattr(existing, "notification_metadata", None) if existing else None
    )
    hook.global_timeout = min(GLOBAL_TIMEOUT_MAX, 100 * hook.heartbeat_timeout)
    if existing is None or existing.notification_target_arn != hook.notification_target_arn:
        _publish(
            backend,
            hook,
            {
                "AccountId": backend.account_id,
                "RequestId": str(uuid.uuid4()),
                "AutoScalingGroupARN": _group_arn(backend, group),
                "AutoScalingGroupName": group,
                "Service": "AWS Auto Scaling",
                "Event": "autoscaling:TEST_NOTIFICATION",
                "Time": _now_iso(),
            },
            f"Auto Scaling: test notification for group \"{group}\"",
        )
    return hook


def put_lifecycle_hook(self: AutoScalingResponse) -> ActionResult:
    spec = {
        key: self._get_param(key)
        for key in ("LifecycleHookName", "LifecycleTransition", "DefaultResult", "NotificationTargetARN",
                    "RoleARN", "NotificationMetadata")
    }
    spec["HeartbeatTimeout"] = self._get_int_param("HeartbeatTimeout")
    put_hook(self.autoscaling_backend, self._get_param("AutoScalingGroupName"), spec)
    return EmptyResult()


def instance_state(backend: Any, instance_id: str) -> Any:
    """The group's record of an instance in the group (not in a warm pool), or None."""
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return state
    return None



def start_action(
    backend: Any,
    group: Any,
    hook: Any,
    instance_id: str,
    transition: str,
    origin: str,
    destination: str,
    proceed: Callable[[Action, str, str], None] | None = None,
) -> Action:
    """A lifecycle action for `instance_id` (already in its wait state), its message sent to the hook's target.
    The ``lifecycle_started_ago_seconds`` setting dates it back."""
    now = time.monotonic()
    started_ago = SETTINGS["lifecycle_started_ago_seconds"]
    heartbeat_ago = SETTINGS["heartbeat_age_seconds"]
    heartbeat_ago = started_ago if heartbeat_ago is None else heartbeat_ago
    action = Action(
        backend=backend,
        group=group.name,
        hook=hook,
        instance_id=instance_id,
        token=str(uuid.uuid4()),
        heartbeat_deadline=now - heartbeat_ago + hook.heartbeat_timeout,
        global_deadline=now - started_ago + hook.global_timeout,
        transition=transition,
        origin=origin,
        destination=destination,
        proceed=proceed,
    )
    verb = "Launching a new EC2 instance" if transition == LAUNCHING else "Terminating EC2 instance"
    with _lock:
        ACTIONS[instance_id] = action
        ACTIVITIES.append({
            "ActivityId": str(uuid.uuid4()), "AutoScalingGroupName": group.name,
            "Description": f"{verb}: {instance_id}",
            "Cause": f"At {_now_iso(started_ago)} instance {instance_id} is waiting for lifecycle hook {hook.name}.",
            "StartTime": datetime.now(timezone.utc) - timedelta(seconds=started_ago),
            "StatusCode": "MidLifecycleAction", "Progress": 50, "_instance": instance_id, "_action": action,
        })
    message = {
        "Origin": origin,
        "Destination": destination,
        "Service": "AWS Auto Scaling",
        "Time": _now_iso(started_ago),
        "AccountId": backend.account_id,
        "LifecycleTransition": transition,
        "AutoScalingGroupName": group.name,
        "LifecycleActionToken": action.token,
        "EC2InstanceId": instance_id,
        "LifecycleHookName": hook.name,
        "RequestId": str(uuid.uuid4()),
    }
    if getattr(hook, "notification_metadata", None):
        message["NotificationMetadata"] = hook.notification_metadata
    kind = "LAUNCHING" if transition == LAUNCHING else "TERMINATING"
    _publish(backend, hook, message, f"Auto Scaling:  Lifecycle action '{kind}' for instance {instance_id} in progress.")
    return action


def begin_terminating(backend: Any, group: Any, state: Any, hook: Any) -> Action:
    """The instance waits in ``Terminating:Wait`` for `hook`; completing the action terminates it."""
    state.lifecycle_state = "Terminating:Wait"
    return start_action(backend, group, hook, state.instance.id, TERMINATING, "AutoScalingGroup", "EC2")


def terminate_instance_in_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
    instance_id = self._get_param("InstanceId")
    should_decrement = self._get_bool_param("ShouldDecrementDesiredCapacity", False)
    backend = self.autoscaling_backend
    with _lock:
        state = instance_state(backend, instance_id)
        if state is None:
            from . import autoscaling_warm_pool

            warm = autoscaling_warm_pool.find(backend, instance_id)
            if warm is not None:
                return ActionResult({"Activity": autoscaling_warm_pool.terminate_warm(*warm)})
            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        action = ACTIONS.get(instance_id)
        if (action is not None and action.transition == TERMINATING) or state.lifecycle_state.startswith("Terminating"):
            raise ValidationError(f"The instance {instance_id} is already terminating")
        group = state.auto_scaling_group
        if should_decrement and group.desired_capacity <= group.min_size:
            raise ValidationError(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance without "
                "replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity "
                "flag to false or lower group's min size."
            )
        if action is not None:
            del ACTIONS[instance_id]  # a launch still waiting for its hook: it ends with the instance
        hooks = hooks_for(backend, group.name, TERMINATING)
        if not hooks:
            return _original_terminate(self)
        # One pending action per instance; with several hooks AWS waits for each. Ours are used one at a time.
        original = group.desired_capacity
        started_ago = SETTINGS["lifecycle_started_ago_seconds"]
        state.lifecycle_state = "Terminating:Wait"
        if should_decrement:
            group.set_desired_capacity(group.desired_capacity - 1)
        begin_terminating(backend, group, state, hooks[0])
    activity = {
        "ActivityId": str(uuid.uuid4()),
        "AutoScalingGroupName": group.name,
        "Description": f"Terminating EC2 instance: {instance_id}",
        "Cause": f"At {_now_iso(started_ago)} instance {instance_id} was taken out of service in response to a user request"
        + (f", shrinking the capacity from {original} to {group.desired_capacity}." if should_decrement else "."),
        "StartTime": datetime.now(timezone.utc),
        "StatusCode": "InProgress",
        "Progress": 0,
    }
    return ActionResult({"Activity": activity})


def _find_action(self: AutoScalingResponse) -> Action:
    group = self._get_param("AutoScalingGroupName")
    hook_name = self._get_param("LifecycleHookName")
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified")
    with _lock:
        action = None
        if token:
            action = next((a for a in ACTIONS.values() if a.token == token), None)
        elif instance_id:
            action = ACTIONS.get(instance_id)
        if (
            action is None
            or action.group != group
            or action.hook.name != hook_name
            or (instance_id and action.instance_id != instance_id)
        ):
            which = f"instance ID {instance_id}" if instance_id else f"token {token}"
            raise ValidationError(
                f"No active Lifecycle Action found with {which} and lifecycle hook name {hook_name} "
                f"for Auto Scaling group {group}"
            )
        return action


def complete_lifecycle_action(self: AutoScalingResponse) -> ActionResult:
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid LifecycleActionResult: {result} (CONTINUE or ABANDON)")
    action = _find_action(self)
    _finish(action, result, "completed")
    return EmptyResult()


def record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> ActionResult:
    action = _find_action(self)
    with _lock:
        action.heartbeat_deadline = time.monotonic() + action.hook.heartbeat_timeout
    return EmptyResult()


def drop(instance_id: str) -> None:
    """Forgets the pending action of an instance that went another way (terminated, its group deleted)."""
    with _lock:
        ACTIONS.pop(instance_id, None)


def _finish(action: Action, result: str, how: str) -> None:
    with _lock:
        if ACTIONS.get(action.instance_id) is not action:
            return
        del ACTIONS[action.instance_id]
        for activity in ACTIVITIES:
            if activity["_action"] is action:
                activity.update(StatusCode="Successful", Progress=100, EndTime=datetime.now(timezone.utc))
        HISTORY.append({"instance_id": action.instance_id, "group": action.group, "hook": action.hook.name,
                        "transition": action.transition, "result": result, "how": how, "at": _now_iso()})
    if action.proceed is not None:
        action.proceed(action, result, how)
        return
    backend = action.backend
    state = instance_state(backend, action.instance_id)
    if state is not None:
        # Both results terminate the instance for a terminating hook; the desired capacity was already set.
        group = state.auto_scaling_group
        group.instance_states = [s for s in group.instance_states if s is not state]
        with terminations.cause(f"lifecycle-{how}", result, action.group):
            backend.ec2_backend.terminate_instances([action.instance_id])
        group.set_desired_capacity(group.desired_capacity)


def tick() -> None:
    """Applies the default result to lifecycle actions whose heartbeat or global timeout has passed."""
    now = time.monotonic()
    with _lock:
        expired = [a for a in ACTIONS.values() if now >= a.heartbeat_deadline or now >= a.global_deadline]
    for action in expired:
        _finish(action, action.hook.default_result, "timed-out")


def status() -> dict[str, Any]:
    now = time.monotonic()
    with _lock:
        return {
            "settings": dict(SETTINGS),
            "pending": [
                {"instance_id": a.instance_id, "group": a.group, "hook": a.hook.name, "transition": a.transition,
                 "token": a.token, "heartbeat_left": round(a.heartbeat_deadline - now, 3),
                 "global_left": round(a.global_deadline - now, 3)}
                for a in ACTIONS.values()
            ],
            "finished": [dict(entry) for entry in HISTORY],
        }


def _seconds(spec: dict[str, Any], key: str, low: int, high: int | None = None) -> int:
    value = spec[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ValueError(f"{key}: a whole number of seconds, {bounds}")
    return value


def configure(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    update = {}
    if "min_heartbeat_timeout" in spec:
        update["min_heartbeat_timeout"] = _seconds(spec, "min_heartbeat_timeout", 1, 30)
    if "lifecycle_started_ago_seconds" in spec:
        update["lifecycle_started_ago_seconds"] = _seconds(spec, "lifecycle_started_ago_seconds", 0)
    if spec.get("heartbeat_age_seconds") is not None:
        update["heartbeat_age_seconds"] = _seconds(spec, "heartbeat_age_seconds", 0)
    elif "heartbeat_age_seconds" in spec:
        update["heartbeat_age_seconds"] = None
    with _lock:
        started = update.get("lifecycle_started_ago_seconds", SETTINGS["lifecycle_started_ago_seconds"])
        heartbeat = update.get("heartbeat_age_seconds", SETTINGS["heartbeat_age_seconds"])
        if heartbeat is not None and heartbeat > started:
            raise ValueError(
                f"heartbeat_age_seconds ({heartbeat}) cannot be more than lifecycle_started_ago_seconds ({started}): "
                "no heartbeat comes before the hook began"
            )
        SETTINGS.update(update)
    return status()


def advance(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {"seconds"}
    if unknown or "seconds" not in spec:
        raise ValueError("a body {\"seconds\": N} and nothing else")
    seconds = spec["seconds"]
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError("seconds: a number of seconds, 0 or more")
    with _lock:
        for action in ACTIONS.values():
            action.heartbeat_deadline -= seconds
            action.global_deadline -= seconds
    return status()


def describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
    from .autoscaling_listing import _max_records, _refuse

    group = self._get_param("AutoScalingGroupName")
    limit = _max_records(self, 100) if self._get_param("MaxRecords") else 100
    with _lock:
        chosen = [a for a in ACTIVITIES if group is None or a["AutoScalingGroupName"] == group]
        ordered = sorted(chosen, key=lambda a: (a["StatusCode"] == "Successful", -a["StartTime"].timestamp()))
        shown = [{k: v for k, v in a.items() if not k.startswith("_")} for a in ordered]
    chunk, rest = page(shown, limit, self._get_param("NextToken"), {"AutoScalingGroupName": group}, _refuse)
    result: dict[str, Any] = {"Activities": chunk}
    if rest is not None:
        result["NextToken"] = rest
    return ActionResult(result)


_original_terminate = AutoScalingResponse.terminate_instance_in_auto_scaling_group


def install() -> None:
    AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook  # type: ignore[method-assign]
    AutoScalingResponse.terminate_instance_in_auto_scaling_group = terminate_instance_in_auto_scaling_group  # type: ignore[method-assign]
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action  # type: ignore[attr-defined]
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat  # type: ignore[attr-defined]
    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[method-assign]


ENDPOINTS = {"/autoscaling": {"GET": status, "POST": configure}, "/autoscaling/advance": {"POST": advance}}
