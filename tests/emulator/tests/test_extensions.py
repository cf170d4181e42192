"""The extensions' common interface, and how the control layer serves it."""

from __future__ import annotations

import pkgutil
import time
from types import SimpleNamespace
from typing import Any

import pytest

from shipshape_emulator import extensions
from shipshape_emulator.client import ControlError, Emulator
from shipshape_emulator.control import Control

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def test_every_extension_module_is_listed_and_has_the_interface() -> None:
    modules = {m.name for m in pkgutil.iter_modules(extensions.__path__)}
    assert modules == {e.__name__.rsplit(".", 1)[-1] for e in extensions.ALL}
    for extension in extensions.ALL:
        for name in ("install", "tick", "reset"):
            assert callable(getattr(extension, name)), f"{extension.__name__}.{name}"
        for path, handlers in extension.ENDPOINTS.items():
            assert path.startswith("/") and handlers and set(handlers) <= {"GET", "POST"}, (extension.__name__, path)
            assert all(callable(h) for h in handlers.values())


def _extension(endpoints: dict[str, Any]) -> Any:
    return SimpleNamespace(__name__="fake", ENDPOINTS=endpoints, install=lambda: None, tick=lambda: None, reset=lambda: None)


@pytest.mark.parametrize(
    "endpoints",
    [
        [{"/calls": {"GET": dict}}],  # Control's own
        [{"/x": {"GET": dict}}, {"/x": {"GET": dict}}],  # claimed twice
        [{"/x": {"DELETE": dict}}],  # endpoints take GET and POST only
    ],
)
def test_control_refuses_endpoints_it_cannot_serve(endpoints: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="cannot serve"):
        Control(lambda environ, start_response: [], [_extension(e) for e in endpoints])


def test_reset_restores_the_extensions_settings(emulator: Emulator) -> None:
    emulator.draining(stop_after_ms=5, step_ms=5, never_stop=["arn:aws:ecs:us-east-1:123456789012:task/web/x"])
    emulator.min_heartbeat_timeout(1)
    emulator.control("POST", "/autoscaling", {"lifecycle_started_ago_seconds": 60, "heartbeat_age_seconds": 5})
    assert emulator.control("GET", "/ecs/draining") == {
        "stop_after_ms": 5, "step_ms": 5, "never_stop": ["arn:aws:ecs:us-east-1:123456789012:task/web/x"], "unable_to_place": [],
    }
    emulator.reset()
    assert emulator.control("GET", "/ecs/draining") == {"stop_after_ms": 1000, "step_ms": 300, "never_stop": [], "unable_to_place": []}
    assert emulator.lifecycle_actions()["settings"] == {
        "min_heartbeat_timeout": 30, "lifecycle_started_ago_seconds": 0, "heartbeat_age_seconds": None,
    }


@pytest.mark.parametrize("path", ["/ecs/agent", "/iam/role"])
def test_an_endpoint_answers_only_its_methods(emulator: Emulator, path: str) -> None:
    with pytest.raises(ControlError) as err:
        emulator.control("GET", path)
    assert err.value.status == 404


def test_a_bad_setting_is_refused_by_name(emulator: Emulator) -> None:
    with pytest.raises(ControlError) as err:
        emulator.control("POST", "/ecs/draining", {"stop_after_ms": -1})
    assert err.value.status == 400 and "stop_after_ms" in err.value.body["error"]


def test_timers_tick_before_a_control_endpoint_answers(emulator: Emulator) -> None:
    emulator.min_heartbeat_timeout(1)
    [instance] = emulator.group("web", 1)
    emulator.autoscaling.put_lifecycle_hook(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=1, DefaultResult="ABANDON",
    )
    emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=False)
    assert [a["instance_id"] for a in emulator.lifecycle_actions()["pending"]] == [instance]
    time.sleep(1.2)  # no AWS request from here on: the control call itself applies the timeout
    actions = emulator.lifecycle_actions()
    assert actions["pending"] == []
    assert [{k: v for k, v in a.items() if k != "at"} for a in actions["finished"]] == [
        {"instance_id": instance, "group": "web", "hook": "drain", "transition": TERMINATING, "result": "ABANDON", "how": "timed-out"}
    ]


def test_a_get_handler_that_takes_a_parameter_gets_the_query() -> None:
    import json

    from werkzeug.test import EnvironBuilder

    seen: list[Any] = []
    endpoints = {"/q": {"GET": lambda query: seen.append(query) or {"ok": True}}, "/plain": {"GET": lambda: {"plain": True}}}
    control = Control(lambda environ, start_response: [], [_extension(endpoints)])

    def get(path: str) -> Any:
        environ = EnvironBuilder(path=path, method="GET").get_environ()
        return json.loads(b"".join(control(environ, lambda *_: None)))

    assert get("/_shipshape/q?since=3&a=1&a=2") == {"ok": True}
    assert get("/_shipshape/q") == {"ok": True}
    assert seen == [{"since": "3", "a": "2"}, {}]
    assert get("/_shipshape/plain?ignored=1") == {"plain": True}
