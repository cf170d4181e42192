#!/usr/bin/env python3
"""Makes the release bundle from `sam build`'s output: dist/shipshape-<version>/ with each function's
prebuilt arm64 zip, a template that points at them (deployable with only the SAM CLI), the state machine
definition, README, LICENSE, CHANGELOG, a samconfig.toml with the deploy defaults and SHA256SUMS; and
dist/shipshape-<version>.tar.gz of the same. The zips and the archive are byte-for-byte reproducible
(fixed timestamps and modes, sorted entries).

    package.py BUILD_DIR DIST_DIR      # BUILD_DIR: sam build's output (.aws-sam/build)
    package.py --template-only FILE    # only the packaged template (to keep a release's template)

The version is [workspace.package] version in Cargo.toml: the template's AWS::ServerlessRepo::Application
SemanticVersion is written from it. Standard library only.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCH = (1980, 1, 1, 0, 0, 0)

# A function built by sam build from this workspace: its build metadata and local CodeUri.
FUNCTION = re.compile(
    r"^  (?P<id>[A-Za-z0-9]+):\n"
    r"    Type: AWS::Serverless::Function\n"
    r"    Metadata:\n"
    r"      BuildMethod: rust-cargolambda\n"
    r"      BuildProperties:\n"
    r"        Binary: (?P<binary>[a-z0-9-]+)\n"
    r"    Properties:\n"
    r"      CodeUri: \.\n",
    re.M,
)
DEFINITION = re.compile(r"^(      DefinitionUri: )(\S+)\n", re.M)

SAMCONFIG = """\
# Defaults for `sam deploy` of this bundle; `sam deploy --guided` asks for the parameters (see the README's
# Configuration table) and can save your answers here.
version = 0.1

[default.global.parameters]
stack_name = "shipshape"

[default.deploy.parameters]
capabilities = "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND"
confirm_changeset = true
resolve_s3 = true
"""


def version() -> str:
    manifest = (ROOT / "Cargo.toml").read_text()
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[)", manifest, re.S | re.M)
    found = section and re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    if not found:
        raise SystemExit("Cargo.toml: no [workspace.package] version")
    return found.group(1)


def packaged_template(text: str, ver: str) -> tuple[str, dict[str, str], list[str]]:
    """The template with each function's CodeUri pointing at <binary>.zip and no build metadata, the
    state machine definition next to it, and the SemanticVersion set. Returns it, {logical id: binary}
    and the definition files to copy."""
    functions = {m["id"]: m["binary"] for m in FUNCTION.finditer(text)}
    declared = re.findall(r"^  [A-Za-z0-9]+:\n    Type: AWS::Serverless::Function\n", text, re.M)
    if not functions or len(functions) != len(declared):
        raise SystemExit("template.yaml: every AWS::Serverless::Function must be built by rust-cargolambda from CodeUri .")
    text = FUNCTION.sub(
        lambda m: f"  {m['id']}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: {m['binary']}.zip\n", text
    )
    definitions = [m.group(2) for m in DEFINITION.finditer(text)]
    text = DEFINITION.sub(lambda m: f"{m.group(1)}{Path(m.group(2)).name}\n", text)
    text, versions = re.subn(r"^(    SemanticVersion: ).*$", rf"\g<1>{ver}", text, flags=re.M)
    if versions != 1:
        raise SystemExit("template.yaml: expected one SemanticVersion (AWS::ServerlessRepo::Application)")
    if "BuildMethod" in text or "CodeUri: ." in text:
        raise SystemExit("template.yaml: build metadata left after packaging")
    header = (
        f"# shipshape {ver}: prebuilt arm64 functions. Deploy with only the SAM CLI:\n"
        "#   sam deploy --guided --template-file template.yaml\n"
    )
    return header + text, functions, definitions


def zip_bootstrap(binary: Path, target: Path) -> None:
    info = zipfile.ZipInfo("bootstrap", date_time=EPOCH)
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    with zipfile.ZipFile(target, "w") as z:
        z.writestr(info, binary.read_bytes(), compresslevel=9)


def tarball(bundle: Path, target: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(bundle.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=f"{bundle.name}/{path.relative_to(bundle)}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() else 0o644
            with path.open("rb") if path.is_file() else io.BytesIO() as f:
                tar.addfile(info, f if path.is_file() else None)
    import gzip

    with target.open("wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())


def main(argv: list[str]) -> int:
    ver = version()
    source = (ROOT / "template.yaml").read_text()
    template, functions, definitions = packaged_template(source, ver)
    if argv[:1] == ["--template-only"] and len(argv) == 2:
        Path(argv[1]).write_text(template)
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build, dist = Path(argv[0]), Path(argv[1])
    bundle = dist / f"shipshape-{ver}"
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    for logical_id, binary in sorted(functions.items()):
        bootstrap = build / logical_id / "bootstrap"
        if not bootstrap.is_file():
            raise SystemExit(f"{bootstrap}: missing; run sam build (make build) first")
        zip_bootstrap(bootstrap, bundle / f"{binary}.zip")
    for definition in definitions:
        shutil.copyfile(ROOT / definition, bundle / Path(definition).name)
    (bundle / "template.yaml").write_text(template)
    (bundle / "samconfig.toml").write_text(SAMCONFIG)
    for name in ("README.md", "LICENSE", "CHANGELOG.md"):
        shutil.copyfile(ROOT / name, bundle / name)
    sums = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(bundle.iterdir()) if p.is_file()
    )
    (bundle / "SHA256SUMS").write_text(sums)
    archive = dist / f"shipshape-{ver}.tar.gz"
    tarball(bundle, archive)
    for p in sorted(bundle.iterdir()):
        print(f"  {p.stat().st_size:>10,}  {p}")
    print(f"  {archive.stat().st_size:>10,}  {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
