"""The Runtime API stand-in serves the documented contract to a minimal runtime written against it."""

from __future__ import annotations

import sys
import textwrap

import pytest

from shipshape_emulator.lambda_runtime import FunctionProcess

# A runtime loop as the Runtime API documentation describes it: poll next, post response or error.
RUNTIME = textwrap.dedent(
    """
    import json, os, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    if os.environ.get("FAIL_INIT"):
        urllib.request.urlopen(urllib.request.Request(api + "/init/error", data=b'{"errorType":"Config"}', method="POST"))
        raise SystemExit(1)
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            assert int(r.headers["Lambda-Runtime-Deadline-Ms"]) > 0
            event = json.loads(r.read())
        if event.get("fail"):
            body, path = json.dumps({"errorType": "Boom", "errorMessage": "asked to"}), "/error"
        else:
            body, path = json.dumps({"echo": event, "fn": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}), "/response"
        urllib.request.urlopen(urllib.request.Request(api + "/invocation/" + rid + path, data=body.encode(), method="POST"))
    """
)


def test_invocations_round_trip(tmp_path):
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)
    with FunctionProcess([sys.executable, str(script)], env={}, name="echo", timeout_s=10) as fn:
        assert fn.init_ms > 0
        ok = fn.invoke({"n": 1})
        assert ok.ok and ok.payload == {"echo": {"n": 1}, "fn": "echo"}
        failed = fn.invoke({"fail": True})
        assert not failed.ok and failed.payload["errorType"] == "Boom"
        again = fn.invoke({"n": 2})
        assert again.payload["echo"] == {"n": 2}


def test_init_error_is_reported(tmp_path):
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)
    with pytest.raises(RuntimeError, match="failed to start|exited"):
        with FunctionProcess([sys.executable, str(script)], env={"FAIL_INIT": "1"}, timeout_s=10):
            pass
