"""Plain data shared by providers, the sync engine, availability and the web UI.

Providers speak only these types at their boundary. Times: timed events carry aware
datetimes in their own zone (converted to UTC only to compare); all-day events carry
`date`s with an exclusive end; floating times are naive datetimes, read in the user's zone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Literal


class AccessMode(StrEnum):
    """How an account was linked; decides scopes, what is read and stored, and what is written."""

    READ_WRITE = "read-write"
    FREE_BUSY = "free-busy"
    NO_ACCESS = "no-access"


class Style(StrEnum):
    CLONE = "clone"
    BUSY = "busy"


@dataclass(frozen=True)
class Window:
    """The rolling sync window, [start, end) in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, now: datetime, past_days: int, future_days: int) -> Window:
        # Whole UTC days, so the window (and every cursor bound to it) changes once a day,
        # not every cycle.
        day = datetime.combine(now.astimezone(timezone.utc).date(), time(0), timezone.utc)
        return cls(day - timedelta(days=past_days), day + timedelta(days=future_days + 1))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return start < self.end and end > self.start


@dataclass(frozen=True)
class Interval:
    """A busy interval in UTC, [start, end)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class CalendarInfo:
    """One calendar as a provider lists it."""

    remote_id: str  # CalDAV collection URL, Google calendar id, Graph id, "local:<n>"
    name: str
    color: str | None = None
    writable: bool = True
    timezone: str | None = None


@dataclass
class Instance:
    """One occurrence of an event inside the window, normalized across providers.

    `key` identifies the occurrence within its calendar for the life of the series:
    UID plus the original start (RECURRENCE-ID) for recurring ones.
    """

    key: str
    item_id: str  # the provider object it came from (CalDAV href, Google event id, ...)
    uid: str
    start: datetime | date
    end: datetime | date  # exclusive
    all_day: bool = False
    recurrence_id: str | None = None
    transparent: bool = False
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    declined: bool = False  # the calendar's owner declined it
    summary: str | None = None  # None when details are not known (free-busy mode)
    description: str | None = None
    location: str | None = None
    # homecal wrote this event (its marker was found): never a sync source (loop guard)
    partner_key: str | None = None

    @property
    def is_partner(self) -> bool:
        return self.partner_key is not None

    def utc_bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC; all-day and floating times are read in `tz` (the user's zone)."""
        return to_utc(self.start, tz), to_utc(self.end, tz)

    def without_details(self) -> Instance:
        """The free-busy view of this instance: times and busy status only."""
        return Instance(key=self.key, item_id=self.item_id, uid=self.uid, start=self.start, end=self.end,
                        all_day=self.all_day, recurrence_id=self.recurrence_id, transparent=self.transparent,
                        status=self.status, declined=self.declined, partner_key=self.partner_key)


@dataclass
class Item:
    """One provider object and the instances it yields inside the window."""

    id: str
    etag: str | None
    instances: list[Instance] = field(default_factory=list)


@dataclass
class ChangeSet:
    """What `Provider.changes` returns.

    `full=True`: `items` plus `unchanged` plus `skipped` is every object there is; the caller
    diffs against its mirror (objects it knew that are absent were removed). `full=False`:
    only `items` changed and `removed` were deleted. `unchanged` names objects whose etag
    matched the `known` map passed to `changes` (their instances were not recomputed).
    `skipped` names objects that could not be parsed: they are logged, left as they were in
    the mirror, and never taken as deleted.
    """

    items: list[Item]
    removed: list[str]
    cursor: str | None
    full: bool
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Draft:
    """What homecal wants a clone or busy block to look like in the target calendar."""

    kind: Literal["clone", "busy", "booking"]
    summary: str
    start: datetime | date
    end: datetime | date
    all_day: bool = False
    description: str | None = None
    location: str | None = None
    transparent: bool = False
    private: bool = True
    # Bookings only: the host as ORGANIZER and the visitor as ATTENDEE, so a provider with
    # server-side scheduling invites the visitor; SEQUENCE goes up when a booking moves.
    # Clones and busy blocks never carry these (a copy must not invite anyone).
    organizer: tuple[str, str] | None = None  # (name, email)
    attendees: tuple[tuple[str, str], ...] = ()
    sequence: int = 0
    # Bookings only: a video conference the provider should attach ("google_meet" or
    # "teams"); None for everything else. Clones and busy blocks never ask for one.
    conference: Literal["google_meet", "teams"] | None = None

    def content_hash(self) -> str:
        """A normalized hash: equal drafts hash equal whatever zone their times are written in."""
        d = asdict(self)
        # Left out while unset, so the hashes of clones written before these fields existed
        # stay the same (a changed hash rewrites every copy once).
        for k in ("organizer", "attendees", "sequence", "conference"):
            if not d[k]:
                del d[k]
        for k in ("start", "end"):
            v = getattr(self, k)
            d[k] = v.astimezone(timezone.utc).isoformat() if isinstance(v, datetime) and v.tzinfo else v.isoformat()
        for k in ("summary", "description", "location"):
            d[k] = (d[k] or "").strip().replace("\r\n", "\n") or None
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EventRef:
    """A written event in a target calendar: enough to update or delete it safely."""

    calendar_id: str
    id: str  # CalDAV href, Google event id, Graph id, local id
    etag: str | None = None
    # the conference (video call) link the provider returned with the event, if any
    join_url: str | None = None


def to_utc(value: datetime | date, tz: tzinfo) -> datetime:
    """A datetime in UTC; dates (all-day) and naive datetimes (floating) are read in `tz`."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(timezone.utc)
    return datetime.combine(value, time(0), tz).astimezone(timezone.utc)
