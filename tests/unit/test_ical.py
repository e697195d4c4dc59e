"""daemon.ical: what homecal reads out of iCalendar data and what it writes back.

Every input is a literal ICS text, the way a CalDAV server or a feed would hand it over.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.errors import HomecalError
from daemon.ical import MalformedEvent, draft_to_ical, instances_from_ical, split_feed
from daemon.models import Draft, Window

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
YEAR_2027 = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def cal(*body: str) -> str:
    """A VCALENDAR around the given component texts, with CRLF line ends like a server."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//test//EN"]
    for part in body:
        lines += part.strip().splitlines()
    lines.append("END:VCALENDAR")
    return "\r\n".join(line.strip() for line in lines) + "\r\n"


def read(data: str, window: Window = YEAR_2027, tz=UTC, **kw):
    return instances_from_ical(data, "item-1", window, tz, **kw)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


WEEKLY_NY = """
BEGIN:VEVENT
UID:weekly@example.org
DTSTAMP:20270101T000000Z
DTSTART;TZID=America/New_York:20270104T090000
DTEND;TZID=America/New_York:20270104T100000
RRULE:FREQ=WEEKLY
SUMMARY:Standup
END:VEVENT
"""


# --------------------------------------------------------------------------- recurrence


def test_weekly_meeting_stays_at_nine_local_across_both_dst_changes():
    got = read(cal(WEEKLY_NY))
    assert len(got) == 52
    assert all(i.start.astimezone(NY).hour == 9 for i in got)
    assert all(i.end - i.start == timedelta(hours=1) for i in got)
    # the zone is kept, not flattened to UTC
    assert all(i.start.tzinfo.key == "America/New_York" for i in got)
    by_day = {i.start.date(): i.start.astimezone(UTC).hour for i in got}
    assert by_day[date(2027, 3, 8)] == 14  # EST, before the March change
    assert by_day[date(2027, 3, 15)] == 13  # EDT
    assert by_day[date(2027, 11, 1)] == 13  # still EDT
    assert by_day[date(2027, 11, 8)] == 14  # EST again
    assert got[0].key == "weekly@example.org|20270104T140000Z"
    assert got[0].recurrence_id == "20270104T140000Z"
    assert got[0].uid == "weekly@example.org" and got[0].item_id == "item-1"


def test_exdate_in_utc_removes_the_occurrence_of_a_zoned_series():
    data = cal(WEEKLY_NY.replace("RRULE:FREQ=WEEKLY", "RRULE:FREQ=WEEKLY;COUNT=4\nEXDATE:20270111T140000Z"))
    days = [i.start.date() for i in read(data)]
    assert days == [date(2027, 1, 4), date(2027, 1, 18), date(2027, 1, 25)]


def test_exdate_with_tzid_removes_the_occurrence():
    data = cal(WEEKLY_NY.replace(
        "RRULE:FREQ=WEEKLY", "RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID=America/New_York:20270118T090000"))
    assert [i.start.date() for i in read(data)] == [date(2027, 1, 4), date(2027, 1, 11)]


def test_date_exdate_removes_a_day_of_an_all_day_series():
    data = cal("""
BEGIN:VEVENT
UID:gym
DTSTART;VALUE=DATE:20270301
DTEND;VALUE=DATE:20270302
RRULE:FREQ=DAILY;COUNT=4
EXDATE;VALUE=DATE:20270302
END:VEVENT""")
    got = read(data)
    assert [i.start for i in got] == [date(2027, 3, 1), date(2027, 3, 3), date(2027, 3, 4)]
    assert all(i.all_day and i.end - i.start == timedelta(days=1) for i in got)
    assert got[1].key == "gym|20270303"


def test_all_day_override_with_a_date_time_recurrence_id_keeps_the_day_key():
    data = cal("""
BEGIN:VEVENT
UID:gym
DTSTART;VALUE=DATE:20270301
DTEND;VALUE=DATE:20270302
RRULE:FREQ=DAILY;COUNT=3
END:VEVENT""", """
BEGIN:VEVENT
UID:gym
RECURRENCE-ID:20270302T000000
DTSTART;VALUE=DATE:20270310
DTEND;VALUE=DATE:20270311
END:VEVENT""")
    assert {i.key: i.start for i in read(data)} == {
        "gym|20270301": date(2027, 3, 1), "gym|20270302": date(2027, 3, 10), "gym|20270303": date(2027, 3, 3)}


def test_rdate_adds_an_occurrence():
    data = cal(WEEKLY_NY.replace(
        "RRULE:FREQ=WEEKLY", "RRULE:FREQ=WEEKLY;COUNT=2\nRDATE;TZID=America/New_York:20270106T150000"))
    got = read(data)
    assert [i.start for i in got] == [datetime(2027, 1, 4, 9, tzinfo=NY), datetime(2027, 1, 6, 15, tzinfo=NY),
                                      datetime(2027, 1, 11, 9, tzinfo=NY)]
    assert got[1].end == datetime(2027, 1, 6, 16, tzinfo=NY)
    assert got[1].key == "weekly@example.org|20270106T200000Z"


MOVED = """
BEGIN:VEVENT
UID:weekly@example.org
DTSTAMP:20270101T000000Z
RECURRENCE-ID;TZID=America/New_York:20270118T090000
DTSTART;TZID=America/New_York:20270120T140000
DTEND;TZID=America/New_York:20270120T153000
SUMMARY:Standup (moved)
END:VEVENT
"""


def test_moved_occurrence_keeps_its_original_key_and_gets_its_new_time():
    got = {i.key: i for i in read(cal(WEEKLY_NY, MOVED))}
    moved = got["weekly@example.org|20270118T140000Z"]
    assert moved.start == datetime(2027, 1, 20, 14, tzinfo=NY)
    assert moved.end == datetime(2027, 1, 20, 15, 30, tzinfo=NY)
    assert moved.recurrence_id == "20270118T140000Z"
    assert moved.summary == "Standup (moved)"
    assert not any(i.start.date() == date(2027, 1, 18) for i in got.values())  # not twice
    assert len(got) == 52


def test_floating_recurrence_id_of_a_zoned_series_gets_the_series_key_even_before_its_master():
    # Some clients write the override's RECURRENCE-ID without TZID; it means the series' zone.
    floating = MOVED.replace("RECURRENCE-ID;TZID=America/New_York:", "RECURRENCE-ID:")
    got = {i.key: i for i in read(cal(floating, WEEKLY_NY))}
    assert got["weekly@example.org|20270118T140000Z"].start == datetime(2027, 1, 20, 14, tzinfo=NY)
    assert len(got) == 52


def test_cancelled_override_is_reported_cancelled_never_busy_confirmed():
    cancelled = """
BEGIN:VEVENT
UID:weekly@example.org
RECURRENCE-ID:20270125T140000Z
DTSTART;TZID=America/New_York:20270125T090000
DTEND;TZID=America/New_York:20270125T100000
STATUS:CANCELLED
END:VEVENT"""
    got = {i.key: i for i in read(cal(WEEKLY_NY, cancelled))}
    assert got["weekly@example.org|20270125T140000Z"].status == "cancelled"
    assert all(i.status == "confirmed" for k, i in got.items() if k != "weekly@example.org|20270125T140000Z")


def test_this_and_future_override_gives_each_later_occurrence_its_own_key():
    shift = """
BEGIN:VEVENT
UID:weekly@example.org
RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=America/New_York:20270118T090000
DTSTART;TZID=America/New_York:20270118T110000
DTEND;TZID=America/New_York:20270118T120000
END:VEVENT"""
    window = Window(utc(2027, 1, 1), utc(2027, 2, 1))
    got = read(cal(WEEKLY_NY, shift), window)
    assert [i.start.hour for i in got] == [9, 9, 11, 11]
    assert [i.recurrence_id for i in got] == ["20270104T140000Z", "20270111T140000Z",
                                             "20270118T140000Z", "20270125T140000Z"]


def test_keys_are_stable_whatever_window_the_occurrence_is_read_in():
    data = cal(WEEKLY_NY, MOVED)
    a = {i.key: i.start for i in read(data, Window(utc(2027, 1, 1), utc(2027, 2, 1)))}
    b = {i.key: i.start for i in read(data, Window(utc(2027, 1, 15), utc(2027, 3, 1)))}
    common = set(a) & set(b)
    assert common == {"weekly@example.org|20270118T140000Z", "weekly@example.org|20270125T140000Z"}
    assert all(a[k] == b[k] for k in common)


def test_a_series_started_years_ago_still_yields_its_occurrences():
    data = cal("""
BEGIN:VEVENT
UID:old
DTSTART;TZID=Europe/Berlin:20150105T080000
DTEND;TZID=Europe/Berlin:20150105T083000
RRULE:FREQ=DAILY
END:VEVENT""")
    got = read(data, Window(utc(2027, 6, 1), utc(2027, 6, 8)))
    assert [i.start for i in got] == [datetime(2027, 6, d, 8, tzinfo=BERLIN) for d in range(1, 8)]
    assert got[0].key == "old|20270601T060000Z"


def test_runaway_secondly_rule_is_capped_not_hanging():
    data = cal("""
BEGIN:VEVENT
UID:storm
DTSTART:20270101T000000Z
RRULE:FREQ=SECONDLY
END:VEVENT""")
    began = time.monotonic()
    got = read(data, Window(utc(2027, 1, 1), utc(2027, 4, 1)), max_instances=1000)
    assert time.monotonic() - began < 2
    assert len(got) == 1000
    assert got[0].start == utc(2027, 1, 1) and got[-1].start == utc(2027, 1, 1, 0, 16, 39)  # the earliest


def test_dense_rule_that_ends_early_is_read_quickly():
    data = cal("""
BEGIN:VEVENT
UID:burst
DTSTART:20270610T090000Z
RRULE:FREQ=SECONDLY;UNTIL=20270610T091000Z
END:VEVENT""")
    began = time.monotonic()
    got = read(data)  # a whole year to walk after the burst
    assert time.monotonic() - began < 2
    assert len(got) == 601 and got[-1].start == utc(2027, 6, 10, 9, 10)


def test_minutely_rule_under_the_default_cap_stops_at_ten_thousand():
    data = cal("""
BEGIN:VEVENT
UID:storm
DTSTART:20270101T000000Z
RRULE:FREQ=MINUTELY
END:VEVENT""")
    assert len(read(data, Window(utc(2027, 1, 1), utc(2027, 4, 1)))) == 10000


def test_dense_rule_started_long_before_the_window_is_refused_not_hung():
    data = cal("""
BEGIN:VEVENT
UID:storm
DTSTART:20200101T000000Z
RRULE:FREQ=MINUTELY
END:VEVENT""")
    with pytest.raises(MalformedEvent, match="MINUTELY"):
        read(data)


# --------------------------------------------------------------------------- times


def test_all_day_event_is_a_date_with_exclusive_end_in_the_owners_zone():
    data = cal("""
BEGIN:VEVENT
UID:holiday
DTSTART;VALUE=DATE:20270320
DTEND;VALUE=DATE:20270321
END:VEVENT""")
    (got,) = read(data, tz=NY)
    assert (got.start, got.end, got.all_day) == (date(2027, 3, 20), date(2027, 3, 21), True)
    assert got.key == "holiday|" and got.recurrence_id is None
    # judged in the owner's zone: the day is 04:00Z..04:00Z in New York (EDT)
    assert got.utc_bounds(NY) == (utc(2027, 3, 20, 4), utc(2027, 3, 21, 4))
    assert read(data, Window(utc(2027, 3, 20), utc(2027, 3, 20, 4)), tz=NY) == []
    assert len(read(data, Window(utc(2027, 3, 20), utc(2027, 3, 20, 4)), tz=UTC)) == 1


def test_multi_day_all_day_event_keeps_its_real_end():
    data = cal("""
BEGIN:VEVENT
UID:trip
DTSTART;VALUE=DATE:20270801
DTEND;VALUE=DATE:20270805
END:VEVENT""")
    (got,) = read(data, Window(utc(2027, 8, 3), utc(2027, 8, 4)))
    assert (got.start, got.end) == (date(2027, 8, 1), date(2027, 8, 5))


def test_all_day_weekly_series():
    data = cal("""
BEGIN:VEVENT
UID:bins
DTSTART;VALUE=DATE:20270105
DTEND;VALUE=DATE:20270106
RRULE:FREQ=WEEKLY;COUNT=3
END:VEVENT""")
    got = read(data)
    assert [i.start for i in got] == [date(2027, 1, 5), date(2027, 1, 12), date(2027, 1, 19)]
    assert [i.key for i in got] == ["bins|20270105", "bins|20270112", "bins|20270119"]
    assert all(i.all_day for i in got)


def test_floating_time_is_naive_and_read_in_the_owners_zone():
    data = cal("""
BEGIN:VEVENT
UID:float
DTSTART:20270610T090000
DTEND:20270610T100000
RRULE:FREQ=DAILY;COUNT=2
END:VEVENT""")
    got = read(data, tz=BERLIN)
    assert got[0].start == datetime(2027, 6, 10, 9) and got[0].start.tzinfo is None
    assert got[0].key == "float|20270610T090000"
    assert got[0].utc_bounds(BERLIN)[0] == utc(2027, 6, 10, 7)
    # 09:00 in Berlin is 07:00Z-08:00Z: found by a window holding just that hour, missed by
    # one that ends at 07:00Z, whatever 09:00 would mean in UTC
    assert [i.key for i in read(data, Window(utc(2027, 6, 10, 7), utc(2027, 6, 10, 8)), tz=BERLIN)] \
        == ["float|20270610T090000"]
    assert read(data, Window(utc(2027, 6, 10), utc(2027, 6, 10, 7)), tz=BERLIN) == []


@pytest.mark.parametrize("props, start, end", [
    ("DTSTART:20270610T090000Z", utc(2027, 6, 10, 9), utc(2027, 6, 10, 9)),
    ("DTSTART;VALUE=DATE:20270610", date(2027, 6, 10), date(2027, 6, 11)),
    ("DTSTART:20270610T090000Z\nDURATION:PT45M", utc(2027, 6, 10, 9), utc(2027, 6, 10, 9, 45)),
    ("DTSTART;VALUE=DATE:20270610\nDURATION:P3D", date(2027, 6, 10), date(2027, 6, 13)),
])
def test_event_without_dtend(props, start, end):
    (got,) = read(cal(f"BEGIN:VEVENT\nUID:x\n{props}\nEND:VEVENT"))
    assert (got.start, got.end) == (start, end)


def test_unknown_tzid_is_read_as_utc_with_a_warning(caplog):
    data = cal("""
BEGIN:VEVENT
UID:odd
DTSTART;TZID=Mars/Olympus_Mons:20270610T090000
DTEND;TZID=Mars/Olympus_Mons:20270610T100000
END:VEVENT""")
    with caplog.at_level(logging.WARNING, logger="homecal.ical"):
        (got,) = read(data, tz=BERLIN)
    assert got.start == utc(2027, 6, 10, 9) and got.start.tzinfo is not None
    assert "Mars/Olympus_Mons" in caplog.text


def test_windows_zone_name_and_iana_zone_without_vtimezone_are_honoured():
    data = cal("""
BEGIN:VEVENT
UID:win
DTSTART;TZID=W. Europe Standard Time:20270610T090000
DTEND;TZID=America/New_York:20270610T100000
END:VEVENT""")
    (got,) = read(data)
    assert got.start.astimezone(UTC) == utc(2027, 6, 10, 7)
    assert got.end.astimezone(UTC) == utc(2027, 6, 10, 14)


def test_custom_vtimezone_is_used():
    data = cal("""
BEGIN:VTIMEZONE
TZID:Eastern Time (US & Canada)
BEGIN:STANDARD
DTSTART:16011104T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010311T020000
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE""", """
BEGIN:VEVENT
UID:outlook
DTSTART;TZID="Eastern Time (US & Canada)":20270701T090000
DTEND;TZID="Eastern Time (US & Canada)":20270701T100000
END:VEVENT""")
    (got,) = read(data)
    assert got.start.astimezone(UTC) == utc(2027, 7, 1, 13)


# --------------------------------------------------------------------------- busy-ness and details


def test_transparent_tentative_and_plain_events():
    data = cal("""
BEGIN:VEVENT
UID:a
DTSTART:20270610T090000Z
DTEND:20270610T100000Z
TRANSP:TRANSPARENT
END:VEVENT""", """
BEGIN:VEVENT
UID:b
DTSTART:20270611T090000Z
DTEND:20270611T100000Z
STATUS:TENTATIVE
END:VEVENT""", """
BEGIN:VEVENT
UID:c
DTSTART:20270612T090000Z
DTEND:20270612T100000Z
TRANSP:OPAQUE
STATUS:CONFIRMED
END:VEVENT""")
    a, b, c = read(data)
    assert (a.transparent, a.status) == (True, "confirmed")
    assert (b.transparent, b.status) == (False, "tentative")
    assert (c.transparent, c.status, c.declined) == (False, "confirmed", False)


def test_cancelled_single_event_is_cancelled():
    data = cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nDTEND:20270610T100000Z\nSTATUS:CANCELLED\nEND:VEVENT")
    assert read(data)[0].status == "cancelled"


INVITE = """
BEGIN:VEVENT
UID:invite
DTSTART:20270610T090000Z
DTEND:20270610T100000Z
ORGANIZER:mailto:boss@example.org
ATTENDEE;PARTSTAT=ACCEPTED:mailto:boss@example.org
ATTENDEE;CN=Me;PARTSTAT=DECLINED:MAILTO:Me@Example.ORG
ATTENDEE;PARTSTAT=DECLINED:mailto:other@example.org
END:VEVENT
"""


def test_declined_by_the_owner_matches_email_case_insensitively():
    assert read(cal(INVITE), owner_emails=["me@example.org"])[0].declined
    assert read(cal(INVITE), owner_emails=["ME@EXAMPLE.ORG"])[0].declined
    assert read(cal(INVITE), owner_emails=["other@example.net", "mailto:me@example.org"])[0].declined


def test_declined_by_someone_else_is_not_declined_by_the_owner():
    assert not read(cal(INVITE), owner_emails=["boss@example.org"])[0].declined
    assert not read(cal(INVITE))[0].declined


DETAILED = """
BEGIN:VEVENT
UID:detailed
DTSTART:20270610T090000Z
DTEND:20270610T100000Z
SUMMARY:Réunion à Zürich — 東京
DESCRIPTION:Agenda:\\n1. budget\\, roadmap
LOCATION:Zürich\\; Bahnhofstrasse 1
END:VEVENT
"""


def test_details_keep_non_ascii_and_unescape_text():
    (got,) = read(cal(DETAILED))
    assert got.summary == "Réunion à Zürich — 東京"
    assert got.description == "Agenda:\n1. budget, roadmap"
    assert got.location == "Zürich; Bahnhofstrasse 1"


def test_bytes_input_in_utf8_reads_the_same():
    assert read(cal(DETAILED).encode("utf-8"))[0].summary == "Réunion à Zürich — 東京"


def test_free_busy_mode_reads_no_text():
    (got,) = read(cal(DETAILED), details=False)
    assert (got.summary, got.description, got.location) == (None, None, None)
    assert got.start == utc(2027, 6, 10, 9)


def test_partner_key_comes_from_the_homecal_marker():
    data = cal("""
BEGIN:VEVENT
UID:clone
DTSTART:20270610T090000Z
DTEND:20270610T100000Z
X-HOMECAL-KEY:rule-7|src@example.org|20270610T090000Z
END:VEVENT""")
    (got,) = read(data)
    assert got.partner_key == "rule-7|src@example.org|20270610T090000Z" and got.is_partner
    assert read(cal(DETAILED))[0].partner_key is None


# --------------------------------------------------------------------------- window edges


EDGE = cal("""
BEGIN:VEVENT
UID:before
DTSTART:20270610T080000Z
DTEND:20270610T090000Z
END:VEVENT""", """
BEGIN:VEVENT
UID:after
DTSTART:20270610T100000Z
DTEND:20270610T110000Z
END:VEVENT""", """
BEGIN:VEVENT
UID:across
DTSTART:20270610T085959Z
DTEND:20270610T090001Z
END:VEVENT""", """
BEGIN:VEVENT
UID:point-at-start
DTSTART:20270610T090000Z
END:VEVENT""", """
BEGIN:VEVENT
UID:point-at-end
DTSTART:20270610T100000Z
END:VEVENT""")


def test_window_edges_are_half_open():
    window = Window(utc(2027, 6, 10, 9), utc(2027, 6, 10, 10))
    assert sorted(i.uid for i in read(EDGE, window)) == ["across", "point-at-start"]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("data, why", [
    ("this is not a calendar", "not iCalendar"),
    ("", "not iCalendar"),
    ("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20270610T090000Z\r\nEND:VEVENT\r\n", "VCALENDAR"),
    (cal(), "no VEVENT"),
    (cal("BEGIN:VEVENT\nUID:x\nSUMMARY:no start\nEND:VEVENT"), "DTSTART"),
    (cal("BEGIN:VEVENT\nDTSTART:20270610T090000Z\nEND:VEVENT"), "UID"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nDTEND:20270610T080000Z\nEND:VEVENT"), "before"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nDTEND:next tuesday\nEND:VEVENT"), "DTEND"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nRRULE:FREQ=SOMETIMES\nEND:VEVENT"), "RRULE"),
    # icalendar accepts these rules; the expansion library chokes on them
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nRRULE:BYDAY=MO\nEND:VEVENT"), "recurrence"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nRRULE:FREQ=DAILY;BYHOUR=25\nEND:VEVENT"),
     "recurrence"),
    # rules dateutil would loop on forever, or until the year 9999
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nRRULE:FREQ=DAILY;INTERVAL=0\nEND:VEVENT"),
     "INTERVAL"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\n"
         "END:VEVENT"), "never"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART:20270610T090000Z\n"
         "RRULE:FREQ=SECONDLY;BYMONTH=12;BYMONTHDAY=25;BYHOUR=9;BYMINUTE=0;BYSECOND=0\nEND:VEVENT"), "dense"),
    (cal("BEGIN:VEVENT\nUID:x\nDTSTART;VALUE=DATE:20270610\nDTEND:20270611T000000Z\nEND:VEVENT"), "DATE"),
])
def test_malformed_objects_raise_malformed_event(data, why):
    with pytest.raises(MalformedEvent, match=why) as caught:
        read(data)
    assert isinstance(caught.value, HomecalError)


def test_broken_start_in_an_x_wr_timezone_calendar_is_malformed_not_a_crash():
    data = cal("X-WR-TIMEZONE:Europe/Berlin", "BEGIN:VEVENT\nUID:x\nDTSTART:soon\nEND:VEVENT")
    with pytest.raises(MalformedEvent, match="DTSTART"):
        read(data)


def test_error_messages_never_quote_event_text():
    data = cal("BEGIN:VEVENT\nUID:x\nSUMMARY:Secret surgery\nDTSTART:20270610T090000Z\n"
               "DTEND:20270610T080000Z\nEND:VEVENT")
    with pytest.raises(MalformedEvent) as caught:
        read(data)
    assert "Secret" not in str(caught.value)


def test_tasks_only_calendar_is_not_an_error():
    data = cal("BEGIN:VTODO\nUID:t\nSUMMARY:buy milk\nEND:VTODO", "BEGIN:VJOURNAL\nUID:j\nEND:VJOURNAL")
    assert read(data) == []


# --------------------------------------------------------------------------- feeds


FEED = cal("""
BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE""", """
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
END:VTIMEZONE""", WEEKLY_NY, """
BEGIN:VEVENT
UID:single@example.org
DTSTART:20270610T090000Z
DTEND:20270610T100000Z
SUMMARY:Dentist
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
DESCRIPTION:reminder
END:VALARM
END:VEVENT""", MOVED, """
BEGIN:VEVENT
UID:berlin@example.org
DTSTART;TZID=Europe/Berlin:20270612T090000
DTEND;TZID=Europe/Berlin:20270612T100000
SUMMARY:Termin
END:VEVENT""")


def test_split_feed_gives_one_object_per_uid_with_its_overrides_and_zones():
    parts = split_feed(FEED)
    assert set(parts) == {"weekly@example.org", "single@example.org", "berlin@example.org"}
    weekly = icalendar.Calendar.from_ical(parts["weekly@example.org"])
    assert len(weekly.walk("VEVENT")) == 2  # the master and its moved occurrence
    assert [z["TZID"] for z in weekly.walk("VTIMEZONE")] == ["America/New_York"]
    assert [z["TZID"] for z in icalendar.Calendar.from_ical(parts["berlin@example.org"]).walk("VTIMEZONE")] \
        == ["Europe/Berlin"]
    single = icalendar.Calendar.from_ical(parts["single@example.org"])
    assert single.walk("VTIMEZONE") == [] and len(single.walk("VALARM")) == 1
    # each part reads like a CalDAV resource, the override applied
    got = {i.key: i for i in read(parts["weekly@example.org"])}
    assert got["weekly@example.org|20270118T140000Z"].start == datetime(2027, 1, 20, 14, tzinfo=NY)


def test_split_feed_with_x_wr_timezone_expands_floating_times_in_that_zone():
    feed = cal("""
X-WR-TIMEZONE:Europe/Berlin
BEGIN:VEVENT
UID:g1
DTSTART:20270105T090000
DTEND:20270105T100000
RRULE:FREQ=DAILY;COUNT=2
END:VEVENT""", """
BEGIN:VEVENT
UID:g2
DTSTART:20270701T070000Z
DTEND:20270701T080000Z
RRULE:FREQ=YEARLY;COUNT=1
END:VEVENT""")
    parts = split_feed(feed)
    assert all("X-WR-TIMEZONE:Europe/Berlin" in text for text in parts.values())
    g1 = read(parts["g1"], tz=NY)  # the owner's zone is not the feed's
    assert [i.start for i in g1] == [datetime(2027, 1, 5, 9, tzinfo=BERLIN), datetime(2027, 1, 6, 9, tzinfo=BERLIN)]
    (g2,) = read(parts["g2"], tz=NY)
    assert g2.start == datetime(2027, 7, 1, 9, tzinfo=BERLIN)  # UTC converted to the feed's zone


def test_unknown_x_wr_timezone_does_not_break_the_object():
    data = cal("X-WR-TIMEZONE:Nowhere/Special",
               "BEGIN:VEVENT\nUID:x\nDTSTART:20270105T090000\nDTEND:20270105T100000\nEND:VEVENT")
    (got,) = read(data, tz=NY)
    assert got.start == datetime(2027, 1, 5, 9)  # stays floating: read in the owner's zone


def test_split_feed_gives_uid_less_events_a_stable_synthetic_uid():
    event = "BEGIN:VEVENT\nDTSTART:20270610T090000Z\nDTEND:20270610T100000Z\nSUMMARY:Market day\nEND:VEVENT"
    other = event.replace("Market day", "Flea market")
    first, again = split_feed(cal(event, other)), split_feed(cal(other, event))
    assert len(first) == 2 and set(first) == set(again)
    for uid, text in first.items():
        (got,) = read(text)
        assert got.uid == uid and uid.startswith("homecal-nouid-")


def test_split_feed_refuses_what_is_not_a_whole_vcalendar():
    for data in ("hello", "BEGIN:VEVENT\nUID:x\nEND:VEVENT", ""):
        with pytest.raises(MalformedEvent):
            split_feed(data)
    truncated = FEED[: FEED.index("END:VCALENDAR")]
    with pytest.raises(MalformedEvent, match="truncated"):
        split_feed(truncated)
    assert split_feed(cal()) == {}


def test_split_feed_handles_ten_thousand_events_quickly():
    events = [f"BEGIN:VEVENT\nUID:e{n}\nDTSTART;TZID=America/New_York:20270610T090000\n"
              f"DTEND;TZID=America/New_York:20270610T100000\nSUMMARY:Event {n}\nEND:VEVENT" for n in range(10000)]
    feed = cal(FEED.split("BEGIN:VEVENT")[0].split("PRODID:-//test//test//EN")[1], *events)
    began = time.monotonic()
    parts = split_feed(feed.encode())
    assert time.monotonic() - began < 1.5
    assert len(parts) == 10000
    assert "TZID:America/New_York" in parts["e9999"] and "Europe/Berlin" not in parts["e9999"]


# --------------------------------------------------------------------------- writing


def roundtrip(draft: Draft, tz=UTC):
    text = draft_to_ical(draft, "clone-1@homecal", "rule-1|src|20270610T130000Z", tz=tz)
    (got,) = read(text, tz=tz)
    return text, got


def test_zoned_draft_round_trips_with_its_zone_and_a_vtimezone():
    draft = Draft(kind="clone", summary="Réunion — 東京", start=datetime(2027, 6, 10, 9, tzinfo=NY),
                  end=datetime(2027, 6, 10, 10, 30, tzinfo=NY), location="Zürich", description="a; b, c")
    text, got = roundtrip(draft)
    assert "DTSTART;TZID=America/New_York:20270610T090000" in text
    assert "BEGIN:VTIMEZONE" in text and "TZID:America/New_York" in text
    assert (got.start, got.end, got.all_day) == (draft.start, draft.end, False)
    assert got.start.tzinfo.key == "America/New_York"
    assert (got.summary, got.location, got.description) == (draft.summary, "Zürich", "a; b, c")
    assert got.partner_key == "rule-1|src|20270610T130000Z"
    assert got.uid == "clone-1@homecal" and got.key == "clone-1@homecal|"


def test_utc_draft_is_written_with_z():
    draft = Draft(kind="busy", summary="Busy", start=utc(2027, 6, 10, 13), end=utc(2027, 6, 10, 14))
    text, got = roundtrip(draft)
    assert "DTSTART:20270610T130000Z" in text and "VTIMEZONE" not in text
    assert (got.start, got.end, got.summary) == (draft.start, draft.end, "Busy")


def test_all_day_draft_round_trips_as_dates():
    draft = Draft(kind="clone", summary="Holiday", start=date(2027, 8, 1), end=date(2027, 8, 4), all_day=True,
                  transparent=True)
    text, got = roundtrip(draft, tz=BERLIN)
    assert "DTSTART;VALUE=DATE:20270801" in text and "DTEND;VALUE=DATE:20270804" in text
    assert (got.start, got.end, got.all_day, got.transparent) == (date(2027, 8, 1), date(2027, 8, 4), True, True)


def test_written_event_never_invites_and_never_bumps_sequence():
    draft = Draft(kind="clone", summary="Lunch", start=utc(2027, 6, 10, 12), end=utc(2027, 6, 10, 13))
    text = draft_to_ical(draft, "u", "k")
    assert "SEQUENCE:0" in text
    assert "ATTENDEE" not in text and "ORGANIZER" not in text
    assert "PRODID:-//homecal//homecal//EN" in text and "VERSION:2.0" in text
    assert "CLASS:PRIVATE" in text and "TRANSP:OPAQUE" in text
    assert "DESCRIPTION" not in text and "LOCATION" not in text
    public = draft_to_ical(Draft(kind="clone", summary="Lunch", start=draft.start, end=draft.end, private=False),
                           "u", "k")
    assert "CLASS" not in public


def test_marker_with_awkward_characters_round_trips():
    key = "rule;1|a,b\\c|x\ny"
    draft = Draft(kind="busy", summary="Busy", start=utc(2027, 6, 10, 13), end=utc(2027, 6, 10, 14))
    (got,) = read(draft_to_ical(draft, "u", key))
    assert got.partner_key == key


def test_floating_draft_is_written_in_the_given_zone():
    draft = Draft(kind="busy", summary="Busy", start=datetime(2027, 6, 10, 9), end=datetime(2027, 6, 10, 10))
    text = draft_to_ical(draft, "u", "k", tz=BERLIN)
    assert "DTSTART;TZID=Europe/Berlin:20270610T090000" in text
    fixed = Draft(kind="busy", summary="Busy", start=datetime(2027, 6, 10, 9, tzinfo=timezone(timedelta(hours=2))),
                  end=datetime(2027, 6, 10, 10, tzinfo=timezone(timedelta(hours=2))))
    assert "DTSTART:20270610T070000Z" in draft_to_ical(fixed, "u", "k")


def test_written_vtimezones_come_before_the_event_and_give_the_right_offsets():
    # Clients that don't know IANA names (or prefer the object's own zone) read the VTIMEZONE;
    # it must match zoneinfo on both sides of the DST changes of the instance's year.
    winter = Draft(kind="busy", summary="Busy", start=datetime(2027, 12, 6, 9, tzinfo=NY),
                   end=datetime(2027, 12, 6, 17, tzinfo=BERLIN))
    text = draft_to_ical(winter, "u", "k")
    assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")
    cal = icalendar.Calendar.from_ical(text)
    zones = {z["TZID"]: z.to_tz() for z in cal.walk("VTIMEZONE")}
    assert sorted(zones) == ["America/New_York", "Europe/Berlin"]
    for when in (datetime(2027, 3, 1, 9), datetime(2027, 7, 1, 9), datetime(2027, 12, 6, 9), datetime(2028, 7, 1, 9)):
        for name, zone in zones.items():
            assert zone.utcoffset(when) == ZoneInfo(name).utcoffset(when), (name, when)
    # the second draft in the same zone reuses the zone text, and each object carries its own copy
    again = draft_to_ical(Draft(kind="busy", summary="Busy", start=datetime(2027, 12, 7, 9, tzinfo=NY),
                                end=datetime(2027, 12, 7, 10, tzinfo=NY)), "u2", "k2")
    assert again.count("BEGIN:VTIMEZONE") == 1 and "TZID:America/New_York" in again
