"""Python peer of spot-drainer, for the benchmark only: the algorithm of AWS's public sample Spot drainer.

On an "EC2 Spot Instance Interruption Warning", list every cluster, look for the instance in each with a
``ec2InstanceId ==`` filter, and set the container instance DRAINING. Clients are created at import, as
the sample does, so their cost is part of the init time.
"""

from __future__ import annotations

from typing import Any

import boto3

ecs = boto3.client("ecs")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("detail-type") != "EC2 Spot Instance Interruption Warning":
        return {"action": "ignored"}
    instance_id = event["detail"]["instance-id"]
    clusters: list[str] = []
    for page in ecs.get_paginator("list_clusters").paginate():
        clusters += page["clusterArns"]
    for cluster in clusters:
        found = ecs.list_container_instances(cluster=cluster, filter=f"ec2InstanceId == {instance_id}")
        arns = found["containerInstanceArns"]
        if arns:
            ecs.update_container_instances_state(cluster=cluster, containerInstances=arns, status="DRAINING")
            return {"action": "drained", "instance_id": instance_id, "cluster": cluster}
    return {"action": "not-an-ecs-instance", "instance_id": instance_id}
