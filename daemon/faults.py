"""Crash points for tests that must prove crash safety with a real process death.

`crash_point("name")` kills the process on the spot (os._exit, like SIGKILL: no cleanup,
no flush) when $HOMECAL_CRASH_AT equals that name. In production the variable is unset and
the call costs one dict lookup.
"""

from __future__ import annotations

import os

ENV = "HOMECAL_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os._exit(137)
