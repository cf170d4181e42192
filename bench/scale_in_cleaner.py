"""Benchmark: the scale-in-cleaner's release binary over one cluster of 1,000 container instances.

Runs the binary as Lambda does (Lambda Runtime API on loopback) against the local emulator and reports
the AWS calls per run (from the emulator's counters), the run's duration and the process's peak memory
(VmHWM). Not a test: nothing here passes or fails on timing.

Usage: python bench/scale_in_cleaner.py <path to the release binary> [instances] [output.md]
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

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


def main() -> None:
    binary = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    with Emulator() as emulator:
        started = time.monotonic()
        seed(emulator, count)
        print(f"seeded {count} container instances in {time.monotonic() - started:.0f} s", flush=True)
        env = {
            "AWS_ENDPOINT_URL": emulator.url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "CLUSTERS": "fleet", "MIN_INSTANCE_AGE_MINUTES": "0",
            "MAX_REMOVALS_PER_RUN": "10",
        }
        rows = []
        with FunctionProcess(binary, env, name="scale-in-cleaner", timeout_s=300, on_log=lambda _: None, memory_mb=128) as fn:
            assert fn.proc is not None
            for label, payload in [("dry run", {"dry-run": True}), ("run", {}), ("next run", {})]:
                emulator.reset_calls()
                result = fn.invoke(payload)
                calls = emulator.calls()
                if not result.ok:
                    raise SystemExit(f"{label} failed: {result.payload}")
                rows.append((label, result, calls, peak_rss_mib(fn.proc.pid)))
                time.sleep(1.5)  # drained service tasks stop before the next run
        hundreds = math.ceil(count / 100)
        lines = [
            f"# scale-in-cleaner over {count} container instances (one cluster, one group)",
            "",
            f"Targets: at most {hundreds} ListContainerInstances and {hundreds} DescribeContainerInstances per run "
            f"(one per 100 instances) plus the Auto Scaling look-ups; peak memory under 64 MiB.",
            "",
            "| run | duration | ListContainerInstances | DescribeContainerInstances | DescribeAutoScalingInstances | other reads | changes | total calls | peak RSS | totals |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for label, result, calls, rss in rows:
            get = lambda k: calls.get(k, 0)  # noqa: E731
            mutating = sum(v for k, v in calls.items() if not (":Describe" in k or ":List" in k))
            main_reads = get("ecs:ListContainerInstances") + get("ecs:DescribeContainerInstances") + get("autoscaling:DescribeAutoScalingInstances")
            other = sum(calls.values()) - mutating - main_reads
            lines.append(
                f"| {label} | {result.duration_ms / 1000:.2f} s | {get('ecs:ListContainerInstances')} | "
                f"{get('ecs:DescribeContainerInstances')} | {get('autoscaling:DescribeAutoScalingInstances')} | {other} | "
                f"{mutating} | {sum(calls.values())} | {rss:.1f} MiB | `{json.dumps(result.payload['totals'])}` |"
            )
        lines += ["", "Other reads per run: " + ", ".join(
            f"{k.split(':')[1]} {v}" for k, v in sorted(rows[0][2].items())
            if k not in ("ecs:ListContainerInstances", "ecs:DescribeContainerInstances", "autoscaling:DescribeAutoScalingInstances")
        ) + ". DescribeTasks scales with the tasks (100 per call); the emulator answers ListTasks in one page, "
            "where AWS pages by 100, so expect one ListTasks per 100 tasks too.",
            f"Init (process start to first request for work): {fn.init_ms:.0f} ms. Durations are against the local "
            "emulator (Python, one process), so they measure the emulator more than the function."]
        report.write(out, lines)


if __name__ == "__main__":
    main()
