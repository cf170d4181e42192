"""Where a drain's replacements go, as ECS places tasks: ports by protocol, GPUs, network interfaces,
memberOf and distinctInstance, zones; and what RegisterContainerInstance and CreateService keep."""

from __future__ import annotations

from typing import Any

from shipshape_emulator.client import AMI, Emulator


def instances(emulator: Emulator, cluster: str, count: int, type_: str = "m5.large", **register: Any) -> list[str]:
    """`count` EC2 instances registered with `cluster`; their container instance ARNs, in start order."""
    found = emulator.ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, InstanceType=type_)["Instances"]
    arns = []
    for i in found:
        doc = '{"instanceId": "%s"}' % i["InstanceId"]
        arns.append(emulator.ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=doc, **register)
                    ["containerInstance"]["containerInstanceArn"])
    return arns


def setup(emulator: Emulator, family: str, count: int = 3, **definition: Any) -> list[str]:
    emulator.ecs.create_cluster(clusterName="p")
    container = {"name": "a", "image": "x", "cpu": 128, "memory": 128, **definition.pop("container", {})}
    emulator.ecs.register_task_definition(family=family, containerDefinitions=[container], **definition)
    emulator.draining(stop_after_ms=0, step_ms=0)
    return instances(emulator, "p", count)


def start(emulator: Emulator, family: str, arn: str, group: str | None = "service:api", **kwargs: Any) -> str:
    extra = {"group": group} if group else {}
    return emulator.ecs.start_task(cluster="p", taskDefinition=family, containerInstances=[arn], **extra, **kwargs)["tasks"][0]["taskArn"]


def drain(emulator: Emulator, arn: str) -> None:
    emulator.ecs.update_container_instances_state(cluster="p", containerInstances=[arn], status="DRAINING")


def where(emulator: Emulator, service: str = "api") -> dict[str, str]:
    """The container instance of each task of the service with desired status RUNNING."""
    arns = emulator.ecs.list_tasks(cluster="p", serviceName=service)["taskArns"]
    tasks = emulator.ecs.describe_tasks(cluster="p", tasks=arns)["tasks"] if arns else []
    return {t["taskArn"]: t["containerInstanceArn"] for t in tasks}


def events(emulator: Emulator, service: str = "api") -> list[str]:
    return [e["message"] for e in emulator.ecs.describe_services(cluster="p", services=[service])["services"][0]["events"]]


def remaining(emulator: Emulator, arn: str, name: str) -> Any:
    ci = emulator.ecs.describe_container_instances(cluster="p", containerInstances=[arn])["containerInstances"][0]
    r = next(r for r in ci["remainingResources"] if r["name"] == name)
    return r.get("stringSetValue", r.get("integerValue"))


def test_static_host_ports_by_protocol(emulator: Emulator) -> None:
    arns = setup(emulator, "web", container={"portMappings": [{"containerPort": 8080, "hostPort": 80}]})
    emulator.ecs.register_task_definition(family="dns", containerDefinitions=[
        {"name": "a", "image": "x", "cpu": 1, "memory": 1, "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "udp"}]}])
    emulator.ecs.register_task_definition(family="dynamic", containerDefinitions=[
        {"name": "a", "image": "x", "cpu": 1, "memory": 1, "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="web", desiredCount=2)
    old = start(emulator, "web", arns[0])
    start(emulator, "web", arns[1])
    blocker = start(emulator, "web", arns[2], group=None)
    start(emulator, "dns", arns[2], group=None)
    start(emulator, "dynamic", arns[2], group=None)
    start(emulator, "dynamic", arns[2], group=None)  # dynamic ports never conflict
    assert "80" in remaining(emulator, arns[2], "PORTS") and remaining(emulator, arns[2], "PORTS_UDP") == ["80"]
    drain(emulator, arns[0])
    assert where(emulator)[old] == arns[0]
    assert events(emulator)[0].startswith("(service api) was unable to place a task")
    emulator.ecs.stop_task(cluster="p", task=blocker)  # port 80/tcp free on the third instance; 80/udp stays
    placed = where(emulator)
    assert old not in placed and sorted(placed.values()) == sorted([arns[1], arns[2]])
    assert events(emulator)[0].startswith("(service api) has started 1 tasks: (task ")


def test_distinct_instance_and_member_of(emulator: Emulator) -> None:
    arns = setup(emulator, "web", count=2)
    arns += instances(emulator, "p", 1, attributes=[{"name": "ecs.instance-type", "value": "c5.large"}, {"name": "tier", "value": "gold"}])
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="web", desiredCount=2,
                                placementConstraints=[{"type": "distinctInstance"}])
    described = emulator.ecs.describe_services(cluster="p", services=["api"])["services"][0]
    assert described["placementConstraints"] == [{"type": "distinctInstance"}]
    old = start(emulator, "web", arns[0])
    start(emulator, "web", arns[1])
    drain(emulator, arns[0])
    assert old not in where(emulator) and sorted(where(emulator).values()) == sorted([arns[1], arns[2]])

    # memberOf in the task definition: the gold tier only; then an instance type the cluster lacks.
    for family, expression in (("gold", "attribute:tier == gold"), ("g4", "attribute:ecs.instance-type =~ g4dn.*")):
        emulator.ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}],
                                              placementConstraints=[{"type": "memberOf", "expression": expression}])
        emulator.ecs.create_service(cluster="p", serviceName=family, taskDefinition=family, desiredCount=1)
    gold, stuck = start(emulator, "gold", arns[1], group="service:gold"), start(emulator, "g4", arns[1], group="service:g4")
    drain(emulator, arns[1])
    assert gold not in where(emulator, "gold") and list(where(emulator, "gold").values()) == [arns[2]]
    assert where(emulator, "g4") == {stuck: arns[1]}
    assert events(emulator, "g4")[0].startswith("(service g4) was unable to place a task")


def test_gpu_tasks_go_to_instances_with_free_gpus(emulator: Emulator) -> None:
    arns = setup(emulator, "train", count=2, container={"resourceRequirements": [{"type": "GPU", "value": "1"}]})
    gpus = [{"name": "GPU", "type": "STRINGSET", "stringSetValue": ["GPU-a", "GPU-b"]}]
    arns += instances(emulator, "p", 1, totalResources=gpus)
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="train", desiredCount=1)
    assert remaining(emulator, arns[2], "GPU") == ["GPU-a", "GPU-b"]
    first = start(emulator, "train", arns[2])
    assert remaining(emulator, arns[2], "GPU") == ["GPU-b"]
    other = instances(emulator, "p", 1, totalResources=[{"name": "GPU", "type": "STRINGSET", "stringSetValue": ["GPU-c"]}])[0]
    drain(emulator, arns[2])
    assert list(where(emulator).values()) == [other], "not to the instances without GPUs"
    assert first not in where(emulator)
    assert remaining(emulator, other, "GPU") == [] and remaining(emulator, arns[2], "GPU") == ["GPU-b", "GPU-a"]


def test_awsvpc_tasks_need_a_network_interface(emulator: Emulator) -> None:
    subnet = emulator.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = emulator.ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    arns = setup(emulator, "vpc", count=2, networkMode="awsvpc")
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="vpc", desiredCount=3)
    moving = start(emulator, "vpc", arns[0], networkConfiguration=network)
    for _ in range(2):  # an m5.large runs two awsvpc tasks without trunking
        start(emulator, "vpc", arns[1], networkConfiguration=network)
    drain(emulator, arns[0])
    assert where(emulator)[moving] == arns[0]
    trunked = instances(emulator, "p", 1, attributes=[{"name": "ecs.awsvpc-trunk-id", "value": "eni-trunk"}])[0]
    assert moving not in where(emulator) and trunked in where(emulator).values()


def test_a_spread_service_prefers_the_zone_with_fewest_of_its_tasks(emulator: Emulator) -> None:
    arns = setup(emulator, "web", count=1)
    arns += instances(emulator, "p", 1, attributes=[{"name": "ecs.availability-zone", "value": "us-east-1b"}])
    arns += instances(emulator, "p", 1, attributes=[{"name": "ecs.availability-zone", "value": "us-east-1c"}])
    emulator.ecs.register_task_definition(family="filler", containerDefinitions=[{"name": "a", "image": "x", "cpu": 0, "memory": 2000}])
    start(emulator, "filler", arns[1], group=None)  # less memory left in b, but b has none of the service
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="web", desiredCount=2)
    old = start(emulator, "web", arns[0])
    start(emulator, "web", arns[2])
    drain(emulator, arns[0])
    assert old not in where(emulator) and sorted(where(emulator).values()) == sorted(arns[1:])


def providers(emulator: Emulator, cluster: str, **groups: int) -> dict[str, list[str]]:
    """A capacity provider (without managed scaling) per group `name=count`, `cp-<name>`, on `cluster`;
    the container instance ARNs of each group's instances."""
    emulator.ecs.create_cluster(clusterName=cluster)
    arns: dict[str, list[str]] = {}
    for name, count in groups.items():
        ids = emulator.group(name, count)
        asg = emulator.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        emulator.ecs.create_capacity_provider(name=f"cp-{name}", autoScalingGroupProvider={"autoScalingGroupArn": asg["AutoScalingGroupARN"]})
        arns[name] = ids
    emulator.ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[f"cp-{n}" for n in groups],
                                                defaultCapacityProviderStrategy=[{"capacityProvider": "cp-a", "weight": 1}])
    return {name: [emulator.register(cluster, i) for i in ids] for name, ids in arns.items()}


def test_instances_name_their_capacity_provider_and_services_keep_their_strategy(emulator: Emulator) -> None:
    arns = providers(emulator, "p", a=1, b=1)
    plain = instances(emulator, "p", 1)[0]  # launched outside any group
    described = emulator.ecs.describe_container_instances(cluster="p", containerInstances=[arns["a"][0], arns["b"][0], plain])
    assert [ci.get("capacityProviderName") for ci in described["containerInstances"]] == ["cp-a", "cp-b", None]
    emulator.ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}])
    emulator.ecs.create_service(cluster="p", serviceName="on-b", taskDefinition="web", desiredCount=1,
                                capacityProviderStrategy=[{"capacityProvider": "cp-b", "weight": 1}])
    emulator.ecs.create_service(cluster="p", serviceName="default", taskDefinition="web", desiredCount=1)
    emulator.ecs.create_service(cluster="p", serviceName="ec2", taskDefinition="web", desiredCount=1, launchType="EC2")
    services = {s["serviceName"]: s for s in emulator.ecs.describe_services(cluster="p", services=["on-b", "default", "ec2"])["services"]}
    assert services["on-b"]["capacityProviderStrategy"] == [{"capacityProvider": "cp-b", "weight": 1}]
    assert "launchType" not in services["on-b"]
    assert services["default"]["capacityProviderStrategy"] == [{"capacityProvider": "cp-a", "weight": 1}], "the cluster's default"
    assert services["ec2"]["launchType"] == "EC2" and not services["ec2"].get("capacityProviderStrategy")


def test_a_replacement_goes_only_to_its_strategys_provider(emulator: Emulator) -> None:
    arns = providers(emulator, "p", a=2, b=1)
    emulator.ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "cpu": 128, "memory": 128}])
    emulator.ecs.register_task_definition(family="big", containerDefinitions=[{"name": "a", "image": "x", "cpu": 0, "memory": 7400}])
    emulator.draining(stop_after_ms=0, step_ms=0)
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="web", desiredCount=1,
                                capacityProviderStrategy=[{"capacityProvider": "cp-a", "weight": 1}])
    old = start(emulator, "web", arns["a"][0])
    blocker = start(emulator, "big", arns["a"][1], group=None)  # the other instance of cp-a is full; cp-b is empty
    drain(emulator, arns["a"][0])
    assert where(emulator) == {old: arns["a"][0]}, "never to the instance of cp-b"
    assert events(emulator)[0].startswith("(service api) was unable to place a task")
    emulator.ecs.stop_task(cluster="p", task=blocker)
    assert list(where(emulator).values()) == [arns["a"][1]]


def test_a_weighted_strategy_does_not_fall_back_to_its_other_provider(emulator: Emulator) -> None:
    arns = providers(emulator, "p", a=2, b=1)
    emulator.ecs.register_task_definition(family="web", containerDefinitions=[{"name": "a", "image": "x", "cpu": 128, "memory": 128}])
    emulator.ecs.register_task_definition(family="big", containerDefinitions=[{"name": "a", "image": "x", "cpu": 0, "memory": 7400}])
    emulator.draining(stop_after_ms=0, step_ms=0)
    emulator.ecs.create_service(cluster="p", serviceName="api", taskDefinition="web", desiredCount=2,
                                capacityProviderStrategy=[{"capacityProvider": "cp-a", "weight": 1},
                                                          {"capacityProvider": "cp-b", "weight": 1}])
    old = start(emulator, "web", arns["a"][0])
    start(emulator, "web", arns["b"][0])
    start(emulator, "big", arns["a"][1], group=None)
    # One task on each provider: the replacement of the one on cp-a goes to cp-a, which is full, even
    # though cp-b has room.
    drain(emulator, arns["a"][0])
    assert where(emulator)[old] == arns["a"][0]
    assert events(emulator)[0].startswith("(service api) was unable to place a task")
