"""The release: one version (Cargo.toml's) everywhere, Serverless Application Repository metadata that
`sam publish` accepts, the generated hook slots current, a CHANGELOG entry, and, when SHIPSHAPE_TEMPLATE
names a packaged bundle's template, a bundle that deploys with the SAM CLI alone."""

from __future__ import annotations

import importlib.util
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

import render


def cargo_version() -> str:
    manifest = (render.ROOT / "Cargo.toml").read_text()
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[)", manifest, re.S | re.M)
    assert section
    found = re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    assert found
    return found.group(1)


def application() -> dict[str, Any]:
    return render.load()["Metadata"]["AWS::ServerlessRepo::Application"]


def is_bundle() -> bool:
    return render.template_path() != (render.ROOT / "template.yaml").resolve()


def test_the_template_version_is_the_workspace_version() -> None:
    assert application()["SemanticVersion"] == cargo_version()


def test_the_application_metadata_is_what_the_serverless_application_repository_accepts() -> None:
    # Constraints from the Serverless Application Repository API reference (CreateApplication).
    app = application()
    assert re.fullmatch(r"[a-zA-Z0-9\-]{1,140}", app["Name"])
    assert re.fullmatch(r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?", app["Author"]) and len(app["Author"]) <= 127
    assert 1 <= len(app["Description"]) <= 256
    assert len(app["Labels"]) <= 10 and all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", x) for x in app["Labels"])
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", app["SemanticVersion"])
    assert app["SpdxLicenseId"] == "Apache-2.0"
    assert all(app[k].startswith("https://") for k in ("HomePageUrl", "SourceCodeUrl"))
    folder = render.template_path().parent
    for key in ("LicenseUrl", "ReadmeUrl"):
        assert (folder / app[key]).is_file(), f"{key}: {app[key]} is not next to the template"


def test_the_changelog_has_the_version() -> None:
    assert f"## {cargo_version()}" in (render.ROOT / "CHANGELOG.md").read_text()


def test_the_hook_slots_are_current() -> None:
    if is_bundle():
        pytest.skip("the source template's check")
    spec = importlib.util.spec_from_file_location("hook_slots", render.ROOT / "release" / "hook_slots.py")
    assert spec and spec.loader
    slots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(slots)
    text = render.template_path().read_text()
    assert slots.render(text) == text, "run release/hook_slots.py"


def test_a_bundle_needs_nothing_but_the_sam_cli() -> None:
    if not is_bundle():
        pytest.skip("SHIPSHAPE_TEMPLATE names no bundle")
    folder = render.template_path().parent
    assert folder.name == f"shipshape-{cargo_version()}"
    template = render.load()
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 4
    for lid, resource in functions.items():
        assert "Metadata" not in resource, f"{lid} keeps build metadata"
        code = folder / resource["Properties"]["CodeUri"]
        assert code.suffix == ".zip" and code.is_file(), lid
        with zipfile.ZipFile(code) as z:
            (info,) = z.infolist()
            assert info.filename == "bootstrap"
            assert stat.S_IMODE(info.external_attr >> 16) & 0o111, f"{code.name}: bootstrap is not executable"
            head = z.read("bootstrap")[:20]
        # An arm64 (e_machine 183) ELF executable: what provided.al2023 on arm64 runs.
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183, code.name
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            assert (folder / resource["Properties"]["DefinitionUri"]).is_file()
    sums = (folder / "SHA256SUMS").read_text()
    assert all(f"  {p.name}\n" in sums for p in folder.iterdir() if p.name != "SHA256SUMS")
