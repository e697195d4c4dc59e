"""Pure placement of events in the day and week grids: the all-day row, 15-minute rows, and
lanes for overlapping events.

Positions go out as small integers (grid rows, lanes, day columns) that the templates turn
into CSS classes, since the Content-Security-Policy allows no inline styles; calendar.css
has a class for each one (a unit test checks it).

Times are placed by local wall clock in the user's zone: an event from 01:30 to 03:30 on a
spring-forward night is drawn from 01:30 to 03:30, as its labels say, even though only one
real hour passed. Timed events lasting 24 hours or more go to the all-day row; shorter
ones crossing midnight are cut into one segment per day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from webui.calendar_layout import Event, Span, hm

SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
#: overlapping events side by side; a busier cluster shows this many minus one and a "more" link
MAX_LANES = 6


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


def hour_labels() -> list[tuple[int, str]]:
    """(grid row, label) of each full hour in the time gutter."""
    return [(h * 60 // SLOT_MINUTES + 1, f"{h:02d}:00") for h in range(24)]
