"""One emulator process for the session (``shipshape_emulator.client``), reset before each test."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from shipshape_emulator.client import AMI, Emulator


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[Emulator]:
    with Emulator(logs=True) as emulator:
        yield emulator


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
