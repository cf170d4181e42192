"""ListContainerInstances as AWS documents it, through the real wire protocol (boto3)."""

from __future__ import annotations

import time

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipshape_emulator.client import ControlError


def test_filter_by_ec2_instance_id_returns_only_that_instance(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    target = cluster["instance_ids"][1]
    resp = ecs.list_container_instances(cluster="web", filter=f"ec2InstanceId == {target}")
    assert resp["containerInstanceArns"] == [cluster["arns"][target]]


def test_filter_matching_nothing_returns_an_empty_list(emulator: Any, cluster: dict) -> None:
    resp = emulator.client("ecs").list_container_instances(cluster="web", filter="ec2InstanceId == i-0000")
    assert resp["containerInstanceArns"] == []


def test_filter_by_running_tasks_count(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    busy = cluster["instance_ids"][0]
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 256}]
    )
    ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[cluster["arns"][busy]])
    idle = ecs.list_container_instances(cluster="web", filter="runningTasksCount == 0")
    assert sorted(idle["containerInstanceArns"]) == sorted(
        arn for i, arn in cluster["arns"].items() if i != busy
    )
    both = ecs.list_container_instances(
        cluster="web", filter=f"runningTasksCount == 1 and ec2InstanceId == {busy}"
    )
    assert both["containerInstanceArns"] == [cluster["arns"][busy]]


def test_filter_in_list_and_attribute_exists(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    first, second, _ = cluster["instance_ids"]
    resp = ecs.list_container_instances(cluster="web", filter=f"ec2InstanceId in [{first}, {second}]")
    assert sorted(resp["containerInstanceArns"]) == sorted([cluster["arns"][first], cluster["arns"][second]])
    resp = ecs.list_container_instances(cluster="web", filter="attribute:ecs.instance-type exists")
    assert len(resp["containerInstanceArns"]) == 3
    resp = ecs.list_container_instances(cluster="web", filter="attribute:ecs.instance-type == m5.large")
    assert len(resp["containerInstanceArns"]) == 3


def test_compound_expressions_patterns_and_task_groups(emulator: Any, cluster: dict) -> None:
    """The documented examples (cluster-query-language.html), through ListContainerInstances."""
    ecs = emulator.client("ecs")
    first, second, third = cluster["instance_ids"]
    arns = cluster["arns"]
    ecs.put_attributes(cluster="web", attributes=[
        {"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": arns[first]},
        {"name": "flag", "targetType": "container-instance", "targetId": arns[second]},
    ])
    ecs.register_task_definition(family="db", containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}])
    ecs.start_task(cluster="web", taskDefinition="db", containerInstances=[arns[third]], group="service:production")

    def listed(expression: str) -> set[str]:
        return set(ecs.list_container_instances(cluster="web", filter=expression)["containerInstanceArns"])

    everyone = set(arns.values())
    assert listed(f"ec2InstanceId == {first} or ec2InstanceId == {second}") == {arns[first], arns[second]}
    assert listed(f"ec2InstanceId in ['{first}', '{third}']") == {arns[first], arns[third]}
    assert listed("attribute:stack == prod || attribute:flag exists") == {arns[first], arns[second]}
    assert listed("attribute:flag == x") == set()  # set without a value: exists, equals nothing
    assert listed("attribute:stack != prod") == everyone - {arns[first]}
    assert listed("attribute:ecs.instance-type =~ m5.* and not(attribute:stack exists)") == everyone - {arns[first]}
    assert listed("attribute:ecs.instance-type !~ t2.*") == everyone
    assert listed("(attribute:stack == prod or attribute:flag exists) and runningTasksCount == 0") == {arns[first], arns[second]}
    assert listed("task:group == service:production") == {arns[third]}
    assert listed("not(task:group == service:production)") == everyone - {arns[third]}
    assert listed("runningTasksCount > 0") == {arns[third]}


def test_status_filters_and_default_excludes_nothing_active_or_draining(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    drained = cluster["arns"][cluster["instance_ids"][2]]
    ecs.update_container_instances_state(cluster="web", containerInstances=[drained], status="DRAINING")
    assert ecs.list_container_instances(cluster="web", status="DRAINING")["containerInstanceArns"] == [drained]
    assert len(ecs.list_container_instances(cluster="web", status="ACTIVE")["containerInstanceArns"]) == 2
    assert len(ecs.list_container_instances(cluster="web")["containerInstanceArns"]) == 3


def test_pagination_follows_next_token_and_never_exceeds_max_results(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    seen: list[str] = []
    kwargs: dict[str, Any] = {"cluster": "web", "maxResults": 2}
    pages = 0
    while True:
        resp = ecs.list_container_instances(**kwargs)
        assert len(resp["containerInstanceArns"]) <= 2
        seen += resp["containerInstanceArns"]
        pages += 1
        if "nextToken" not in resp:
            break
        kwargs["nextToken"] = resp["nextToken"]
    assert pages == 2
    assert sorted(seen) == sorted(cluster["arns"].values())


def test_default_page_is_one_hundred(emulator: Any) -> None:
    ec2, ecs = emulator.client("ec2"), emulator.client("ecs")
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image_id, MinCount=101, MaxCount=101)["Instances"]]
    ecs.create_cluster(clusterName="big")
    for instance_id in ids:
        ecs.register_container_instance(cluster="big", instanceIdentityDocument=f'{{"instanceId": "{instance_id}"}}')
    first = ecs.list_container_instances(cluster="big")
    assert len(first["containerInstanceArns"]) == 100
    second = ecs.list_container_instances(cluster="big", nextToken=first["nextToken"])
    assert len(second["containerInstanceArns"]) == 1
    assert "nextToken" not in second


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"maxResults": 101}, "maxResults"),
        ({"status": "SLEEPING"}, "status"),
        ({"nextToken": "garbage"}, "nextToken"),
        ({"filter": "registeredAt > 2020"}, "documented date formats"),
        ({"filter": "attribute:ecs.instance-type < m5"}, "not emulated"),
        ({"filter": "ec2InstanceId == a or"}, "not emulated"),
        ({"filter": "(ec2InstanceId == a"}, "not emulated"),
    ],
)
def test_bad_parameters_are_rejected_by_name(emulator: Any, cluster: dict, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ClientError) as err:
        emulator.client("ecs").list_container_instances(cluster="web", **kwargs)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert fragment in err.value.response["Error"]["Message"]


def test_unknown_cluster_is_cluster_not_found(emulator: Any) -> None:
    with pytest.raises(ClientError) as err:
        emulator.client("ecs").list_container_instances(cluster="nope")
    assert err.value.response["Error"]["Code"] == "ClusterNotFoundException"


def test_attributes_by_arn_or_short_id_and_delete_without_value(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    arn = list(cluster["arns"].values())[0]
    short = arn.rsplit("/", 1)[-1]
    ecs.put_attributes(cluster="web", attributes=[
        {"name": "shipshape.mark", "value": "2026-11-22T10:00:00Z", "targetType": "container-instance", "targetId": arn},
    ])
    described = ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]
    assert {"name": "shipshape.mark", "value": "2026-11-22T10:00:00Z"} in described["attributes"]
    listed = ecs.list_container_instances(cluster="web", filter="attribute:shipshape.mark exists")
    assert listed["containerInstanceArns"] == [arn]

    ecs.delete_attributes(cluster="web", attributes=[
        {"name": "shipshape.mark", "targetType": "container-instance", "targetId": short},
    ])
    described = ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]
    assert all(a["name"] != "shipshape.mark" for a in described["attributes"])


@pytest.mark.parametrize("attr, code", [
    ({"name": "bad:name", "value": "x", "targetId": "ARN"}, "InvalidParameterException"),
    ({"name": "ok", "value": "x", "targetType": "container-instance", "targetId": "nope"}, "TargetNotFoundException"),
    ({"name": "ok", "value": "x", "targetId": "short-without-type"}, "InvalidParameterException"),
])
def test_attribute_errors(emulator: Any, cluster: dict, attr: dict, code: str) -> None:
    ecs = emulator.client("ecs")
    if attr["targetId"] == "ARN":
        attr = {**attr, "targetId": list(cluster["arns"].values())[0]}
    with pytest.raises(ClientError) as err:
        ecs.put_attributes(cluster="web", attributes=[attr])
    assert err.value.response["Error"]["Code"] == code


def test_agent_connection_is_set_by_the_control_endpoint(emulator: Any, cluster: dict) -> None:
    arn = list(cluster["arns"].values())[1]
    emulator.agent(arn, connected=False)
    ecs = emulator.client("ecs")
    described = ecs.describe_container_instances(cluster="web", containerInstances=[arn])["containerInstances"][0]
    assert described["agentConnected"] is False
    with pytest.raises(ControlError) as err:
        emulator.agent("nope", connected=False)
    assert err.value.status == 400 and "nope" in json.dumps(err.value.body)


def test_a_task_just_started_is_listed_before_describe_tasks_sees_it(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    assert emulator.control("POST", "/ecs/consistency", {"describe_tasks_lag_seconds": 2}) == {
        "describe_tasks_lag_seconds": 2.0, "list_tasks_lag_seconds": 0.0
    }
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 256}]
    )
    busy = cluster["arns"][cluster["instance_ids"][0]]
    arn = ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[busy])["tasks"][0]["taskArn"]
    assert ecs.list_tasks(cluster="web", containerInstance=busy)["taskArns"] == [arn]
    early = ecs.describe_tasks(cluster="web", tasks=[arn])
    assert (early["tasks"], early["failures"]) == ([], [{"arn": arn, "reason": "MISSING"}])
    emulator.control("POST", "/ecs/consistency", {"describe_tasks_lag_seconds": 0})
    assert [t["taskArn"] for t in ecs.describe_tasks(cluster="web", tasks=[arn])["tasks"]] == [arn]
    with pytest.raises(ControlError):
        emulator.control("POST", "/ecs/consistency", {"lag": 1})


def test_a_task_just_started_is_not_listed_yet(emulator: Any, cluster: dict) -> None:
    ecs = emulator.client("ecs")
    emulator.control("POST", "/ecs/consistency", {"list_tasks_lag_seconds": 0.5})
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 256}]
    )
    busy = cluster["arns"][cluster["instance_ids"][0]]
    arn = ecs.start_task(cluster="web", taskDefinition="app", containerInstances=[busy])["tasks"][0]["taskArn"]
    assert ecs.list_tasks(cluster="web", containerInstance=busy)["taskArns"] == []
    # DescribeTasks knows it already (its own lag is off), and so does the instance's count.
    assert [t["taskArn"] for t in ecs.describe_tasks(cluster="web", tasks=[arn])["tasks"]] == [arn]
    time.sleep(0.6)
    assert ecs.list_tasks(cluster="web", containerInstance=busy)["taskArns"] == [arn]
    with pytest.raises(ControlError):
        emulator.control("POST", "/ecs/consistency", {"list_tasks_lag_seconds": 301})


def test_quoted_patterns_agent_versions_and_registration_times(emulator: Any, cluster: dict) -> None:
    """A quoted argument is what the quotes hold, patterns too; agentVersion and registeredAt compare by
    value (cluster-query-language.html)."""
    ecs = emulator.client("ecs")
    everyone = set(cluster["arns"].values())

    def listed(expression: str) -> set[str]:
        return set(ecs.list_container_instances(cluster="web", filter=expression)["containerInstanceArns"])

    assert listed("attribute:ecs.instance-type =~ 'm5.*'") == everyone
    assert listed("attribute:ecs.instance-type !~ 'm5.*'") == set()
    assert listed('attribute:ecs.instance-type =~ "m5\\.large"') == everyone
    assert listed("agentVersion >= 1.0.0 and agentVersion < 1.10.0") == everyone  # moto's agents are 1.0.0
    assert listed("agentVersion > 1.0") == set()
    assert listed("agentVersion == 1.0") == everyone
    assert listed("registeredAt > 2018-06-18") == everyone
    assert listed("registeredAt < 2018-06-18T22:28:28Z") == set()


def test_a_cluster_seeded_in_one_request_is_what_the_calls_would_make(emulator: Any) -> None:
    ecs = emulator.client("ecs")
    ids = emulator.group("g", 3)
    asg = emulator.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]
    ecs.create_cluster(clusterName="fleet")
    ecs.create_capacity_provider(name="cp-g", autoScalingGroupProvider={"autoScalingGroupArn": asg["AutoScalingGroupARN"]})
    ecs.put_cluster_capacity_providers(cluster="fleet", capacityProviders=["cp-g"], defaultCapacityProviderStrategy=[])
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "cpu": 256, "memory": 512}])
    out = emulator.control("POST", "/bulk/ecs", {
        "cluster": "fleet",
        "instances": [{"instance_id": i, "attributes": {"tier": "gold"}} for i in ids],
        "tasks": [{"family": "web", "instance": 0, "group": "service:api", "protected": True},
                  {"family": "web", "instance": 0, "group": "service:api"}, {"family": "web", "instance": 2}],
    })
    arns, tasks = out["container_instance_arns"], out["task_arns"]
    described = ecs.describe_container_instances(cluster="fleet", containerInstances=arns)["containerInstances"]
    by_arn = {ci["containerInstanceArn"]: ci for ci in described}
    first = by_arn[arns[0]]
    assert first["runningTasksCount"] == 2 and first["capacityProviderName"] == "cp-g"
    assert {"name": "tier", "value": "gold"} in first["attributes"]
    memory = next(r["integerValue"] for r in first["remainingResources"] if r["name"] == "MEMORY")
    assert memory == 7482 - 2 * 512
    assert sorted(ecs.list_tasks(cluster="fleet", containerInstance=arns[0])["taskArns"]) == sorted(tasks[:2])
    protection = ecs.get_task_protection(cluster="fleet", tasks=tasks[:2])["protectedTasks"]
    assert [p["protectionEnabled"] for p in protection] == [True, False]
    with pytest.raises(ControlError):
        emulator.control("POST", "/bulk/ecs", {"cluster": "fleet", "tasks": [{"family": "web", "instance": 9}]})
