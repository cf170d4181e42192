"""Checks of template.yaml that cfn-lint cannot make.

The alias-shifter's state machine definition (its own file, so the Rust tests can follow it) is checked by
cfn-lint's Amazon States Language rules, which apply to an inline ``AWS::StepFunctions::StateMachine``
definition only: after the SAM transform the definition is a string cfn-lint does not read. The
dashboard's body is a string too: it must be JSON and show the metrics the functions emit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[3]


def _definition() -> tuple[dict[str, Any], dict[str, Any]]:
    template, problems = decode_str((ROOT / "template.yaml").read_text())
    assert not problems and template is not None
    machine = template["Resources"]["AliasShiftStateMachine"]["Properties"]
    return machine, json.loads((ROOT / machine["DefinitionUri"]).read_text())


def _lint(definition: dict[str, Any], substitutions: dict[str, Any]) -> list[str]:
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "RoleArn": "arn:aws:iam::123456789012:role/machine",
            "Definition": definition,
            "DefinitionSubstitutions": {k: "arn:aws:lambda:us-east-1:123456789012:function:shifter" for k in substitutions},
        }}},
    }
    return [str(m) for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))]


def test_the_definition_passes_the_states_language_rules() -> None:
    machine, definition = _definition()
    assert _lint(definition, machine["DefinitionSubstitutions"]) == []


def test_the_rules_do_catch_a_broken_definition() -> None:
    machine, definition = _definition()
    definition["States"]["Wait"]["Type"] = "Sleep"
    assert any("Sleep" in m for m in _lint(definition, machine["DefinitionSubstitutions"]))


def test_the_dashboard_is_json_and_shows_only_metrics_the_functions_emit() -> None:
    import re

    template, _ = decode_str((ROOT / "template.yaml").read_text())
    body, _values = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    shown = {
        m[1]
        for w in dashboard["widgets"] if w["type"] == "metric"
        for m in w["properties"]["metrics"] if m[0] == "shipshape"
    }
    sources = "".join(p.read_text() for p in (ROOT / "functions").glob("*/src/*.rs"))
    emitted = set(re.findall(r'(?:count|add)\(\s*"([A-Za-z]+)"', sources))
    assert shown and shown <= emitted, shown - emitted
    assert emitted <= shown, f"emitted but not on the dashboard: {emitted - shown}"


def test_every_template_parameter_is_documented_in_the_readme() -> None:
    template, _ = decode_str((ROOT / "template.yaml").read_text())
    readme = (ROOT / "README.md").read_text()
    missing = [p for p in template["Parameters"] if f"| `{p}` |" not in readme]
    assert missing == []
