"""The host's busy time for a booking link, and the fail-closed checks around it.

Busy time comes from what the sync keeps (the mirror's plain columns: transparent,
cancelled and declined events and homecal's own copies are already left out) plus the
host's confirmed bookings through any link. A conflict calendar that cannot be read (its
account needs re-linking, is failing or backing off, or was never read) makes the link
unavailable rather than offering times that may be taken. At booking time the conflict
calendars are re-read live (one incremental request each when nothing changed).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

from daemon.booking.availability import BusyTime
from daemon.config import Config
from daemon.errors import HomecalError
from daemon.models import AccessMode
from daemon.store import accounts, bookings, mirror
from daemon.store.accounts import Calendar
from daemon.store.booking_links import BookingLink
from daemon.store.db import Store

log = logging.getLogger("homecal.booking")

#: how long a booking waits for a running sync cycle before saying "try again"
LIVE_CHECK_WAIT_SECONDS = 30.0
#: all-day rows are stored as midnights of the zone they were synced in; read a little wider
_ALL_DAY_MARGIN = timedelta(hours=14)


class Unreadable(HomecalError):
    """A conflict calendar cannot be read right now; the message names it for the host."""

    http_status = 503


def conflict_calendars(store: Store, link: BookingLink) -> list[Calendar]:
    """The link's conflict calendars that still exist and belong to the link's owner."""
    wanted = set(link.settings.conflict_calendar_ids)
    return [c for c in accounts.calendars(store, user_id=link.user_id) if c.id in wanted]


def _read_from_provider(account) -> bool:
    # nothing is read from a no-access provider account; a local calendar is homecal's own
    return account.mode != AccessMode.NO_ACCESS or account.kind == "local"


def check_readable(store: Store, link: BookingLink, now: datetime) -> list[Calendar]:
    """The conflict calendars, or Unreadable when one of them cannot be trusted right now."""
    cals = conflict_calendars(store, link)
    by_id = {a.id: a for a in accounts.all_accounts(store, link.user_id)}
    for cal in cals:
        account = by_id[cal.account_id]
        if not _read_from_provider(account):
            continue
        if account.status == "needs-relink":
            raise Unreadable(f"account {account.name} needs re-linking")
        if account.status == "error" or (account.backoff_until and account.backoff_until > now.isoformat()):
            raise Unreadable(f"account {account.name} could not be read lately")
        if cal.last_refresh_at is None:
            raise Unreadable(f"calendar {cal.name} has not been read yet")
    return cals


class _MergedBusy:
    """The conflict calendars' busy time, merged once and kept until a calendar is read again.

    A booking page asks for one week at a time, many times a minute; reading and merging
    20,000 rows for each request would cost more than everything else together. The key is
    every calendar's (id, last read, cursor): each mirror change is followed by a new cursor
    and read time, so a change made anywhere (the daemon, `homecal sync`) is seen at the next
    request after it. Only what is offered uses this; taking a slot reads the rows afresh.
    """

    MAX_ENTRIES = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[list[float], list[float], list[float], list[float]]] = OrderedDict()

    def get(self, store: Store, calendars: list[Calendar]) -> tuple[list[float], list[float], list[float], list[float]]:
        """(timed starts, timed ends, all-day starts, all-day ends) as sorted, merged epochs."""
        key = (str(store.path), tuple((c.id, c.last_refresh_at, c.cursor) for c in calendars))
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        rows = mirror.busy_between(store, [c.id for c in calendars], _EVER[0], _EVER[1])
        value = (*_merge((r.start_utc.timestamp(), r.end_utc.timestamp()) for r in rows if not r.all_day),
                 *_merge((r.start_utc.timestamp(), r.end_utc.timestamp()) for r in rows if r.all_day))
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)
        return value


def _merge(pairs) -> tuple[list[float], list[float]]:
    starts: list[float] = []
    ends: list[float] = []
    for a, b in sorted(pairs):
        if starts and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def _slice(starts: list[float], ends: list[float], lo: float, hi: float, all_day: bool) -> list[BusyTime]:
    # merged intervals are disjoint and sorted, so their ends are sorted too
    i = bisect.bisect_right(ends, lo)
    out = []
    while i < len(starts) and starts[i] < hi:
        out.append(BusyTime(datetime.fromtimestamp(starts[i], timezone.utc),
                            datetime.fromtimestamp(ends[i], timezone.utc), all_day))
        i += 1
    return out


_MERGED = _MergedBusy()
_EVER = (datetime(1970, 1, 2, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc))


def busy_times(store: Store, link: BookingLink, calendars: list[Calendar], start: datetime, end: datetime, *,
               exclude_booking: int | None = None, fresh: bool = False) -> list[BusyTime]:
    """Busy time overlapping [start, end): the conflict calendars' events and the host's bookings.

    `fresh` reads the mirror rows of the range now (taking a slot); otherwise the merged
    busy time kept per state of the calendars serves (offering slots). `exclude_booking`
    leaves out that booking and its own event (moving it), which needs the rows too.
    """
    own_event = None
    if exclude_booking is not None:
        fresh = True
        row = store.db.execute("SELECT target_calendar_id, target_id FROM bookings WHERE id = ?",
                               [exclude_booking]).fetchone()
        own_event = (row[0], row[1]) if row and row[1] else None
    if fresh:
        rows = mirror.busy_between(store, [c.id for c in calendars], start - _ALL_DAY_MARGIN,
                                   end + _ALL_DAY_MARGIN, exclude_item=own_event)
        out = [BusyTime(r.start_utc, r.end_utc, r.all_day) for r in rows]
    else:
        timed_s, timed_e, day_s, day_e = _MERGED.get(store, calendars)
        lo, hi = start.timestamp(), end.timestamp()
        margin = _ALL_DAY_MARGIN.total_seconds()
        out = _slice(timed_s, timed_e, lo, hi, False) + _slice(day_s, day_e, lo - margin, hi + margin, True)
    out += [BusyTime(a, b) for a, b in bookings.busy_of_user(store, link.user_id, start, end,
                                                             exclude_id=exclude_booking)]
    return out


def live_recheck(config: Config, store: Store, link: BookingLink, calendars: list[Calendar]) -> None:
    """Re-read the conflict calendars now, through the sync engine (the mirror is updated).

    Shares the sync lock with the scheduler's cycle, so it never plans against rows a cycle
    is writing. Raises Unreadable when a calendar cannot be read or the lock is not free soon.
    """
    from daemon.sync.cycle import SYNC_LOCK, engine_for

    readable = {a.id for a in accounts.all_accounts(store, link.user_id) if _read_from_provider(a)}
    ids = [c.id for c in calendars if c.account_id in readable]
    if not ids:
        return
    if not SYNC_LOCK.acquire(timeout=LIVE_CHECK_WAIT_SECONDS):
        raise Unreadable("a sync is running and did not finish in time")
    try:
        failed = engine_for(store, config).refresh_calendars(link.user_id, calendar_ids=ids)
    finally:
        SYNC_LOCK.release()
    if failed:
        log.warning("booking link %s: %d conflict calendar(s) could not be re-read; not booking", link.id, failed)
        raise Unreadable(f"{failed} conflict calendar(s) could not be read")
