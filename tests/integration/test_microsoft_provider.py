"""The Microsoft provider against the fake Graph API: the shared contract, then Graph's own ways.

The fake (tests/fakes/graph_api.py) is reached with `requests` exactly as Graph is, with only
the endpoint changed; tokens come from the fake sign-in service through msal.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.errors import AccessDenied, AuthError, InvalidCursor, RateLimited
from daemon.models import AccessMode, Draft, Window
from daemon.providers import microsoft_events as me
from daemon.providers.microsoft import MicrosoftProvider, microsoft_provider
from tests.contract import TZ, WINDOW, Mirror, ProviderContract, draft, new_key
from tests.graph_helpers import fast_graph_retries, graph_config  # noqa: F401 - fixture
from tests.ms_helpers import ms_secret
from tests.sync_helpers import closing_factory

ANN = "ann@contoso.com"
#: the UID a contract test wrote -> the id the fake gave its event (Graph makes its own iCalUId)
_IDS: dict[str, str] = {}


def ics_fields(text: str) -> dict:
    """A contract test's one-event VCALENDAR as Graph event fields."""
    ev = next(c for c in icalendar.Calendar.from_ical(text).walk("VEVENT"))
    start, end = ev.decoded("DTSTART"), ev.decoded("DTEND")
    if isinstance(start, datetime):
        fields = {"start": start.astimezone(UTC), "end": end.astimezone(UTC), "isAllDay": False}
    else:
        fields = {"start": {"dateTime": f"{start}T00:00:00", "timeZone": "UTC"},
                  "end": {"dateTime": f"{end}T00:00:00", "timeZone": "UTC"}, "isAllDay": True}
    fields["subject"] = str(ev.get("SUMMARY", ""))
    if ev.get("DESCRIPTION"):
        fields["body"] = {"contentType": "text", "content": str(ev["DESCRIPTION"])}
    if ev.get("LOCATION"):
        fields["location"] = {"displayName": str(ev["LOCATION"])}
    if str(ev.get("TRANSP", "")).upper() == "TRANSPARENT":
        fields["showAs"] = "free"
    return fields | {"_uid": str(ev["UID"])}


@pytest.fixture
def mconfig(config, graph_fake, ms_login):
    graph_fake.directory.add_user(ANN, timezone="W. Europe Standard Time")
    graph_fake.mailbox(ANN)
    return graph_config(config, graph_fake, ms_login)


@pytest.fixture
def make_provider(mconfig, ms_login,
                  fast_graph_retries) -> Iterator[Callable[[AccessMode], MicrosoftProvider]]:  # noqa: F811
    def build(mode: AccessMode) -> MicrosoftProvider:
        return microsoft_provider(mconfig, ms_secret(mconfig, ms_login, ANN, mode) | {"email": ANN}, mode, TZ)

    yield from closing_factory(build)


class TestMicrosoftContract(ProviderContract):
    @pytest.fixture
    def calendar_id(self, graph_fake, mconfig):
        return graph_fake.add_calendar(ANN, f"Work {uuid.uuid4().hex[:6]}")

    @pytest.fixture
    def put_source(self, graph_fake):
        def put(calendar_id: str, text: str) -> str:
            fields = ics_fields(text)
            uid = fields.pop("_uid")
            if uid in _IDS:
                return graph_fake.update_event(ANN, _IDS[uid], **fields)["id"]
            _IDS[uid] = graph_fake.add_event(ANN, calendar_id, **fields)["id"]
            return _IDS[uid]
        return put

    @pytest.fixture
    def delete_source(self, graph_fake):
        return lambda calendar_id, item_id: graph_fake.delete_event(ANN, item_id)

    @pytest.fixture
    def put_malformed(self, graph_fake):
        def put(calendar_id: str, secret: str) -> str:
            ev = graph_fake.add_event(ANN, calendar_id, subject=secret, start=datetime(2026, 3, 9, 9, tzinfo=UTC),
                                      end=datetime(2026, 3, 9, 10, tzinfo=UTC))
            with graph_fake.state.lock:
                _cal, stored, _ = graph_fake.state.find(graph_fake.mailbox(ANN), ev["id"])
                # what a broken server might send: an end before the start
                stored["end"] = {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "UTC"}
            return ev["id"]
        return put

    @pytest.fixture
    def invalid_cursor(self, graph_fake, make_provider, calendar_id):
        provider = make_provider(AccessMode.READ_WRITE)
        cursor = provider.changes(calendar_id, None, WINDOW).cursor
        graph_fake.expire_delta_tokens()
        return cursor

    def by_uid(self, mirror: Mirror, uid: str):  # type: ignore[override]
        return [i for i in mirror.all_instances() if i.item_id == _IDS.get(uid)]


# ----------------------------------------------------------------------- Graph's own ways


@pytest.fixture
def cal(graph_fake, mconfig):
    return graph_fake.add_calendar(ANN, "Team")


@pytest.fixture
def provider(make_provider):
    return make_provider(AccessMode.READ_WRITE)


def full(provider, calendar_id, window=WINDOW, mirror=None):
    mirror = mirror or Mirror()
    mirror.apply(provider.changes(calendar_id, None, window, dict(mirror.etags) or None))
    return mirror


def step(provider, calendar_id, mirror, window=WINDOW):
    cs = provider.changes(calendar_id, mirror.cursor, window, dict(mirror.etags))
    return (cs,) + mirror.apply(cs)


def test_every_request_asks_for_immutable_ids_and_utc(provider, cal, graph_fake):
    graph_fake.add_event(ANN, cal, subject="x", start=datetime(2026, 3, 3, 9, tzinfo=UTC),
                         end=datetime(2026, 3, 3, 10, tzinfo=UTC))
    provider.list_calendars()
    mirror = full(provider, cal)
    provider.create(cal, draft(), new_key())
    step(provider, cal, mirror)
    sent = [r for r in graph_fake.requests if not r.in_batch]
    assert sent and all('idtype="immutableid"' in r.headers.get("prefer", "").lower() for r in sent)
    assert all('outlook.timezone="utc"' in r.headers.get("prefer", "").lower() for r in sent)


def test_the_delta_round_pages_through_next_links_and_keeps_the_whole_delta_link(provider, cal, graph_fake,
                                                                                  monkeypatch):
    from daemon.providers import microsoft as ms
    monkeypatch.setattr(ms, "PAGE_SIZE", 3)
    for d in range(1, 11):
        graph_fake.add_event(ANN, cal, subject=f"e{d}", start=datetime(2026, 3, d, 9, tzinfo=UTC),
                             end=datetime(2026, 3, d, 10, tzinfo=UTC))
    mirror = full(provider, cal)
    assert len(mirror.etags) == 10
    pages = [r for r in graph_fake.requests if "calendarView/delta" in r.path]
    assert len(pages) == 4  # 3 + 3 + 3 + 1
    link = mirror.cursor.split("|", 4)[4]
    assert link.startswith(graph_fake.endpoint) and "deltatoken" in link.lower()
    # the next round GETs that link exactly as it was handed out
    graph_fake.requests.clear()
    cs, upserted, removed = step(provider, cal, mirror)
    assert cs.items == [] and not cs.full
    (req,) = [r for r in graph_fake.requests if "calendarView/delta" in r.path]
    assert not {"startDateTime", "endDateTime"} & set(req.query)  # the token carries the window


def test_a_410_raises_invalid_cursor_and_the_full_round_recovers_everything(provider, cal, graph_fake):
    ids = {graph_fake.add_event(ANN, cal, subject=f"e{d}", start=datetime(2026, 3, d, 9, tzinfo=UTC),
                                end=datetime(2026, 3, d, 10, tzinfo=UTC))["id"] for d in (2, 3)}
    mirror = full(provider, cal)
    graph_fake.expire_delta_tokens(cal)
    with pytest.raises(InvalidCursor):
        provider.changes(cal, mirror.cursor, WINDOW)
    again = full(provider, cal)
    assert set(again.etags) == ids


def test_removed_entries_for_changes_outside_the_window_delete_nothing(provider, cal, graph_fake):
    inside = graph_fake.add_event(ANN, cal, subject="in", start=datetime(2026, 3, 5, 9, tzinfo=UTC),
                                  end=datetime(2026, 3, 5, 10, tzinfo=UTC))
    outside = graph_fake.add_event(ANN, cal, subject="out", start=datetime(2026, 8, 5, 9, tzinfo=UTC),
                                   end=datetime(2026, 8, 5, 10, tzinfo=UTC))
    # a weekly series that runs on past the window's end
    series = graph_fake.add_event(ANN, cal, subject="weekly", start=datetime(2026, 4, 6, 9, tzinfo=UTC),
                                  end=datetime(2026, 4, 6, 10, tzinfo=UTC), recurrence={
                                      "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                                      "range": {"type": "numbered", "startDate": "2026-04-06",
                                                "numberOfOccurrences": 12}})
    mirror = full(provider, cal)
    in_window = set(mirror.etags)
    assert inside["id"] in in_window and outside["id"] not in in_window
    graph_fake.update_event(ANN, outside["id"], subject="out, edited")
    graph_fake.move_occurrence(ANN, series["id"], datetime(2026, 6, 1, 9, tzinfo=UTC),
                               datetime(2026, 6, 1, 11, tzinfo=UTC), datetime(2026, 6, 1, 12, tzinfo=UTC))
    cs, upserted, removed = step(provider, cal, mirror)
    assert set(cs.removed) >= {outside["id"]}  # Graph says "deleted" for what changed outside
    # ...and nothing the mirror holds goes: the ids are ones it never had
    assert removed & in_window == set() and set(mirror.etags) == in_window
    assert len(mirror.all_instances()) == 5  # "in" and the series' four April Mondays


def test_replayed_entries_are_harmless(provider, cal, graph_fake):
    graph_fake.replay = True
    a = graph_fake.add_event(ANN, cal, subject="a", start=datetime(2026, 3, 5, 9, tzinfo=UTC),
                             end=datetime(2026, 3, 5, 10, tzinfo=UTC))
    mirror = full(provider, cal)
    graph_fake.update_event(ANN, a["id"], subject="a2")
    b = graph_fake.add_event(ANN, cal, subject="b", start=datetime(2026, 3, 6, 9, tzinfo=UTC),
                             end=datetime(2026, 3, 6, 10, tzinfo=UTC))
    cs, upserted, removed = step(provider, cal, mirror)
    assert removed == set() and {a["id"], b["id"]} <= set(mirror.etags)
    assert sorted(i.summary for i in mirror.all_instances()) == ["a2", "b"]
    assert len([i for i in cs.items if i.id == a["id"]]) == 1


def test_a_new_window_starts_a_fresh_round(provider, cal, graph_fake):
    graph_fake.add_event(ANN, cal, subject="late", start=datetime(2026, 5, 10, 9, tzinfo=UTC),
                         end=datetime(2026, 5, 10, 10, tzinfo=UTC))
    mirror = full(provider, cal)
    assert mirror.all_instances() == []  # after WINDOW's end
    rolled = Window(WINDOW.start + timedelta(days=30), WINDOW.end + timedelta(days=30))
    cs = provider.changes(cal, mirror.cursor, rolled)
    assert cs.full and [i.summary for it in cs.items for i in it.instances] == ["late"]


def test_a_series_crossing_dst_keeps_its_local_time_and_exceptions(provider, cal, graph_fake):
    berlin = ZoneInfo("Europe/Berlin")
    series = graph_fake.add_event(ANN, cal, subject="weekly", start={"dateTime": "2026-03-16T09:00:00",
                                                                     "timeZone": "W. Europe Standard Time"},
                                  end={"dateTime": "2026-03-16T10:00:00", "timeZone": "W. Europe Standard Time"},
                                  recurrence={"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                                              "range": {"type": "numbered", "startDate": "2026-03-16",
                                                        "numberOfOccurrences": 4}})
    graph_fake.cancel_occurrence(ANN, series["id"], datetime(2026, 3, 23, 8, tzinfo=UTC))
    graph_fake.move_occurrence(ANN, series["id"], datetime(2026, 3, 30, 7, tzinfo=UTC),
                               datetime(2026, 3, 30, 12, tzinfo=UTC), datetime(2026, 3, 30, 13, tzinfo=UTC))
    mirror = full(provider, cal)
    insts = sorted(mirror.all_instances(), key=lambda i: i.start)
    assert [(i.start.astimezone(berlin).day, i.start.astimezone(berlin).hour) for i in insts] == \
        [(16, 9), (30, 14), (6, 9)]  # DST began on 29 March: still 09:00 local
    assert len({i.key for i in insts}) == 3 and all(i.key.startswith(series["id"] + "|") for i in insts)
    assert getattr(insts[0].start.tzinfo, "key", None) == "Europe/Berlin"


def test_free_busy_mode_stores_only_times_and_show_as(make_provider, cal, graph_fake):
    graph_fake.add_event(ANN, cal, subject="Secret", body={"contentType": "text", "content": "agenda"},
                         start=datetime(2026, 3, 5, 9, tzinfo=UTC), end=datetime(2026, 3, 5, 10, tzinfo=UTC),
                         showAs="free")
    fb = make_provider(AccessMode.FREE_BUSY)
    (inst,) = full(fb, cal).all_instances()
    assert (inst.summary, inst.description, inst.location) == (None, None, None) and inst.transparent
    with pytest.raises(AccessDenied):
        fb.create(cal, draft(), new_key())


def test_create_sends_a_transaction_id_so_a_retry_makes_no_second_event(provider, cal, graph_fake):
    key = new_key()
    graph_fake.fail_next(1, status=503, retry_after=None, path_contains="/events")
    ref = provider.create(cal, draft(), key)
    assert not [r for r in graph_fake.requests if r.method == "PATCH"]  # a fresh create is one request
    again = provider.create(cal, draft("Changed meanwhile"), key)
    assert again.id == ref.id
    assert [r.method for r in graph_fake.requests if r.method in ("POST", "PATCH")][-2:] == ["POST", "PATCH"]
    assert graph_fake.event(ANN, ref.id)["subject"] == "Changed meanwhile"
    (stored,) = graph_fake.events(ANN, cal)
    assert stored["transactionId"] == "homecal-" + key and stored["attendees"] == []
    assert {"id": me.KEY_PROP, "value": key} in [{"id": p["id"], "value": p["value"]}
                                                 for p in stored["singleValueExtendedProperties"]]
    assert graph_fake.invitations == []


def test_ref_for_key_finds_the_event_by_its_extended_property(provider, cal):
    key = new_key()
    ref = provider.create(cal, draft(), key)
    found = provider.ref_for_key(cal, key, WINDOW)
    assert found is not None and found.id == ref.id
    assert provider.ref_for_key(cal, new_key(), WINDOW) is None


def test_all_day_events_are_written_midnight_to_midnight(provider, cal, graph_fake):
    ref = provider.create(cal, Draft(kind="busy", summary="Busy", start=date(2026, 3, 20), end=date(2026, 3, 22),
                                     all_day=True), new_key())
    stored = graph_fake.event(ANN, ref.id)
    assert stored["isAllDay"] is True
    (inst,) = full(provider, cal).all_instances()
    assert inst.all_day and (inst.start, inst.end) == (date(2026, 3, 20), date(2026, 3, 22))


def test_many_creates_go_out_in_batches_of_twenty(provider, cal, graph_fake):
    drafts = [(draft(f"e{i}", day=1 + i % 28, hour=6 + i % 10), new_key()) for i in range(45)]
    graph_fake.requests.clear()
    refs = provider.create_many(cal, drafts)
    assert all(not isinstance(r, Exception) for r in refs) and len({r.id for r in refs}) == 45
    envelopes = [r for r in graph_fake.requests if r.path.rstrip("/") == "/$batch" and not r.in_batch]
    assert len(envelopes) == 3 and len([r for r in graph_fake.requests if r.in_batch]) == 45
    assert len(graph_fake.events(ANN, cal)) == 45


def test_throttled_batch_members_are_sent_again_and_nothing_doubles(provider, cal, graph_fake):
    graph_fake.fault_rate(0.3, statuses=(429, 503), seed=5)
    refs = provider.create_many(cal, [(draft(f"e{i}", day=1 + i), new_key()) for i in range(20)])
    graph_fake.fault_rate(0)
    assert all(not isinstance(r, Exception) for r in refs)
    assert len(graph_fake.events(ANN, cal)) == 20


def test_retry_after_is_honoured(provider, cal, graph_fake, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(provider.client, "sleep", waits.append)
    graph_fake.fail_next(2, status=429, retry_after="3", path_contains="/calendars")
    provider.list_calendars()
    assert len(waits) == 2 and all(3 <= w <= 4 for w in waits)


def test_a_wait_longer_than_two_minutes_rests_the_account(provider, cal, graph_fake):
    graph_fake.fail_next(1, status=429, retry_after="900", path_contains="/calendars")
    with pytest.raises(RateLimited) as caught:
        provider.list_calendars()
    assert caught.value.retry_after == 900


def test_no_more_than_four_requests_are_in_flight_per_mailbox(mconfig, ms_login, cal, graph_fake):
    graph_fake.slow = 0.15
    secret = ms_secret(mconfig, ms_login, ANN, AccessMode.READ_WRITE) | {"email": ANN}
    providers = [microsoft_provider(mconfig, secret, AccessMode.READ_WRITE, TZ) for _ in range(8)]
    threads = [threading.Thread(target=p.list_calendars) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    graph_fake.slow = 0
    assert max(graph_fake.peak_in_flight.values()) == 4
    assert not [r for r in graph_fake.requests if r.status == 429]
    for p in providers:
        p.close()


def test_a_revoked_sign_in_is_an_auth_error_never_no_events(provider, cal, graph_fake, caplog):
    graph_fake.add_event(ANN, cal, subject="x", start=datetime(2026, 3, 5, 9, tzinfo=UTC),
                         end=datetime(2026, 3, 5, 10, tzinfo=UTC))
    mirror = full(provider, cal)
    graph_fake.directory.revoke(ANN)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as caught:
        provider.changes(cal, mirror.cursor, WINDOW)
    assert "link" in str(caught.value).lower()
    assert "at-" not in caplog.text and "rt-" not in caplog.text


def test_get_schedule_serves_busy_time_of_a_work_mailbox_in_62_day_steps(provider, cal, graph_fake):
    graph_fake.add_event(ANN, cal, subject="x", start=datetime(2026, 3, 5, 9, tzinfo=UTC),
                         end=datetime(2026, 3, 5, 10, tzinfo=UTC))
    graph_fake.add_event(ANN, None, subject="y", start=datetime(2026, 6, 5, 9, tzinfo=UTC),
                         end=datetime(2026, 6, 5, 11, tzinfo=UTC), showAs="tentative")
    graph_fake.add_event(ANN, None, subject="z", start=datetime(2026, 6, 6, 9, tzinfo=UTC),
                         end=datetime(2026, 6, 6, 11, tzinfo=UTC), showAs="free")
    busy = provider.busy([cal], datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    assert [(b.start, b.end) for b in busy] == [
        (datetime(2026, 3, 5, 9, tzinfo=UTC), datetime(2026, 3, 5, 10, tzinfo=UTC)),
        (datetime(2026, 6, 5, 9, tzinfo=UTC), datetime(2026, 6, 5, 11, tzinfo=UTC))]
    calls = [r for r in graph_fake.requests if r.path.endswith("/getSchedule")]
    assert len(calls) == 2 and all(r.status == 200 for r in calls)


def test_a_personal_account_computes_busy_time_from_events(mconfig, ms_login, graph_fake):
    graph_fake.directory.add_user("bo@outlook.com", personal=True)
    graph_fake.mailbox("bo@outlook.com")
    cal_id = graph_fake.default_calendar("bo@outlook.com")
    graph_fake.add_event("bo@outlook.com", cal_id, subject="x", start=datetime(2026, 3, 5, 9, tzinfo=UTC),
                         end=datetime(2026, 3, 5, 10, tzinfo=UTC))
    secret = ms_secret(mconfig, ms_login, "bo@outlook.com", AccessMode.READ_WRITE) | {"email": "bo@outlook.com"}
    assert secret["personal"] is True
    p = microsoft_provider(mconfig, secret, AccessMode.READ_WRITE, TZ)
    busy = p.busy([cal_id], datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    p.close()
    assert [(b.start.hour, b.end.hour) for b in busy] == [(9, 10)]
    assert not [r for r in graph_fake.requests if r.path.endswith("/getSchedule")]


def test_a_teams_booking_gets_its_join_link_and_invites_the_visitor(provider, cal, graph_fake):
    start = datetime(2026, 3, 12, 9, tzinfo=UTC)
    ref = provider.create(cal, Draft(kind="booking", summary="Intro: Bo", start=start, end=start + timedelta(hours=1),
                                     organizer=("Ann", ANN), attendees=(("Bo", "bo@example.org"),),
                                     conference="teams"), new_key())
    assert ref.join_url and ref.join_url.startswith("https://")
    (invite,) = graph_fake.invitations
    assert "bo@example.org" in str(invite)
    provider.delete(ref, notify=True)
    assert graph_fake.cancellations  # Exchange tells the visitor
