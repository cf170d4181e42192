"""checkov on the SAM-transformed template and parliament on the rendered IAM policies: every finding is
either fixed or listed, with its reason, in accepted-findings.yaml (and no listed one is stale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

import render
from test_policies import rendered

HERE = Path(__file__).resolve().parent
ACCEPTED = yaml.safe_load((HERE / "accepted-findings.yaml").read_text())


def _expected(tool: str) -> set[tuple[str, str]]:
    return {(check, where) for check, entry in ACCEPTED[tool].items() for where in entry["where"]}


@cache
def checkov_findings(tmp: str) -> set[tuple[str, str]]:
    template = render.load()
    transformed = render.transform(template, render.parameters(template))
    path = Path(tmp) / "transformed.json"
    path.write_text(json.dumps(transformed, indent=1))
    checkov = Path(sys.executable).with_name("checkov")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    run = subprocess.run(
        [str(checkov), "-f", str(path), "--framework", "cloudformation", "-o", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if run.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({run.returncode}): {run.stderr[-2000:]}")
    report = json.loads(run.stdout)
    report = report[0] if isinstance(report, list) else report
    if report.get("summary", {}).get("parsing_errors"):
        raise RuntimeError("checkov could not parse the transformed template")
    return {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["failed_checks"]}


def test_checkov_finds_nothing_but_the_accepted(tmp_path_factory: pytest.TempPathFactory) -> None:
    found = checkov_findings(str(tmp_path_factory.mktemp("checkov")))
    expected = _expected("checkov")
    assert found - expected == set(), "new checkov findings: fix them, or accept them with a reason"
    assert expected - found == set(), "accepted checkov findings that no longer occur: remove them"


def parliament_findings() -> set[tuple[str, str]]:
    from parliament import analyze_policy_string

    found = set()
    for scope in ("all", "50"):
        _, resources = rendered(scope)
        for role, policies in render.role_policies(resources).items():
            for name, document in {**policies["inline"], **policies["managed"]}.items():
                policy = analyze_policy_string(json.dumps(document), include_community_auditors=True)
                for f in policy.findings:
                    detail: Any = f.detail
                    if f.issue == "RESOURCE_STAR":
                        what = " ".join(sorted(detail))
                    elif f.issue == "PERMISSIONS_MANAGEMENT_ACTIONS":
                        what = " ".join(sorted(f.location.get("actions", [])))
                    else:
                        what = name
                    found.add((f.issue, f"{role} {what}"))
        for lid, r in resources.items():
            if r["Type"] == "AWS::SNS::TopicPolicy":
                policy = analyze_policy_string(json.dumps(r["Properties"]["PolicyDocument"]), include_community_auditors=True)
                found |= {(f.issue, lid) for f in policy.findings}
    return found


def test_parliament_finds_nothing_but_the_accepted() -> None:
    found = parliament_findings()
    expected = _expected("parliament")
    assert found - expected == set(), "new parliament findings: fix them, or accept them with a reason"
    assert expected - found == set(), "accepted parliament findings that no longer occur: remove them"


def test_the_readme_gives_the_reason_for_every_accepted_finding() -> None:
    readme = (render.ROOT / "README.md").read_text()
    security = readme[readme.index("## Security") :]
    security = security[: security.index("\n## ", 4)]
    missing = [check for tool in ACCEPTED.values() for check in tool if f"`{check}`" not in security]
    assert missing == []
