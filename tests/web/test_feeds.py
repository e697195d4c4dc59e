"""The free/busy feed: the owner's page, the token protection, and what a calendar app reads.

The feed is parsed with icalendar and vobject, and read by homecal's own ICS provider over
real HTTP from the app served on loopback, the way a subscribed calendar app polls it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from werkzeug.serving import make_server

from daemon.config import with_overrides
from daemon.models import AccessMode, Window
from daemon.providers.ics_feed import ICSFeedProvider
from daemon.store import feeds as feed_tokens
from daemon.store import settings
from tests.conftest import free_port
from tests.web.test_calendar_view import BERLIN, PASSWORD, add_calendar, inst, make_user, put
from webui import create_app

ALLOWED_PROPERTIES = {"UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "TRANSP", "CLASS"}


def soon(days: int, hour: int, minute: int = 0) -> datetime:
    """A time inside the sync window (1 day back, 90 ahead), in Berlin."""
    day = datetime.now(BERLIN).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def feed_path(client) -> str | None:
    """The feed URL's path as the owner's page shows it, or None when there is none."""
    page = client.get("/feeds/").get_data(as_text=True)
    m = re.search(r'id="feed-url" type="text" value="([^"]+)"', page)
    return urlsplit(m.group(1)).path if m else None


def create_feed(client, auth) -> str:
    response = client.post("/feeds/regenerate", data={"csrf_token": auth.csrf_token("/feeds/")})
    assert response.status_code == 302
    path = feed_path(client)
    assert path is not None
    return path


def events_of(body: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(body).walk("VEVENT"))


@pytest.fixture
def owner(store, auth):
    user = make_user(store, "ana")
    auth.login("ana", PASSWORD)
    return user


# -- the owner's page ----------------------------------------------------------------------

def test_owner_creates_a_feed_that_lists_busy_times_only(app, client, store, auth, owner) -> None:
    page = client.get("/feeds/").get_data(as_text=True)
    assert "You have no feed address" in page and "Create feed URL" in page
    work = add_calendar(store, owner.id, "Work")
    home = add_calendar(store, owner.id, "Home", mode=AccessMode.FREE_BUSY)
    put(store, work, inst("uid-board-meeting", soon(3, 9), soon(3, 10), "Board meeting", location="HQ",
                          description="Budget"))
    trip_day = soon(5, 0).date()
    put(store, work, inst("trip", trip_day, trip_day + timedelta(days=2), "Trip to Lyon"))
    put(store, home, inst("doctor", soon(4, 15), soon(4, 16), None), details=False)
    path = create_feed(client, auth)
    assert re.fullmatch(r"/feeds/[A-Za-z0-9_-]{40,}\.ics", path)
    assert "Regenerate URL" in client.get("/feeds/").get_data(as_text=True)

    response = app.test_client().get(path)  # a calendar app: no session
    body = response.get_data()
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    for secret in (b"Board meeting", b"HQ", b"Budget", b"Trip to Lyon", b"uid-board-meeting", b"doctor"):
        assert secret not in body
    events = events_of(body)
    assert len(events) == 3
    for ev in events:
        assert set(ev.keys()) <= ALLOWED_PROPERTIES
        assert str(ev["SUMMARY"]) == "Busy" and str(ev["TRANSP"]) == "OPAQUE"
    spans = sorted((ev.decoded("DTSTART"), ev.decoded("DTEND")) for ev in events if
                   isinstance(ev.decoded("DTSTART"), datetime))
    assert spans == [(soon(3, 9).astimezone(timezone.utc), soon(3, 10).astimezone(timezone.utc)),
                     (soon(4, 15).astimezone(timezone.utc), soon(4, 16).astimezone(timezone.utc))]
    assert all(start.tzinfo is not None and start.utcoffset() == timedelta(0) for start, _ in spans)
    [all_day] = [ev for ev in events if not isinstance(ev.decoded("DTSTART"), datetime)]
    assert (all_day.decoded("DTSTART"), all_day.decoded("DTEND")) == (trip_day, trip_day + timedelta(days=2))


def test_the_feed_leaves_out_free_cancelled_declined_copies_and_the_past(app, client, store, auth, owner) -> None:
    cal = add_calendar(store, owner.id)
    put(store, cal,
        inst("free", soon(2, 8), soon(2, 9), transparent=True),
        inst("cancelled", soon(2, 10), soon(2, 11), status="cancelled"),
        inst("declined", soon(2, 12), soon(2, 13), declined=True),
        inst("copy", soon(2, 14), soon(2, 15), partner_key="k"),
        inst("long-ago", soon(-30, 9), soon(-30, 10)),
        # Two overlapping meetings and one right after them: one block, 16:00 to 18:30.
        inst("a", soon(2, 16), soon(2, 17, 30)), inst("b", soon(2, 17), soon(2, 18)),
        inst("c", soon(2, 18), soon(2, 18, 30)))
    events = events_of(app.test_client().get(create_feed(client, auth)).get_data())
    assert [(ev.decoded("DTSTART"), ev.decoded("DTEND")) for ev in events] == [
        (soon(2, 16).astimezone(timezone.utc), soon(2, 18, 30).astimezone(timezone.utc))]


def test_the_feed_url_uses_the_public_url(config, store, make_auth) -> None:
    app = create_app(with_overrides(config, server={"public_url": "https://cal.example.org/"}), store, testing=True)
    client = app.test_client()
    make_user(store, "ana")
    auth = make_auth(client)
    auth.login("ana", PASSWORD)
    client.post("/feeds/regenerate", data={"csrf_token": auth.csrf_token("/feeds/")})
    page = client.get("/feeds/").get_data(as_text=True)
    assert re.search(r'value="https://cal\.example\.org/feeds/[A-Za-z0-9_-]+\.ics"', page)
    # One saved in Settings wins over the config file.
    settings.save_public_url(store, "https://home.example.net")
    page = client.get("/feeds/").get_data(as_text=True)
    assert re.search(r'value="https://home\.example\.net/feeds/[A-Za-z0-9_-]+\.ics"', page)


def test_without_a_public_url_the_feed_url_is_where_the_browser_is(app, store, make_auth) -> None:
    lan = "http://192.168.1.20:8400"
    client = app.test_client()
    auth = make_auth(client)
    make_user(store, "ana")
    auth.login("ana", PASSWORD, base_url=lan)
    client.post("/feeds/regenerate", data={"csrf_token": auth.csrf_token("/feeds/", base_url=lan)}, base_url=lan)
    page = client.get("/feeds/", base_url=lan).get_data(as_text=True)
    assert re.search(r'value="http://192\.168\.1\.20:8400/feeds/[A-Za-z0-9_-]+\.ics"', page)


# -- token protection ----------------------------------------------------------------------

def test_unknown_revoked_and_replaced_tokens_get_a_plain_404(app, client, store, auth, owner) -> None:
    anonymous = app.test_client()
    unknown = anonymous.get("/feeds/" + "A" * 43 + ".ics")
    assert unknown.status_code == 404
    first = create_feed(client, auth)
    assert anonymous.get(first).status_code == 200

    regenerated = client.post("/feeds/regenerate", data={"csrf_token": auth.csrf_token("/feeds/")},
                              follow_redirects=True)
    assert "The old one no longer works" in regenerated.get_data(as_text=True)
    second = feed_path(client)
    assert second is not None and second != first
    assert anonymous.get(first).status_code == 404
    assert anonymous.get(second).status_code == 200

    client.post("/feeds/revoke", data={"csrf_token": auth.csrf_token("/feeds/")})
    revoked = anonymous.get(second)
    assert revoked.status_code == 404
    assert feed_path(client) is None
    # Revoked and never-issued tokens are answered alike: nothing tells them apart.
    assert revoked.get_data() == unknown.get_data()


def test_feed_buttons_refuse_posts_without_a_csrf_token(app, client, store, auth, owner) -> None:
    assert client.post("/feeds/regenerate").status_code == 400
    assert feed_tokens.token(store, owner.id) is None
    path = create_feed(client, auth)
    assert client.post("/feeds/revoke", data={"csrf_token": "forged"}).status_code == 400
    assert app.test_client().get(path).status_code == 200


def test_a_second_user_gets_nothing_of_the_first_users_feed(app, client, store, auth, owner) -> None:
    cal = add_calendar(store, owner.id)
    put(store, cal, inst("m", soon(2, 9), soon(2, 10), "Ana's meeting"))
    ana_path = create_feed(client, auth)
    auth.logout()
    bob = make_user(store, "bob")
    auth.login("bob", PASSWORD)
    page = client.get("/feeds/").get_data(as_text=True)
    assert ana_path not in page and "You have no feed address" in page
    client.post("/feeds/revoke", data={"csrf_token": auth.csrf_token("/feeds/")})
    bob_path = create_feed(client, auth)
    anonymous = app.test_client()
    assert anonymous.get(ana_path).status_code == 200  # Bob's revoke touched only his own feed
    assert events_of(anonymous.get(bob_path).get_data()) == []
    assert len(events_of(anonymous.get(ana_path).get_data())) == 1
    assert feed_tokens.user_for(store, bob_path[len("/feeds/"):-len(".ics")]) == bob.id


# -- polling -------------------------------------------------------------------------------

def test_polling_an_unchanged_feed_costs_a_304(app, client, store, auth, owner) -> None:
    cal = add_calendar(store, owner.id)
    put(store, cal, inst("m", soon(2, 9), soon(2, 10)))
    path = create_feed(client, auth)
    anonymous = app.test_client()
    first = anonymous.get(path)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "no-store"
    again = anonymous.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    put(store, cal, inst("n", soon(3, 9), soon(3, 10)))
    changed = anonymous.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert len(events_of(changed.get_data())) == 2


# -- real consumers ------------------------------------------------------------------------

@pytest.fixture
def served(app) -> Iterator[str]:
    """The app on a real loopback HTTP server, as a calendar app on the LAN would reach it."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


def test_calendar_clients_read_the_feed(app, client, store, auth, owner, served) -> None:
    cal = add_calendar(store, owner.id)
    day = soon(6, 0).date()
    put(store, cal, inst("m", soon(2, 9), soon(2, 10), "Dentist"), inst("d", day, day + timedelta(days=1), "Holiday"))
    url = served + create_feed(client, auth)

    # homecal's own ICS provider, over HTTP, as another homecal would subscribe to it.
    provider = ICSFeedProvider(url=url, mode=AccessMode.READ_WRITE, tz=timezone.utc)
    try:
        [info] = provider.list_calendars()
        assert info.name == "Busy times (homecal)"
        now = datetime.now(timezone.utc)
        window = Window(now - timedelta(days=2), now + timedelta(days=30))
        changes = provider.changes("feed", None, window)
        instances = sorted((i for item in changes.items for i in item.instances), key=lambda i: not i.all_day)
        assert [(i.summary, i.all_day) for i in instances] == [("Busy", True), ("Busy", False)]
        assert instances[0].start == day and instances[0].end == date.fromordinal(day.toordinal() + 1)
        assert instances[1].start == soon(2, 9) and instances[1].end == soon(2, 10)
        quiet = provider.changes("feed", changes.cursor, window)  # a conditional GET: 304
        assert quiet.full is False and quiet.items == []
    finally:
        provider.close()

    # vobject (Radicale's parser) with validation, as a second, independent reader.
    text = app.test_client().get(urlsplit(url).path).get_data(as_text=True)
    parsed = vobject.readOne(text, validate=True)
    assert sorted(str(ev.summary.value) for ev in parsed.vevent_list) == ["Busy", "Busy"]


def test_all_day_dates_survive_a_change_of_zone(app, client, store, auth, owner) -> None:
    cal = add_calendar(store, owner.id)
    day = soon(4, 0).date()
    # Synced while the user was in Tokyo: the row's UTC times are Tokyo midnights.
    put(store, cal, inst("trip", day, day + timedelta(days=1), "Trip"), tz=ZoneInfo("Asia/Tokyo"))
    [ev] = events_of(app.test_client().get(create_feed(client, auth)).get_data())
    assert (ev.decoded("DTSTART"), ev.decoded("DTEND")) == (day, day + timedelta(days=1))
