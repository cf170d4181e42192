"""Benchmark: the scale-in-cleaner's release binary over one cluster of 1,000 container instances running
8,000 tasks, next to its Python peer (bench/peers/scale_in_cleaner.py, omerxx/ecscale's algorithm) on the
same fleet.

Runs each as Lambda does (Lambda Runtime API on loopback) against its own local emulator and reports the
AWS calls per run (from the emulator's counters), the run's duration and the process's peak memory
(VmHWM). Not a test: nothing here passes or fails on timing; the report says which targets were met.

Usage: python bench/scale_in_cleaner.py <path to the release binary> [instances] [output.md]
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

import report  # noqa: E402
from report import peak_rss_mib  # noqa: E402
from shipshape_emulator.client import AMI, REGION, Emulator  # noqa: E402
from shipshape_emulator.lambda_runtime import FunctionProcess  # noqa: E402


def seed(emulator: Emulator, count: int) -> list[str]:
    ecs, asg = emulator.ecs, emulator.autoscaling
    asg.create_launch_configuration(LaunchConfigurationName="fleet-lc", ImageId=AMI, InstanceType="m5.large")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="fleet", LaunchConfigurationName="fleet-lc", MinSize=count // 2, MaxSize=count * 2,
        DesiredCapacity=count, AvailabilityZones=[f"{REGION}a", f"{REGION}b", f"{REGION}c"],
    )
    ids: list[str] = []
    token = None
    while True:
        page = asg.describe_auto_scaling_instances(MaxRecords=50, **({"NextToken": token} if token else {}))
        ids += [i["InstanceId"] for i in page["AutoScalingInstances"]]
        token = page.get("NextToken")
        if not token:
            break
    ecs.create_cluster(clusterName="fleet")
    arns = [
        ecs.register_container_instance(cluster="fleet", instanceIdentityDocument=json.dumps({"instanceId": i}))[
            "containerInstance"]["containerInstanceArn"]
        for i in ids
    ]
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 512, "memory": 1024}])
    # Most instances run three service tasks, one in ten runs one, one in fifty none: a fleet that can shed
    # a few instances per run.
    for round_ in range(3):
        targets = [a for n, a in enumerate(arns) if (n % 50 != 0) and (round_ == 0 or n % 10 != 0)]
        for start in range(0, len(targets), 10):
            ecs.start_task(cluster="fleet", taskDefinition="web", containerInstances=targets[start:start + 10], group="service:web")
    return arns


# Before placement-aware consolidation (commit 9db5f33), over 1,000 instances and 2,780 tasks.
BEFORE = "104 calls per run (72 for a dry run), 8.9 s, 14.9 MiB"
TASKS_PER_INSTANCE = 8
EMPTY, LIGHT = 10, 20


def seed_consolidation(emulator: Emulator, count: int) -> None:
    """`count` instances of one group in cluster `fleet`, running `tasks` tasks of service `web`: EMPTY
    instances run nothing, LIGHT ones two tasks each, the others share the rest (8 or 9 each)."""
    ecs, asg = emulator.ecs, emulator.autoscaling
    tasks = TASKS_PER_INSTANCE * count
    asg.create_launch_configuration(LaunchConfigurationName="fleet-lc", ImageId=AMI, InstanceType="m5.large")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="fleet", LaunchConfigurationName="fleet-lc", MinSize=count // 2, MaxSize=count * 2,
        DesiredCapacity=count, AvailabilityZones=[f"{REGION}a", f"{REGION}b", f"{REGION}c"],
    )
    ids: list[str] = []
    for page in asg.get_paginator("describe_auto_scaling_instances").paginate(PaginationConfig={"PageSize": 50}):
        ids += [i["InstanceId"] for i in page["AutoScalingInstances"]]
    ecs.create_cluster(clusterName="fleet")
    arns = [
        ecs.register_container_instance(cluster="fleet", instanceIdentityDocument=json.dumps({"instanceId": i}))[
            "containerInstance"]["containerInstanceArn"]
        for i in ids
    ]
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 512}])
    ecs.create_service(cluster="fleet", serviceName="web", taskDefinition="web", desiredCount=tasks)
    busy = arns[EMPTY + LIGHT:]
    rest = tasks - 2 * LIGHT
    per = [rest // len(busy) + (1 if n < rest % len(busy) else 0) for n in range(len(busy))]
    placements = [a for a in arns[EMPTY:EMPTY + LIGHT] for _ in range(2)]
    placements += [a for a, k in zip(busy, per) for _ in range(k)]
    for start in range(0, len(placements), 10):
        ecs.start_task(cluster="fleet", taskDefinition="web", containerInstances=placements[start:start + 10], group="service:web")


Row = tuple[str, Any, dict[str, int], float]


def runs(command: list[str] | Path, env: dict[str, str], count: int, payloads: list[tuple[str, dict[str, Any]]]) -> tuple[list[Row], float]:
    """A fresh seeded emulator; each payload invoked in turn on one warm process; (rows, init ms)."""
    with Emulator() as emulator:
        started = time.monotonic()
        seed_consolidation(emulator, count)
        print(f"seeded {count} container instances and {TASKS_PER_INSTANCE * count} tasks in {time.monotonic() - started:.0f} s",
              flush=True)
        rows: list[Row] = []
        with FunctionProcess(command, {**env, "AWS_ENDPOINT_URL": emulator.url}, name="scale-in-cleaner", timeout_s=300,
                             on_log=lambda _: None, memory_mb=128) as fn:
            assert fn.proc is not None
            for label, payload in payloads:
                emulator.reset_calls()
                result = fn.invoke(payload)
                calls = emulator.calls()
                if not result.ok:
                    raise SystemExit(f"{label} failed: {result.payload}")
                rows.append((label, result, calls, peak_rss_mib(fn.proc.pid)))
                time.sleep(1.5)  # drained service tasks stop before the next run
        return rows, fn.init_ms


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| run | duration | ListContainerInstances | DescribeContainerInstances | Auto Scaling reads | task reads | other reads | changes | total calls | peak RSS | totals |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, result, calls, rss in rows:
        get = lambda k: calls.get(k, 0)  # noqa: E731
        mutating = sum(v for k, v in calls.items() if not (":Describe" in k or ":List" in k or ":Get" in k))
        groups = get("autoscaling:DescribeAutoScalingInstances") + get("autoscaling:DescribeAutoScalingGroups")
        tasks = get("ecs:ListTasks") + get("ecs:DescribeTasks") + get("ecs:GetTaskProtection") + get("ecs:DescribeTaskDefinition")
        main_reads = get("ecs:ListContainerInstances") + get("ecs:DescribeContainerInstances") + groups + tasks
        other = sum(calls.values()) - mutating - main_reads
        totals = {k: v for k, v in result.payload["totals"].items() if v}
        lines.append(
            f"| {label} | {result.duration_ms / 1000:.2f} s | {get('ecs:ListContainerInstances')} | "
            f"{get('ecs:DescribeContainerInstances')} | {groups} | {tasks} | {other} | {mutating} | {sum(calls.values())} | "
            f"{rss:.1f} MiB | `{json.dumps(totals)}` |"
        )
    return lines


def main() -> None:
    binary = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    base = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    env = {**base, "CLUSTERS": "fleet", "MIN_INSTANCE_AGE_MINUTES": "0", "SCALE_IN_COOLDOWN_MINUTES": "0",
           "MAX_REMOVALS_PER_RUN": "10"}
    rust, init_ms = runs(binary, env, count, [("dry run", {"dry-run": True}), ("run", {}), ("next run", {}), ("third run", {})])
    peer_command = [sys.executable, "-m", "awslambdaric", "scale_in_cleaner.handler"]
    peer_env = {**base, "PYTHONPATH": str(ROOT / "bench" / "peers")}
    peer, peer_init_ms = runs(peer_command, peer_env, count, [("run", {}), ("next run", {}), ("third run", {})])

    hundreds = math.ceil(count / 100)
    live = [(label, calls, rss) for label, _, calls, rss in rust]
    worst_calls = max(sum(c.values()) for _, c, _ in live)
    worst_rss = max(rss for _, _, rss in live)
    # Reading the cluster: one of each per 100 instances; then one DescribeContainerInstances of the instances
    # chosen, right before they are drained, and one of those to terminate, right before.
    pages_ok = all(c.get("ecs:ListContainerInstances", 0) <= hundreds and c.get("ecs:DescribeContainerInstances", 0) <= hundreds + 2
                   for _, c, _ in live)
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    lines = [
        f"# scale-in-cleaner over {count:,} container instances and {TASKS_PER_INSTANCE * count:,} tasks (one cluster, one group)",
        "",
        f"{EMPTY} instances run nothing, {LIGHT} run two tasks, the others eight or nine; one replica service; "
        "MAX_REMOVALS_PER_RUN=10, no cool-down. Each run plans placement for the instances it examines.",
        "",
        f"Targets: one ListContainerInstances and one DescribeContainerInstances per 100 instances to read the cluster "
        f"({hundreds} each; DescribeContainerInstances also once for the instances chosen, right before they are drained, "
        f"and once for those to terminate, right before): {met(pages_ok)}; under 60 calls per run: {met(worst_calls < 60)} "
        f"(most: {worst_calls}); under 32 MiB: {met(worst_rss < 32)} (most: {worst_rss:.1f} MiB).",
        f"Before placement-aware consolidation, over 1,000 instances and 2,780 tasks: {BEFORE}.",
        "",
        "## Rust",
        "",
        *table(rust),
        "",
        "Task reads: ListTasks (one per instance examined), DescribeTasks (per 100 tasks), GetTaskProtection (per 100 service "
        "tasks), DescribeTaskDefinition (once per revision). Other reads: " + ", ".join(
            f"{k.split(':')[1]} {v}" for k, v in sorted(rust[1][2].items())
            if k.split(":")[1] in ("DescribeClusters", "ListServices", "DescribeServices", "DescribeCapacityProviders")
        ) + f". Init (process start to first request for work): {init_ms:.0f} ms.",
        "",
        "## Python peer (omerxx/ecscale's algorithm, bench/peers/)",
        "",
        *table(peer),
        "",
        f"Init: {peer_init_ms:.0f} ms. The peer reads no task and checks no placement: it drains every empty instance and "
        "the one with the most free memory when the cluster's reservation is low, whatever runs on it.",
        "",
        "Durations are against the local emulator (Python, one process), so they measure the emulator more than the function.",
    ]
    report.write(out, lines)


if __name__ == "__main__":
    main()
