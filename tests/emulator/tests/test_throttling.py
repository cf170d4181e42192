"""Request throttling by token bucket, per action family, seen through boto3 as an SDK sees AWS."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from shipshape_emulator.client import ControlError, Emulator
from shipshape_emulator.throttling import family_of


def client(emulator: Emulator, service: str) -> Any:
    return emulator.client(service, Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def test_off_by_default(emulator: Emulator) -> None:
    ecs = client(emulator, "ecs")
    for _ in range(60):
        ecs.list_clusters()
    assert emulator.throttling_status()["enabled"] is False


def test_the_ecs_families_share_a_bucket_and_refill_at_their_rate(emulator: Emulator) -> None:
    ecs = client(emulator, "ecs")
    ecs.create_cluster(clusterName="web")
    emulator.throttling(buckets={"ecs:cluster-resource-read": [3, 2]})
    # ListTasks and ListContainerInstances draw on one bucket ("Cluster resource read actions").
    ecs.list_tasks(cluster="web")
    ecs.list_container_instances(cluster="web")
    ecs.list_tasks(cluster="web")
    with pytest.raises(ClientError) as err:
        ecs.list_container_instances(cluster="web")
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Another family is not affected.
    ecs.list_clusters()
    time.sleep(0.6)  # 2 tokens a second: one is back
    ecs.list_tasks(cluster="web")
    status = emulator.throttling_status()
    family = status["families"]["ecs:cluster-resource-read"]
    assert (family["calls"], family["throttled"]) == (4, 1)
    assert family["peak_per_minute"] == 4
    assert status["operations"]["ecs:ListContainerInstances"] == {"admitted": 1, "throttled": 1}


def test_the_harness_is_not_counted_throttled_or_faulted(emulator: Emulator) -> None:
    ecs, harness = client(emulator, "ecs"), emulator.client("ecs", harness=True)
    ecs.create_cluster(clusterName="web")
    emulator.throttling(buckets={"ecs:cluster-resource-read": [2, 0.001]})
    emulator.fault("ListTasks", count=1, error="ThrottlingException")
    emulator.reset_calls()
    for _ in range(5):
        harness.list_tasks(cluster="web")  # what AWS does by itself takes no token of the account's
    assert emulator.calls() == {}
    assert emulator.throttling_status()["families"] == {}
    with pytest.raises(ClientError):
        ecs.list_tasks(cluster="web")  # the queued fault is still there for the function
    ecs.list_tasks(cluster="web")
    assert emulator.calls() == {"ecs:ListTasks": 2}


def test_auto_scaling_and_ec2_answer_in_their_own_wire_formats(emulator: Emulator) -> None:
    emulator.throttling(buckets={"autoscaling:all": [1, 0.01], "ec2:DescribeInstances": [1, 0.01]})
    autoscaling, ec2 = client(emulator, "autoscaling"), client(emulator, "ec2")
    autoscaling.describe_auto_scaling_groups()
    with pytest.raises(ClientError) as err:
        autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="web")
    assert err.value.response["Error"]["Code"] == "Throttling"
    ec2.describe_instances()
    with pytest.raises(ClientError) as err:
        ec2.describe_instances()
    assert err.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # EC2 throttles each action on its own.
    ec2.describe_instance_status()


def test_other_callers_take_their_share(emulator: Emulator) -> None:
    ecs = client(emulator, "ecs")
    emulator.throttling(buckets={"ecs:cluster-read": [2, 5]}, background={"ecs:cluster-read": 5})
    ecs.list_clusters()
    ecs.list_clusters()
    time.sleep(0.5)  # refilled at 5 a second, all of it taken by the others
    with pytest.raises(ClientError):
        ecs.list_clusters()


def test_a_compressed_clock_refills_faster(emulator: Emulator) -> None:
    ecs = client(emulator, "ecs")
    emulator.throttling(speed=50, buckets={"ecs:cluster-read": [1, 1]})
    ecs.list_clusters()
    time.sleep(0.1)  # five emulated seconds
    ecs.list_clusters()
    assert emulator.throttling_status()["families"]["ecs:cluster-read"]["throttled"] == 0


def test_reset_and_delete_turn_it_off(emulator: Emulator) -> None:
    emulator.throttling(buckets={"ecs:cluster-read": [1, 0.01]})
    emulator.reset()
    ecs = client(emulator, "ecs")
    ecs.list_clusters()
    ecs.list_clusters()
    emulator.throttling(buckets={"ecs:cluster-read": [1, 0.01]})
    emulator.control("DELETE", "/throttling")
    ecs.list_clusters()
    ecs.list_clusters()


def test_bad_settings_name_the_field(emulator: Emulator) -> None:
    for body, field in [({"speed": 0}, "speed"), ({"buckets": {"ecs:x": [1]}}, "buckets.ecs:x"),
                        ({"background": {"ecs:x": -1}}, "background.ecs:x"), ({"rate": 1}, "unknown")]:
        with pytest.raises(ControlError) as err:
            emulator.control("POST", "/throttling", body)
        assert field in str(err.value), body


def test_families() -> None:
    assert family_of("ecs", "DescribeTasks") == "ecs:cluster-resource-read"
    assert family_of("ecs", "PutAttributes") == "ecs:cluster-resource-modify"
    assert family_of("ec2", "DescribeInstanceStatus") == "ec2:DescribeInstanceStatus"
    assert family_of("autoscaling", "CompleteLifecycleAction") == "autoscaling:all"
    assert family_of("sns", "Publish") is None
