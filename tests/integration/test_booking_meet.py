"""Google Meet on booking links, end to end against the fake Google API.

What a visitor and a host would notice: a link whose location is Google Meet and whose
target is a read-write Google calendar makes an event that invites the visitor and carries
a Meet conference; the Meet link is on the visitor's booking page, in the confirmation mail
that reaches a real SMTP server and on the host's bookings page, and is never stored in
the clear; moving the booking keeps the same conference; when Google makes no link the
visitor is told the host will send one; a Teams link on a Google target books without a
conference and without failing; and a sync copy of the booking carries no conference.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from daemon.booking import service
from daemon.booking.link_settings import LinkSettings, Location
from daemon.booking.outbox_job import deliver_due
from daemon.config import with_overrides
from daemon.models import AccessMode, Style
from daemon.store import booking_links, users
from daemon.store import rules as rules_repo
from daemon.sync.cycle import engine_for
from daemon.sync.options import RuleOptions
from tests.fakes import google_state
from tests.google_helpers import calendar_of, fast_retries, google_config, link_google  # noqa: F401
from tests.web.conftest import AuthActions
from webui import create_app

ANN = "ann@example.com"
MEET = "https://meet.google.com/"  # where the fake's conferences live, each with its own code
PASSWORD = "correct horse battery"
ALL_DAY = {d: (("00:00", "24:00"),) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


class Env:
    """The host (Google account `ann@example.com`, linked read-write) and what tests need."""

    def __init__(self, store, config, fake, smtp_sink) -> None:
        fake.add_user(ANN)
        self.copies_remote = fake.add_calendar(ANN, summary="Copies")
        self.config = with_overrides(google_config(config, fake), smtp=smtp_sink.config_smtp("bookings@example.org"))
        self.store, self.fake, self.smtp = store, fake, smtp_sink
        self.host = users.create(store, "ann", PASSWORD, is_admin=True)
        users.set_timezone(store, self.host.id, "Europe/Berlin")
        users.set_email(store, self.host.id, ANN)
        self.account = link_google(store, self.config, fake, self.host.id, ANN, mode=AccessMode.READ_WRITE)
        self.primary = calendar_of(store, self.account, ANN)
        self.copies = calendar_of(store, self.account, self.copies_remote)
        self.refresh()

    def refresh(self) -> None:
        assert engine_for(self.store, self.config).refresh_calendars(self.host.id) == 0

    def link(self, kind: str = "google_meet", slug: str = "meet") -> booking_links.BookingLink:
        return booking_links.create(self.store, self.host.id, LinkSettings(
            title="Intro call", conflict_calendar_ids=(self.primary.id,), target_calendar_id=self.primary.id,
            min_notice=0, weekly_hours=ALL_DAY, location=Location(kind)), slug=slug)

    def book(self, link, slot: int = 4) -> tuple[service.BookingResult, list]:
        now = datetime.now(UTC).replace(microsecond=0)  # Google reads go through the real sync window
        slots = service.offered_slots(self.config, self.store, link, duration=30, now=now)
        visitor = service.validate_visitor(link, name="Bob", email="bob@example.org", timezone="America/New_York",
                                           answers={})
        return service.book(self.config, self.store, link, duration=30, start=slots[slot].start, visitor=visitor,
                            now=now), slots

    def event(self, booking: service.Booking) -> dict:
        row = self.store.db.execute("SELECT target_id FROM bookings WHERE id = ?", [booking.id]).fetchone()
        event = self.fake.event(ANN, row[0])
        assert event is not None and event.get("status") != "cancelled"
        return event

    def mails_to(self, recipient: str, count: int) -> list[str]:
        deliver_due(self.config, self.store)
        mails = self.smtp.wait_for(count)
        return [m.message.get_body(("plain",)).get_content() for m in mails if recipient in m.rcpt_tos]

    def client(self):
        return create_app(self.config, self.store, testing=True).test_client()


@pytest.fixture
def env(store, config, google_fake, smtp_sink, fast_retries) -> Env:  # noqa: F811
    return Env(store, config, google_fake, smtp_sink)


def test_a_meet_booking_gets_a_meet_link_on_its_page_in_its_mail_and_for_the_host(env):
    link = env.link()
    result, _ = env.book(link)
    booking = result.booking
    event = env.event(booking)
    MEET = event["hangoutLink"]  # noqa: N806 - this conference's link
    assert booking.delivery == "event" and booking.join_url == MEET and MEET.startswith("https://meet.google.com/")

    # at Google: the visitor invited by Google, a Meet conference asked for and made
    assert [a["email"] for a in event["attendees"]] == ["bob@example.org"]
    assert event["conferenceData"]["conferenceSolution"]["key"]["type"] == "hangoutsMeet"
    [insert] = [r for r in env.fake.requests if r.method == "POST" and r.path.endswith(f"/calendars/{ANN}/events")]
    assert insert.query["sendUpdates"] == "all" and insert.query["conferenceDataVersion"] == "1"
    assert insert.body["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {"type": "hangoutsMeet"}

    # the visitor's page
    page = env.client().get(f"/booking/{result.token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Video call (Google Meet)" in html and f'href="{MEET}"' in html
    assert "will send the video link" not in html
    # and the "Add to calendar" file puts the call where a calendar app shows it
    ics = env.client().get(f"/booking/{result.token}/invite.ics").get_data(as_text=True)
    assert f"LOCATION:{MEET}" in ics.replace("\r\n ", "")

    # the confirmation mail homecal sends (Google sends the invitation itself)
    [text] = env.mails_to("bob@example.org", 1)
    assert f"Video call (Google Meet): {MEET}" in text and f"/booking/{result.token}" in text

    # the host's list of bookings
    client = env.client()
    assert AuthActions(client).login("ann", PASSWORD).status_code in (302, 303)
    host_page = client.get("/links/bookings").get_data(as_text=True)
    assert "Google Meet" in host_page and f'href="{MEET}"' in host_page

    # the link is a secret of the booking: sealed, nowhere in the database file in the clear
    env.store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = b"".join(p.read_bytes() for p in env.store.path.parent.glob(env.store.path.name + "*"))
    assert MEET.rsplit("/", 1)[1].encode() not in raw


def test_moving_a_meet_booking_keeps_its_conference(env):
    link = env.link()
    result, slots = env.book(link)
    # Google gives every conference its own link; make this one's unlike any the fake would
    # make again, so a second conference (a new createRequest) would show
    own = "https://meet.google.com/own-link-kept"
    event_id = env.event(result.booking)["id"]
    with env.fake.state.lock:
        stored = env.fake.state.calendars[ANN].events[event_id]
        stored["hangoutLink"] = own
        stored["conferenceData"]["entryPoints"][0]["uri"] = own
    env.fake.reset_counts()
    before = len(env.fake.requests)

    moved = service.reschedule(env.config, env.store, result.token, start=slots[8].start,
                               now=datetime.now(UTC).replace(microsecond=0))

    assert moved.start == slots[8].start and moved.join_url == own
    event = env.event(moved)
    assert event["hangoutLink"] == own and event["sequence"] == 1
    [patch] = [r for r in env.fake.requests[before:] if r.method == "PATCH"]
    # Google keeps conferenceData a patch does not mention (with conferenceDataVersion=1)
    assert patch.query["conferenceDataVersion"] == "1" and "conferenceData" not in patch.body
    assert patch.query["sendUpdates"] == "all"
    html = env.client().get(f"/booking/{result.token}").get_data(as_text=True)
    assert f'href="{own}"' in html
    texts = env.mails_to("bob@example.org", 2)
    assert f"Video call (Google Meet): {own}" in texts[-1]


def test_when_google_makes_no_meet_link_the_visitor_is_told_the_host_sends_it(env, monkeypatch):
    def pending(event: dict, conference: bool) -> None:
        # Google accepted the request but has not made the conference (yet): no entry points
        data = event.get("conferenceData")
        if data and conference and "createRequest" in data:
            data["createRequest"]["status"] = {"statusCode": "pending"}

    monkeypatch.setattr(google_state.State, "_conference", staticmethod(pending))
    link = env.link()
    result, _ = env.book(link)
    assert result.booking.status == "confirmed" and result.booking.join_url == ""
    html = env.client().get(f"/booking/{result.token}").get_data(as_text=True)
    assert "Video call (Google Meet)" in html and "The host will send the video link." in html
    assert "meet.google.com" not in html
    [text] = env.mails_to("bob@example.org", 1)
    assert "Video call (Google Meet): The host will send the video link." in text


def test_a_teams_link_on_a_google_target_books_without_a_conference(env):
    link = env.link(kind="teams", slug="teams")
    result, _ = env.book(link)
    assert result.booking.delivery == "event" and result.booking.join_url == ""
    event = env.event(result.booking)
    assert "conferenceData" not in event and "hangoutLink" not in event
    [insert] = [r for r in env.fake.requests if r.method == "POST" and r.path.endswith(f"/calendars/{ANN}/events")]
    assert "conferenceDataVersion" not in insert.query
    html = env.client().get(f"/booking/{result.token}").get_data(as_text=True)
    assert "Video call (Microsoft Teams)" in html and "The host will send the video link." in html
    # the visitor can still move and cancel it
    moved = service.reschedule(env.config, env.store, result.token,
                               start=result.booking.start + timedelta(hours=3),
                               now=datetime.now(UTC).replace(microsecond=0))
    assert moved.sequence == 1
    assert service.cancel_by_token(env.config, env.store, result.token).status == "cancelled"


def test_a_sync_copy_of_a_meet_booking_carries_no_conference(env):
    link = env.link()
    result, _ = env.book(link)
    rules_repo.add(env.store, env.host.id, [env.primary.id], env.copies.id, RuleOptions(style=Style.CLONE))
    env.fake.reset_counts()
    before = len(env.fake.requests)
    reports = engine_for(env.store, env.config).run()
    assert all(r.status == "ok" for r in reports), [r.message for r in reports]

    copies = [e for e in env.fake.events(env.copies_remote) if e.get("status") != "cancelled"]
    assert [c["summary"] for c in copies] == ["Intro call: Bob"]
    [copy] = copies
    assert "conferenceData" not in copy and "hangoutLink" not in copy and not copy.get("attendees")
    writes = [r for r in env.fake.requests[before:] if r.method in ("POST", "PATCH", "PUT")
              and re.search(re.escape(env.copies_remote) + r"/events", r.path)]
    assert writes and all("conferenceDataVersion" not in r.query for r in writes)
    assert all("conferenceData" not in (r.body or {}) for r in writes)
    # the booking itself still has its Meet
    assert env.event(result.booking)["hangoutLink"] == result.booking.join_url
    assert result.booking.join_url.startswith(MEET)


def test_cancelling_a_google_booking_lets_google_tell_the_visitor(env):
    link = env.link()
    result, _ = env.book(link)
    env.fake.reset_counts()
    assert service.cancel_by_token(env.config, env.store, result.token).status == "cancelled"
    [delete] = [r for r in env.fake.requests if r.method == "DELETE"]
    assert delete.query.get("sendUpdates") == "all"  # a meeting's cancellation reaches its attendee
    target = env.store.db.execute("SELECT target_id FROM bookings WHERE id = ?", [result.booking.id]).fetchone()[0]
    assert env.fake.event(ANN, target)["status"] == "cancelled"
