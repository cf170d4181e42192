"""AWS's page sizes and batch limits for the list and describe calls the functions make, through boto3."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import AMI, Emulator


def pages(call: Callable[..., dict[str, Any]], key: str, token: str = "nextToken", **kwargs: Any) -> list[list[Any]]:
    """Every page of a paged call, following its token."""
    out = []
    while True:
        resp = call(**kwargs)
        out.append(resp[key])
        if not resp.get(token):
            return out
        kwargs[token] = resp[token]


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return err.value.response["Error"]["Code"]


@pytest.fixture
def tasks(emulator: Emulator) -> dict[str, Any]:
    """Cluster 'web' with two container instances: 3 tasks of service 'api' and 2 standalone 'batch' tasks on
    the first, 1 'api' task on the second, one of the batch tasks stopped."""
    ecs = emulator.ecs
    ids = [i["InstanceId"] for i in emulator.ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2)["Instances"]]
    ecs.create_cluster(clusterName="web")
    arns = [emulator.register("web", i) for i in ids]
    for family in ("api", "batch"):
        ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "x", "cpu": 10, "memory": 10}])
    start = lambda family, ci, **kw: ecs.start_task(cluster="web", taskDefinition=family, containerInstances=[ci], **kw)["tasks"][0]["taskArn"]
    api = [start("api", arns[0], group="service:api") for _ in range(3)] + [start("api", arns[1], group="service:api")]
    batch = [start("batch", arns[0], startedBy="nightly") for _ in range(2)]
    ecs.stop_task(cluster="web", task=batch[1])
    return {"instances": arns, "api": api, "batch": batch}


def test_list_tasks_defaults_to_desired_running(emulator: Emulator, tasks: dict) -> None:
    ecs = emulator.ecs
    running = ecs.list_tasks(cluster="web")["taskArns"]
    assert sorted(running) == sorted(tasks["api"] + tasks["batch"][:1])
    assert ecs.list_tasks(cluster="web", desiredStatus="STOPPED")["taskArns"] == [tasks["batch"][1]]
    assert ecs.list_tasks(cluster="web", desiredStatus="PENDING")["taskArns"] == []


def test_list_tasks_filters(emulator: Emulator, tasks: dict) -> None:
    ecs = emulator.ecs
    first, second = tasks["instances"]
    assert sorted(ecs.list_tasks(cluster="web", serviceName="api")["taskArns"]) == sorted(tasks["api"])
    assert ecs.list_tasks(cluster="web", serviceName="nope")["taskArns"] == []
    assert ecs.list_tasks(cluster="web", containerInstance=second)["taskArns"] == tasks["api"][3:]
    short = first.rsplit("/", 1)[-1]
    assert len(ecs.list_tasks(cluster="web", containerInstance=short)["taskArns"]) == 4
    assert ecs.list_tasks(cluster="web", family="batch")["taskArns"] == tasks["batch"][:1]
    assert ecs.list_tasks(cluster="web", startedBy="nightly")["taskArns"] == tasks["batch"][:1]
    assert len(ecs.list_tasks(cluster="web", launchType="EC2")["taskArns"]) == 5
    assert ecs.list_tasks(cluster="web", launchType="FARGATE")["taskArns"] == []
    with pytest.raises(ClientError) as err:
        ecs.list_tasks(cluster="web", startedBy="nightly", family="batch")
    assert code(err) == "InvalidParameterException" and "only filter" in str(err.value)


def test_list_tasks_pages_of_at_most_100(emulator: Emulator) -> None:
    ecs = emulator.ecs
    [instance] = [i["InstanceId"] for i in emulator.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"]]
    ecs.create_cluster(clusterName="big")
    arn = emulator.register("big", instance)
    ecs.register_task_definition(family="tiny", containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}])
    started = ecs.start_task(cluster="big", taskDefinition="tiny", containerInstances=[arn] * 101)["tasks"]
    assert len(started) == 101
    got = pages(ecs.list_tasks, "taskArns", cluster="big")
    assert [len(p) for p in got] == [100, 1]
    assert sorted(sum(got, [])) == sorted(t["taskArn"] for t in started)
    assert [len(p) for p in pages(ecs.list_tasks, "taskArns", cluster="big", maxResults=40)] == [40, 40, 21]
    with pytest.raises(ClientError) as err:
        ecs.list_tasks(cluster="big", maxResults=101)
    assert code(err) == "InvalidParameterException"


def test_a_token_is_refused_with_other_parameters(emulator: Emulator, tasks: dict) -> None:
    ecs = emulator.ecs
    first = ecs.list_tasks(cluster="web", maxResults=2)
    assert len(first["taskArns"]) == 2 and first["nextToken"]
    with pytest.raises(ClientError) as err:
        ecs.list_tasks(cluster="web", maxResults=2, serviceName="api", nextToken=first["nextToken"])
    assert code(err) == "InvalidParameterException" and "nextToken" in str(err.value)
    # The same parameters may change page size, as in AWS.
    assert len(ecs.list_tasks(cluster="web", maxResults=10, nextToken=first["nextToken"])["taskArns"]) == 3


def test_list_services_default_page_is_10(emulator: Emulator) -> None:
    ecs = emulator.ecs
    ecs.create_cluster(clusterName="svc")
    for i in range(23):
        ecs.create_service(cluster="svc", serviceName=f"s{i:02}", desiredCount=0)
    ecs.create_service(cluster="svc", serviceName="agent", desiredCount=0, schedulingStrategy="DAEMON")
    assert [len(p) for p in pages(ecs.list_services, "serviceArns", cluster="svc")] == [10, 10, 4]
    assert [len(p) for p in pages(ecs.list_services, "serviceArns", cluster="svc", maxResults=100)] == [24]
    daemons = pages(ecs.list_services, "serviceArns", cluster="svc", schedulingStrategy="DAEMON")
    assert [[a.rsplit("/", 1)[-1] for a in p] for p in daemons] == [["agent"]]
    with pytest.raises(ClientError) as err:
        ecs.list_services(cluster="svc", maxResults=101)
    assert code(err) == "InvalidParameterException"


def test_list_clusters_pages(emulator: Emulator) -> None:
    ecs = emulator.ecs
    for i in range(105):
        ecs.create_cluster(clusterName=f"c{i:03}")
    got = pages(ecs.list_clusters, "clusterArns")
    assert [len(p) for p in got] == [100, 5]
    assert len(set(sum(got, []))) == 105
    assert [len(p) for p in pages(ecs.list_clusters, "clusterArns", maxResults=50)] == [50, 50, 5]
    with pytest.raises(ClientError) as err:
        ecs.list_clusters(maxResults=0)
    assert code(err) == "InvalidParameterException"


def _capacity_providers(emulator: Emulator, count: int) -> list[str]:
    names = []
    for i in range(count):
        names.append(f"cp{i:02}")
        emulator.ecs.create_capacity_provider(name=names[-1], autoScalingGroupProvider={
            "autoScalingGroupArn": f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/g{i}"})
    return names


def test_describe_capacity_providers_10_per_page_with_and_without_names(emulator: Emulator) -> None:
    ecs = emulator.ecs
    names = _capacity_providers(emulator, 13)
    named = pages(ecs.describe_capacity_providers, "capacityProviders", capacityProviders=names)
    assert [len(p) for p in named] == [10, 3]
    assert [p["name"] for p in sum(named, [])] == names
    everything = pages(ecs.describe_capacity_providers, "capacityProviders")
    assert sorted(p["name"] for p in sum(everything, [])) == names and [len(p) for p in everything] == [10, 3]
    assert [len(p) for p in pages(ecs.describe_capacity_providers, "capacityProviders", maxResults=4)] == [4, 4, 4, 1]
    resp = ecs.describe_capacity_providers(capacityProviders=["cp01", "missing"])
    assert [p["name"] for p in resp["capacityProviders"]] == ["cp01"]
    assert [f["reason"] for f in resp["failures"]] == ["MISSING"]
    with pytest.raises(ClientError) as err:
        ecs.describe_capacity_providers(maxResults=11)
    assert code(err) == "InvalidParameterException"
    first = ecs.describe_capacity_providers(capacityProviders=names)
    with pytest.raises(ClientError) as err:
        ecs.describe_capacity_providers(capacityProviders=names[:12], nextToken=first["nextToken"])
    assert code(err) == "InvalidParameterException"


@pytest.mark.parametrize("call, most", [
    ("describe_tasks", 100), ("describe_container_instances", 100), ("update_container_instances_state", 10),
])
def test_batch_limits(emulator: Emulator, tasks: dict, call: str, most: int) -> None:
    ecs = emulator.ecs
    field = "tasks" if call == "describe_tasks" else "containerInstances"
    one = tasks["api"][0] if call == "describe_tasks" else tasks["instances"][0]
    extra = {"status": "ACTIVE"} if call == "update_container_instances_state" else {}
    getattr(ecs, call)(cluster="web", **{field: [one] * most}, **extra)
    with pytest.raises(ClientError) as err:
        getattr(ecs, call)(cluster="web", **{field: [one] * (most + 1)}, **extra)
    assert code(err) == "InvalidParameterException" and str(most) in str(err.value)


def test_describe_tasks_looks_in_its_cluster_and_reports_missing(emulator: Emulator, tasks: dict) -> None:
    ecs = emulator.ecs
    ecs.create_cluster(clusterName="other")
    resp = ecs.describe_tasks(cluster="web", tasks=[tasks["api"][0], tasks["api"][1].rsplit("/", 1)[-1], "nope"])
    assert [t["taskArn"] for t in resp["tasks"]] == tasks["api"][:2]
    assert [f["reason"] for f in resp["failures"]] == ["MISSING"] and resp["failures"][0]["arn"].endswith("/nope")
    other = ecs.describe_tasks(cluster="other", tasks=[tasks["api"][0]])
    assert other["tasks"] == [] and other["failures"][0]["arn"] == tasks["api"][0]


def _groups(emulator: Emulator, count: int, size: int = 0) -> list[str]:
    asg = emulator.autoscaling
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=AMI, InstanceType="m5.large")
    names = [f"g{i:03}" for i in range(count)]
    for name in names:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName="lc", MinSize=0,
                                      MaxSize=max(size, 1), DesiredCapacity=size, AvailabilityZones=["us-east-1a"])
    return names


def test_describe_auto_scaling_groups_pages(emulator: Emulator) -> None:
    asg = emulator.autoscaling
    names = _groups(emulator, 120)
    got = pages(asg.describe_auto_scaling_groups, "AutoScalingGroups", token="NextToken")
    assert [len(p) for p in got] == [50, 50, 20]
    assert [g["AutoScalingGroupName"] for g in sum(got, [])] == names
    assert [len(p) for p in pages(asg.describe_auto_scaling_groups, "AutoScalingGroups", token="NextToken", MaxRecords=100)] == [100, 20]
    with pytest.raises(ClientError) as err:
        asg.describe_auto_scaling_groups(MaxRecords=101)
    assert code(err) == "ValidationError"
    # Up to 50 names, or up to MaxRecords names.
    with pytest.raises(ClientError) as err:
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=names[:51])
    assert code(err) == "ValidationError"
    assert len(asg.describe_auto_scaling_groups(AutoScalingGroupNames=names[:80], MaxRecords=80)["AutoScalingGroups"]) == 80
    first = asg.describe_auto_scaling_groups(MaxRecords=10)
    with pytest.raises(ClientError) as err:
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=names[:20], NextToken=first["NextToken"])
    assert code(err) == "InvalidNextToken"
    with pytest.raises(ClientError) as err:
        asg.describe_auto_scaling_groups(NextToken="g005")
    assert code(err) == "InvalidNextToken"


def test_describe_auto_scaling_instances_pages_of_50(emulator: Emulator) -> None:
    asg = emulator.autoscaling
    _groups(emulator, 3, size=25)
    got = pages(asg.describe_auto_scaling_instances, "AutoScalingInstances", token="NextToken")
    assert [len(p) for p in got] == [50, 25]
    ids = [i["InstanceId"] for i in sum(got, [])]
    assert len(set(ids)) == 75
    assert [len(p) for p in pages(asg.describe_auto_scaling_instances, "AutoScalingInstances", token="NextToken", MaxRecords=20)] == [20, 20, 20, 15]
    assert [len(p) for p in pages(asg.describe_auto_scaling_instances, "AutoScalingInstances", token="NextToken", InstanceIds=ids[:50], MaxRecords=30)] == [30, 20]
    for bad in ({"MaxRecords": 51}, {"InstanceIds": ids[:51]}):
        with pytest.raises(ClientError) as err:
            asg.describe_auto_scaling_instances(**bad)
        assert code(err) == "ValidationError"
    first = asg.describe_auto_scaling_instances(MaxRecords=5)
    with pytest.raises(ClientError) as err:
        asg.describe_auto_scaling_instances(InstanceIds=ids[:10], NextToken=first["NextToken"])
    assert code(err) == "InvalidNextToken"
    # An unknown id is ignored with no error.
    assert asg.describe_auto_scaling_instances(InstanceIds=["i-00000000000000000"])["AutoScalingInstances"] == []
    assert json.dumps(first["AutoScalingInstances"][0]["LifecycleState"]) == '"InService"'


def test_an_unknown_container_instance_of_an_empty_cluster_is_a_missing_failure(emulator) -> None:
    ecs = emulator.client("ecs")
    ecs.create_cluster(clusterName="empty")
    arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/empty/0123456789abcdef"
    out = ecs.describe_container_instances(cluster="empty", containerInstances=[arn])
    assert out["containerInstances"] == []
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]
