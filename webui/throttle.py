"""An in-memory limit on failed log-ins per remote address (sliding window).

In memory on purpose: homecal is one process, and a restart forgetting the count is an
acceptable trade for not writing to the database on every failed attempt. Behind a reverse
proxy every request shares the proxy's address, so the limit then applies to everyone at
once; that is the safe direction to fail in.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: failed attempts allowed per address inside WINDOW_SECONDS; the next one is refused
MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60
#: bound on tracked addresses, so a flood from many addresses cannot grow memory forever
MAX_TRACKED = 10_000


class LoginThrottle:
    """Counts failures per key; thread-safe because waitress serves from several threads."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        """The failure times of `key` still inside the window (caller holds the lock)."""
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not blocked."""
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.max_failures:
                return 0
            # Blocked until enough of the oldest failures have left the window.
            oldest_that_counts = times[len(times) - self.max_failures]
            return max(1, int(oldest_that_counts + self.window_seconds - now) + 1)

    def record_failure(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque()
            times.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        """Forget `key`'s failures (after a successful log-in)."""
        with self._lock:
            self._failures.pop(key, None)
