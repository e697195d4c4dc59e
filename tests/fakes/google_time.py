"""Time arithmetic of the Google fake: RFC 3339, event extents, recurrence expansion, busy merge.

Recurring masters are expanded with dateutil's rrule in the master's `start.timeZone` (the
calendar's zone if absent). A timed series is expanded from an aware zoneinfo DTSTART, which
keeps the wall-clock time across DST changes (09:00 Europe/Berlin stays 09:00 after the
clocks move); an all-day series is expanded on naive dates.

An occurrence is keyed by the suffix Google puts on instance ids: `YYYYMMDDTHHMMSSZ` (UTC) for
timed events, `YYYYMMDD` for all-day ones. The same key identifies an exception by its
`originalStartTime`, so instances and stored exceptions meet on one string.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rruleset, rrulestr

#: how far ahead a listing without timeMax expands an endless series
DEFAULT_HORIZON = timedelta(days=730)


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone called `name` (UTC when unknown or empty)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(dt: datetime, millis: bool = True) -> str:
    """UTC RFC 3339 with a Z, as Google writes `updated` (millis) and free/busy times (none)."""
    dt = dt.astimezone(UTC)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """An aware datetime from RFC 3339 (raises ValueError when malformed or without offset)."""
    dt = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if dt.tzinfo is None:
        raise ValueError("RFC 3339 time without offset")
    return dt


class _EtagClock:
    """Strictly increasing microsecond stamps, the shape of Google's event etags."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(time.time() * 1_000_000))
        return self._last


ETAG_CLOCK = _EtagClock()


def new_etag() -> str:
    return f'"{ETAG_CLOCK.next()}"'


def event_time(value: dict, default_tz: str) -> tuple[datetime, bool]:
    """(aware instant, all_day) of an EventDateTime; dates are midnight in their zone."""
    tz = zone(value.get("timeZone") or default_tz)
    if value.get("date"):
        d = date.fromisoformat(value["date"])
        return datetime(d.year, d.month, d.day, tzinfo=tz), True
    dt = datetime.fromisoformat(value["dateTime"].replace("z", "Z"))
    if dt.tzinfo is None:  # allowed when timeZone is given
        dt = dt.replace(tzinfo=tz)
    return dt, False


def event_extent(event: dict, default_tz: str) -> tuple[datetime, datetime] | None:
    """[start, end) of a stored event, or None when it has no usable times."""
    try:
        start, _ = event_time(event["start"], default_tz)
        end, _ = event_time(event["end"], default_tz)
    except (KeyError, ValueError, TypeError):
        return None
    return start, end


def overlaps(start: datetime, end: datetime, lo: datetime | None, hi: datetime | None) -> bool:
    """Does [start, end) meet [lo, hi)? A zero-length event counts when it sits inside."""
    if hi is not None and start >= hi:
        return False
    return lo is None or end > lo or (start == end and start >= lo)


def occurrence_key(value: dict, default_tz: str) -> str:
    """The instance-id suffix of an (original) start: UTC stamp for timed, date for all-day."""
    dt, all_day = event_time(value, default_tz)
    if all_day:
        return dt.strftime("%Y%m%d")
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Occurrence:
    """One instance of a recurring master, before exceptions are applied."""

    key: str  # instance id suffix
    start: datetime  # aware
    end: datetime  # aware
    start_value: dict  # EventDateTime as Google writes it
    end_value: dict


def _parse_ical_value(text: str, tzid: str | None, series_tz: ZoneInfo, all_day: bool) -> datetime:
    """An RDATE/EXDATE value in the series' frame: naive date-times for all-day, aware otherwise."""
    text = text.strip()
    if len(text) == 8:  # DATE
        d = datetime.strptime(text, "%Y%m%d")
        return d if all_day else d.replace(tzinfo=series_tz)
    if text.endswith("Z"):
        dt = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    else:
        dt = datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=zone(tzid) if tzid else series_tz)
    if all_day:
        return datetime.combine(dt.astimezone(series_tz).date(), datetime.min.time())
    return dt


def _normalise_until(rule: str, series_tz: ZoneInfo, all_day: bool) -> str:
    """dateutil wants UNTIL in UTC for an aware DTSTART and floating for a naive one."""
    parts = []
    for part in rule.split(";"):
        name, _, value = part.partition("=")
        if name.upper() == "UNTIL" and value:
            if all_day and len(value) > 8:
                value = _parse_ical_value(value, None, series_tz, True).strftime("%Y%m%d")
            elif not all_day and not value.endswith("Z"):
                if len(value) == 8:  # a date: the whole day counts
                    local = datetime.strptime(value, "%Y%m%d").replace(tzinfo=series_tz) + timedelta(days=1, seconds=-1)
                else:
                    local = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=series_tz)
                value = local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        parts.append(f"{name}={value}" if value else name)
    return ";".join(parts)


class Series:
    """A recurring master ready to expand: its rule set, zone, duration and value shapes."""

    def __init__(self, master: dict, default_tz: str) -> None:
        start_value, end_value = master["start"], master["end"]
        self.all_day = bool(start_value.get("date"))
        self.tz_name = start_value.get("timeZone") or default_tz
        self.tz = zone(self.tz_name)
        self.end_tz_name = end_value.get("timeZone") or self.tz_name
        start, _ = event_time(start_value, default_tz)
        end, _ = event_time(end_value, default_tz)
        if self.all_day:
            self.dtstart = datetime(start.year, start.month, start.day)
            self.days = (end.date() - start.date()).days
        else:
            self.dtstart = start.astimezone(self.tz)
        self.duration = end - start
        self.rules = rruleset()
        has_rule = False
        for line in master.get("recurrence") or []:
            head, _, value = line.partition(":")
            name, *params = head.split(";")
            name = name.upper()
            opts = dict(p.split("=", 1) for p in params if "=" in p)
            if name in ("RRULE", "EXRULE"):
                rule = rrulestr(_normalise_until(value, self.tz, self.all_day), dtstart=self.dtstart)
                assert isinstance(rule, rrule)
                (self.rules.rrule if name == "RRULE" else self.rules.exrule)(rule)
                has_rule = has_rule or name == "RRULE"
            elif name in ("RDATE", "EXDATE"):
                for item in value.split(","):
                    dt = _parse_ical_value(item, opts.get("TZID"), self.tz, self.all_day)
                    (self.rules.rdate if name == "RDATE" else self.rules.exdate)(dt)
        if not has_rule:  # RDATE-only series still include DTSTART
            self.rules.rdate(self.dtstart)

    def _frame(self, dt: datetime) -> datetime:
        """An aware bound in the frame rrule compares with (naive local for all-day)."""
        if self.all_day:
            return dt.astimezone(self.tz).replace(tzinfo=None)
        return dt

    def _occurrence(self, occ: datetime) -> Occurrence:
        if self.all_day:
            start = occ.replace(tzinfo=self.tz)
            end_date = (occ + timedelta(days=self.days)).date()
            end = datetime(end_date.year, end_date.month, end_date.day, tzinfo=self.tz)
            return Occurrence(occ.strftime("%Y%m%d"), start, end,
                              {"date": occ.date().isoformat()}, {"date": end_date.isoformat()})
        end = occ + self.duration
        return Occurrence(
            occ.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"), occ, end,
            {"dateTime": occ.isoformat(), "timeZone": self.tz_name},
            {"dateTime": end.astimezone(zone(self.end_tz_name)).isoformat(), "timeZone": self.end_tz_name},
        )

    def between(self, lo: datetime | None, hi: datetime, limit: int = 5000) -> list[Occurrence]:
        """Occurrences overlapping [lo, hi), at most `limit` of them."""
        after = self._frame(lo - self.duration) if lo is not None else None
        out: list[Occurrence] = []
        for occ in self.rules:
            if after is not None and occ <= after:
                continue
            if occ >= self._frame(hi):
                break
            o = self._occurrence(occ)
            if overlaps(o.start, o.end, lo, hi):
                out.append(o)
                if len(out) >= limit:
                    break
        return out

    def any_between(self, lo: datetime | None, hi: datetime | None) -> bool:
        """Could the series show anything inside [lo, hi)? (the master's listing test)"""
        first = self.rules.after(self._frame(lo - self.duration)) if lo is not None else next(iter(self.rules), None)
        if first is None:
            return False
        return hi is None or self._occurrence(first).start < hi


def merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, overlapping or touching intervals joined."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
