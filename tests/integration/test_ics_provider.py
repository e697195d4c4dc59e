"""ICSFeedProvider against a real HTTP server (`FeedServer`): the provider contract plus
conditional GETs (304, same body), `known`, size/time limits, HTTP errors and webcal://.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.errors import AuthError, InvalidCursor, NotFound, ProviderError, RateLimited
from daemon.models import AccessMode
from daemon.providers.ics_feed import ICSFeedProvider
from tests.conftest import free_port
from tests.contract import TZ, WINDOW, ProviderContract, event_ics
from tests.servers import FeedServer, feed_server_fixture, self_signed_tls  # noqa: F401

pytestmark = pytest.mark.slow

#: feed URLs carry secrets; none may show up in messages
TOKEN = "s3cret-token-42"


class FeedCalendar:
    """The feed's publisher: keeps events by UID and republishes the whole body."""

    def __init__(self, server: FeedServer, name: str | None = "Team calendar"):
        self.server = server
        self.name = name
        self.events: dict[str, str] = {}
        self.zones: dict[str, str] = {}
        self.publish()

    def put(self, ics: str) -> str:
        uid = re.search(r"^UID:(.+?)\r?$", ics, re.MULTILINE).group(1)
        self.events[uid] = "".join(re.findall(r"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", ics, re.DOTALL))
        for zone in re.findall(r"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", ics, re.DOTALL):
            self.zones[re.search(r"TZID:(.+?)\r", zone).group(1)] = zone
        self.publish()
        return uid

    def delete(self, uid: str) -> None:
        del self.events[uid]
        self.publish()

    def body(self) -> str:
        head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//feed generator//EN\r\n"
        if self.name:
            head += f"X-WR-CALNAME:{self.name}\r\n"
        return head + "".join(self.zones.values()) + "".join(self.events.values()) + "END:VCALENDAR\r\n"

    def publish(self, **kwargs) -> None:
        self.server.set_body(self.body(), **kwargs)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def feed(feed_server: FeedServer) -> FeedCalendar:
    return FeedCalendar(feed_server)


@pytest.fixture
def calendar_id() -> str:
    return "feed"


@pytest.fixture
def make_provider(feed: FeedCalendar) -> Iterator[Callable[..., ICSFeedProvider]]:
    made: list[ICSFeedProvider] = []

    def make(mode: AccessMode = AccessMode.READ_WRITE, **kwargs) -> ICSFeedProvider:
        options = {"url": feed.server.url(query=f"token={TOKEN}"), "mode": mode, "tz": TZ, **kwargs}
        p = ICSFeedProvider(**options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def put_source(feed: FeedCalendar) -> Callable[[str, str], str]:
    return lambda calendar_id, ics: feed.put(ics)


@pytest.fixture
def delete_source(feed: FeedCalendar) -> Callable[[str, str], None]:
    return lambda calendar_id, item_id: feed.delete(item_id)


@pytest.fixture
def put_malformed(feed: FeedCalendar) -> Callable[[str, str], str]:
    def put(calendar_id: str, secret: str) -> str:
        # ends before it starts: one bad event in an otherwise fine feed
        return feed.put(event_ics("broken-1", datetime(2026, 3, 10, 10, tzinfo=UTC),
                                  datetime(2026, 3, 10, 9, tzinfo=UTC), secret))

    return put


@pytest.fixture
def invalid_cursor() -> None:
    return None  # not incremental


def one_event(feed: FeedCalendar, uid: str = "e1", day: int = 3) -> str:
    return feed.put(event_ics(uid, datetime(2026, 3, day, 9, tzinfo=UTC), datetime(2026, 3, day, 10, tzinfo=UTC)))


# ------------------------------------------------------------------------------ contract


class TestICSFeedContract(ProviderContract):
    """The contract for a read-only, non-incremental provider."""


# ------------------------------------------------------------------------------ listing


def test_calendar_is_named_after_the_feed_and_its_id_hides_the_url(make_provider, feed):
    (info,) = make_provider().list_calendars()
    assert (info.remote_id, info.name, info.writable) == ("feed", "Team calendar", False)
    feed.name = None
    feed.publish()
    (info,) = make_provider().list_calendars()
    assert info.name == "127.0.0.1"


def test_an_empty_feed_is_an_empty_calendar(make_provider):
    cs = make_provider().changes("feed", None, WINDOW)
    assert cs.full and cs.items == [] and cs.skipped == []


def test_another_calendar_id_is_not_found(make_provider):
    with pytest.raises(NotFound):
        make_provider().changes("https://elsewhere/", None, WINDOW)


def test_a_cursor_that_is_not_ours_is_invalid(make_provider):
    with pytest.raises(InvalidCursor):
        make_provider().changes("feed", "sync:abc", WINDOW)


# ------------------------------------------------------------------------------ conditional GETs


def test_unchanged_feed_answers_304_to_the_etag(make_provider, feed):
    one_event(feed)
    p = make_provider()
    first = p.changes("feed", None, WINDOW)
    feed.server.reset_count()
    again = p.changes("feed", first.cursor, WINDOW)
    assert (again.full, again.items, again.removed, again.cursor) == (False, [], [], first.cursor)
    (req,) = feed.server.requests
    assert req.headers["If-None-Match"] == feed.server.etag


def test_unchanged_feed_answers_304_to_last_modified(make_provider, feed):
    feed.server.send_etag = False
    one_event(feed)
    feed.publish(last_modified=datetime(2026, 1, 1, 12, tzinfo=UTC))
    p = make_provider()
    first = p.changes("feed", None, WINDOW)
    feed.server.reset_count()
    again = p.changes("feed", first.cursor, WINDOW)
    assert (again.full, again.items) == (False, [])
    (req,) = feed.server.requests
    assert "If-None-Match" not in req.headers
    assert req.headers["If-Modified-Since"] == "Thu, 01 Jan 2026 12:00:00 GMT"
    # a later Last-Modified is a change
    one_event(feed, "e2", day=4)
    feed.publish(last_modified=datetime(2026, 1, 2, 12, tzinfo=UTC))
    changed = p.changes("feed", first.cursor, WINDOW, {i.id: i.etag for i in first.items})
    assert changed.full and [i.id for i in changed.items] == ["e2"] and changed.unchanged == ["e1"]


def test_same_body_without_validators_is_no_change(make_provider, feed):
    feed.server.send_etag = feed.server.send_last_modified = False
    one_event(feed)
    p = make_provider()
    first = p.changes("feed", None, WINDOW)
    again = p.changes("feed", first.cursor, WINDOW)
    assert (again.full, again.items, again.removed) == (False, [], [])
    assert feed.server.requests[-1].headers.get("If-None-Match") is None


def test_changed_body_is_a_full_listing_that_honours_known(make_provider, feed):
    for n, uid in enumerate(("a", "b", "c")):
        one_event(feed, uid, day=3 + n)
    p = make_provider()
    first = p.changes("feed", None, WINDOW)
    known = {i.id: i.etag for i in first.items}
    assert set(known) == {"a", "b", "c"}

    feed.put(event_ics("b", datetime(2026, 3, 20, 9, tzinfo=UTC), datetime(2026, 3, 20, 11, tzinfo=UTC), "moved"))
    feed.delete("c")
    feed.put(event_ics("d", datetime(2026, 3, 21, 9, tzinfo=UTC), datetime(2026, 3, 21, 10, tzinfo=UTC)))
    cs = p.changes("feed", first.cursor, WINDOW, known)
    assert cs.full and cs.cursor != first.cursor
    assert sorted(i.id for i in cs.items) == ["b", "d"]
    assert cs.unchanged == ["a"]  # not re-expanded
    (b,) = [i for i in cs.items if i.id == "b"]
    assert b.etag != known["b"] and b.instances[0].summary == "moved"


def test_free_busy_mode_keeps_no_text_from_the_feed(make_provider, feed):
    feed.put(event_ics("x", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC), "Private"))
    (item,) = make_provider(AccessMode.FREE_BUSY).changes("feed", None, WINDOW).items
    assert item.instances[0].summary is None


# ------------------------------------------------------------------------------ refusing bad answers


@pytest.mark.parametrize("body", [
    "<!doctype html><html><body>Please log in</body></html>",
    "",
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:cut\r\nDTSTART:20260303T090000Z\r\n",  # truncated
], ids=["html", "empty-body", "truncated"])
def test_a_body_that_is_not_a_calendar_is_an_error_not_an_empty_calendar(make_provider, feed, body):
    p = make_provider()
    first = p.changes("feed", None, WINDOW)
    feed.server.set_body(body)
    for call in (lambda: p.changes("feed", first.cursor, WINDOW), lambda: p.changes("feed", None, WINDOW),
                 p.list_calendars):
        with pytest.raises(ProviderError, match="not a complete iCalendar") as exc:
            call()
        assert TOKEN not in str(exc.value)


@pytest.mark.parametrize("status, headers, expected", [
    (500, {}, ProviderError),
    (404, {}, ProviderError),
    (401, {}, AuthError),
    (403, {}, AuthError),
    (429, {"Retry-After": "120"}, RateLimited),
    (503, {}, RateLimited),
])
def test_http_errors_are_translated(make_provider, feed, status, headers, expected):
    one_event(feed)
    p = make_provider()
    cursor = p.changes("feed", None, WINDOW).cursor
    feed.server.fail(status, b"<html>nope</html>", headers=headers, times=None)
    for call in (lambda: p.changes("feed", cursor, WINDOW), lambda: p.changes("feed", None, WINDOW),
                 p.list_calendars):
        with pytest.raises(expected, match=f"HTTP {status}") as exc:
            call()
        assert TOKEN not in str(exc.value) and "127.0.0.1" in str(exc.value)
    if expected is RateLimited:
        assert exc.value.retry_after == (120.0 if headers else None)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_max_bytes_is_refused(make_provider, feed, chunked):
    for n in range(40):
        one_event(feed, f"u{n}")
    feed.server.chunked = chunked
    size = len(feed.server.body)
    assert make_provider(max_bytes=size).changes("feed", None, WINDOW).items  # exactly at the limit: fine
    with pytest.raises(ProviderError, match="larger than"):
        make_provider(max_bytes=size - 1).changes("feed", None, WINDOW)


def test_a_slow_feed_times_out(make_provider, feed):
    feed.server.delay = 1.5
    with pytest.raises(ProviderError, match="did not answer within 0.5 s"):
        make_provider(timeout=0.5).changes("feed", None, WINDOW)


def test_an_unreachable_feed_is_a_provider_error():
    p = ICSFeedProvider(url=f"http://127.0.0.1:{free_port()}/x.ics?token={TOKEN}", mode=AccessMode.READ_WRITE,
                        tz=TZ, timeout=2)
    try:
        with pytest.raises(ProviderError, match="cannot fetch the ICS feed at 127.0.0.1") as exc:
            p.changes("feed", None, WINDOW)
        assert TOKEN not in str(exc.value)
    finally:
        p.close()


@pytest.mark.parametrize("url", ["ftp://example.org/x.ics", "example.org/x.ics"])
def test_urls_that_are_not_http_are_refused(url):
    with pytest.raises(ProviderError):
        ICSFeedProvider(url=url, mode=AccessMode.READ_WRITE, tz=TZ)


# ------------------------------------------------------------------------------ webcal://


def test_webcal_means_https(tmp_path: Path, monkeypatch):
    ctx, cert = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trust the test server's certificate
    server = FeedServer()
    server.tls_context = ctx
    with server:
        feed = FeedCalendar(server)
        one_event(feed)
        url = server.url(scheme="webcal", query=f"token={TOKEN}")
        assert url.startswith("webcal://")
        p = ICSFeedProvider(url=url, mode=AccessMode.READ_WRITE, tz=TZ)
        try:
            assert p.url.startswith("https://127.0.0.1:")
            (item,) = p.changes("feed", None, WINDOW).items
            assert item.id == "e1" and item.instances[0].utc_bounds(TZ)[0] == datetime(2026, 3, 3, 9, tzinfo=UTC)
        finally:
            p.close()


def test_items_outside_the_window_are_still_items(make_provider, feed):
    one_event(feed, "past", day=1)
    feed.put(event_ics("far", datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=400),
                       datetime(2026, 3, 1, 1, tzinfo=UTC) + timedelta(days=400)))
    cs = make_provider().changes("feed", None, WINDOW)
    assert {i.id: len(i.instances) for i in cs.items} == {"past": 1, "far": 0}
