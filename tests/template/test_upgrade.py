"""Upgrades keep what a stack holds: every release's template is kept in release/templates/<version>.yaml,
and a stack deployed from any of them must update in place to this template. CloudFormation replaces a
resource whose logical id or type changes (or a property that requires replacement), creating the new one
before deleting the old: a queue or topic would lose its messages and subscriptions, and a lifecycle hook
would be deleted after its replacement had "created" it (PutLifecycleHook updates a hook of the same
name), silently ending the drain of that group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import render

KEPT = sorted((render.ROOT / "release" / "templates").glob("*.yaml"))

# The resources that hold state or that people and other stacks point at, and the properties whose change
# replaces them (CloudFormation resource reference, "Update requires: Replacement").
STATEFUL = {
    "AWS::SNS::Topic": ("TopicName", "FifoTopic"),
    "AWS::SNS::TopicPolicy": (),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::AutoScaling::LifecycleHook": ("AutoScalingGroupName", "LifecycleHookName"),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Serverless::Function": ("FunctionName",),
    "AWS::Serverless::StateMachine": ("Name", "Type"),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
}


def _load(path: Path) -> dict[str, Any]:
    return render.load(path)


def test_there_is_a_kept_release_template() -> None:
    assert KEPT, "release/templates/ must keep the last release's template"


@pytest.mark.parametrize("kept", KEPT, ids=[p.stem for p in KEPT])
def test_an_update_from_a_release_replaces_nothing_that_holds_state(kept: Path) -> None:
    old, new = _load(kept), render.load()
    problems = []
    for lid, resource in old["Resources"].items():
        kind = resource["Type"]
        if kind not in STATEFUL:
            continue
        now = new["Resources"].get(lid)
        if now is None or now["Type"] != kind:
            problems.append(f"{lid} ({kind}) is gone or changed type")
            continue
        for prop in STATEFUL[kind]:
            if resource.get("Properties", {}).get(prop) != now.get("Properties", {}).get(prop):
                problems.append(f"{lid}.{prop} changed: the resource would be replaced")
        # A slot's condition decides which group its hook is on: it must keep meaning the same.
        if "Condition" in resource:
            cond = resource["Condition"]
            if now.get("Condition") != cond or old["Conditions"][cond] != new["Conditions"].get(cond):
                problems.append(f"{lid}: its condition changed")
    assert problems == []


@pytest.mark.parametrize("kept", KEPT, ids=[p.stem for p in KEPT])
def test_the_parameters_of_a_release_still_exist(kept: Path) -> None:
    # `sam deploy` of the new template with a release's saved parameters must not fail on a missing one.
    old, new = _load(kept), render.load()
    assert set(old["Parameters"]) - set(new["Parameters"]) == set()


def test_the_check_does_catch_a_renamed_hook(tmp_path: Path) -> None:
    text = render.template_path().read_text().replace("  LifecycleHook07:\n", "  LifecycleHookSeven:\n")
    changed = tmp_path / "template.yaml"
    changed.write_text(text)
    old, new = _load(KEPT[-1]), render.load(changed)
    assert "LifecycleHook07" in old["Resources"] and "LifecycleHook07" not in new["Resources"]
