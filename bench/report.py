"""What the benchmark scripts share: a process's peak memory, and writing a report."""

from __future__ import annotations

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
