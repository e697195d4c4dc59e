"""Microsoft Graph events <-> homecal's model: pure conversion, no HTTP.

Reading (provider-facts §2.1, §2.2): every request asks for times in UTC
(`Prefer: outlook.timezone="UTC"`); a timed event is shown again in its own zone
(`originalStartTimeZone`, a Windows name mapped to IANA through the CLDR table icalendar
ships), so a clone keeps the zone it was made in. All-day events come as midnight to
midnight and become dates. calendarView hands out occurrences, each with its own id: an
occurrence's key is its series (`seriesMasterId`) plus its original start, the same for the
life of the series. showAs "free" and "workingElsewhere" do not block time.

Writing (§2.2, §2.3): the idempotency key travels as `transactionId` (Graph refuses a second
create with the same one) and as a named extended property (found again with `$filter`;
change feeds do not return it, so the engine also knows its writes from its mapping table).
Copies carry no attendees; all-day events are written midnight to midnight in one zone.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from daemon.models import Draft, Instance, Window

#: a GUID of homecal's own for its named extended properties (never a real property tag)
PROPERTY_SET = "{6f1c4b0e-5a3d-4d8e-9a57-4f1d2c3b8e61}"
#: the extended property holding the idempotency key of an event homecal wrote
KEY_PROP = f"String {PROPERTY_SET} Name homecal_key"
#: what kind of write it was and by which format ("1/clone", "1/busy", "1/booking")
KIND_PROP = f"String {PROPERTY_SET} Name homecal_kind"
MARK_VERSION = "1"
#: transactionId of a create: the key behind a fixed prefix, so it can be read back
TRANSACTION_PREFIX = "homecal-"
#: showAs values that leave the time free
_NOT_BUSY = frozenset({"free", "workingElsewhere"})
_OLSON_TO_WINDOWS: dict[str, str] = {}
for _win, _olson in WINDOWS_TO_OLSON.items():
    _OLSON_TO_WINDOWS.setdefault(_olson, _win)


class EventUnreadable(ValueError):
    """An event Graph sent that cannot be understood; it is skipped and logged, nothing else."""


def zone(name: str | None) -> tzinfo | None:
    """A Windows or IANA zone name as a tzinfo; None when unknown or empty."""
    if not name:
        return None
    if name in ("UTC", "tzone://Microsoft/Utc", "Coordinated Universal Time"):
        return UTC
    key = WINDOWS_TO_OLSON.get(name, name)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def windows_name(tz: tzinfo) -> str:
    """The zone name to write: Windows' name where one exists, else the IANA key, else UTC."""
    key = getattr(tz, "key", None)
    if key in ("UTC", "Etc/UTC") or tz is UTC:
        return "UTC"
    if key:
        return _OLSON_TO_WINDOWS.get(key, key)
    return "UTC"


def parse_time(value: object, what: str) -> datetime:
    """A dateTimeTimeZone as an aware datetime. Raises EventUnreadable."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise EventUnreadable(f"event has no {what}")
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    except ValueError:
        raise EventUnreadable(f"event {what} cannot be read") from None
    if moment.tzinfo is None:
        tz = zone(value.get("timeZone"))
        if tz is None:
            raise EventUnreadable(f"event {what} is in a zone homecal does not know")
        moment = moment.replace(tzinfo=tz)
    return moment


def rid_text(original: str, all_day: bool) -> str:
    """An occurrence's original start as the key part: UTC timestamp, or the date all-day."""
    try:
        moment = datetime.fromisoformat(original.replace("Z", "+00:00"))
    except ValueError:
        raise EventUnreadable("occurrence has an unreadable original start") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if all_day:
        return moment.strftime("%Y%m%d")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def partner_key(event: dict) -> str | None:
    """The idempotency key homecal left on an event, from whichever mark came back."""
    for prop in event.get("singleValueExtendedProperties") or ():
        if isinstance(prop, dict) and prop.get("id", "").lower() == KEY_PROP.lower() and prop.get("value"):
            return str(prop["value"])
    tid = event.get("transactionId")
    if isinstance(tid, str) and tid.startswith(TRANSACTION_PREFIX) and len(tid) > len(TRANSACTION_PREFIX):
        return tid[len(TRANSACTION_PREFIX):]
    return None


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("br", "p", "div", "li"):
            self.parts.append("\n")


def _body_text(event: dict) -> str | None:
    body = event.get("body")
    if not isinstance(body, dict) or not body.get("content"):
        return None
    content = str(body["content"])
    if str(body.get("contentType", "")).lower() == "html":
        parser = _Text()
        parser.feed(content)
        content = re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()
    return content or None


def etag(event: dict) -> str | None:
    return event.get("@odata.etag") or event.get("changeKey") or None


def to_instance(event: dict, *, details: bool) -> Instance:
    """One event or occurrence from calendarView as an Instance. Raises EventUnreadable."""
    eid = event.get("id")
    if not eid:
        raise EventUnreadable("event has no id")
    start, end = parse_time(event.get("start"), "start"), parse_time(event.get("end"), "end")
    all_day = bool(event.get("isAllDay"))
    if all_day:
        # midnight to midnight in the label Graph used: the dates are what the user sees
        first, last = start.date(), end.date()
        s: datetime | date = first
        e: datetime | date = last if last > first else first + timedelta(days=1)
    else:
        own = zone(event.get("originalStartTimeZone"))
        s, e = (start.astimezone(own), end.astimezone(own)) if own else (start, end)
        if e < s:
            raise EventUnreadable("event ends before it starts")
    master = event.get("seriesMasterId")
    if master and event.get("originalStart"):
        uid, rid = str(master), rid_text(str(event["originalStart"]), all_day)
    else:
        uid, rid = str(event.get("iCalUId") or eid), ""
    location = (event.get("location") or {}).get("displayName") if isinstance(event.get("location"), dict) else None
    response = (event.get("responseStatus") or {}).get("response") if isinstance(event.get("responseStatus"), dict) \
        else None
    return Instance(
        key=f"{uid}|{rid}", item_id=str(eid), uid=uid, start=s, end=e, all_day=all_day, recurrence_id=rid or None,
        transparent=event.get("showAs") in _NOT_BUSY,
        status="cancelled" if event.get("isCancelled") else "tentative" if event.get("showAs") == "tentative"
        else "confirmed",
        declined=response == "declined",
        summary=(str(event.get("subject") or "") or None) if details else None,
        description=_body_text(event) if details else None,
        location=(str(location) or None) if details and location else None,
        partner_key=partner_key(event))


def in_window(inst: Instance, window: Window, tz: tzinfo) -> bool:
    start, end = inst.utc_bounds(tz)
    return window.overlaps(start, end) or (start == end and window.start <= start < window.end)


# ------------------------------------------------------------------------------- writing


def _event_time(value: datetime | date, tz: tzinfo) -> dict:
    if isinstance(value, datetime):
        own = value.tzinfo if value.tzinfo is not None else tz
        name = windows_name(own)
        local = value.replace(tzinfo=own) if value.tzinfo is None else value
        if name == "UTC" and getattr(own, "key", None) not in ("UTC", "Etc/UTC") and own is not UTC:
            local = local.astimezone(UTC)  # a zone Graph would not know: write the instant in UTC
        return {"dateTime": local.replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": name}
    # all-day: midnight, in the one zone both ends share (§2.2)
    return {"dateTime": datetime.combine(value, time(0)).isoformat(timespec="seconds"), "timeZone": windows_name(tz)}


def body_for(draft: Draft, key: str, tz: tzinfo) -> dict:
    """The Graph event for a draft (no transactionId: only a create sends that)."""
    body: dict = {
        "subject": draft.summary,
        "body": {"contentType": "text", "content": draft.description or ""},
        "start": _event_time(draft.start, tz),
        "end": _event_time(draft.end, tz),
        "isAllDay": draft.all_day,
        "showAs": "free" if draft.transparent else "busy",
        "sensitivity": "private" if draft.private and draft.kind != "booking" else "normal",
        "location": {"displayName": draft.location or ""},
        "isReminderOn": False,
        "singleValueExtendedProperties": [{"id": KEY_PROP, "value": key},
                                          {"id": KIND_PROP, "value": f"{MARK_VERSION}/{draft.kind}"}],
    }
    if draft.all_day:
        # Graph wants both ends at midnight in the same zone, and a real end after the start
        end = draft.end if isinstance(draft.end, date) and draft.end > draft.start else \
            draft.start + timedelta(days=1)  # type: ignore[operator]
        body["end"] = _event_time(end, tz)
        body["start"]["timeZone"] = body["end"]["timeZone"]
    if draft.kind == "booking":
        # Exchange invites the attendees of a meeting itself; copies never carry any
        body["attendees"] = [{"emailAddress": {"address": email, "name": name}, "type": "required"}
                             for name, email in draft.attendees]
        if draft.conference == "teams":
            body["isOnlineMeeting"] = True
            body["onlineMeetingProvider"] = "teamsForBusiness"
    else:
        body["attendees"] = []
    return body


def matches(event: Any, body: dict) -> bool:
    """Does the event Graph returned say what `body` asked for (subject, text, times, show-as)?
    False for an event an earlier create with the same transactionId left behind."""
    if not isinstance(event, dict):
        return False
    try:
        same_times = all(parse_time(event.get(k), k) == parse_time(body[k], k) for k in ("start", "end")) \
            if not body.get("isAllDay") else \
            all(parse_time(event.get(k), k).date() == parse_time(body[k], k).date() for k in ("start", "end"))
    except EventUnreadable:
        return False
    wanted_text = (body.get("body") or {}).get("content") or ""
    got_text = _body_text(event) or ""
    return (same_times and (event.get("subject") or "") == body.get("subject", "")
            and got_text.strip() == wanted_text.strip() and event.get("showAs") == body.get("showAs")
            and bool(event.get("isAllDay")) == bool(body.get("isAllDay"))
            and ((event.get("location") or {}).get("displayName") or "") ==
            ((body.get("location") or {}).get("displayName") or ""))


def transaction_id(key: str) -> str:
    return TRANSACTION_PREFIX + key


def join_url(event: dict) -> str | None:
    meeting = event.get("onlineMeeting")
    url = meeting.get("joinUrl") if isinstance(meeting, dict) else None
    return str(url) if url else None


def digest(text: str) -> str:
    """A short fingerprint of an id for logs."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
