"""The calendar view's pure parts: which days a view shows, where events go, readable colours."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.models import Instance
from webui import calendar_colors as colors
from webui import calendar_grid as grid
from webui import calendar_layout as layout

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CSS = (Path(__file__).parents[2] / "webui" / "static" / "calendar.css").read_text()


def event(start, end, *, id=1, title="Meeting", all_day=False, tz=BERLIN, **kw) -> layout.Event:
    inst = Instance(key=f"k{id}", item_id=f"i{id}", uid=f"u{id}", start=start, end=end, all_day=all_day,
                    summary=title, **kw)
    return layout.make_event(id, 7, "Work", inst, tz)


def at(day: date, hour: int, minute: int = 0, tz=BERLIN) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


# -- spans ---------------------------------------------------------------------------------

def test_week_runs_monday_to_sunday_around_any_day() -> None:
    span = layout.span_for("week", date(2026, 11, 26))
    assert (span.first, span.last) == (date(2026, 11, 23), date(2026, 11, 29))
    assert span.previous == date(2026, 11, 19) and span.next == date(2026, 12, 3)


def test_month_grid_covers_whole_weeks() -> None:
    span = layout.span_for("month", date(2026, 11, 15))
    assert span.first == date(2026, 10, 26) and span.last == date(2026, 12, 6)
    assert len(span.days) % 7 == 0
    assert len(layout.weeks(layout.day_lists([], span))) == 6


def test_month_steps_keep_the_day_where_the_month_has_it() -> None:
    assert layout.shift("month", date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert layout.shift("month", date(2026, 1, 15), -1) == date(2025, 12, 15)
    assert layout.shift("day", date(2026, 3, 1), -1) == date(2026, 2, 28)
    assert layout.span_for("agenda", date(2026, 3, 1)).last == date(2026, 3, 14)


def test_utc_bounds_are_local_midnights_across_a_dst_change() -> None:
    # Berlin falls back on Sunday 25 October 2026: that week is 169 hours long.
    start, end = layout.span_for("week", date(2026, 10, 21)).utc_bounds(BERLIN)
    assert start.astimezone(timezone.utc) == datetime(2026, 10, 18, 22, tzinfo=timezone.utc)
    assert end.astimezone(timezone.utc) == datetime(2026, 10, 25, 23, tzinfo=timezone.utc)


# -- events --------------------------------------------------------------------------------

def test_times_are_shown_in_the_users_zone_on_both_sides_of_dst() -> None:
    before = event(datetime(2026, 10, 23, 7, tzinfo=timezone.utc), datetime(2026, 10, 23, 8, tzinfo=timezone.utc))
    after = event(datetime(2026, 10, 26, 8, tzinfo=timezone.utc), datetime(2026, 10, 26, 9, tzinfo=timezone.utc))
    assert before.when == "Fri 23 Oct, 09:00–10:00"
    assert after.when == "Mon 26 Oct, 09:00–10:00"
    [seg] = grid.segments([after], date(2026, 10, 26))
    assert (seg.row, seg.rows) == (37, 4)


def test_spring_forward_night_is_drawn_by_the_wall_clock() -> None:
    # 01:30 CET to 03:30 CEST is one real hour; the grid shows it where the clock says.
    night = date(2026, 3, 29)
    ev = event(at(night, 1, 30), at(night, 3, 30))
    [seg] = grid.segments([ev], night)
    assert (seg.start_minute, seg.end_minute) == (90, 210)


def test_fall_back_event_ending_at_an_earlier_wall_clock_time_stays_visible() -> None:
    # 01:45 EDT to 01:15 EST: 30 real minutes, but the clock reads earlier at the end.
    start = datetime(2026, 11, 1, 5, 45, tzinfo=timezone.utc)
    ev = event(start, start + timedelta(minutes=30), tz=NEW_YORK)
    [seg] = grid.segments([ev], date(2026, 11, 1))
    assert seg.rows >= 1 and seg.start_minute == 105


def test_event_crossing_midnight_is_cut_into_two_days() -> None:
    ev = event(at(date(2026, 11, 25), 22), at(date(2026, 11, 26), 2))
    assert not ev.banner and ev.last_day == date(2026, 11, 26)
    [first] = grid.segments([ev], date(2026, 11, 25))
    [second] = grid.segments([ev], date(2026, 11, 26))
    assert (first.row, first.rows, first.continues_after) == (89, 8, True)
    assert (second.row, second.rows, second.continues_before) == (1, 8, True)
    assert second.time_label == "until 02:00"
    assert ev.when == "Wed 25 Nov 22:00 – Thu 26 Nov 02:00"


def test_an_event_ending_at_midnight_stays_on_its_day() -> None:
    ev = event(at(date(2026, 11, 25), 23), at(date(2026, 11, 26), 0))
    assert ev.last_day == date(2026, 11, 25)
    assert grid.segments([ev], date(2026, 11, 26)) == []
    assert ev.when == "Wed 25 Nov, 23:00–00:00"


def test_floating_times_are_read_in_the_users_zone() -> None:
    ev = event(datetime(2026, 11, 25, 9), datetime(2026, 11, 25, 10))
    assert ev.start.utcoffset() == timedelta(hours=1) and ev.when == "Wed 25 Nov, 09:00–10:00"


def test_all_day_and_long_events_go_to_the_all_day_row() -> None:
    trip = event(date(2026, 11, 24), date(2026, 11, 27), all_day=True, title="Trip")
    conference = event(at(date(2026, 11, 22), 9), at(date(2026, 11, 24), 17), id=2)
    assert trip.banner and conference.banner
    assert (trip.first_day, trip.last_day) == (date(2026, 11, 24), date(2026, 11, 26))
    assert trip.when == "Tue 24 Nov – Thu 26 Nov, all day"
    span = layout.span_for("week", date(2026, 11, 23))
    by_title = {b.event.id: b for b in grid.banners([trip, conference], span)}
    assert (by_title[1].column, by_title[1].width) == (2, 3)
    assert (by_title[2].column, by_title[2].width, by_title[2].continues_before) == (1, 2, True)
    assert grid.segments([trip, conference], date(2026, 11, 23)) == []


def test_overlapping_events_sit_side_by_side() -> None:
    day = date(2026, 11, 23)
    events = [event(at(day, 9), at(day, 10), id=1), event(at(day, 9, 30), at(day, 11), id=2),
              event(at(day, 10), at(day, 10, 30), id=3), event(at(day, 14), at(day, 15), id=4)]
    placed = {p.event.id: (p.lane, p.lanes) for p in grid.lay_out_day(events, day)}
    # 1 and 2 overlap; 3 starts as 1 ends and takes its lane; 4 is alone.
    assert placed == {1: (0, 2), 2: (1, 2), 3: (0, 2), 4: (0, 1)}


def test_short_events_in_the_same_row_do_not_cover_each_other() -> None:
    day = date(2026, 11, 23)
    events = [event(at(day, 9), at(day, 9, 5), id=1), event(at(day, 9, 10), at(day, 9, 14), id=2)]
    assert {p.event.id: p.lane for p in grid.lay_out_day(events, day)} == {1: 0, 2: 1}


def test_a_crowded_cluster_keeps_a_more_link() -> None:
    day = date(2026, 11, 23)
    events = [event(at(day, 9), at(day, 10), id=n) for n in range(1, 10)]
    placed = grid.lay_out_day(events, day)
    more = [p for p in placed if isinstance(p, grid.More)]
    assert len(placed) == grid.MAX_LANES
    assert len(more) == 1 and more[0].count == 9 - (grid.MAX_LANES - 1)
    assert all(p.lanes == grid.MAX_LANES for p in placed)


def test_month_cells_list_all_day_first_and_cut_at_the_limit() -> None:
    span = layout.span_for("month", date(2026, 11, 1))
    day = date(2026, 11, 10)
    events = [event(at(day, 8 + n), at(day, 9 + n), id=n) for n in range(1, 7)]
    events.append(event(day, day + timedelta(days=1), all_day=True, id=99, title="Holiday"))
    cell = next(d for d in layout.day_lists(events, span, limit=layout.MONTH_CELL_LIMIT) if d.day == day)
    assert cell.items[0].id == 99
    assert len(cell.items) == layout.MONTH_CELL_LIMIT - 1 and cell.hidden == 7 - len(cell.items)


def test_tags_and_accessible_name_say_what_colour_only_hints() -> None:
    day = date(2026, 11, 23)
    inst = Instance(key="k", item_id="i", uid="u", start=at(day, 9), end=at(day, 10), summary="Secret",
                    status="tentative", partner_key="p")
    busy = layout.make_event(1, 7, "Work", inst, BERLIN, clone=True, busy_only=True)
    assert busy.title == "Busy"
    assert busy.label == "Busy, Mon 23 Nov, 09:00–10:00, Work, tentative, copy made by homecal"
    untitled = event(at(day, 9), at(day, 10), title="  ")
    assert untitled.title == "(no title)"


# -- the stylesheet covers every position ------------------------------------------------

def _classes() -> set[str]:
    return set(re.findall(r"\.([a-z][a-z0-9-]*)\s*\{", CSS))


def test_calendar_css_has_a_class_for_every_position() -> None:
    defined = _classes()
    for n in range(1, grid.SLOTS_PER_DAY + 1):
        assert f"slot-r{n}" in defined and f"slot-s{n}" in defined
    for lanes in range(1, grid.MAX_LANES + 1):
        for lane in range(lanes):
            assert f"lane-{lanes}-{lane}" in defined
    for col in range(1, 8):
        assert f"bcol-{col}" in defined and f"bspan-{col}" in defined


# -- colours -------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    ("#FF8800", "#ff8800"), ("#f80", "#ff8800"), ("#112233CC", "#112233"), (" #abcdef ", "#abcdef"),
    ("red", None), ("#12345", None), ("#ff0000; } body { display: none", None), ("", None), (None, None),
])
def test_only_hex_colours_reach_the_stylesheet(given, expected) -> None:
    assert colors.normalize(given) == expected


def test_calendars_without_a_colour_keep_a_stable_default() -> None:
    assert colors.background(3, None) == colors.background(3, "not a colour") == colors.PALETTE[3]
    assert colors.background(3, "#000000") == "#000000"


def test_text_on_any_calendar_colour_is_readable() -> None:
    steps = range(0, 256, 17)
    for r in steps:
        for g in steps:
            for b in steps:
                bg = f"#{r:02x}{g:02x}{b:02x}"
                assert colors.contrast(bg, colors.text_color(bg)) >= 4.5, bg


def test_stylesheet_has_one_rule_per_calendar() -> None:
    css = colors.stylesheet([(1, "#ffffff"), (2, None)])
    assert ".cal-1 { --cal-bg: #ffffff; --cal-fg: #000000; }" in css
    assert f".cal-2 {{ --cal-bg: {colors.PALETTE[2]};" in css
