"""Events of the fake Graph API as clients see them: ids, instances of a series, JSON rendering.

Stored events are single instances and series masters in Graph's own JSON shape, times kept in
the zone the client wrote them in, plus private keys starting with "_" (`_exceptions`: original
start (UTC "Z" string) -> {"cancelled", "fields", "changeKey", "lastModifiedDateTime"}).

An occurrence id is opaque to clients but derived from the master id and the original start,
so it is stable and the fake can find its way back (PATCH/DELETE of an occurrence id).
`render` turns an internal event into what Graph returns: times converted to the zone of
`Prefer: outlook.timezone` (all-day events keep their dates), "@odata.etag", and the ReadBasic
permission's hidden fields removed.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from datetime import UTC, datetime

from tests.fakes.graph_time import Series, graph_stamp, instant, overlaps, parse_local, to_value, utc_z

OCC_PREFIX = "AAMkAO"
#: what Calendars.ReadBasic may not see
BASIC_HIDDEN = ("body", "bodyPreview", "extensions", "singleValueExtendedProperties", "attachments")
#: fields an exception may override
OVERRIDABLE = ("subject", "body", "bodyPreview", "start", "end", "isAllDay", "showAs", "sensitivity", "location",
               "attendees", "categories", "isOnlineMeeting", "onlineMeetingProvider", "onlineMeeting",
               "importance", "isReminderOn", "reminderMinutesBeforeStart", "originalStartTimeZone",
               "originalEndTimeZone", "responseRequested")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def occurrence_id(master_id: str, original_start: datetime) -> str:
    return OCC_PREFIX + _b64(f"{master_id}|{utc_z(original_start)}".encode())


def parse_occurrence_id(event_id: str) -> tuple[str, datetime] | None:
    """(master id, original start) of an occurrence id, or None for any other id."""
    if not event_id.startswith(OCC_PREFIX):
        return None
    text = event_id[len(OCC_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        master_id, stamp = raw.rsplit("|", 1)
        return master_id, datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (ValueError, UnicodeDecodeError):
        return None


def ical_uid(seed: str) -> str:
    """Outlook's iCalUId shape: the fixed 040000008200E00074C5B7101A82E008 head, then hex."""
    return "040000008200E00074C5B7101A82E008" + hashlib.sha256(seed.encode()).hexdigest()[:56].upper()


def extent(event: dict) -> tuple[datetime, datetime]:
    return instant(event["start"]), instant(event["end"])


def occurrence(master: dict, original_start: datetime, series: Series) -> dict | None:
    """One instance of a master (an occurrence or an exception), or None when cancelled."""
    key = utc_z(original_start)
    exc = (master.get("_exceptions") or {}).get(key)
    if exc and exc.get("cancelled"):
        return None
    event = {k: copy.deepcopy(v) for k, v in master.items() if not k.startswith("_") and k != "recurrence"}
    event["id"] = occurrence_id(master["id"], original_start)
    event["type"] = "occurrence"
    event["seriesMasterId"] = master["id"]
    event["originalStart"] = key
    event["iCalUId"] = ical_uid(master["id"] + key)
    event["recurrence"] = None
    start = original_start.astimezone(series.tz)
    event["start"] = {"dateTime": graph_stamp(start.replace(tzinfo=None)), "timeZone": series.tz_label}
    end = (original_start + series.duration).astimezone(series.tz)
    end_label = master["end"].get("timeZone") or series.tz_label
    event["end"] = to_value(end, end_label)
    if exc:
        event["type"] = "exception"
        event.update(copy.deepcopy(exc.get("fields") or {}))
        event["changeKey"] = exc["changeKey"]
        event["lastModifiedDateTime"] = exc["lastModifiedDateTime"]
    return event


def instances(master_or_single: dict, lo: datetime, hi: datetime) -> list[dict]:
    """The instances of one stored event that overlap [lo, hi): itself, or a series' occurrences
    and exceptions (moved ones where they are now), cancelled occurrences left out."""
    if master_or_single.get("type") != "seriesMaster":
        start, end = extent(master_or_single)
        return [master_or_single] if overlaps(start, end, lo, hi) else []
    series = Series(master_or_single)
    out: list[dict] = []
    exceptions = master_or_single.get("_exceptions") or {}
    for original in series.starts(lo, hi):
        if utc_z(original) in exceptions:
            continue
        occ = occurrence(master_or_single, original, series)
        if occ is not None:
            out.append(occ)
    for key, exc in exceptions.items():
        if exc.get("cancelled"):
            continue
        original = datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        occ = occurrence(master_or_single, original, series)
        if occ is not None and overlaps(*extent(occ), lo, hi):
            out.append(occ)
    return out


def sort_key(event: dict) -> tuple:
    return (instant(event["start"]), event["id"])


def render(event: dict, label: str = "UTC", *, basic: bool = False, hide_transaction_id: bool = False,
           expand_props: str | None = None) -> dict:
    """What Graph returns for an internal event: times in `label`'s zone, etag, hidden fields
    dropped. `expand_props` is the id an $expand=singleValueExtendedProperties($filter=id eq ..)
    asked for ("*" = all); without it the extended properties are not returned."""
    out = {"@odata.etag": f'W/"{event["changeKey"]}"'}
    for key, value in event.items():
        if key.startswith("_"):
            continue
        out[key] = copy.deepcopy(value)
    props = out.pop("singleValueExtendedProperties", None) or []
    if expand_props is not None and not basic:
        wanted = [p for p in props if expand_props == "*" or p.get("id", "").lower() == expand_props.lower()]
        if wanted:
            out["singleValueExtendedProperties"] = wanted
    if event.get("isAllDay"):
        for name in ("start", "end"):
            day = parse_local(event[name]["dateTime"])[0].date()
            out[name] = {"dateTime": day.isoformat() + "T00:00:00.0000000", "timeZone": label}
    else:
        for name in ("start", "end"):
            out[name] = to_value(instant(event[name]), label)
    if basic:
        for name in BASIC_HIDDEN:
            out.pop(name, None)
    if hide_transaction_id:
        out.pop("transactionId", None)
    return out


def removed(event_id: str) -> dict:
    return {"@odata.type": "#microsoft.graph.event", "id": event_id, "@removed": {"reason": "deleted"}}
