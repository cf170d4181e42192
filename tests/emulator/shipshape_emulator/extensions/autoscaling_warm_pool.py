"""Auto Scaling warm pools: instances that wait, stopped, for the group to need them.

moto 5.2.5 keeps a warm pool's configuration (``PutWarmPool``, ``DescribeWarmPool``, ``DeleteWarmPool``, and
``WarmPoolConfiguration`` in DescribeAutoScalingGroups) and nothing else: it never launches an instance
into the pool, ``DescribeWarmPool`` always answers ``Instances: []``, a scale-out launches new instances,
a scale-in terminates even with ``InstanceReusePolicy.ReuseOnScaleIn``, ``WarmPoolSize`` is missing from
DescribeAutoScalingGroups, ``PutWarmPool`` validates nothing, and a group that does not exist is an HTTP 500.
This module adds what AWS documents
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html,
https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html,
https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html):

- Size: "By default, the size of the warm pool is calculated as the difference between the Auto Scaling
  group's maximum capacity and its desired capacity"; with ``MaxGroupPreparedCapacity`` (-1: unset) "the
  difference between the maximum prepared capacity and the current desired capacity of the group"; never
  fewer than ``MinSize``; "If the desired capacity of the Auto Scaling group is higher than the
  MaxGroupPreparedCapacity, the capacity of the warm pool is 0, unless you specify a value for MinSize"
  (API_PutWarmPool). The pool is filled as soon as it is put and after every change of the group, and
  "Amazon EC2 Auto Scaling can terminate instances in the warm pool to reduce its size when it is larger
  than necessary".
- Entering the pool: "When a lifecycle hook is configured for the autoscaling:EC2_INSTANCE_LAUNCHING
  lifecycle action, a newly launched instance first pauses to perform a custom action when it reaches the
  Warmed:Pending:Wait state, and then again when the instance restarts and reaches the Pending:Wait state."
  The message says ``Origin`` ``EC2``, ``Destination`` ``WarmPool`` (Example 1). Once the action is
  completed with CONTINUE (or without a hook) the instance takes the pool state: ``Warmed:Stopped`` (the
  EC2 instance is stopped), ``Warmed:Running``, or ``Warmed:Hibernated`` (stopped; moto has no
  hibernation). ABANDON terminates it and the pool launches another.
- Scale-out: the group "can draw on the warm pool to meet its new desired capacity"; only warmed instances
  leave the pool (the ``WarmPoolWarmedCapacity`` metric, "The amount of capacity available to enter the Auto
  Scaling group during scale out. This metric does not include instances that are pending or terminating",
  ec2-auto-scaling-metrics.html). The instance is started and waits in ``Pending:Wait`` with ``Origin``
  ``WarmPool``, ``Destination`` ``AutoScalingGroup`` (Example 2); "If the demand on your application
  depletes the warm pool, Amazon EC2 Auto Scaling can launch instances directly into the Auto Scaling
  group" (``Origin`` ``EC2``, Example 3).
- Scale-in with ``InstanceReusePolicy`` ``{"ReuseOnScaleIn": true}`` returns the instance to the pool
  instead of terminating it. The state AWS shows while the terminating hook waits is ``Warmed:Pending:Wait``,
  not ``Terminating:Wait``: "if you specify an instance reuse policy to return instances to the warm pool on
  scale in instead of terminating them, then an instance that is returning to the warm pool pauses to
  perform a custom action at the Warmed:Pending:Wait state for the EC2_INSTANCE_TERMINATING lifecycle
  action" (warm-pool-instance-lifecycle.html; awsdocs/amazon-ec2-auto-scaling-user-guide,
  doc_source/warm-pool-instance-lifecycle.md). The message says ``LifecycleTransition``
  ``autoscaling:EC2_INSTANCE_TERMINATING``, ``Origin`` ``AutoScalingGroup``, ``Destination`` ``WarmPool``
  (Example 4). Either result, or a timeout, lets it go on into the pool, as both let a terminating instance
  go on: the EC2 instance is stopped, not terminated. ``TerminateInstanceInAutoScalingGroup`` still
  terminates.
- A stopped instance's ECS container instance stays registered with its agent disconnected, and its tasks
  are STOPPED (``ec2_stop``). When the instance leaves the pool and starts again its agent stays
  disconnected until the test connects it (``POST /_shipshape/ecs/agent``): the test decides when an
  agent comes up, as for a new instance.
- Warm pool instances are in ``DescribeWarmPool`` (``MaxRecords`` up to 50, ``NextToken``) and in
  ``DescribeAutoScalingInstances`` with their ``Warmed:*`` state (warm pool user data scripts branch on it),
  not among the group's ``Instances``; DescribeAutoScalingGroups shows ``WarmPoolSize``.
- ``TerminateInstanceInAutoScalingGroup`` or EC2 ``TerminateInstances`` on a warm pool instance terminates
  it without a hook and the pool launches a replacement ("Amazon EC2 Auto Scaling immediately starts
  launching new instances to replace the instances that you terminated").
- ``DeleteWarmPool`` terminates the pool's instances and ends their lifecycle actions at once, with or
  without ``ForceDelete`` (AWS marks the pool ``PendingDelete`` while it does this unforced).
- ``PutWarmPool`` refuses a group with a mixed instances policy ("You cannot add a warm pool to Auto Scaling
  groups that have a mixed instances policy or that launch Spot Instances"), an unknown ``PoolState``, a
  negative ``MinSize`` or a ``MaxGroupPreparedCapacity`` below -1.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.models.instances import InstanceBackend

from . import autoscaling, autoscaling_launch, terminations
from ..paging import page
from .autoscaling import LAUNCHING, TERMINATING
from .autoscaling_listing import _max_records, _refuse

POOL_STATES = {"Stopped": "Warmed:Stopped", "Running": "Warmed:Running", "Hibernated": "Warmed:Hibernated"}
WARMED = tuple(POOL_STATES.values())
_KEY = "_shipshape_warm_pool"


def instances(group: FakeAutoScalingGroup) -> list[Any]:
    """The group's warm pool instances (moto ``InstanceState`` records), oldest first."""
    return group.__dict__.setdefault(_KEY, [])


def _pool(group: FakeAutoScalingGroup) -> Any:
    return getattr(group, "warm_pool", None)


def target_size(group: FakeAutoScalingGroup) -> int:
    pool = _pool(group)
    prepared = pool.max_group_prepared_capacity
    prepared = -1 if prepared in (None, "") else int(prepared)
    if prepared < 0:
        prepared = group.max_size or 0
    return max(int(pool.min_size or 0), prepared - (group.desired_capacity or 0), 0)


def reuses_on_scale_in(group: FakeAutoScalingGroup) -> bool:
    pool = _pool(group)
    if pool is None:
        return False
    reuse = (pool.instance_reuse_policy or {}).get("ReuseOnScaleIn")
    return reuse is True or str(reuse).lower() == "true"


def _ec2(group: FakeAutoScalingGroup) -> Any:
    return group.autoscaling_backend.ec2_backend


def _settle(group: FakeAutoScalingGroup, state: Any) -> None:
    """The instance takes the pool's state: stopped unless the pool keeps them running."""
    pool = _pool(group)
    pool_state = (pool.pool_state if pool is not None else None) or "Stopped"
    state.lifecycle_state = POOL_STATES.get(pool_state, "Warmed:Stopped")
    if pool_state != "Running" and state.instance._state.name != "stopped":
        _ec2(group).stop_instances([state.instance.id])


def _hooks(group: FakeAutoScalingGroup, transition: str) -> list[Any]:
    return autoscaling.hooks_for(group.autoscaling_backend, group.name, transition)


def _launch_into_pool(group: FakeAutoScalingGroup, count: int) -> None:
    new = autoscaling_launch.launch_new(group, count, group.get_propagated_tags())
    group.instance_states = [s for s in group.instance_states if all(s is not n for n in new)]
    hooks = _hooks(group, LAUNCHING)
    for state in new:
        instances(group).append(state)
        if hooks:
            state.lifecycle_state = "Warmed:Pending:Wait"
            autoscaling.start_action(group.autoscaling_backend, group, hooks[0], state.instance.id, LAUNCHING,
                                     "EC2", "WarmPool", proceed=_entered)
        else:
            state.lifecycle_state = "Warmed:Pending"
            _settle(group, state)


def _waiting(action: autoscaling.Action) -> tuple[FakeAutoScalingGroup, Any] | None:
    found = find(action.backend, action.instance_id)
    if found is None or found[1].lifecycle_state != "Warmed:Pending:Wait":
        return None
    return found


def _entered(action: autoscaling.Action, result: str, how: str) -> None:
    found = _waiting(action)
    if found is None:
        return
    group, state = found
    if result == "CONTINUE":
        _settle(group, state)
        return
    instances(group).remove(state)
    with terminations.cause("lifecycle-abandoned", result, group.name):
        _ec2(group).terminate_instances([state.instance.id])
    maintain(group)


def _returned(action: autoscaling.Action, result: str, how: str) -> None:
    found = _waiting(action)
    if found is not None:
        _settle(*found)
        maintain(found[0])


def _terminate(group: FakeAutoScalingGroup, state: Any) -> None:
    if state in instances(group):
        instances(group).remove(state)
    autoscaling.drop(state.instance.id)
    if state.instance._state.name != "terminated":
        _ec2(group).terminate_instances([state.instance.id])


def maintain(group: FakeAutoScalingGroup) -> None:
    """Fills the pool up to its size, or terminates warmed instances it has too many of."""
    if _pool(group) is None:
        return
    pool, target = instances(group), target_size(group)
    if len(pool) < target:
        _launch_into_pool(group, target - len(pool))
    elif len(pool) > target:
        for state in [s for s in pool if s.lifecycle_state in WARMED][: len(pool) - target]:
            _terminate(group, state)


def take(group: FakeAutoScalingGroup, count: int) -> list[Any]:
    """Up to `count` warmed instances out of the pool, started, ``Pending`` in the group."""
    if _pool(group) is None or count <= 0:
        return []
    chosen = [s for s in instances(group) if s.lifecycle_state in WARMED][:count]
    for state in chosen:
        instances(group).remove(state)
        if state.instance._state.name == "stopped":
            _ec2(group).start_instances([state.instance.id])
        state.lifecycle_state = "Pending"
        group.instance_states.append(state)
    return chosen


def return_to_pool(group: FakeAutoScalingGroup, state: Any) -> None:
    """Scale-in with ``ReuseOnScaleIn``: back to the pool, through the terminating hook if there is one."""
    group.instance_states = [s for s in group.instance_states if s is not state]
    autoscaling.drop(state.instance.id)
    instances(group).append(state)
    hooks = _hooks(group, TERMINATING)
    if hooks:
        state.lifecycle_state = "Warmed:Pending:Wait"
        autoscaling.start_action(group.autoscaling_backend, group, hooks[0], state.instance.id, TERMINATING,
                                 "AutoScalingGroup", "WarmPool", proceed=_returned)
    else:
        _settle(group, state)


def find(backend: Any, instance_id: str) -> tuple[FakeAutoScalingGroup, Any] | None:
    for group in backend.autoscaling_groups.values():
        for state in group.__dict__.get(_KEY, []):
            if state.instance.id == instance_id:
                return group, state
    return None


def terminate_warm(group: FakeAutoScalingGroup, state: Any) -> dict[str, Any]:
    """TerminateInstanceInAutoScalingGroup on a warm pool instance; the scaling activity it answers."""
    _terminate(group, state)
    maintain(group)
    return {
        "ActivityId": str(uuid.uuid4()),
        "AutoScalingGroupName": group.name,
        "Description": f"Terminating EC2 instance: {state.instance.id}",
        "Cause": f"At {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')} instance {state.instance.id} "
        "was taken out of service in response to a user request.",
        "StartTime": datetime.now(timezone.utc),
        "StatusCode": "InProgress",
        "Progress": 0,
    }


def discard(group: FakeAutoScalingGroup) -> None:
    """The pool goes, its instances terminated and their lifecycle actions ended."""
    for state in list(instances(group)):
        _terminate(group, state)
    group.warm_pool = None


# --- API ----------------------------------------------------------------------------------------------------


def _group(self: AutoScalingResponse) -> FakeAutoScalingGroup:
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    return group


def put_warm_pool(self: AutoScalingResponse) -> ActionResult:
    group = _group(self)
    if autoscaling_launch._mixed(group):
        raise ValidationError("You cannot add a warm pool to an Auto Scaling group that has a mixed instances policy.")
    state = self._get_param("PoolState")
    if state is not None and state not in POOL_STATES:
        raise ValidationError(f"1 validation error detected: Value '{state}' at 'poolState' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [Stopped, Running, Hibernated]")
    minimum = self._get_int_param("MinSize")
    if minimum is not None and minimum < 0:
        raise ValidationError(f"1 validation error detected: Value '{minimum}' at 'minSize' failed to satisfy "
                              "constraint: Member must have value greater than or equal to 0")
    prepared = self._get_int_param("MaxGroupPreparedCapacity")
    if prepared is not None and prepared < -1:
        raise ValidationError(f"1 validation error detected: Value '{prepared}' at 'maxGroupPreparedCapacity' "
                              "failed to satisfy constraint: Member must have value greater than or equal to -1")
    _original_put(self)
    maintain(group)
    return EmptyResult()


def describe_warm_pool(self: AutoScalingResponse) -> ActionResult:
    group = _group(self)
    limit = _max_records(self, 50)
    chunk, rest = page(instances(group), limit, self._get_param("NextToken"), {"AutoScalingGroupName": group.name}, _refuse)
    result: dict[str, Any] = {"Instances": chunk}
    if _pool(group) is not None:
        result["WarmPoolConfiguration"] = _pool(group)
    if rest is not None:
        result["NextToken"] = rest
    return ActionResult(result)


def delete_warm_pool(self: AutoScalingResponse) -> ActionResult:
    discard(_group(self))
    return EmptyResult()


def describe_auto_scaling_instances(self: AutoScalingBackend, instance_ids: list[str]) -> list[Any]:
    found = _original_describe_instances(self, instance_ids)
    for group in self.autoscaling_groups.values():
        found.extend(s for s in group.__dict__.get(_KEY, []) if not instance_ids or s.instance.id in instance_ids)
    return found


def update(self: FakeAutoScalingGroup, *args: Any, **kwargs: Any) -> None:
    """UpdateAutoScalingGroup: a new maximum size resizes the pool even when the desired capacity stays."""
    _original_update(self, *args, **kwargs)
    maintain(self)


def _warm_pool_size(self: FakeAutoScalingGroup) -> int | None:
    return len(instances(self)) if _pool(self) is not None else None


def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
    """EC2 TerminateInstances on a warm pool instance: it leaves the pool, which launches another."""
    out = _original_terminate_instances[0](self, instance_ids)
    from moto.autoscaling.models import autoscaling_backends

    groups = []
    for instance, _previous in out:
        if instance._state.name != "terminated":
            continue
        found = find(autoscaling_backends[self.account_id][self.region_name], instance.id)
        if found is not None:
            instances(found[0]).remove(found[1])
            autoscaling.drop(instance.id)
            groups.append(found[0])
    for group in groups:
        maintain(group)
    return out


_original_put = AutoScalingResponse.put_warm_pool
_original_update = FakeAutoScalingGroup.update
_original_describe_instances = AutoScalingBackend.describe_auto_scaling_instances
_original_terminate_instances: list[Any] = []


def install() -> None:
    AutoScalingResponse.put_warm_pool = put_warm_pool  # type: ignore[method-assign]
    AutoScalingResponse.describe_warm_pool = describe_warm_pool  # type: ignore[method-assign]
    AutoScalingResponse.delete_warm_pool = delete_warm_pool  # type: ignore[method-assign]
    AutoScalingBackend.describe_auto_scaling_instances = describe_auto_scaling_instances  # type: ignore[method-assign]
    FakeAutoScalingGroup.update = update  # type: ignore[method-assign]
    FakeAutoScalingGroup.warm_pool_size = property(_warm_pool_size)  # type: ignore[attr-defined]
    # After ``terminations`` (earlier in ``ALL``), whose record comes first.
    _original_terminate_instances[:] = [InstanceBackend.terminate_instances]
    InstanceBackend.terminate_instances = terminate_instances  # type: ignore[method-assign]


def tick() -> None:
    """No timers of its own: the lifecycle actions' run in ``autoscaling``."""


def reset() -> None:
    """Nothing kept outside moto's own state and ``autoscaling``'s actions."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
