"""CalDAVProvider against a real Radicale: the provider contract, in both sync modes, plus
discovery, request costs, auth, recurrence and error translation.

Request counts go through `CountingProxy`, a reverse proxy in front of Radicale that also
injects failures (429, 503, 403, slow answers) the real server would not produce on cue.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from daemon.errors import (
    AccessDenied,
    AuthError,
    InvalidCursor,
    NotFound,
    ProviderError,
    RateLimited,
)
from daemon.models import AccessMode, EventRef
from daemon.providers.caldav import CalDAVProvider
from tests.conftest import free_port
from tests.contract import TZ, WINDOW, ProviderContract, draft, event_ics, new_key
from tests.servers import (  # noqa: F401
    CountingProxy,
    RadicaleServer,
    counting_proxy_fixture,
    radicale_fixture,
)

pytestmark = pytest.mark.slow

ProviderFactory = Callable[..., CalDAVProvider]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def user(radicale: RadicaleServer) -> str:
    return radicale.new_user()


@pytest.fixture
def calendar_id(radicale: RadicaleServer, user: str) -> str:
    return radicale.make_calendar(user, "work", name="Work")


@pytest.fixture
def provider_options() -> dict:
    return {}


@pytest.fixture
def make_provider(radicale: RadicaleServer, user: str, provider_options: dict) -> Iterator[ProviderFactory]:
    made: list[CalDAVProvider] = []

    def make(mode: AccessMode = AccessMode.READ_WRITE, **kwargs) -> CalDAVProvider:
        options = {"url": radicale.url, "username": user, "password": "x", "mode": mode, "tz": TZ,
                   **provider_options, **kwargs}
        p = CalDAVProvider(**options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def put_source(radicale: RadicaleServer, user: str) -> Callable[[str, str], str]:
    def put(calendar_id: str, ics: str) -> str:
        uid = re.search(r"^UID:(.+?)\r?$", ics, re.MULTILINE).group(1)
        url = f"{calendar_id}{uid}.ics"
        radicale.put(user, url, ics)
        return url

    return put


@pytest.fixture
def delete_source(radicale: RadicaleServer, user: str) -> Callable[[str, str], None]:
    return lambda calendar_id, item_id: radicale.delete(user, item_id)


@pytest.fixture
def put_malformed(radicale: RadicaleServer, user: str) -> Callable[[str, str], str]:
    def put(calendar_id: str, secret: str) -> str:
        # Radicale stores an event that ends before it starts (and hides objects it cannot
        # parse at all), so this is the kind of broken object a real server hands out.
        text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:broken-1\r\n"
                "DTSTAMP:20260101T000000Z\r\nDTSTART:20260310T100000Z\r\nDTEND:20260310T090000Z\r\n"
                f"SUMMARY:{secret}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        url = f"{calendar_id}broken-1.ics"
        radicale.put(user, url, text)
        return url

    return put


@pytest.fixture
def invalid_cursor() -> str:
    return "sync:http://radicale.org/ns/sync/" + "0" * 64


@pytest.fixture
def proxied(radicale: RadicaleServer, user: str, calendar_id: str,
            counting_proxy: Callable[[str], CountingProxy]) -> Iterator[tuple[CountingProxy, ProviderFactory, str]]:
    """(proxy, provider factory through the proxy, the calendar's URL through the proxy)."""
    proxy = counting_proxy(radicale.url)
    made: list[CalDAVProvider] = []

    def make(**kwargs) -> CalDAVProvider:
        options = {"url": proxy.base_url + "/", "username": user, "password": "x",
                   "mode": AccessMode.READ_WRITE, "tz": TZ, **kwargs}
        p = CalDAVProvider(**options)
        made.append(p)
        return p

    yield proxy, make, proxy.url_for(calendar_id)
    for p in made:
        p.close()


# ------------------------------------------------------------------------------ contract


class TestCalDAVContract(ProviderContract):
    """The contract over RFC 6578 sync-collection (Radicale supports it)."""


class TestCalDAVContractCtagMode(ProviderContract):
    """The same contract with sync-collection switched off: getctag + etag listings."""

    @pytest.fixture
    def provider_options(self) -> dict:
        return {"use_sync_collection": False}

    @pytest.fixture
    def invalid_cursor(self) -> str:
        return "not a cursor"


# ------------------------------------------------------------------------------ discovery


def test_discovery_from_the_server_root_lists_event_calendars(radicale, user, make_provider):
    work = radicale.make_calendar(user, "work", name="Work", color="#FF2968FF")
    home = radicale.make_calendar(user, "home", name="Home")
    radicale.make_calendar(user, "tasks", name="Tasks", components=("VTODO",))
    infos = {c.remote_id: c for c in make_provider().list_calendars()}
    assert set(infos) == {work, home}  # the task list is not offered
    assert (infos[work].name, infos[work].color, infos[work].writable) == ("Work", "#FF2968", True)
    assert infos[home].color is None


def test_discovery_from_a_calendar_url_lists_that_calendar(radicale, user, make_provider):
    work = radicale.make_calendar(user, "work", name="Work")
    radicale.make_calendar(user, "home", name="Home")
    infos = make_provider(url=work.rstrip("/")).list_calendars()  # even without its slash
    assert [(c.remote_id, c.name) for c in infos] == [(work, "Work")]


# ------------------------------------------------------------------------------ sync modes and costs


def test_sync_collection_mode_is_used_and_remembered(make_provider, calendar_id, put_source):
    p = make_provider()
    first = p.changes(calendar_id, None, WINDOW)
    assert first.cursor.startswith("sync:") and first.full
    put_source(calendar_id, event_ics("s1", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)))
    nxt = p.changes(calendar_id, first.cursor, WINDOW)
    assert not nxt.full and [i.id for i in nxt.items] == [f"{calendar_id}s1.ics"]
    assert nxt.cursor.startswith("sync:") and nxt.cursor != first.cursor


def test_ctag_mode_lists_only_when_the_ctag_moves(make_provider, calendar_id, put_source):
    p = make_provider(use_sync_collection=False)
    a = put_source(calendar_id, event_ics("c1", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)))
    first = p.changes(calendar_id, None, WINDOW)
    assert first.cursor.startswith("ctag:") and first.full
    same = p.changes(calendar_id, first.cursor, WINDOW, {a: first.items[0].etag})
    assert (same.full, same.items, same.removed, same.cursor) == (False, [], [], first.cursor)
    b = put_source(calendar_id, event_ics("c2", datetime(2026, 3, 4, 9, tzinfo=UTC), datetime(2026, 3, 4, 10, tzinfo=UTC)))
    moved = p.changes(calendar_id, first.cursor, WINDOW, {a: first.items[0].etag})
    assert moved.full and [i.id for i in moved.items] == [b] and moved.unchanged == [a]
    assert moved.cursor != first.cursor


def test_a_sync_cursor_is_refused_once_the_mode_is_forced_off(make_provider, calendar_id):
    cursor = make_provider().changes(calendar_id, None, WINDOW).cursor
    with pytest.raises(InvalidCursor):
        make_provider(use_sync_collection=False).changes(calendar_id, cursor, WINDOW)


def test_the_librarys_fake_token_is_never_taken_as_a_sync_token(make_provider, calendar_id):
    with pytest.raises(InvalidCursor):
        make_provider().changes(calendar_id, "sync:fake-0123456789abcdef", WINDOW)


def test_falls_back_to_ctag_mode_when_the_server_refuses_sync_collection(proxied, put_source, calendar_id):
    proxy, make, cal = proxied
    put_source(calendar_id, event_ics("f1", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)))
    proxy.fail(501, b"sync-collection not implemented", methods=("REPORT",))
    cs = make().changes(cal, None, WINDOW)
    assert cs.full and cs.cursor.startswith("ctag:") and [i.id for i in cs.items] == [f"{cal}f1.ics"]


def test_a_no_change_incremental_call_costs_one_request(proxied, put_source, calendar_id):
    proxy, make, cal = proxied
    for n in range(3):
        put_source(calendar_id, event_ics(f"n{n}", datetime(2026, 3, 3 + n, 9, tzinfo=UTC),
                                          datetime(2026, 3, 3 + n, 10, tzinfo=UTC)))
    p = make()
    full = p.changes(cal, None, WINDOW)
    assert len(full.items) == 3
    assert proxy.methods() == ["REPORT", "REPORT"]  # sync-collection + one multiget for all three

    proxy.reset_count()
    same = p.changes(cal, full.cursor, WINDOW)
    assert (same.items, same.removed) == ([], [])
    assert proxy.methods() == ["REPORT"]

    # A fresh provider (a new session, as after a daemon restart) costs no auth round trip.
    proxy.reset_count()
    make().changes(cal, full.cursor, WINDOW)
    assert proxy.methods() == ["REPORT"]

    # Reconciliation with every etag known downloads nothing.
    proxy.reset_count()
    known = {i.id: i.etag for i in full.items}
    again = p.changes(cal, None, WINDOW, known)
    assert again.items == [] and sorted(again.unchanged) == sorted(known)
    assert proxy.methods() == ["REPORT"]


def test_downloads_are_batched_in_multigets(proxied, put_source, calendar_id, monkeypatch):
    proxy, make, cal = proxied
    monkeypatch.setattr("daemon.providers.caldav.MULTIGET_BATCH", 2)
    for n in range(5):
        put_source(calendar_id, event_ics(f"b{n}", datetime(2026, 3, 3 + n, 9, tzinfo=UTC),
                                          datetime(2026, 3, 3 + n, 10, tzinfo=UTC)))
    cs = make().changes(cal, None, WINDOW)
    assert sorted(i.id for i in cs.items) == [f"{cal}b{n}.ics" for n in range(5)]
    assert proxy.methods() == ["REPORT"] * 4  # one sync-collection, three multigets (2 + 2 + 1)


def test_write_costs(proxied):
    proxy, make, cal = proxied
    p = make()
    key = new_key()
    p.create(cal, draft(), key)
    assert proxy.methods() == ["PUT"]  # Radicale returns the ETag with the PUT
    proxy.reset_count()
    ref = p.create(cal, draft("retried"), key)
    assert proxy.methods() == ["PUT", "PROPFIND", "PUT"]  # 412, read the etag, overwrite If-Match
    proxy.reset_count()
    newer = p.update(ref, draft("updated"), key)
    p.delete(newer)
    assert proxy.methods() == ["PUT", "DELETE"]
    # the update is conditional on the etag we hold; the delete of our own event is not
    assert [r.headers.get("If-Match") for r in proxy.requests] == [ref.etag, None]


def test_a_no_change_call_in_ctag_mode_costs_one_request(proxied, put_source, calendar_id):
    proxy, make, cal = proxied
    put_source(calendar_id, event_ics("m1", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)))
    p = make(use_sync_collection=False)
    full = p.changes(cal, None, WINDOW)
    proxy.reset_count()
    p.changes(cal, full.cursor, WINDOW)
    assert proxy.methods() == ["PROPFIND"]



QUIET_CYCLE = """
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo
from daemon.models import AccessMode, Window
from daemon.providers.caldav import CalDAVProvider
url, user, cal, cursor = sys.argv[1:5]
p = CalDAVProvider(url=url, username=user, password="x", mode=AccessMode.READ_WRITE, tz=ZoneInfo("UTC"),
                   use_sync_collection=cursor.startswith("sync:"))
now = datetime.now(UTC)
cs = p.changes(cal, cursor, Window(now - timedelta(days=1), now + timedelta(days=90)))
p.close()
print(cs.cursor == cursor, len(cs.items), len(cs.removed),
      sorted(m for m in ("caldav", "niquests", "lxml", "icalendar") if m in sys.modules))
"""


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-token", "ctag"])
def test_a_quiet_cycle_loads_neither_the_caldav_library_nor_icalendar(
        radicale, user, make_provider, calendar_id, put_source, sync_collection):
    # Importing them is most of what a no-change `homecal sync` costs as a process (see
    # docs/benchmarks.md); the quiet answer is read with the standard library instead.
    import subprocess
    import sys

    put_source(calendar_id, event_ics("q1", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)))
    cursor = make_provider(use_sync_collection=sync_collection).changes(calendar_id, None, WINDOW).cursor
    out = subprocess.run([sys.executable, "-c", QUIET_CYCLE, radicale.url, user, calendar_id, cursor],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(maxsplit=3) == ["True", "0", "0", "[]\n"]


def test_a_change_after_a_quiet_probe_is_listed_through_the_full_path(proxied, put_source, calendar_id):
    proxy, make, cal = proxied
    p = make()
    cursor = p.changes(cal, None, WINDOW).cursor
    put_source(calendar_id, event_ics("late", datetime(2026, 3, 4, 9, tzinfo=UTC), datetime(2026, 3, 4, 10, tzinfo=UTC)))
    proxy.reset_count()
    cs = make().changes(cal, cursor, WINDOW)
    assert [i.id for i in cs.items] == [f"{cal}late.ics"] and cs.cursor != cursor
    # the probe (which saw a change), the library's sync REPORT, one multiget
    assert proxy.methods() == ["REPORT", "REPORT", "REPORT"]


def test_a_digest_challenge_to_the_probe_falls_back_to_negotiation(proxied):
    proxy, make, cal = proxied
    cursor = make().changes(cal, None, WINDOW).cursor
    proxy.fail(401, headers={"WWW-Authenticate": 'Digest realm="x", nonce="n", qop="auth"'})
    cs = make().changes(cal, cursor, WINDOW)
    assert cs.items == [] and cs.cursor == cursor


def test_an_unreachable_or_slow_server_fails_the_probe_clearly(proxied):
    proxy, make, cal = proxied
    cursor = make().changes(cal, None, WINDOW).cursor
    proxy.delay = 1.5
    with pytest.raises(ProviderError, match="did not answer within 0.5 s"):
        make(timeout=0.5).changes(cal, cursor, WINDOW)
    proxy.delay = 0
    gone = CalDAVProvider(url=f"http://127.0.0.1:{free_port()}/", username="u", password="p",
                          mode=AccessMode.READ_WRITE, tz=TZ, timeout=2)
    with pytest.raises(ProviderError, match=r"cannot reach CalDAV server 127\.0\.0\.1"):
        gone.changes(f"http://127.0.0.1:{free_port()}/u/cal/", cursor, WINDOW)


def test_the_probe_stands_aside_for_a_proxy_from_the_environment(monkeypatch):
    from daemon.providers.dav_probe import Probe

    probe = Probe("u", "p", 5)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert probe.usable_for("https://dav.example.org/cal/")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert not probe.usable_for("https://dav.example.org/cal/") and probe.usable_for("http://127.0.0.1/cal/")


# ------------------------------------------------------------------------------ events


BERLIN = """BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
END:VTIMEZONE\r
"""

RECURRING = f"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//homecal tests//EN\r
{BERLIN}BEGIN:VEVENT\r
UID:weekly-1\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260309T090000\r
DTEND;TZID=Europe/Berlin:20260309T100000\r
RRULE:FREQ=WEEKLY;COUNT=6\r
EXDATE;TZID=Europe/Berlin:20260323T090000\r
SUMMARY:Weekly\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:weekly-1\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20260316T090000\r
DTSTART;TZID=Europe/Berlin:20260316T140000\r
DTEND;TZID=Europe/Berlin:20260316T150000\r
SUMMARY:Weekly (moved)\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_recurring_event_with_override_and_exdate_across_dst(make_provider, calendar_id, put_source):
    href = put_source(calendar_id, RECURRING)
    (item,) = make_provider().changes(calendar_id, None, WINDOW).items
    assert item.id == href
    got = [(i.utc_bounds(TZ)[0], i.summary, i.recurrence_id) for i in item.instances]
    assert got == [
        (datetime(2026, 3, 9, 8, tzinfo=UTC), "Weekly", "20260309T080000Z"),
        (datetime(2026, 3, 16, 13, tzinfo=UTC), "Weekly (moved)", "20260316T080000Z"),
        # 23 March is excluded; from 29 March Berlin is UTC+2
        (datetime(2026, 3, 30, 7, tzinfo=UTC), "Weekly", "20260330T070000Z"),
        (datetime(2026, 4, 6, 7, tzinfo=UTC), "Weekly", "20260406T070000Z"),
        (datetime(2026, 4, 13, 7, tzinfo=UTC), "Weekly", "20260413T070000Z"),
    ]
    assert len({i.key for i in item.instances}) == 5


def test_create_adopts_an_object_holding_its_uid_at_another_href(radicale, user, make_provider, calendar_id):
    key = new_key()
    other = f"{calendar_id}moved-by-a-client.ics"
    radicale.put(user, other, event_ics(f"homecal-{key}", datetime(2026, 3, 2, 9, tzinfo=UTC),
                                        datetime(2026, 3, 2, 10, tzinfo=UTC), "old copy"))
    p = make_provider()
    ref = p.create(calendar_id, draft("fresh"), key)
    assert ref.id == other  # overwritten in place (Radicale answers 409 no-uid-conflict)
    (item,) = p.changes(calendar_id, None, WINDOW).items
    assert item.id == other and item.instances[0].summary == "fresh" and item.etag == ref.etag


def test_created_object_is_our_text_with_sequence_zero(radicale, user, make_provider, calendar_id):
    key = new_key()
    p = make_provider()
    ref = p.create(calendar_id, draft("One"), key)
    ref = p.update(ref, draft("Two"), key)
    with radicale.session(user) as s:
        text = s.get(ref.id).text
    assert "SEQUENCE:0" in text and f"X-HOMECAL-KEY:{key}" in text and f"UID:homecal-{key}" in text
    assert ref.id == f"{calendar_id}homecal-{key}.ics"


# ------------------------------------------------------------------------------ errors


@pytest.fixture(scope="module")
def radicale_with_logins(tmp_path_factory) -> Iterator[RadicaleServer]:
    with RadicaleServer(tmp_path_factory.mktemp("radicale-auth"), users={"alice": "right-password"}) as server:
        yield server


def test_a_refused_login_is_an_auth_error_without_the_password(radicale_with_logins):
    server = radicale_with_logins
    cal = server.make_calendar("alice", "work")
    p = CalDAVProvider(url=server.url, username="alice", password="wrong-password", mode=AccessMode.READ_WRITE, tz=TZ)
    try:
        for call in (p.list_calendars, lambda: p.changes(cal, None, WINDOW),
                     lambda: p.create(cal, draft(), new_key())):
            with pytest.raises(AuthError) as exc:
                call()
            assert "alice@127.0.0.1" in str(exc.value) and "password" in str(exc.value)
            assert "wrong-password" not in str(exc.value)
    finally:
        p.close()
    good = CalDAVProvider(url=server.url, username="alice", password="right-password",
                          mode=AccessMode.READ_WRITE, tz=TZ)
    try:
        assert [c.remote_id for c in good.list_calendars()] == [cal]
    finally:
        good.close()


def test_a_digest_only_challenge_falls_back_to_negotiation(proxied):
    proxy, make, cal = proxied
    # Pre-emptive Basic is refused by a server that only speaks Digest; the provider then lets
    # the library negotiate (here Radicale, behind the proxy, answers that with Basic).
    proxy.fail(401, headers={"WWW-Authenticate": 'Digest realm="x", nonce="n", qop="auth"'})
    cs = make().changes(cal, None, WINDOW)
    assert cs.full and proxy.methods()[:1] == ["REPORT"]


@pytest.mark.parametrize("status, headers, expected, retry_after", [
    (429, {"Retry-After": "7"}, RateLimited, 7.0),
    (503, {}, RateLimited, None),
    (503, {"Retry-After": "3"}, RateLimited, 3.0),
    (500, {}, ProviderError, None),
    (502, {}, ProviderError, None),
])
def test_http_failures_are_translated(proxied, status, headers, expected, retry_after):
    proxy, make, cal = proxied
    p = make()
    cursor = p.changes(cal, None, WINDOW).cursor
    calls = [lambda: p.changes(cal, cursor, WINDOW), p.list_calendars, lambda: p.create(cal, draft(), new_key()),
             lambda: p.changes(cal, None, WINDOW, None)]
    for call in calls if status != 500 else calls[:-1]:
        proxy.fail(status, b"<html>oops</html>", headers=headers)
        with pytest.raises(expected) as exc:
            call()
        assert not isinstance(exc.value, InvalidCursor)
        assert "127.0.0.1" in str(exc.value)
        if expected is RateLimited:
            assert exc.value.retry_after == retry_after


def test_a_500_to_the_first_sync_report_falls_back_to_a_ctag_listing(proxied, put_source, calendar_id):
    # Some servers answer an unknown REPORT with 500. A full listing must still work; the
    # next full listing (reconciliation) probes sync-collection again.
    proxy, make, cal = proxied
    put_source(calendar_id, event_ics("e1", datetime(2026, 3, 3, 9, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)))
    proxy.fail(500, methods=("REPORT",))
    p = make()
    cs = p.changes(cal, None, WINDOW)
    assert cs.full and cs.cursor.startswith("ctag:") and len(cs.items) == 1
    assert p.changes(cal, None, WINDOW).cursor.startswith("sync:")


def test_a_forbidden_write_is_access_denied(proxied):
    proxy, make, cal = proxied
    p = make()
    ref = p.create(cal, draft(), key := new_key())
    for call in (lambda: p.create(cal, draft(), new_key()), lambda: p.update(ref, draft("x"), key),
                 lambda: p.delete(ref)):
        proxy.fail(403, methods=("PUT", "DELETE"))
        with pytest.raises(AccessDenied):
            call()


def test_a_forbidden_read_is_a_provider_error(proxied):
    proxy, make, cal = proxied
    proxy.fail(403, times=None)
    with pytest.raises(ProviderError) as exc:
        make().changes(cal, None, WINDOW)
    assert not isinstance(exc.value, AuthError)


def test_a_missing_calendar_is_not_found(make_provider, radicale, user):
    with pytest.raises(NotFound):
        make_provider().changes(f"{radicale.url}{user}/nope/", None, WINDOW)


def test_an_unreachable_server_is_a_provider_error_naming_the_host():
    p = CalDAVProvider(url=f"http://127.0.0.1:{free_port()}/", username="u", password="p",
                       mode=AccessMode.READ_WRITE, tz=TZ, timeout=2)
    try:
        with pytest.raises(ProviderError, match=r"cannot reach CalDAV server 127\.0\.0\.1"):
            p.list_calendars()
    finally:
        p.close()


def test_a_slow_server_times_out_as_a_provider_error(proxied):
    proxy, make, cal = proxied
    proxy.delay = 1.5
    with pytest.raises(ProviderError, match="did not answer within 0.5 s"):
        make(timeout=0.5).changes(cal, None, WINDOW)
    proxy.delay = 0


def test_delete_of_a_never_created_event_succeeds(make_provider, calendar_id):
    make_provider().delete(EventRef(calendar_id, f"{calendar_id}never-there.ics", None))


def test_update_of_a_missing_event_with_etag_is_not_found(make_provider, calendar_id):
    ref = EventRef(calendar_id, f"{calendar_id}homecal-gone.ics", '"stale"')
    with pytest.raises(NotFound):
        make_provider().update(ref, draft(), "gone")


def test_close_is_safe_twice(make_provider):
    p = make_provider()
    p.close()
    p.close()

