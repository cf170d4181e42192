"""One emulator process for the session (``shipshape_emulator.client``), reset before each test.

With ``SHIPSHAPE_EMULATOR_ZYGOTE=1`` the session's emulator is forked by a zygote instead of started on
its own, to run the whole suite against an emulator started that way.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any, Iterator

import pytest

from shipshape_emulator.client import AMI, Emulator, Zygote


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[Emulator]:
    with ExitStack() as stack:
        zygote = stack.enter_context(Zygote(logs=True)) if os.environ.get("SHIPSHAPE_EMULATOR_ZYGOTE") else None
        yield stack.enter_context(Emulator(logs=True, zygote=zygote))


@pytest.fixture
def emulator(emulator_process: Emulator) -> Emulator:
    emulator_process.reset()
    return emulator_process


@pytest.fixture
def cluster(emulator: Emulator) -> dict[str, Any]:
    """A cluster with three container instances on real (emulated) EC2 instances."""
    reservations = emulator.ec2.run_instances(ImageId=AMI, MinCount=3, MaxCount=3, InstanceType="m5.large")
    instance_ids = [i["InstanceId"] for i in reservations["Instances"]]
    emulator.ecs.create_cluster(clusterName="web")
    arns = {instance_id: emulator.register("web", instance_id) for instance_id in instance_ids}
    return {"name": "web", "instance_ids": instance_ids, "arns": arns}
