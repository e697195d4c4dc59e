"""The Google fake behaves as Google documents, seen through the real client libraries.

Every test talks to the fake over loopback HTTP with google-api-python-client, google-auth
(refresh through the token endpoint) and google-auth-oauthlib (the consent/code flow), the way
homecal's production code does, so a difference between the fake and provider-facts.md §1
shows up here before it misleads a sync test.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import google_auth_httplib2
import httplib2
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from tests.fakes.google_api import GoogleFake, google_fake_fixture  # noqa: F401

ANN = "ann@example.com"
RW = ["calendar.events", "calendar.calendarlist.readonly"]
P = "https://www.googleapis.com/auth/"


def client(fake: GoogleFake, email: str = ANN, scopes: list[str] = RW):
    """(service, credentials) for a user who consented to `scopes`."""
    t = fake.issue_tokens(email, scopes)
    creds = Credentials(t["token"], refresh_token=t["refresh_token"], token_uri=fake.token_uri,
                        client_id=fake.client_id, client_secret=fake.client_secret)
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    svc = build("calendar", "v3", http=http, client_options={"api_endpoint": fake.url},
                static_discovery=True, cache_discovery=False)
    return svc, creds


def reasons(err: HttpError) -> list[str]:
    return [d.get("reason") for d in err.error_details] if isinstance(err.error_details, list) else []


def fails(call, status: int, reason: str) -> HttpError:
    with pytest.raises(HttpError) as info:
        call.execute()
    assert info.value.resp.status == status, info.value
    assert reasons(info.value) == [reason], info.value.error_details
    return info.value


def timed(day: str, start: str, end: str, tz: str = "Europe/Berlin", **extra) -> dict:
    return {"start": {"dateTime": f"{day}T{start}:00", "timeZone": tz},
            "end": {"dateTime": f"{day}T{end}:00", "timeZone": tz}, **extra}


def list_all(svc, cal: str, **params) -> tuple[list[dict], list[dict]]:
    """(items, pages) of a listing followed to its end."""
    items, pages, token = [], [], None
    while True:
        page = svc.events().list(calendarId=cal, pageToken=token, **params).execute()
        pages.append(page)
        items += page["items"]
        token = page.get("nextPageToken")
        if not token:
            return items, pages


@pytest.fixture
def fake(google_fake: GoogleFake) -> GoogleFake:
    google_fake.add_user(ANN)
    return google_fake


# ---- calendar list ------------------------------------------------------------------------
def test_calendar_list_marks_only_the_primary_and_pages(fake):
    fake.add_calendar(ANN, summary="Work")
    fake.add_calendar(ANN, summary="Family", access_role="reader")
    svc, _ = client(fake)
    first = svc.calendarList().list(maxResults=2).execute()
    second = svc.calendarList().list(maxResults=2, pageToken=first["nextPageToken"]).execute()
    entries = first["items"] + second["items"]
    assert "nextPageToken" not in second
    assert [e.get("primary", False) for e in entries] == [True, False, False]
    assert entries[0]["id"] == ANN and entries[2]["accessRole"] == "reader"


# ---- listing, paging, sync tokens ---------------------------------------------------------
def test_next_sync_token_only_on_the_last_page_and_empty_pages_are_not_the_end(fake):
    for i in range(5):
        fake.put_event(ANN, timed("2026-12-01", f"1{i}:00", f"1{i}:30", summary=f"e{i}"))
    fake.empty_pages = True
    svc, _ = client(fake)
    items, pages = list_all(svc, ANN, maxResults=2)
    assert sorted(e["summary"] for e in items) == [f"e{i}" for i in range(5)]
    assert all("nextSyncToken" not in p and "nextPageToken" in p for p in pages[:-1])
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]
    assert any(not p["items"] for p in pages[:-1]), "no empty page before the end"
    assert max(len(p["items"]) for p in pages) == 2


def test_sync_token_delta_has_changes_and_deletions_only(fake):
    svc, _ = client(fake)
    keep = fake.put_event(ANN, timed("2026-12-01", "09:00", "10:00", summary="keep"))
    edit = fake.put_event(ANN, timed("2026-12-02", "09:00", "10:00", summary="edit"))
    gone = svc.events().insert(calendarId=ANN, body=timed("2026-12-03", "09:00", "10:00", summary="gone")).execute()
    _, pages = list_all(svc, ANN)
    token = pages[-1]["nextSyncToken"]

    fake.put_event(ANN, {**edit, "summary": "edited"})
    svc.events().delete(calendarId=ANN, eventId=gone["id"]).execute()
    new = svc.events().insert(calendarId=ANN, body=timed("2026-12-04", "09:00", "10:00", summary="new")).execute()
    items, pages = list_all(svc, ANN, syncToken=token)
    by_id = {e["id"]: e for e in items}
    assert set(by_id) == {edit["id"], gone["id"], new["id"]}
    assert keep["id"] not in by_id
    assert by_id[edit["id"]]["summary"] == "edited"
    assert by_id[gone["id"]]["status"] == "cancelled" and "summary" not in by_id[gone["id"]]
    again, _ = list_all(svc, ANN, syncToken=pages[-1]["nextSyncToken"])
    assert again == []


def test_rejected_sync_tokens(fake):
    svc, _ = client(fake)
    _, pages = list_all(svc, ANN)
    token = pages[-1]["nextSyncToken"]
    fails(svc.events().list(calendarId=ANN, syncToken=token, timeMin="2026-12-01T00:00:00Z"),
          400, "syncTokenWithRequestRestrictions")
    fails(svc.events().list(calendarId=ANN, syncToken="1" + token), 410, "fullSyncRequired")
    svc.events().list(calendarId=ANN, syncToken=token).execute()  # still good
    fake.invalidate_sync_tokens(ANN)
    fails(svc.events().list(calendarId=ANN, syncToken=token), 410, "fullSyncRequired")


def test_time_window_lists_overlapping_events_and_series(fake):
    svc, _ = client(fake)
    fake.put_event(ANN, timed("2026-12-01", "09:00", "10:00", summary="before"))
    fake.put_event(ANN, timed("2026-12-07", "23:00", "23:59", summary="inside"))
    fake.put_event(ANN, timed("2026-11-02", "09:00", "10:00", summary="weekly", recurrence=["RRULE:FREQ=WEEKLY"]))
    fake.put_event(ANN, timed("2026-11-03", "09:00", "10:00", summary="ended",
                              recurrence=["RRULE:FREQ=DAILY;COUNT=3"]))
    items, _ = list_all(svc, ANN, timeMin="2026-12-07T00:00:00Z", timeMax="2026-12-08T00:00:00Z")
    assert sorted(e["summary"] for e in items) == ["inside", "weekly"]


def test_filters_and_ordering(fake):
    svc, _ = client(fake)
    late = fake.put_event(ANN, timed("2026-12-03", "09:00", "10:00", summary="Dentist", iCalUID="uid-1@x"))
    early = fake.put_event(ANN, timed("2026-12-01", "09:00", "10:00", summary="Lunch with Bob"))
    assert [e["id"] for e in svc.events().list(calendarId=ANN, q="bob").execute()["items"]] == [early["id"]]
    assert [e["id"] for e in svc.events().list(calendarId=ANN, iCalUID="uid-1@x").execute()["items"]] == [late["id"]]
    ordered = svc.events().list(calendarId=ANN, singleEvents=True, orderBy="startTime").execute()["items"]
    assert [e["id"] for e in ordered] == [early["id"], late["id"]]
    fails(svc.events().list(calendarId=ANN, orderBy="startTime"), 400, "invalid")
    fake.delete_event(ANN, early["id"])
    since = svc.events().list(calendarId=ANN, updatedMin=late["updated"]).execute()["items"]
    assert {e["id"]: e["status"] for e in since} == {late["id"]: "confirmed", early["id"]: "cancelled"}


# ---- writes -------------------------------------------------------------------------------
def test_client_ids_duplicates_and_deleted_ids(fake):
    svc, _ = client(fake)
    body = timed("2026-12-01", "09:00", "10:00", id="homecal0001abc")
    made = svc.events().insert(calendarId=ANN, body=body, sendUpdates="none").execute()
    assert made["id"] == "homecal0001abc" and made["iCalUID"] == "homecal0001abc@google.com"
    assert made["etag"].startswith('"') and made["sequence"] == 0 and made["status"] == "confirmed"
    assert made["organizer"]["email"] == ANN
    assert [r.query.get("sendUpdates") for r in fake.requests if r.method == "POST"] == ["none"]
    fails(svc.events().insert(calendarId=ANN, body=body), 409, "duplicate")
    fails(svc.events().insert(calendarId=ANN, body={**body, "id": "Has_Upper"}), 400, "invalid")
    fails(svc.events().insert(calendarId=ANN, body={**body, "id": "abc"}), 400, "invalid")

    assert svc.events().delete(calendarId=ANN, eventId=made["id"]).execute() == ""
    fails(svc.events().delete(calendarId=ANN, eventId=made["id"]), 410, "deleted")
    fails(svc.events().insert(calendarId=ANN, body=body), 409, "duplicate")
    fails(svc.events().update(calendarId=ANN, eventId=made["id"], body=body), 403, "forbidden")
    fails(svc.events().patch(calendarId=ANN, eventId=made["id"], body={"summary": "x"}), 403, "forbidden")
    assert svc.events().get(calendarId=ANN, eventId=made["id"]).execute()["status"] == "cancelled"
    fails(svc.events().get(calendarId=ANN, eventId="nosuchevent1"), 404, "notFound")
    fails(svc.events().delete(calendarId=ANN, eventId="nosuchevent1"), 404, "notFound")

    restored = svc.events().patch(calendarId=ANN, eventId=made["id"], body={"status": "confirmed"}).execute()
    assert restored["status"] == "confirmed"
    assert [e["id"] for e in fake.events(ANN)] == [made["id"]]


def test_if_match_guards_writes(fake):
    svc, _ = client(fake)
    made = svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00")).execute()
    fake.put_event(ANN, {**made, "summary": "changed in Google"})
    stale = svc.events().patch(calendarId=ANN, eventId=made["id"], body={"summary": "mine"})
    stale.headers["If-Match"] = made["etag"]
    fails(stale, 412, "conditionNotMet")
    current = fake.event(ANN, made["id"])["etag"]
    fresh = svc.events().patch(calendarId=ANN, eventId=made["id"], body={"summary": "mine"})
    fresh.headers["If-Match"] = current
    after = fresh.execute()
    assert after["summary"] == "mine" and after["etag"] != current


def test_patch_merges_extended_properties_and_update_replaces(fake):
    svc, _ = client(fake)
    body = timed("2026-12-01", "09:00", "10:00", summary="s", location="here",
                 extendedProperties={"private": {"homecal.v": "1", "homecal.src": "abc"}})
    made = svc.events().insert(calendarId=ANN, body=body).execute()
    patched = svc.events().patch(calendarId=ANN, eventId=made["id"], body={
        "summary": "t", "extendedProperties": {"private": {"homecal.kind": "busy", "homecal.src": None}}}).execute()
    assert patched["extendedProperties"]["private"] == {"homecal.v": "1", "homecal.kind": "busy"}
    assert patched["location"] == "here" and patched["summary"] == "t"
    found = svc.events().list(calendarId=ANN, privateExtendedProperty=["homecal.v=1", "homecal.kind=busy"]).execute()
    assert [e["id"] for e in found["items"]] == [made["id"]]
    none = svc.events().list(calendarId=ANN, privateExtendedProperty=["homecal.v=1", "homecal.kind=clone"]).execute()
    assert none["items"] == []
    replaced = svc.events().update(calendarId=ANN, eventId=made["id"],
                                   body=timed("2026-12-01", "09:00", "11:00", summary="u")).execute()
    assert "extendedProperties" not in replaced and "location" not in replaced
    assert replaced["id"] == made["id"] and replaced["iCalUID"] == made["iCalUID"]


def test_meet_link_only_with_conference_data_version(fake):
    svc, _ = client(fake)
    req = {"conferenceData": {"createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}}
    with_meet = svc.events().insert(calendarId=ANN, conferenceDataVersion=1,
                                    body=timed("2026-12-01", "09:00", "10:00", **req)).execute()
    assert with_meet["conferenceData"]["entryPoints"][0]["uri"].startswith("https://meet.google.com/")
    assert with_meet["hangoutLink"].startswith("https://meet.google.com/")
    without = svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00", **req)).execute()
    assert "conferenceData" not in without and "hangoutLink" not in without


# ---- recurrence ---------------------------------------------------------------------------
def test_single_events_keep_local_time_across_dst(fake):
    svc, _ = client(fake)
    master = fake.put_event(ANN, timed("2026-03-16", "09:00", "10:00", summary="standup",
                                       recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20260414T000000Z"]))
    items, _ = list_all(svc, ANN, singleEvents=True, orderBy="startTime",
                        timeMin="2026-03-01T00:00:00Z", timeMax="2026-05-01T00:00:00Z")
    starts = [datetime.fromisoformat(e["start"]["dateTime"]) for e in items]
    berlin = [s.astimezone(ZoneInfo("Europe/Berlin")) for s in starts]
    assert [(b.month, b.day, b.hour) for b in berlin] == [(3, 16, 9), (3, 23, 9), (3, 30, 9), (4, 6, 9), (4, 13, 9)]
    assert [s.utcoffset().total_seconds() / 3600 for s in starts] == [1, 1, 2, 2, 2]
    assert items[2]["id"] == master["id"] + "_20260330T070000Z"
    assert {e["recurringEventId"] for e in items} == {master["id"]}
    assert {e["iCalUID"] for e in items} == {master["iCalUID"]}
    assert all("recurrence" not in e for e in items)


def test_cancelled_exception_of_a_live_series(fake):
    svc, _ = client(fake)
    master = svc.events().insert(calendarId=ANN, body=timed(
        "2026-12-07", "09:00", "10:00", summary="daily", recurrence=["RRULE:FREQ=DAILY;COUNT=4"])).execute()
    instance = f"{master['id']}_20261208T080000Z"
    svc.events().delete(calendarId=ANN, eventId=instance).execute()

    masters, _ = list_all(svc, ANN)  # showDeleted and singleEvents both false
    by_id = {e["id"]: e for e in masters}
    assert set(by_id) == {master["id"], instance}
    assert by_id[instance]["status"] == "cancelled"
    assert by_id[instance]["recurringEventId"] == master["id"] and "originalStartTime" in by_id[instance]

    singles, _ = list_all(svc, ANN, singleEvents=True)
    assert [e["start"]["dateTime"][:10] for e in singles] == ["2026-12-07", "2026-12-09", "2026-12-10"]
    with_deleted, _ = list_all(svc, ANN, singleEvents=True, showDeleted=True)
    assert instance in {e["id"] for e in with_deleted}

    # deleting the master cancels the series; a delta shows master and exception cancelled
    _, pages = list_all(svc, ANN)
    token = pages[-1]["nextSyncToken"]
    svc.events().delete(calendarId=ANN, eventId=master["id"]).execute()
    delta, _ = list_all(svc, ANN, syncToken=token)
    assert {e["id"]: e["status"] for e in delta} == {master["id"]: "cancelled"}
    assert list_all(svc, ANN)[0] == []


def test_instances_with_an_exception(fake):
    svc, _ = client(fake)
    master = svc.events().insert(calendarId=ANN, body=timed(
        "2026-12-07", "09:00", "10:00", summary="daily", recurrence=["RRULE:FREQ=DAILY;COUNT=3"])).execute()
    second = f"{master['id']}_20261208T080000Z"
    moved = svc.events().patch(calendarId=ANN, eventId=second, body={"summary": "moved",
                               **timed("2026-12-08", "15:00", "16:00")}).execute()
    assert moved["recurringEventId"] == master["id"]
    third = f"{master['id']}_20261209T080000Z"
    svc.events().delete(calendarId=ANN, eventId=third).execute()

    listed = svc.events().instances(calendarId=ANN, eventId=master["id"]).execute()["items"]
    assert [(e["id"], e.get("summary")) for e in listed] == [
        (f"{master['id']}_20261207T080000Z", "daily"), (second, "moved")]
    assert listed[1]["start"]["dateTime"].startswith("2026-12-08T15:00")
    everything = svc.events().instances(calendarId=ANN, eventId=master["id"], showDeleted=True).execute()["items"]
    assert [e["status"] for e in everything] == ["confirmed", "confirmed", "cancelled"]
    late = svc.events().instances(calendarId=ANN, eventId=master["id"], timeMin="2026-12-08T12:00:00Z").execute()
    assert [e["id"] for e in late["items"]] == [second]


# ---- free/busy ----------------------------------------------------------------------------
def test_free_busy_merges_clips_and_limits(fake):
    work = fake.add_calendar(ANN, summary="Work")
    fake.put_event(ANN, timed("2026-12-01", "09:00", "10:00"))
    fake.put_event(ANN, timed("2026-12-01", "09:30", "11:00"))
    fake.put_event(ANN, timed("2026-12-01", "12:00", "13:00", transparency="transparent"))
    fake.put_event(ANN, timed("2026-12-01", "00:30", "01:30"))  # 23:30Z the day before: clipped
    fake.put_event(work, timed("2026-11-27", "14:00", "15:00", recurrence=["RRULE:FREQ=WEEKLY"]))
    gone = fake.put_event(ANN, timed("2026-12-01", "16:00", "17:00"))
    fake.delete_event(ANN, gone["id"])
    body = {"timeMin": "2026-12-01T00:00:00Z", "timeMax": "2026-12-05T00:00:00Z",
            "items": [{"id": ANN}, {"id": work}, {"id": "bob@example.com"}]}
    read_write, _ = client(fake)  # calendar.events does not cover freebusy.query
    fails(read_write.freebusy().query(body=body), 403, "insufficientPermissions")
    svc, _ = client(fake, scopes=["calendar.events.freebusy"])
    answer = svc.freebusy().query(body=body).execute()
    assert answer["calendars"][ANN] == {"busy": [{"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T00:30:00Z"},
                                                 {"start": "2026-12-01T08:00:00Z", "end": "2026-12-01T10:00:00Z"}]}
    assert answer["calendars"][work]["busy"] == [{"start": "2026-12-04T13:00:00Z", "end": "2026-12-04T14:00:00Z"}]
    assert answer["calendars"]["bob@example.com"]["errors"] == [{"domain": "global", "reason": "notFound"}]

    clipped = svc.freebusy().query(body={**body, "timeMin": "2026-12-01T09:00:00Z", "items": [{"id": ANN}]}).execute()
    assert clipped["calendars"][ANN]["busy"] == [{"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z"}]
    fails(svc.freebusy().query(body={**body, "items": [{"id": f"c{i}"} for i in range(51)]}),
          400, "tooManyCalendarsRequested")
    fails(svc.freebusy().query(body={**body, "timeMax": "2027-03-02T00:00:00Z"}), 400, "timeRangeTooLong")
    fails(svc.freebusy().query(body={**body, "timeMax": body["timeMin"]}), 400, "timeRangeEmpty")


# ---- batch --------------------------------------------------------------------------------
def test_batch_of_inserts_with_one_duplicate(fake):
    svc, _ = client(fake)
    svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00", id="dup00000")).execute()
    fake.reset_counts()
    results: dict[str, tuple] = {}

    def done(request_id, response, exception):
        results[request_id] = (response, exception)

    batch = BatchHttpRequest(callback=done, batch_uri=fake.batch_uri)
    for i in range(60):
        event_id = "dup00000" if i == 30 else f"batch{i:05d}"
        batch.add(svc.events().insert(calendarId=ANN, body=timed("2026-12-02", "09:00", "10:00", id=event_id)),
                  request_id=str(i))
    batch.execute()
    failed = {k: e for k, (_, e) in results.items() if e is not None}
    assert list(failed) == ["30"] and failed["30"].resp.status == 409 and reasons(failed["30"]) == ["duplicate"]
    assert results["0"][0]["id"] == "batch00000"
    assert fake.http_requests == 1 and fake.api_calls == 60
    assert all(r.batch_member for r in fake.requests if r.path.startswith("/calendars"))
    assert len(fake.events(ANN)) == 60


def test_batch_members_fail_on_their_own(fake):
    svc, _ = client(fake)
    fake.fail_next(503, "backendError", path_contains="/events/aaa00000")
    results = {}
    # (svc.new_batch_http_request() would ignore api_endpoint and go to www.googleapis.com)
    batch = BatchHttpRequest(callback=lambda rid, resp, exc: results.update({rid: exc}), batch_uri=fake.batch_uri)
    for name in ("aaa00000", "bbb00000"):
        svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00", id=name)).execute()
        batch.add(svc.events().get(calendarId=ANN, eventId=name), request_id=name)
    batch.execute()
    assert results["bbb00000"] is None and results["aaa00000"].resp.status == 503


def test_batch_refreshes_an_expired_token_and_parses_deletes(fake):
    svc, _ = client(fake)
    ids = [f"del{i:05d}" for i in range(3)]
    for event_id in ids:
        svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00", id=event_id)).execute()
    fake.expire_access_tokens()
    results = {}
    batch = BatchHttpRequest(callback=lambda rid, resp, exc: results.update({rid: (resp, exc)}),
                             batch_uri=fake.batch_uri)
    for event_id in ids:
        batch.add(svc.events().delete(calendarId=ANN, eventId=event_id), request_id=event_id)
    batch.execute()
    assert all(exc is None for _, exc in results.values()), results
    assert fake.events(ANN) == []
    assert [r.path for r in fake.requests if r.path in ("/batch/calendar/v3", "/token")][-3:] == [
        "/batch/calendar/v3", "/token", "/batch/calendar/v3"]


def test_batch_of_more_than_1000_is_refused(fake):
    token = fake.issue_tokens(ANN, RW)["token"]
    member = ("--b\r\nContent-Type: application/http\r\nContent-ID: <x + {i}>\r\n\r\n"
              "GET /users/me/calendarList HTTP/1.1\r\n\r\n")
    body = "".join(member.format(i=i) for i in range(1001)) + "--b--\r\n"
    answer = requests.post(fake.batch_uri, data=body, timeout=10, headers={
        "Content-Type": "multipart/mixed; boundary=b", "Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert fake.api_calls == 0
    small = requests.post(fake.batch_uri, data="".join(member.format(i=i) for i in range(2)) + "--b--\r\n",
                          timeout=10, headers={"Content-Type": "multipart/mixed; boundary=b",
                                               "Authorization": f"Bearer {token}"})
    assert small.status_code == 200 and small.text.count("HTTP/1.1 200 OK") == 2


# ---- scopes and access --------------------------------------------------------------------
def test_scopes_roles_and_the_availability_view(fake):
    fake.add_user("bob@example.com")
    shared = fake.add_calendar(ANN, summary="Bob's", access_role="reader", calendar_id="bob@example.com")
    fake.put_event(ANN, timed("2026-12-01", "09:00", "10:00", summary="secret", description="d",
                              attendees=[{"email": "x@example.com"}]))
    fb, _ = client(fake, scopes=["calendar.events.freebusy", "calendar.calendarlist.readonly"])
    items = fb.events().list(calendarId=ANN).execute()["items"]
    assert set(items[0]) <= {"kind", "etag", "id", "status", "start", "end", "transparency", "recurrence",
                             "recurringEventId", "originalStartTime", "iCalUID", "updated"}
    assert "start" in items[0] and "summary" not in items[0]
    fails(fb.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00")), 403,
          "insufficientPermissions")
    assert fb.freebusy().query(body={"timeMin": "2026-12-01T00:00:00Z", "timeMax": "2026-12-02T00:00:00Z",
                                     "items": [{"id": ANN}]}).execute()["calendars"][ANN]["busy"]

    no_list, _ = client(fake, scopes=["calendar.events"])
    fails(no_list.calendarList().list(), 403, "insufficientPermissions")
    rw, _ = client(fake)
    assert rw.events().list(calendarId=ANN).execute()["items"][0]["summary"] == "secret"
    fails(rw.events().insert(calendarId=shared, body=timed("2026-12-01", "09:00", "10:00")), 403,
          "requiredAccessLevel")
    fake.add_calendar("bob@example.com", summary="Ann's busy", access_role="freeBusyReader", calendar_id=ANN)
    bob, _ = client(fake, email="bob@example.com")
    assert "summary" not in bob.events().list(calendarId=ANN).execute()["items"][0]
    fails(bob.events().delete(calendarId=ANN, eventId=items[0]["id"]), 403, "requiredAccessLevel")
    fails(bob.events().list(calendarId=shared + "x"), 404, "notFound")
    fails(bob.events().list(calendarId="primary", syncToken="nonsense"), 410, "fullSyncRequired")


# ---- tokens -------------------------------------------------------------------------------
def test_expired_access_token_is_refreshed_by_the_library(fake):
    svc, creds = client(fake)
    old = creds.token
    fake.expire_access_tokens()
    fake.reset_counts()
    assert svc.calendarList().list().execute()["items"][0]["id"] == ANN
    assert creds.token != old and creds.refresh_token
    assert [(r.path, r.status) for r in fake.requests] == [
        ("/users/me/calendarList", 401), ("/token", 200), ("/users/me/calendarList", 200)]


def test_revoked_grant_gives_invalid_grant(fake):
    svc, _ = client(fake)
    fake.revoke(ANN)
    with pytest.raises(RefreshError) as info:
        svc.calendarList().list().execute()
    assert "invalid_grant" in str(info.value) and "expired or revoked" in str(info.value)


# ---- faults -------------------------------------------------------------------------------
def test_random_faults_are_the_listed_ones_and_some_writes_land(fake):
    svc, _ = client(fake)
    fake.fault_rate = 1.0
    fake.seed(7)
    seen, landed_by_status = set(), {}
    for i in range(60):
        event_id = f"fault{i:05d}"
        with pytest.raises(HttpError) as info:
            svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00", id=event_id)).execute()
        status = info.value.resp.status
        seen.add((status, reasons(info.value)[0]))
        landed_by_status.setdefault(status, []).append(fake.event(ANN, event_id) is not None)
    assert seen == {(403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, "rateLimitExceeded"),
                    (500, "backendError"), (503, "backendError")}
    # some 5xx struck after the write was applied (the response was lost), never a 4xx
    assert not any(landed_by_status[403] + landed_by_status[429])
    server_errors = landed_by_status[500] + landed_by_status[503]
    assert 0 < sum(server_errors) < len(server_errors)
    fake.fault_rate = 0.0
    landed = next(e for e in fake.events(ANN))
    fails(svc.events().insert(calendarId=ANN, body=timed("2026-12-01", "09:00", "10:00", id=landed["id"])),
          409, "duplicate")


def test_scripted_faults_quota_and_per_user_limit(fake):
    svc, _ = client(fake)
    fake.fail_next(403, "rateLimitExceeded", count=2, method="GET", path_contains="calendarList")
    svc.events().list(calendarId=ANN).execute()  # does not match
    fails(svc.calendarList().list(), 403, "rateLimitExceeded")
    fails(svc.calendarList().list(), 403, "rateLimitExceeded")
    svc.calendarList().list().execute()

    fake.quota_exceeded = True
    err = fails(svc.calendarList().list(), 403, "quotaExceeded")
    assert err.error_details[0]["domain"] == "usageLimits"
    fake.quota_exceeded = False

    fake.per_user_limit = 2
    svc.calendarList().list().execute()
    svc.calendarList().list().execute()
    fails(svc.calendarList().list(), 403, "userRateLimitExceeded")
    other, _ = client(fake, email="bob@example.com")
    other.calendarList().list().execute()


# ---- OAuth --------------------------------------------------------------------------------
def _flow(fake: GoogleFake, scopes: list[str], redirect: str = "http://127.0.0.1:8765/") -> Flow:
    config = {"installed": {"client_id": fake.client_id, "client_secret": fake.client_secret,
                            "auth_uri": fake.auth_uri, "token_uri": fake.token_uri,
                            "redirect_uris": ["http://127.0.0.1"]}}
    flow = Flow.from_client_config(config, scopes=scopes, autogenerate_code_verifier=True)
    flow.redirect_uri = redirect
    return flow


def _consent(url: str) -> dict[str, str]:
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


@pytest.fixture
def insecure_oauth(monkeypatch):
    """requests-oauthlib refuses http:// token endpoints unless told this is a test."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def test_oauth_code_flow_with_pkce(fake, insecure_oauth):
    fake.login_as = ANN
    flow = _flow(fake, [P + "calendar.events", P + "calendar.calendarlist.readonly"])
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    back = _consent(url)
    assert back["state"] == state
    token = flow.fetch_token(code=back["code"])
    assert token["refresh_token"] and token["expires_in"] == 3599
    creds = flow.credentials
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    svc = build("calendar", "v3", http=http, client_options={"api_endpoint": fake.url},
                static_discovery=True, cache_discovery=False)
    assert svc.calendarList().list().execute()["items"][0]["primary"] is True
    # the refresh grant keeps the scopes and gives no new refresh token
    refreshed = requests.post(fake.token_uri, timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "client_id": fake.client_id, "client_secret": fake.client_secret}).json()
    assert set(refreshed["scope"].split()) == {P + "calendar.events", P + "calendar.calendarlist.readonly"}
    assert "refresh_token" not in refreshed
    # the code is single use
    fails_again = requests.post(fake.token_uri, timeout=5, data={
        "grant_type": "authorization_code", "code": back["code"], "redirect_uri": flow.redirect_uri,
        "client_id": fake.client_id, "client_secret": fake.client_secret, "code_verifier": flow.code_verifier})
    assert fails_again.status_code == 400 and fails_again.json()["error"] == "invalid_grant"


def test_oauth_refusals(fake, insecure_oauth):
    fake.login_as = ANN
    flow = _flow(fake, [P + "calendar.events"])
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    code = _consent(url)["code"]
    flow.code_verifier = "x" * 64  # not the one the challenge was made from
    with pytest.raises(Exception, match="invalid_grant"):
        flow.fetch_token(code=code)

    wrong_redirect = _flow(fake, [P + "calendar.events"], redirect="https://evil.example/cb")
    answer = requests.get(wrong_redirect.authorization_url()[0], allow_redirects=False, timeout=5)
    assert answer.status_code == 400 and "redirect_uri_mismatch" in answer.text

    fake.deny_next = True
    assert _consent(flow.authorization_url()[0])["error"] == "access_denied"

    fake.grant_only = [P + "calendar.events"]
    partial = _flow(fake, [P + "calendar.events", P + "calendar.calendarlist.readonly", "openid", "email"])
    back = _consent(partial.authorization_url(access_type="offline", prompt="consent")[0])
    raw = requests.post(fake.token_uri, timeout=5, data={
        "grant_type": "authorization_code", "code": back["code"], "redirect_uri": partial.redirect_uri,
        "client_id": fake.client_id, "client_secret": fake.client_secret, "code_verifier": partial.code_verifier})
    # unticked calendarlist is missing; 'email' comes back under its long name, as Google does
    assert raw.json()["scope"].split() == [P + "calendar.events", "openid", P + "userinfo.email"]

    bad_secret = requests.post(fake.token_uri, timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": "x", "client_id": fake.client_id, "client_secret": "no"})
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"


def test_token_endpoint_faults_and_revocation(fake):
    tokens = fake.issue_tokens(ANN, RW)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": fake.client_id, "client_secret": fake.client_secret}
    fake.fail_next(503, "temporarily_unavailable", path_contains="/token")
    down = requests.post(fake.token_uri, data=form, timeout=5)
    assert down.status_code == 503 and down.json()["error"] == "temporarily_unavailable"
    assert requests.post(fake.token_uri, data=form, timeout=5).status_code == 200
    unknown = requests.get(fake.auth_uri, params={"client_id": "nobody", "redirect_uri": "http://127.0.0.1:1/"},
                           allow_redirects=False, timeout=5)
    assert unknown.status_code == 400 and "invalid_client" in unknown.text
    assert requests.post(fake.revoke_uri, data={"token": tokens["refresh_token"]}, timeout=5).status_code == 200
    revoked = requests.post(fake.token_uri, data=form, timeout=5)
    assert revoked.status_code == 400 and revoked.json() == {
        "error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    assert fake.token_requests == 3


def test_a_write_without_conference_version_keeps_the_conference(fake):
    svc, _ = client(fake)
    req = {"conferenceData": {"createRequest": {"requestId": "r2", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}}
    made = svc.events().insert(calendarId=ANN, conferenceDataVersion=1,
                               body=timed("2026-12-02", "09:00", "10:00", **req)).execute()
    other = svc.events().insert(calendarId=ANN, conferenceDataVersion=1,
                                body=timed("2026-12-03", "09:00", "10:00", **{"conferenceData": {"createRequest": {
                                    "requestId": "r3", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}})).execute()
    assert made["hangoutLink"] != other["hangoutLink"]  # each conference its own link
    moved = svc.events().patch(calendarId=ANN, eventId=made["id"], body={"summary": "moved"}).execute()
    assert moved["conferenceData"] == made["conferenceData"] and moved["hangoutLink"] == made["hangoutLink"]
