"""Google event resources <-> models: times and zones, keys, the marker, ids, the write body."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.models import Draft, Window
from daemon.providers import google_events as ge
from daemon.sync.plan import idem_key

BERLIN = ZoneInfo("Europe/Berlin")


def test_event_ids_are_base32hex_and_deterministic():
    key = idem_key(1, 2, "uid|", 0)
    assert ge.event_id(key) == key  # homecal's keys already are Google ids
    other = ge.event_id("booking-9f1c@homecal")
    assert other == ge.event_id("booking-9f1c@homecal")
    assert set(other) <= set("0123456789abcdefghijklmnopqrstuv") and 5 <= len(other) <= 1024
    assert ge.event_id("booking-a") != ge.event_id("booking-b")


def test_timed_event_keeps_its_zone_and_all_day_its_dates():
    ev = {"id": "e1", "iCalUID": "u1@google.com", "status": "confirmed", "summary": "Standup",
          "start": {"dateTime": "2026-03-30T09:00:00+02:00", "timeZone": "Europe/Berlin"},
          "end": {"dateTime": "2026-03-30T09:15:00+02:00", "timeZone": "Europe/Berlin"}}
    inst = ge.to_instance(ev, "e1", details=True)
    assert inst.start.tzinfo == BERLIN and inst.start.hour == 9
    assert inst.utc_bounds(UTC) == (datetime(2026, 3, 30, 7, tzinfo=UTC), datetime(2026, 3, 30, 7, 15, tzinfo=UTC))
    assert inst.key == "u1@google.com|" and inst.summary == "Standup"
    allday = ge.to_instance({"id": "a", "start": {"date": "2026-03-20"}, "end": {"date": "2026-03-22"}}, "a",
                            details=True)
    assert allday.all_day and (allday.start, allday.end) == (date(2026, 3, 20), date(2026, 3, 22))


def test_occurrence_key_is_its_original_start_even_after_a_move():
    occ = {"id": "m_20260310T080000Z", "recurringEventId": "m", "iCalUID": "series@google.com",
           "originalStartTime": {"dateTime": "2026-03-10T09:00:00+01:00", "timeZone": "Europe/Berlin"},
           "start": {"dateTime": "2026-03-10T15:00:00+01:00"}, "end": {"dateTime": "2026-03-10T16:00:00+01:00"}}
    inst = ge.to_instance(occ, "m", details=True)
    assert inst.key == "series@google.com|20260310T080000Z" and inst.recurrence_id == "20260310T080000Z"
    assert inst.item_id == "m" and inst.start.hour == 15


def test_free_busy_reading_drops_text_and_reads_busy_flags():
    ev = {"id": "e", "summary": "Secret", "description": "agenda", "location": "HQ", "transparency": "transparent",
          "start": {"dateTime": "2026-03-10T09:00:00Z"}, "end": {"dateTime": "2026-03-10T10:00:00Z"},
          "attendees": [{"email": "me@x", "self": True, "responseStatus": "declined"}]}
    inst = ge.to_instance(ev, "e", details=False)
    assert (inst.summary, inst.description, inst.location) == (None, None, None)
    assert inst.transparent and inst.declined


@pytest.mark.parametrize("bad", [
    {"id": "x"},
    {"id": "x", "start": {"dateTime": "tomorrow"}, "end": {"dateTime": "2026-03-10T10:00:00Z"}},
    {"id": "x", "start": {"date": "2026-03-10"}, "end": {"dateTime": "2026-03-10T10:00:00Z"}},
    {"id": "x", "start": {"dateTime": "2026-03-10T10:00:00Z"}, "end": {"dateTime": "2026-03-10T09:00:00Z"}},
])
def test_unreadable_events_raise_without_their_text(bad):
    bad = bad | {"summary": "PRIVATE-TEXT"}
    with pytest.raises(ge.EventUnreadable) as info:
        ge.to_instance(bad, "x", details=True)
    assert "PRIVATE-TEXT" not in str(info.value)


def test_marker_is_read_back_as_partner_key():
    draft = Draft(kind="busy", summary="Busy", start=datetime(2026, 3, 10, 9, tzinfo=BERLIN),
                  end=datetime(2026, 3, 10, 10, tzinfo=BERLIN))
    body = ge.body_for(draft, "k123456", BERLIN) | {"id": "k123456"}
    assert ge.partner_key(body) == "k123456"
    assert body["attendees"] == [] and body["reminders"] == {"useDefault": False, "overrides": []}
    assert body["start"] == {"dateTime": "2026-03-10T09:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert body["transparency"] == "opaque" and body["visibility"] == "private"
    inst = ge.to_instance(body, "k123456", details=True)
    assert inst.is_partner and inst.partner_key == "k123456"


def test_booking_body_invites_the_visitor_and_carries_no_marker():
    start = datetime(2026, 3, 10, 9, tzinfo=UTC)
    draft = Draft(kind="booking", summary="Intro call", start=start, end=start + timedelta(minutes=30),
                  organizer=("Host", "host@example.com"), attendees=(("Vis Itor", "v@example.org"),), sequence=2)
    body = ge.body_for(draft, "booking-x", UTC)
    assert body["attendees"] == [{"email": "v@example.org", "displayName": "Vis Itor"}]
    assert "extendedProperties" not in body and body["sequence"] == 2
    assert ge.partner_key(body) is None


def test_floating_draft_times_are_pinned_to_the_owner_zone_and_cleared_text_is_sent_empty():
    draft = Draft(kind="clone", summary="x", start=datetime(2026, 7, 1, 9), end=datetime(2026, 7, 1, 10),
                  description=None, location=None)
    body = ge.body_for(draft, "abcde", BERLIN)
    assert body["start"] == {"dateTime": "2026-07-01T09:00:00+02:00", "timeZone": "Europe/Berlin"}
    assert body["description"] == "" and body["location"] == ""


def test_window_membership_and_series_etags():
    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    inside = ge.to_instance({"id": "a", "start": {"dateTime": "2026-03-31T23:30:00Z"},
                             "end": {"dateTime": "2026-04-01T00:30:00Z"}}, "a", details=False)
    outside = ge.to_instance({"id": "b", "start": {"dateTime": "2026-04-01T00:00:00Z"},
                              "end": {"dateTime": "2026-04-01T01:00:00Z"}}, "b", details=False)
    assert ge.in_window(inside, window, UTC) and not ge.in_window(outside, window, UTC)
    master = {"id": "m", "etag": '"1"'}
    a = ge.series_etag(master, [{"id": "m_1", "etag": '"2"'}])
    assert a == ge.series_etag(master, [{"id": "m_1", "etag": '"2"'}])
    assert a != ge.series_etag(master, [{"id": "m_1", "etag": '"3"'}])  # an exception changed
