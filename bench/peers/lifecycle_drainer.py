"""Python peer of lifecycle-drainer, for the benchmark only: the algorithm of AWS's public sample for
draining ECS container instances from an Auto Scaling termination lifecycle hook.

On the hook's SNS message: find the instance's container instance (every cluster, ``ec2InstanceId ==``
filter), set it DRAINING, and if tasks still run, sleep and publish the same message to the topic again
(the next invocation checks again); when none run, complete the lifecycle action with CONTINUE.
``SLEEP_SECONDS`` is the sample's fixed pause (5 s there).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3

ecs = boto3.client("ecs")
asg = boto3.client("autoscaling")
sns = boto3.client("sns")
SLEEP_SECONDS = float(os.environ.get("SLEEP_SECONDS", "5"))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    record = event["Records"][0]["Sns"]
    message = json.loads(record["Message"])
    if message.get("LifecycleTransition") != "autoscaling:EC2_INSTANCE_TERMINATING":
        return {"action": "ignored"}
    instance_id = message["EC2InstanceId"]
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_container_instances(cluster=cluster, filter=f"ec2InstanceId == {instance_id}")["containerInstanceArns"]
        if not arns:
            continue
        described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
        if not described:
            # Deregistered since it was listed (a repeated message's chain completed it and the instance
            # went): the sample indexes [0] and fails the invocation, which Lambda retries to the same end.
            continue
        instance = described[0]
        if instance["status"] != "DRAINING":
            ecs.update_container_instances_state(cluster=cluster, containerInstances=arns, status="DRAINING")
        if instance["runningTasksCount"] > 0:
            time.sleep(SLEEP_SECONDS)
            sns.publish(TopicArn=record["TopicArn"], Message=record["Message"], Subject="Publishing SNS message to invoke lambda again..")
            return {"action": "continued", "instance_id": instance_id}
        break
    try:
        asg.complete_lifecycle_action(
            LifecycleHookName=message["LifecycleHookName"], AutoScalingGroupName=message["AutoScalingGroupName"],
            LifecycleActionToken=message["LifecycleActionToken"], LifecycleActionResult="CONTINUE",
        )
    except asg.exceptions.ClientError as e:
        # A repeated message's chain completed it first: the sample fails here, and Lambda's retries end the
        # same way; counted as over, so that the benchmark measures the algorithm rather than this crash.
        if "No active Lifecycle Action" not in str(e):
            raise
        return {"action": "already over", "instance_id": instance_id}
    return {"action": "completed", "instance_id": instance_id}
