"""The zygote (``python -m shipshape_emulator --zygote``): emulators forked in milliseconds, each with fresh,
independent state, gone when stopped, when the zygote's stdin closes, or when the zygote dies; and
``POST /_shipshape/shutdown`` in either mode."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from shipshape_emulator.client import AMI, Emulator, Zygote


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    with Zygote(logs=True) as z:
        yield z


def gone(pid: int) -> bool:
    """The process no longer exists: exited and reaped (a zombie would still be listed)."""
    return not Path(f"/proc/{pid}").exists()


def dead(pid: int) -> bool:
    """The process has exited (reaped, or a zombie that is not ours to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def refuses(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return False
    except OSError:
        return True


def eventually(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_emulators_have_fresh_independent_state(zygote: Zygote) -> None:
    with Emulator(zygote=zygote) as first, Emulator(zygote=zygote) as second:
        assert first.url != second.url and first.pid != second.pid
        first.ecs.create_cluster(clusterName="only-here")
        [a] = [i["InstanceId"] for i in first.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"]]
        [b] = [i["InstanceId"] for i in second.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"]]
        assert a != b  # each draws its own ids
        assert second.ecs.list_clusters()["clusterArns"] == []
        first.control("POST", "/autoscaling", {"min_heartbeat_timeout": 5})
        assert second.lifecycle_actions()["settings"]["min_heartbeat_timeout"] == 30
        first.fault("ListClusters", error="ThrottlingException")
        assert second.faults() == [] and second.calls() == {"ec2:RunInstances": 1, "ecs:ListClusters": 1}
        # Nothing the zygote did while warming up shows: no instance but the one just launched, no topic.
        reservations = second.ec2.describe_instances()["Reservations"]
        assert [i["InstanceId"] for r in reservations for i in r["Instances"]] == [b]
        assert second.sns.list_topics()["Topics"] == [] and second.terminations() == []
    with Emulator(zygote=zygote) as third:
        assert third.ecs.list_clusters()["clusterArns"] == []


def test_an_emulator_from_a_zygote_runs_the_extensions(zygote: Zygote) -> None:
    with Emulator(zygote=zygote) as emulator:
        [instance] = emulator.group("web", 1)
        emulator.autoscaling.put_lifecycle_hook(
            LifecycleHookName="drain", AutoScalingGroupName="web",
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=60,
        )
        emulator.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=False)
        state = emulator.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        assert state[0]["LifecycleState"] == "Terminating:Wait"


def test_stop_kills_and_reaps_one_and_leaves_the_others(zygote: Zygote) -> None:
    first_pid, first_url = zygote.start()
    second_pid, second_url = zygote.start()
    assert zygote.command(f"stop {first_pid}") == f"stopped {first_pid}"
    assert gone(first_pid) and refuses(first_url)
    assert not refuses(second_url)
    assert zygote.command("stop 1") == "error 1 is not an emulator of this zygote"
    assert zygote.command("fly") == "error unknown command: fly"
    zygote.stop(second_pid)


def test_end_of_stdin_stops_every_emulator_and_the_zygote() -> None:
    zygote = Zygote(logs=True)
    started = [zygote.start() for _ in range(2)]
    zygote.close()  # closes stdin, waits for the zygote
    assert zygote.process.returncode == 0
    for pid, url in started:
        assert eventually(lambda: dead(pid) and refuses(url))


def test_emulators_die_with_their_zygote() -> None:
    zygote = Zygote(logs=True)
    pid, url = zygote.start()
    os.kill(zygote.process.pid, signal.SIGKILL)
    zygote.process.wait()
    # (A killed process shows as a zombie while its other threads still exit and hold its sockets.)
    assert eventually(lambda: dead(pid) and refuses(url), 3.0)


def test_shutdown_answers_then_exits_and_the_zygote_reaps(zygote: Zygote) -> None:
    emulator = Emulator(zygote=zygote)
    emulator.shutdown()
    assert eventually(lambda: gone(emulator.pid) and refuses(emulator.url), 3.0)  # exited and reaped: no zombie
    # The zygote still serves, and stopping the one that is gone is harmless.
    assert zygote.command(f"stop {emulator.pid}") == f"stopped {emulator.pid}"
    with Emulator(zygote=zygote) as again:
        assert again.ecs.list_clusters()["clusterArns"] == []


def test_shutdown_of_a_standalone_emulator() -> None:
    emulator = Emulator(logs=True)
    assert emulator.process is not None
    started = time.monotonic()
    emulator.shutdown()
    assert emulator.process.wait(timeout=5) == 0
    assert time.monotonic() - started < 2


def test_start_is_fast(zygote: Zygote) -> None:
    started = time.monotonic()
    pid, url = zygote.start()
    took = time.monotonic() - started
    assert not refuses(url)
    zygote.stop(pid)
    # A cold start imports moto (over a second); a fork does not. Generous, for a loaded machine.
    assert took < 1.0, took
