"""The Google provider against the fake Google API: the shared contract, then Google's own ways.

The fake (tests/fakes/google_api.py) is reached through google-api-python-client and
google-auth exactly as Google is, with only the endpoints changed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.errors import AccessDenied, AuthError, NotFound, ProviderError, RateLimited
from daemon.models import AccessMode, Draft, EventRef
from daemon.providers import google_http
from daemon.providers.google import CURSOR_PREFIX, GoogleProvider, google_provider
from tests.contract import TZ, WINDOW, Mirror, ProviderContract, draft, new_key
from tests.google_helpers import fast_retries, google_config, now_text  # noqa: F401 - fixture
from tests.google_helpers import instances as api_instances
from tests.sync_helpers import closing_factory

EMAIL = "ann@example.com"


def ics_to_body(text: str) -> dict:
    """A contract test's one-event VCALENDAR as a Google event resource."""
    ev = next(c for c in icalendar.Calendar.from_ical(text).walk("VEVENT"))

    def when(prop: str) -> dict:
        v = ev.decoded(prop)
        if isinstance(v, datetime):
            return {"dateTime": v.astimezone(UTC).isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}
        return {"date": v.isoformat()}

    body = {"iCalUID": str(ev["UID"]), "summary": str(ev.get("SUMMARY", "")), "start": when("DTSTART"),
            "end": when("DTEND")}
    for prop, key in (("DESCRIPTION", "description"), ("LOCATION", "location")):
        if ev.get(prop):
            body[key] = str(ev[prop])
    if str(ev.get("TRANSP", "")).upper() == "TRANSPARENT":
        body["transparency"] = "transparent"
    return body


def secret_for(fake, mode: AccessMode) -> dict:
    from daemon import access

    scopes = list(access.scopes("google", mode))
    tokens = fake.issue_tokens(EMAIL, scopes)
    return {"email": EMAIL, "token": tokens["token"], "refresh_token": tokens["refresh_token"],
            "expiry": tokens.get("expiry"), "scopes": scopes, "client_id": fake.client_id,
            "linked_at": now_text(), "refreshed_at": now_text()}


@pytest.fixture
def gconfig(config, google_fake):
    google_fake.add_user(EMAIL)
    return google_config(config, google_fake)


@pytest.fixture
def make_provider(gconfig, google_fake, fast_retries) -> Iterator[Callable[[AccessMode], GoogleProvider]]:  # noqa: F811
    yield from closing_factory(lambda mode: google_provider(gconfig, secret_for(google_fake, mode), mode, TZ))


class TestGoogleContract(ProviderContract):
    @pytest.fixture
    def calendar_id(self, google_fake, gconfig):
        return google_fake.add_calendar(EMAIL, summary=f"Work {uuid.uuid4().hex[:6]}")

    @pytest.fixture
    def put_source(self, google_fake):
        def put(calendar_id: str, text: str) -> str:
            body = ics_to_body(text)
            same = [e for e in google_fake.events(calendar_id) if e.get("iCalUID") == body["iCalUID"]]
            if same:
                body["id"] = same[0]["id"]
            return google_fake.put_event(calendar_id, body)["id"]
        return put

    @pytest.fixture
    def delete_source(self, google_fake):
        return google_fake.delete_event

    @pytest.fixture
    def put_malformed(self, google_fake):
        return lambda calendar_id, secret: put_raw(google_fake, calendar_id, {
            "summary": secret, "start": {"dateTime": "not a time"}, "end": {"dateTime": "2026-03-09T10:00:00Z"}})

    @pytest.fixture
    def invalid_cursor(self, make_provider):
        return f"{CURSOR_PREFIX}{make_provider(AccessMode.READ_WRITE)._fingerprint()}:stale-token"


def put_raw(fake, calendar_id: str, body: dict) -> str:
    """Store an event the fake's own checks would refuse: what a broken server might send."""
    eid = uuid.uuid4().hex
    with fake.state.lock:
        cal = fake.state.calendars[calendar_id]
        fake.state._stamp(cal, {"kind": "calendar#event", "id": eid, "status": "confirmed", "iCalUID": eid} | body)
    return eid


# ----------------------------------------------------------------------- Google's own ways


@pytest.fixture
def cal(google_fake, gconfig):
    return google_fake.add_calendar(EMAIL, summary="Team")


def full(provider, calendar_id, mirror=None):
    mirror = mirror or Mirror()
    mirror.apply(provider.changes(calendar_id, None, WINDOW, dict(mirror.etags) or None))
    return mirror


def step(provider, calendar_id, mirror):
    cs = provider.changes(calendar_id, mirror.cursor, WINDOW, dict(mirror.etags))
    return cs, *mirror.apply(cs)


def test_paging_through_empty_pages_to_the_sync_token(make_provider, google_fake, cal):
    for day in range(1, 8):
        google_fake.put_event(cal, {"summary": f"e{day}", "start": {"dateTime": f"2026-03-0{day}T09:00:00Z"},
                                    "end": {"dateTime": f"2026-03-0{day}T10:00:00Z"}})
    google_fake.empty_pages = True
    provider = make_provider(AccessMode.READ_WRITE)
    import daemon.providers.google as gmod
    old = gmod.PAGE_SIZE
    gmod.PAGE_SIZE = 2
    try:
        mirror = full(provider, cal)
    finally:
        gmod.PAGE_SIZE = old
    assert len(mirror.etags) == 7 and mirror.cursor
    lists = [r for r in google_fake.requests if r.path.endswith("/events") and r.method == "GET"]
    assert len(lists) > 4  # several pages, some empty, followed to the end
    assert all("syncToken" not in r.query for r in lists)
    assert all("timeMin" in r.query for r in lists)  # a full listing may be windowed
    # the incremental call sends the token and nothing that cannot go with it
    google_fake.reset_counts()
    step(provider, cal, mirror)
    incremental = [r for r in google_fake.requests if r.path.endswith("/events")]
    assert incremental and all("syncToken" in r.query for r in incremental), [r.query for r in incremental]
    assert not any({"timeMin", "timeMax", "q", "orderBy", "iCalUID", "updatedMin"} & set(r.query) for r in incremental)


def test_recurring_series_is_one_item_expanded_in_its_zone_with_exceptions(make_provider, google_fake, cal):
    berlin = ZoneInfo("Europe/Berlin")
    master = google_fake.put_event(cal, {
        "summary": "Weekly", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"],
        "start": {"dateTime": "2026-03-17T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-17T10:00:00+01:00", "timeZone": "Europe/Berlin"}})
    provider = make_provider(AccessMode.READ_WRITE)
    mirror = full(provider, cal)
    insts = mirror.instances[master["id"]]
    assert len(insts) == 6
    # 09:00 Berlin before and after the change to summer time on 29 March
    assert {i.start.astimezone(berlin).hour for i in insts} == {9}
    assert {i.utc_bounds(TZ)[0].hour for i in insts} == {8, 7}
    # one occurrence moved, one cancelled (a cancelled exception of a live series)
    occ = {i.recurrence_id: i for i in insts}
    moved_rid, cancelled_rid = sorted(occ)[1], sorted(occ)[2]
    instances = api_instances(google_fake, EMAIL, cal, master["id"])
    by_rid = {datetime.fromisoformat(o["originalStartTime"]["dateTime"].replace("Z", "+00:00"))
              .astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"): o for o in instances}
    moved = dict(by_rid[moved_rid], summary="Weekly (moved)",
                 start={"dateTime": "2026-03-24T15:00:00+01:00", "timeZone": "Europe/Berlin"},
                 end={"dateTime": "2026-03-24T16:00:00+01:00", "timeZone": "Europe/Berlin"})
    google_fake.put_event(cal, moved)
    google_fake.delete_event(cal, by_rid[cancelled_rid]["id"])
    _, upserted, removed = step(provider, cal, mirror)
    assert upserted == {master["id"]} and removed == set()
    occ = {i.recurrence_id: i for i in mirror.instances[master["id"]]}
    assert occ[moved_rid].summary == "Weekly (moved)" and occ[moved_rid].start.hour == 15
    assert occ[cancelled_rid].status == "cancelled"  # kept, never busy
    # a full listing sees the same series without re-reading it
    google_fake.reset_counts()
    cs = provider.changes(cal, None, WINDOW, {master["id"]: ge_series_etag(google_fake, cal, master["id"])})
    assert master["id"] in cs.unchanged
    assert not [r for r in google_fake.requests if r.path.endswith("/instances")]


def ge_series_etag(fake, cal, master_id):
    from daemon.providers.google_events import series_etag

    everything = fake.events(cal, include_deleted=True)
    master = next(e for e in everything if e["id"] == master_id)
    return series_etag(master, [e for e in everything if e.get("recurringEventId") == master_id])


def test_deleting_a_series_removes_it(make_provider, google_fake, cal):
    master = google_fake.put_event(cal, {"summary": "Daily", "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
                                         "start": {"dateTime": "2026-03-10T09:00:00Z", "timeZone": "UTC"},
                                         "end": {"dateTime": "2026-03-10T09:30:00Z", "timeZone": "UTC"}})
    provider = make_provider(AccessMode.READ_WRITE)
    mirror = full(provider, cal)
    google_fake.delete_event(cal, master["id"])
    _, upserted, removed = step(provider, cal, mirror)
    assert removed == {master["id"]} and not mirror.instances


def test_clone_marker_no_attendees_and_no_notifications(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    key = new_key()
    ref = provider.create(cal, draft("Copy"), key)
    (ev,) = [e for e in google_fake.events(cal) if e["id"] == ref.id]
    assert ev["id"] == key  # the key is the event id: a retry cannot make a second copy
    assert ev["extendedProperties"]["private"]["homecal.key"] == key
    assert not ev.get("attendees")
    writes = [r for r in google_fake.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]
    assert writes and all(r.query.get("sendUpdates") == "none" for r in writes)


def test_a_deleted_id_is_restored_not_duplicated(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    key = new_key()
    ref = provider.create(cal, draft("v1"), key)
    provider.delete(ref)
    again = provider.create(cal, draft("v2"), key)  # Google keeps the deleted id reserved: 409
    assert again.id == ref.id
    live = [e for e in google_fake.events(cal) if e["id"] == ref.id]
    assert len(live) == 1 and live[0]["summary"] == "v2" and live[0]["status"] == "confirmed"
    statuses = [r.status for r in google_fake.requests if r.method == "POST" and r.path.endswith("/events")]
    assert 409 in statuses


def test_batched_creates_cut_requests_and_survive_a_duplicate(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    keys = [new_key() for _ in range(120)]
    provider.create(cal, draft("made before"), keys[7])  # a crashed run wrote this one already
    google_fake.reset_counts()
    refs = provider.create_many(cal, [(draft(f"n{i}", day=1 + i % 28), k) for i, k in enumerate(keys)])
    assert all(isinstance(r, EventRef) for r in refs)
    assert len({e["id"] for e in google_fake.events(cal)}) == 120
    assert google_fake.api_calls >= 120 and google_fake.http_requests <= 5  # 3 batches + the 409's patch


def test_retries_rate_limits_and_5xx_then_succeeds(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    google_fake.fail_next(403, "rateLimitExceeded")
    google_fake.fail_next(429, "rateLimitExceeded")
    google_fake.fail_next(503, "backendError")
    mirror = full(provider, cal)
    assert mirror.cursor


def test_quota_exceeded_is_not_hammered(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    google_fake.quota_exceeded = True
    google_fake.reset_counts()
    with pytest.raises(RateLimited) as info:
        full(provider, cal)
    assert info.value.retry_after >= 3600
    assert google_fake.api_calls == 1


def test_expired_access_token_is_refreshed_and_reported(gconfig, google_fake, cal, fast_retries):  # noqa: F811
    saved = {}
    provider = google_provider(gconfig, secret_for(google_fake, AccessMode.READ_WRITE), AccessMode.READ_WRITE, TZ,
                               on_token=saved.update)
    google_fake.expire_access_tokens()
    assert full(provider, cal).cursor
    assert saved["token"] and saved["refreshed_at"]


def test_revoked_grant_is_an_auth_error_never_an_empty_calendar(gconfig, google_fake, cal, fast_retries):  # noqa: F811
    google_fake.put_event(cal, {"summary": "x", "start": {"dateTime": "2026-03-10T09:00:00Z"},
                                "end": {"dateTime": "2026-03-10T10:00:00Z"}})
    provider = google_provider(gconfig, secret_for(google_fake, AccessMode.READ_WRITE), AccessMode.READ_WRITE, TZ)
    google_fake.revoke(EMAIL)
    google_fake.expire_access_tokens()
    with pytest.raises(AuthError):
        full(provider, cal)


def test_free_busy_mode_never_asks_for_text_and_never_writes(make_provider, google_fake, cal):
    google_fake.put_event(cal, {"summary": "Secret", "description": "d", "start": {"dateTime": "2026-03-10T09:00:00Z"},
                                "end": {"dateTime": "2026-03-10T10:00:00Z"}})
    provider = make_provider(AccessMode.FREE_BUSY)
    mirror = full(provider, cal)
    assert [i.summary for i in mirror.all_instances()] == [None]
    lists = [r for r in google_fake.requests if r.path.endswith("/events")]
    assert lists and all("summary" not in r.query.get("fields", "items(id") for r in lists)
    with pytest.raises(AccessDenied):
        provider.create(cal, draft(), new_key())


def test_freebusy_query_is_split_into_90_day_and_50_calendar_windows(make_provider, google_fake):
    cals = [google_fake.add_calendar(EMAIL, summary=f"c{i}") for i in range(60)]
    google_fake.put_event(cals[55], {"summary": "x", "start": {"dateTime": "2026-08-10T09:00:00Z"},
                                     "end": {"dateTime": "2026-08-10T10:00:00Z"}})
    provider = make_provider(AccessMode.FREE_BUSY)
    google_fake.reset_counts()
    busy = provider.busy(cals, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert [(b.start, b.end) for b in busy] == [(datetime(2026, 8, 10, 9, tzinfo=UTC),
                                                 datetime(2026, 8, 10, 10, tzinfo=UTC))]
    queries = [r for r in google_fake.requests if r.path.endswith("/freeBusy")]
    assert len(queries) == 2 * 4  # 60 calendars -> 2 groups; 275 days -> 4 windows of <= 90 days
    assert all(r.status == 200 for r in queries)


def test_update_of_an_event_the_user_deleted_is_not_found(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    ref = provider.create(cal, draft(), new_key())
    google_fake.delete_event(cal, ref.id)
    with pytest.raises(NotFound):
        provider.update(EventRef(cal, ref.id, None), draft("again"), "k")


def test_unreadable_event_is_logged_without_its_text(make_provider, google_fake, cal, caplog):
    caplog.set_level(logging.DEBUG)
    put_raw(google_fake, cal, {"summary": "PRIVATE-TITLE", "start": {"date": "2026-03-10"},
                               "end": {"dateTime": "2026-03-10T10:00:00Z"}})
    cs = make_provider(AccessMode.READ_WRITE).changes(cal, None, WINDOW)
    assert len(cs.skipped) == 1 and "PRIVATE-TITLE" not in caplog.text


def test_all_day_booking_like_draft_round_trips(make_provider, google_fake, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    d = Draft(kind="busy", summary="Busy", start=date(2026, 3, 20), end=date(2026, 3, 21), all_day=True)
    provider.create(cal, d, new_key())
    (inst,) = full(provider, cal).all_instances()
    assert inst.all_day and (inst.start, inst.end) == (date(2026, 3, 20), date(2026, 3, 21))


def test_window_outside_events_are_items_without_instances(make_provider, google_fake, cal):
    far = google_fake.put_event(cal, {"summary": "far", "start": {"dateTime": "2026-04-30T23:00:00Z"},
                                      "end": {"dateTime": "2026-05-01T01:00:00Z"}})
    mirror = full(make_provider(AccessMode.READ_WRITE), cal)
    assert len(mirror.instances[far["id"]]) == 1  # overlaps the window's end
    later = google_fake.put_event(cal, {"summary": "later", "start": {"dateTime": "2026-05-01T00:00:00Z"},
                                        "end": {"dateTime": "2026-05-01T01:00:00Z"}})
    _, upserted, _ = step(make_provider(AccessMode.READ_WRITE), cal, mirror)
    assert upserted == {later["id"]} and mirror.instances[later["id"]] == []  # known, but no instance


def test_retry_schedule_is_bounded(google_fake, make_provider, cal):
    provider = make_provider(AccessMode.READ_WRITE)
    google_fake.fail_next(500, "backendError", count=50)
    with pytest.raises(ProviderError):
        full(provider, cal)
    assert google_fake.api_calls == google_http.RETRY["attempts"]
