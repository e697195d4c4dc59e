"""What every benchmark report states about where it ran: the CPU model and the commit."""

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
