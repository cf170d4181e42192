"""Benchmark: how soon a drain's lifecycle action completes after the instance's last task stopped, with
and without the stopped-task rule (FastDrainCompletion), and the AWS calls per drain.

The release lifecycle-drainer runs as Lambda runs it (the Runtime API stand-in on loopback), one sandbox
per draining instance, against the emulator, with the default poll interval (15 s). A group of TERMINATIONS
instances, each with two service tasks that stop 1.5 s after their instance starts draining, is scaled in
at once; each lifecycle message goes to the function as SNS delivers it. With the rule, every "ECS Task
State Change" to STOPPED from the emulator's event feed also goes to the function, as EventBridge would
send it. Measured per instance, on the emulator's clock: from the last task's `stoppedAt` to the completed
lifecycle action; and the function's AWS calls (the emulator's counters, the harness's own calls left out)
per drain. Not a test: nothing fails on a number.

Usage: python bench/drain_completion.py <release dir> <output.md>
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from queue import Queue
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

import report  # noqa: E402
from shipshape_emulator.client import REGION, Emulator, sns_event  # noqa: E402
from shipshape_emulator.lambda_runtime import FunctionProcess  # noqa: E402

TERMINATIONS = 30
POLL_INTERVAL_SECONDS = 15


def at(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def scenario(binary: Path, with_rule: bool) -> dict[str, Any]:
    with Emulator() as aws, ExitStack() as stack:
        ids, instance_arns, topic, queue = report.draining_fleet(aws, TERMINATIONS)
        arns = dict(zip(instance_arns, ids))
        spare = aws.group("spare", TERMINATIONS)  # where the drains' replacement tasks go
        for i in spare:
            aws.register("web", i)
        env = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_ENDPOINT_URL": aws.url, "CLUSTERS": "web", "LIFECYCLE_HOOK_NAMES": "drain",
               "POLL_INTERVAL_SECONDS": str(POLL_INTERVAL_SECONDS), "CONTINUATION_TOPIC_ARN": topic}
        free: Queue[FunctionProcess] = Queue()
        for _ in range(TERMINATIONS + 4):
            free.put(stack.enter_context(FunctionProcess([str(binary)], env, name="lifecycle-drainer", timeout_s=900, on_log=lambda _: None)))
        own: Counter[str] = Counter()
        lock = threading.Lock()
        invocations = Counter[str]()

        def invoke(payload: Any, kind: str) -> dict[str, Any]:
            fn = free.get()
            try:
                result = fn.invoke(payload)
            finally:
                free.put(fn)
            if not result.ok:
                raise SystemExit(f"lifecycle-drainer: {result.payload}")
            with lock:
                invocations[kind] += 1
            return result.payload

        cursor = aws.events()["cursor"]
        aws.reset_calls()
        own["autoscaling:SetDesiredCapacity"] += 1
        aws.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
        last_stop: dict[str, float] = {}
        deadline = time.monotonic() + 300
        with ThreadPoolExecutor(max_workers=TERMINATIONS + 4) as pool:
            running: list[Future[Any]] = []
            while len(aws.lifecycle_actions()["finished"]) < TERMINATIONS and time.monotonic() < deadline:
                own["sqs:ReceiveMessage"] += 1
                for m in aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
                    own["sqs:DeleteMessage"] += 1
                    aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
                    if "autoscaling:TEST_NOTIFICATION" not in m["Body"]:
                        running.append(pool.submit(invoke, sns_event(topic, m["Body"]), "lifecycle message"))
                feed = aws.events(cursor)
                cursor = feed["cursor"]
                for e in feed["events"]:
                    d = e["detail"]
                    if e["detail-type"] == "ECS Task State Change" and d.get("lastStatus") == "STOPPED" and d.get("containerInstanceArn") in arns:
                        instance = arns[d["containerInstanceArn"]]
                        last_stop[instance] = max(last_stop.get(instance, 0.0), at(d["stoppedAt"]))
                        if with_rule:
                            running.append(pool.submit(invoke, e, "stopped task"))
                for f in [f for f in running if f.done()]:
                    f.result()
                    running.remove(f)
                time.sleep(0.1)
            for f in running:
                f.result()
        finished = {a["instance_id"]: at(a["at"]) for a in aws.lifecycle_actions()["finished"] if a["instance_id"] in last_stop}
        delays = [finished[i] - last_stop[i] for i in finished]
        calls = {op: n - own[op] for op, n in aws.calls().items() if n > own[op]}
        # The feed reads and the harness's lifecycle_actions reads are control requests, not counted.
        return {"delays": delays, "calls": calls, "invocations": dict(invocations), "completed": len(finished)}


def main() -> None:
    release, out = Path(sys.argv[1]), Path(sys.argv[2])
    binary = release / "lifecycle-drainer"
    rows = []
    results = {}
    for name, with_rule in (("polling only (every 15 s)", False), ("with the stopped-task rule", True)):
        r = scenario(binary, with_rule)
        results[name] = r
        per_drain = sum(r["calls"].values()) / max(1, r["completed"])
        rows.append(
            f"| {name} | {r['completed']}/{TERMINATIONS} | {statistics.median(r['delays']):.2f} s | {report.pct(r['delays'], 99):.2f} s | "
            f"{per_drain:.1f} | {', '.join(f'{k} {v}' for k, v in sorted(r['invocations'].items()))} |"
        )
        print(rows[-1], flush=True)
    lines = [
        "# lifecycle-drainer: from the last task's stop to the completed lifecycle action",
        "",
        f"`make bench` ({Path(__file__).name}): {TERMINATIONS} instances drained at once (a scale-in), two service tasks each,",
        "stopping 1.5 s after the drain began; the release binary, one Lambda sandbox per drain, against the emulator;",
        f"`POLL_INTERVAL_SECONDS={POLL_INTERVAL_SECONDS}` (the default, ±10 % jitter). Times on the emulator's clock.",
        "",
        "| | completed | median | p99 | AWS calls per drain | invocations |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Calls by operation:",
        "",
    ]
    for name, r in results.items():
        lines.append(f"- {name}: " + ", ".join(f"`{op}` {n}" for op, n in sorted(r["calls"].items())))
    lines += [
        "",
        "Polling completes at the first poll after the last stop. Here the tasks stop 1.5 s into the drain, just",
        "after its first poll, so the wait is nearly a whole interval; stops at random times (a load balancer's",
        "deregistration delay, a slow shutdown) wait half an interval on average. The rule completes within the",
        "event's delivery (here the harness reads the feed every 0.1 s; EventBridge typically delivers within",
        "seconds). It costs one short invocation per stopped task: one finds the instance empty and completes",
        "the action, the others find tasks left or the action over (two stops of the same instance at once may",
        "both try: one completion succeeds, the other is told the action is over). The poll stays as the safety",
        "net and, at its next turn, finds the action completed.",
    ]
    report.write(out, lines)


if __name__ == "__main__":
    main()
