"""Benchmark: the drainers' and the scale-in-cleaner's release binaries next to Python peers doing the same
job, the way Lambda runs both.

Both run behind the Lambda Runtime API stand-in on loopback, against the local emulator: the Rust binary
as a `provided.al2023` bootstrap, the peer (bench/peers/, boto3, the algorithm of AWS's public sample, or
omerxx/ecscale's for scale-in) under the official Python runtime interface client, `awslambdaric`. Each
side gets its own emulator, seeded the same way. Reported per side: init (process start to its first
request for work; median of several cold starts), per-event time (median and p99: a Spot warning's or a
scale-in run's invocation; a termination from the TerminateInstanceInAutoScalingGroup call to its
completed lifecycle action), invocation time and invocations per event (what Lambda bills), peak memory
of a sandbox (VmHWM), AWS calls per event (the emulator's counters, the harness's own calls left out),
and the zipped deployment package. Not a test: nothing here passes or fails on timing; the report says
which targets were met.

Usage: python bench/compare.py <dir with release binaries> <output.md> [dir with arm64 bootstraps]
(BENCH_ONLY=<binary>[,<binary>] runs only those jobs.)
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

import report  # noqa: E402
from report import draining_fleet, fleet, pct, peak_rss_mib  # noqa: E402
from scale_in_cleaner import seed  # noqa: E402
from shipshape_emulator.client import REGION, Emulator, sns_event  # noqa: E402
from shipshape_emulator.lambda_runtime import FunctionProcess, Result  # noqa: E402
COLD_STARTS = 5
SPOT_EVENTS = 100
TERMINATIONS = 50
FLEET = 1000
SCALE_IN_RUNS = 3


@dataclass
class Side:
    name: str
    command: list[str]
    env: dict[str, str]
    package: bytes
    init_ms: list[float] = field(default_factory=list)
    durations_ms: list[float] = field(default_factory=list)  # each invocation
    per_event_ms: list[float] = field(default_factory=list)  # each event, start to end of the job
    peak_rss_mib: float = 0.0
    calls: int = 0
    calls_by_operation: dict[str, int] = field(default_factory=dict)
    own_calls: Counter[str] = field(default_factory=Counter)  # the harness's, not the function's
    still_stopping: int = 0  # events completed while tasks of the instance were not yet STOPPED
    events: int = 0
    invocations: int = 0
    note: str = ""


def cold_starts(side: Side, url: str) -> None:
    for _ in range(COLD_STARTS):
        with FunctionProcess(side.command, {**side.env, "AWS_ENDPOINT_URL": url}, name=side.name, on_log=lambda _: None) as fn:
            side.init_ms.append(fn.init_ms)


def run(side: Side, aws: Emulator, feed: Callable[[Callable[[Any], Result]], None], sandboxes: int = 1) -> None:
    """Cold starts, then `sandboxes` warm processes fed every event by `feed`; `invoke` may be called from
    several threads at once, each call taking a free sandbox, as Lambda runs simultaneous events."""
    url = aws.url
    cold_starts(side, url)
    with contextlib.ExitStack() as stack:
        free: queue.Queue[FunctionProcess] = queue.Queue()
        started = []
        for n in range(sandboxes):
            fn = stack.enter_context(FunctionProcess(
                side.command, {**side.env, "AWS_ENDPOINT_URL": url}, name=side.name, timeout_s=120, on_log=lambda _: None))
            started.append(fn)
            free.put(fn)
        aws.reset_calls()
        lock = threading.Lock()

        def invoke(payload: Any) -> Result:
            fn = free.get()
            try:
                result = fn.invoke(payload)
            finally:
                free.put(fn)
            if not result.ok:
                raise SystemExit(f"{side.name}: {result.payload}")
            with lock:
                side.durations_ms.append(result.duration_ms)
                side.invocations += 1
            return result

        feed(invoke)
        side.peak_rss_mib = max(peak_rss_mib(fn.proc.pid) for fn in started if fn.proc is not None)
    side.calls_by_operation = {op: n - side.own_calls[op] for op, n in aws.calls().items() if n > side.own_calls[op]}
    side.calls = sum(side.calls_by_operation.values())


def spot(side: Side) -> None:
    with Emulator() as aws:
        ids, _ = fleet(aws, "fleet", SPOT_EVENTS, "bench")
        for other in ("batch", "staging"):  # the clusters an account also has
            aws.ecs.create_cluster(clusterName=other)
        template = json.loads((ROOT / "events" / "spot-interruption-terminate.json").read_text())

        def feed(invoke: Callable[[Any], Result]) -> None:
            for instance_id in ids:
                event = json.loads(json.dumps(template))
                event["detail"]["instance-id"] = instance_id
                side.per_event_ms.append(invoke(event).duration_ms)

        run(side, aws, feed)
        draining = sum(
            1 for page in [aws.ecs.list_container_instances(cluster="bench", status="DRAINING")]
            for _ in page["containerInstanceArns"])
        side.events = SPOT_EVENTS
        side.note = f"{draining}/{SPOT_EVENTS} DRAINING"


def lifecycle(side: Side) -> None:
    """50 terminations at once. The Rust drainer runs in one sandbox (reserved concurrency 1): each message,
    then a reconcile every second (every minute, deployed) until every action is over. The peer runs as
    many sandboxes as there are messages, each sleeping and publishing its message again while tasks run."""
    with Emulator() as aws:
        ids, arns, topic, queue = draining_fleet(aws, TERMINATIONS)
        rust = side.name == "Rust"
        if rust:
            side.env = {**side.env, "LIFECYCLE_TOPIC_ARN": topic, "AUTO_SCALING_GROUPS": "web"}
        tick = json.loads((ROOT / "events" / "lifecycle-aws-scheduled-rule.json").read_text())

        def feed(invoke: Callable[[Any], Result]) -> None:
            sqs = aws.client("sqs", harness=True)
            asg = aws.client("autoscaling", harness=True)
            began = time.monotonic()
            for instance_id in ids:  # all at once, as a scale-in of 50 does
                asg.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
            deadline = began + 600
            running: list[Future[Result]] = []
            with ThreadPoolExecutor(max_workers=1 if rust else TERMINATIONS) as pool:
                last_tick = time.monotonic()
                while len(aws.lifecycle_actions()["finished"]) < TERMINATIONS and time.monotonic() < deadline:
                    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                    for m in got:
                        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
                        if "autoscaling:TEST_NOTIFICATION" not in m["Body"]:
                            running.append(pool.submit(invoke, sns_event(topic, m["Body"])))
                    if rust and time.monotonic() - last_tick >= 1:
                        last_tick = time.monotonic()
                        running.append(pool.submit(invoke, tick))
                    for f in [f for f in running if f.done()]:
                        f.result()  # a failed invocation ends the benchmark, naming it
                        running.remove(f)
                    if not got:
                        time.sleep(0.1)
                for f in running:
                    f.result()
            t0 = time.time() - (time.monotonic() - began)
            for a in aws.lifecycle_actions()["finished"]:
                side.per_event_ms.append((report.at(a["at"]) - t0) * 1000)
                if a["how"] != "completed":
                    side.still_stopping += 1
            side.still_stopping += sum(1 for t in aws.terminations() if t["tasks_not_stopped"])

        run(side, aws, feed, sandboxes=1 if rust else TERMINATIONS)
        side.events = TERMINATIONS
        side.note = (f"{len(aws.lifecycle_actions()['finished'])}/{TERMINATIONS} lifecycle actions over; "
                     f"{side.still_stopping} expired or with tasks not yet STOPPED")


def scale_in(side: Side) -> None:
    with Emulator() as aws:
        seed(aws, FLEET)

        def feed(invoke: Callable[[Any], Result]) -> None:
            done = []
            for _ in range(SCALE_IN_RUNS):
                result = invoke({})
                side.per_event_ms.append(result.duration_ms)
                done.append(result.payload["totals"])
                time.sleep(1.5)  # drained service tasks stop before the next run
            side.note = "; ".join(", ".join(f"{k} {v}" for k, v in t.items() if v) or "nothing" for t in done)

        run(side, aws, feed)
        side.events = SCALE_IN_RUNS
        left = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["fleet"])["AutoScalingGroups"][0]["DesiredCapacity"]
        side.note = f"per run: {side.note}; desired capacity {FLEET} -> {left}"


def row(job: str, s: Side) -> str:
    return (f"| {job} | {s.name} | {statistics.median(s.init_ms):.0f} ms | {statistics.median(s.per_event_ms):.1f} ms | "
            f"{pct(s.per_event_ms, 99):.1f} ms | {sum(s.durations_ms) / s.events:.1f} ms | {s.invocations / s.events:.1f} | "
            f"{s.peak_rss_mib:.1f} MiB | {s.calls / s.events:.1f} | {len(s.package) / 1024:.0f} KiB | {s.note} |")


def calls(s: Side) -> str:
    return ", ".join(f"{op} {n / s.events:.1f}" for op, n in sorted(s.calls_by_operation.items(), key=lambda kv: -kv[1]))


def verdict(rust: Side, peer: Side) -> str:
    init_r, init_p = statistics.median(rust.init_ms), statistics.median(peer.init_ms)
    checks = [
        ("init < 30 ms", init_r < 30), ("init >= 10x faster", init_p / init_r >= 10),
        ("peak memory < 40 MiB", rust.peak_rss_mib < 40), ("memory >= 3x lower", peer.peak_rss_mib / rust.peak_rss_mib >= 3),
        ("per-event median no worse", statistics.median(rust.per_event_ms) <= statistics.median(peer.per_event_ms)),
        ("zipped < 4 MB", len(rust.package) < 4_000_000),
    ]
    return ", ".join(f"{name}: {'met' if ok else '**missed**'}" for name, ok in checks) + (
        f" (init {init_p / init_r:.0f}x, memory {peer.peak_rss_mib / rust.peak_rss_mib:.1f}x)")


def main() -> None:
    release, out = Path(sys.argv[1]), Path(sys.argv[2])
    arm64 = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    base = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    peers = ROOT / "bench" / "peers"
    lines = []
    results = []

    def package(binary: str) -> tuple[bytes, str]:
        built = arm64 / f"{''.join(w.capitalize() for w in binary.split('-'))}Function" / "bootstrap" if arm64 else None
        if built and built.exists():
            return report.zipped({"bootstrap": built.read_bytes()}), "arm64"
        return report.zipped({"bootstrap": (release / binary).read_bytes()}), "x86_64 (no arm64 build given)"

    jobs = [
        ("spot-drainer", f"{SPOT_EVENTS} Spot warnings, one cluster of {SPOT_EVENTS} instances among 3", spot,
         {"CLUSTERS": "bench"}, "spot_drainer", {}),
        ("lifecycle-drainer", f"{TERMINATIONS} terminations at once, 2 tasks each (stopping 1.5 s after the drain)", lifecycle,
         {"CLUSTERS": "web", "LIFECYCLE_HOOK_NAMES": "drain", "RECONCILE_PERIOD_SECONDS": "1", "SETTLE_SECONDS": "1"},
         "lifecycle_drainer", {"SLEEP_SECONDS": "1"}),
        ("scale-in-cleaner", f"{SCALE_IN_RUNS} runs over one cluster of {FLEET:,} instances, 20 of them empty", scale_in,
         {"CLUSTERS": "fleet", "MIN_INSTANCE_AGE_MINUTES": "0", "MAX_REMOVALS_PER_RUN": "20", "SCALE_IN_COOLDOWN_MINUTES": "0"},
         "scale_in_cleaner", {}),
    ]
    only = [j for j in os.environ.get("BENCH_ONLY", "").split(",") if j]
    for binary, title, scenario, rust_env, peer_module, peer_env in jobs:
        if only and binary not in only:
            continue
        zip_rust, arch = package(binary)
        rust = Side("Rust", [str(release / binary)], {**base, **rust_env}, zip_rust)
        peer = Side("Python peer", [sys.executable, "-m", "awslambdaric", f"{peer_module}.handler"],
                    {**base, **peer_env, "PYTHONPATH": str(peers)}, report.zipped({f"{peer_module}.py": (peers / f"{peer_module}.py").read_bytes()}))
        for side in (rust, peer):
            print(f"{binary}: {side.name} ...", flush=True)
            scenario(side)
        results.append((binary, title, arch, rust, peer))

    lines += [
        "# Rust functions next to Python peers",
        "",
        "Each function's release binary and a Python peer (boto3 under `awslambdaric`, the algorithm of AWS's public",
        "sample, or omerxx/ecscale's for scale-in; see `bench/peers/`) run the same job through the Lambda Runtime API stand-in against the local emulator.",
        f"Init: median of {COLD_STARTS} cold starts, process start to the first request for work. Per event: a Spot",
        "warning's invocation; a scale-in run's invocation; for a termination, from the TerminateInstanceInAutoScalingGroup",
        "call to its completed lifecycle action (the drain included). Billed: invocation time per event, summed over the event's invocations.",
        "Peak memory: the largest VmHWM of a sandbox. Calls: AWS API calls per event. Zipped: the deployment package",
        "(Rust: the bootstrap; Python: the handler, as boto3 comes with the runtime).",
        "",
        "| job | implementation | init | per event, median | p99 | billed per event | invocations per event | peak memory | calls per event | zipped | result |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for binary, title, arch, rust, peer in results:
        lines += [row(f"{binary}: {title}", rust), row(f"{binary}: {title}", peer)]
    lines += ["", "Targets:"]
    for binary, _title, arch, rust, peer in results:
        lines.append(f"- {binary} (zip of the {arch} bootstrap): {verdict(rust, peer)}.")
    lines += ["", "Calls per event, by operation:"]
    for binary, _title, _arch, rust, peer in results:
        lines += [f"- {binary}, {side.name}: {calls(side)}" for side in (rust, peer)]
    lines += [
        "",
        "Notes: times are against a single-process Python emulator on loopback, which dominates them; they compare",
        "the two implementations under the same conditions, not what AWS would measure. The 50 terminations: the Rust",
        "drainer runs in one sandbox (reserved concurrency 1), each lifecycle message and a reconcile every second (every",
        "minute deployed; bench/results/drain-scale.md has the drains at scale on AWS's clock) until every action is over;",
        "the peer follows the sample: one sandbox per message, and while tasks still run it sleeps (here 1 s; 5 s in the",
        "sample) and publishes the message again, so a drain takes several invocations. The emulator starts stopping a",
        "drained instance's service tasks 1.5 s after the drain began; each then takes 0.9 s (DEACTIVATING, STOPPING,",
        "DEPROVISIONING) to be STOPPED. The peer, as the sample does, completes the lifecycle action when the",
        "container instance's `runningTasksCount` is 0, which AWS stops counting a task in as soon as its desired",
        "status is STOPPED, while its containers still shut down; the Rust drainer completes it when every task is",
        "STOPPED (the \"result\" column says how often an instance went with tasks not yet STOPPED).",
        "",
        "The scale-in peer follows omerxx/ecscale (AWS has no sample for this job): it drains every empty instance,",
        "terminates drained ones on a later run, and reads nothing but the container instances. The Rust cleaner",
        "terminates an idle instance in the same run, also drains lightly used ones while the CPU and memory reserve",
        "holds (here up to 20 per run, so it removes 40 where the peer removes 20), lists and describes the",
        "cluster's tasks to tell daemon and standalone tasks from service tasks (an instance running only a daemon",
        "is idle; one running a standalone task is never drained), and checks right before each termination that",
        "no task is left (one ListTasks each): those task reads are most of its calls, and at about 0.1 s per call",
        "in the emulator at this size, most of its time.",
    ]
    report.write(out, lines)


if __name__ == "__main__":
    main()
