"""Which times a booking link offers: weekly hours minus busy time, in the host's zone.

Pure code: no store, no I/O, and the clock is passed in (`now`), so the same inputs always
give the same slots. The caller reads busy time from what the sync keeps (and re-reads the
conflict calendars live at booking time) and hands it over as `BusyTime`s: recurring events
already expanded into instances, and transparent, declined and cancelled events already left
out - everything that arrives here is busy.

Times of day in the settings are the host's wall clock in `tz` (an IANA zone): "09:00" stays
09:00 local on both sides of a DST change. Candidate starts step through wall-clock time;
a start that does not exist (the spring-forward gap) is skipped, an ambiguous one (fall back)
is its first occurrence (fold=0). A slot lasts `duration` real minutes from its start.

Everything is compared as instants, so the result does not depend on the zones `now`,
`start`, `end` or the busy times are given in. Intervals are half-open: a slot that ends when
a busy event starts (buffers included) is free.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from daemon.booking.link_settings import LinkSettings, window_dates

UTC = timezone.utc
_DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class BusyTime:
    """One busy interval of a conflict calendar."""

    start: datetime  # aware, any zone (usually UTC)
    end: datetime  # exclusive
    all_day: bool = False  # an all-day event (its start/end are the midnights in the host zone)


@dataclass(frozen=True)
class Slot:
    """One bookable time: `end - start` is the duration asked for."""

    start: datetime  # aware UTC
    end: datetime  # aware UTC


def _check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of the host's `day`, in UTC. A midnight that falls in a DST gap maps
    (fold=0, the offset before the change) to the moment of the change, which is that instant."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def bookable_range(settings: LinkSettings, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """UTC [first, last) anything may be booked in: the later of now + minimum notice and the
    start of the window's first day, to the end of the window's last day (host zone).
    When nothing is left (a fixed window that has passed) first == last."""
    _check_aware(now, "now")
    first_day, last_day = window_dates(settings, now.astimezone(tz).date())
    first = max(now.astimezone(UTC) + timedelta(minutes=settings.min_notice), _day_start(first_day, tz))
    last = _day_start(last_day + timedelta(days=1), tz)
    return min(first, last), last


class _Busy:
    """Busy intervals sorted once by start, with the running maximum of their ends, so one
    question "does [a, b) overlap anything busy?" is one bisect: the intervals starting before
    `b` overlap it exactly when the latest end among them is after `a`. (This is the merged
    busy list without a Python-level merge loop, which 20,000 intervals would feel.)"""

    __slots__ = ("starts", "max_ends")

    def __init__(self, busy: Iterable[BusyTime], *, all_day_blocks: bool, lo: datetime, hi: datetime):
        spans: list[tuple[datetime, datetime]] = []
        add = spans.append
        for b in busy:
            if b.all_day and not all_day_blocks:
                continue
            s, e = b.start, b.end
            # Everything in UTC (the same tzinfo object), so comparisons are plain and fast.
            if s.tzinfo is not UTC:
                if s.tzinfo is None:
                    raise ValueError("busy times must be timezone-aware datetimes")
                s = s.astimezone(UTC)
            if e.tzinfo is not UTC:
                if e.tzinfo is None:
                    raise ValueError("busy times must be timezone-aware datetimes")
                e = e.astimezone(UTC)
            # Only intervals that can meet a slot in [lo, hi) matter (dropping the rest keeps
            # one is_bookable check cheap). A zero-length event is kept: it blocks the slots it
            # falls strictly inside, as the overlap test says; one ending before it starts is junk.
            if s <= e and e > lo and s < hi:
                add((s, e))
        spans.sort(key=itemgetter(0))
        self.starts = [s for s, _ in spans]
        self.max_ends = list(accumulate([e for _, e in spans], max))

    def overlaps(self, a: datetime, b: datetime) -> bool:
        k = bisect_left(self.starts, b)
        return k > 0 and self.max_ends[k - 1] > a


def _candidates(settings: LinkSettings, day: date, duration: int, tz: ZoneInfo) -> Iterable[datetime]:
    """The day's candidate starts in UTC, in order: each range stepped in wall-clock time,
    keeping the starts whose wall-clock end fits the range and that exist in `tz`."""
    step = settings.step(duration)
    y, mo, d = day.year, day.month, day.day
    # Validated settings hold sorted ranges; sorting again keeps the order even for hand-made ones.
    for a, b in sorted(settings.ranges_on(day), key=lambda r: r[0]):
        first = a.hour * 60 + a.minute
        last = (_DAY_MINUTES if b is None else b.hour * 60 + b.minute) - duration
        for m in range(first, last + 1, step):
            h, mi = divmod(m, 60)
            # fold=0 (the default): an ambiguous time is its first occurrence.
            utc = datetime(y, mo, d, h, mi, tzinfo=tz).astimezone(UTC)
            back = utc.astimezone(tz)
            if back.minute != mi or back.hour != h or back.day != d:
                continue  # in a spring-forward gap: this wall-clock time never happens
            yield utc


def _check_duration(settings: LinkSettings, duration: int) -> None:
    if duration not in settings.durations:
        offered = ", ".join(str(d) for d in settings.durations)
        raise ValueError(f"this link offers {offered} minutes, not {duration}")


def slots(settings: LinkSettings, *, duration: int, tz: ZoneInfo, busy: Iterable[BusyTime],
          booked_per_day: Mapping[date, int], now: datetime,
          start: datetime | None = None, end: datetime | None = None) -> list[Slot]:
    """Every bookable slot of `duration` minutes whose start lies in [start, end) (default:
    bookable_range), in order.

    A candidate start is bookable when it is at least `min_notice` after `now`, its host date
    is inside the window and has fewer bookings than `daily_limit` (`booked_per_day`, keyed by
    host date), and [start - buffer_before, end + buffer_after) overlaps no busy interval.
    All-day busy times count only when `settings.all_day_blocks`. `busy` may be unsorted and
    overlapping; it must hold only busy time (the caller leaves out transparent, declined and
    cancelled events and expands recurring ones). Raises ValueError for a duration the link
    does not offer or a naive datetime.
    """
    _check_duration(settings, duration)
    first, last = bookable_range(settings, tz, now)
    if start is not None:
        _check_aware(start, "start")
        first = max(first, start.astimezone(UTC))
    if end is not None:
        _check_aware(end, "end")
        last = min(last, end.astimezone(UTC))
    if first >= last:
        return []

    before = timedelta(minutes=settings.buffer_before)
    span = timedelta(minutes=duration)
    reach = timedelta(minutes=duration + settings.buffer_after)  # from a slot's start to its buffer's end
    blocked = _Busy(busy, all_day_blocks=settings.all_day_blocks, lo=first - before, hi=last + reach)
    first_day, last_day = window_dates(settings, now.astimezone(tz).date())
    day = max(first_day, first.astimezone(tz).date())
    stop = min(last_day, last.astimezone(tz).date())
    limit = settings.daily_limit
    out: list[Slot] = []
    while day <= stop:
        if limit is None or booked_per_day.get(day, 0) < limit:
            for s in _candidates(settings, day, duration, tz):
                if first <= s < last and not blocked.overlaps(s - before, s + reach):
                    out.append(Slot(s, s + span))
        day += timedelta(days=1)
    return out


def is_bookable(settings: LinkSettings, *, duration: int, tz: ZoneInfo, busy: Iterable[BusyTime],
                booked_per_day: Mapping[date, int], now: datetime, start: datetime) -> bool:
    """Whether `start` is a bookable start under the same rules as `slots` (used at booking
    time, after the live re-check of the conflict calendars). True exactly when `slots` would
    return a Slot starting at that instant."""
    _check_aware(start, "start")
    # In UTC first: aware arithmetic and == in another zone are wall-clock operations that
    # lose the fold of an ambiguous time.
    at = start.astimezone(UTC)
    # The same code path on a one-instant range, so the two can never disagree.
    found = slots(settings, duration=duration, tz=tz, busy=busy, booked_per_day=booked_per_day, now=now,
                  start=at, end=at + timedelta(microseconds=1))
    return any(s.start == at for s in found)
