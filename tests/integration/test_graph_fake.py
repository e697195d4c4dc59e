"""The Graph fake behaves as Microsoft Graph documents (docs/provider-facts.md §2), seen over HTTP.

Every test talks to the fake over loopback with plain `requests`, the way homecal's Microsoft
provider does, so a difference between the fake and the documented behaviour shows up here
before it makes a provider test prove the wrong thing.
"""

from __future__ import annotations

import http.client
import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.graph_api import GraphFake, graph_fake  # noqa: F401
from tests.fakes.ms_directory import Directory, ms_directory  # noqa: F401

ANN = "ann@contoso.com"
BOB = "bob@contoso.com"
MARKER = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name homecal_src"
WINDOW = {"startDateTime": "2024-03-01T00:00:00Z", "endDateTime": "2024-05-01T00:00:00Z"}
WET = "W. Europe Standard Time"


class Client:
    """A requests session with a bearer token and the Prefer headers production sends."""

    def __init__(self, fake: GraphFake, email: str = ANN, scopes=("Calendars.ReadWrite", "User.Read"),
                 tz: str = "UTC", page: int | None = None) -> None:
        self.fake = fake
        self.s = requests.Session()
        self.s.headers["Authorization"] = "Bearer " + fake.token_for(email, scopes)
        prefer = f'IdType="ImmutableId", outlook.timezone="{tz}"'
        if page:
            prefer += f", odata.maxpagesize={page}"
        self.s.headers["Prefer"] = prefer

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.fake.endpoint + path

    def get(self, path: str, **kw) -> requests.Response:
        return self.s.get(self.url(path), timeout=10, **kw)

    def post(self, path: str, body: dict, **kw) -> requests.Response:
        return self.s.post(self.url(path), json=body, timeout=10, **kw)

    def patch(self, path: str, body: dict, **kw) -> requests.Response:
        return self.s.patch(self.url(path), json=body, timeout=10, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.s.delete(self.url(path), timeout=10, **kw)

    def delta_round(self, link: str, params: dict | None = None) -> tuple[list[dict], str, int]:
        """Follow nextLinks to the deltaLink: (all entries, deltaLink, pages)."""
        entries, pages = [], 0
        r = self.get(link, params=params)
        while True:
            assert r.status_code == 200, r.text
            body = r.json()
            pages += 1
            assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body), body.keys()
            entries += body["value"]
            if "@odata.deltaLink" in body:
                return entries, body["@odata.deltaLink"], pages
            r = self.get(body["@odata.nextLink"])


def timed(day: str, start: str, end: str, tz: str = "UTC", **extra) -> dict:
    return {"start": {"dateTime": f"{day}T{start}:00", "timeZone": tz},
            "end": {"dateTime": f"{day}T{end}:00", "timeZone": tz}, **extra}


def code(r: requests.Response) -> str:
    return r.json()["error"]["code"]


@pytest.fixture
def ann(ms_directory: Directory, graph_fake: GraphFake) -> Client:  # noqa: F811
    ms_directory.add_user(ANN, name="Ann Lee")
    graph_fake.mailbox(ANN)
    return Client(graph_fake)


def delta_path(fake: GraphFake, cal: str | None = None) -> str:
    return f"/me/calendars/{cal or fake.default_calendar(ANN)}/calendarView/delta"


# ---- delta ---------------------------------------------------------------------------------
def test_delta_pages_end_in_one_delta_link_and_cover_every_instance(graph_fake, ann):  # noqa: F811
    for n in range(7):
        graph_fake.add_event(ANN, None, subject=f"e{n}", **timed(f"2024-03-{10 + n:02d}", "09:00", "10:00"))
    client = Client(graph_fake, page=3)
    entries, link, pages = client.delta_round(delta_path(graph_fake), WINDOW)
    assert pages == 3
    assert sorted(e["subject"] for e in entries) == [f"e{n}" for n in range(7)]
    assert "$deltatoken=" in link and "startDateTime" not in link
    again, _, _ = client.delta_round(link)
    assert again == []


def test_delta_reports_create_update_delete(graph_fake, ann):  # noqa: F811
    keep = graph_fake.add_event(ANN, None, subject="keep", **timed("2024-03-05", "09:00", "10:00"))
    _, link, _ = ann.delta_round(delta_path(graph_fake), WINDOW)
    new = ann.post("/me/events", {"subject": "new", **timed("2024-03-06", "09:00", "10:00")}).json()
    ann.patch(f"/me/events/{keep['id']}", {"subject": "kept, renamed"})
    entries, link, _ = ann.delta_round(link)
    assert {e["id"]: e["subject"] for e in entries} == {new["id"]: "new", keep["id"]: "kept, renamed"}
    renamed = next(e for e in entries if e["id"] == keep["id"])
    assert renamed["start"] == {"dateTime": "2024-03-05T09:00:00.0000000", "timeZone": "UTC"}
    assert ann.delete(f"/me/events/{new['id']}").status_code == 204
    entries, _, _ = ann.delta_round(link)
    assert entries == [{"@odata.type": "#microsoft.graph.event", "id": new["id"], "@removed": {"reason": "deleted"}}]


def test_change_outside_the_window_comes_back_as_removed_and_the_window_stays_fixed(graph_fake, ann):  # noqa: F811
    far = graph_fake.add_event(ANN, None, subject="june", **timed("2024-06-10", "09:00", "10:00"))
    first, link, _ = ann.delta_round(delta_path(graph_fake), WINDOW)
    assert first == []
    ann.patch(f"/me/events/{far['id']}", {"subject": "still june"})
    # a later request cannot widen the window: the token carries it
    entries, link, _ = ann.delta_round(link, params={"startDateTime": "2024-01-01T00:00:00Z",
                                                      "endDateTime": "2024-12-31T00:00:00Z"})
    assert entries == [{"@odata.type": "#microsoft.graph.event", "id": far["id"], "@removed": {"reason": "deleted"}}]
    # moved into the window: in full; moved out again: @removed
    ann.patch(f"/me/events/{far['id']}", timed("2024-04-10", "09:00", "10:00"))
    entries, link, _ = ann.delta_round(link)
    assert [(e["id"], e["subject"]) for e in entries] == [(far["id"], "still june")]
    ann.patch(f"/me/events/{far['id']}", timed("2024-07-10", "09:00", "10:00"))
    entries, _, _ = ann.delta_round(link)
    assert [e.get("@removed") for e in entries] == [{"reason": "deleted"}]


def test_expired_tokens_answer_410_with_a_location_that_starts_over(graph_fake, ann):  # noqa: F811
    for n in range(3):
        graph_fake.add_event(ANN, None, subject=f"e{n}", **timed(f"2024-03-{10 + n}", "09:00", "10:00"))
    client = Client(graph_fake, page=2)
    first = client.get(delta_path(graph_fake), params=WINDOW).json()
    _, link, _ = client.delta_round(delta_path(graph_fake), WINDOW)
    graph_fake.expire_delta_tokens()
    for stale in (link, first["@odata.nextLink"]):
        r = client.get(stale)
        assert r.status_code == 410 and code(r) == "SyncStateNotFound"
        location = r.headers["Location"]
        assert parse_qs(urlsplit(location).query, keep_blank_values=True)["$deltatoken"] == [""]
    entries, _, _ = client.delta_round(location)
    assert sorted(e["subject"] for e in entries) == ["e0", "e1", "e2"]


def test_replays_repeat_an_entry_already_sent(graph_fake, ann):  # noqa: F811
    for n in range(4):
        graph_fake.add_event(ANN, None, subject=f"e{n}", **timed(f"2024-03-{10 + n}", "09:00", "10:00"))
    graph_fake.replay = True
    entries, link, pages = Client(graph_fake, page=2).delta_round(delta_path(graph_fake), WINDOW)
    assert pages == 2 and len(entries) == 6
    assert sorted({e["subject"] for e in entries}) == ["e0", "e1", "e2", "e3"]
    again, _, _ = ann.delta_round(link)
    assert len(again) == 1  # nothing changed, yet an entry comes again


def test_delta_refuses_query_options_and_includes_transaction_id_unless_hidden(graph_fake, ann):  # noqa: F811
    r = ann.get(delta_path(graph_fake), params={**WINDOW, "$select": "subject"})
    assert r.status_code == 400 and "$select" in r.json()["error"]["message"]
    assert ann.get(delta_path(graph_fake), params={"$top": "1"}).status_code == 400
    graph_fake.add_event(ANN, None, subject="x", transactionId="t-1", **timed("2024-03-05", "09:00", "10:00"))
    entries, _, _ = ann.delta_round("/me/calendarView/delta", WINDOW)
    assert entries[0]["transactionId"] == "t-1" and "singleValueExtendedProperties" not in entries[0]
    graph_fake.hide_transaction_id = True
    entries, _, _ = ann.delta_round("/me/calendarView/delta", WINDOW)
    assert "transactionId" not in entries[0]


# ---- writes --------------------------------------------------------------------------------
def test_transaction_id_makes_a_retried_create_return_the_first_event(graph_fake, ann):  # noqa: F811
    body = {"subject": "once", "transactionId": "tx-42", **timed("2024-03-05", "09:00", "10:00"),
            "singleValueExtendedProperties": [{"id": MARKER, "value": "src-1"}]}
    a = ann.post("/me/events", body)
    b = ann.post("/me/events", body)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert len(graph_fake.events(ANN)) == 1
    assert graph_fake.events(ANN)[0]["singleValueExtendedProperties"] == [{"id": MARKER, "value": "src-1"}]


def test_all_day_must_run_midnight_to_midnight_in_one_zone(graph_fake, ann):  # noqa: F811
    ok = ann.post("/me/events", {"subject": "day", "isAllDay": True,
                                 "start": {"dateTime": "2024-03-05T00:00:00", "timeZone": WET},
                                 "end": {"dateTime": "2024-03-07T00:00:00", "timeZone": WET}})
    assert ok.status_code == 201
    for start, end in ((("2024-03-05T09:00:00", WET), ("2024-03-06T00:00:00", WET)),
                       (("2024-03-05T00:00:00", WET), ("2024-03-06T00:00:00", "UTC")),
                       (("2024-03-05T00:00:00", WET), ("2024-03-05T00:00:00", WET))):
        r = ann.post("/me/events", {"isAllDay": True, "start": {"dateTime": start[0], "timeZone": start[1]},
                                    "end": {"dateTime": end[0], "timeZone": end[1]}})
        assert r.status_code == 400 and code(r) == "ErrorInvalidRequest", (start, end)
    # all-day dates come back as dates, labelled with the preferred zone
    shown = Client(graph_fake, tz="Pacific Standard Time").get(f"/me/events/{ok.json()['id']}").json()
    assert shown["start"] == {"dateTime": "2024-03-05T00:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert shown["end"]["dateTime"] == "2024-03-07T00:00:00.0000000"


def test_if_match_and_double_delete(graph_fake, ann):  # noqa: F811
    event = ann.post("/me/events", {"subject": "v1", **timed("2024-03-05", "09:00", "10:00")}).json()
    ok = ann.patch(f"/me/events/{event['id']}", {"subject": "v2"}, headers={"If-Match": event["@odata.etag"]})
    assert ok.status_code == 200 and ok.json()["@odata.etag"] != event["@odata.etag"]
    stale = ann.patch(f"/me/events/{event['id']}", {"subject": "v3"}, headers={"If-Match": event["@odata.etag"]})
    assert stale.status_code == 412 and code(stale) == "ErrorIrresolvableConflict"
    assert ann.delete(f"/me/events/{event['id']}", headers={"If-Match": event["@odata.etag"]}).status_code == 412
    assert ann.delete(f"/me/events/{event['id']}").status_code == 204
    again = ann.delete(f"/me/events/{event['id']}")
    assert again.status_code == 404 and code(again) == "ErrorItemNotFound"


def test_read_only_calendar_and_meeting_mail(graph_fake, ann):  # noqa: F811
    shared = graph_fake.add_calendar(ANN, "Team", can_edit=False)
    r = ann.post(f"/me/calendars/{shared}/events", timed("2024-03-05", "09:00", "10:00"))
    assert r.status_code == 403 and code(r) == "ErrorAccessDenied"
    # the calendar's owner still edits it in Outlook, and delta sees that
    _, link, _ = ann.delta_round(delta_path(graph_fake, shared), WINDOW)
    theirs = graph_fake.add_event(ANN, shared, subject="theirs", **timed("2024-03-05", "09:00", "10:00"))
    graph_fake.update_event(ANN, theirs["id"], subject="theirs, moved", start=datetime(2024, 3, 5, 11),
                            end=datetime(2024, 3, 5, 12))
    entries, _, _ = ann.delta_round(link)
    assert [(e["subject"], e["start"]["dateTime"]) for e in entries] == [("theirs, moved", "2024-03-05T11:00:00.0000000")]
    assert ann.patch(f"/me/events/{theirs['id']}", {"subject": "mine"}).status_code == 403
    meeting = ann.post("/me/events", {"subject": "m", **timed("2024-03-05", "09:00", "10:00"),
                                      "attendees": [{"emailAddress": {"address": BOB}, "type": "required"}],
                                      "isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}).json()
    assert meeting["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/")
    assert [i["attendees"] for i in graph_fake.invitations] == [[BOB]]
    ann.delete(f"/me/events/{meeting['id']}")
    assert [c["event_id"] for c in graph_fake.cancellations] == [meeting["id"]]


def test_personal_accounts_get_no_teams_link(graph_fake, ms_directory):  # noqa: F811
    ms_directory.add_user("joe@outlook.com", personal=True)
    joe = Client(graph_fake, "joe@outlook.com")
    made = joe.post("/me/events", {**timed("2024-03-05", "09:00", "10:00"), "isOnlineMeeting": True,
                                   "onlineMeetingProvider": "teamsForBusiness"}).json()
    assert made["onlineMeeting"] is None


def test_find_by_extended_property_and_expand_it(graph_fake, ann):  # noqa: F811
    cal = graph_fake.default_calendar(ANN)
    made = ann.post(f"/me/calendars/{cal}/events", {**timed("2024-03-05", "09:00", "10:00"),
                                                    "singleValueExtendedProperties": [{"id": MARKER, "value": "Src-9"}]})
    graph_fake.add_event(ANN, cal, **timed("2024-03-06", "09:00", "10:00"))
    flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{MARKER}' and ep/value eq 'src-9')"
    found = ann.get(f"/me/calendars/{cal}/events", params={"$filter": flt}).json()["value"]
    assert [e["id"] for e in found] == [made.json()["id"]]
    plain = ann.get(f"/me/events/{made.json()['id']}").json()
    assert "singleValueExtendedProperties" not in plain
    expanded = ann.get(f"/me/events/{made.json()['id']}",
                       params={"$expand": f"singleValueExtendedProperties($filter=id eq '{MARKER}')"}).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": MARKER, "value": "Src-9"}]
    assert ann.get(f"/me/calendars/{cal}/events", params={"$filter": "subject eq 'x'"}).status_code == 400


# ---- recurrence and zones ------------------------------------------------------------------
def daily_series(days: int = 6, start: str = "2024-03-28") -> dict:
    end = (datetime.fromisoformat(start) + timedelta(days=days - 1)).date().isoformat()
    return {"subject": "standup", **timed(start, "09:00", "09:30", WET),
            "recurrence": {"pattern": {"type": "daily", "interval": 1},
                           "range": {"type": "endDate", "startDate": start, "endDate": end}}}


def test_series_keeps_nine_local_across_the_dst_change(graph_fake, ann):  # noqa: F811
    master = ann.post("/me/events", daily_series()).json()
    assert master["type"] == "seriesMaster"
    utc = ann.get("/me/calendarView", params=WINDOW).json()["value"]
    assert [e["start"]["dateTime"][:16] for e in utc] == [
        "2024-03-28T08:00", "2024-03-29T08:00", "2024-03-30T08:00",
        "2024-03-31T07:00", "2024-04-01T07:00", "2024-04-02T07:00"]
    assert {e["type"] for e in utc} == {"occurrence"} and {e["seriesMasterId"] for e in utc} == {master["id"]}
    assert utc[3]["originalStart"] == "2024-03-31T07:00:00Z"
    local = Client(graph_fake, tz=WET).get("/me/calendarView", params=WINDOW).json()["value"]
    assert {e["start"]["dateTime"][11:16] for e in local} == {"09:00"}
    assert {e["start"]["timeZone"] for e in local} == {WET}
    assert len({e["id"] for e in local}) == 6 and len({e["iCalUId"] for e in local}) == 6


def test_moved_and_cancelled_occurrences(graph_fake, ann):  # noqa: F811
    master = ann.post("/me/events", daily_series(days=3, start="2024-03-04")).json()
    _, link, _ = ann.delta_round(delta_path(graph_fake), WINDOW)
    original = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
    graph_fake.move_occurrence(ANN, master["id"], original, datetime(2024, 3, 5, 14, 0, tzinfo=UTC),
                               datetime(2024, 3, 5, 15, 0, tzinfo=UTC))
    graph_fake.cancel_occurrence(ANN, master["id"], datetime(2024, 3, 6, 8, 0, tzinfo=UTC))
    view = ann.get("/me/calendarView", params=WINDOW).json()["value"]
    assert [(e["type"], e["start"]["dateTime"][:16]) for e in view] == [
        ("occurrence", "2024-03-04T08:00"), ("exception", "2024-03-05T14:00")]
    moved = view[1]
    assert moved["id"] == graph_fake.occurrence_id(master["id"], original)
    assert moved["originalStart"] == "2024-03-05T08:00:00Z"
    entries, _, _ = ann.delta_round(link)
    cancelled = graph_fake.occurrence_id(master["id"], datetime(2024, 3, 6, 8, 0, tzinfo=UTC))
    assert {"@odata.type": "#microsoft.graph.event", "id": cancelled, "@removed": {"reason": "deleted"}} in entries
    assert moved["id"] in {e["id"] for e in entries if "@removed" not in e}
    # patching an occurrence id over HTTP makes it an exception, deleting it a second time is 404
    first = graph_fake.occurrence_id(master["id"], datetime(2024, 3, 4, 8, 0, tzinfo=UTC))
    assert ann.patch(f"/me/events/{first}", {"subject": "special"}).json()["type"] == "exception"
    assert ann.delete(f"/me/events/{cancelled}").status_code == 404


def test_prefer_timezone_converts_start_and_end(graph_fake, ann):  # noqa: F811
    made = ann.post("/me/events", timed("2024-07-01", "09:00", "10:00", WET)).json()
    assert made["start"] == {"dateTime": "2024-07-01T07:00:00.0000000", "timeZone": "UTC"}
    assert made["originalStartTimeZone"] == WET
    ny = Client(graph_fake, tz="America/New_York").get(f"/me/events/{made['id']}").json()
    assert ny["start"] == {"dateTime": "2024-07-01T03:00:00.0000000", "timeZone": "America/New_York"}
    r = ann.post("/me/events", timed("2024-07-01", "09:00", "10:00", "Mars Standard Time"))
    assert r.status_code == 400


def test_calendar_view_refuses_more_than_1825_days(graph_fake, ann):  # noqa: F811
    r = ann.get("/me/calendarView", params={"startDateTime": "2024-01-01T00:00:00Z",
                                            "endDateTime": "2029-01-02T00:00:00Z"})
    assert r.status_code == 400 and "Maximum number of days: 1825" in r.json()["error"]["message"]


# ---- permissions and tokens ----------------------------------------------------------------
def test_read_basic_hides_body_and_cannot_write(graph_fake, ann):  # noqa: F811
    graph_fake.add_event(ANN, None, subject="dentist", body={"contentType": "text", "content": "secret"},
                         singleValueExtendedProperties=[{"id": MARKER, "value": "x"}],
                         **timed("2024-03-05", "09:00", "10:00"))
    basic = Client(graph_fake, scopes=("Calendars.ReadBasic", "User.Read"))
    seen = basic.get("/me/calendarView", params=WINDOW).json()["value"][0]
    assert seen["subject"] == "dentist" and "body" not in seen and "bodyPreview" not in seen
    expanded = basic.get(f"/me/events/{seen['id']}",
                         params={"$expand": f"singleValueExtendedProperties($filter=id eq '{MARKER}')"}).json()
    assert "singleValueExtendedProperties" not in expanded
    full = ann.get(f"/me/events/{seen['id']}").json()
    assert full["body"]["content"] == "secret"
    r = basic.post("/me/events", timed("2024-03-06", "09:00", "10:00"))
    assert r.status_code == 403 and code(r) == "ErrorAccessDenied"
    assert len(graph_fake.events(ANN)) == 1


def test_revoked_or_missing_token_is_401(graph_fake, ann, ms_directory):  # noqa: F811
    assert ann.get("/me").json()["mail"] == ANN
    ms_directory.revoke(ANN)
    r = ann.get("/me/calendars")
    assert r.status_code == 401 and code(r) == "InvalidAuthenticationToken"
    assert requests.get(graph_fake.endpoint + "/me", timeout=10).status_code == 401


# ---- getSchedule ---------------------------------------------------------------------------
def schedule(start: str, end: str, who=(ANN,), interval: int = 60) -> dict:
    return {"schedules": list(who), "startTime": {"dateTime": start, "timeZone": "UTC"},
            "endTime": {"dateTime": end, "timeZone": "UTC"}, "availabilityViewInterval": interval}


def test_get_schedule_covers_all_calendars_and_its_limits(graph_fake, ann, ms_directory):  # noqa: F811
    other = graph_fake.add_calendar(ANN, "Private")
    graph_fake.add_event(ANN, None, showAs="busy", **timed("2024-03-05", "09:00", "10:00"))
    graph_fake.add_event(ANN, other, showAs="oof", **timed("2024-03-05", "11:00", "12:00"))
    graph_fake.add_event(ANN, other, showAs="free", **timed("2024-03-05", "10:00", "11:00"))
    r = ann.post("/me/calendar/getSchedule", schedule("2024-03-05T08:00:00", "2024-03-05T13:00:00"))
    assert r.status_code == 200, r.text
    info = r.json()["value"][0]
    assert info["scheduleId"] == ANN and info["availabilityView"] == "02030"
    assert [(i["status"], i["start"]["dateTime"][11:16]) for i in info["scheduleItems"]] == [
        ("busy", "09:00"), ("oof", "11:00")]
    too_long = ann.post("/me/calendar/getSchedule", schedule("2024-03-01T00:00:00", "2024-05-03T00:00:00"))
    assert too_long.status_code == 400 and code(too_long) == "ErrorTimeIntervalTooBig"
    many = ann.post("/me/calendar/getSchedule", schedule("2024-03-05T08:00:00", "2024-03-05T09:00:00",
                                                         who=[f"u{n}@contoso.com" for n in range(101)]))
    assert many.status_code == 400 and code(many) == "ErrorMailboxDataArrayTooBig"
    basic = Client(graph_fake, scopes=("Calendars.ReadBasic", "User.Read"))
    assert basic.post("/me/calendar/getSchedule", schedule("2024-03-05T08:00:00", "2024-03-05T09:00:00")) \
        .status_code == 403
    ms_directory.add_user("joe@outlook.com", personal=True)
    joe = Client(graph_fake, "joe@outlook.com")
    r = joe.post("/me/calendar/getSchedule", schedule("2024-03-05T08:00:00", "2024-03-05T09:00:00",
                                                      who=["joe@outlook.com"]))
    assert r.status_code == 403 and code(r) == "ErrorAccessDenied"


# ---- $batch, throttling, faults ------------------------------------------------------------
def batch_of(n: int, prefer: str = 'IdType="ImmutableId"') -> dict:
    return {"requests": [{"id": str(i), "method": "POST", "url": "/me/events",
                          "headers": {"Content-Type": "application/json", "Prefer": prefer},
                          "body": {"subject": f"b{i}", "transactionId": f"tx-{i}",
                                   **timed("2024-03-05", "09:00", "10:00")}} for i in range(n)]}


def test_batch_of_20_and_no_more_and_member_faults(graph_fake, ann):  # noqa: F811
    r = ann.post("/$batch", batch_of(21))
    assert r.status_code == 400 and graph_fake.events(ANN) == []
    graph_fake.fail_next(2, status=429, retry_after="3", path_contains="/me/events")
    r = ann.post("/$batch", batch_of(20))
    assert r.status_code == 200
    responses = {m["id"]: m for m in r.json()["responses"]}
    assert [responses[str(i)]["status"] for i in range(3)] == [429, 429, 201]
    assert responses["0"]["headers"]["Retry-After"] == "3"
    assert len(graph_fake.events(ANN)) == 18  # a faulted create creates nothing
    members = [q for q in graph_fake.requests if q.in_batch]
    assert len(members) == 20 and all(q.headers["prefer"] == 'IdType="ImmutableId"' for q in members)
    r = ann.post("/$batch", batch_of(20))  # the retry: transactionIds make nothing twice
    assert {m["status"] for m in r.json()["responses"]} == {201} and len(graph_fake.events(ANN)) == 20


def test_fifth_concurrent_request_gets_429_with_retry_after(graph_fake, ann):  # noqa: F811
    graph_fake.slow = 0.4
    results: list[requests.Response] = []
    barrier = threading.Barrier(5)

    def one() -> None:
        barrier.wait()
        results.append(ann.s.get(graph_fake.endpoint + "/me/calendars", timeout=10))

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [r for r in results if r.status_code == 429]
    assert len(refused) == 1 and sum(r.status_code == 200 for r in results) == 4
    assert refused[0].headers["Retry-After"] == "1"
    assert refused[0].json()["error"] == {**refused[0].json()["error"], "code": "ApplicationThrottled",
                                          "message": "Application is over its MailboxConcurrency limit."}
    assert graph_fake.peak_in_flight[ANN] == 5


def test_fault_rate_is_deterministic_per_seed(graph_fake, ann):  # noqa: F811
    def run() -> list[int]:
        graph_fake.fault_rate(0.5, statuses=(429, 503), seed=7)
        return [ann.get("/me/calendars").status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second and {429, 503} & set(first) and 200 in first
    graph_fake.fault_rate(0)
    assert {ann.get("/me").status_code for _ in range(5)} == {200}


def test_request_log_keeps_prefer_but_not_the_token(graph_fake, ann):  # noqa: F811
    ann.get("/me/calendars")
    record = graph_fake.requests[-1]
    assert record.path == "/me/calendars" and record.status == 200 and not record.in_batch
    assert 'IdType="ImmutableId"' in record.headers["prefer"] and "authorization" not in record.headers


def test_preferences_in_separate_prefer_headers_are_all_applied(graph_fake, ann):  # noqa: F811
    made = graph_fake.add_event(ANN, None, **timed("2024-07-01", "09:00", "10:00"))
    conn = http.client.HTTPConnection("127.0.0.1", int(graph_fake.url.rsplit(":", 1)[1]), timeout=10)
    conn.putrequest("GET", f"/v1.0/me/events/{made['id']}")
    conn.putheader("Authorization", ann.s.headers["Authorization"])
    conn.putheader("Prefer", 'IdType="ImmutableId"')
    conn.putheader("Prefer", f'outlook.timezone="{WET}"')
    conn.endheaders()
    body = json.loads(conn.getresponse().read())
    conn.close()
    assert body["start"] == {"dateTime": "2024-07-01T11:00:00.0000000", "timeZone": WET}


def test_calendars_and_calendar_view_page_by_next_link(graph_fake, ann):  # noqa: F811
    for name in ("B", "A"):
        graph_fake.add_calendar(ANN, name)
    first = ann.get("/me/calendars", params={"$top": "2"}).json()
    assert [c["name"] for c in first["value"]] == ["Calendar", "A"] and first["value"][0]["isDefaultCalendar"]
    rest = ann.get(first["@odata.nextLink"]).json()
    assert [c["name"] for c in rest["value"]] == ["B"] and "@odata.nextLink" not in rest
    assert ann.get("/me/calendar").json()["id"] == graph_fake.default_calendar(ANN)
    for n in range(3):
        graph_fake.add_event(ANN, None, subject=f"e{n}", **timed(f"2024-03-1{n}", "09:00", "10:00"))
    page = Client(graph_fake, page=2).get("/me/calendarView", params=WINDOW).json()
    assert [e["subject"] for e in page["value"]] == ["e0", "e1"]
    assert [e["subject"] for e in ann.get(page["@odata.nextLink"]).json()["value"]] == ["e2"]
    assert [e["subject"] for e in graph_fake.instances(ANN, None, datetime(2024, 3, 11), datetime(2024, 4, 1))] \
        == ["e1", "e2"]
