"""``make demo``: the functions' real binaries, run the way Lambda runs them, against the local emulator.

Usage: ``python demo.py <directory with the built binaries>`` (the Makefile builds them first).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from shipshape_emulator.client import REGION, Emulator, health_event, sns_event
from shipshape_emulator.lambda_runtime import FunctionProcess

ROOT = Path(__file__).resolve().parents[2]
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5


def say(text: str) -> None:
    print(f"\n{BOLD}{text}{RESET}", flush=True)


def log_line(line: str) -> None:
    print(f"    {DIM}log | {line}{RESET}", flush=True)


def metrics_line(line: str) -> None:
    """Only the invocation's metrics (the Embedded Metric Format line CloudWatch turns into metrics)."""
    if '"_aws"' in line:
        log_line(line)


def show_cluster(aws: Emulator, cluster: str) -> None:
    arns = aws.ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    described = aws.ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
    print(f"    {'EC2 instance':<22}{'status':<11}{'tasks':>5}  container instance")
    for ci in described["containerInstances"]:
        colour = GREEN if ci["status"] == "ACTIVE" else RED
        print(
            f"    {ci['ec2InstanceId']:<22}{colour}{ci['status']:<11}{RESET}"
            f"{ci['runningTasksCount'] + ci['pendingTasksCount']:>5}  {ci['containerInstanceArn'].rsplit('/', 1)[-1]}"
        )


def invoke(fn: FunctionProcess, aws: Emulator, title: str, event: Any, show: Any = None) -> Any:
    say(title)
    aws.reset_calls()
    result = fn.invoke(event)
    calls = aws.calls()
    total = sum(calls.values())
    detail = ", ".join(f"{k.split(':', 1)[1]} x{v}" if v > 1 else k.split(":", 1)[1] for k, v in calls.items())
    status = f"{GREEN}ok{RESET}" if result.ok else f"{RED}error {result.payload.get('errorType') if isinstance(result.payload, dict) else ''}{RESET}"
    print(f"    -> {status} in {result.duration_ms:.0f} ms, {total} AWS call(s){': ' + detail if detail else ''}")
    if show is not None and result.ok:
        show(result.payload)
    else:
        print("    " + json.dumps(result.payload, indent=2).replace("\n", "\n    "))
    return result


def spot_event(name: str, instance_id: str) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / name).read_text())
    event["detail"]["instance-id"] = instance_id
    return event


def spot_drainer(bin_dir: Path, aws: Emulator) -> None:
    say("spot-drainer: a Spot interruption warning drains the container instance")
    instances = aws.group("demo-spot-asg", 3)
    aws.ecs.create_cluster(clusterName="demo")
    arns = [aws.register("demo", i) for i in instances]
    aws.ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 512}]
    )
    for _ in range(2):
        aws.ecs.start_task(cluster="demo", taskDefinition="web", containerInstances=[arns[0]])
    print("    Seeded: Auto Scaling group 'demo-spot-asg' (3 instances), ECS cluster 'demo', 2 tasks on the first.")
    show_cluster(aws, "demo")

    env = {
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "CLUSTERS": "demo",
        "DRAIN_ON": "terminate,stop,hibernate,scheduled",
        "REPLACE_ON_SCHEDULED": "true",
    }
    with FunctionProcess(bin_dir / "spot-drainer", env, name="spot-drainer", on_log=log_line) as fn:
        print(f"    spot-drainer started through the Lambda Runtime API; ready for work after {fn.init_ms:.0f} ms.")
        invoke(fn, aws, f"1. Spot interruption warning for {instances[0]}", spot_event("spot-interruption-terminate.json", instances[0]))
        show_cluster(aws, "demo")
        invoke(fn, aws, "2. The same warning again (EventBridge delivers at least once): nothing to do", spot_event("spot-interruption-terminate.json", instances[0]))
        invoke(fn, aws, "3. A warning for an instance that is not in ECS: a normal outcome", spot_event("spot-interruption-terminate.json", "i-0abcdef1234567890"))
        invoke(fn, aws, "4. A rebalance recommendation: ignored, DRAIN_ON does not include rebalance", spot_event("spot-rebalance-recommendation.json", instances[1]))
        bad = spot_event("spot-interruption-terminate.json", instances[1])
        bad["detail"]["instance-action"] = "reboot"
        invoke(fn, aws, "5. A malformed event: a clear error, nothing touched", bad)
        invoke(
            fn, aws, f"6. An AWS Health notice of retirement for {instances[1]}, which EC2 does not schedule: nothing changed",
            health_event([instances[1]]),
        )
        aws.schedule_ec2_event(instances[2], "instance-retirement", "2030-01-01T00:00:00Z")
        print(f"\n    EC2 schedules the retirement of {instances[2]} (DescribeInstanceStatus lists the event).")
        invoke(
            fn, aws, f"7. AWS Health's notice of it: drained at once; replaced once no task is left on it",
            health_event([instances[2]]),
        )
        print("    ... 10 s later the list of its tasks, empty since the drain, can be trusted.")
        time.sleep(10.5)
        sweep = json.loads((ROOT / "events" / "spot-aws-scheduled-rule.json").read_text())
        invoke(fn, aws, "8. The schedule's reconcile: its group replaces it before the date", sweep)
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-spot-asg"])["AutoScalingGroups"][0]
    state = aws.autoscaling.describe_auto_scaling_instances(InstanceIds=[instances[2]])["AutoScalingInstances"]
    print(f"    demo-spot-asg keeps its desired capacity ({group['DesiredCapacity']}) and launched a replacement: "
          f"{sorted(set(i['InstanceId'] for i in group['Instances']) - set(instances))}; "
          f"{instances[2]} is {state[0]['LifecycleState'] if state else 'gone'}.")
    say("The cluster afterwards: the warned instance is DRAINING, the retiring one replaced")
    show_cluster(aws, "demo")


def lifecycle_drainer(bin_dir: Path, aws: Emulator) -> None:
    say("lifecycle-drainer: Auto Scaling scales in; the instance is drained before it terminates")
    topic, queue = aws.topic("demo-lifecycle")
    instances = aws.group("demo-web-asg", 3)
    aws.ecs.create_cluster(clusterName="demo-web")
    arns = [aws.register("demo-web", i) for i in instances]
    for _ in range(2):
        aws.ecs.start_task(cluster="demo-web", taskDefinition="web", containerInstances=[arns[0]], group="service:api")
    aws.autoscaling.put_lifecycle_hook(
        LifecycleHookName="shipshape-drain", AutoScalingGroupName="demo-web-asg",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=600, DefaultResult="CONTINUE",
        NotificationTargetARN=topic, RoleARN="arn:aws:iam::123456789012:role/demo-hooks",
    )
    # 2 s after the drain begins, ECS (emulated) starts a replacement of each service task on another instance,
    # then stops the old task once its replacement runs.
    aws.draining(stop_after_ms=2000, step_ms=400)
    print("    Seeded: group 'demo-web-asg' (3 instances) with hook 'shipshape-drain' -> SNS topic, cluster 'demo-web',")
    print("    2 service tasks on the first instance.")
    show_cluster(aws, "demo-web")

    def next_events() -> list[dict[str, Any]]:
        out = aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for m in out:
            aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return [sns_event(topic, m["Body"]) for m in out]

    env = {
        "AWS_ENDPOINT_URL": aws.url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
        "CLUSTERS": "demo-web", "LIFECYCLE_HOOK_NAMES": "shipshape-drain,shipshape-drain-launch",
        "LIFECYCLE_TOPIC_ARN": topic, "AUTO_SCALING_GROUPS": "demo-web-asg",
        # Deployed: a reconcile every 60 s, and 10 s before an empty task list is trusted. Compressed here.
        "RECONCILE_PERIOD_SECONDS": "1", "SETTLE_SECONDS": "1", "LAUNCH_TIMEOUT_SECONDS": "60",
    }
    tick = json.loads((ROOT / "events" / "lifecycle-aws-scheduled-rule.json").read_text())

    def state_of(instance: str) -> str:
        found = aws.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        return found[0]["LifecycleState"] if found else "gone from the group"

    def reconcile_until(fn: FunctionProcess, instance: str, waiting: str, title: str) -> None:
        """The schedule's ticks, one a second here, until the instance no longer waits."""
        for n in range(1, 31):
            if state_of(instance) != waiting:
                return
            time.sleep(1)
            invoke(fn, aws, f"{title} (pass {n})", tick, show_actions)

    with FunctionProcess(bin_dir / "lifecycle-drainer", env, name="lifecycle-drainer", timeout_s=120, on_log=metrics_line) as fn:
        print(f"    lifecycle-drainer ready for work after {fn.init_ms:.0f} ms.")
        [test] = next_events()
        invoke(fn, aws, "1. The hook's test notification: acknowledged and ignored", test)
        aws.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instances[0], ShouldDecrementDesiredCapacity=True)
        print(f"\n    Scale-in: {instances[0]} is now {state_of(instances[0])}; the hook sent its message to the topic.")
        [message] = next_events()
        invoke(fn, aws, f"2. The lifecycle message for {instances[0]}: drained at once", message, show_actions)
        show_cluster(aws, "demo-web")
        reconcile_until(fn, instances[0], "Terminating:Wait", "3. The reconcile: heartbeat while tasks stop, complete once none is left")
        print(f"    {instances[0]} is {state_of(instances[0])}: its tasks moved before it went.")

        aws.autoscaling.put_lifecycle_hook(
            LifecycleHookName="shipshape-drain-launch", AutoScalingGroupName="demo-web-asg",
            LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", HeartbeatTimeout=600, DefaultResult="CONTINUE",
            NotificationTargetARN=topic, RoleARN="arn:aws:iam::123456789012:role/demo-hooks",
        )
        next_events()  # the new hook's test notification
        aws.autoscaling.set_desired_capacity(AutoScalingGroupName="demo-web-asg", DesiredCapacity=3)
        [launch] = next_events()
        new = json.loads(launch["Records"][0]["Sns"]["Message"])["EC2InstanceId"]
        print(f"\n    Scale-out with a launching hook: {new} is {state_of(new)}. Its ECS agent registers, not yet connected.")
        new_arn = aws.register("demo-web", new)
        aws.agent(new_arn, False)
        invoke(fn, aws, f"4. The launch message for {new}: held, ECS cannot place tasks on it yet", launch, show_actions)
        threading.Timer(2.5, lambda: aws.agent(new_arn, True)).start()
        print("    ... the agent connects in 2.5 s.")
        reconcile_until(fn, new, "Pending:Wait", "5. The reconcile: in service once the agent is connected")
        print(f"    {new} is {state_of(new)}.")
    say("The group and the cluster afterwards")
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-web-asg"])["AutoScalingGroups"][0]
    print(f"    demo-web-asg: desired {group['DesiredCapacity']}, instances {[i['InstanceId'] for i in group['Instances']]}")
    show_cluster(aws, "demo-web")


def show_actions(outcome: dict[str, Any]) -> None:
    """What a lifecycle-drainer pass did, one line per instance."""
    for a in outcome.get("actions", []):
        why = f" - {a['reason']}" if a.get("reason") else ""
        left = f", {a['tasks_left']} task(s) left" if a.get("tasks_left") else ""
        beat = ", heartbeat sent" if a.get("heartbeat") else ""
        print(f"    {a.get('instance_id')}: {a.get('kind')} {a.get('step')}{left}{beat}{why}")
    if not outcome.get("actions"):
        print(f"    nothing to do{': ' + outcome['reason'] if outcome.get('reason') else ''}")
    for w in outcome.get("warnings", []):
        print(f"    warning: {w}")


def show_plan(outcome: dict[str, Any]) -> None:
    """The scale-in summary as a table: one line per instance with its decision, its reason and the detail."""
    for cluster in outcome["clusters"]:
        before, after = cluster.get("before"), cluster.get("after")
        if before and after:
            print(f"    {cluster['cluster']}: spare CPU {before['spare']['cpu']} -> {after['spare']['cpu']} units "
                  f"(keep {after['required']['cpu']}), memory {before['spare']['memory']} -> {after['spare']['memory']} MiB "
                  f"(keep {after['required']['memory']})")
        for e in cluster["instances"]:
            colour = GREEN if e["decision"] in ("keep", "skip", "wait") else RED
            progress = e["progress"] if isinstance(e["progress"], str) else next(iter(e["progress"]))
            done = "planned" if outcome["dry_run"] else ("" if progress == "planned" else progress)
            print(f"    {e['ec2_instance_id']:<22}{e['tasks']:>3} tasks  {colour}{e['decision']:<11}{RESET}{done:<8} "
                  f"{e['reason']:<17} {DIM}{e['detail']}{RESET}")
    print(f"    totals: {json.dumps(outcome['totals'])}")


def scale_in_cleaner(bin_dir: Path, aws: Emulator) -> None:
    say("scale-in-cleaner: idle capacity goes, spare capacity stays")
    instances = aws.group("demo-fleet-asg", 5)
    aws.ecs.create_cluster(clusterName="demo-fleet")
    arns = [aws.register("demo-fleet", i) for i in instances]
    aws.ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 256, "memory": 512}]
    )
    layout = [(0, None), (1, "service:api"), (8, "service:api"), (8, "service:api"), (8, None)]
    for arn, (count, group) in zip(arns, layout):
        for _ in range(count):
            aws.ecs.start_task(cluster="demo-fleet", taskDefinition="web", containerInstances=[arn], **({"group": group} if group else {}))
    aws.draining(stop_after_ms=500, step_ms=100)
    print("    Seeded: group 'demo-fleet-asg' (5 instances), cluster 'demo-fleet': one idle instance, one with a")
    print("    single service task, three with 8 tasks each (the last one's are standalone batch tasks).")
    show_cluster(aws, "demo-fleet")

    env = {
        "AWS_ENDPOINT_URL": aws.url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
        "CLUSTERS": "demo-fleet", "MIN_INSTANCE_AGE_MINUTES": "0",
        # The demo's instances were all launched a moment ago, and its group is small: no cool-down, and
        # up to half of the group per run instead of the default tenth (rounded up: one instance).
        "SCALE_IN_COOLDOWN_MINUTES": "0", "SCALE_IN_BUDGET_PERCENT": "50",
    }
    scheduled = json.loads((ROOT / "events" / "scale-in-scheduled.json").read_text())
    with FunctionProcess(bin_dir / "scale-in-cleaner", env, name="scale-in-cleaner", on_log=metrics_line) as fn:
        print(f"    scale-in-cleaner ready for work after {fn.init_ms:.0f} ms (its per-instance logs are hidden here; its metrics are shown).")
        invoke(fn, aws, "1. A manual dry run ({\"dry-run\": true}): the plan, no change", {"dry-run": True}, show_plan)
        invoke(fn, aws, "2. The scheduled run: the idle instance is terminated, the light one drained", scheduled, show_plan)
        show_cluster(aws, "demo-fleet")
        time.sleep(1.5)
        invoke(fn, aws, "3. Thirty minutes later: the drained instance is empty and is terminated", scheduled, show_plan)
    say("The group and the cluster afterwards")
    group = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-fleet-asg"])["AutoScalingGroups"][0]
    print(f"    demo-fleet-asg: desired {group['DesiredCapacity']} (was 5)")
    show_cluster(aws, "demo-fleet")


def lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


def show_report(state: dict[str, Any]) -> None:
    """The rollout report as a table: one line per step, the new version next to the old one."""
    colour = GREEN if state["status"] in ("succeeded", "shifting", "dry-run") else RED
    print(f"    {state['function-name']}:{state['alias-name']} {state['original-version']} -> {state['new-version']}: "
          f"{colour}{state['status']}{RESET}")
    if state.get("reason"):
        print(f"    reason: {state['reason']}")

    def figures(f: dict[str, Any] | None) -> str:
        if not f:
            return "-"
        p99 = f"{f['p99']:.0f} ms" if f.get("p99") is not None else "-"
        return f"{f['invocations']:g} inv, {f['errors']:g} err, p99 {p99}"

    for s in state["steps"]:
        window = s.get("window")
        span = f"{window['from'][11:19]}-{window['to'][11:19]}" if window else ""
        print(f"    step {s['step']}: weight {s['weight']:<7} {span:<18} new {figures(s.get('new')):<32} "
              f"old {figures(s.get('old')):<32} {s['decision']}")
    if state["status"] == "shifting":
        print(f"    next call in {state['wait-seconds']} s (the state machine's Wait state: until the step's traffic is complete)")


def show_alias(aws: Emulator) -> None:
    alias = aws.awslambda.get_alias(FunctionName="checkout", Name="live")
    weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}
    print(f"    alias checkout:live -> version {alias['FunctionVersion']}" + (f", additional weights {weights}" if weights else ", no additional weights"))


def alias_shifter(bin_dir: Path, aws: Emulator) -> None:
    say("alias-shifter: a new Lambda version takes traffic step by step, judged against the old one")
    aws.awslambda.create_function(FunctionName="checkout", Runtime="provided.al2023", Role=aws.role("checkout"), Handler="bootstrap",
                                  Code={"ZipFile": lambda_zip()}, Timeout=2)
    for _ in range(3):
        aws.awslambda.update_function_code(FunctionName="checkout", ZipFile=lambda_zip())
        aws.awslambda.publish_version(FunctionName="checkout")
    aws.awslambda.create_alias(FunctionName="checkout", Name="live", FunctionVersion="1")
    # 40 requests a second through the alias, split by its live weights; each version's metrics stamped
    # with the invocation's start and visible 300 ms after it ends, as Lambda and CloudWatch report them.
    aws.traffic("checkout", "live", rate=40, lag_ms=300, versions={
        "1": {"duration_ms": 80}, "2": {"duration_ms": 80}, "3": {"duration_ms": 400}})
    print("    Seeded: function 'checkout' (versions 1-3, 2 s timeout), alias 'live' on version 1, and 40 requests a")
    print("    second through it: versions 1 and 2 answer in about 80 ms, version 3 in about 400 ms; none fails.")
    show_alias(aws)

    env = {"AWS_ENDPOINT_URL": aws.url, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
           "ALLOWED_FUNCTIONS": "checkout",
           # The emulator keeps metrics per second, so steps of seconds can be judged (AWS: 60).
           "METRIC_PERIOD_SECONDS": "1"}
    linear = json.loads((ROOT / "events" / "shift-linear.json").read_text())
    # The sample's shape, shortened to seconds so the demo does not take minutes.
    linear.update({"function-name": "checkout", "interval": 2, "metric-delay": 1})
    with FunctionProcess(bin_dir / "alias-shifter", env, name="alias-shifter", timeout_s=120, on_log=metrics_line) as fn:
        print(f"    alias-shifter ready for work after {fn.init_ms:.0f} ms.")
        invoke(fn, aws, "1. aws lambda invoke with a linear rollout to version 2 (4 steps, 2 s each): each step judged "
               "once its traffic is complete, version 2 becomes the primary", linear, show_report)
        show_alias(aws)

        canary = json.loads((ROOT / "events" / "shift-canary-compared.json").read_text())
        # A 30 % canary held 10 s: about 120 requests of version 3 a window, enough for a p90 (100 of each).
        canary.update({"function-name": "checkout", "new-version": "3", "canary-weight": 0.3, "interval": 10,
                       "metric-delay": 1, "min-invocations": 10, "bake-seconds": 0})
        result = invoke(fn, aws, "2. The state machine starts a 30 % canary of version 3, compared with version 2 "
                        "(max-duration-ratio 1.5)", {"mode": "start", "rollout": canary}, show_report)
        show_alias(aws)
        state, n = result.payload, 3
        while state["status"] == "shifting":
            time.sleep(state["wait-seconds"])
            state = invoke(fn, aws, f"{n}. After the Wait state, the next call judges the canary (too few requests is "
                           "inconclusive: another interval; slower than version 2 at the same time, though without an "
                           "error: rolled back)", {"mode": "step", "state": state}, show_report).payload
            n += 1
        aws.traffic("checkout", "live", rate=0)
    say("The alias afterwards: back on version 2, no weights")
    show_alias(aws)


def main() -> None:
    bin_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "debug"
    print(f"{BOLD}shipshape demo{RESET}: each function's real binary, run as Lambda runs it, against a local AWS emulator.")
    with Emulator() as aws:
        print(f"    AWS emulator (moto + shipshape extensions) at {aws.url}")
        spot_drainer(bin_dir, aws)
        lifecycle_drainer(bin_dir, aws)
        scale_in_cleaner(bin_dir, aws)
        alias_shifter(bin_dir, aws)
    say("Done.")


if __name__ == "__main__":
    main()
