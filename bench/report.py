"""What the benchmark scripts share: the fleets they run on, a process's peak memory, a deployment package's
zip, percentiles, and writing a report."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any


def fleet(aws: Any, name: str, count: int, cluster: str) -> tuple[list[str], list[str]]:
    """An Auto Scaling group of `count` instances, each registered in `cluster`: (instance ids, container instance ARNs)."""
    ids = aws.group(name, count)
    aws.ecs.create_cluster(clusterName=cluster)
    return ids, [aws.register(cluster, i) for i in ids]


def draining_fleet(aws: Any, count: int) -> tuple[list[str], list[str], str, Any]:
    """Group and cluster "web" of `count` instances, two service tasks on each that stop 1.5 s into their drain,
    and a terminating hook "drain" (CONTINUE after 600 s) that notifies topic "hooks": (instance ids, container
    instance ARNs, topic ARN, the queue subscribed to it)."""
    ids, arns = fleet(aws, "web", count, "web")
    aws.ecs.register_task_definition(family="web", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 512}])
    for arn in arns:
        aws.ecs.start_task(cluster="web", taskDefinition="web", containerInstances=[arn, arn], group="service:web")
    aws.draining(stop_after_ms=1500, step_ms=300)
    topic, queue = aws.topic("hooks")
    aws.autoscaling.put_lifecycle_hook(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=600, DefaultResult="CONTINUE", NotificationTargetARN=topic, RoleARN="arn:aws:iam::123456789012:role/hooks")
    return ids, arns, topic, queue


def at(iso: str) -> float:
    """An emulator timestamp (ISO 8601, `Z`) as seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], p: float) -> float:
    """The `p`th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), what Lambda's "Max Memory Used" reports."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write(out: Path | None, lines: list[str]) -> None:
    """Print the report, and write it to `out` (a Markdown file the README links) if given."""
    report = "\n".join(lines) + "\n"
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)


def zipped(files: dict[str, bytes]) -> bytes:
    """A deployment package zipped as the SAM CLI zips it for upload: deflate at zlib's default level."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()
