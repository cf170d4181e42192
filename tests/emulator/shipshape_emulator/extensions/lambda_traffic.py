"""Traffic through a Lambda alias as Lambda serves it and reports it, and functions that answer as told.

moto runs no code (``Invoke`` echoes its payload) and publishes no metric. AWS (Lambda developer guide,
"Types of metrics for Lambda functions", "Implement Lambda canary deployments using a weighted alias"):

- routing: an alias with ``AdditionalVersionWeights`` sends each invocation to the additional version
  with its weight; "at low traffic levels, you might see a high variance between the configured and actual
  percentage", so each invocation is routed at random by the weights live at its start;
- timing: "the timestamp on a metric reflects when the function was invoked. Depending on the duration of
  the invocation, this can be several minutes before the metric is emitted": an invocation's data points
  carry its start, are emitted when it ends, and become visible in CloudWatch after the ingestion lag;
- metrics: ``Invocations`` (1), ``Errors`` (1 for an error or a timeout, else 0), ``Duration`` ("the
  maximum data point value possible is the function timeout configuration") and ``Throttles`` (a
  throttled attempt counts no invocation);
- dimensions: ``{FunctionName}``, ``{FunctionName, Resource=function:alias}`` and, while the alias routes
  between two versions, ``{FunctionName, Resource, ExecutedVersion}`` ("compare error rates for two
  versions of a function that are both targets of a weighted alias"). The last is emitted only for a
  weighted alias: code must not rely on it once the alias routes to one version.

``POST /_shipshape/lambda/traffic`` starts (or changes) the traffic of one alias::

    {"function": "api", "alias": "live", "rate": 20, "lag_ms": 1000, "seed": 7,
     "versions": {"2": {"error_rate": 0.1, "duration_ms": 100, "hang_rate": 0.0, "throttle_rate": 0.0}}}

``rate`` is invocations per second (0 stops it; what is in flight still lands); ``versions`` the behaviour
per version (unlisted ones: no error, 100 ms). A ``hang_rate`` share of invocations run until the
version's ``Timeout`` and fail. Durations vary by ±20 %; one that reaches the timeout is a timeout.
``GET`` shows each alias's settings and counts (per version: invocations, errors, throttles; published and
pending data points).

``POST /_shipshape/lambda/invoke`` with ``{"function": "check", "error": "Failed", "message": "..."}``
makes ``Invoke`` of that function answer with a function error (``X-Amz-Function-Error: Unhandled``), or
with ``{"function": "check", "result": {...}}`` return that payload; ``GET`` lists what each function
answers and every invocation received (function, qualifier, payload).
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

REGION = "us-east-1"
VERSION_FIELDS = {"error_rate": 0.0, "duration_ms": 100.0, "hang_rate": 0.0, "throttle_rate": 0.0}
TRAFFIC_FIELDS = {"function", "alias", "rate", "lag_ms", "versions", "seed", "region"}


@dataclass
class Invocation:
    start: float
    visible_at: float
    version: str
    weighted: bool
    throttled: bool = False
    error: bool = False
    duration_ms: float = 0.0


@dataclass
class Traffic:
    function: str
    alias: str
    region: str
    rate: float
    lag: float
    versions: dict[str, dict[str, float]]
    rng: random.Random
    next_start: float
    pending: list[Invocation] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    published: int = 0

    def behaviour(self, version: str) -> dict[str, float]:
        return {**VERSION_FIELDS, **self.versions.get(version, {})}


_lock = threading.RLock()
TRAFFIC: dict[tuple[str, str], Traffic] = {}
ANSWERS: dict[str, dict[str, Any]] = {}
INVOKED: list[dict[str, Any]] = []


def _number(spec: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{key}: a number from {low} to {high}")
    return float(value)


def configure_traffic(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - TRAFFIC_FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    function, alias = spec.get("function"), spec.get("alias")
    if not isinstance(function, str) or not function or not isinstance(alias, str) or not alias:
        raise ValueError("function and alias: required, the function's name and the alias's")
    versions = spec.get("versions", {})
    if not isinstance(versions, dict):
        raise ValueError("versions: an object of version number to behaviour")
    checked: dict[str, dict[str, float]] = {}
    for version, behaviour in versions.items():
        if not isinstance(behaviour, dict) or set(behaviour) - set(VERSION_FIELDS):
            raise ValueError(f"versions.{version}: an object with {sorted(VERSION_FIELDS)}")
        checked[str(version)] = {
            k: _number(behaviour, k, d, 0.001 if k == "duration_ms" else 0.0, 900_000.0 if k == "duration_ms" else 1.0)
            for k, d in VERSION_FIELDS.items()
        }
    rate = _number(spec, "rate", 10.0, 0.0, 1000.0)
    lag = _number(spec, "lag_ms", 1000.0, 0.0, 600_000.0) / 1000
    with _lock:
        _tick_locked(time.time())
        key = (function, alias)
        old = TRAFFIC.get(key)
        traffic = Traffic(
            function, alias, str(spec.get("region", REGION)), rate, lag, checked,
            random.Random(spec.get("seed", 0)) if old is None or "seed" in spec else old.rng,
            old.next_start if old else time.time(),
        )
        if old is not None:
            traffic.pending, traffic.counts, traffic.published = old.pending, old.counts, old.published
            if old.rate == 0:
                traffic.next_start = time.time()
        TRAFFIC[key] = traffic
    return traffic_status()


def traffic_status() -> dict[str, Any]:
    with _lock:
        return {
            f"{t.function}:{t.alias}": {
                "rate": t.rate, "lag_ms": t.lag * 1000, "versions": t.versions, "counts": t.counts,
                "published": t.published, "pending": len(t.pending),
            }
            for t in TRAFFIC.values()
        }


def _route(traffic: Traffic, backend: Any) -> tuple[str, bool, float]:
    """(version, whether the alias is weighted, the version's timeout in seconds) for one invocation."""
    alias = backend.get_alias(traffic.alias, traffic.function)
    weights = (alias.routing_config or {}).get("AdditionalVersionWeights") or {}
    version = alias.function_version
    for extra, weight in weights.items():
        if traffic.rng.random() < float(weight):
            version = str(extra)
    timeout = float(backend.get_function(traffic.function, version).timeout)
    return version, bool(weights), timeout


def _invoke(traffic: Traffic, start: float, backend: Any) -> Invocation:
    version, weighted, timeout = _route(traffic, backend)
    b = traffic.behaviour(version)
    count = traffic.counts.setdefault(version, {"invocations": 0, "errors": 0, "throttles": 0})
    if traffic.rng.random() < b["throttle_rate"]:
        count["throttles"] += 1
        return Invocation(start, start + traffic.lag, version, weighted, throttled=True)
    duration = b["duration_ms"] * traffic.rng.uniform(0.8, 1.2)
    hang = traffic.rng.random() < b["hang_rate"]
    error = traffic.rng.random() < b["error_rate"]
    if hang or duration >= timeout * 1000:
        duration, error = timeout * 1000, True
    count["invocations"] += 1
    count["errors"] += int(error)
    return Invocation(start, start + duration / 1000 + traffic.lag, version, weighted, error=error, duration_ms=duration)


def _datapoints(traffic: Traffic, inv: Invocation) -> list[dict[str, Any]]:
    at = datetime.fromtimestamp(inv.start, tz=timezone.utc)
    function = [{"Name": "FunctionName", "Value": traffic.function}]
    alias = function + [{"Name": "Resource", "Value": f"{traffic.function}:{traffic.alias}"}]
    sets = [function, alias] + ([alias + [{"Name": "ExecutedVersion", "Value": inv.version}]] if inv.weighted else [])
    if inv.throttled:
        values = {"Throttles": 1.0}
    else:
        values = {"Invocations": 1.0, "Errors": float(inv.error), "Duration": inv.duration_ms}
    units = {"Duration": "Milliseconds"}
    return [
        {"MetricName": name, "Value": value, "Dimensions": dims, "Timestamp": at, "Unit": units.get(name, "Count")}
        for dims in sets
        for name, value in values.items()
    ]


def _tick_locked(now: float) -> None:
    for traffic in TRAFFIC.values():
        backend = get_backend(DEFAULT_ACCOUNT_ID, traffic.region)
        if traffic.rate > 0:
            step = 1 / traffic.rate
            while traffic.next_start <= now:
                try:
                    traffic.pending.append(_invoke(traffic, traffic.next_start, backend))
                except Exception:  # the function or alias is gone (deleted, or moto was reset): no traffic
                    pass
                traffic.next_start += step
        due = [i for i in traffic.pending if i.visible_at <= now]
        if due:
            traffic.pending = [i for i in traffic.pending if i.visible_at > now]
            data = [d for inv in due for d in _datapoints(traffic, inv)]
            cloudwatch_backends[DEFAULT_ACCOUNT_ID][traffic.region].put_metric_data("AWS/Lambda", data)
            traffic.published += len(data)


def configure_answer(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {"function", "error", "message", "result"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    function = spec.get("function")
    if not isinstance(function, str) or not function:
        raise ValueError("function: required, the function's name")
    if ("error" in spec) == ("result" in spec):
        raise ValueError("either error (a function error's type) or result (the payload to return)")
    with _lock:
        ANSWERS[function] = {k: v for k, v in spec.items() if k != "function"}
    return answers()


def answers() -> dict[str, Any]:
    with _lock:
        return {"answers": dict(ANSWERS), "invocations": list(INVOKED)}


def _name_and_qualifier(raw: str, qualifier: str | None) -> tuple[str, str | None]:
    name = raw.split(":function:", 1)[1] if ":function:" in raw else raw
    if ":" in name:
        name, qualifier = name.split(":", 1)
    return name, qualifier


def invoke(self: LambdaResponse) -> Any:
    name, qualifier = _name_and_qualifier(unquote(self.path.rsplit("/", 2)[-2]), self.querystring.get("Qualifier", [None])[0])
    with _lock:
        answer = ANSWERS.get(name)
        if answer is not None:
            self.backend.get_function(name, qualifier)  # unknown function or version: AWS's 404
            try:
                payload = json.loads(self.body or "null")
            except ValueError:
                payload = self.body
            INVOKED.append({"function": name, "qualifier": qualifier, "payload": payload})
    if answer is None:
        return _original_invoke(self)
    headers = {"content-type": "application/json", "status": "200"}
    if "error" in answer:
        headers["x-amz-function-error"] = "Unhandled"
        body = {"errorType": answer["error"], "errorMessage": answer.get("message", "")}
        return 200, headers, json.dumps(body)
    return 200, headers, json.dumps(answer["result"])


_original_invoke = LambdaResponse.invoke


def install() -> None:
    LambdaResponse.invoke = invoke  # type: ignore[method-assign]


def tick() -> None:
    with _lock:
        _tick_locked(time.time())


def reset() -> None:
    with _lock:
        TRAFFIC.clear()
        ANSWERS.clear()
        INVOKED.clear()


ENDPOINTS: dict[str, dict[str, Any]] = {
    "/lambda/traffic": {"GET": traffic_status, "POST": configure_traffic},
    "/lambda/invoke": {"GET": answers, "POST": configure_answer},
}
