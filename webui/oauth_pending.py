"""Started sign-in flows waiting for the provider's answer: one store for Google and Microsoft.

Linking a Google or Microsoft account sends the browser away to the provider with only a
`state`; everything else the answer needs (the PKCE verifier above all) stays here, on the
server, in memory. A flow is bound to the user who started it, forgotten after
PENDING_LIFETIME seconds (10 minutes: the providers' codes do not live longer either) and
used once: taking it removes it. A user may have MAX_PENDING_PER_USER flows waiting (each
POST of a form starts one); the oldest make room for a new one.

Each provider has its own store in the Flask app (pending_flows(kind)), so an answer can only
ever be taken at the callback of the provider that started it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import current_app

from daemon.models import AccessMode

#: how long a started flow may wait for the provider's answer, in seconds
PENDING_LIFETIME = 600
#: started flows a user may have waiting at once (each POST of the form starts one)
MAX_PENDING_PER_USER = 10


@dataclass(frozen=True)
class Waiting:
    """A flow sent to the provider, waiting for its answer at the callback."""

    #: what the provider's module needs to finish the flow (PKCE verifier, ...): server side only
    flow: object = field(repr=False)
    state: str
    mode: AccessMode
    user_id: int
    #: the new account's name; "" when re-linking
    name: str
    #: the account being re-linked, else None
    account_id: int | None
    #: time.monotonic() when the flow started
    started: float

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) - self.started > PENDING_LIFETIME


class PendingFlows:
    """The per-app store of one provider's started flows (one lock: the web server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_state: dict[str, Waiting] = {}

    def keep(self, waiting: Waiting) -> None:
        with self._lock:
            for state in [s for s, w in self._by_state.items() if w.expired()]:
                del self._by_state[state]
            mine = sorted((w.started, s) for s, w in self._by_state.items() if w.user_id == waiting.user_id)
            for _started, state in mine[:max(0, len(mine) - MAX_PENDING_PER_USER + 1)]:
                del self._by_state[state]
            self._by_state[waiting.state] = waiting

    def take(self, state: str, user_id: int) -> Waiting | None:
        """The user's flow with this state, removed (an answer is used once); None if there is none."""
        with self._lock:
            waiting = self._by_state.get(state)
            if waiting is None or waiting.user_id != user_id:
                return None
            del self._by_state[state]
        return None if waiting.expired() else waiting


def pending_flows(kind: str) -> PendingFlows:
    """The current app's store of `kind`'s ("google", "microsoft") started flows."""
    key = f"homecal_{kind}_pending"
    flows = current_app.extensions.get(key)
    if flows is None:
        flows = current_app.extensions.setdefault(key, PendingFlows())
    return flows
