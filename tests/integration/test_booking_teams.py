"""Microsoft Teams on booking links, end to end against the fake Graph API.

What a visitor and a host would notice: a link whose location is Teams and whose target is a
read-write work calendar makes an Outlook meeting that Exchange sends to the visitor and that
carries a Teams join link; the link is on the visitor's booking page; cancelling deletes the
meeting, which tells the visitor; a personal Microsoft account (no Teams for business) books
without a conference, and the visitor is told the host will send the link.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.booking import service
from daemon.booking.link_settings import LinkSettings, Location
from daemon.config import with_overrides
from daemon.models import AccessMode
from daemon.store import booking_links, users
from daemon.sync.cycle import engine_for
from tests.google_helpers import calendar_of
from tests.graph_helpers import fast_graph_retries, graph_config, link_microsoft  # noqa: F401
from webui import create_app

PASSWORD = "correct horse battery"
ALL_DAY = {d: (("00:00", "24:00"),) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


class Env:
    """A host whose Microsoft account is linked read-write, with a Teams booking link."""

    def __init__(self, store, config, fake, login, smtp_sink, email: str, personal: bool) -> None:
        fake.directory.add_user(email, personal=personal)
        fake.mailbox(email)
        self.config = with_overrides(graph_config(config, fake, login),
                                     smtp=smtp_sink.config_smtp("bookings@example.org"))
        self.store, self.fake, self.email = store, fake, email
        self.host = users.create(store, "ann", PASSWORD, is_admin=True)
        users.set_timezone(store, self.host.id, "Europe/Berlin")
        users.set_email(store, self.host.id, email)
        account = link_microsoft(store, self.config, fake, login, self.host.id, email, mode=AccessMode.READ_WRITE)
        self.calendar = calendar_of(store, account, fake.default_calendar(email))
        assert engine_for(store, self.config).refresh_calendars(self.host.id) == 0
        self.link = booking_links.create(store, self.host.id, LinkSettings(
            title="Intro call", conflict_calendar_ids=(self.calendar.id,), target_calendar_id=self.calendar.id,
            min_notice=0, weekly_hours=ALL_DAY, location=Location("teams")), slug="teams")

    def book(self) -> service.BookingResult:
        now = datetime.now(UTC).replace(microsecond=0)
        slots = service.offered_slots(self.config, self.store, self.link, duration=30, now=now)
        visitor = service.validate_visitor(self.link, name="Bob", email="bob@example.org",
                                           timezone="America/New_York", answers={})
        return service.book(self.config, self.store, self.link, duration=30, start=slots[4].start, visitor=visitor,
                            now=now)

    def event(self, booking: service.Booking) -> dict | None:
        row = self.store.db.execute("SELECT target_id FROM bookings WHERE id = ?", [booking.id]).fetchone()
        return self.fake.event(self.email, row[0]) if row and row[0] else None

    def page(self, token: str) -> str:
        response = create_app(self.config, self.store, testing=True).test_client().get(f"/booking/{token}")
        assert response.status_code == 200
        return response.get_data(as_text=True)


@pytest.fixture
def work(store, config, graph_fake, ms_login, smtp_sink, fast_graph_retries) -> Env:  # noqa: F811
    return Env(store, config, graph_fake, ms_login, smtp_sink, "ann@contoso.com", personal=False)


@pytest.fixture
def personal(store, config, graph_fake, ms_login, smtp_sink, fast_graph_retries) -> Env:  # noqa: F811
    return Env(store, config, graph_fake, ms_login, smtp_sink, "ann@outlook.com", personal=True)


def test_a_teams_booking_is_a_meeting_with_a_join_link_that_exchange_sends(work):
    result = work.book()
    booking = result.booking
    event = work.event(booking)
    assert booking.delivery == "event" and event is not None
    join = event["onlineMeeting"]["joinUrl"]
    assert booking.join_url == join and join.startswith("https://")
    assert event["isOnlineMeeting"] and event["onlineMeetingProvider"] == "teamsForBusiness"
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == ["bob@example.org"]
    (invite,) = work.fake.invitations
    assert "bob@example.org" in str(invite)
    html = work.page(result.token)
    assert "Microsoft Teams" in html and f'href="{join}"' in html

    service.cancel_by_host(work.config, work.store, booking.id, work.host.id)
    assert work.event(booking) is None
    assert work.fake.cancellations  # deleting the meeting tells the visitor


def test_a_personal_account_books_without_teams_and_says_the_host_sends_the_link(personal):
    result = personal.book()
    event = personal.event(result.booking)
    assert event is not None and not event.get("onlineMeeting")
    assert result.booking.join_url == ""
    assert "will send" in personal.page(result.token)
