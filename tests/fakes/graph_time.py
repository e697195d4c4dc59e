"""Time arithmetic of the fake Graph API: zone names, dateTimeTimeZone values, recurrence.

Graph writes times as {"dateTime": "YYYY-MM-DDTHH:MM:SS.0000000", "timeZone": <label>}, where
the label is a Windows zone name ("W. Europe Standard Time"), "UTC", or an IANA name. Windows
names map to IANA with icalendar's WINDOWS_TO_OLSON table.

A patternedRecurrence (daily, weekly + daysOfWeek, absoluteMonthly, relativeMonthly,
absoluteYearly; range endDate / numbered / noEnd) is expanded with dateutil's rrule on NAIVE
wall-clock times in the series' own zone, then localised: 09:00 stays 09:00 local when the
clocks change, which is what Outlook shows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, weekday
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from tests.fakes.graph_errors import GraphError

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
#: how far a series without end is expanded at most (the calendarView limit)
MAX_SPAN = timedelta(days=1826)


def zone(label: str | None) -> ZoneInfo:
    """The zone a Graph time-zone label names (Windows, IANA or UTC); 400 when unknown."""
    name = (label or "UTC").strip()
    if name.upper() in ("UTC", "Z", "COORDINATED UNIVERSAL TIME", "TZONE://MICROSOFT/UTC"):
        return ZoneInfo("UTC")
    iana = WINDOWS_TO_OLSON.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise GraphError(400, "TimeZoneNotSupportedException",
                         f"A valid TimeZone value must be specified. The following TimeZone value is not "
                         f"supported: '{name}'.") from None


def valid_zone(label: str | None) -> bool:
    try:
        zone(label)
        return True
    except GraphError:
        return False


_FRACTION = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_local(text: str) -> tuple[datetime, bool]:
    """(datetime, had_offset) of a Graph dateTime; up to 7 fraction digits; naive unless an offset."""
    m = _FRACTION.match(str(text).strip())
    if not m:
        raise GraphError(400, "ErrorInvalidRequest", "Cannot convert the literal to a dateTime.")
    base, fraction, offset = m.groups()
    dt = datetime.fromisoformat(base)
    if fraction:
        dt = dt.replace(microsecond=int((fraction[1:] + "000000")[:6]))
    if offset:
        dt = datetime.fromisoformat(base + ("+00:00" if offset == "Z" else offset)).replace(microsecond=dt.microsecond)
        return dt, True
    return dt, False


def instant(value: dict) -> datetime:
    """The aware instant of a dateTimeTimeZone value."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise GraphError(400, "ErrorInvalidRequest", "Start and end are required.")
    dt, aware = parse_local(value["dateTime"])
    if aware:
        return dt
    return dt.replace(tzinfo=zone(value.get("timeZone")))


def graph_stamp(dt: datetime) -> str:
    """A naive wall-clock time as Graph writes it (seven fraction digits)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


def to_value(dt: datetime, label: str) -> dict:
    """An aware instant as {"dateTime", "timeZone"} in the zone `label` names."""
    return {"dateTime": graph_stamp(dt.astimezone(zone(label)).replace(tzinfo=None)), "timeZone": label}


def normalise(value: dict) -> dict:
    """A dateTimeTimeZone as given by a client, stored in Graph's own notation (zone label kept)."""
    label = value.get("timeZone") or "UTC"
    zone(label)
    dt, aware = parse_local(value["dateTime"])
    if aware:
        dt = dt.astimezone(zone(label)).replace(tzinfo=None)
    return {"dateTime": graph_stamp(dt), "timeZone": label}


def utc_z(dt: datetime) -> str:
    """UTC ISO with a Z and no fraction (originalStart, createdDateTime use this shape)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_stamp(dt: datetime) -> str:
    """UTC ISO with seven fraction digits and a Z (createdDateTime, lastModifiedDateTime)."""
    return graph_stamp(dt.astimezone(UTC).replace(tzinfo=None)) + "Z"


def parse_query_time(text: str | None, name: str) -> datetime:
    """startDateTime/endDateTime of a query string: ISO 8601, an offset or Z; naive means UTC."""
    if not text:
        raise GraphError(400, "ErrorInvalidParameter",
                         "This request requires a time window specified by the query string parameters "
                         "StartDateTime and EndDateTime.")
    try:
        dt, aware = parse_local(text.replace(" ", "+"))
    except GraphError:
        raise GraphError(400, "ErrorInvalidParameter", f"The value of {name} is not a valid date and time.") from None
    return dt if aware else dt.replace(tzinfo=UTC)


def overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    """Does [start, end) meet [lo, hi)? A zero-length event counts when it sits inside."""
    if start >= hi:
        return False
    return end > lo or (start == end and start >= lo)


def is_midnight(value: dict) -> bool:
    dt, aware = parse_local(value["dateTime"])
    return not aware and dt.time() == time(0)


# ---- recurrence -----------------------------------------------------------------------------
def check_recurrence(rec: dict) -> None:
    """400 for a patternedRecurrence Graph would refuse."""
    pattern, rng = rec.get("pattern") or {}, rec.get("range") or {}
    kind = pattern.get("type")
    if kind not in ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"):
        raise GraphError(400, "ErrorInvalidRequest", "The recurrence pattern type is not valid.")
    if int(pattern.get("interval") or 0) < 1:
        raise GraphError(400, "ErrorInvalidRequest", "The recurrence interval must be at least 1.")
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        days = pattern.get("daysOfWeek") or []
        if not days or any(str(d).lower() not in _DAYS for d in days):
            raise GraphError(400, "ErrorInvalidRequest", "daysOfWeek is required for this recurrence pattern.")
    if kind in ("absoluteMonthly", "absoluteYearly") and not 1 <= int(pattern.get("dayOfMonth") or 0) <= 31:
        raise GraphError(400, "ErrorInvalidRequest", "dayOfMonth is required for this recurrence pattern.")
    rtype = rng.get("type")
    if rtype not in ("endDate", "noEnd", "numbered"):
        raise GraphError(400, "ErrorInvalidRequest", "The recurrence range type is not valid.")
    try:
        date.fromisoformat(rng.get("startDate") or "")
        if rtype == "endDate":
            date.fromisoformat(rng.get("endDate") or "")
    except ValueError:
        raise GraphError(400, "ErrorInvalidRequest", "The recurrence range dates are not valid.") from None
    if rtype == "numbered" and int(rng.get("numberOfOccurrences") or 0) < 1:
        raise GraphError(400, "ErrorInvalidRequest", "numberOfOccurrences must be at least 1.")


def _weekdays(pattern: dict) -> list[weekday]:
    from dateutil.rrule import weekdays
    return [weekdays[_DAYS.index(str(d).lower())] for d in pattern.get("daysOfWeek") or []]


class Series:
    """A series master ready to expand: the rule in local wall-clock time plus zone and duration."""

    def __init__(self, master: dict) -> None:
        self.tz_label = master["start"].get("timeZone") or "UTC"
        self.tz = zone(self.tz_label)
        start = instant(master["start"])
        end = instant(master["end"])
        self.duration = end - start
        local = start.astimezone(self.tz).replace(tzinfo=None)
        rec = master["recurrence"]
        pattern, rng = rec["pattern"], rec["range"]
        first = date.fromisoformat(rng.get("startDate") or local.date().isoformat())
        dtstart = datetime.combine(first, local.time())
        kind, interval = pattern["type"], int(pattern.get("interval") or 1)
        kw: dict = {"dtstart": dtstart, "interval": interval}
        wkst = str(pattern.get("firstDayOfWeek") or "sunday").lower()
        kw["wkst"] = _DAYS.index(wkst) if wkst in _DAYS else 6
        if kind == "daily":
            freq = DAILY
        elif kind == "weekly":
            freq, kw["byweekday"] = WEEKLY, _weekdays(pattern)
        elif kind == "absoluteMonthly":
            freq, kw["bymonthday"] = MONTHLY, int(pattern["dayOfMonth"])
        elif kind == "relativeMonthly":
            n = _INDEX.get(str(pattern.get("index") or "first"), 1)
            freq, kw["byweekday"] = MONTHLY, [d(n) for d in _weekdays(pattern)]
        elif kind == "absoluteYearly":
            freq, kw["bymonth"], kw["bymonthday"] = YEARLY, int(pattern.get("month") or first.month), \
                int(pattern["dayOfMonth"])
        else:
            n = _INDEX.get(str(pattern.get("index") or "first"), 1)
            freq, kw["bymonth"] = YEARLY, int(pattern.get("month") or first.month)
            kw["byweekday"] = [d(n) for d in _weekdays(pattern)]
        if rng["type"] == "endDate":
            kw["until"] = datetime.combine(date.fromisoformat(rng["endDate"]), time(23, 59, 59))
        elif rng["type"] == "numbered":
            kw["count"] = int(rng["numberOfOccurrences"])
        self.rule = rrule(freq, **kw)
        self.first_local = dtstart

    def localise(self, naive: datetime) -> datetime:
        return naive.replace(tzinfo=self.tz)

    def starts(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Aware original starts of occurrences overlapping [lo, hi)."""
        after = (lo - self.duration - timedelta(days=2)).astimezone(self.tz).replace(tzinfo=None)
        before = (hi + timedelta(days=2)).astimezone(self.tz).replace(tzinfo=None)
        out = []
        for naive in self.rule.between(after, before, inc=True):
            start = self.localise(naive)
            if overlaps(start, start + self.duration, lo, hi):
                out.append(start)
        return out

    def is_occurrence(self, start: datetime) -> bool:
        """Is `start` (aware) the original start of an occurrence of this series?"""
        naive = start.astimezone(self.tz).replace(tzinfo=None)
        return naive in self.rule.between(naive - timedelta(seconds=1), naive + timedelta(seconds=1), inc=True)
