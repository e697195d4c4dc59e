"""Availability of a booking link: the times a visitor is offered, checked the way a host
would read them (local wall-clock lists), across DST, and against a minute-by-minute reference."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.booking.availability import BusyTime, Slot, bookable_range, is_bookable, slots
from daemon.booking.link_settings import WEEKDAYS, LinkSettings

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
ALL_WEEK = WEEKDAYS
MONDAY = date(2026, 11, 23)  # a Monday in winter time


def link(hours: tuple = (("09:00", "17:00"),), days: tuple = WEEKDAYS[:5], **kw) -> LinkSettings:
    kw.setdefault("min_notice", 0)
    kw.setdefault("rolling_days", 7)
    return LinkSettings(title="Chat", weekly_hours={d: hours for d in days}, **kw)


def berlin(day: date, hhmm: str, tz: ZoneInfo = BERLIN, fold: int = 0) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz, fold=fold)


def busy(day: date, a: str, b: str, tz: ZoneInfo = BERLIN, shown_in: ZoneInfo = UTC) -> BusyTime:
    return BusyTime(berlin(day, a, tz).astimezone(shown_in), berlin(day, b, tz).astimezone(shown_in))


def all_day(day: date, tz: ZoneInfo = BERLIN) -> BusyTime:
    return BusyTime(berlin(day, "00:00", tz).astimezone(UTC),
                    berlin(day + timedelta(days=1), "00:00", tz).astimezone(UTC), all_day=True)


def offered(settings: LinkSettings, *, duration: int | None = None, tz: ZoneInfo = BERLIN, busy_times=(),
            booked=None, now: datetime | None = None, **kw) -> list[str]:
    """The slots as a host reads them: 'Mon 09:00' in the host zone."""
    found = slots(settings, duration=duration or settings.durations[0], tz=tz, busy=list(busy_times),
                  booked_per_day=booked or {}, now=now or berlin(MONDAY, "07:00", tz), **kw)
    for s in found:
        assert s.start.tzinfo is UTC and s.end - s.start == timedelta(minutes=duration or settings.durations[0])
    return [s.start.astimezone(tz).strftime("%a %H:%M") for s in found]


def utc_times(found: list[Slot]) -> list[str]:
    return [s.start.astimezone(UTC).strftime("%m-%d %H:%M") for s in found]


# -- weekly hours, overrides ----------------------------------------------------------------------

def test_weekly_hours_with_two_ranges_offer_each_range_and_skip_the_lunch_break():
    s = link((("09:00", "12:00"), ("13:00", "15:00")), days=("mon",), durations=(60,))
    assert offered(s) == ["Mon 09:00", "Mon 10:00", "Mon 11:00", "Mon 13:00", "Mon 14:00"]


def test_a_range_ending_at_midnight_offers_its_last_hour():
    s = link((("22:00", "24:00"),), days=("tue",), durations=(60,))
    assert offered(s) == ["Tue 22:00", "Tue 23:00"]


def test_override_day_off_and_override_hours_replace_the_weekly_hours():
    s = link((("09:00", "11:00"),), durations=(60,), overrides={
        "2026-11-24": (),                                   # Tuesday off
        "2026-11-25": (("14:00", "15:00"),),                # Wednesday afternoon instead
        "2026-11-28": (("10:00", "12:00"),),                # an extra Saturday
    })
    assert offered(s) == ["Mon 09:00", "Mon 10:00", "Wed 14:00", "Thu 09:00", "Thu 10:00",
                          "Fri 09:00", "Fri 10:00", "Sat 10:00", "Sat 11:00"]


# -- busy time and buffers -----------------------------------------------------------------------

def test_buffers_keep_room_before_and_after_a_busy_event():
    hours = (("09:00", "14:00"),)
    meeting = [busy(MONDAY, "11:00", "12:00")]
    plain = link(hours, days=("mon",), durations=(30,), interval=15)
    assert offered(plain, busy_times=meeting) == [
        "Mon 09:00", "Mon 09:15", "Mon 09:30", "Mon 09:45", "Mon 10:00", "Mon 10:15", "Mon 10:30",
        "Mon 12:00", "Mon 12:15", "Mon 12:30", "Mon 12:45", "Mon 13:00", "Mon 13:15", "Mon 13:30"]
    # 15 minutes before each booking, 30 after: a booking must end by 10:30 and start from 12:15.
    buffered = link(hours, days=("mon",), durations=(30,), interval=15, buffer_before=15, buffer_after=30)
    assert offered(buffered, busy_times=meeting) == [
        "Mon 09:00", "Mon 09:15", "Mon 09:30", "Mon 09:45", "Mon 10:00",
        "Mon 12:15", "Mon 12:30", "Mon 12:45", "Mon 13:00", "Mon 13:15", "Mon 13:30"]


def test_a_slot_touching_a_busy_event_is_free():
    s = link((("09:00", "12:00"),), days=("mon",), durations=(60,))
    assert offered(s, busy_times=[busy(MONDAY, "10:00", "11:00")]) == ["Mon 09:00", "Mon 11:00"]


def test_a_zero_length_event_blocks_the_slot_it_falls_inside():
    s = link((("09:00", "11:00"),), days=("mon",), durations=(30,))
    assert offered(s, busy_times=[busy(MONDAY, "09:40", "09:40")]) == ["Mon 09:00", "Mon 10:00", "Mon 10:30"]
    assert offered(s, busy_times=[busy(MONDAY, "09:30", "09:30")]) == [
        "Mon 09:00", "Mon 09:30", "Mon 10:00", "Mon 10:30"]


def test_overlapping_unsorted_busy_input_blocks_their_union():
    s = link((("09:00", "14:00"),), days=("mon",), durations=(30,))
    pieces = [busy(MONDAY, "13:00", "13:30"), busy(MONDAY, "09:30", "10:15"), busy(MONDAY, "10:00", "11:00"),
              busy(MONDAY, "10:45", "11:30"), busy(MONDAY, "09:45", "10:00"), busy(MONDAY, "10:00", "11:00")]
    expected = ["Mon 09:00", "Mon 11:30", "Mon 12:00", "Mon 12:30", "Mon 13:30"]
    rng = random.Random(5)
    for _ in range(10):
        rng.shuffle(pieces)
        assert offered(s, busy_times=pieces) == expected


def test_busy_times_and_now_in_other_zones_give_the_same_slots():
    s = link((("09:00", "12:00"),), days=("mon", "tue"), durations=(30,), min_notice=60)
    expected = ["Mon 09:00", "Mon 11:00", "Mon 11:30", "Tue 09:00", "Tue 09:30", "Tue 10:00",
                "Tue 11:00", "Tue 11:30"]
    now = berlin(MONDAY, "07:30")
    for zone in (UTC, BERLIN, NEW_YORK, TOKYO):
        events = [busy(MONDAY, "09:30", "11:00", shown_in=zone),
                  busy(MONDAY + timedelta(days=1), "10:30", "11:00", shown_in=zone)]
        assert offered(s, busy_times=events, now=now.astimezone(zone)) == expected
        # start and end given in yet another zone restrict the same way
        assert offered(s, busy_times=events, now=now.astimezone(zone),
                       start=berlin(MONDAY, "11:00").astimezone(TOKYO),
                       end=berlin(MONDAY, "09:30").astimezone(NEW_YORK) + timedelta(days=1)) == [
            "Mon 11:00", "Mon 11:30", "Tue 09:00"]


def test_all_day_events_block_the_day_only_when_the_link_says_so():
    tuesday = MONDAY + timedelta(days=1)
    events = [all_day(tuesday), busy(tuesday, "10:00", "11:00")]
    blocks = link((("09:00", "12:00"),), days=("mon", "tue"), durations=(60,), all_day_blocks=True)
    assert offered(blocks, busy_times=events) == ["Mon 09:00", "Mon 10:00", "Mon 11:00"]
    ignores = link((("09:00", "12:00"),), days=("mon", "tue"), durations=(60,), all_day_blocks=False)
    # the timed event on Tuesday still blocks
    assert offered(ignores, busy_times=events) == ["Mon 09:00", "Mon 10:00", "Mon 11:00", "Tue 09:00", "Tue 11:00"]


# -- notice, window, interval, durations, limit -------------------------------------------------

def test_minimum_notice_and_nothing_in_the_past():
    s = link((("09:00", "12:00"),), days=("mon",), durations=(30,), min_notice=60)
    assert offered(s, now=berlin(MONDAY, "09:10")) == ["Mon 10:30", "Mon 11:00", "Mon 11:30"]
    s0 = link((("09:00", "12:00"),), days=("mon",), durations=(30,), min_notice=0)
    assert offered(s0, now=berlin(MONDAY, "10:07")) == ["Mon 10:30", "Mon 11:00", "Mon 11:30"]
    assert offered(s0, now=berlin(MONDAY, "10:30")) == ["Mon 10:30", "Mon 11:00", "Mon 11:30"]


def test_bookable_range_is_notice_to_the_end_of_the_window():
    s = link(min_notice=240, rolling_days=3)
    first, last = bookable_range(s, BERLIN, berlin(MONDAY, "10:00").astimezone(NEW_YORK))
    assert (first, last) == (berlin(MONDAY, "14:00").astimezone(UTC), berlin(date(2026, 11, 26), "00:00"))
    assert first.tzinfo is UTC and last.tzinfo is UTC


def test_rolling_window_counts_days_from_today_in_the_host_zone():
    s = link((("09:00", "10:00"),), days=ALL_WEEK, durations=(60,), rolling_days=2)
    assert offered(s) == ["Mon 09:00", "Tue 09:00"]
    # 23:30 UTC on Sunday is already Monday in Berlin
    assert offered(s, now=datetime(2026, 11, 22, 23, 30, tzinfo=UTC)) == ["Mon 09:00", "Tue 09:00"]
    # after hours on Monday: Monday has nothing left, the window still ends on Tuesday
    assert offered(s, now=berlin(MONDAY, "18:00")) == ["Tue 09:00"]


def test_fixed_window_offers_only_its_dates_and_nothing_once_it_has_passed():
    s = link((("09:00", "10:00"),), days=ALL_WEEK, durations=(60,), window_kind="fixed",
             fixed_start="2026-11-20", fixed_end="2026-11-25")
    assert offered(s) == ["Mon 09:00", "Tue 09:00", "Wed 09:00"]
    later = link((("09:00", "10:00"),), days=ALL_WEEK, durations=(60,), window_kind="fixed",
                 fixed_start="2026-12-01", fixed_end="2026-12-02")
    assert offered(later) == ["Tue 09:00", "Wed 09:00"]
    past = link((("09:00", "10:00"),), days=ALL_WEEK, durations=(60,), window_kind="fixed",
                fixed_start="2026-11-01", fixed_end="2026-11-20")
    assert offered(past) == []
    first, last = bookable_range(past, BERLIN, berlin(MONDAY, "07:00"))
    assert first == last


def test_interval_different_from_duration():
    s = link((("09:00", "11:00"),), days=("mon",), durations=(60,), interval=30)
    assert offered(s) == ["Mon 09:00", "Mon 09:30", "Mon 10:00"]
    s = link((("09:00", "11:00"),), days=("mon",), durations=(30,), interval=45)
    assert offered(s) == ["Mon 09:00", "Mon 09:45", "Mon 10:30"]


def test_several_durations_each_fit_the_hours_and_an_unoffered_one_is_refused():
    s = link((("09:00", "10:30"),), days=("mon",), durations=(30, 60), interval=30)
    events = [busy(MONDAY, "10:00", "10:30")]
    assert offered(s, duration=30, busy_times=events) == ["Mon 09:00", "Mon 09:30"]
    assert offered(s, duration=60, busy_times=events) == ["Mon 09:00"]
    assert offered(s, duration=60) == ["Mon 09:00", "Mon 09:30"]
    with pytest.raises(ValueError):
        offered(s, duration=45)
    with pytest.raises(ValueError):
        is_bookable(s, duration=45, tz=BERLIN, busy=[], booked_per_day={}, now=berlin(MONDAY, "07:00"),
                    start=berlin(MONDAY, "09:00"))


def test_daily_limit_closes_a_day_that_has_enough_bookings():
    s = link((("09:00", "11:00"),), days=("mon", "tue", "wed"), durations=(60,), daily_limit=2)
    booked = {MONDAY: 2, MONDAY + timedelta(days=1): 1}
    assert offered(s, booked=booked) == ["Tue 09:00", "Tue 10:00", "Wed 09:00", "Wed 10:00"]
    unlimited = link((("09:00", "11:00"),), days=("mon",), durations=(60,))
    assert offered(unlimited, booked={MONDAY: 50}) == ["Mon 09:00", "Mon 10:00"]


def test_naive_datetimes_are_refused():
    s = link()
    with pytest.raises(ValueError):
        slots(s, duration=30, tz=BERLIN, busy=[], booked_per_day={}, now=datetime(2026, 11, 23, 7))
    with pytest.raises(ValueError):
        slots(s, duration=30, tz=BERLIN, busy=[BusyTime(datetime(2026, 11, 23, 9), datetime(2026, 11, 23, 10))],
              booked_per_day={}, now=berlin(MONDAY, "07:00"))


# -- DST --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "saturday", "expected"), [
    (BERLIN, date(2026, 3, 28), ["03-28 08:00", "03-29 07:00", "03-30 07:00"]),   # spring forward
    (BERLIN, date(2026, 10, 24), ["10-24 07:00", "10-25 08:00", "10-26 08:00"]),  # fall back
    (NEW_YORK, date(2026, 3, 7), ["03-07 14:00", "03-08 13:00", "03-09 13:00"]),
    (NEW_YORK, date(2026, 10, 31), ["10-31 13:00", "11-01 14:00", "11-02 14:00"]),
])
def test_nine_oclock_stays_nine_oclock_local_across_dst(zone, saturday, expected):
    s = link((("09:00", "10:00"),), days=ALL_WEEK, durations=(60,), rolling_days=3)
    found = slots(s, duration=60, tz=zone, busy=[], booked_per_day={}, now=berlin(saturday, "06:00", zone))
    assert utc_times(found) == expected
    assert {x.start.astimezone(zone).strftime("%H:%M") for x in found} == {"09:00"}


@pytest.mark.parametrize(("zone", "day"), [(BERLIN, date(2026, 3, 29)), (NEW_YORK, date(2026, 3, 8))])
def test_a_range_across_the_spring_gap_skips_the_hour_that_does_not_exist(zone, day):
    s = link(days=(), durations=(30,), overrides={day.isoformat(): (("01:00", "04:00"),)})
    found = slots(s, duration=30, tz=zone, busy=[], booked_per_day={}, now=berlin(day, "00:00", zone))
    assert [x.start.astimezone(zone).strftime("%H:%M") for x in found] == ["01:00", "01:30", "03:00", "03:30"]
    # each lasts 30 real minutes: the 01:30 one ends when 03:00 begins
    assert found[1].end == found[2].start


def test_the_repeated_hour_in_autumn_is_offered_once():
    day = date(2026, 10, 25)
    s = link(days=(), durations=(60,), overrides={day.isoformat(): (("01:00", "04:00"),)})
    found = slots(s, duration=60, tz=BERLIN, busy=[], booked_per_day={}, now=berlin(day, "00:00"))
    assert utc_times(found) == ["10-24 23:00", "10-25 00:00", "10-25 02:00"]
    assert [(x.start.astimezone(BERLIN).strftime("%H:%M %Z")) for x in found] == [
        "01:00 CEST", "02:00 CEST", "03:00 CET"]


# -- is_bookable ------------------------------------------------------------------------------------

def test_is_bookable_says_yes_to_an_offered_slot_and_no_to_anything_else():
    s = link((("09:00", "12:00"),), days=("mon", "tue"), durations=(30,), min_notice=60)
    events = [busy(MONDAY, "10:00", "10:30")]
    now = berlin(MONDAY, "08:15")

    def ok(at: datetime) -> bool:
        return is_bookable(s, duration=30, tz=BERLIN, busy=events, booked_per_day={}, now=now, start=at)

    assert ok(berlin(MONDAY, "09:30"))
    assert ok(berlin(MONDAY, "09:30").astimezone(NEW_YORK))
    assert not ok(berlin(MONDAY, "09:00"))           # less than an hour's notice
    assert not ok(berlin(MONDAY, "09:45"))           # not on the 30-minute grid
    assert not ok(berlin(MONDAY, "10:00"))           # busy
    assert not ok(berlin(MONDAY, "12:00"))           # after hours
    assert not ok(berlin(MONDAY, "09:30") + timedelta(seconds=1))
    assert not ok(berlin(MONDAY + timedelta(days=7), "09:30"))  # outside the 7-day window
    assert not is_bookable(s, duration=30, tz=BERLIN, busy=events, booked_per_day={}, now=now,
                           start=berlin(MONDAY, "09:30") - timedelta(days=7))  # the past


# -- properties ------------------------------------------------------------------------------------

ZONES = [ZoneInfo(z) for z in ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                               "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "America/Santiago",
                               "America/Havana")]
# Days around DST changes (Lord Howe moves by 30 minutes; Santiago and Havana change at midnight).
DST_DAYS = [date(2026, 3, 28), date(2026, 10, 24), date(2026, 3, 7), date(2026, 10, 31), date(2026, 4, 4),
            date(2026, 10, 3), date(2026, 9, 5), date(2026, 3, 15), date(2026, 11, 1)]


def minutes(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Any minute count, or one on a 5- or 30-minute grid, so that busy edges, buffers and slot edges
    often touch exactly (where half-open intervals matter)."""
    return st.one_of(st.integers(lo, hi), *(st.integers(-(-lo // g), hi // g).map(lambda x, g=g: x * g)
                                            for g in (5, 30)))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def day_ranges(draw) -> tuple:
    points = sorted(draw(st.lists(st.integers(0, 288).map(lambda x: x * 5), max_size=6, unique=True)))
    return tuple((_hhmm(a), _hhmm(b)) for a, b in zip(points[::2], points[1::2], strict=False))


@st.composite
def scenarios(draw, max_days: int = 3, max_busy: int = 8):
    tz = draw(st.sampled_from(ZONES))
    base = draw(st.one_of(st.sampled_from(DST_DAYS), st.dates(date(2026, 1, 1), date(2027, 12, 31))))
    now = datetime(base.year, base.month, base.day, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(-720, 2160)), seconds=draw(st.one_of(st.just(0), st.integers(0, 59))))
    now = now.astimezone(draw(st.sampled_from(ZONES)))
    durations = tuple(sorted(draw(st.sets(st.integers(1, 36).map(lambda x: x * 5), min_size=1, max_size=3))))
    fixed = draw(st.booleans())
    fixed_start = base + timedelta(days=draw(st.integers(-2, 2)))
    fixed_end = fixed_start + timedelta(days=draw(st.integers(0, max_days - 1)))
    settings = LinkSettings(
        title="p", durations=durations,
        weekly_hours={d: draw(day_ranges()) for d in WEEKDAYS},
        overrides={(base + timedelta(days=k)).isoformat(): draw(day_ranges())
                   for k in draw(st.sets(st.integers(-1, max_days), max_size=2))},
        buffer_before=draw(minutes(0, 60)), buffer_after=draw(minutes(0, 60)),
        min_notice=draw(minutes(0, 600)),
        window_kind="fixed" if fixed else "rolling", rolling_days=draw(st.integers(1, max_days)),
        fixed_start=fixed_start.isoformat() if fixed else None, fixed_end=fixed_end.isoformat() if fixed else None,
        interval=draw(st.one_of(st.none(), st.integers(1, 24).map(lambda x: x * 5))),
        daily_limit=draw(st.one_of(st.none(), st.integers(1, 3))),
        all_day_blocks=draw(st.booleans()))
    booked = {base + timedelta(days=k): draw(st.integers(0, 4)) for k in draw(st.sets(st.integers(-1, max_days)))}
    busy_times = []
    for _ in range(draw(st.integers(0, max_busy))):
        shown_in = draw(st.sampled_from(ZONES))
        if draw(st.integers(0, 4)) == 0:  # an all-day event: the host zone's midnights
            day = base + timedelta(days=draw(st.integers(-1, max_days)))
            start = datetime(day.year, day.month, day.day, tzinfo=tz)
            end_day = day + timedelta(days=draw(st.integers(1, 2)))
            end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
            busy_times.append(BusyTime(start.astimezone(shown_in), end.astimezone(shown_in), all_day=True))
        else:
            start = datetime(base.year, base.month, base.day, tzinfo=UTC) + timedelta(
                minutes=draw(minutes(-1440, (max_days + 1) * 1440)))
            end = start + timedelta(minutes=draw(minutes(0, 600)))
            busy_times.append(BusyTime(start.astimezone(shown_in), end.astimezone(shown_in)))
    duration = draw(st.sampled_from(durations))
    # Events that end exactly where a free slot's buffer begins, or begin where it ends: where
    # half-open intervals matter. (Found with `slots` itself, only to place them.)
    free = slots(settings, duration=duration, tz=tz, busy=[], booked_per_day=booked, now=now)
    for _ in range(draw(st.integers(0, 3)) if free else 0):
        x, length, shown_in = draw(st.sampled_from(free)), timedelta(minutes=draw(minutes(0, 120))), draw(
            st.sampled_from(ZONES))
        if draw(st.booleans()):
            end = x.start - timedelta(minutes=settings.buffer_before)
            start = end - length
        else:
            start = x.end + timedelta(minutes=settings.buffer_after)
            end = start + length
        busy_times.append(BusyTime(start.astimezone(shown_in), end.astimezone(shown_in)))
    return {"settings": settings, "duration": duration, "tz": tz, "busy": busy_times, "booked_per_day": booked,
            "now": now}


def _window(s: LinkSettings, today: date) -> tuple[date, date]:
    if s.window_kind == "fixed":
        return max(today, date.fromisoformat(s.fixed_start)), date.fromisoformat(s.fixed_end)
    return today, today + timedelta(days=s.rolling_days - 1)


def _blocking(sc) -> list[BusyTime]:
    return [b for b in sc["busy"] if sc["settings"].all_day_blocks or not b.all_day]


def _on_the_grid(s: LinkSettings, duration: int, wall: datetime) -> bool:
    m = wall.hour * 60 + wall.minute
    step = s.step(duration)
    return wall.second == 0 and any(
        a.hour * 60 + a.minute <= m and (m - a.hour * 60 - a.minute) % step == 0
        and m + duration <= (1440 if b is None else b.hour * 60 + b.minute)
        for a, b in s.ranges_on(wall.date()))


def reference(sc) -> list[Slot]:
    """Minute by minute over real time: an instant is offered when its local wall time (first
    occurrence only) is on the grid of its day's hours and every rule holds."""
    s, tz, duration, now = sc["settings"], sc["tz"], sc["duration"], sc["now"]
    first_day, last_day = _window(s, now.astimezone(tz).date())
    length = timedelta(minutes=duration)
    before, after = timedelta(minutes=s.buffer_before), timedelta(minutes=s.buffer_after)
    t = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC) - timedelta(days=1)
    stop = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=2)
    out = []
    while t < stop:
        wall = t.astimezone(tz)
        if (wall.fold == 0 and first_day <= wall.date() <= last_day and _on_the_grid(s, duration, wall)
                and t >= now + timedelta(minutes=s.min_notice)
                and (s.daily_limit is None or sc["booked_per_day"].get(wall.date(), 0) < s.daily_limit)
                and not any(b.start < t + length + after and b.end > t - before for b in _blocking(sc))):
            out.append(Slot(t, t + length))
        t += timedelta(minutes=1)
    return out


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_slots_equal_a_minute_by_minute_reference(sc):
    assert slots(**sc) == reference(sc)


@PROPERTY
@given(scenarios(max_days=14, max_busy=40))
def test_every_slot_keeps_every_rule(sc):
    s, tz, duration, now = sc["settings"], sc["tz"], sc["duration"], sc["now"]
    found = slots(**sc)
    first_day, last_day = _window(s, now.astimezone(tz).date())
    starts = [x.start for x in found]
    assert starts == sorted(set(starts))
    for x in found:
        wall = x.start.astimezone(tz)
        # (a) inside the day's hours, on the grid, a real (first-occurrence) local time
        assert wall.fold == 0 and _on_the_grid(s, duration, wall)
        assert x.end - x.start == timedelta(minutes=duration)
        # (b) clear of busy time widened by the buffers
        lo, hi = x.start - timedelta(minutes=s.buffer_before), x.end + timedelta(minutes=s.buffer_after)
        assert not any(b.start < hi and b.end > lo for b in _blocking(sc))
        # (c) notice, window, daily limit
        assert x.start >= now + timedelta(minutes=s.min_notice)
        assert first_day <= wall.date() <= last_day
        assert s.daily_limit is None or sc["booked_per_day"].get(wall.date(), 0) < s.daily_limit


@PROPERTY
@given(scenarios(max_days=5, max_busy=12), st.data())
def test_is_bookable_agrees_with_slots(sc, data):
    found = {x.start for x in slots(**sc)}
    now = sc["now"].astimezone(UTC)
    candidates = data.draw(st.lists(st.one_of(
        st.sampled_from(sorted(found)) if found else st.nothing(),
        st.integers(-60, 7 * 1440).map(lambda m: now.replace(second=0, microsecond=0) + timedelta(minutes=m)),
        st.integers(-60 * 60, 7 * 86400).map(lambda sec: now + timedelta(seconds=sec)),
    ), min_size=1, max_size=10))
    for at in candidates:
        shown = at.astimezone(data.draw(st.sampled_from(ZONES)))
        assert is_bookable(**sc, start=shown) == (at in found)


@PROPERTY
@given(scenarios(max_days=5, max_busy=12), st.data())
def test_the_zones_inputs_are_given_in_do_not_matter(sc, data):
    zone = data.draw(st.sampled_from(ZONES))
    moved = dict(sc, now=sc["now"].astimezone(zone),
                 busy=[BusyTime(b.start.astimezone(zone), b.end.astimezone(zone), b.all_day) for b in sc["busy"]])
    assert slots(**moved) == slots(**sc)
