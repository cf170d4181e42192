"""The template's IAM as IAM will see it: rendered offline (SAM transform, then the intrinsics resolved)
with no names (every cluster, group and function of the account and region) and with 50 clusters, 50
groups and 50 shiftable functions. Each function may make exactly the calls its lib.rs header lists, on
exactly the named resources of the stack's own account and region, and every role stays within IAM's
size limits at 50 of each."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest

import iam
import render
from iam import Request

R, A, P = render.REGION, render.ACCOUNT, render.PARTITION
OTHER_REGION, OTHER_ACCOUNT = "us-west-2", "210987654321"
# The largest fleet the checks hold the template to: 50 names of each, as long as a real deployment's
# names may reasonably be (clusters and groups 32 characters, functions 64, Lambda's maximum).
CLUSTERS = render.names("shipshape-prod-cluster", 50, 32)
GROUPS = render.names("shipshape-prod-ecs-group", 50, 32)
FUNCTIONS = render.names("shipshape-prod-checkout-api", 50, 64)
# The alias-shifter's validation hooks: 10 names of 64 characters, what fits next to 50 shiftable functions
# in Lambda's 4 KB of environment variables.
HOOKS = render.names("shipshape-prod-smoke-test", 10, 64)
TOPIC = f"arn:{P}:sns:{OTHER_REGION}:{OTHER_ACCOUNT}:people"

FUNCTION_CRATES = {
    "SpotDrainerFunction": "spot-drainer",
    "LifecycleDrainerFunction": "lifecycle-drainer",
    "ScaleInCleanerFunction": "scale-in-cleaner",
    "AliasShifterFunction": "alias-shifter",
}


# The options that grant more switched on, so that every call a header lists is allowed somewhere.
GRANTING = {"ReplaceOnScheduled": "true"}


@cache
def rendered(scope: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if scope == "all":
        return render.render(**GRANTING)
    if scope == "defaults":
        return render.render()
    return render.render(
        **GRANTING,
        ClusterNames=CLUSTERS,
        AutoScalingGroupNames=GROUPS,
        ShiftableFunctionNames=FUNCTIONS,
        ShiftHookFunctionNames=HOOKS,
        NotificationTopicArn=TOPIC,
        AlarmTopicArn=f"arn:{P}:sns:{R}:{A}:alarms",
    )


def documents(scope: str, role: str) -> list[dict[str, Any]]:
    policies = render.role_policies(rendered(scope)[1])[role]
    return [*policies["inline"].values(), *policies["managed"].values()]


def header_apis(crate: str) -> set[str]:
    """The AWS APIs a function's lib.rs header lists (its `//!` block), as service:Action."""
    text = (render.ROOT / "functions" / crate / "src" / "lib.rs").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("//!"))
    block = header[header.index("AWS APIs:") :].split("\n//!\n")[0]
    return set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", block))


# ---------------------------------------------------------------- the requests each call makes
def cluster(name: str, region: str = R, account: str = A) -> str:
    return f"arn:{P}:ecs:{region}:{account}:cluster/{name}"


def requests(api: str, crate: str, name: str, region: str = R, account: str = A, *, scope: str) -> list[Request]:
    """The IAM requests one call makes against a resource called `name` (a cluster, group or function,
    as the API takes) in `region` and `account`."""
    prefix = f"arn:{P}:{{}}:{region}:{account}"
    ecs, autoscaling, lambda_ = (prefix.format(s) for s in ("ecs", "autoscaling", "lambda"))
    in_cluster = {"ecs:cluster": cluster(name, region, account)}
    if api == "ecs:ListClusters":
        return [Request(api, "*")]
    if api in ("ecs:ListContainerInstances", "ecs:DescribeClusters"):
        return [Request(api, cluster(name, region, account))]
    if api in (
        "ecs:DescribeContainerInstances",
        "ecs:UpdateContainerInstancesState",
        "ecs:PutAttributes",
        "ecs:DeleteAttributes",
    ):
        return [Request(api, f"{ecs}:container-instance/{name}/0123456789abcdef0123456789abcdef", in_cluster)]
    if api == "ecs:ListTasks":
        # Every function lists one instance's tasks (the containerInstance filter).
        return [Request(api, f"{ecs}:container-instance/{name}/0123456789abcdef0123456789abcdef", in_cluster)]
    if api == "ecs:ListServices":
        return [Request(api, "*", in_cluster)]
    if api in ("ecs:DescribeTasks", "ecs:GetTaskProtection"):
        return [Request(api, f"{ecs}:task/{name}/0123456789abcdef0123456789abcdef", in_cluster)]
    if api == "ecs:DescribeServices":
        return [Request(api, f"{ecs}:service/{name}/api", in_cluster)]
    if api == "ecs:DescribeTaskDefinition":
        return [Request(api, "*")]
    if api == "ecs:DescribeCapacityProviders":
        return [Request(api, f"{ecs}:capacity-provider/{name}-provider")]
    if api in (
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ):
        group_id = "01234567-89ab-cdef-0123-456789abcdef"
        return [Request(api, f"{autoscaling}:autoScalingGroup:{group_id}:autoScalingGroupName/{name}")]
    if api.startswith(("autoscaling:Describe", "ec2:Describe")) or api in ("cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"):
        return [Request(api, "*")]
    if api.startswith("lambda:"):
        return [Request(api, f"{lambda_}:function:{name}"), Request(api, f"{lambda_}:function:{name}:live")]
    raise KeyError(f"no request model for {api}: add one")


SCOPED_BY = {"ecs": "cluster", "autoscaling": "group", "lambda": "function"}
# The alias-shifter invokes its validation hooks, named apart from the functions it shifts, and none
# without names.
HOOK_INVOKE = "lambda:InvokeFunction"
# Capacity providers belong to the account, not to a cluster: any of the stack's account and region.
NOT_BY_NAME = {"ecs:DescribeCapacityProviders"}


def named(api: str, scope: str) -> list[str]:
    """The names a scoped call is made against in a scope."""
    if api == HOOK_INVOKE:
        return [HOOKS[0], HOOKS[-1]]
    kind = SCOPED_BY.get(api.split(":")[0])
    if scope == "all":
        return ["any-" + (kind or "thing")]
    return {"cluster": [CLUSTERS[0], CLUSTERS[-1]], "group": [GROUPS[0], GROUPS[-1]], "function": [FUNCTIONS[0], FUNCTIONS[-1]]}.get(
        kind or "", ["any"]
    )


def unscoped(api: str, crate: str, scope: str) -> bool:
    """Calls IAM cannot scope to a resource (or that run only when no cluster is named)."""
    return all(r.resource == "*" and not r.context for r in requests(api, crate, "x", scope=scope))


SCOPES = ["all", "50"]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("function", FUNCTION_CRATES)
def test_each_function_may_make_every_call_its_header_lists(function: str, scope: str) -> None:
    crate = FUNCTION_CRATES[function]
    docs = documents(scope, f"{function}Role")
    apis = header_apis(crate)
    assert apis, f"no AWS APIs found in {crate}'s header"
    refused = []
    for api in sorted(apis):
        if api == "sns:Publish":
            continue  # below
        if api == "ecs:ListClusters" and scope != "all":
            continue  # only with no cluster named
        if api == HOOK_INVOKE and scope == "all":
            continue  # only with hooks named (below)
        for name in named(api, scope):
            refused += [r for r in requests(api, crate, name, scope=scope) if not iam.allowed(docs, r)]
    assert refused == []


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("function", FUNCTION_CRATES)
def test_each_function_may_call_nothing_its_header_does_not_list(function: str, scope: str) -> None:
    crate = FUNCTION_CRATES[function]
    granted = iam.allowed_actions(documents(scope, f"{function}Role"))
    # The failure destination's queue, which SAM allows by itself.
    listed = {a.lower() for a in header_apis(crate)} | {"sqs:sendmessage"}
    assert granted - listed == set()


@pytest.mark.parametrize("function", FUNCTION_CRATES)
def test_named_resources_only_in_the_stacks_account_and_region(function: str) -> None:
    crate = FUNCTION_CRATES[function]
    docs = documents("50", f"{function}Role")
    leaks = []
    for api in sorted(header_apis(crate)):
        if api in ("sns:Publish", "ecs:ListClusters") or unscoped(api, crate, "50"):
            continue
        kind = SCOPED_BY[api.split(":")[0]]
        listed = HOOKS if api == HOOK_INVOKE else {"cluster": CLUSTERS, "group": GROUPS, "function": FUNCTIONS}[kind]
        others = [(listed[0], OTHER_REGION, A), (listed[0], R, OTHER_ACCOUNT)]
        if api not in NOT_BY_NAME:
            others += [
                (listed[0] + "x", R, A),  # a longer name that starts with a listed one
                ("x" + listed[-1], R, A),  # one that ends with a listed one
                ("other", R, A),
            ]
        for name, region, account in others:
            leaks += [r for r in requests(api, crate, name, region, account, scope="50") if iam.allowed(docs, r)]
    assert leaks == []


@pytest.mark.parametrize("function", FUNCTION_CRATES)
def test_with_no_names_the_functions_stay_in_the_stacks_account_and_region(function: str) -> None:
    crate = FUNCTION_CRATES[function]
    docs = documents("all", f"{function}Role")
    leaks = []
    for api in sorted(header_apis(crate)):
        if api in ("sns:Publish", "ecs:ListClusters") or unscoped(api, crate, "all"):
            continue
        for region, account in ((OTHER_REGION, A), (R, OTHER_ACCOUNT)):
            leaks += [r for r in requests(api, crate, "any", region, account, scope="all") if iam.allowed(docs, r)]
    assert leaks == []


@pytest.mark.parametrize("function", FUNCTION_CRATES)
def test_notifications_go_to_the_topic_given_by_arn_in_any_account_and_only_there(function: str) -> None:
    docs = documents("50", f"{function}Role")
    assert iam.allowed(docs, Request("sns:Publish", TOPIC))
    assert not iam.allowed(docs, Request("sns:Publish", f"arn:{P}:sns:{R}:{A}:people"))
    # With no topic given, no notification permission at all.
    assert not iam.allowed(documents("all", f"{function}Role"), Request("sns:Publish", TOPIC))


def test_the_alias_shifter_invokes_its_named_hooks_only_never_the_functions_it_shifts() -> None:
    docs = documents("50", "AliasShifterFunctionRole")
    lambda_ = f"arn:{P}:lambda:{R}:{A}:function"
    for hook in (HOOKS[0], HOOKS[-1]):
        for qualifier in ("", ":live", ":7", ":$LATEST"):
            assert iam.allowed(docs, Request(HOOK_INVOKE, f"{lambda_}:{hook}{qualifier}")), hook + qualifier
    for shifted in (FUNCTIONS[0], FUNCTIONS[-1]):
        assert not iam.allowed(docs, Request(HOOK_INVOKE, f"{lambda_}:{shifted}"))
        assert not iam.allowed(docs, Request(HOOK_INVOKE, f"{lambda_}:{shifted}:live"))
    # With no hook named, no invocation at all.
    for scope in ("all",):
        assert not iam.allowed(documents(scope, "AliasShifterFunctionRole"), Request(HOOK_INVOKE, f"{lambda_}:{HOOKS[0]}"))


def test_the_alias_shifter_continues_a_rollout_by_invoking_itself_only() -> None:
    shifter = f"arn:{P}:lambda:{R}:{A}:function:{render.STACK}-AliasShifterFunction-A1B2C3D4E5F6"
    for scope in ("50", "all"):
        docs = documents(scope, "AliasShifterFunctionRole")
        assert iam.allowed(docs, Request(HOOK_INVOKE, shifter)) and iam.allowed(docs, Request(HOOK_INVOKE, shifter + ":live"))
        assert not iam.allowed(docs, Request(HOOK_INVOKE, f"arn:{P}:lambda:{R}:{A}:function:{FUNCTIONS[0]}"))


def test_the_lifecycle_drainer_never_publishes_to_its_own_topic() -> None:
    _, resources = rendered("50")
    own = resources["LifecycleDrainerFunction"]["Properties"]["Environment"]["Variables"]["LIFECYCLE_TOPIC_ARN"]
    docs = documents("50", "LifecycleDrainerFunctionRole")
    assert not iam.allowed(docs, Request("sns:Publish", own)), "no continuation travels through the topic"
    assert "RecursiveLoop" not in resources["LifecycleDrainerFunction"]["Properties"]


def test_the_lifecycle_drainer_reconciles_every_minute_one_invocation_at_a_time() -> None:
    _, resources = rendered("50")
    function = resources["LifecycleDrainerFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == 1
    assert function["Environment"]["Variables"]["RECONCILE_PERIOD_SECONDS"] == "60"
    schedules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule" and r["Properties"].get("ScheduleExpression")]
    targets = [t["Arn"] for r in schedules for t in r["Targets"]]
    assert any("LifecycleDrainerFunction" in str(t) for t in targets), targets
    assert all(r["ScheduleExpression"] == "rate(1 minute)" for r in schedules if any("Drainer" in str(t["Arn"]) for t in r["Targets"]))


def test_the_state_machine_invokes_exactly_the_shifter_and_nothing_else() -> None:
    _, resources = rendered("50")
    docs = documents("50", "AliasShiftStateMachineRole")
    shifter = f"arn:{P}:lambda:{R}:{A}:function:{render.STACK}-AliasShifterFunction-A1B2C3D4E5F6"
    assert iam.allowed(docs, Request("lambda:InvokeFunction", shifter))
    for other in (shifter + "-other", shifter + ":1", f"arn:{P}:lambda:{R}:{A}:function:other"):
        assert not iam.allowed(docs, Request("lambda:InvokeFunction", other)), other
    assert iam.allowed_actions(docs) <= {"lambda:invokefunction"} | {
        a.lower()
        for a in (
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        )
    }


def test_only_the_hook_role_may_publish_to_the_lifecycle_topic() -> None:
    _, resources = rendered("50")
    policy = resources["LifecycleTopicPolicy"]["Properties"]["PolicyDocument"]
    topic = resources["LifecycleTopicPolicy"]["Properties"]["Topics"][0]
    role = f"arn:{P}:iam::{A}:role/{render.STACK}-{{}}-A1B2C3D4E5F6"
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}

    def may(principal: str, tls: str = "true") -> bool:
        ctx = {"aws:PrincipalArn": principal, "aws:SecureTransport": tls}
        return iam.allowed([allow_all, policy], Request("sns:Publish", topic, ctx))

    assert may(role.format("LifecycleHookRole"))
    assert not may(role.format("LifecycleDrainerFunctionRole"))
    assert not may(role.format("LifecycleHookRole"), tls="false")
    assert not may(f"arn:{P}:iam::{A}:role/admin")


# ---------------------------------------------------------------- sizes
def policy_sizes(scope: str) -> dict[str, int]:
    """Each role's inline policies together, and each customer managed policy, as IAM counts them."""
    _, resources = rendered(scope)
    sizes = {}
    for role, policies in render.role_policies(resources).items():
        sizes[f"{role} (inline)"] = sum(render.compact_size(d) for d in policies["inline"].values())
    for lid, r in resources.items():
        if r["Type"] == "AWS::IAM::ManagedPolicy":
            sizes[f"{lid} (managed)"] = render.compact_size(r["Properties"]["PolicyDocument"])
    return sizes


@pytest.mark.parametrize("scope", SCOPES)
def test_every_policy_fits_iams_limits(scope: str, record_property: Any) -> None:
    sizes = policy_sizes(scope)
    over = {
        k: v
        for k, v in sizes.items()
        if v > (render.INLINE_LIMIT if k.endswith("(inline)") else render.MANAGED_LIMIT)
    }
    largest = max(sizes, key=lambda k: sizes[k] / (render.INLINE_LIMIT if k.endswith("(inline)") else render.MANAGED_LIMIT))
    record_property("largest", f"{largest}: {sizes[largest]}")
    print(f"\n{scope}: " + ", ".join(f"{k} {v}" for k, v in sorted(sizes.items())))
    assert over == {}


def test_every_functions_environment_fits_lambdas_limit_at_50_of_each() -> None:
    _, resources = rendered("50")
    for lid, r in resources.items():
        if r["Type"] == "AWS::Lambda::Function":
            variables = r["Properties"].get("Environment", {}).get("Variables", {})
            size = sum(len(k) + len(str(v)) for k, v in variables.items())
            assert size <= render.ENVIRONMENT_LIMIT, (lid, size)


def test_one_policy_per_function_however_many_names() -> None:
    few = render.render(
        ClusterNames=CLUSTERS[:2], AutoScalingGroupNames=GROUPS[:2], ShiftableFunctionNames=FUNCTIONS[:2], ShiftHookFunctionNames=HOOKS[:2]
    )[1]
    many = rendered("50")[1]
    iam_types = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy")
    count = lambda res: sorted(k for k, r in res.items() if r["Type"] in iam_types)  # noqa: E731
    assert count(few) == count(many)


# ---------------------------------------------------------------- hooks
def test_one_hook_per_named_group_each_with_its_own_name_after_the_drainers_subscription() -> None:
    _, resources = rendered("50")
    hooks = {k: r for k, r in resources.items() if r["Type"] == "AWS::AutoScaling::LifecycleHook"}
    assert len(hooks) == 50
    assert [hooks[f"LifecycleHook{i:02d}"]["Properties"]["AutoScalingGroupName"] for i in range(1, 51)] == GROUPS
    names = [h["Properties"]["LifecycleHookName"] for h in hooks.values()]
    assert len(set(names)) == 50
    for hook in hooks.values():
        assert hook["DependsOn"] in ("LifecycleDrainerFunctionLifecycleMessages", ["LifecycleDrainerFunctionLifecycleMessages"])
        assert resources["LifecycleDrainerFunctionLifecycleMessages"]["Type"] == "AWS::SNS::Subscription"
        assert hook["Properties"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    variables = resources["LifecycleDrainerFunction"]["Properties"]["Environment"]["Variables"]
    # The drainer answers its name and the numbered hooks of that name (<name>-01 ...), of these groups;
    # and the numbered launch hooks (<name>-launch-01 ...), which exist only with LaunchReadiness.
    assert variables["LIFECYCLE_HOOK_NAMES"] == "shipshape-drain,shipshape-drain-launch"
    assert all(re.fullmatch(r"shipshape-drain-\d\d", n) for n in names), names
    assert variables["AUTO_SCALING_GROUPS"].split(",") == GROUPS


def test_no_hook_without_groups_and_hooks_for_the_first_names_only() -> None:
    assert not [r for r in rendered("all")[1].values() if r["Type"] == "AWS::AutoScaling::LifecycleHook"]
    _, few = render.render(AutoScalingGroupNames=GROUPS[:3])
    hooks = sorted(k for k, r in few.items() if r["Type"] == "AWS::AutoScaling::LifecycleHook")
    assert hooks == ["LifecycleHook01", "LifecycleHook02", "LifecycleHook03"]
    names = sorted(r["Properties"]["LifecycleHookName"] for r in few.values() if r["Type"] == "AWS::AutoScaling::LifecycleHook")
    assert names == ["shipshape-drain-01", "shipshape-drain-02", "shipshape-drain-03"]


def test_launch_hooks_only_with_launch_readiness_one_per_named_group() -> None:
    _, resources = render.render(AutoScalingGroupNames=GROUPS[:3], LaunchReadiness="true")
    launch = {k: r["Properties"] for k, r in resources.items() if k.startswith("LaunchHook")}
    assert sorted(launch) == ["LaunchHook01", "LaunchHook02", "LaunchHook03"]
    assert [p["AutoScalingGroupName"] for _, p in sorted(launch.items())] == GROUPS[:3]
    assert [p["LifecycleHookName"] for _, p in sorted(launch.items())] == [f"shipshape-drain-launch-0{i}" for i in (1, 2, 3)]
    # If the drainer is down, launches go on as without the hook: its default result is CONTINUE.
    assert all(p["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING" and p["DefaultResult"] == "CONTINUE" for p in launch.values())
    assert not [k for k in rendered("50")[1] if k.startswith("LaunchHook")]


def test_the_stopped_task_rule_is_on_only_when_asked() -> None:
    def state(**given: str) -> str:
        _, resources = render.render(**given)
        rules = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Events::Rule" and r["Properties"].get("EventPattern", {}).get("source") == ["aws.ecs"]
        ]
        assert len(rules) == 1, rules
        return rules[0]["State"]

    assert state() == "DISABLED"
    assert state(FastDrainCompletion="true") == "ENABLED"


# ---------------------------------------------------------------- the rest of the list
def test_the_spot_rule_matches_the_stacks_own_account_only() -> None:
    _, resources = rendered("all")
    rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]]
    assert rules and all(r["Properties"]["EventPattern"]["account"] == [A] for r in rules)


def test_the_spot_drainer_may_terminate_instances_only_when_it_replaces_them() -> None:
    def granted(resources: dict[str, Any]) -> set[str]:
        docs = render.role_policies(resources)["SpotDrainerFunctionRole"]
        return {
            a.lower()
            for doc in docs["inline"].values()
            for st in doc["Statement"]
            if st["Effect"] == "Allow"
            for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
        }

    terminate = "autoscaling:terminateinstanceinautoscalinggroup"
    assert terminate not in granted(rendered("defaults")[1])
    assert terminate in granted(rendered("all")[1])


def test_every_drainer_rule_retries_as_its_event_deserves_and_keeps_what_it_cannot_deliver() -> None:
    """Each EventBridge rule and schedule of the drainers has its own retry policy and a dead-letter queue
    (its function's), each dead-letter queue an alarm and a policy that lets exactly its senders in, and the
    lifecycle topic's subscription a redrive policy. A Health notice days ahead is kept a day; a Spot warning
    two minutes."""
    _, resources = rendered("50")
    queues = {"SpotDrainerFunction": "SpotDrainerDeadLetterQueue", "LifecycleDrainerFunction": "LifecycleDrainerDeadLetterQueue"}
    ages = {}
    for lid, r in resources.items():
        if r["Type"] != "AWS::Events::Rule":
            continue
        (target,) = r["Properties"]["Targets"]
        function = next((f for f in queues if f in str(target["Arn"])), None)
        if function is None:
            continue
        assert "RetryPolicy" in target, lid
        assert queues[function] in str(target["DeadLetterConfig"]["Arn"]), lid
        policy = next(p for p in resources.values() if p["Type"] == "AWS::SQS::QueuePolicy" and queues[function] in str(p["Properties"]["Queues"]))
        assert lid in str(policy["Properties"]["PolicyDocument"]), f"{lid} may not send to its dead-letter queue"
        ages[lid] = target["RetryPolicy"]["MaximumEventAgeInSeconds"]
    assert ages["SpotDrainerFunctionSpotWarnings"] == 120
    assert ages["SpotDrainerFunctionScheduledMaintenance"] == 86400
    assert len(ages) == 5, ages
    # No rule on every instance start in the account: it would spend the ECS reads the warnings need.
    assert not any("State-change" in str(r["Properties"].get("EventPattern")) for r in resources.values() if r["Type"] == "AWS::Events::Rule")
    alarms = [str(r["Properties"]) for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for queue in queues.values():
        assert any(queue in a and "ApproximateNumberOfMessagesVisible" in a for a in alarms), queue
    subscription = resources["LifecycleDrainerFunctionLifecycleMessages"]["Properties"]
    assert "LifecycleDrainerDeadLetterQueue" in str(subscription["RedrivePolicy"])


def test_the_spot_drainer_reconciles_every_minute() -> None:
    for given in ({}, {"RebalanceMode": "careful"}):
        _, resources = render.render(**given)
        rules = [r["Properties"] for lid, r in resources.items() if lid == "SpotDrainerFunctionSweep"]
        assert [(r["ScheduleExpression"], r.get("State", "ENABLED")) for r in rules] == [("rate(1 minute)", "ENABLED")]


def test_the_state_machine_logs_at_the_level_asked() -> None:
    _, resources = render.render(StateMachineLogLevel="ALL")
    logging = resources["AliasShiftStateMachine"]["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"].startswith(f"arn:{P}:logs:{R}:{A}:log-group:")


def test_topics_and_queues_are_encrypted_at_rest() -> None:
    _, resources = rendered("50")
    for lid, r in resources.items():
        if r["Type"] == "AWS::SNS::Topic":
            assert r["Properties"].get("KmsMasterKeyId"), lid
        if r["Type"] == "AWS::SQS::Queue":
            assert r["Properties"].get("SqsManagedSseEnabled") is True or r["Properties"].get("KmsMasterKeyId"), lid


def test_no_language_extensions() -> None:
    template = render.load()
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert "Fn::ForEach" not in render.template_path().read_text()
