"""A small in-memory cache of rendered public pages, keyed by everything they are made of.

The booking page is the one page strangers load in bursts (a link shared in a mailing list).
Its content depends only on the link, the query string, the host's calendars' state, the
host's bookings and the current minute, all cheap to read; building it (slots over the
busy time, then the template) costs ten times more. The caller puts every such input into
the key, so an entry is never stale beyond the minute it was made in; nothing is ever
invalidated by hand. Bounded, thread-safe (waitress serves from several threads).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

MAX_ENTRIES = 256


class PageCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        with self._lock:
            self._pages[key] = body
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)
