"""Routing and handlers of the fake Graph API (below /v1.0): /me, calendars, events, views.

`dispatch(ctx)` maps a path to a handler and returns (status, JSON body, extra headers).
Scopes are checked here: /me needs User.Read, reading calendars and events any Calendars.*
permission, writes Calendars.ReadWrite; getSchedule lives in graph_schedule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.fakes import graph_delta, graph_schedule
from tests.fakes.graph_errors import GraphError
from tests.fakes.graph_events import render
from tests.fakes.graph_state import Calendar

if TYPE_CHECKING:
    from tests.fakes.graph_http import Ctx

Result = tuple[int, dict | None, dict[str, str]]

_ANY = re.compile(r"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+"
                  r"\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)
_EXPAND = re.compile(r"^\s*singleValueExtendedProperties(?:\(\s*\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'\s*\))?\s*$",
                     re.IGNORECASE)


def _need_read(ctx: Ctx) -> None:
    if not any(s.startswith("Calendars.") for s in ctx.scopes):
        raise GraphError(403, "ErrorAccessDenied")


def _need_write(ctx: Ctx) -> None:
    if not any(s.startswith("Calendars.ReadWrite") for s in ctx.scopes):
        raise GraphError(403, "ErrorAccessDenied")


def calendar_json(ctx: Ctx, cal: Calendar) -> dict:
    user = ctx.mailbox.user
    providers = ["skypeForConsumer"] if user.personal else ["teamsForBusiness"]
    return {"id": cal.id, "name": cal.name, "color": cal.color, "hexColor": cal.hex_color,
            "isDefaultCalendar": cal.is_default, "changeKey": "", "canShare": cal.can_edit,
            "canViewPrivateItems": True, "canEdit": cal.can_edit, "isRemovable": not cal.is_default,
            "isTallyingResponses": True, "allowedOnlineMeetingProviders": providers,
            "defaultOnlineMeetingProvider": providers[0],
            "owner": {"name": user.name, "address": user.email}}


def _ok(body: dict | None, status: int = 200) -> Result:
    return status, body, {}


def _prop_id_match(stored: str, wanted: str) -> bool:
    """Extended property ids: type and GUID compare case-insensitively, the name exactly."""
    s_head, _, s_name = stored.partition(" Name ")
    w_head, _, w_name = wanted.partition(" Name ")
    return s_head.lower() == w_head.lower() and s_name == w_name


def _expand(ctx: Ctx) -> str | None:
    text = ctx.q1("$expand")
    if not text:
        return None
    m = _EXPAND.match(text)
    if not m:
        raise GraphError(400, "BadRequest", "The $expand is not supported.")
    return m.group(1).replace("''", "'") if m.group(1) else "*"


def _event_out(ctx: Ctx, event: dict) -> dict:
    return render(event, ctx.timezone(), basic=ctx.basic, expand_props=_expand(ctx))


def dispatch(ctx: Ctx) -> Result:
    segs = [s for s in ctx.path.strip("/").split("/") if s]
    if len(segs) >= 2 and segs[0] == "users":
        who = segs[1].lower()
        if who not in (ctx.user.email.lower(), ctx.user.oid.lower()):
            raise GraphError(403, "ErrorAccessDenied")
        segs = ["me", *segs[2:]]
    if not segs or segs[0] != "me":
        raise GraphError(400, "BadRequest", "Resource not found for the segment.")
    rest, method, mb, st = segs[1:], ctx.method, ctx.mailbox, ctx.core.state
    if not rest:
        if method != "GET":
            raise GraphError(405, "BadRequest", "Method not allowed.")
        if not any(s.startswith("User.") for s in ctx.scopes):
            raise GraphError(403, "ErrorAccessDenied", "Insufficient privileges to complete the operation.")
        user = ctx.user
        return _ok({"@odata.context": f"{ctx.core.endpoint}/$metadata#users/$entity", "id": user.oid,
                    "displayName": user.name, "mail": user.email, "userPrincipalName": user.email,
                    "givenName": user.name.split(" ")[0], "surname": None})
    _need_read(ctx)
    cal: Calendar | None = None
    if rest[0] == "calendars":
        if len(rest) == 1 and method == "GET":
            cals = sorted(mb.calendars.values(), key=lambda c: (not c.is_default, c.name))
            return _ok(graph_delta.page_list(ctx, cals, lambda c: calendar_json(ctx, c)))
        if len(rest) < 2:
            raise GraphError(405, "BadRequest", "Method not allowed.")
        cal, rest = st.calendar(mb, rest[1]), rest[2:]
    elif rest[0] == "calendar":
        cal, rest = st.calendar(mb, None), rest[1:]
    if not rest:
        if cal is None or method != "GET":
            raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        return _ok(calendar_json(ctx, cal))
    target = cal or st.calendar(mb, None)
    if rest == ["calendarView", "delta"] and method == "GET":
        return _ok(graph_delta.delta(ctx, target))
    if rest == ["calendarView"] and method == "GET":
        return _ok(graph_delta.calendar_view(ctx, target))
    if rest == ["getSchedule"] and method == "POST":
        return _ok(graph_schedule.get_schedule(ctx))
    if rest == ["events"]:
        if method == "GET":
            return _ok(_list_events(ctx, target))
        if method == "POST":
            _need_write(ctx)
            event, _ = st.create(mb, target, ctx.body or {})
            return _ok(_event_out(ctx, event), 201)
    if len(rest) == 2 and rest[0] == "events":
        return _one_event(ctx, cal, rest[1])
    raise GraphError(400, "BadRequest", "Resource not found for the segment.")


def _one_event(ctx: Ctx, cal: Calendar | None, event_id: str) -> Result:
    st, mb = ctx.core.state, ctx.mailbox
    found_cal, stored, original = st.find(mb, event_id)
    if cal is not None and found_cal.id != cal.id:
        raise GraphError(404, "ErrorItemNotFound")
    if ctx.method == "GET":
        return _ok(_event_out(ctx, st.current(found_cal, stored, original)))
    _need_write(ctx)
    if ctx.method == "PATCH":
        return _ok(_event_out(ctx, st.update(mb, event_id, ctx.body or {}, ctx.headers.get("if-match"))))
    if ctx.method == "DELETE":
        st.delete(mb, event_id, ctx.headers.get("if-match"))
        return 204, None, {}
    raise GraphError(405, "BadRequest", "Method not allowed.")


def _list_events(ctx: Ctx, cal: Calendar) -> dict:
    """Stored singles and series masters; only the extended-property Any filter is understood."""
    events = sorted(cal.events.values(), key=lambda e: e["createdDateTime"])
    text = ctx.q1("$filter")
    if text:
        m = _ANY.match(text)
        if not m:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported by this fake.")
        prop_id, value = m.group(2).replace("''", "'"), m.group(3).replace("''", "'")
        events = [e for e in events if any(_prop_id_match(p["id"], prop_id)
                                           and str(p.get("value", "")).lower() == value.lower()
                                           for p in e.get("singleValueExtendedProperties") or [])]
    return graph_delta.page_list(ctx, events, lambda e: _event_out(ctx, e))
