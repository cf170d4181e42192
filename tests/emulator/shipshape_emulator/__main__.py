"""Starts the emulator: ``python -m shipshape_emulator [--host 127.0.0.1] [--port 0] [--quiet]``.

Port 0 picks a free port; ``shipshape-emulator listening on http://HOST:PORT`` is printed as the first line
once the socket accepts connections, so a harness can wait for that line instead of polling.

``python -m shipshape_emulator --zygote [--quiet]`` is a fork server, for a test suite that starts an
emulator per test: starting one costs the import of moto and its models, about 1.5 s of CPU, and a
zygote pays it once. It imports and warms everything without starting a thread or a server, prints
``shipshape-emulator zygote ready`` as its first line, then reads commands from stdin, one per line,
answering each with one line on stdout:

- ``start``: forks an emulator that installs the extensions and serves on a fresh loopback port, with
  fresh state, exactly as ``python -m shipshape_emulator --port 0``; answered ``started <pid>
  http://127.0.0.1:<port>`` once it accepts connections (``error start: ...`` if it could not start).
- ``stop <pid>``: SIGTERM to that emulator, SIGKILL after a second if it is still there, reaped;
  answered ``stopped <pid>`` (``error ...`` for a pid that is not one of its emulators).
- end of stdin (the test process finished or died): every emulator is stopped the same way, and the
  zygote exits.

An emulator dies with its zygote (PR_SET_PDEATHSIG on Linux, and a watchdog that checks its parent every
second anywhere). Emulators that exit on their own (``POST /_shipshape/shutdown``) are reaped within a
second. Either mode exits promptly after ``POST /_shipshape/shutdown``, once it has answered.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import threading
import time
from typing import Any, Callable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import extensions
from .control import Control
from .rpcv2_cbor import RpcV2Cbor

READY = "shipshape-emulator zygote ready"
# The services the functions, the tests and the demo call: what a zygote warms up.
WARM_REQUESTS = [
    ("ecs", "json", "AmazonEC2ContainerServiceV20141113.ListClusters"),
    ("autoscaling", "query", "DescribeAutoScalingGroups&Version=2011-01-01"),
    ("ec2", "query", "DescribeInstances&Version=2016-11-15"),
    ("sns", "query", "ListTopics&Version=2010-03-31"),
    ("sqs", "json", "AmazonSQS.ListQueues"),
    ("monitoring", "query", "ListMetrics&Version=2010-08-01"),  # CloudWatch signs as "monitoring"
    ("events", "json", "AWSEvents.ListRules"),
    ("iam", "query", "ListRoles&Version=2010-05-08"),
    ("sts", "query", "GetCallerIdentity&Version=2011-06-15"),
    ("lambda", "rest", "/2015-03-31/functions/"),
]


def serve(host: str, port: int, quiet: bool, announce: Callable[[int], None],
          dispatcher: DomainDispatcherApplication | None = None) -> None:
    """Installs the extensions and serves until shut down; ``announce(port)`` once connections are accepted."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for extension in extensions.ALL:
        extension.install()
    # moto, then call counting and faults, then RPC v2 CBOR translated to and from what those two speak.
    control = Control(dispatcher or DomainDispatcherApplication(create_backend_app), extensions.ALL)
    server = make_server(host, port, RpcV2Cbor(control), threaded=True, request_handler=MotoRequestHandler)
    control.shutdown = server.shutdown
    os.environ.setdefault("MOTO_PORT", str(server.port))
    announce(server.port)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shipshape_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--zygote", action="store_true", help="a fork server of emulators, driven through stdin")
    args = parser.parse_args()
    if args.zygote:
        Zygote(args.quiet).run()
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args.host, args.port, args.quiet,
          lambda port: print(f"shipshape-emulator listening on http://{args.host}:{port}", flush=True))


# --- Zygote ----------------------------------------------------------------------------------------------------


def _warm() -> DomainDispatcherApplication:
    """Imports and loads what the first requests of each service would (moto's backends and responses,
    botocore's models), by answering one read-only request per service in-process; resets moto's state;
    then answers them again, so that the default account's backends exist (EC2's alone takes about 0.2 s
    to create) as they are after those read-only requests on a fresh server. Starts no thread."""
    from werkzeug.test import EnvironBuilder

    dispatcher = DomainDispatcherApplication(create_backend_app)
    app = RpcV2Cbor(Control(dispatcher))
    auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
    def answer(environ: dict[str, Any]) -> None:
        for _ in app(environ, lambda *_: None):
            pass

    for _round in ("load", "create backends"):
        for service, protocol, what in WARM_REQUESTS:
            headers = {"Authorization": auth.format(service), "Host": "127.0.0.1"}
            if protocol == "json":
                headers["X-Amz-Target"] = what
                builder = EnvironBuilder(path="/", method="POST", headers=headers, data=b"{}",
                                         content_type="application/x-amz-json-1.1")
            elif protocol == "query":
                builder = EnvironBuilder(path="/", method="POST", headers=headers, data=f"Action={what}",
                                         content_type="application/x-www-form-urlencoded")
            else:
                builder = EnvironBuilder(path=what, method="GET", headers=headers)
            answer(builder.get_environ())
        if _round == "load":
            answer(EnvironBuilder(path="/moto-api/reset", method="POST", headers={"Host": "127.0.0.1"}).get_environ())
    return dispatcher


def _die_with(parent: int) -> None:
    """This process ends when ``parent`` does."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the signal was set up
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Zygote:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.children: dict[int, bool] = {}  # pid -> still running

    def run(self) -> None:
        self.dispatcher = _warm()
        others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if others:
            raise SystemExit(f"shipshape-emulator zygote: threads running before fork: {others}")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.say(READY)
        pending = b""
        try:
            while True:
                readable, _, _ = select.select([0], [], [], 1.0)
                self.reap()
                if not readable:
                    continue
                data = os.read(0, 4096)
                if not data:
                    break
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self.command(line.decode("utf-8", "replace").strip())
        finally:
            self.stop(*[p for p, running in self.children.items() if running])

    def say(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def command(self, line: str) -> None:
        words = line.split()
        if words == ["start"]:
            self.start()
        elif len(words) == 2 and words[0] == "stop" and words[1].isdigit():
            pid = int(words[1])
            if pid not in self.children:
                self.say(f"error {pid} is not an emulator of this zygote")
            else:
                self.stop(pid)
                self.say(f"stopped {pid}")
        elif words:
            self.say(f"error unknown command: {line}")

    def start(self) -> None:
        read, write = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(read)
                self.child(parent, write)
                status = 0
            except SystemExit as stop:
                status = stop.code if isinstance(stop.code, int) else 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(write)
        data = b""
        deadline = time.monotonic() + 60
        while b"\n" not in data and time.monotonic() < deadline:
            ready, _, _ = select.select([read], [], [], 1.0)
            if ready:
                chunk = os.read(read, 64)
                if not chunk:
                    break
                data += chunk
        os.close(read)
        port = data.decode().strip()
        if not port.isdigit():
            self.children[pid] = True
            self.stop(pid)
            self.say(f"error start: the emulator {pid} did not start")
            return
        self.children[pid] = True
        self.say(f"started {pid} http://127.0.0.1:{port}")

    def child(self, parent: int, port_pipe: int) -> None:
        """In the forked emulator: cut loose from the zygote's stdin and stdout, then serve."""
        _die_with(parent)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)  # anything printed goes to stderr; stdout is the zygote's answers
        sys.stdin = open(os.devnull)
        _reseed()

        def announce(port: int) -> None:
            os.write(port_pipe, f"{port}\n".encode())
            os.close(port_pipe)

        serve("127.0.0.1", 0, self.quiet, announce, self.dispatcher)

    def stop(self, *pids: int) -> None:
        """SIGTERM, then SIGKILL to whichever is still there after a second; every one reaped."""
        running = [pid for pid in pids if self.children.get(pid)]
        for pid in running:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not all([self._reaped(pid) for pid in running]):
            time.sleep(0.01)
        for pid in running:
            if self.children.get(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                self.children[pid] = False

    def _reaped(self, pid: int) -> bool:
        if not self.children.get(pid):
            return True
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done == pid:
            self.children[pid] = False
            return True
        return False

    def reap(self) -> None:
        """Emulators that exited on their own (a shutdown request, a crash) are reaped: no zombies."""
        for pid in [p for p, running in self.children.items() if running]:
            self._reaped(pid)


def _reseed() -> None:
    """A forked emulator draws its own ids: without this every emulator of a zygote would draw the same."""
    import random

    from moto.moto_api._internal import mock_random

    random.seed()
    mock_random.seed(int.from_bytes(os.urandom(16), "big"))  # moto draws ids from its own Random


if __name__ == "__main__":
    main()
