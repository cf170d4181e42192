"""What the benchmark scripts share: a process's peak memory, a deployment package's zip, and writing a report."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), what Lambda's "Max Memory Used" reports."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write(out: Path | None, lines: list[str]) -> None:
    """Print the report, and write it to `out` (a Markdown file the README links) if given."""
    report = "\n".join(lines) + "\n"
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)


def zipped(files: dict[str, bytes]) -> bytes:
    """A deployment package zipped as the SAM CLI zips it for upload: deflate at zlib's default level."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()
