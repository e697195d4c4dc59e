"""calendarView and calendarView/delta of the fake Graph API: windows, pages, tokens, 410.

A delta round computes all its entries at its first request and serves them page by page
(`Prefer: odata.maxpagesize`, default 50): intermediate pages carry `@odata.nextLink` with a
$skiptoken, the last one `@odata.deltaLink` with a $deltatoken, never both. The $deltatoken
encodes calendar, window, generation and the position in the calendar's change log; the window
is fixed per token, as Graph documents.

The delta since position N looks at every event written after N: each instance of it that now
overlaps the window comes back in full; an instance that was in the window before and is not
now (deleted, cancelled occurrence, moved out) comes back as @removed; an event changed
wholly outside the window also comes back as @removed (documented: clients must filter).
`expire_delta_tokens` bumps a calendar's generation: older links answer 410 with a Location
whose $deltatoken is empty.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from tests.fakes.graph_errors import GraphError
from tests.fakes.graph_events import instances, removed, render, sort_key
from tests.fakes.graph_state import Calendar
from tests.fakes.graph_time import parse_query_time, utc_z

if TYPE_CHECKING:
    from tests.fakes.graph_http import Ctx

DEFAULT_PAGE = 50
#: calendarView refuses longer windows ("Maximum number of days: 1825")
MAX_VIEW_SPAN = timedelta(days=1825)
UNSUPPORTED_ON_DELTA = ("$select", "$filter", "$expand", "$orderby", "$search", "$top", "$skip")

#: an entry of a round before rendering: an internal event, or ("removed", id)
Entry = dict | tuple[str, str]


@dataclass
class Round:
    calendar_id: str
    generation: int
    window: tuple[datetime, datetime]
    entries: list[Entry]
    delta_token: str
    path: str
    pos: int = 0
    sent: list[Entry] = field(default_factory=list)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict | None:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None


def window_instances(cal: Calendar, lo: datetime, hi: datetime) -> list[dict]:
    out = [i for event in cal.events.values() for i in instances(event, lo, hi)]
    return sorted(out, key=sort_key)


def changes_since(cal: Calendar, lo: datetime, hi: datetime, since: int) -> list[Entry]:
    """What a delta since log position `since` reports (see the module docstring)."""
    before: dict[str, dict | None] = {}
    for event_id, old in cal.log[since:]:
        before.setdefault(event_id, old)  # the state at `since` is the one before the first later change
    out: list[Entry] = []
    for event_id, old in before.items():
        old_ids = [i["id"] for i in instances(old, lo, hi)] if old is not None else []
        now = cal.events.get(event_id)
        new = instances(now, lo, hi) if now is not None else []
        new_ids = {i["id"] for i in new}
        out.extend(sorted(new, key=sort_key))
        gone = [i for i in old_ids if i not in new_ids]
        out.extend(("removed", i) for i in gone)
        if not new and not gone:
            # changed (added, updated, deleted) wholly outside the window: Graph says "deleted"
            out.append(("removed", event_id))
    return out


def _reject_options(ctx: Ctx) -> None:
    bad = [name for name in UNSUPPORTED_ON_DELTA if name in ctx.query]
    if bad:
        raise GraphError(400, "ErrorInvalidUrlQuery",
                         f"The following parameters are not supported with change tracking over the "
                         f"'CalendarView' resource: '{bad[0]}'.")


def delta(ctx: Ctx, cal: Calendar) -> dict:
    """One page of calendarView/delta for `cal`."""
    core = ctx.core
    _reject_options(ctx)
    skip = ctx.q1("$skiptoken")
    token = ctx.q1("$deltatoken")
    if skip:
        rnd = core.rounds.get(skip)
        if rnd is None or rnd.calendar_id != cal.id or rnd.generation != cal.generation:
            raise _gone(ctx, rnd.window if rnd else None)
    elif token:
        data = _unb64(token)
        if not data or data.get("c") != cal.id:
            raise GraphError(400, "ErrorInvalidParameter", "The delta token is not valid.")
        lo, hi = datetime.fromisoformat(data["lo"]), datetime.fromisoformat(data["hi"])
        if data.get("g") != cal.generation or data["n"] > len(cal.log):
            raise _gone(ctx, (lo, hi))
        rnd = _new_round(ctx, cal, (lo, hi), changes_since(cal, lo, hi, data["n"]))
    else:
        lo = parse_query_time(ctx.q1("startDateTime"), "startDateTime")
        hi = parse_query_time(ctx.q1("endDateTime"), "endDateTime")
        if hi <= lo:
            raise GraphError(400, "ErrorInvalidParameter", "endDateTime must be after startDateTime.")
        rnd = _new_round(ctx, cal, (lo, hi), list(window_instances(cal, lo, hi)))
    size = ctx.max_page_size() or DEFAULT_PAGE
    page = rnd.entries[rnd.pos:rnd.pos + size]
    rnd.pos += len(page)
    if core.replay:
        earlier = core.last_sent.get(cal.id)
        if earlier is not None:
            page = [earlier, *page]
        elif page:
            page = [*page, page[0]]
    if page:
        core.last_sent[cal.id] = page[-1]
    value = [removed(e[1]) if isinstance(e, tuple) else
             render(e, ctx.timezone(), basic=ctx.basic, hide_transaction_id=core.hide_transaction_id)
             for e in page]
    body: dict = {"@odata.context": f"{core.endpoint}/$metadata#Collection(event)", "value": value}
    if rnd.pos < len(rnd.entries):
        key = secrets.token_urlsafe(18)
        core.rounds[key] = rnd
        body["@odata.nextLink"] = f"{core.endpoint}{rnd.path}?$skiptoken={key}"
    else:
        body["@odata.deltaLink"] = f"{core.endpoint}{rnd.path}?$deltatoken={rnd.delta_token}"
    if skip:
        core.rounds.pop(skip, None)
    return body


def _new_round(ctx: Ctx, cal: Calendar, window: tuple[datetime, datetime], entries: list[Entry]) -> Round:
    token = _b64({"c": cal.id, "lo": window[0].isoformat(), "hi": window[1].isoformat(), "n": len(cal.log),
                  "g": cal.generation, "r": secrets.token_hex(4)})
    return Round(cal.id, cal.generation, window, [copy.deepcopy(e) for e in entries], token, ctx.path)


def _gone(ctx: Ctx, window: tuple[datetime, datetime] | None) -> GraphError:
    """410 with a Location to start over: the same URL, $deltatoken empty (window kept, since
    our links carry it only inside the token)."""
    params = ""
    if window is not None:
        params = urlencode({"startDateTime": utc_z(window[0]), "endDateTime": utc_z(window[1])}) + "&"
    location = f"{ctx.core.endpoint}{ctx.path}?{params}$deltatoken="
    return GraphError(410, "SyncStateNotFound", headers={"Location": location})


def calendar_view(ctx: Ctx, cal: Calendar) -> dict:
    """GET calendarView (not delta): instances in the window, sorted by start, paged by $skip."""
    lo = parse_query_time(ctx.q1("startDateTime"), "startDateTime")
    hi = parse_query_time(ctx.q1("endDateTime"), "endDateTime")
    if hi - lo > MAX_VIEW_SPAN:
        raise GraphError(400, "ErrorInvalidParameter",
                         "The value of the parameter 'EndDateTime' exceeds the allowed range. "
                         "Maximum number of days: 1825")
    if hi <= lo:
        raise GraphError(400, "ErrorInvalidParameter", "endDateTime must be after startDateTime.")
    items = window_instances(cal, lo, hi)
    return page_list(ctx, items, lambda e: render(e, ctx.timezone(), basic=ctx.basic))


def page_list(ctx: Ctx, items: list, show) -> dict:
    """value + @odata.nextLink by $top/$skip (or Prefer odata.maxpagesize), $select applied."""
    try:
        top = int(ctx.q1("$top") or 0) or ctx.max_page_size() or 10
        skip = int(ctx.q1("$skip") or 0)
    except ValueError:
        raise GraphError(400, "BadRequest", "Invalid $top or $skip.") from None
    page = [show(e) for e in items[skip:skip + top]]
    select = [s.strip() for s in (ctx.q1("$select") or "").split(",") if s.strip()]
    if select:
        page = [{k: v for k, v in e.items() if k in select or k in ("id", "@odata.etag")} for e in page]
    body: dict = {"@odata.context": f"{ctx.core.endpoint}/$metadata#Collection", "value": page}
    if skip + top < len(items):
        params = {k: v for k, v in ctx.flat_query().items() if k not in ("$skip", "$top")}
        params.update({"$top": str(top), "$skip": str(skip + top)})
        body["@odata.nextLink"] = f"{ctx.core.endpoint}{ctx.path}?" + urlencode(params, quote_via=quote, safe="$")
    return body
