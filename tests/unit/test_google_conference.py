"""Google Meet for bookings, without a network: the body that asks Google for a conference,
the link read back from an event, and that copies never ask for one (nor change their hash)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from daemon.models import Draft
from daemon.providers import google_events as ge

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 23, 9, tzinfo=BERLIN)
END = datetime(2026, 11, 23, 9, 30, tzinfo=BERLIN)


def booking(conference: str | None = "google_meet") -> Draft:
    return Draft(kind="booking", summary="Intro call: Bob", start=START, end=END,
                 organizer=("ann", "ann@example.com"), attendees=(("Bob", "bob@example.org"),),
                 conference=conference)  # type: ignore[arg-type]


def test_a_meet_booking_asks_google_for_a_meet_conference_with_a_request_id_from_its_key():
    body = ge.body_for(booking(), "booking-abc@homecal", BERLIN)
    request = body["conferenceData"]["createRequest"]
    assert request["conferenceSolutionKey"] == {"type": "hangoutsMeet"}
    assert 8 <= len(request["requestId"]) <= 64  # Google's limits for a request id
    # the same key asks the same request again (a retried create makes no second conference)...
    again = ge.body_for(booking(), "booking-abc@homecal", BERLIN)["conferenceData"]["createRequest"]
    assert again["requestId"] == request["requestId"]
    # ...and another booking asks its own
    other = ge.body_for(booking(), "booking-xyz@homecal", BERLIN)["conferenceData"]["createRequest"]
    assert other["requestId"] != request["requestId"]
    assert body["attendees"] == [{"email": "bob@example.org", "displayName": "Bob"}]


@pytest.mark.parametrize("draft", [
    booking(conference=None),
    booking(conference="teams"),  # Teams is a Microsoft conference: nothing to ask Google for
    Draft(kind="clone", summary="Dentist", start=START, end=END),
    Draft(kind="busy", summary="Busy", start=START, end=END),
    # a copy never gets a conference, even if someone put one on its draft
    Draft(kind="clone", summary="Dentist", start=START, end=END, conference="google_meet"),
], ids=["plain booking", "teams booking", "clone", "busy", "clone asking"])
def test_nothing_else_asks_for_a_conference(draft):
    assert "conferenceData" not in ge.body_for(draft, "k0000", BERLIN)


def test_a_draft_without_a_conference_hashes_as_before_the_field_existed():
    # hashes computed with Draft as it was before `conference` existed: copies already
    # written must not all be rewritten once because a field was added
    clone = Draft(kind="clone", summary="Dentist", start=START, end=END, location="Main St 1")
    assert clone.content_hash() == "5fd1ba697825e3226bbfe2c1c1ea2307"
    moved = Draft(kind="booking", summary="Intro call: Bob", start=START, end=END,
                  organizer=("ann", "ann@example.com"), attendees=(("Bob", "bob@example.org"),), sequence=1)
    assert moved.content_hash() == "06e39917a475d935bbfddb4f13ea096e"
    # a conference is content: asking for one changes the hash
    assert booking().content_hash() != booking(conference=None).content_hash()


MEET = "https://meet.google.com/abc-defg-hij"


@pytest.mark.parametrize(("event", "expected"), [
    ({"hangoutLink": MEET}, MEET),
    ({"conferenceData": {"entryPoints": [
        {"entryPointType": "phone", "uri": "tel:+49-30-1234"},
        {"entryPointType": "video", "uri": MEET}]}}, MEET),
    # still being made: Google answers with the request pending and no entry points
    ({"conferenceData": {"createRequest": {"requestId": "r", "status": {"statusCode": "pending"}}}}, None),
    ({}, None),
    ({"conferenceData": {"entryPoints": [{"entryPointType": "video", "uri": "javascript:alert(1)"}]}}, None),
    ({"conferenceData": {"entryPoints": ["not an entry point"]}}, None),
    ({"conferenceData": "garbage"}, None),
], ids=["hangoutLink", "video entry point", "pending", "none", "not https", "odd entry", "odd data"])
def test_join_url_reads_the_link_or_nothing(event, expected):
    assert ge.join_url(event) == expected
