"""The emulator from the outside: start it, call it with boto3, use its control endpoints.

What the pytest fixtures (``tests/conftest.py``), the demo (``demo.py``) and the benchmarks (``bench/``)
share; the Rust tests have the same helpers in ``tests/src/lib.rs``::

    with Emulator() as emulator:
        emulator.ecs.create_cluster(clusterName="web")
        emulator.fault("ListClusters", error="ThrottlingException")
        emulator.calls()  # {"ecs:CreateCluster": 1}

    with Zygote() as zygote:  # many emulators, each started in milliseconds
        with Emulator(zygote=zygote) as first, Emulator(zygote=zygote) as second:
            ...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
# moto accepts any well-formed AMI id; looking one up with DescribeImages costs seconds.
AMI = "ami-12c6146b"
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class ControlError(Exception):
    """A control endpoint answered with an error; ``status`` and ``body`` (its JSON) say which."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} /_shipshape{path}: {status} {body}")
        self.status = status
        self.body = body


class Zygote:
    """A fork server of emulators (``python -m shipshape_emulator --zygote``): pays moto's import once, then
    starts each emulator in milliseconds. ``Emulator(zygote=...)`` starts one from it; closing the zygote
    stops the emulators it still runs."""

    def __init__(self, logs: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shipshape_emulator", "--zygote", "--quiet"],
            cwd=_PACKAGE_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if logs else subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        line = self._read()
        if line != "shipshape-emulator zygote ready":
            self.process.kill()
            raise RuntimeError(f"the zygote did not start: {line!r}")

    def _read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def command(self, line: str) -> str:
        """Sends one command line; its one-line answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._read()

    def start(self) -> tuple[int, str]:
        """A new emulator: (its pid, its URL)."""
        answer = self.command("start").split()
        if len(answer) != 3 or answer[0] != "started":
            raise RuntimeError(f"the zygote did not start an emulator: {' '.join(answer)!r}")
        return int(answer[1]), answer[2]

    def stop(self, pid: int) -> None:
        answer = self.command(f"stop {pid}")
        if answer != f"stopped {pid}":
            raise RuntimeError(f"the zygote did not stop {pid}: {answer!r}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Emulator:
    """One emulator process (``python -m shipshape_emulator``, or one forked by a ``Zygote``) on a free
    loopback port, with boto3 clients bound to it; stopped by ``close`` or at the end of a ``with`` block."""

    def __init__(self, logs: bool = False, zygote: Zygote | None = None) -> None:
        """``logs``: pass the emulator's stderr (warnings, tracebacks) through instead of discarding it."""
        self.zygote = zygote
        self.process: subprocess.Popen[str] | None = None
        if zygote is not None:
            self.pid, self.url = zygote.start()
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shipshape_emulator", "--port", "0", "--quiet"],
                cwd=_PACKAGE_ROOT,
                stdout=subprocess.PIPE,
                stderr=None if logs else subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            if "listening on" not in line:
                self.process.kill()
                raise RuntimeError(f"the emulator did not start: {line!r}")
            self.pid, self.url = self.process.pid, line.rsplit(" ", 1)[-1].strip()
        self.ec2 = self.client("ec2")
        self.ecs = self.client("ecs")
        self.autoscaling = self.client("autoscaling")
        self.sns = self.client("sns")
        self.sqs = self.client("sqs")
        self.awslambda = self.client("lambda")
        self.cloudwatch = self.client("cloudwatch")

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.stop(self.pid)
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def client(self, service: str, config: Config | None = None, harness: bool = False) -> Any:
        """A new boto3 client for `service`, bound to the emulator. ``harness``: its calls stand for what AWS
        does by itself, and are not counted, throttled or faulted (see ``control``)."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="shipshape-harness" if harness else "testing",
            aws_secret_access_key="testing",
            config=config,
        )

    # --- Control endpoints (shipshape_emulator.control and the extensions' ENDPOINTS) ---------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """``method /_shipshape<path>`` with `body` as JSON; the JSON answer, or ``ControlError``."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_shipshape{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                answer = json.loads(text)
            except ValueError:
                answer = text.decode("utf-8", "replace")
            raise ControlError(method, path, err.code, answer) from None

    def calls(self) -> dict[str, int]:
        """Calls received per ``<service>:<Operation>`` since start or the last ``reset_calls``."""
        return self.control("GET", "/calls")

    def reset_calls(self) -> None:
        self.control("POST", "/calls/reset")

    def fault(self, operation: str, **fields: Any) -> dict[str, Any]:
        """Queues a fault for `operation` (fields: count, error, status, service, message, delay_ms)."""
        return self.control("POST", "/faults", {"operation": operation, **fields})

    def faults(self) -> list[dict[str, Any]]:
        """The faults still queued."""
        return self.control("GET", "/faults")

    def throttling(self, **settings: Any) -> dict[str, Any]:
        """Turns the account's request throttling on (settings: speed, buckets, background); see ``throttling``."""
        return self.control("POST", "/throttling", {"enabled": True, **settings})

    def throttling_status(self) -> dict[str, Any]:
        return self.control("GET", "/throttling")

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def chaos(self, seed: int, rate: float, errors: list[str], **scope: list[str]) -> dict[str, Any]:
        """From now on each AWS request (of ``operations``/``services`` if given) fails with probability
        `rate`, reproducibly for `seed`, with one of `errors`."""
        return self.control("POST", "/faults/random", {"seed": seed, "rate": rate, "errors": errors, **scope})

    def chaos_status(self) -> dict[str, Any]:
        """The random faults' settings (None when off) and how many were injected per operation."""
        return self.control("GET", "/faults/random")

    def shutdown(self) -> None:
        """Asks the server to exit (it answers first)."""
        self.control("POST", "/shutdown")

    def lifecycle_actions(self) -> dict[str, Any]:
        """Lifecycle actions pending and finished, and the Auto Scaling settings."""
        return self.control("GET", "/autoscaling")

    def min_heartbeat_timeout(self, seconds: int) -> None:
        """Accept hook heartbeat timeouts down to `seconds` (AWS: 30)."""
        self.control("POST", "/autoscaling", {"min_heartbeat_timeout": seconds})

    def lifecycle_started_ago(self, seconds: int, heartbeat_age: int | None = None) -> dict[str, Any]:
        """Terminating lifecycle actions created from now on began `seconds` ago (their last heartbeat
        `heartbeat_age` seconds ago, by default as long ago as they began): their messages arrive late."""
        return self.control("POST", "/autoscaling", {"lifecycle_started_ago_seconds": seconds, "heartbeat_age_seconds": heartbeat_age})

    def advance_lifecycle(self, seconds: float) -> dict[str, Any]:
        """Every pending lifecycle action ages by `seconds`, as if that much time had passed for Auto Scaling."""
        return self.control("POST", "/autoscaling/advance", {"seconds": seconds})

    def terminations(self) -> list[dict[str, Any]]:
        """Every EC2 instance terminated so far, how, and the ECS tasks it took down."""
        return self.control("GET", "/terminations")

    def stops(self) -> list[dict[str, Any]]:
        """Every EC2 instance stopped so far (a warm pool's, or EC2 StopInstances), and the ECS tasks it took down."""
        return self.control("GET", "/stops")

    def events(self, since: int = 0) -> dict[str, Any]:
        """The EventBridge events of what happened after the first `since` (``extensions.events``):
        ``{"events": [...], "cursor": n}``; pass ``cursor`` as `since` next time to get only the new ones."""
        return self.control("GET", f"/events?since={since}")

    def schedule_ec2_event(self, instance_id: str, code: str, not_before: str) -> str:
        """EC2 schedules maintenance for an instance (``DescribeInstanceStatus`` lists it); its event id."""
        events = self.control("POST", "/ec2/events", {"instance_id": instance_id, "code": code, "not_before": not_before})
        return events[-1]["InstanceEventId"]

    def draining(self, stop_after_ms: int, step_ms: int, never_stop: list[str] | None = None) -> None:
        """How fast service tasks on a DRAINING instance are replaced and stop; `never_stop`: tasks a drain
        never stops."""
        body: dict[str, Any] = {"stop_after_ms": stop_after_ms, "step_ms": step_ms}
        if never_stop is not None:
            body["never_stop"] = never_stop
        self.control("POST", "/ecs/draining", body)

    def draining_status(self) -> dict[str, Any]:
        """The draining settings, and the tasks a drain could not replace (``unable_to_place``)."""
        return self.control("GET", "/ecs/draining")

    def agent(self, container_instance_arn: str, connected: bool) -> None:
        """Marks a container instance's ECS agent connected or disconnected."""
        self.control("POST", "/ecs/agent", {"container_instance_arn": container_instance_arn, "connected": connected})

    def role(self, name: str) -> str:
        """The ARN of an execution role for Lambda functions, created if need be."""
        return self.control("POST", "/iam/role", {"name": name})["arn"]

    def traffic(self, function: str, alias: str, **spec: Any) -> dict[str, Any]:
        """Traffic through an alias as Lambda serves and reports it (rate, lag_ms, versions, seed; see
        ``extensions.lambda_traffic``); ``rate=0`` stops it."""
        return self.control("POST", "/lambda/traffic", {"function": function, "alias": alias, **spec})

    def answer(self, function: str, **spec: Any) -> dict[str, Any]:
        """How ``Invoke`` of `function` answers: ``error=...`` (a function error) or ``result=...``."""
        return self.control("POST", "/lambda/invoke", {"function": function, **spec})

    def reset(self) -> None:
        """Everything back to the start: moto's state, the extensions', the call counts and the faults."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).close()
        self.reset_calls()
        self.clear_faults()
        self.control("DELETE", "/faults/random")

    # --- Fixtures ---------------------------------------------------------------------------------------

    def group(self, name: str, count: int) -> list[str]:
        """An Auto Scaling group of `count` instances (min 0, max twice as many); their instance ids."""
        self.autoscaling.create_launch_configuration(LaunchConfigurationName=f"{name}-lc", ImageId=AMI, InstanceType="m5.large")
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName=f"{name}-lc",
            MinSize=0,
            MaxSize=count * 2,
            DesiredCapacity=count,
            AvailabilityZones=[f"{REGION}a"],
        )
        group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]

    def register(self, cluster: str, instance_id: str) -> str:
        """Registers an EC2 instance in an ECS cluster; the container instance's ARN. The emulator never
        does this by itself: an instance a group launches (or a warm pool starts) has its ECS agent up only
        when a test registers it (or connects it again with ``agent``), so tests decide when that happens."""
        doc = json.dumps({"instanceId": instance_id, "region": REGION})
        ci = self.ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=doc)
        return ci["containerInstance"]["containerInstanceArn"]

    def topic(self, name: str) -> tuple[str, str]:
        """An SNS topic delivering to an SQS queue of the same name: (topic ARN, queue URL)."""
        topic = self.sns.create_topic(Name=name)["TopicArn"]
        queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        return topic, queue


def sns_event(topic_arn: str, body: str) -> dict[str, Any]:
    """The event Lambda receives for an SNS message (its shape:
    https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html), from the message's envelope as an SQS
    subscription received it (`body`). The signature fields are present and empty, as in the Rust tests."""
    envelope = json.loads(body)
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": f"{topic_arn}:sub",
                         "Sns": {"Type": "Notification", "MessageId": envelope["MessageId"], "TopicArn": topic_arn,
                                 "Subject": envelope.get("Subject"), "Message": envelope["Message"],
                                 "Timestamp": envelope["Timestamp"], "SignatureVersion": "1", "Signature": "",
                                 "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}}]}


# AWS Health's scheduled events for EC2 instances (``eventTypeCategory`` ``scheduledChange``) that take an
# instance away, and a description of each: the words are ours; AWS's notices say more, and vary.
HEALTH_EC2_SCHEDULED = {
    "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED": "Your instance is scheduled for retirement: its host has degraded "
    "hardware. It will be stopped or terminated after the scheduled date.",
    "AWS_EC2_INSTANCE_STOP_SCHEDULED": "Your instance is scheduled to be stopped: its host has degraded hardware.",
    "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED": "Your instance is scheduled for a reboot for maintenance.",
    "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED": "Your instance's host is scheduled for a reboot for maintenance.",
}


def _health_time(moment: datetime) -> str:
    """AWS Health's way of writing a time in an event's ``detail``: ``Wed, 26 Jun 2019 15:00:00 GMT``."""
    return moment.astimezone(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def health_event(
    instance_ids: list[str],
    event_type_code: str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    start: datetime | None = None,
    end: datetime | None = None,
    sent: datetime | None = None,
    account: str = "123456789012",
    region: str = REGION,
    status_code: str = "upcoming",
) -> dict[str, Any]:
    """The EventBridge event AWS Health sends for scheduled maintenance of EC2 instances in `region`.

    The schema of "Reference: AWS Health events Amazon EventBridge schema"
    (https://docs.aws.amazon.com/health/latest/ug/aws-health-events-eventbridge-schema.html): ``detail-type``
    "AWS Health Event", ``source`` "aws.health", ``time`` when it was sent (``yyyy-mm-ddThh:mm:ssZ``),
    ``resources`` the affected instance ids; ``detail``: ``eventArn``
    (``arn:aws:health:<region>::event/EC2/<code>/<code>_<id>``, API_Event.html), ``service`` "EC2",
    ``eventTypeCode``, ``eventTypeCategory`` "scheduledChange", ``eventScopeCode`` "ACCOUNT_SPECIFIC",
    ``communicationId``, ``startTime`` and ``endTime`` (of the maintenance window; Health writes them
    ``Wed, 26 Jun 2019 15:00:00 GMT``), ``lastUpdatedTime``, ``statusCode`` (``upcoming`` until the window
    opens, then ``open``, ``closed``), ``eventRegion``, ``eventDescription``, ``affectedEntities`` (one
    ``{"entityValue": <instance id>, ...}`` per instance), ``affectedAccount``, ``page`` and ``totalPages``.
    `event_type_code` is one of ``HEALTH_EC2_SCHEDULED``; `start` defaults to two weeks after `sent` (now),
    `end` to two hours after `start` for a reboot, to `start` for a retirement or stop (a moment, not a
    window: so AWS sends them, e.g. a captured ``AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED`` with
    ``startTime`` and ``endTime`` both "Wed, 26 Jun 2019 15:00:00 GMT").
    """
    if event_type_code not in HEALTH_EC2_SCHEDULED:
        raise ValueError(f"event_type_code: one of {sorted(HEALTH_EC2_SCHEDULED)}")
    sent = sent or datetime.now(timezone.utc).replace(microsecond=0)
    start = start or sent + timedelta(days=14)
    instant = event_type_code in ("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "AWS_EC2_INSTANCE_STOP_SCHEDULED")
    end = end or (start if instant else start + timedelta(hours=2))
    suffix = uuid.uuid4().hex
    detail: dict[str, Any] = {
        "eventArn": f"arn:aws:health:{region}::event/EC2/{event_type_code}/{event_type_code}_{suffix[:8]}-{suffix[8:12]}",
        "service": "EC2",
        "eventTypeCode": event_type_code,
        "eventTypeCategory": "scheduledChange",
        "eventScopeCode": "ACCOUNT_SPECIFIC",
        "communicationId": f"{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}-1",
        "startTime": _health_time(start),
        "endTime": _health_time(end),
    }
    detail.update({
        "lastUpdatedTime": _health_time(sent),
        "statusCode": status_code,
        "eventRegion": region,
        "eventDescription": [{"language": "en_US", "latestDescription": HEALTH_EC2_SCHEDULED[event_type_code]}],
        "affectedEntities": [{"entityValue": instance_id, "tags": {}} for instance_id in instance_ids],
        "affectedAccount": account,
        "page": "1",
        "totalPages": "1",
    })
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS Health Event", "source": "aws.health",
            "account": account, "time": sent.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": list(instance_ids), "detail": detail}
