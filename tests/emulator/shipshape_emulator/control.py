"""Call counting and fault injection in front of moto, under ``/_shipshape/``.

Tests and benchmarks count API calls, and make calls fail the way AWS fails under load:

- ``GET  /_shipshape/calls`` -> ``{"ecs:ListContainerInstances": 2, ...}``: every AWS request received
  since start or the last reset, faulted ones included, keyed ``<signing service>:<Operation>``.
- ``POST /_shipshape/calls/reset`` -> forget the counts.
- ``POST /_shipshape/faults`` with ``{"operation": "UpdateContainerInstancesState", "count": 2,
  "error": "ThrottlingException"}``: the next ``count`` calls of that operation fail. Optional fields:
  ``service`` (only calls signed for it), ``status`` (HTTP status; derived from ``error`` by default),
  ``message``, ``delay_ms`` (answer late; with no ``error`` the call is then answered normally).
  ``error`` may also be the bare status ``"500"``. Faults queue up per operation in arrival order.
- ``GET /_shipshape/faults`` lists what is still queued; ``DELETE /_shipshape/faults`` clears it.
- ``POST /_shipshape/faults/random`` with ``{"seed": 7, "rate": 0.05, "errors": ["ThrottlingException",
  "InternalFailure", "500"]}`` and optionally ``"operations": [...]`` and ``"services": [...]`` (signing
  service names; all operations and services when absent): from then on each matching AWS request fails
  with probability ``rate``, drawn from a PRNG seeded with ``seed`` (the same requests in the same order
  fail the same way), with an error chosen uniformly from ``errors``, in the wire format of queued faults.
  Queued faults come first; a request a queued fault answers draws nothing. ``GET`` ->
  ``{"settings": {...} or null, "injected": {"<service>:<Operation>": count}}``; ``DELETE`` turns it off
  (the counts stay until the next ``POST``). A chaos run, reproducible from its seed.
- ``/_shipshape/throttling``: the account's request throttling by token bucket, per action family, as ECS,
  EC2 and Auto Scaling document it (off by default; see ``throttling``). A throttled request is answered
  with the service's throttling error before any queued or random fault is drawn.
- ``POST /_shipshape/shutdown``: the server answers, then exits.
- Requests signed with the access key id ``shipshape-harness`` (``Emulator.harness``) are the test's or
  benchmark's own, standing for what AWS does by itself (an instance refresh terminating a batch, an agent
  registering): they are not counted, throttled or faulted, so a benchmark's numbers are the functions'.
- The extensions add their own endpoints (``/_shipshape/autoscaling``, ``/_shipshape/ecs/draining``:
  GET shows the state, POST changes settings); see each module's ``ENDPOINTS`` in ``extensions``. A GET
  handler that takes a parameter gets the query string's parameters (``/_shipshape/events?since=12``).

Error bodies follow each protocol's documented wire format, so the SDKs classify them exactly as they
classify AWS's own (throttling and 5xx are retried):
- awsJson 1.0/1.1 (ECS, ...): ``{"__type": code, "message": ...}`` with ``X-Amzn-ErrorType``
  (https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html#operation-error-serialization);
- awsQuery (Auto Scaling, SNS, ...): ``<ErrorResponse><Error><Type/><Code/><Message/></Error>``
  (https://smithy.io/2.0/aws/protocols/aws-query-protocol.html#operation-error-serialization);
- restJson1 (Lambda, ...): ``X-Amzn-ErrorType`` header and ``{"message": ...}``
  (https://smithy.io/2.0/aws/protocols/aws-restjson1-protocol.html#operation-error-serialization).
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import parse_qs

from .extensions import Extension
from .throttling import Throttle

PREFIX = "/_shipshape"
# The credential scope of a request signed with the harness's access key id.
HARNESS_KEY = "Credential=shipshape-harness/"
# Served by Control itself; no extension may claim them.
OWN_PATHS = {"/calls", "/calls/reset", "/faults", "/faults/random", "/health", "/shutdown", "/throttling"}
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")

# The HTTP status AWS uses for the error codes tests inject most.
DEFAULT_STATUS = {
    "ThrottlingException": 400,
    "Throttling": 400,
    "TooManyRequestsException": 429,
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "InternalFailure": 500,
    "InternalError": 500,
    "ServerException": 500,
    # Lambda's "ServiceException: The Lambda service encountered an internal error" (HTTP 500).
    "ServiceException": 500,
}


@dataclass
class Fault:
    operation: str
    remaining: int
    service: str | None = None
    error: str | None = None
    status: int | None = None
    message: str | None = None
    delay_ms: int = 0

    def http_status(self) -> int:
        if self.status is not None:
            return self.status
        if self.error and self.error.isdigit():
            return int(self.error)
        return DEFAULT_STATUS.get(self.error or "", 400)

    def code(self) -> str:
        if self.error is None or self.error.isdigit():
            return "InternalFailure" if self.http_status() >= 500 else "BadRequest"
        return self.error


@functools.lru_cache(maxsize=None)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation) of a REST service, from botocore's model of it; most specific first."""
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    try:
        model = ServiceModel(Loader().load_service_model(service, "service-2"), service_name=service)
    except Exception:
        return []
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/").split("?", 1)[0]
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(uri))
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        routes.append((http.get("method", "GET"), re.compile(f"^{pattern}/?$"), name, len(re.sub(r"\{[^}]+\}", "", uri))))
    routes.sort(key=lambda r: -r[3])
    return [(m, p, n) for m, p, n, _ in routes]


def identify(environ: dict[str, Any], body: bytes) -> tuple[str, str, str]:
    """(service, operation, protocol) of an AWS request, from what every SDK sends."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _SCOPE.search(auth)
    service = m.group(1) if m else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path:  # Smithy RPC v2: /service/<Service>/operation/<Operation>
        return service, path.rsplit("/", 1)[-1], "json"
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return service, action[0], "query"
    method = environ.get("REQUEST_METHOD", "GET")
    for route_method, pattern, name in _rest_routes(service):
        if route_method == method and pattern.match(path):
            return service, name, "rest-json"
    return service, f"{method} {path}", "rest-json"


def error_response(fault: Fault, protocol: str) -> tuple[str, list[tuple[str, str]], bytes]:
    status = fault.http_status()
    code = fault.code()
    message = fault.message or f"Injected by the shipshape emulator: {code}"
    request_id = str(uuid.uuid4())
    if protocol == "query" and fault.service == "ec2":
        # EC2's own query protocol: <Response><Errors><Error>, RequestID
        # (https://smithy.io/2.0/aws/protocols/aws-ec2-query-protocol.html#operation-error-serialization).
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    elif protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        payload: dict[str, str] = {"message": message}
        if protocol == "json":
            payload["__type"] = code
            headers = [("Content-Type", "application/x-amz-json-1.1")]
        else:
            headers = [("Content-Type", "application/json")]
        body = json.dumps(payload).encode()
        headers.append(("X-Amzn-ErrorType", code))
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return f"{status} Injected", headers, body


@dataclass
class RandomFaults:
    """Faults drawn at random, reproducibly: ``POST /_shipshape/faults/random``."""

    seed: int
    rate: float
    errors: list[str]
    operations: list[str] | None = None
    services: list[str] | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def settings(self) -> dict[str, Any]:
        return {"seed": self.seed, "rate": self.rate, "errors": list(self.errors), "operations": self.operations,
                "services": self.services}

    def draw(self, service: str, operation: str) -> Fault | None:
        """A fault for this request, or None; called once per AWS request, in arrival order."""
        if self.operations is not None and operation not in self.operations:
            return None
        if self.services is not None and service not in self.services:
            return None
        if self.rng.random() >= self.rate:
            return None
        return Fault(operation, 1, service, self.rng.choice(self.errors))


class _ThenRun:
    """A response body that runs ``action`` (on a thread of its own) once the server has sent it."""

    def __init__(self, body: list[bytes], action: Callable[[], None]) -> None:
        self.body, self.action = body, action

    def __iter__(self) -> Any:
        return iter(self.body)

    def close(self) -> None:
        threading.Thread(target=self.action, name="shutdown", daemon=True).start()


class Control:
    """WSGI middleware: counts calls, applies queued faults, serves the control endpoints."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        extensions: Sequence[Extension] = (),
        shutdown: Callable[[], None] | None = None,
    ):
        """Each extension's ``tick`` runs before every AWS request and extension endpoint call, its ``reset``
        after ``POST /moto-api/reset``; its ``ENDPOINTS`` are served under ``/_shipshape``. ``shutdown``
        stops the server, for ``POST /_shipshape/shutdown``."""
        self.app = app
        self.shutdown = shutdown
        self.extensions = list(extensions)
        self.endpoints: dict[tuple[str, str], Callable[..., Any]] = {}
        for extension in self.extensions:
            for path, handlers in extension.ENDPOINTS.items():
                for method, handler in handlers.items():
                    if method not in ("GET", "POST") or path in OWN_PATHS or (method, path) in self.endpoints:
                        name = getattr(extension, "__name__", extension)
                        raise ValueError(f"{name}: cannot serve {method} {PREFIX}{path}")
                    self.endpoints[(method, path)] = handler
        self.lock = threading.Lock()
        # moto is not thread-safe, and the extensions' timers change its state: one AWS request, tick or
        # extension endpoint at a time. Requests still interleave, one whole request after another.
        self.serial = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.faults: deque[Fault] = deque()
        self.random_faults: RandomFaults | None = None
        self.injected: Counter[str] = Counter()
        self.throttle = Throttle()

    def _tick(self) -> None:
        for extension in self.extensions:
            extension.tick()

    def _take_fault(self, service: str, operation: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.operation == operation and fault.service in (None, service):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
            if self.random_faults is not None:
                fault = self.random_faults.draw(service, operation)
                if fault is not None:
                    self.injected[f"{service}:{operation}"] += 1
                return fault
        return None

    def _random_status(self) -> dict[str, Any]:
        with self.lock:
            settings = self.random_faults.settings() if self.random_faults is not None else None
            return {"settings": settings, "injected": dict(sorted(self.injected.items()))}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return self._control(environ, start_response, path[len(PREFIX) :])
        if path.startswith("/moto-api"):
            with self.serial:
                response = list(self.app(environ, start_response))
                if path.rstrip("/") == "/moto-api/reset":
                    for extension in self.extensions:
                        extension.reset()
                    self.throttle.disable()
            return response

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self.serial:
            self._tick()
        if HARNESS_KEY in environ.get("HTTP_AUTHORIZATION", ""):
            with self.serial:
                return list(self.app(environ, start_response))
        service, operation, protocol = identify(environ, body)
        with self.lock:
            self.calls[f"{service}:{operation}"] += 1
        throttled = self.throttle.take(service, operation)
        if throttled is not None:
            code, status = throttled
            fault = Fault(operation, 1, service, code, status, "Rate exceeded")
            status_line, headers, payload = error_response(fault, protocol)
            start_response(status_line, headers)
            return [payload]
        fault = self._take_fault(service, operation)
        if fault is not None:
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            if fault.error is not None or fault.status is not None:
                status, headers, payload = error_response(fault, protocol)
                start_response(status, headers)
                return [payload]
        with self.serial:
            return list(self.app(environ, start_response))

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/calls" and method == "GET":
                with self.lock:
                    return _json(start_response, 200, dict(sorted(self.calls.items())))
            if path == "/calls/reset" and method == "POST":
                with self.lock:
                    self.calls.clear()
                return _json(start_response, 200, {})
            if path == "/faults" and method == "GET":
                with self.lock:
                    return _json(start_response, 200, [asdict(f) for f in self.faults])
            if path == "/faults" and method == "DELETE":
                with self.lock:
                    self.faults.clear()
                return _json(start_response, 200, {})
            if path == "/faults" and method == "POST":
                fault = _parse_fault(environ)
                with self.lock:
                    self.faults.append(fault)
                return _json(start_response, 200, asdict(fault))
            if path == "/faults/random" and method == "GET":
                return _json(start_response, 200, self._random_status())
            if path == "/faults/random" and method == "DELETE":
                with self.lock:
                    self.random_faults = None
                return _json(start_response, 200, self._random_status())
            if path == "/faults/random" and method == "POST":
                chaos = _parse_random_faults(_read_json(environ))
                with self.lock:
                    self.random_faults = chaos
                    self.injected.clear()
                return _json(start_response, 200, self._random_status())
            if path == "/throttling" and method == "GET":
                return _json(start_response, 200, self.throttle.status())
            if path == "/throttling" and method == "POST":
                return _json(start_response, 200, self.throttle.configure(_read_json(environ)))
            if path == "/throttling" and method == "DELETE":
                return _json(start_response, 200, self.throttle.disable())
            if path == "/health":
                return _json(start_response, 200, {"status": "ok"})
            if path == "/shutdown" and method == "POST" and self.shutdown is not None:
                return _ThenRun(_json(start_response, 200, {"status": "shutting down"}), self.shutdown)
            handler = self.endpoints.get((method, path))
            if handler is not None:
                body = _read_json(environ) if method == "POST" else None
                with self.serial:
                    self._tick()
                    if method == "POST":
                        answer = handler(body)
                    elif _takes_query(handler):
                        answer = handler({k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()})
                    else:
                        answer = handler()
                return _json(start_response, 200, answer)
        except ValueError as err:
            return _json(start_response, 400, {"error": str(err)})
        return _json(start_response, 404, {"error": f"no control endpoint {method} {PREFIX}{path}"})


def _takes_query(handler: Callable[..., Any]) -> bool:
    """Whether a GET handler takes the query parameters (``{name: last value}``), as ``?since=`` needs."""
    try:
        return bool(inspect.signature(handler).parameters)
    except (TypeError, ValueError):
        return False


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"body is not JSON: {err}")
    if not isinstance(spec, dict):
        raise ValueError("body must be a JSON object")
    return spec


def _parse_fault(environ: dict[str, Any]) -> Fault:
    spec = _read_json(environ)
    unknown = set(spec) - {"operation", "service", "count", "error", "status", "message", "delay_ms"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    operation = spec.get("operation")
    if not isinstance(operation, str) or not operation:
        raise ValueError("operation: required, the API operation name, e.g. UpdateContainerInstancesState")
    count = spec.get("count", 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError("count: must be a whole number of at least 1")
    delay_ms = spec.get("delay_ms", 0)
    if not isinstance(delay_ms, int) or delay_ms < 0:
        raise ValueError("delay_ms: must be a whole number of milliseconds, 0 or more")
    error, status = spec.get("error"), spec.get("status")
    if error is None and status is None and delay_ms == 0:
        raise ValueError("a fault needs error, status or delay_ms")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError("status: must be an HTTP error status, 400 to 599")
    return Fault(operation, count, spec.get("service"), error, status, spec.get("message"), delay_ms)


def _parse_random_faults(spec: dict[str, Any]) -> RandomFaults:
    unknown = set(spec) - {"seed", "rate", "errors", "operations", "services"}
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    seed, rate, errors = spec.get("seed"), spec.get("rate"), spec.get("errors")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("seed: required, a whole number")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError("rate: required, a probability from 0 to 1")
    if not isinstance(errors, list) or not errors or not all(isinstance(e, str) and e for e in errors):
        raise ValueError("errors: required, a list of AWS error codes or HTTP statuses such as \"500\"")
    for error in errors:
        if error.isdigit() and not 400 <= int(error) <= 599:
            raise ValueError(f"errors: {error} is not an HTTP error status, 400 to 599")
    lists = {}
    for key in ("operations", "services"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)):
            raise ValueError(f"{key}: a list of names")
        lists[key] = value
    return RandomFaults(seed, float(rate), list(errors), lists["operations"], lists["services"])


def _json(start_response: Callable[..., Any], status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
