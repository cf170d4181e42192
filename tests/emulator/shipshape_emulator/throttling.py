"""Request throttling by token bucket, as ECS, EC2 and Auto Scaling apply it to an account, under
``/_shipshape/throttling``.

AWS throttles every API request of an account per Region with token buckets: each request takes a token
from its action's bucket; the bucket holds at most its *capacity* (the burst) and gets its *refill rate*
(the sustained rate) back every second; a request that finds the bucket empty fails. The buckets are
shared by every caller of the account, the console included. Sources:

- ECS: "Request throttling for the Amazon ECS API"
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html): "API actions are
  grouped into categories. All API actions in a category share the same token bucket"; error
  ``ThrottlingException`` (HTTP 400, "Rate exceeded"). The categories our functions call are below, with
  the page's capacities and refill rates.
- EC2: "Request throttling for the Amazon EC2 API"
  (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): "each API is evaluated
  individually" (a bucket per action), non-mutating actions 100 / 20, mutating ones 50 / 5; error
  ``RequestLimitExceeded`` (HTTP 503).
- Auto Scaling publishes no rates: "all Amazon EC2 Auto Scaling API calls have a single, shared API limit"
  (AWS Knowledge Center, "autoscaling-api-calls-throttled"); error ``Throttling`` ("Rate exceeded"), as
  SDKs see it on the wire. The emulator gives that one bucket 40 / 10, an assumption of ours, named as such.

Off by default (every existing test runs unthrottled). ``POST /_shipshape/throttling`` with
``{"enabled": true}`` turns it on with full buckets; optional fields:

- ``speed``: how much faster than real time the emulated account lives (a compressed clock): buckets
  refill ``speed`` times faster, and the per-minute counts below are per emulated minute (60 / speed real
  seconds). Default 1.
- ``buckets``: ``{"<family>": [capacity, refill per second]}``, replacing a family's numbers (a test that
  wants to see throttling without a burst of 100 calls).
- ``background``: ``{"<family>": calls per second}`` taken from the bucket by the account's other callers
  (the console, deploy tools, the ECS agent's neighbours), so a design that only fits by using the whole
  bucket is throttled.

``GET`` answers the settings and, per family, ``capacity``, ``refill``, ``calls`` (admitted),
``throttled``, ``peak_per_minute`` (the most admitted in any emulated minute, a sliding window) and
``sustained_per_minute`` (refill x 60, the most a minute can take over time), and ``operations``: the
calls admitted and throttled by ``<service>:<Operation>``. ``POST`` resets the counts; ``DELETE`` turns it
off. ``POST /moto-api/reset`` turns it off too.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

# (service, operation) -> family, for the operations our functions, tests and benchmarks call.
_ECS = {
    "cluster-read": (["DescribeClusters", "ListClusters"], 50, 20),
    "cluster-resource-read": (
        ["DescribeContainerInstances", "DescribeTasks", "ListAttributes", "ListContainerInstances", "ListTasks"], 100, 20),
    "cluster-resource-modify": (
        ["DeleteAttributes", "DeregisterContainerInstance", "ExecuteCommand", "PutAttributes", "RunTask", "StartTask",
         "StopTask", "UpdateContainerAgent", "UpdateContainerInstancesState"], 100, 40),
    "service-read": (["DescribeServices", "ListServices"], 100, 20),
    "task-definition-read": (["DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies"], 50, 20),
    "capacity-provider-read": (["DescribeCapacityProviders"], 50, 20),
    "task-protection": (["UpdateTaskProtection", "GetTaskProtection"], 200, 80),
}
_EC2_READ = ["DescribeInstances", "DescribeInstanceStatus", "DescribeSpotInstanceRequests"]
_EC2_WRITE = ["StartInstances", "StopInstances", "TerminateInstances"]
AUTOSCALING_BUCKET = (40, 10)

ERRORS = {"ecs": ("ThrottlingException", 400), "ec2": ("RequestLimitExceeded", 503),
          "autoscaling": ("Throttling", 400)}


def family_of(service: str, operation: str) -> str | None:
    if service == "ecs":
        for family, (operations, _, _) in _ECS.items():
            if operation in operations:
                return f"ecs:{family}"
        return None
    if service == "ec2" and (operation in _EC2_READ or operation in _EC2_WRITE):
        return f"ec2:{operation}"
    if service == "autoscaling":
        return "autoscaling:all"
    return None


def default_bucket(family: str) -> tuple[float, float]:
    service, name = family.split(":", 1)
    if service == "ecs":
        _, capacity, refill = _ECS[name]
        return float(capacity), float(refill)
    if service == "ec2":
        return (100.0, 20.0) if name in _EC2_READ else (50.0, 5.0)
    return float(AUTOSCALING_BUCKET[0]), float(AUTOSCALING_BUCKET[1])


@dataclass
class Bucket:
    capacity: float
    refill: float
    tokens: float
    at: float
    calls: int = 0
    throttled: int = 0
    recent: deque[float] = field(default_factory=deque)
    peak: int = 0


class Throttle:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled = False
        self.speed = 1.0
        self.overrides: dict[str, tuple[float, float]] = {}
        self.background: dict[str, float] = {}
        self.buckets: dict[str, Bucket] = {}
        self.operations: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def _bucket(self, family: str, now: float) -> Bucket:
        bucket = self.buckets.get(family)
        if bucket is None:
            capacity, refill = self.overrides.get(family, default_bucket(family))
            bucket = self.buckets[family] = Bucket(capacity, refill, capacity, now)
        # Refill for the time passed, less what the account's other callers took meanwhile.
        elapsed = (now - bucket.at) * self.speed
        net = bucket.refill - self.background.get(family, 0.0)
        bucket.tokens = max(0.0, min(bucket.capacity, bucket.tokens + elapsed * net))
        bucket.at = now
        return bucket

    def take(self, service: str, operation: str) -> tuple[str, int] | None:
        """``(error code, HTTP status)`` when this request is throttled, else None (a token was taken)."""
        if not self.enabled:
            return None
        family = family_of(service, operation)
        if family is None:
            return None
        now = time.monotonic()
        with self.lock:
            bucket = self._bucket(family, now)
            key = f"{service}:{operation}"
            if bucket.tokens < 1.0:
                bucket.throttled += 1
                self.refused[key] += 1
                return ERRORS[service]
            bucket.tokens -= 1.0
            bucket.calls += 1
            self.operations[key] += 1
            window = 60.0 / self.speed
            bucket.recent.append(now)
            while bucket.recent and bucket.recent[0] <= now - window:
                bucket.recent.popleft()
            bucket.peak = max(bucket.peak, len(bucket.recent))
            return None

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        unknown = set(spec) - {"enabled", "speed", "buckets", "background"}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        speed = spec.get("speed", 1)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0 < speed <= 1000:
            raise ValueError("speed: a number above 0, at most 1000")
        overrides = {}
        for family, numbers in (spec.get("buckets") or {}).items():
            ok = isinstance(numbers, list) and len(numbers) == 2 and all(
                isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0 for n in numbers)
            if not ok or ":" not in family:
                raise ValueError(f"buckets.{family}: [capacity, refill per second], both above 0")
            overrides[family] = (float(numbers[0]), float(numbers[1]))
        background = {}
        for family, rate in (spec.get("background") or {}).items():
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0:
                raise ValueError(f"background.{family}: calls per second, 0 or more")
            background[family] = float(rate)
        with self.lock:
            self.enabled = bool(spec.get("enabled", True))
            self.speed = float(speed)
            self.overrides = overrides
            self.background = background
            self.buckets.clear()
            self.operations.clear()
            self.refused.clear()
        return self.status()

    def disable(self) -> dict[str, Any]:
        with self.lock:
            self.enabled = False
            self.buckets.clear()
            self.operations.clear()
            self.refused.clear()
            self.overrides, self.background, self.speed = {}, {}, 1.0
        return self.status()

    def status(self) -> dict[str, Any]:
        with self.lock:
            families = {
                name: {"capacity": b.capacity, "refill": b.refill, "calls": b.calls, "throttled": b.throttled,
                       "peak_per_minute": b.peak, "sustained_per_minute": b.refill * 60,
                       "background_per_second": self.background.get(name, 0.0)}
                for name, b in sorted(self.buckets.items())
            }
            operations = {key: {"admitted": self.operations[key], "throttled": self.refused[key]}
                          for key in sorted(set(self.operations) | set(self.refused))}
            return {"enabled": self.enabled, "speed": self.speed, "families": families, "operations": operations}
