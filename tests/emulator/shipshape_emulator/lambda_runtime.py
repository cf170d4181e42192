"""A local stand-in for the Lambda Runtime API, to run a function's real binary the way Lambda runs it.

Lambda starts the ``bootstrap`` with ``AWS_LAMBDA_RUNTIME_API=<host:port>`` and the function's
environment; the runtime then long-polls ``GET /2018-06-01/runtime/invocation/next`` for work and posts
each result to ``/runtime/invocation/<id>/response`` or ``/error``; a failed start is posted to
``/runtime/init/error``. This implements exactly that contract, as documented in
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html, on a loopback port.

Used by ``make demo`` and the benchmarks::

    with FunctionProcess(binary, env={...}) as fn:
        result = fn.invoke({"detail-type": ...})
        result.ok, result.payload, result.duration_ms, fn.init_ms
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

PREFIX = "/2018-06-01/runtime"


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    sent_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    body: bytes = b""
    error_type: str | None = None
    finished_at: float = 0.0


@dataclass
class Result:
    ok: bool
    payload: Any
    error_type: str | None
    duration_ms: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A function process stopped with a connection open (the end of every cold-start measurement) is
        # how a sandbox goes away, not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """The HTTP side: a queue of invocations handed out to whoever polls ``next``."""

    def __init__(self) -> None:
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.by_id: dict[str, Invocation] = {}
        self.first_poll = threading.Event()
        self.first_poll_at = 0.0
        self.init_error: dict[str, Any] | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # the function's own logs are what matter
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"unknown path"}')
                if not api.first_poll.is_set():
                    api.first_poll_at = time.monotonic()
                    api.first_poll.set()
                inv = api.pending.get()
                inv.sent_at = time.monotonic()
                self._reply(
                    200,
                    inv.payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:local",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = _json_or_text(body)
                    api.first_poll.set()
                    return self._reply(202)
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    inv = api.by_id.get(parts[1])
                    if inv is None:
                        return self._reply(400, b'{"errorMessage":"unknown request id"}')
                    inv.finished_at = time.monotonic()
                    inv.ok = parts[2] == "response"
                    inv.body = body
                    inv.error_type = None if inv.ok else self.headers.get("Lambda-Runtime-Function-Error-Type")
                    inv.done.set()
                    return self._reply(202)
                self._reply(404, b'{"errorMessage":"unknown path"}')

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def submit(self, payload: Any, timeout_s: float) -> Invocation:
        inv = Invocation(
            request_id=str(uuid.uuid4()),
            payload=json.dumps(payload).encode(),
            deadline_ms=int((time.time() + timeout_s) * 1000),
        )
        self.by_id[inv.request_id] = inv
        self.pending.put(inv)
        return inv

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class FunctionProcess:
    """A function binary started as Lambda starts it, fed one invocation at a time."""

    def __init__(
        self,
        command: list[str] | str | Path,
        env: dict[str, str],
        name: str = "local",
        timeout_s: float = 60,
        on_log: Callable[[str], None] | None = None,
        memory_mb: int = 128,
    ) -> None:
        self.command = [str(command)] if isinstance(command, (str, Path)) else command
        self.env = env
        self.name = name
        self.timeout_s = timeout_s
        self.on_log = on_log
        self.memory_mb = memory_mb
        self.init_ms = 0.0
        self.api: RuntimeApi | None = None
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "FunctionProcess":
        self.api = RuntimeApi()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            **self.env,
        }
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        threading.Thread(target=self._pump_logs, daemon=True).start()
        while not self.api.first_poll.wait(0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited with {self.proc.returncode} before asking for work")
        if self.api.init_error is not None:
            raise RuntimeError(f"{self.command[0]} failed to start: {self.api.init_error}")
        self.init_ms = (self.api.first_poll_at - started) * 1000
        return self

    def _pump_logs(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.on_log:
                self.on_log(line.rstrip("\n"))

    def invoke(self, payload: Any) -> Result:
        assert self.api is not None and self.proc is not None
        inv = self.api.submit(payload, self.timeout_s)
        while not inv.done.wait(0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited with {self.proc.returncode} during an invocation")
            if time.time() * 1000 > inv.deadline_ms:
                raise TimeoutError(f"{self.command[0]} did not answer within {self.timeout_s} s")
        return Result(
            ok=inv.ok,
            payload=_json_or_text(inv.body),
            error_type=inv.error_type,
            duration_ms=(inv.finished_at - inv.sent_at) * 1000,
        )

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.api is not None:
            self.api.close()
