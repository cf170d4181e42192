"""Each function's deployment package as Lambda receives it: the `bootstrap` that `sam build` produced,
zipped. Writes a table (and prints it).

Usage: python bench/package_sizes.py <.aws-sam/build> <output.md>
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import report

LIMIT = 4_000_000  # the target for a zipped bootstrap
MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}  # ELF e_machine values


def machine(elf: bytes) -> str:
    """The architecture an ELF executable was built for (e_machine, a little-endian u16 at offset 18)."""
    if elf[:4] != b"\x7fELF":
        return "not an ELF executable"
    (code,) = struct.unpack_from("<H", elf, 18)
    return MACHINES.get(code, f"e_machine {code:#x}")


def main() -> None:
    build, out = Path(sys.argv[1]), Path(sys.argv[2])
    rows = []
    for bootstrap in sorted(build.glob("*Function/bootstrap")):
        data = bootstrap.read_bytes()
        arch = machine(data)
        rows.append((bootstrap.parent.name, len(data), len(report.zipped({"bootstrap": data})), arch))
    if not rows:
        raise SystemExit(f"no */bootstrap under {build}: run sam build first")
    lines = [
        "# Deployment packages (`sam build`, arm64, release profile)",
        "",
        "| function | bootstrap | zipped | target |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {name} | {raw / 1e6:.2f} MB | {z / 1e6:.2f} MB{'' if z < LIMIT else ' (over 4 MB)'} | {arch} |" for name, raw, z, arch in rows]
    report.write(out, lines)


if __name__ == "__main__":
    main()
