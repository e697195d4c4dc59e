"""POST /me/calendar/getSchedule of the fake Graph API: free/busy over a mailbox's calendars.

Limits as Graph reports them: at most 62 days (ErrorTimeIntervalTooBig), at most 100
schedules (ErrorMailboxDataArrayTooBig), an interval of 5..1440 minutes. Calendars.ReadBasic
is not enough (Calendars.Read or Calendars.ReadWrite), and personal Microsoft accounts are
refused (the permission table says "Not supported"). Items cover ALL calendars of each
mailbox; free and cancelled events are left out.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

from tests.fakes.graph_errors import GraphError
from tests.fakes.graph_events import extent, instances
from tests.fakes.graph_time import instant, overlaps, to_value

if TYPE_CHECKING:
    from tests.fakes.graph_http import Ctx

MAX_DAYS = 62
MAX_SCHEDULES = 100
DIGITS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}
#: which status wins a slot several events share
PRIORITY = ("oof", "busy", "tentative", "workingElsewhere")


def get_schedule(ctx: Ctx) -> dict:
    if not any(s in ("Calendars.Read", "Calendars.ReadWrite") or s.startswith(("Calendars.Read.",
                                                                                "Calendars.ReadWrite."))
               for s in ctx.scopes):
        raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    if ctx.user.personal:
        raise GraphError(403, "ErrorAccessDenied", "getSchedule is not supported for personal Microsoft accounts.")
    body = ctx.body or {}
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        raise GraphError(400, "ErrorInvalidParameter", "schedules is required.")
    if len(schedules) > MAX_SCHEDULES:
        raise GraphError(400, "ErrorMailboxDataArrayTooBig",
                         f"The number of mailboxes requested is too large: at most {MAX_SCHEDULES}.")
    lo, hi = instant(body.get("startTime") or {}), instant(body.get("endTime") or {})
    if hi <= lo:
        raise GraphError(400, "ErrorInvalidParameter", "The end time must be after the start time.")
    if hi - lo > timedelta(days=MAX_DAYS):
        raise GraphError(400, "ErrorTimeIntervalTooBig",
                         f"The requested time duration specified is too long. Maximum: {MAX_DAYS} days.")
    interval = body.get("availabilityViewInterval", 30)
    if not isinstance(interval, int) or not 5 <= interval <= 1440:
        raise GraphError(400, "ErrorInvalidParameter", "availabilityViewInterval must be between 5 and 1440.")
    return {"@odata.context": f"{ctx.core.endpoint}/$metadata#Collection(microsoft.graph.scheduleInformation)",
            "value": [_one(ctx, str(addr), lo, hi, interval) for addr in schedules]}


def _one(ctx: Ctx, address: str, lo, hi, interval: int) -> dict:
    user = ctx.core.directory.users.get(address.lower())
    if user is None or user.personal:
        return {"scheduleId": address, "availabilityView": "", "scheduleItems": [],
                "error": {"message": "The recipient was not found.", "responseCode": "ErrorMailRecipientNotFound"}}
    mb = ctx.core.state.mailbox(user)
    label = ctx.timezone()
    busy = []
    for cal in mb.calendars.values():
        for event in cal.events.values():
            for inst in instances(event, lo, hi):
                if inst.get("showAs") in ("free", None) or inst.get("isCancelled"):
                    continue
                busy.append((*extent(inst), inst))
    busy.sort(key=lambda b: b[0])
    slots = math.ceil((hi - lo) / timedelta(minutes=interval))
    view = []
    for n in range(slots):
        s = lo + timedelta(minutes=interval * n)
        e = min(s + timedelta(minutes=interval), hi)
        here = {b[2].get("showAs") for b in busy if overlaps(b[0], b[1], s, e) and b[1] > s}
        view.append(next((DIGITS[p] for p in PRIORITY if p in here), "0"))
    items = [{"isPrivate": inst.get("sensitivity") == "private",
              "status": inst.get("showAs") if inst.get("showAs") in DIGITS else "busy",
              "start": to_value(start, label), "end": to_value(end, label)} for start, end, inst in busy]
    return {"scheduleId": address, "availabilityView": "".join(view), "scheduleItems": items,
            "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                             "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                             "timeZone": {"name": user.timezone}}}
