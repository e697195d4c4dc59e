"""Graph events <-> homecal's model: zones (Windows names), all-day, occurrences, marks, writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.models import Draft
from daemon.providers import microsoft_events as me

BERLIN = ZoneInfo("Europe/Berlin")


def graph_event(**extra) -> dict:
    return {"id": "AAMkAD1", "@odata.etag": 'W/"ck1"', "changeKey": "ck1", "iCalUId": "040000008200E0",
            "subject": "Planning", "type": "singleInstance", "isAllDay": False, "showAs": "busy",
            "start": {"dateTime": "2026-07-01T07:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-07-01T08:00:00.0000000", "timeZone": "UTC"},
            "originalStartTimeZone": "W. Europe Standard Time", "originalEndTimeZone": "W. Europe Standard Time",
            "body": {"contentType": "text", "content": "Agenda"}, "location": {"displayName": "Room 4"},
            "responseStatus": {"response": "organizer"}} | extra


def test_a_timed_event_keeps_its_own_zone_from_the_windows_name():
    inst = me.to_instance(graph_event(), details=True)
    assert inst.start == datetime(2026, 7, 1, 9, 0, tzinfo=BERLIN)
    assert getattr(inst.start.tzinfo, "key", None) == "Europe/Berlin"
    assert (inst.summary, inst.description, inst.location) == ("Planning", "Agenda", "Room 4")
    assert inst.key == "040000008200E0|" and not inst.transparent


def test_windows_zone_names_map_to_iana_and_back():
    assert getattr(me.zone("Pacific Standard Time"), "key", None) == "America/Los_Angeles"
    assert getattr(me.zone("Europe/Paris"), "key", None) == "Europe/Paris"  # IANA accepted as is
    assert me.zone("Mars Standard Time") is None
    assert me.windows_name(ZoneInfo("America/Los_Angeles")) == "Pacific Standard Time"
    assert me.windows_name(ZoneInfo("UTC")) == "UTC"


def test_all_day_events_become_dates_whatever_zone_label_graph_used():
    inst = me.to_instance(graph_event(isAllDay=True, start={"dateTime": "2026-07-03T00:00:00.0000000",
                                                            "timeZone": "UTC"},
                                      end={"dateTime": "2026-07-05T00:00:00.0000000", "timeZone": "UTC"}),
                          details=True)
    assert inst.all_day and (inst.start, inst.end) == (date(2026, 7, 3), date(2026, 7, 5))


def test_an_occurrence_is_keyed_by_its_series_and_original_start():
    occ = me.to_instance(graph_event(id="AAMkOcc", type="occurrence", seriesMasterId="AAMkMaster",
                                     iCalUId="different-per-occurrence", originalStart="2026-07-01T07:00:00Z"),
                         details=True)
    assert occ.key == "AAMkMaster|20260701T070000Z" and occ.recurrence_id == "20260701T070000Z"
    assert occ.item_id == "AAMkOcc"


@pytest.mark.parametrize(("show_as", "transparent", "status"), [
    ("free", True, "confirmed"), ("workingElsewhere", True, "confirmed"), ("busy", False, "confirmed"),
    ("tentative", False, "tentative"), ("oof", False, "confirmed")])
def test_show_as_decides_whether_time_is_blocked(show_as, transparent, status):
    inst = me.to_instance(graph_event(showAs=show_as), details=False)
    assert (inst.transparent, inst.status) == (transparent, status)


def test_free_busy_mode_keeps_no_text_and_declined_and_cancelled_are_read():
    inst = me.to_instance(graph_event(isCancelled=True, responseStatus={"response": "declined"}), details=False)
    assert inst.summary is inst.description is inst.location is None
    assert inst.status == "cancelled" and inst.declined


def test_an_html_body_is_read_as_text():
    inst = me.to_instance(graph_event(body={"contentType": "html",
                                            "content": "<html><body><p>Line one</p><p>Line <b>two</b></p></body></html>"}),
                          details=True)
    assert inst.description == "Line one\nLine two"


def test_homecal_marks_are_read_from_either_place():
    key = "abcdefghij0123456789abcdefghij01"
    assert me.partner_key(graph_event(transactionId="homecal-" + key)) == key
    assert me.partner_key(graph_event(singleValueExtendedProperties=[{"id": me.KEY_PROP, "value": key}])) == key
    assert me.partner_key(graph_event(transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")) is None


@pytest.mark.parametrize("bad", [
    {"start": {"dateTime": "not a time", "timeZone": "UTC"}},
    {"start": {"dateTime": "2026-07-01T09:00:00", "timeZone": "Mars Standard Time"}},
    {"end": {"dateTime": "2026-07-01T06:00:00", "timeZone": "UTC"}},
    {"id": None}])
def test_unreadable_events_raise_the_skippable_error(bad):
    with pytest.raises(me.EventUnreadable):
        me.to_instance(graph_event(**bad), details=True)


def test_a_clone_is_written_in_its_own_zone_marked_and_without_attendees():
    start = datetime(2026, 7, 1, 9, tzinfo=BERLIN)
    body = me.body_for(Draft(kind="clone", summary="Planning", start=start, end=start + timedelta(hours=1),
                             description="Agenda"), "k" * 32, UTC)
    assert body["start"] == {"dateTime": "2026-07-01T09:00:00", "timeZone": "W. Europe Standard Time"}
    assert body["attendees"] == [] and body["sensitivity"] == "private" and body["showAs"] == "busy"
    assert {"id": me.KEY_PROP, "value": "k" * 32} in body["singleValueExtendedProperties"]
    assert "transactionId" not in body and "isOnlineMeeting" not in body


def test_an_all_day_event_is_written_midnight_to_midnight_in_one_zone():
    body = me.body_for(Draft(kind="busy", summary="Busy", start=date(2026, 7, 3), end=date(2026, 7, 3),
                             all_day=True), "k" * 32, ZoneInfo("America/New_York"))
    assert body["isAllDay"] is True
    assert body["start"] == {"dateTime": "2026-07-03T00:00:00", "timeZone": "Eastern Standard Time"}
    assert body["end"] == {"dateTime": "2026-07-04T00:00:00", "timeZone": "Eastern Standard Time"}


def test_a_time_in_a_zone_graph_does_not_know_is_written_as_the_same_instant_in_utc():
    from datetime import timezone
    odd = timezone(timedelta(hours=5, minutes=45))
    body = me.body_for(Draft(kind="clone", summary="x", start=datetime(2026, 7, 1, 9, tzinfo=odd),
                             end=datetime(2026, 7, 1, 10, tzinfo=odd)), "k" * 32, UTC)
    assert body["start"] == {"dateTime": "2026-07-01T03:15:00", "timeZone": "UTC"}


def test_a_booking_invites_its_visitor_and_asks_for_teams():
    start = datetime(2026, 7, 1, 9, tzinfo=UTC)
    body = me.body_for(Draft(kind="booking", summary="Intro: Bo", start=start, end=start + timedelta(minutes=30),
                             organizer=("Ann", "ann@contoso.com"), attendees=(("Bo", "bo@example.org"),),
                             conference="teams"), "k" * 32, UTC)
    assert body["attendees"] == [{"emailAddress": {"address": "bo@example.org", "name": "Bo"}, "type": "required"}]
    assert body["isOnlineMeeting"] is True and body["onlineMeetingProvider"] == "teamsForBusiness"
    assert me.join_url({"onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/x"}}) \
        == "https://teams.microsoft.com/l/meetup-join/x"
