"""One logger tree ("homecal.*") to stderr, readable by people and by journald.

Under systemd, stderr is a journal stream ($JOURNAL_STREAM is set): lines then carry the
syslog priority prefix `<N>` that journald turns into the entry's priority, and no
timestamp (journald adds its own). Elsewhere lines carry an ISO timestamp and level name.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        # Every line of a multi-line message keeps the priority, so journald files it right.
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


def setup_logging(level: str = "info", stream=None) -> None:
    """Configure the `homecal` logger once; safe to call again (replaces its handler)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger("homecal")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # waitress and apscheduler log under their own names: route them through the same handler
    # at warning level so their chatter stays out of the journal.
    for name in ("waitress", "apscheduler"):
        lib = logging.getLogger(name)
        for old in list(lib.handlers):
            lib.removeHandler(old)
        lib.addHandler(handler)
        lib.setLevel(logging.WARNING)
        lib.propagate = False
