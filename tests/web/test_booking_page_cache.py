"""The booking page's rendering is reused only while nothing it shows has changed.

A visitor must never see a slot that a change in the host's calendar, a booking or an
edit of the link has taken away, and never another visitor's flashed message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.booking.link_settings import WEEKDAYS, LinkSettings
from daemon.models import AccessMode, CalendarInfo
from daemon.providers.local import LocalProvider
from daemon.store import accounts, booking_links, users
from daemon.sync.cycle import engine_for
from tests.web.test_booking_public import slot_hrefs, start_of

ALL_DAY = {d: (("00:00", "24:00"),) for d in WEEKDAYS}


def setup(store, config):
    host = users.create(store, "host", "a long enough password")
    acc = accounts.add(store, host.id, "local", "home", AccessMode.READ_WRITE, {})
    [cal] = accounts.save_calendars(store, acc.id, [CalendarInfo("local", "home")])
    engine_for(store, config).refresh_calendars(host.id)
    link = booking_links.create(store, host.id, LinkSettings(
        title="Chat", min_notice=60, weekly_hours=ALL_DAY, conflict_calendar_ids=(cal.id,)), slug="chat")
    provider = LocalProvider(store=store, account_id=acc.id, name="home", mode=AccessMode.READ_WRITE, tz=UTC)
    return host, link, provider


def event(uid: str, start: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:{fmt}}\r\n"
            f"DTEND:{start + timedelta(minutes=30):{fmt}}\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def starts(client, path: str = "/book/chat?tz=UTC&duration=30") -> list[datetime]:
    response = client.get(path)
    assert response.status_code == 200
    return [start_of(h) for h in slot_hrefs(response.get_data(as_text=True))]


def test_a_new_event_in_a_conflict_calendar_takes_its_slot_off_the_page_at_once(client, store, config):
    host, _, provider = setup(store, config)
    first = starts(client)
    assert first == starts(client)  # the second request is served from the cache
    taken = first[5]
    provider.put_ics("local", "new", event("new", taken))
    engine_for(store, config).refresh_calendars(host.id)
    assert taken not in starts(client)


def test_editing_the_link_changes_the_page_at_once(client, store, config):
    host, link, _ = setup(store, config)
    before = starts(client)
    booking_links.update(store, link.id, host.id, LinkSettings(
        title="Chat", min_notice=60, weekly_hours={"mon": (("09:00", "10:00"),)}))
    after = starts(client)
    assert after != before and all(s.weekday() == 0 for s in after)


def test_a_conflict_account_failing_makes_the_cached_page_unavailable(client, store, config):
    host, link, _ = setup(store, config)
    assert starts(client)
    [acc] = accounts.all_accounts(store, host.id)
    accounts.record_failure(store, acc.id, "server down")
    assert client.get("/book/chat?tz=UTC&duration=30").status_code == 503


def test_a_visitors_flashed_message_is_never_served_to_another(app, store, config):
    setup(store, config)
    alice, bob = app.test_client(), app.test_client()
    with alice.session_transaction() as session:
        session["_flashes"] = [("success", "Your booking is moved to a secret time")]
    assert "secret time" in alice.get("/book/chat?tz=UTC&duration=30").get_data(as_text=True)
    assert "secret time" not in bob.get("/book/chat?tz=UTC&duration=30").get_data(as_text=True)
