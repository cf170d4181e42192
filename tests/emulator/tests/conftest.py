"""Starts one emulator process for the session and hands out boto3 clients bound to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

HERE = Path(__file__).resolve().parent.parent
AMI = "ami-12c6146b"


class Emulator:
    def __init__(self, url: str):
        self.url = url

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_shipshape{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"))
        self.control("POST", "/calls/reset")
        self.control("DELETE", "/faults")


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[Emulator]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipshape_emulator", "--port", "0", "--quiet"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, f"emulator did not start: {line!r}"
    yield Emulator(line.rsplit(" ", 1)[-1].strip())
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def emulator(emulator_process: Emulator) -> Emulator:
    emulator_process.reset()
    return emulator_process


@pytest.fixture
def cluster(emulator: Emulator) -> dict[str, Any]:
    """A cluster with three container instances on real (emulated) EC2 instances."""
    ec2 = emulator.client("ec2")
    ecs = emulator.client("ecs")
    # Any well-formed AMI id will do; looking one up with DescribeImages costs seconds per test.
    reservations = ec2.run_instances(ImageId=AMI, MinCount=3, MaxCount=3, InstanceType="m5.large")
    instance_ids = [i["InstanceId"] for i in reservations["Instances"]]
    ecs.create_cluster(clusterName="web")
    arns = {}
    for instance_id in instance_ids:
        doc = json.dumps({"instanceId": instance_id, "region": "us-east-1"})
        ci = ecs.register_container_instance(cluster="web", instanceIdentityDocument=doc)
        arns[instance_id] = ci["containerInstance"]["containerInstanceArn"]
    return {"name": "web", "instance_ids": instance_ids, "arns": arns}
