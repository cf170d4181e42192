"""Smithy RPC v2 CBOR in front of moto, which speaks only the older protocols.

Newer AWS SDKs call some services in the Smithy RPC v2 CBOR protocol
(https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html); the Rust SDK's CloudWatch client
does so. AWS accepts it; moto 5.x answers 404. The protocol is a transport for the same operations, so this
middleware translates each request to AWS JSON 1.0 (which moto serves), and the answer back:

- request: ``POST /service/<ServiceName>/operation/<Operation>`` with ``smithy-protocol: rpc-v2-cbor`` and
  a CBOR map body; timestamps are CBOR tag 1 (epoch seconds);
- response: the output structure as a CBOR map with timestamps as tag 1, ``smithy-protocol: rpc-v2-cbor``;
  an error is the status with a map holding ``__type`` and ``message``.

Which members are timestamps comes from botocore's model of the service, so nothing is guessed.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Iterable

import cbor2
from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape

_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")
# Smithy service names of the services our functions call in this protocol, to botocore's names.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


@lru_cache(maxsize=None)
def _model(name: str) -> ServiceModel:
    return ServiceModel(Loader().load_service_model(name, "service-2"), service_name=name)


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return value


def _to_cbor(value: Any, shape: Shape | None) -> Any:
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, (int, float)):
        return cbor2.CBORTag(1, float(value))
    if kind == "timestamp" and isinstance(value, str):
        return cbor2.CBORTag(1, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {k: _to_cbor(v, members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_to_cbor(v, shape.member) for v in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {k: _to_cbor(v, shape.value) for k, v in value.items()}  # type: ignore[attr-defined]
    return value


class RpcV2Cbor:
    """WSGI middleware: RPC v2 CBOR requests in, AWS JSON 1.0 to the app, CBOR out."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        m = _PATH.match(environ.get("PATH_INFO", ""))
        if not m or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor" or m.group("service") not in SERVICES:
            return self.app(environ, start_response)
        model = _model(SERVICES[m.group("service")])
        operation = m.group("operation")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        request = cbor2.loads(raw) if raw else {}
        body = json.dumps(_to_json(request)).encode()
        target = f"{model.metadata['targetPrefix']}.{operation}"
        inner = {
            **environ,
            "PATH_INFO": "/",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": target,
            "wsgi.input": io.BytesIO(body),
        }
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _: None

        answer = b"".join(self.app(inner, capture))
        status = captured.get("status", "500 Internal Server Error")
        code = int(status.split(" ", 1)[0])
        try:
            payload = json.loads(answer) if answer.strip() else {}
        except ValueError:
            payload = {"__type": "InternalFailure", "message": answer.decode("utf-8", "replace")[:500]}
        if code >= 400:
            error_type = payload.get("__type") or dict(captured.get("headers", [])).get("X-Amzn-ErrorType", "InternalFailure")
            out = {"__type": str(error_type).split(":", 1)[0], "message": payload.get("message") or payload.get("Message", "")}
        else:
            try:
                shape = model.operation_model(operation).output_shape
            except Exception:
                shape = None
            out = _to_cbor(payload, shape)
        data = cbor2.dumps(out)
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(data)))]
        headers += [(k, v) for k, v in captured.get("headers", []) if k.lower() in ("x-amzn-requestid",)]
        start_response(status, headers)
        return [data]


