"""moto extensions: each module adds one behaviour that AWS documents and moto 5.x lacks, cites the
documentation it follows, and exports the same interface (``Extension``):

- ``install()``: patches moto; called once, before the server accepts connections.
- ``tick()``: advances the extension's timers; called before every AWS request and every call of an
  extension's control endpoint, so time in the emulator moves whenever someone looks.
- ``reset()``: back to the state ``install`` left; called after ``POST /moto-api/reset``, which resets
  moto's own state.
- ``ENDPOINTS``: ``{path: {method: handler}}``, control endpoints served under ``/_shipshape<path>``. A
  ``GET`` handler takes no argument, or one: the query string's parameters (``{name: value}``, the last
  value of a repeated one); a ``POST`` handler the request's JSON object; what a handler returns
  is answered as JSON, a ``ValueError`` it raises as 400 ``{"error": message}``.

An extension without timers has a ``tick`` that does nothing, one without state of its own a ``reset``
that does nothing, one without endpoints an empty ``ENDPOINTS``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from . import (
    autoscaling,
    autoscaling_launch,
    autoscaling_listing,
    autoscaling_warm_pool,
    bulk,
    cloudwatch_reads,
    ecs_agent,
    ecs_attributes,
    ecs_capacity_providers,
    ecs_deployments,
    ecs_draining,
    ecs_listing,
    ecs_placement,
    ecs_protection,
    ecs_query,
    ec2_events,
    ec2_stop,
    events,
    iam_role,
    lambda_alias,
    lambda_traffic,
    terminations,
)

Handler = Callable[..., Any]


class Extension(Protocol):
    @property
    def ENDPOINTS(self) -> Mapping[str, Mapping[str, Handler]]: ...

    def install(self) -> None: ...

    def tick(self) -> None: ...

    def reset(self) -> None: ...


# What the server installs; ticks and resets run in this order.
ALL: list[Extension] = [
    autoscaling,
    autoscaling_listing,
    ecs_query,
    ecs_listing,
    ecs_attributes,
    ecs_draining,
    # After ecs_draining: each wraps the CreateService the one before installed.
    ecs_placement,
    ecs_deployments,
    # After ecs_deployments: it keeps the strategy on the service CreateService returns.
    ecs_capacity_providers,
    ecs_protection,
    ecs_agent,
    lambda_alias,
    iam_role,
    terminations,
]
# Traffic through Lambda aliases, read back from CloudWatch as AWS answers (the alias-shifter's tests).
ALL += [cloudwatch_reads, lambda_traffic]
# Launches through lifecycle hooks, warm pools, and what a stopped instance does to ECS.
ALL += [autoscaling_launch, autoscaling_warm_pool, ec2_stop]
# EC2's scheduled events, and the launch time of a restarted instance.
ALL += [ec2_events]
# Seeding large clusters in one request (the benchmarks).
ALL += [bulk]
# What EventBridge would carry of all this: last, so that its tick sees every change the others made.
ALL += [events]
