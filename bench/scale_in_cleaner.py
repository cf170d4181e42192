"""Benchmark: the scale-in-cleaner at fleet scale. One cluster of 5,000 container instances in four Auto
Scaling groups (two behind capacity providers), three zones, 50,000 tasks of 200 services (some with
`memberOf`, `distinctInstance`, static host ports); a dry run and three real runs of the release binary,
as Lambda runs it (Lambda Runtime API on loopback), against the local emulator, at 128 MB; then the
same fleet with every task under scale-in protection, where every candidate must be read. Reported per
run: AWS calls by operation (the emulator's counters), duration, the process's peak memory (VmHWM,
Lambda's "Max Memory Used"). Then the planner's CPU time alone, from the release-mode planning
benchmark (`cargo bench -p scale-in-cleaner --bench plan`, a synthetic cluster of the same size). Next
to it, the Python peer (bench/peers/scale_in_cleaner.py, omerxx/ecscale's algorithm) on the same fleet.

The fleet is seeded through the emulator's bulk endpoint (`POST /_shipshape/bulk/ecs`): through the API,
5,000 registrations and 50,000 task starts take many minutes, since every request pays HTTP and every
request ticks the emulator's drain over every task.

Not a test: nothing here passes or fails on timing; the report says which targets were met.

Usage: python bench/scale_in_cleaner.py <release binary> [instances] [output.md] [planning bench JSON lines]
"""

from __future__ import annotations

import json
import math
import subprocess
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


TASKS_PER_INSTANCE = 10
SERVICES = 200
# (group, capacity provider or None): two groups behind providers, two without.
GROUPS = [("web-a", "cp-web-a"), ("web-b", "cp-web-b"), ("batch-1", None), ("batch-2", None)]
ZONES = [f"{REGION}{z}" for z in "abc"]
# What the emulator registers an instance with: 4096 CPU units, 7482 MiB.
CPU, MEMORY = 4096, 7482


def service_spec(s: int) -> dict[str, Any]:
    """Service `s`: its size, its placement rules, and where it runs (a provider's groups, or the plain groups
    with a launch type)."""
    provider = ["cp-web-a", "cp-web-b"][s % 2] if s < SERVICES // 2 else None
    spec: dict[str, Any] = {"name": f"svc-{s:03}", "cpu": [128, 256, 512][s % 3], "memory": [256, 512, 1024][(s // 3) % 3],
                            "provider": provider, "gold": s % 10 == 3, "distinct": s % 20 == 7,
                            "port": 8000 + s if s % 7 == 5 else None}
    return spec


def seed_fleet(emulator: Emulator, count: int, protected: bool = False) -> dict[str, Any]:
    """The fleet above, `count` instances and TASKS_PER_INSTANCE tasks each on average; with `protected`, every
    task under scale-in protection. Most instances fill up; one in twenty runs a task or two; a few run
    nothing."""
    ecs, asg = emulator.ecs, emulator.autoscaling
    asg.create_launch_configuration(LaunchConfigurationName="fleet-lc", ImageId=AMI, InstanceType="m5.large")
    per_group = count // len(GROUPS)
    members: dict[str, list[str]] = {}
    arns: dict[str, str] = {}
    for name, _ in GROUPS:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName="fleet-lc", MinSize=per_group // 2,
                                      MaxSize=per_group * 2, DesiredCapacity=per_group, AvailabilityZones=ZONES)
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        members[name] = [i["InstanceId"] for i in group["Instances"]]
        arns[name] = group["AutoScalingGroupARN"]
    ecs.create_cluster(clusterName="fleet")
    providers = [(name, cp) for name, cp in GROUPS if cp]
    for name, cp in providers:
        ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={"autoScalingGroupArn": arns[name]})
    ecs.put_cluster_capacity_providers(cluster="fleet", capacityProviders=[cp for _, cp in providers], defaultCapacityProviderStrategy=[])
    specs = [service_spec(s) for s in range(SERVICES)]
    for spec in specs:
        container: dict[str, Any] = {"name": "app", "image": "nginx", "cpu": spec["cpu"], "memory": spec["memory"]}
        if spec["port"]:
            container["portMappings"] = [{"containerPort": 80, "hostPort": spec["port"]}]
        constraints = [{"type": "memberOf", "expression": "attribute:tier == gold"}] if spec["gold"] else []
        ecs.register_task_definition(family=spec["name"], containerDefinitions=[container], placementConstraints=constraints)
    # Instances in order, each with its group's provider and a tier; the gold ones are every third.
    order = [(g, i) for g, _ in GROUPS for i in members[g]]
    tier = {i: ("gold" if n % 3 == 0 else "silver") for n, (_, i) in enumerate(order)}
    room = [[CPU, MEMORY] for _ in order]
    ports: list[set[int]] = [set() for _ in order]
    hosts_of = {None: [n for n, (g, _) in enumerate(order) if g.startswith("batch")]}
    for g, cp in providers:
        hosts_of[cp] = [n for n, (gg, _) in enumerate(order) if gg == g]
    per_service = count * TASKS_PER_INSTANCE // SERVICES
    light = {n for n in range(len(order)) if n % 20 == 0}
    empty = {n for n in range(len(order)) if n % 1000 == 1}
    tasks: list[dict[str, Any]] = []
    placed_on: list[int] = [0] * len(order)
    for s, spec in enumerate(specs):
        hosts = [n for n in hosts_of[spec["provider"]] if not spec["gold"] or tier[order[n][1]] == "gold"]
        used: set[int] = set()
        cursor = (s * 7919) % len(hosts)
        for _ in range(per_service):
            for _attempt in range(len(hosts)):
                n = hosts[cursor % len(hosts)]
                cursor += 1
                fits = room[n][0] >= spec["cpu"] and room[n][1] >= spec["memory"]
                if (fits and n not in empty and not (n in light and placed_on[n] >= 1)
                        and not (spec["port"] and spec["port"] in ports[n]) and not (spec["distinct"] and n in used)):
                    break
            else:
                break
            room[n][0] -= spec["cpu"]
            room[n][1] -= spec["memory"]
            placed_on[n] += 1
            used.add(n)
            if spec["port"]:
                ports[n].add(spec["port"])
            tasks.append({"family": spec["name"], "instance": n, "group": f"service:{spec['name']}", "protected": protected})
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t["family"]] = counts.get(t["family"], 0) + 1
    for spec in specs:
        extra: dict[str, Any] = {}
        if spec["provider"]:
            extra["capacityProviderStrategy"] = [{"capacityProvider": spec["provider"], "weight": 1}]
        else:
            extra["launchType"] = "EC2"
        if spec["distinct"]:
            extra["placementConstraints"] = [{"type": "distinctInstance"}]
        ecs.create_service(cluster="fleet", serviceName=spec["name"], taskDefinition=spec["name"],
                           desiredCount=counts.get(spec["name"], 0), **extra)
    instances = [{"instance_id": i, "attributes": {"tier": tier[i]}} for _, i in order]
    emulator.control("POST", "/bulk/ecs", {"cluster": "fleet", "instances": instances, "tasks": tasks})
    return {"instances": len(order), "tasks": len(tasks), "services": len(specs)}


Row = tuple[str, Any, dict[str, int], float]


def runs(command: list[str] | Path, env: dict[str, str], count: int, payloads: list[tuple[str, dict[str, Any]]],
         protected: bool = False) -> tuple[list[Row], float, dict[str, Any], float]:
    """A fresh seeded emulator; each payload invoked in turn on one warm 128 MB process; (rows, init ms, the
    fleet, seconds spent seeding)."""
    with Emulator() as emulator:
        started = time.monotonic()
        seeded = seed_fleet(emulator, count, protected)
        seeding = time.monotonic() - started
        print(f"seeded {seeded} in {seeding:.0f} s", flush=True)
        emulator.draining(stop_after_ms=0, step_ms=0)
        rows: list[Row] = []
        with FunctionProcess(command, {**env, "AWS_ENDPOINT_URL": emulator.url}, name="scale-in-cleaner", timeout_s=900,
                             on_log=lambda _: None, memory_mb=128) as fn:
            assert fn.proc is not None
            for label, payload in payloads:
                emulator.reset_calls()
                result = fn.invoke(payload)
                calls = emulator.calls()
                if not result.ok:
                    raise SystemExit(f"{label} failed: {result.payload}")
                rows.append((label, result, calls, peak_rss_mib(fn.proc.pid)))
                print(f"{label}: {result.duration_ms / 1000:.1f} s, {sum(calls.values())} calls", flush=True)
                time.sleep(1.5)  # drained service tasks stop before the next run
        return rows, fn.init_ms, seeded, seeding


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| run | duration | ListContainerInstances | DescribeContainerInstances | Auto Scaling reads | ListTasks | DescribeTasks | other task reads | service reads | changes | total calls | peak RSS | totals |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, result, calls, rss in rows:
        get = lambda k: calls.get(k, 0)  # noqa: E731
        mutating = sum(v for k, v in calls.items() if not (":Describe" in k or ":List" in k or ":Get" in k))
        groups = get("autoscaling:DescribeAutoScalingInstances") + get("autoscaling:DescribeAutoScalingGroups")
        other_tasks = get("ecs:GetTaskProtection") + get("ecs:DescribeTaskDefinition")
        services = get("ecs:ListServices") + get("ecs:DescribeServices") + get("ecs:DescribeClusters") + get("ecs:DescribeCapacityProviders")
        totals = {k: v for k, v in result.payload["totals"].items() if v}
        lines.append(
            f"| {label} | {result.duration_ms / 1000:.2f} s | {get('ecs:ListContainerInstances')} | "
            f"{get('ecs:DescribeContainerInstances')} | {groups} | {get('ecs:ListTasks')} | {get('ecs:DescribeTasks')} | "
            f"{other_tasks} | {services} | {mutating} | {sum(calls.values())} | {rss:.1f} MiB | `{json.dumps(totals)}` |"
        )
    return lines


def by_operation(rows: list[Row]) -> list[str]:
    return [f"- {label}: " + ", ".join(f"{k.split(':')[1]} {v}" for k, v in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])))
            for label, _, calls, _ in rows]


def planning(path: Path | None) -> list[dict[str, Any]]:
    """The planning benchmark's results: from a file of its JSON lines, or by running it."""
    if path is not None and path.exists():
        text = path.read_text()
    else:
        out = subprocess.run(["cargo", "bench", "--locked", "-q", "-p", "scale-in-cleaner", "--bench", "plan"], cwd=ROOT,
                             check=True, capture_output=True, text=True)
        text = out.stdout
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# The share of a core Lambda gives a function of 128 MB (1,769 MB is one vCPU).
CORE_SHARE_128 = 128 / 1769


def main() -> None:
    binary = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    plan_results = planning(Path(sys.argv[4]) if len(sys.argv) > 4 else None)
    base = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    env = {**base, "CLUSTERS": "fleet", "MIN_INSTANCE_AGE_MINUTES": "0", "SCALE_IN_COOLDOWN_MINUTES": "0",
           "MAX_REMOVALS_PER_RUN": "10"}
    payloads = [("dry run", {"dry-run": True}), ("run", {}), ("next run", {}), ("third run", {})]
    rust, init_ms, seeded, seeding = runs(binary, env, count, payloads)
    blocked, _, _, _ = runs(binary, env, count, [("dry run, every task protected", {"dry-run": True})], protected=True)
    peer_command = [sys.executable, "-m", "awslambdaric", "scale_in_cleaner.handler"]
    peer_env = {**base, "PYTHONPATH": str(ROOT / "bench" / "peers")}
    peer, peer_init_ms, _, _ = runs(peer_command, peer_env, count, [("run", {}), ("next run", {}), ("third run", {})])

    hundreds = math.ceil(count / 100)
    live = rust + blocked
    worst_rss = max(rss for _, _, _, rss in live)
    # Reading the cluster: one of each per 100 instances; plus one ListContainerInstances per group whose
    # hosts a placement rule needs (distinctInstance, task:group), and one DescribeContainerInstances for the
    # instances chosen right before they are drained and one for those to terminate right before.
    # A distinctInstance service's hosts are listed with `task:group == service:<name>`, a page per 100.
    distinct = sum(1 for s in range(SERVICES) if service_spec(s)["distinct"]) * math.ceil(seeded["tasks"] / SERVICES / 100)
    pages_ok = all(c.get("ecs:ListContainerInstances", 0) <= hundreds + distinct and c.get("ecs:DescribeContainerInstances", 0) <= hundreds + 2
                   for _, _, c, _ in live)
    examined_ok = all(c.get("ecs:DescribeTasks", 0) <= c.get("ecs:ListTasks", 0) and c.get("ecs:GetTaskProtection", 0) <= c.get("ecs:ListTasks", 0)
                      for _, _, c, _ in live)
    worst_plan = max(plan_results, key=lambda r: r["cpu_s"]) if plan_results else None
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    lines = [
        f"# scale-in-cleaner over {seeded['instances']:,} container instances and {seeded['tasks']:,} tasks",
        "",
        f"One cluster; {seeded['services']} services; four Auto Scaling groups in three zones, two behind capacity providers "
        "(half the services on one provider or the other, half with the EC2 launch type on the other groups); one service in "
        "ten only on `gold` instances (`memberOf`), one in twenty with `distinctInstance`, one in seven with a static host "
        "port. Most instances full, one in twenty running a task or two, a few empty. MAX_REMOVALS_PER_RUN=10, "
        "SCALE_IN_BUDGET_PERCENT=10, no cool-down; the release binary at 128 MB through the Lambda Runtime API stand-in. "
        f"Seeding the emulator took {seeding:.0f} s through its bulk endpoint.",
        "",
        "Targets (issue 24):",
        f"- at most one ListContainerInstances and one DescribeContainerInstances per 100 instances ({hundreds} each), plus what "
        f"the chosen ones need (the pages of `task:group` lookups of the groups whose hosts a rule needs, here up to {distinct}; one "
        f"DescribeContainerInstances before the drains and one before the terminations): {met(pages_ok)};",
        "- no call kind that grows with the task count except for instances examined (ListTasks is one per instance "
        f"examined; DescribeTasks and GetTaskProtection never more): {met(examined_ok)};",
        f"- under 128 MB of memory: {met(worst_rss < 128)} (most: {worst_rss:.1f} MiB, every task read included);",
    ]
    if worst_plan:
        scaled = worst_plan["cpu_s"] / CORE_SHARE_128
        lines.append(f"- under 10 s of CPU for planning at 128 MB's share of a core (1/{1 / CORE_SHARE_128:.0f}): {met(scaled < 10)} "
                     f"(worst scenario below: {worst_plan['cpu_s']:.2f} s here, {scaled:.1f} s scaled).")
    lines += [
        "",
        "## Runs",
        "",
        *table(rust),
        *table(blocked)[2:],
        "",
        "Calls by operation:",
        *by_operation(live),
        "",
        f"Init (process start to its first request for work): {init_ms:.0f} ms. The last row is the same fleet with every task "
        "under scale-in protection: no candidate can go, so the planner reads the tasks of every candidate (the look-ahead "
        "doubles each round) and the calls grow with the instances examined, not with the tasks.",
        "",
        "## Planning alone",
        "",
        "The planner's CPU time, release build, over a synthetic cluster of the same size (`cargo bench -p scale-in-cleaner "
        "--bench plan`; a run's rounds replayed, each plan reading what the last wanted). Scaled: divided by 128 MB's share "
        "of a core.",
        "",
        "| scenario | rounds | instances read | CPU | scaled to 128 MB | largest plan | removals |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in plan_results:
        lines.append(f"| {r['scenario']} | {r['rounds']} | {r['examined']:,} | {r['cpu_s']:.2f} s | {r['cpu_s'] / CORE_SHARE_128:.1f} s | "
                     f"{r['largest_plan_s'] * 1000:.0f} ms | drain {r['drain']}, terminate {r['terminate']} |")
    lines += [
        "",
        "Before the planner was made O(n log n) (same benchmark): 8.69 s of CPU for the typical run (3.13 s for its largest plan), "
        "33.9 s when every candidate was read.",
        "",
        "## Python peer (omerxx/ecscale's algorithm, bench/peers/), same fleet",
        "",
        *table(peer),
        "",
        f"Init: {peer_init_ms:.0f} ms. The peer reads no task and checks no placement: it drains every empty instance and the "
        "one with the most free memory when the cluster's reservation is low, whatever runs on it.",
        "",
        "Durations are against the local emulator (Python, one process), so they measure the emulator more than the function.",
    ]
    report.write(out, lines)


if __name__ == "__main__":
    main()
