"""Benchmark: drains at scale under ECS's request throttling: the reconcile, the design it replaced, and the
Python peer.

Each job runs on a fresh emulator with the account's request throttling on (a token bucket per action
family, as ECS documents it, and the one Auto Scaling keeps; the account's other callers take `BACKGROUND`
calls a second from each ECS family), on AWS's own clock: hooks of 300 s, a reconcile every 60 s, a poll
every 15 s. Every instance runs two service tasks, which ECS moves away once the instance is DRAINING (they
stop `STOP_AFTER_S` after the drain began, as a load balancer's deregistration delay would have it). Jobs:

- an instance refresh of `FLEET` instances in batches of `BATCH`: each batch terminated at once (by Auto
  Scaling itself: the harness's calls take no token of the account's), the next once every action of the
  batch is over;
- a scale-in of `SCALE_IN` instances at once, and one of `SMALL` at once.

Designs:

- **reconcile**: this lifecycle-drainer, one invocation at a time (reserved concurrency 1: the lifecycle
  messages, the stopped-task events and the schedule's ticks wait in line, as Lambda's queue for
  asynchronous invocations holds them);
- **held invocation**: the drainer before the reconcile (its release binary, built from the last commit
  before it): one invocation per draining instance, polling ListTasks and DescribeTasks every 15 s for up
  to 600 s, then an SNS continuation; each invocation in its own sandbox, as Lambda scales out;
- **Python peer**: AWS's public sample (bench/peers/lifecycle_drainer.py): each invocation drains, and while
  tasks run, sleeps 5 s and publishes the message again. At most `PEER_SANDBOXES` sandboxes (Lambda would
  run as many as there are messages; fewer only slows the peer and lowers its call rate). Scale-ins only.

Both drainers also get the stopped-task events (`FastDrainCompletion`). Measured: actions completed and
expired, tasks an instance took down with it (none if every drain was whole), our calls in the busiest
minute per throttled family against its sustained rate, throttled calls, calls, invocations and GB-seconds
(billed duration at 128 MB) per drain, sandboxes, and the lag from an instance's last task STOPPED to its
completed action. Not a test: nothing fails on a number.

Usage: python bench/drain_scale.py <release dir> <held-invocation lifecycle-drainer binary, or -> <output.md>
(BENCH_JOBS=refresh,scale-in,small runs only those jobs.)
"""

from __future__ import annotations

import json
import os
import queue
import statistics
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

import report  # noqa: E402
from shipshape_emulator.client import REGION, Emulator, sns_event  # noqa: E402
from shipshape_emulator.lambda_runtime import FunctionProcess  # noqa: E402

FLEET, BATCH = 1000, 100
SCALE_IN, SMALL, KEEP = 300, 30, 100
STOP_AFTER_S = 30.0  # a load balancer's deregistration delay, shortened
BACKGROUND = 5.0  # calls a second the account's other callers take from each ECS family
HEARTBEAT_TIMEOUT = 300  # the template's default HookHeartbeatTimeout
PEER_SANDBOXES = 60
MEMORY_GB = 128 / 1024
LOGS = open(os.environ["BENCH_LOGS"], "a") if os.environ.get("BENCH_LOGS") else None  # noqa: SIM115
TICK = json.loads((ROOT / "events" / "lifecycle-aws-scheduled-rule.json").read_text())
BASE_ENV = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench"}


def at(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class Design:
    name: str
    command: list[str]
    env: dict[str, str]
    serial: bool  # reserved concurrency 1
    period_s: float | None = None  # the schedule's period, real seconds
    max_sandboxes: int = 100_000
    stopped_events: bool = True


@dataclass
class Run:
    """What one design did in one job."""

    design: str
    drains: int = 0
    completed: int = 0
    expired: int = 0
    taken_down: int = 0  # tasks not STOPPED when their instance was terminated
    invocations: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    billed_s: float = 0.0
    sandboxes: int = 0
    lags: list[float] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    families: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    outcomes: list[Any] = field(default_factory=list)


class Lambda:
    """Invokes a design's function the way Lambda would: one at a time in line, or each in a free sandbox
    (a new one started when none is free, up to the design's limit)."""

    def __init__(self, design: Design, env: dict[str, str], stack: ExitStack, run: Run) -> None:
        self.design, self.env, self.stack, self.run = design, env, stack, run
        self.free: queue.Queue[FunctionProcess] = queue.Queue()
        self.lock = threading.Lock()
        self.line: queue.Queue[tuple[str, Any, int]] = queue.Queue()
        self.busy = 0
        self.idle = threading.Event()
        self.idle.set()
        self.threads: list[threading.Thread] = []
        if design.serial:
            self.free.put(self._start())
            threading.Thread(target=self._serve_line, daemon=True).start()

    def _start(self) -> FunctionProcess:
        with self.lock:
            self.run.sandboxes += 1
        fn = FunctionProcess(self.design.command, self.env, name=self.design.name, timeout_s=900, on_log=self._log)
        return self.stack.enter_context(fn)

    def _log(self, line: str) -> None:
        if LOGS is not None:
            with self.lock:
                LOGS.write(f"{time.time():.3f} {line}\n")

    def submit(self, kind: str, payload: Any) -> None:
        with self.lock:
            self.busy += 1
            self.idle.clear()
        if self.design.serial:
            self.line.put((kind, payload, 0))
        else:
            t = threading.Thread(target=self._one, args=(kind, payload, 0), daemon=True)
            t.start()

    def _serve_line(self) -> None:
        while True:
            kind, payload, attempt = self.line.get()
            self._one(kind, payload, attempt)

    def _one(self, kind: str, payload: Any, attempt: int) -> None:
        try:
            fn = self.free.get_nowait()
        except queue.Empty:
            with self.lock:
                room = self.run.sandboxes < self.design.max_sandboxes
            fn = self._start() if room else self.free.get()
        try:
            result = fn.invoke(payload)
        finally:
            self.free.put(fn)
        with self.lock:
            self.run.outcomes.append((kind, time.time(), result.duration_ms, result.payload))
            self.run.invocations[kind] += 1
            self.run.billed_s += result.duration_ms / 1000
            if not result.ok:
                self.run.errors += 1
        # An asynchronous invocation that fails is retried twice by Lambda.
        if not result.ok and attempt < 2:
            if self.design.serial:
                self.line.put((kind, payload, attempt + 1))
                return
            self._one(kind, payload, attempt + 1)
            return
        with self.lock:
            self.busy -= 1
            if self.busy == 0:
                self.idle.set()


def fleet(aws: Emulator, count: int, heartbeat_s: int) -> tuple[list[str], dict[str, str], str, str]:
    """Group and cluster "web": `count` instances, two service tasks each, a terminating hook "drain" that
    notifies topic "hooks": (instance ids, instance by container instance ARN, topic ARN, queue URL)."""
    ids = aws.group("web", count)
    aws.ecs.create_cluster(clusterName="web")
    aws.ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 512}])
    by_arn = {}
    for i in ids:
        arn = aws.register("web", i)
        by_arn[arn] = i
        aws.ecs.start_task(cluster="web", taskDefinition="web", containerInstances=[arn, arn], group="service:web")
    topic, queue_url = aws.topic("hooks")
    aws.autoscaling.put_lifecycle_hook(
        LifecycleHookName="drain", AutoScalingGroupName="web", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=heartbeat_s, DefaultResult="CONTINUE", NotificationTargetARN=topic,
        RoleARN="arn:aws:iam::123456789012:role/hooks")
    return ids, by_arn, topic, queue_url


class Feeds:
    """What reaches the function: the hook's messages (SNS), stopped tasks (EventBridge) and the schedule."""

    def __init__(self, aws: Emulator, fn: Lambda, topic: str, queue_url: str, by_arn: dict[str, str]) -> None:
        self.aws, self.fn, self.topic, self.queue_url, self.by_arn = aws, fn, topic, queue_url, by_arn
        self.sqs = aws.client("sqs", harness=True)
        self.cursor = aws.events()["cursor"]
        self.last_stop: dict[str, float] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._messages, daemon=True),
                        threading.Thread(target=self._stops, daemon=True)]
        if fn.design.period_s:
            self.threads.append(threading.Thread(target=self._ticks, daemon=True))
        for t in self.threads:
            t.start()

    def _messages(self) -> None:
        while not self.stop.is_set():
            # No long polling: the emulator answers one request at a time, and a long poll would hold the rest.
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not got.get("Messages"):
                time.sleep(0.2)
            for m in got.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                if "autoscaling:TEST_NOTIFICATION" not in m["Body"]:
                    self.fn.submit("lifecycle message", sns_event(self.topic, m["Body"]))

    def _stops(self) -> None:
        while not self.stop.is_set():
            feed = self.aws.events(self.cursor)
            self.cursor = feed["cursor"]
            for e in feed["events"]:
                d = e["detail"]
                if e["detail-type"] != "ECS Task State Change" or d.get("lastStatus") != "STOPPED":
                    continue
                instance = self.by_arn.get(d.get("containerInstanceArn", ""))
                if instance is not None:
                    self.last_stop[instance] = max(self.last_stop.get(instance, 0.0), at(d["stoppedAt"]))
                    if self.fn.design.stopped_events:
                        self.fn.submit("stopped task", e)
            time.sleep(0.1)

    def _ticks(self) -> None:
        assert self.fn.design.period_s is not None
        while not self.stop.wait(self.fn.design.period_s):
            self.fn.submit("schedule", TICK)

    def close(self) -> None:
        self.stop.set()


def over(aws: Emulator, instances: set[str]) -> dict[str, dict[str, Any]]:
    """The finished lifecycle actions of these instances, by instance."""
    return {a["instance_id"]: a for a in aws.lifecycle_actions()["finished"] if a["instance_id"] in instances}


def wait_over(aws: Emulator, instances: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(over(aws, instances)) < len(instances) and time.monotonic() < deadline:
        time.sleep(0.5)


def settle(aws: Emulator, fn: Lambda, feeds: Feeds, run: Run, instances: set[str], started: float) -> None:
    """Waits for the last invocations, then reads what the job did."""
    feeds.close()
    fn.idle.wait(120)
    run.seconds = time.monotonic() - started
    finished = over(aws, instances)
    run.drains = len(instances)
    run.completed = sum(1 for a in finished.values() if a["how"] == "completed")
    run.expired = sum(1 for a in finished.values() if a["how"] != "completed")
    run.taken_down = sum(len(t["tasks_not_stopped"]) for t in aws.terminations() if t["instance_id"] in instances)
    run.lags = [at(finished[i]["at"]) - feeds.last_stop[i] for i in finished if i in feeds.last_stop]
    run.calls = aws.calls()
    run.families = aws.throttling_status()["families"]


def env_for(design: Design, topic: str) -> dict[str, str]:
    """Each design's settings as deployed (defaults), and where its messages come from."""
    own = {
        "reconcile": {"LIFECYCLE_TOPIC_ARN": topic, "AUTO_SCALING_GROUPS": "web"},
        "held invocation": {"CONTINUATION_TOPIC_ARN": topic},
        "Python peer": {"PYTHONPATH": str(ROOT / "bench" / "peers")},
    }[design.name]
    return {**BASE_ENV, **design.env, **own}


def start(design: Design, count: int) -> tuple[Emulator, ExitStack, Run, list[str], Lambda, Feeds]:
    stack = ExitStack()
    aws = stack.enter_context(Emulator())
    ids, by_arn, topic, queue_url = fleet(aws, count, HEARTBEAT_TIMEOUT)
    aws.draining(stop_after_ms=int(STOP_AFTER_S * 1000), step_ms=1000)
    run = Run(design.name)
    deployed = Design(design.name, design.command, env_for(design, topic), design.serial, design.period_s,
                      design.max_sandboxes, design.stopped_events)
    fn = Lambda(deployed, {**deployed.env, "AWS_ENDPOINT_URL": aws.url}, stack, run)
    aws.reset_calls()
    aws.throttling(background={f: BACKGROUND for f in ("ecs:cluster-resource-read", "ecs:cluster-resource-modify")})
    feeds = Feeds(aws, fn, topic, queue_url, by_arn)
    return aws, stack, run, ids, fn, feeds


def refresh(design: Design) -> Run:
    aws, stack, run, ids, fn, feeds = start(design, FLEET)
    with stack:
        asg, ecs = aws.client("autoscaling", harness=True), aws.client("ecs", harness=True)
        began = time.monotonic()
        known = set(ids)
        for b in range(0, FLEET, BATCH):
            batch = ids[b:b + BATCH]
            for i in batch:
                asg.terminate_instance_in_auto_scaling_group(InstanceId=i, ShouldDecrementDesiredCapacity=False)
            wait_over(aws, set(batch), 2 * HEARTBEAT_TIMEOUT + 60)
            print(f"  {design.name}: batch {b // BATCH + 1} of {FLEET // BATCH} over after {time.monotonic() - began:.0f} s", flush=True)
            # The replacements the group launches register in the cluster (their agents start).
            group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
            for i in [i["InstanceId"] for i in group["Instances"] if i["InstanceId"] not in known]:
                known.add(i)
                doc = json.dumps({"instanceId": i, "region": REGION})
                ecs.register_container_instance(cluster="web", instanceIdentityDocument=doc)
        settle(aws, fn, feeds, run, set(ids), began)
    return run


def scale_in(design: Design, count: int) -> Run:
    aws, stack, run, ids, fn, feeds = start(design, count + KEEP)
    with stack:
        asg = aws.client("autoscaling", harness=True)
        began = time.monotonic()
        asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=KEEP)
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
        leaving = {i["InstanceId"] for i in group["Instances"] if i["LifecycleState"].startswith("Terminating")}
        wait_over(aws, leaving, HEARTBEAT_TIMEOUT + 120)
        settle(aws, fn, feeds, run, leaving, began)
    return run


FAMILIES = ("ecs:cluster-resource-read", "ecs:cluster-resource-modify", "autoscaling:all")


def row(job: str, r: Run) -> str:
    n = max(1, r.drains)
    peaks = []
    for f in FAMILIES:
        fam = r.families.get(f)
        if fam:
            use = fam["peak_per_minute"] + fam["background_per_second"] * 60
            peaks.append(f"{fam['peak_per_minute']} (+{fam['background_per_second'] * 60:.0f}) / "
                         f"{fam['sustained_per_minute']:.0f}{' **over**' if use > fam['sustained_per_minute'] else ''}")
        else:
            peaks.append("0")
    throttled = sum(fam["throttled"] for fam in r.families.values())
    calls = sum(r.calls.values())
    lag = f"{statistics.median(r.lags):.2f} s / {report.pct(r.lags, 99):.2f} s" if r.lags else "-"
    gbs = f"{r.billed_s * MEMORY_GB / n:.3f}"
    return (f"| {job} | {r.design} | {r.completed}/{r.drains} | {r.expired} | {r.taken_down} | {' | '.join(peaks)} | "
            f"{throttled} | {calls / n:.1f} | {sum(r.invocations.values()) / n:.1f} | {r.sandboxes} | {gbs} | {lag} | "
            f"{r.errors} | {r.seconds:.0f} s |")


def main() -> None:
    release, held, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    drainer = {"CLUSTERS": "web", "LIFECYCLE_HOOK_NAMES": "drain"}
    designs = [Design("reconcile", [str(release / "lifecycle-drainer")], drainer, serial=True, period_s=60)]
    if held != "-":
        designs.append(Design("held invocation", [held], drainer, serial=False))
    peer = Design("Python peer", [sys.executable, "-m", "awslambdaric", "lifecycle_drainer.handler"], {}, serial=False,
                  max_sandboxes=PEER_SANDBOXES, stopped_events=False)
    jobs = [
        ("refresh", f"refresh of {FLEET:,} in batches of {BATCH}", refresh, designs),
        ("scale-in", f"scale-in of {SCALE_IN} at once", lambda d: scale_in(d, SCALE_IN), [*designs, peer]),
        ("small", f"scale-in of {SMALL} at once", lambda d: scale_in(d, SMALL), [*designs, peer]),
    ]
    only = [j for j in os.environ.get("BENCH_JOBS", "").split(",") if j]
    rows, details = [], []
    for key, job, runner, job_designs in jobs:
        if only and key not in only:
            continue
        for d in job_designs:
            print(f"{job}: {d.name} ...", flush=True)
            r = runner(d)
            rows.append(row(job, r))
            print(rows[-1], flush=True)
            ops = ", ".join(f"`{k}` {v / max(1, r.drains):.2f}" for k, v in sorted(r.calls.items(), key=lambda kv: -kv[1]))
            invs = ", ".join(f"{k} {v}" for k, v in sorted(r.invocations.items()))
            details.append(f"- {job}, {d.name}: invocations: {invs}; calls per drain: {ops}")
    lines = [
        "# Drains at scale, under ECS's request throttling",
        "",
        f"`make bench` ({Path(__file__).name}; how it runs is in its docstring). ECS and Auto Scaling throttle the",
        f"account by token bucket; the account's other callers take {BACKGROUND:.0f} calls a second from each ECS family.",
        "Busiest minute: our calls in the busiest 60 s of the family (+ the other callers') against its sustained",
        "rate (refill x 60); **over** when the two together exceed it (the bucket's burst allows that for a while,",
        "then calls are throttled). Lag: from an instance's last task STOPPED to its completed action.",
        "",
        "| job | design | completed | expired | tasks taken down | ECS reads, busiest minute | ECS writes, busiest minute "
        "| Auto Scaling, busiest minute | throttled | calls per drain | invocations per drain | sandboxes | GB-s per drain "
        "| lag median / p99 | failed invocations | took |",
        "|---|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
        *rows,
        "",
        *details,
    ]
    report.write(out, lines)


if __name__ == "__main__":
    main()
