"""Python peer of scale-in-cleaner, for the benchmark only: the algorithm of omerxx/ecscale, the public
scale-in Lambda most of its successors credit (AWS publishes no sample for this job), brought to Python 3
and given pagination so that it sees all of a large cluster.

Per cluster: list the ACTIVE and DRAINING container instances and describe them; terminate (through the
Auto Scaling group, decrementing its desired capacity) every DRAINING instance with no running or pending
task; stop if the group is at its minimum size; go on only if the memory reservation, now and with one
instance fewer, stays under ``FUTURE_MEM_TH``; drain every empty ACTIVE instance; and, if the memory
reservation is under ``SCALE_IN_MEM_TH`` and the CPU under ``SCALE_IN_CPU_TH``, drain the least used
instance too (most free memory, then fewest tasks). Termination of what was drained waits for a later
run. ecscale reads the cluster's MemoryReservation and the group's CPUUtilization from CloudWatch; the
emulator has no ECS metrics, so the peer computes both reservations from the described instances, which
is what those figures measure.
"""

from __future__ import annotations

from typing import Any

import boto3

SCALE_IN_CPU_TH = 30
SCALE_IN_MEM_TH = 60
FUTURE_MEM_TH = 70

ecs = boto3.client("ecs")
asg = boto3.client("autoscaling")


def resource(instance: dict[str, Any], which: str, name: str) -> int:
    return next((r["integerValue"] for r in instance[which] if r["name"] == name), 0)


def reservation(instances: list[dict[str, Any]], name: str) -> float:
    registered = sum(resource(i, "registeredResources", name) for i in instances)
    remaining = sum(resource(i, "remainingResources", name) for i in instances)
    return 100 * (registered - remaining) / registered if registered else 0.0


def container_instances(cluster: str, status: str) -> list[dict[str, Any]]:
    arns: list[str] = []
    for page in ecs.get_paginator("list_container_instances").paginate(cluster=cluster, status=status):
        arns += page["containerInstanceArns"]
    described: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        described += ecs.describe_container_instances(cluster=cluster, containerInstances=arns[start:start + 100])["containerInstances"]
    return described


def groups_of(instance_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(instance_ids), 50):
        for i in asg.describe_auto_scaling_instances(InstanceIds=instance_ids[start:start + 50])["AutoScalingInstances"]:
            found[i["InstanceId"]] = i["AutoScalingGroupName"]
    return found


def drain(cluster: str, arns: list[str]) -> None:
    for start in range(0, len(arns), 10):
        ecs.update_container_instances_state(cluster=cluster, containerInstances=arns[start:start + 10], status="DRAINING")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    totals = {"terminated": 0, "drained": 0}
    clusters: list[str] = []
    for page in ecs.get_paginator("list_clusters").paginate():
        clusters += page["clusterArns"]
    for cluster in clusters:
        active, draining = container_instances(cluster, "ACTIVE"), container_instances(cluster, "DRAINING")
        for instance in draining:
            if instance["runningTasksCount"] + instance["pendingTasksCount"] == 0:
                asg.terminate_instance_in_auto_scaling_group(InstanceId=instance["ec2InstanceId"], ShouldDecrementDesiredCapacity=True)
                totals["terminated"] += 1
        if len(active) < 2:
            continue
        groups = groups_of([i["ec2InstanceId"] for i in active])
        names = sorted(set(groups.values()))
        described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"] if names else []
        if any(len([g for g in groups.values() if g == group["AutoScalingGroupName"]]) <= group["MinSize"] for group in described):
            continue
        memory = reservation(active, "MEMORY")
        future_memory = memory * len(active) / (len(active) - 1)
        if memory >= FUTURE_MEM_TH or future_memory >= FUTURE_MEM_TH:
            continue
        empty = [i for i in active if i["runningTasksCount"] + i["pendingTasksCount"] == 0]
        drain(cluster, [i["containerInstanceArn"] for i in empty])
        totals["drained"] += len(empty)
        busy = [i for i in active if i not in empty]
        if busy and memory < SCALE_IN_MEM_TH and reservation(active, "CPU") < SCALE_IN_CPU_TH:
            least = max(busy, key=lambda i: (resource(i, "remainingResources", "MEMORY"), -i["runningTasksCount"]))
            drain(cluster, [least["containerInstanceArn"]])
            totals["drained"] += 1
    return {"totals": totals}
