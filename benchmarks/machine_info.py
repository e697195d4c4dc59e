"""What every benchmark report shares: where it ran (the CPU model, the commit) and how its
section of docs/benchmarks.md is replaced."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def commit() -> str:
    """The short HEAD commit, flagged when daemon/ has uncommitted changes (what was measured)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=False, cwd=REPO).stdout.strip() or "?"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "daemon"], capture_output=True, text=True,
                               check=False, cwd=REPO).stdout.strip()
    except OSError:
        return "?"
    return head + (" with uncommitted changes in daemon/" if dirty else "")


HEADER = ("# Benchmarks\n\n"
          "Measurements of homecal against other tools and against the floor of what the servers allow. "
          "Each section is written by the script named in it; rerun the command to refresh it. Nothing "
          "here is a test: the numbers are measured and reported as they are, including goals not met.\n")


def write_section(path: Path, begin: str, end: str, section: str) -> None:
    """Replace the text between `begin` and `end` in `path` with `section` (which carries both
    markers), or append it; everything else in the file stays as it is."""
    text = path.read_text() if path.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def provenance() -> str:
    """"commit abc1234, 2 x <CPU>, Python 3.11.7": where a measurement was made."""
    import os

    return f"commit {commit()}, {os.cpu_count()} x {cpu_model()}, Python {platform.python_version()}"
