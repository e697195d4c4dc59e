"""The Google fake's calendarList and freeBusy methods (same handler shape as google_events)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.fakes.google_errors import ApiError
from tests.fakes.google_events import (
    Caller,
    Query,
    expand_master,
    first,
    max_results,
    need,
    next_page,
    paginate,
    scopes_of,
)
from tests.fakes.google_state import Calendar, State, Subscription, is_deleted
from tests.fakes.google_time import (
    event_extent,
    merge,
    new_etag,
    overlaps,
    parse_rfc3339,
    rfc3339,
)

LIST_SCOPES = scopes_of("calendar", "calendar.readonly", "calendar.calendarlist", "calendar.calendarlist.readonly")
FREEBUSY_SCOPES = scopes_of("calendar", "calendar.events.freebusy", "calendar.freebusy", "calendar.readonly")
CALENDARS_SCOPES = scopes_of("calendar", "calendar.readonly", "calendar.calendars", "calendar.calendars.readonly")
MAX_FREEBUSY_ITEMS = 50
MAX_FREEBUSY_SPAN = timedelta(days=90)


# ---- calendarList -------------------------------------------------------------------------
def calendar_list(st: State, caller: Caller, q: Query) -> tuple[int, dict]:
    need(caller, LIST_SCOPES)
    token = first(q, "pageToken")
    if token:
        return 200, next_page(st, "", token)
    min_role = first(q, "minAccessRole")
    order = ("freeBusyReader", "reader", "writer", "owner")
    items = []
    for sub in st.users[caller.email].subscriptions.values():
        if min_role and order.index(sub.access_role) < order.index(min_role):
            continue
        cal = st.calendars[sub.calendar_id]
        items.append(calendar_entry(cal, sub))
    head = {"kind": "calendar#calendarList", "etag": new_etag()}
    return 200, paginate(st, "", head, items, max_results(q, 100, 250), None)


def calendar_entry(cal: Calendar, sub: Subscription) -> dict:
    entry = {"kind": "calendar#calendarListEntry", "etag": new_etag(), "id": cal.id, "summary": cal.summary,
             "timeZone": cal.time_zone, "colorId": "15", "backgroundColor": cal.color,
             "foregroundColor": "#000000", "selected": True, "accessRole": sub.access_role,
             "defaultReminders": []}
    if sub.primary:  # Google omits the field for every other calendar
        entry["primary"] = True
    return entry


def calendar_list_get(st: State, caller: Caller, cal_id: str) -> tuple[int, dict]:
    need(caller, LIST_SCOPES)
    cal, sub = st.resolve_calendar(caller.email, cal_id)
    return 200, calendar_entry(cal, sub)


def calendars_get(st: State, caller: Caller, cal_id: str) -> tuple[int, dict]:
    need(caller, CALENDARS_SCOPES)
    cal, _ = st.resolve_calendar(caller.email, cal_id)
    return 200, {"kind": "calendar#calendar", "etag": '"0"', "id": cal.id, "summary": cal.summary,
                 "timeZone": cal.time_zone}


# ---- freeBusy -----------------------------------------------------------------------------
def busy_intervals(cal: Calendar, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Merged busy time of one calendar inside [lo, hi), clipped."""
    spans: list[tuple[datetime, datetime]] = []
    for event in cal.events.values():
        if is_deleted(event) or event.get("transparency") == "transparent":
            continue
        if any(a.get("email") == cal.id and a.get("responseStatus") == "declined"
               for a in event.get("attendees") or []):
            continue
        if event.get("recurrence"):
            candidates = expand_master(cal, event, lo, hi)
        else:
            candidates = [event]
        for item in candidates:
            extent = event_extent(item, cal.time_zone)
            if extent and overlaps(extent[0], extent[1], lo, hi) and extent[1] > extent[0]:
                spans.append((max(extent[0], lo), min(extent[1], hi)))
    return merge(spans)


def free_busy(st: State, caller: Caller, body: dict) -> tuple[int, dict]:
    need(caller, FREEBUSY_SCOPES)
    if not body.get("timeMin"):
        raise ApiError(400, "required", "Missing timeMin parameter.")
    if not body.get("timeMax"):
        raise ApiError(400, "required", "Missing timeMax parameter.")
    try:
        lo, hi = parse_rfc3339(body["timeMin"]), parse_rfc3339(body["timeMax"])
    except ValueError as err:
        raise ApiError(400, "badRequest") from err
    if hi <= lo:
        raise ApiError(400, "timeRangeEmpty")
    if hi - lo > MAX_FREEBUSY_SPAN:
        raise ApiError(400, "timeRangeTooLong")
    items = body.get("items") or []
    if len(items) > MAX_FREEBUSY_ITEMS:
        raise ApiError(400, "tooManyCalendarsRequested")
    calendars: dict[str, dict] = {}
    for item in items:
        cal_id = item.get("id", "")
        try:
            cal, _ = st.resolve_calendar(caller.email, cal_id)
        except ApiError:
            calendars[cal_id] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
            continue
        calendars[cal_id] = {"busy": [{"start": rfc3339(s, millis=False), "end": rfc3339(e, millis=False)}
                                      for s, e in busy_intervals(cal, lo, hi)]}
    return 200, {"kind": "calendar#freeBusy", "timeMin": rfc3339(lo), "timeMax": rfc3339(hi),
                 "calendars": calendars}
