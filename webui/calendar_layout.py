"""Pure layout of the calendar view: which days a view shows, each instance as an Event in
the user's zone, and the day lists of the month and agenda views.

No Flask, no store: instances come in already read. Where events sit in the day and week
grids is webui/calendar_grid.py.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from daemon.models import Instance

VIEWS = ("day", "week", "month", "agenda")
DEFAULT_VIEW = "week"
#: events listed in one month cell before a "+N more" link to that day
MONTH_CELL_LIMIT = 4
AGENDA_DAYS = 14


# -- which days a view shows --------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """The days a view shows: `first` to `last` inclusive, around the `anchor` date."""

    view: str
    anchor: date
    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def utc_bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[local midnight of the first day, local midnight after the last day), as aware datetimes."""
        return local_midnight(self.first, tz), local_midnight(self.last + timedelta(days=1), tz)

    @property
    def previous(self) -> date:
        return shift(self.view, self.anchor, -1)

    @property
    def next(self) -> date:
        return shift(self.view, self.anchor, 1)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    # zoneinfo resolves a midnight that does not exist (a DST jump at 00:00) forwards.
    return datetime.combine(day, time(0), tz)


def span_for(view: str, anchor: date) -> Span:
    if view == "day":
        return Span(view, anchor, anchor, anchor)
    if view == "week":
        monday = anchor - timedelta(days=anchor.weekday())
        return Span(view, anchor, monday, monday + timedelta(days=6))
    if view == "month":
        first_of_month = anchor.replace(day=1)
        last_of_month = anchor.replace(day=calendar.monthrange(anchor.year, anchor.month)[1])
        first = first_of_month - timedelta(days=first_of_month.weekday())
        last = last_of_month + timedelta(days=6 - last_of_month.weekday())
        return Span(view, anchor, first, last)
    if view == "agenda":
        return Span(view, anchor, anchor, anchor + timedelta(days=AGENDA_DAYS - 1))
    raise ValueError(f"unknown view {view!r}")


def shift(view: str, anchor: date, step: int) -> date:
    """The anchor of the previous (step=-1) or next (step=1) page of `view`."""
    if view == "day":
        return anchor + timedelta(days=step)
    if view == "week":
        return anchor + timedelta(weeks=step)
    if view == "agenda":
        return anchor + timedelta(days=AGENDA_DAYS * step)
    month_index = anchor.year * 12 + anchor.month - 1 + step
    year, month = divmod(month_index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


# -- events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """One instance as the view shows it, in the user's zone."""

    id: int
    calendar_id: int
    calendar_name: str
    title: str
    all_day: bool
    start: datetime  # local; all-day events: local midnight of their first day
    end: datetime
    first_day: date
    last_day: date  # inclusive
    clone: bool = False
    busy_only: bool = False
    tentative: bool = False
    free: bool = False  # marked transparent: shown, but does not block time
    declined: bool = False

    @property
    def banner(self) -> bool:
        """Shown in the all-day row: all-day events and timed ones of a day or more."""
        return self.all_day or self.end - self.start >= timedelta(hours=24)

    @property
    def when(self) -> str:
        """The whole time span in words, e.g. "Mon 23 Nov, 09:00–10:00"."""
        if self.all_day:
            if self.first_day == self.last_day:
                return f"{day_label(self.first_day)}, all day"
            return f"{day_label(self.first_day)} – {day_label(self.last_day)}, all day"
        if self.start.date() == self.end.date() or self.end == local_midnight(self.start.date() + timedelta(days=1),
                                                                               self.start.tzinfo):
            return f"{day_label(self.start.date())}, {hm(self.start)}–{hm(self.end)}"
        return f"{day_label(self.start.date())} {hm(self.start)} – {day_label(self.end.date())} {hm(self.end)}"

    @property
    def tags(self) -> list[str]:
        """What sets the event apart, in words (never shown by colour alone)."""
        flags = [(self.tentative, "tentative"), (self.declined, "declined"), (self.free, "free"),
                 (self.clone, "copy made by homecal")]
        return [text for on, text in flags if on]

    @property
    def facts(self) -> str:
        """Everything but the title, for the accessible name: time, calendar, tags."""
        return ", ".join([self.when, self.calendar_name, *self.tags])

    @property
    def label(self) -> str:
        """The accessible name of the event's link: title, time, calendar, and what it is."""
        return f"{self.title}, {self.facts}"


def hm(value: datetime) -> str:
    return value.strftime("%H:%M")


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def make_event(entry_id: int, calendar_id: int, calendar_name: str, inst: Instance, tz: tzinfo, *,
               clone: bool = False, busy_only: bool = False) -> Event:
    """An Event from a mirrored instance. Busy-only calendars never show a title."""
    title = "Busy" if busy_only else ((inst.summary or "").strip() or "(no title)")
    common = {"id": entry_id, "calendar_id": calendar_id, "calendar_name": calendar_name, "title": title,
              "clone": clone, "busy_only": busy_only, "tentative": inst.status == "tentative",
              "free": inst.transparent, "declined": inst.declined}
    if inst.all_day and not isinstance(inst.start, datetime):
        first = inst.start
        end_day = inst.end if not isinstance(inst.end, datetime) else inst.end.date()
        last = max(first, end_day - timedelta(days=1))
        return Event(all_day=True, start=local_midnight(first, tz), end=local_midnight(last + timedelta(days=1), tz),
                     first_day=first, last_day=last, **common)
    start, end = _local(inst.start, tz), _local(inst.end, tz)
    # Compared in UTC: within one zone Python compares wall clocks, and an event across a
    # DST fall-back may end at an earlier wall-clock time than it started.
    if end.astimezone(timezone.utc) < start.astimezone(timezone.utc):
        end = start
    # An end at exactly midnight belongs to the day before (ends are exclusive).
    last = (end - timedelta(microseconds=1)).date() if end > start else start.date()
    return Event(all_day=False, start=start, end=end, first_day=start.date(), last_day=last, **common)


def _local(value: datetime | date, tz: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        return local_midnight(value, tz)
    if value.tzinfo is None:  # floating time: read in the user's zone
        return value.replace(tzinfo=tz)
    return value.astimezone(tz)


# -- month and agenda ---------------------------------------------------------------------

@dataclass
class DayList:
    """A day's events as a list: all-day and long ones first, then timed ones by start."""

    day: date
    items: list[Event]
    hidden: int = 0  # left out by a limit (month cells)


def day_lists(events: list[Event], span: Span, *, limit: int | None = None,
              timed_on_every_day: bool = True) -> list[DayList]:
    """One DayList per day of `span`.

    `timed_on_every_day=False` (month) lists a timed event crossing midnight only on its
    first day; the agenda lists it on each day it touches.
    """
    ordered = sorted(events, key=lambda e: (not e.banner, e.start, e.end, e.id))
    out = []
    for day in span.days:
        items = [e for e in ordered if e.first_day <= day <= e.last_day
                 and (e.banner or timed_on_every_day or e.first_day == day)]
        hidden = 0
        if limit is not None and len(items) > limit:
            # Keep room for the "+N more" link itself.
            hidden = len(items) - (limit - 1)
            items = items[:limit - 1]
        out.append(DayList(day, items, hidden))
    return out


def weeks(lists: list[DayList]) -> list[list[DayList]]:
    return [lists[n:n + 7] for n in range(0, len(lists), 7)]
