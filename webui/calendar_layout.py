"""Pure layout of the calendar view: which days a view shows, and where each event goes.

No Flask, no store: instances come in already read, positions go out as small integers
(15-minute grid rows, lanes, day columns) that the templates turn into CSS classes, since
the Content-Security-Policy allows no inline styles.

Times are placed by local wall clock in the user's zone: an event from 01:30 to 03:30 on a
spring-forward night is drawn from 01:30 to 03:30, as its labels say, even though only one
real hour passed. Timed events lasting 24 hours or more go to the all-day row; shorter
ones crossing midnight are cut into one segment per day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from daemon.models import Instance

VIEWS = ("day", "week", "month", "agenda")
DEFAULT_VIEW = "week"
SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
#: overlapping events side by side; a busier cluster shows this many minus one and a "more" link
MAX_LANES = 6
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


# -- the all-day row ----------------------------------------------------------------------

@dataclass(frozen=True)
class Banner:
    """An all-day or long event across day columns `column` .. `column + width - 1` (1-based)."""

    event: Event
    column: int
    width: int
    continues_before: bool
    continues_after: bool


def banners(events: list[Event], span: Span) -> list[Banner]:
    out = []
    for ev in sorted((e for e in events if e.banner), key=lambda e: (e.first_day, -(e.last_day - e.first_day).days)):
        first, last = max(ev.first_day, span.first), min(ev.last_day, span.last)
        if first > last:
            continue
        out.append(Banner(ev, (first - span.first).days + 1, (last - first).days + 1,
                          ev.first_day < span.first, ev.last_day > span.last))
    return out


# -- timed events on one day --------------------------------------------------------------

class _OnGrid:
    """Grid rows of something drawn from `start_minute` to `end_minute` of a day."""

    start_minute: int
    end_minute: int

    @property
    def row(self) -> int:
        """First grid line (1-based)."""
        return self.start_minute // SLOT_MINUTES + 1

    @property
    def rows(self) -> int:
        """How many 15-minute rows it spans (at least one, so a short event stays visible)."""
        end_row = -(-self.end_minute // SLOT_MINUTES)
        return max(1, end_row - self.start_minute // SLOT_MINUTES)


@dataclass
class Segment(_OnGrid):
    """The part of a timed event that falls on one day, on the 15-minute grid."""

    event: Event
    day: date
    start_minute: int
    end_minute: int
    lane: int = 0
    lanes: int = 1

    @property
    def continues_before(self) -> bool:
        return self.event.start.date() < self.day

    @property
    def continues_after(self) -> bool:
        return self.event.last_day > self.day

    @property
    def time_label(self) -> str:
        if self.continues_before:
            return f"until {hm(self.event.end)}" if not self.continues_after else "all day"
        return hm(self.event.start)


@dataclass
class More(_OnGrid):
    """Stands for the segments of a crowded cluster that do not fit side by side."""

    day: date
    start_minute: int
    end_minute: int
    count: int
    lane: int
    lanes: int
    events: list[Event] = field(default_factory=list)


def segments(events: list[Event], day: date) -> list[Segment]:
    """The timed (not banner) events touching `day`, cut to that day, in start order."""
    out = []
    for ev in events:
        if ev.banner or not ev.first_day <= day <= ev.last_day:
            continue
        start = ev.start.hour * 60 + ev.start.minute if ev.start.date() == day else 0
        end = ev.end.hour * 60 + ev.end.minute if ev.end.date() == day else 24 * 60
        if end <= start:  # zero length, or a wall clock turned back by DST inside the event
            end = min(24 * 60, start + SLOT_MINUTES)
        out.append(Segment(ev, day, start, end))
    out.sort(key=lambda s: (s.start_minute, -s.end_minute, s.event.id))
    return out


def lay_out_day(events: list[Event], day: date) -> list[Segment | More]:
    """Segments of `day` with lanes: overlapping events share the width side by side.

    Events are grouped into clusters (chains of overlaps); each cluster is as many lanes
    wide as it needs, up to MAX_LANES. A cluster that needs more keeps MAX_LANES - 1 lanes
    and puts a More block, covering the rest, in the last one.
    """
    placed: list[Segment | More] = []
    cluster: list[Segment] = []
    cluster_end = -1
    for seg in segments(events, day):
        if cluster and seg.start_minute >= cluster_end:
            placed += _assign_lanes(cluster)
            cluster, cluster_end = [], -1
        cluster.append(seg)
        # Overlap is judged on the drawn rows, so two short events in one row never collide.
        cluster_end = max(cluster_end, (seg.row - 1 + seg.rows) * SLOT_MINUTES)
    if cluster:
        placed += _assign_lanes(cluster)
    return placed


def _assign_lanes(cluster: list[Segment]) -> list[Segment | More]:
    lane_ends: list[int] = []
    for seg in cluster:
        drawn_start, drawn_end = (seg.row - 1) * SLOT_MINUTES, (seg.row - 1 + seg.rows) * SLOT_MINUTES
        for lane, end in enumerate(lane_ends):
            if end <= drawn_start:
                seg.lane, lane_ends[lane] = lane, drawn_end
                break
        else:
            seg.lane = len(lane_ends)
            lane_ends.append(drawn_end)
    if len(lane_ends) <= MAX_LANES:
        for seg in cluster:
            seg.lanes = len(lane_ends)
        return list(cluster)
    kept: list[Segment | More] = []
    rest = []
    for seg in cluster:
        if seg.lane < MAX_LANES - 1:
            seg.lanes = MAX_LANES
            kept.append(seg)
        else:
            rest.append(seg)
    kept.append(More(cluster[0].day, min(s.start_minute for s in rest), max(s.end_minute for s in rest),
                     len(rest), MAX_LANES - 1, MAX_LANES, [s.event for s in rest]))
    return kept


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


def hour_labels() -> list[tuple[int, str]]:
    """(grid row, label) of each full hour in the time gutter."""
    return [(h * 60 // SLOT_MINUTES + 1, f"{h:02d}:00") for h in range(24)]
