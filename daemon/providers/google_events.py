"""Google Calendar event resources <-> homecal's models, with no network.

Pure functions the Google provider uses on both sides:

- reading: an event (or an instance from `events.instances`) -> an `Instance`. Times keep
  their own zone (`timeZone`, else the offset written in `dateTime`); all-day events carry
  dates with Google's exclusive end. Keys follow the same shape as the iCalendar reader's,
  ``"{iCalUID}|{rid}"`` with rid the ORIGINAL start of an occurrence (UTC
  ``YYYYMMDDTHHMMSSZ``, or ``YYYYMMDD`` all-day), so an occurrence keeps its key after a move.
- writing: a `Draft` -> the event body homecal inserts or patches, marked in
  `extendedProperties.private` (provider-facts §1.3) so it is never taken as a source.
- ids: Google event ids are base32hex (a-v, 0-9), 5-1024 characters; homecal's idempotency
  keys already are, anything else is hashed into that alphabet.

Event text (summary, description, location) never goes into an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.errors import HomecalError
from daemon.models import Draft, Instance, Window, to_utc

#: keys of homecal's marker in extendedProperties.private
KEY_PROP = "homecal.key"
VERSION_PROP = "homecal.v"
KIND_PROP = "homecal.kind"

_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")


class EventUnreadable(HomecalError):
    """One event cannot be understood; the message names the problem, never the content."""


def event_id(key: str) -> str:
    """The Google event id homecal uses for idempotency `key` (same key, same id)."""
    if _ID_RE.match(key):
        return key
    digest = hashlib.sha256(key.encode()).digest()
    return base64.b32hexencode(digest).decode("ascii").lower().rstrip("=")


# ------------------------------------------------------------------------------- reading

def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_time(value: object, what: str) -> datetime | date:
    """An EventDateTime ({date} or {dateTime, timeZone}) -> a date or an aware datetime."""
    if not isinstance(value, dict):
        raise EventUnreadable(f"event has no {what}")
    if value.get("date"):
        try:
            return date.fromisoformat(str(value["date"]))
        except ValueError:
            raise EventUnreadable(f"event {what} date cannot be read") from None
    raw = value.get("dateTime")
    if not raw:
        raise EventUnreadable(f"event has no {what} time")
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise EventUnreadable(f"event {what} time cannot be read") from None
    if moment.tzinfo is None:
        # RFC 3339 requires an offset; without one Google means the event's own zone
        zone = _zone(value.get("timeZone"))
        if zone is None:
            raise EventUnreadable(f"event {what} time has no offset and no known zone")
        return moment.replace(tzinfo=zone)
    zone = _zone(value.get("timeZone"))
    # Keep the named zone (DST-aware) when it agrees with the written offset.
    return moment.astimezone(zone) if zone is not None else moment


def duration(event: dict) -> timedelta:
    """How long a timed event lasts (0 for an all-day one)."""
    start, end = parse_time(event.get("start"), "start"), parse_time(event.get("end"), "end")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return timedelta(0)
    return end.astimezone(UTC) - start.astimezone(UTC)


def rid_text(original: object) -> str:
    """An occurrence's original start as the key part: UTC timestamp, or the date all-day."""
    value = parse_time(original, "original start")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def partner_key(event: dict) -> str | None:
    """The idempotency key homecal left on an event it wrote, else None."""
    private = (event.get("extendedProperties") or {}).get("private") or {}
    key = private.get(KEY_PROP)
    return str(key) if key else None


def _status(event: dict) -> str:
    status = event.get("status") or "confirmed"
    return status if status in ("confirmed", "tentative", "cancelled") else "confirmed"


def _declined(event: dict) -> bool:
    return any(a.get("self") and a.get("responseStatus") == "declined" for a in event.get("attendees") or ())


def _text(event: dict, name: str) -> str | None:
    value = event.get(name)
    return str(value) if value else None


def to_instance(event: dict, item_id: str, *, details: bool, uid: str | None = None) -> Instance:
    """One event or occurrence as an Instance. Raises EventUnreadable."""
    start = parse_time(event.get("start"), "start")
    end = parse_time(event.get("end"), "end")
    all_day = not isinstance(start, datetime)
    if all_day != (not isinstance(end, datetime)):
        raise EventUnreadable("event mixes an all-day and a timed bound")
    if all_day and end <= start:
        end = start + timedelta(days=1)  # Google's end is exclusive: a zero-day event means one day
    elif not all_day and to_utc(end, UTC) < to_utc(start, UTC):
        raise EventUnreadable("event ends before it starts")
    uid = uid or str(event.get("iCalUID") or event.get("id") or "")
    rid = rid_text(event["originalStartTime"]) if event.get("originalStartTime") else ""
    return Instance(
        key=f"{uid}|{rid}", item_id=item_id, uid=uid, start=start, end=end, all_day=all_day,
        recurrence_id=rid or None, transparent=event.get("transparency") == "transparent",
        status=_status(event), declined=_declined(event),  # type: ignore[arg-type]
        summary=_text(event, "summary") if details else None,
        description=_text(event, "description") if details else None,
        location=_text(event, "location") if details else None,
        partner_key=partner_key(event))


def in_window(inst: Instance, window: Window, tz: tzinfo) -> bool:
    start, end = inst.utc_bounds(tz)
    # a zero-length event at the window's start still belongs to it
    return window.overlaps(start, end) or (start == end and window.start <= start < window.end)


def series_etag(master: dict, parts: list[dict], *, expanded: bool = False) -> str:
    """One etag for a series: its master's and its parts'. A full listing's parts are the
    exceptions; a series re-read through `events.instances` (`expanded`) has its occurrences."""
    text = [str(master.get("etag"))] + sorted(f"{e.get('id')}={e.get('etag')}" for e in parts)
    return ("x:" if expanded else "s:") + hashlib.sha256("|".join(text).encode()).hexdigest()[:24]


# ------------------------------------------------------------------------------- writing

def _zone_name(zone: tzinfo | None) -> str | None:
    key = getattr(zone, "key", None)
    if key:
        return str(key)
    if zone is timezone.utc or zone is UTC:
        return "UTC"
    return None


def _event_time(value: datetime | date, tz: tzinfo) -> dict:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)  # floating: the owner's zone
    name = _zone_name(value.tzinfo)
    if name is None:
        return {"dateTime": value.astimezone(UTC).isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}
    return {"dateTime": value.isoformat(), "timeZone": name}


def body_for(draft: Draft, key: str, tz: tzinfo) -> dict:
    """The event resource for `draft`, complete enough that a PATCH with it leaves nothing stale.

    Clones and busy blocks carry homecal's marker, no attendees and no reminders (a copy must
    not ring a second time). A booking is a meeting: no marker, the visitor as attendee, so
    Google invites them (the caller sends it with sendUpdates=all); a Google Meet booking
    also asks for a conference (the caller adds conferenceDataVersion=1).
    """
    body: dict = {
        "summary": draft.summary,
        # "" rather than absent, so a PATCH clears what the source no longer has
        "description": draft.description or "",
        "location": draft.location or "",
        "start": _event_time(draft.start, tz),
        "end": _event_time(draft.end, tz),
        "transparency": "transparent" if draft.transparent else "opaque",
        "visibility": "private" if draft.private else "default",
    }
    if draft.kind == "booking":
        body["attendees"] = [{"email": email, "displayName": name} for name, email in draft.attendees]
        body["sequence"] = draft.sequence
        if draft.conference == "google_meet":
            body["conferenceData"] = meet_request(key)
    else:
        body["attendees"] = []
        body["reminders"] = {"useDefault": False, "overrides": []}
        body["extendedProperties"] = {"private": {KEY_PROP: key, VERSION_PROP: "1", KIND_PROP: draft.kind}}
    return body


# ------------------------------------------------------------------------------- conferences

def meet_request(key: str) -> dict:
    """conferenceData asking Google for a Meet conference (sent with conferenceDataVersion=1).

    The requestId derives from the idempotency key: a retried create repeats the same
    request, which Google ignores instead of making a second conference.
    """
    request_id = hashlib.sha256(f"meet:{key}".encode()).hexdigest()[:32]
    return {"createRequest": {"requestId": request_id, "conferenceSolutionKey": {"type": "hangoutsMeet"}}}


def join_url(event: dict) -> str | None:
    """The link to join an event's conference: `hangoutLink`, else the video entry point.

    None when the event has no conference, or Google has not finished making it (a
    createRequest whose status is still "pending" carries no entry points yet).
    """
    link = event.get("hangoutLink")
    if isinstance(link, str) and link.startswith("https://"):
        return link
    data = event.get("conferenceData")
    entries = data.get("entryPoints") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or entry.get("entryPointType") != "video":
            continue
        uri = entry.get("uri")
        if isinstance(uri, str) and uri.startswith("https://"):
            return uri
    return None
