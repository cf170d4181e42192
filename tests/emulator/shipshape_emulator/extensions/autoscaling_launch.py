"""Instances an Auto Scaling group launches and removes, through its lifecycle hooks, which moto 5.x skips.

moto puts every instance a group launches straight ``InService`` and ignores launching hooks; it counts only
``InService`` instances toward the desired capacity (so one still waiting for a hook would be launched
again), terminates on scale-in without a terminating hook's wait, and ignores CreateAutoScalingGroup's
``LifecycleHookSpecificationList``. AWS
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html):

- "If you added an autoscaling:EC2_INSTANCE_LAUNCHING lifecycle hook to your Auto Scaling group, the
  instances move from the Pending state to the Pending:Wait state. After you complete the lifecycle action,
  the instances enter the Pending:Proceed state. When the instances are fully configured, they are attached
  to the Auto Scaling group and they enter the InService state." (``Pending:Proceed`` passes at once here.)
- "If you added an autoscaling:EC2_INSTANCE_TERMINATING lifecycle hook to your Auto Scaling group, the
  instances move from the Terminating state to the Terminating:Wait state."
- Hooks apply to "instances launched or terminated when the group is created or deleted, when the group
  scales automatically, or when you manually adjust your group's desired capacity. Does not apply when you
  attach or detach instances, move instances in and out of standby mode, or delete the group with the force
  delete option." (https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html)
- The default result and ``CompleteLifecycleAction`` on a launch: "If the instance is launching, continue
  indicates that your actions were successful, and that Amazon EC2 Auto Scaling can put the instance into
  service. Otherwise, abandon indicates that your custom actions were unsuccessful, and that Amazon EC2 Auto
  Scaling can terminate the instance." (adding-lifecycle-hooks.html); "You can configure a launch lifecycle
  hook to abandon the launch if an unexpected failure occurs, in which case Amazon EC2 Auto Scaling
  automatically terminates and replaces the instance." (lifecycle-hooks.html)
- CreateAutoScalingGroup ``LifecycleHookSpecificationList``: "One or more lifecycle hooks to add to the
  Auto Scaling group before instances are launched."
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html)

So here, for a group whose launch configuration or template is not a mixed instances policy (those keep
moto's behaviour):

- Every instance the group launches, on creation, ``SetDesiredCapacity``, ``UpdateAutoScalingGroup``, the
  replacement of one terminated without decrementing the desired capacity (``TerminateInstanceInAutoScalingGroup``,
  EC2 ``TerminateInstances``) or of one whose launch was abandoned, waits in ``Pending:Wait`` when the
  group has a launching hook: the hook's target gets the lifecycle message (``LifecycleTransition``
  ``autoscaling:EC2_INSTANCE_LAUNCHING``, ``Origin`` ``EC2`` — or ``WarmPool`` for an instance taken from
  the group's warm pool — ``Destination`` ``AutoScalingGroup``, ``Time``, token, instance, hook and group),
  and the action is pending in ``GET /_shipshape/autoscaling`` like a terminating one (heartbeats, heartbeat
  and global timeouts, ``lifecycle_started_ago_seconds``, ``/autoscaling/advance``). CONTINUE puts it
  ``InService``; ABANDON terminates it, recorded in ``GET /_shipshape/terminations`` with ``how``
  ``lifecycle-abandoned`` and ``result`` ``ABANDON``, and the group launches a replacement, which waits for
  the hook again. AWS also slows launches down when hooks keep failing; the emulator does not.
- Instances in ``Pending``, ``Pending:Wait``, ``Pending:Proceed`` and ``InService`` count toward the desired
  capacity; ``Terminating*`` and ``Standby`` ones do not.
- A scale-in (a lower desired capacity) takes unprotected instances out as AWS does: through the group's
  terminating hook (``Terminating:Wait``, then terminated when the action completes or times out), straight
  to EC2 termination without one, or back to the warm pool when its instance reuse policy says so
  (``autoscaling_warm_pool``).
- ``DeleteAutoScalingGroup`` terminates the instances without hooks, as moto does (AWS's force delete).

moto 5.2.5 has no ``StartInstanceRefresh``, so a refresh launches nothing here.

A newly launched instance is a bare EC2 instance: its ECS agent registers a container instance only when
the test registers it (``Emulator.register``), so a test decides when an instance's agent comes up.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse

from . import autoscaling, terminations
from .autoscaling import LAUNCHING, TERMINATING

# The states that count toward a group's desired capacity.
COUNTED = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
_local = threading.local()


@contextmanager
def _flag(name: str) -> Iterator[None]:
    previous = getattr(_local, name, False)
    setattr(_local, name, True)
    try:
        yield
    finally:
        setattr(_local, name, previous)


def _mixed(group: FakeAutoScalingGroup) -> bool:
    policy = group.mixed_instances_policy
    return bool(policy and policy.get("LaunchTemplate", {}).get("Overrides"))


def active_instances(self: FakeAutoScalingGroup) -> list[Any]:
    return [s for s in self.instance_states if s.lifecycle_state in COUNTED]


def launch_new(group: FakeAutoScalingGroup, count: int, tags: dict[str, str]) -> list[Any]:
    """`count` new EC2 instances of the group, added to its instances as moto adds them (``InService``)."""
    before = {id(s) for s in group.instance_states}
    _original_replace(group, count, dict(tags))
    return [s for s in group.instance_states if id(s) not in before]


def replace_autoscaling_group_instances(self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]) -> None:
    """The group launches `count_needed` instances: from its warm pool first, then new ones."""
    if _mixed(self):
        _original_replace(self, count_needed, propagated_tags)
        return
    from . import autoscaling_warm_pool

    taken = autoscaling_warm_pool.take(self, count_needed)
    for state in taken:
        launched(self, state, "WarmPool")
    if count_needed > len(taken):
        for state in launch_new(self, count_needed - len(taken), propagated_tags):
            launched(self, state, "EC2")


def launched(group: FakeAutoScalingGroup, state: Any, origin: str) -> None:
    """An instance entering the group waits for the group's launching hook, or goes in service."""
    backend = group.autoscaling_backend
    hooks = [] if getattr(_local, "direct", False) else autoscaling.hooks_for(backend, group.name, LAUNCHING)
    if not hooks:
        state.lifecycle_state = "InService"
        return
    state.lifecycle_state = "Pending:Wait"
    autoscaling.start_action(backend, group, hooks[0], state.instance.id, LAUNCHING, origin, "AutoScalingGroup",
                             proceed=_launch_over)


def _launch_over(action: autoscaling.Action, result: str, how: str) -> None:
    backend = action.backend
    state = autoscaling.instance_state(backend, action.instance_id)
    if state is None or state.lifecycle_state != "Pending:Wait":
        return
    group = state.auto_scaling_group
    if result == "CONTINUE":
        state.lifecycle_state = "InService"
        return
    group.instance_states = [s for s in group.instance_states if s is not state]
    with terminations.cause("lifecycle-abandoned", result, group.name):
        backend.ec2_backend.terminate_instances([action.instance_id])
    group.set_desired_capacity(group.desired_capacity)  # its replacement


def terminate_now(group: FakeAutoScalingGroup, state: Any) -> None:
    """Out of the group and terminated, without a hook."""
    group.instance_states = [s for s in group.instance_states if s is not state]
    autoscaling.drop(state.instance.id)
    group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])


def scale_in(group: FakeAutoScalingGroup, state: Any) -> None:
    """One instance leaves the group on scale-in."""
    from . import autoscaling_warm_pool

    backend = group.autoscaling_backend
    if getattr(_local, "direct", False):
        terminate_now(group, state)
        return
    if autoscaling_warm_pool.reuses_on_scale_in(group):
        autoscaling_warm_pool.return_to_pool(group, state)
        return
    hooks = autoscaling.hooks_for(backend, group.name, TERMINATING)
    if not hooks:
        terminate_now(group, state)
        return
    autoscaling.drop(state.instance.id)  # a launch still waiting for its hook ends here
    autoscaling.begin_terminating(backend, group, state, hooks[0])


def set_desired_capacity(self: FakeAutoScalingGroup, new_capacity: int | None) -> None:
    if _mixed(self):
        _original_set_desired(self, new_capacity)
        return
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    if getattr(_local, "deferred", False):
        return  # the group is being created: its hooks come first
    counted = active_instances(self)
    delta = (self.desired_capacity or 0) - len(counted)
    if delta > 0:
        self.replace_autoscaling_group_instances(delta, self.get_propagated_tags())
    elif delta < 0:
        for state in [s for s in counted if not s.protected_from_scale_in][:-delta]:
            scale_in(self, state)
    backend = self.autoscaling_backend
    if self.name in backend.autoscaling_groups:
        backend.update_attached_elbs(self.name)
        backend.update_attached_target_groups(self.name)
    from . import autoscaling_warm_pool

    autoscaling_warm_pool.maintain(self)


def create_auto_scaling_group(self: AutoScalingResponse) -> Any:
    specs = self._get_param("LifecycleHookSpecificationList") or []
    if not specs:
        return _original_create(self)
    for spec in specs:
        if not spec.get("LifecycleHookName") or not spec.get("LifecycleTransition"):
            raise autoscaling.ValidationError(
                "LifecycleHookSpecification needs a LifecycleHookName and a LifecycleTransition"
            )
    with _flag("deferred"):
        answer = _original_create(self)
    backend = self.autoscaling_backend
    group = backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
    try:
        for spec in specs:
            autoscaling.put_hook(backend, group.name, spec)
    except Exception:
        backend.autoscaling_groups.pop(group.name, None)
        for key in [k for k in backend.lifecycle_hooks if k.startswith(f"{group.name}_")]:
            del backend.lifecycle_hooks[key]
        raise
    group.set_desired_capacity(group.desired_capacity)
    return answer


def delete_auto_scaling_group(self: AutoScalingBackend, group_name: str) -> None:
    """As moto (AWS's force delete): the instances terminate without hooks; pending actions end with them."""
    from . import autoscaling_warm_pool

    group = self.autoscaling_groups.get(group_name)
    with _flag("direct"):
        if group is not None:
            autoscaling_warm_pool.discard(group)
            for state in [s for s in group.instance_states if s.lifecycle_state not in COUNTED]:
                terminate_now(group, state)
            for state in group.instance_states:
                autoscaling.drop(state.instance.id)
        _original_delete(self, group_name)


_original_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances
_original_set_desired = FakeAutoScalingGroup.set_desired_capacity
_original_create = AutoScalingResponse.create_auto_scaling_group
_original_delete = AutoScalingBackend.delete_auto_scaling_group


def install() -> None:
    FakeAutoScalingGroup.active_instances = active_instances  # type: ignore[method-assign]
    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances  # type: ignore[method-assign]
    FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]
    AutoScalingResponse.create_auto_scaling_group = create_auto_scaling_group  # type: ignore[method-assign]
    AutoScalingBackend.delete_auto_scaling_group = delete_auto_scaling_group  # type: ignore[method-assign]


def tick() -> None:
    """No timers of its own: the lifecycle actions' run in ``autoscaling``."""


def reset() -> None:
    """Nothing kept outside moto's own state and ``autoscaling``'s actions."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
