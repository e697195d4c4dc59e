"""Crash points for tests that must prove crash safety with a real process death.

`crash_point("name")` kills the process on the spot (os._exit, like SIGKILL: no cleanup,
no flush) when $HOMECAL_CRASH_AT is "name", or "name:K" to die at the K-th time that point
is reached. In production the variable is unset and the call costs one dict lookup.
"""

from __future__ import annotations

import os

ENV = "HOMECAL_CRASH_AT"
_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os._exit(137)
