"""The Google fake's events.* methods (calendarList and freeBusy are in google_calendars).

Each handler takes the State (lock held by the caller), the caller's `Caller` (user and
scopes of the access token), path arguments, the query (name -> list of values) and the JSON
body, and returns (status, body) or raises ApiError. Scope and access-role checks, the
availability view of `calendar.events.freebusy` / freeBusyReader, and listings with paging
snapshots and sync tokens live here.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from datetime import datetime

from tests.fakes.google_errors import ApiError
from tests.fakes.google_state import (
    SCOPE_PREFIX,
    Calendar,
    State,
    Subscription,
    exception_key,
    instance_body,
    is_deleted,
)
from tests.fakes.google_time import (
    DEFAULT_HORIZON,
    Series,
    event_extent,
    event_time,
    new_etag,
    now,
    overlaps,
    parse_rfc3339,
    rfc3339,
)

Query = dict[str, list[str]]


def scopes_of(*names: str) -> frozenset[str]:
    return frozenset(SCOPE_PREFIX + n for n in names)


READ_SCOPES = scopes_of("calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly")
OWNED_READ = scopes_of("calendar.events.owned", "calendar.events.owned.readonly")
AVAILABILITY = scopes_of("calendar.events.freebusy")
WRITE_SCOPES = scopes_of("calendar", "calendar.events")
OWNED_WRITE = scopes_of("calendar.events.owned")

#: the fields of an event under the availability view
AVAILABILITY_FIELDS = ("kind", "etag", "id", "status", "start", "end", "transparency", "recurrence",
                       "recurringEventId", "originalStartTime", "iCalUID", "updated")
#: listing parameters that may not come with a syncToken
SYNC_RESTRICTED = ("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
                   "timeMin", "timeMax", "updatedMin")


@dataclass(frozen=True)
class Caller:
    email: str
    scopes: frozenset[str]


def first(q: Query, name: str, default: str | None = None) -> str | None:
    values = q.get(name)
    return values[0] if values else default


def _flag(q: Query, name: str) -> bool:
    return (first(q, name) or "false").lower() == "true"


def _time_param(q: Query, name: str) -> datetime | None:
    value = first(q, name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as err:
        raise ApiError(400, "badRequest", f"Bad Request: {name}") from err


def max_results(q: Query, default: int, cap: int) -> int:
    try:
        n = int(first(q, "maxResults") or default)
    except ValueError as err:
        raise ApiError(400, "invalid", "Invalid value for maxResults.") from err
    if n < 1:
        raise ApiError(400, "invalid", "Invalid value for maxResults.")
    return min(n, cap)


# ---- access -------------------------------------------------------------------------------
def need(caller: Caller, allowed: frozenset[str]) -> None:
    if not caller.scopes & allowed:
        raise ApiError(403, "insufficientPermissions")


def read_view(caller: Caller, sub: Subscription) -> str:
    """'full' or 'availability' for events the caller reads on this calendar (403 if neither)."""
    owned = sub.access_role == "owner"
    full = bool(caller.scopes & READ_SCOPES) or (owned and bool(caller.scopes & OWNED_READ))
    if full and sub.access_role != "freeBusyReader":
        return "full"
    if full or caller.scopes & AVAILABILITY:
        return "availability"
    raise ApiError(403, "insufficientPermissions")


def check_write(caller: Caller, sub: Subscription) -> None:
    owned = sub.access_role == "owner"
    if not (caller.scopes & WRITE_SCOPES or (owned and caller.scopes & OWNED_WRITE)):
        raise ApiError(403, "insufficientPermissions")
    if sub.access_role not in ("owner", "writer"):
        raise ApiError(403, "requiredAccessLevel")


def render(event: dict, view: str, cal: Calendar, sub: Subscription, caller: Caller, minimal_deleted: bool) -> dict:
    """An event as this caller sees it."""
    if minimal_deleted and is_deleted(event):
        keep = ("kind", "id", "status", "etag", "updated", "recurringEventId", "originalStartTime")
        return {k: copy.deepcopy(event[k]) for k in keep if k in event}
    if view == "availability":
        return {k: copy.deepcopy(event[k]) for k in AVAILABILITY_FIELDS if k in event}
    out = copy.deepcopy(event)
    if out.get("organizer", {}).get("email") == cal.id and sub.access_role == "owner":
        out["organizer"]["self"] = True
    if out.get("creator", {}).get("email") == caller.email:
        out["creator"]["self"] = True
    return out


# ---- paging -------------------------------------------------------------------------------
def paginate(st: State, cal_id: str, head: dict, items: list[dict], size: int, sync_token: str | None) -> dict:
    """First page of a snapshotted listing; the rest wait under page tokens."""
    chunks = [items[i:i + size] for i in range(0, len(items), size)] or [[]]
    pages: list[list[dict]] = []
    for chunk in chunks:
        if st.empty_pages:  # an empty page is not the end: catch clients that think so
            pages.append([])
        pages.append(chunk)
    return _page(st, cal_id, head, pages, sync_token)


def _page(st: State, cal_id: str, head: dict, pages: list[list[dict]], sync_token: str | None) -> dict:
    body = dict(head)
    body["items"] = pages[0]
    if len(pages) > 1:
        token = secrets.token_urlsafe(16)
        st.pages[token] = (cal_id, head, pages[1:], sync_token)
        body["nextPageToken"] = token
    elif sync_token:
        body["nextSyncToken"] = sync_token
    return body


def next_page(st: State, cal_id: str, token: str) -> dict:
    entry = st.pages.get(token)
    if entry is None or entry[0] != cal_id:
        raise ApiError(400, "invalid", "Invalid page token value.")
    _, head, pages, sync_token = entry
    return _page(st, cal_id, head, pages, sync_token)


# ---- events.list / instances --------------------------------------------------------------
def _list_head(cal: Calendar, sub: Subscription) -> dict:
    updated = max((e.get("updated", "") for e in cal.events.values()), default="") or rfc3339(now())
    return {"kind": "calendar#events", "etag": new_etag(), "summary": cal.summary, "description": "",
            "updated": updated, "timeZone": cal.time_zone, "accessRole": sub.access_role,
            "defaultReminders": []}


def _matches_filters(event: dict, q: Query) -> bool:
    if first(q, "iCalUID") and event.get("iCalUID") != first(q, "iCalUID"):
        return False
    props = event.get("extendedProperties") or {}
    for param, scope in (("privateExtendedProperty", "private"), ("sharedExtendedProperty", "shared")):
        for constraint in q.get(param, []):  # every constraint must hold (AND, as the discovery doc says)
            key, _, value = constraint.partition("=")
            if (props.get(scope) or {}).get(key) != value:
                return False
    text = (first(q, "q") or "").lower()
    return not text or any(text in str(event.get(f, "")).lower() for f in ("summary", "description", "location"))


def _sort_start(event: dict, tz: str) -> datetime:
    value = event.get("start") or event.get("originalStartTime")
    return event_time(value, tz)[0] if value else datetime.min.replace(tzinfo=now().tzinfo)


def _in_window(event: dict, tz: str, lo: datetime | None, hi: datetime | None) -> bool:
    if lo is None and hi is None:
        return True
    if event.get("recurrence") and not is_deleted(event):
        return Series(event, tz).any_between(lo, hi)
    extent = event_extent(event, tz)
    if extent is None:
        original = event.get("originalStartTime")
        if not original:
            return True
        start, _ = event_time(original, tz)
        extent = (start, start)
    return overlaps(extent[0], extent[1], lo, hi)


def _exceptions(cal: Calendar, master_id: str) -> dict[str, dict]:
    return {key: e for e in cal.events.values() if e.get("recurringEventId") == master_id
            and (key := exception_key(e, cal.time_zone)) is not None}


def expand_master(cal: Calendar, master: dict, lo: datetime | None, hi: datetime | None) -> list[dict]:
    """The instances of a master inside [lo, hi) that no stored exception replaces."""
    series = Series(master, cal.time_zone)
    if hi is None:
        hi = max(lo or now(), now()) + DEFAULT_HORIZON
    taken = _exceptions(cal, master["id"])
    return [instance_body(master, occ) for occ in series.between(lo, hi) if occ.key not in taken]


def events_list(st: State, caller: Caller, cal_id: str, q: Query) -> tuple[int, dict]:
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    view = read_view(caller, sub)
    if first(q, "pageToken"):
        return 200, next_page(st, cal.id, first(q, "pageToken") or "")
    sync = first(q, "syncToken")
    since = 0
    if sync is not None:
        if any(name in q for name in SYNC_RESTRICTED):
            raise ApiError(400, "syncTokenWithRequestRestrictions")
        info = st.sync_tokens.get(sync)
        if info is None or info[0] != cal.id:
            raise ApiError(410, "fullSyncRequired")
        since = info[1]
    single, show_deleted = _flag(q, "singleEvents"), _flag(q, "showDeleted")
    order = first(q, "orderBy")
    if order == "startTime" and not single:
        raise ApiError(400, "invalid", "The requested ordering is not available for the particular query.")
    lo, hi = _time_param(q, "timeMin"), _time_param(q, "timeMax")
    if lo is not None and hi is not None and hi <= lo:
        raise ApiError(400, "timeRangeEmpty")
    updated_min = _time_param(q, "updatedMin")

    def deleted_visible(event: dict) -> bool:
        if sync is not None or show_deleted:
            return True
        if updated_min is not None and parse_rfc3339(event["updated"]) >= updated_min:
            return True  # "entries deleted since this time will always be included"
        master = cal.events.get(event.get("recurringEventId", ""))
        return not single and master is not None and not is_deleted(master)

    items: list[dict] = []
    for event in cal.events.values():
        if sync is not None and cal.changed[event["id"]] <= since:
            continue
        if not _matches_filters(event, q):
            continue
        if updated_min is not None and parse_rfc3339(event["updated"]) < updated_min:
            continue
        if is_deleted(event) and not deleted_visible(event):
            continue
        if not _in_window(event, cal.time_zone, lo, hi):
            continue
        if single and event.get("recurrence"):
            if is_deleted(event):
                if sync is not None:  # the client must still learn that the series is gone
                    items.append(event)
                continue
            items.extend(expand_master(cal, event, lo, hi))
        else:
            items.append(event)
    if order == "startTime":
        items.sort(key=lambda e: _sort_start(e, cal.time_zone))
    elif order == "updated":
        items.sort(key=lambda e: e.get("updated", ""))
    rendered = [render(e, view, cal, sub, caller, minimal_deleted=True) for e in items]
    size = max_results(q, 250, 2500)
    return 200, paginate(st, cal.id, _list_head(cal, sub), rendered, size, st.new_sync_token(cal))


def events_instances(st: State, caller: Caller, cal_id: str, event_id: str, q: Query) -> tuple[int, dict]:
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    view = read_view(caller, sub)
    if first(q, "pageToken"):
        return 200, next_page(st, cal.id, first(q, "pageToken") or "")
    master = cal.events.get(event_id)
    if master is None:
        raise ApiError(404, "notFound")
    if is_deleted(master):
        raise ApiError(410, "deleted")
    lo, hi = _time_param(q, "timeMin"), _time_param(q, "timeMax")
    show_deleted = _flag(q, "showDeleted")
    if not master.get("recurrence"):
        items = [master]
    else:
        series = Series(master, cal.time_zone)
        horizon = hi or max(lo or now(), now()) + DEFAULT_HORIZON
        taken = _exceptions(cal, master["id"])
        items = [instance_body(master, occ) for occ in series.between(lo, horizon) if occ.key not in taken]
        # an exception counts where it is now (a moved instance may have left the window)
        items += [e for e in taken.values()
                  if (show_deleted or not is_deleted(e)) and _in_window(e, cal.time_zone, lo, hi)]
        items.sort(key=lambda e: event_time(e["originalStartTime"], cal.time_zone)[0])
        original = first(q, "originalStart")
        if original:
            want = parse_rfc3339(original)
            items = [e for e in items if event_time(e["originalStartTime"], cal.time_zone)[0] == want]
    rendered = [render(e, view, cal, sub, caller, minimal_deleted=True) for e in items]
    return 200, paginate(st, cal.id, _list_head(cal, sub), rendered, max_results(q, 250, 2500), None)


# ---- single events ------------------------------------------------------------------------
def events_get(st: State, caller: Caller, cal_id: str, event_id: str) -> tuple[int, dict]:
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    view = read_view(caller, sub)
    event, _ = st.lookup(cal, event_id)
    if event is None:
        raise ApiError(404, "notFound")
    # a deleted event keeps its details for its organizer (so it can be undeleted)
    return 200, render(event, view, cal, sub, caller, minimal_deleted=False)


def _conference(q: Query) -> bool:
    return int(first(q, "conferenceDataVersion") or "0") >= 1


def events_insert(st: State, caller: Caller, cal_id: str, q: Query, body: dict) -> tuple[int, dict]:
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    check_write(caller, sub)
    event = st.insert(cal, body, caller.email, _conference(q))
    return 200, render(event, "full", cal, sub, caller, minimal_deleted=False)


def events_patch(st: State, caller: Caller, cal_id: str, event_id: str, q: Query, body: dict,
                 if_match: str | None, replace: bool) -> tuple[int, dict]:
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    check_write(caller, sub)
    write = st.update if replace else st.patch
    event = write(cal, event_id, body, if_match, _conference(q))
    return 200, render(event, "full", cal, sub, caller, minimal_deleted=False)


def events_delete(st: State, caller: Caller, cal_id: str, event_id: str, if_match: str | None) -> tuple[int, dict]:
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    check_write(caller, sub)
    st.delete(cal, event_id, if_match)
    return 204, {}
