"""The fake Graph API's memory: mailboxes, calendars, events, each calendar's change log.

A change log entry is (event id, the stored event as it was BEFORE the change or None): one
entry per write of a single or a series (an occurrence's move or cancellation is a write of
its master). A delta token holds a position in that log; the delta since position N compares
each touched event's state before entry N+1 with its state now (graph_delta).

Writes validate as Graph does (all-day = midnight..midnight in one zone, known zones, a valid
patternedRecurrence), dedupe creates by transactionId per mailbox, and record the meeting
mail Exchange would send. Callers hold `State.lock` (re-entrant) around every use.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fakes.graph_errors import GraphError
from tests.fakes.graph_events import OVERRIDABLE, ical_uid, occurrence, parse_occurrence_id
from tests.fakes.graph_time import Series, check_recurrence, instant, is_midnight, normalise, utc_stamp, utc_z
from tests.fakes.ms_directory import MsUser

#: what a create body may hold (anything else: 400, as Graph says "property does not exist")
WRITABLE = {"subject", "body", "start", "end", "isAllDay", "showAs", "sensitivity", "location", "locations",
            "attendees", "transactionId", "singleValueExtendedProperties", "categories", "isOnlineMeeting",
            "onlineMeetingProvider", "recurrence", "importance", "isReminderOn", "reminderMinutesBeforeStart",
            "responseRequested", "allowNewTimeProposals", "hideAttendees", "originalStartTimeZone",
            "originalEndTimeZone", "multiValueExtendedProperties", "extensions"}
#: read-only properties a client may echo back; Graph ignores them
READ_ONLY = {"id", "@odata.etag", "@odata.type", "@odata.context", "changeKey", "createdDateTime",
             "lastModifiedDateTime", "iCalUId", "type", "seriesMasterId", "originalStart", "isCancelled",
             "organizer", "responseStatus", "onlineMeeting", "bodyPreview", "webLink", "isOrganizer",
             "hasAttachments", "isDraft", "occurrenceId", "uid"}
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
SENSITIVITY = ("normal", "personal", "private", "confidential")
_TAGS = re.compile(r"<[^>]+>")


def new_id(prefix: str = "AAMkAG") -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode().rstrip("=")


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(12)).decode()


@dataclass
class Calendar:
    id: str
    name: str
    owner: str
    can_edit: bool = True
    is_default: bool = False
    color: str = "auto"
    hex_color: str = ""
    events: dict[str, dict] = field(default_factory=dict)
    #: (event id, stored event before the change or None); position N = first N entries
    log: list[tuple[str, dict | None]] = field(default_factory=list)
    #: bumped by expire_delta_tokens: older tokens answer 410
    generation: int = 0


@dataclass
class Mailbox:
    user: MsUser
    calendars: dict[str, Calendar] = field(default_factory=dict)
    default_id: str = ""
    #: transactionId -> (calendar id, event id) of the event it created
    transactions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def email(self) -> str:
        return self.user.email


def _preview(body: dict | None) -> str:
    if not isinstance(body, dict):
        return ""
    text = str(body.get("content") or "")
    if str(body.get("contentType", "")).lower() == "html":
        text = _TAGS.sub(" ", text)
    return " ".join(text.split())[:255]


def _attendees(items) -> list[dict]:
    out = []
    for a in items or []:
        addr = (a.get("emailAddress") or {})
        out.append({"type": a.get("type") or "required",
                    "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                    "emailAddress": {"name": addr.get("name") or addr.get("address", ""),
                                     "address": addr.get("address", "")}})
    return out


def validate_times(event: dict) -> None:
    """Graph's checks: start and end present, known zones, not reversed, all-day at midnight."""
    for name in ("start", "end"):
        if not isinstance(event.get(name), dict) or not event[name].get("dateTime"):
            raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. Start and End are required.")
    start, end = instant(event["start"]), instant(event["end"])
    if end < start:
        raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. The end time is before the start.")
    if event.get("isAllDay"):
        same = (event["start"].get("timeZone") or "UTC") == (event["end"].get("timeZone") or "UTC")
        if not (is_midnight(event["start"]) and is_midnight(event["end"]) and same and end > start):
            raise GraphError(400, "ErrorInvalidRequest",
                             "Your request can't be completed. If isAllDay is true, the start and end times must be "
                             "set to midnight and be in the same time zone.")
    if event.get("recurrence"):
        check_recurrence(event["recurrence"])


class State:
    """Everything the fake knows."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.mailboxes: dict[str, Mailbox] = {}
        self.invitations: list[dict] = []
        self.cancellations: list[dict] = []

    # ---- mailboxes and calendars --------------------------------------------------------
    def mailbox(self, user: MsUser) -> Mailbox:
        key = user.email.lower()
        mb = self.mailboxes.get(key)
        if mb is None:
            mb = self.mailboxes[key] = Mailbox(user)
            cal = self.add_calendar(mb, "Calendar")
            cal.is_default = True
            mb.default_id = cal.id
        return mb

    def add_calendar(self, mb: Mailbox, name: str, can_edit: bool = True) -> Calendar:
        cal = Calendar(new_id("AAMkAC"), name, mb.email, can_edit)
        mb.calendars[cal.id] = cal
        return cal

    def calendar(self, mb: Mailbox, calendar_id: str | None) -> Calendar:
        cal = mb.calendars.get(calendar_id or mb.default_id)
        if cal is None:
            raise GraphError(404, "ErrorItemNotFound")
        return cal

    def find(self, mb: Mailbox, event_id: str) -> tuple[Calendar, dict, datetime | None]:
        """(calendar, stored single or master, original start when the id names an occurrence)."""
        occ = parse_occurrence_id(event_id)
        target, original = (occ if occ else (event_id, None))
        for cal in mb.calendars.values():
            stored = cal.events.get(target)
            if stored is None:
                continue
            if original is None:
                return cal, stored, None
            if stored.get("type") == "seriesMaster" and Series(stored).is_occurrence(original):
                exc = (stored.get("_exceptions") or {}).get(utc_z(original))
                if not (exc and exc.get("cancelled")):
                    return cal, stored, original
        raise GraphError(404, "ErrorItemNotFound")

    def current(self, cal: Calendar, stored: dict, original: datetime | None) -> dict:
        """The event an id names as clients see it (an occurrence is rendered from its master)."""
        if original is None:
            return stored
        occ = occurrence(stored, original, Series(stored))
        if occ is None:
            raise GraphError(404, "ErrorItemNotFound")
        return occ

    def _record(self, cal: Calendar, event_id: str, before: dict | None) -> None:
        cal.log.append((event_id, copy.deepcopy(before) if before is not None else None))

    # ---- writes -------------------------------------------------------------------------
    def create(self, mb: Mailbox, cal: Calendar, body: dict) -> tuple[dict, bool]:
        """(event, created): a new event, or the existing one its transactionId already made."""
        if not cal.can_edit:
            raise GraphError(403, "ErrorAccessDenied")
        unknown = sorted(k for k in body if k not in WRITABLE and k not in READ_ONLY)
        if unknown:
            raise GraphError(400, "RequestBodyRead",
                             f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.event'.")
        tx = body.get("transactionId")
        if tx and tx in mb.transactions:
            cal_id, event_id = mb.transactions[tx]
            found = mb.calendars.get(cal_id, cal).events.get(event_id)
            if found is not None:
                return found, False
        now = datetime.now(UTC)
        event_id = new_id()
        event: dict = {
            "id": event_id, "createdDateTime": utc_stamp(now), "lastModifiedDateTime": utc_stamp(now),
            "changeKey": new_change_key(), "categories": [], "transactionId": None,
            "originalStartTimeZone": None, "originalEndTimeZone": None, "iCalUId": ical_uid(event_id),
            "reminderMinutesBeforeStart": 15, "isReminderOn": True, "hasAttachments": False,
            "subject": "", "bodyPreview": "", "importance": "normal", "sensitivity": "normal", "isAllDay": False,
            "isCancelled": False, "isOrganizer": True, "responseRequested": True, "seriesMasterId": None,
            "showAs": "busy", "type": "singleInstance", "originalStart": None, "isOnlineMeeting": False,
            "onlineMeetingProvider": "unknown", "onlineMeeting": None, "recurrence": None,
            "body": {"contentType": "text", "content": ""},
            "location": {"displayName": "", "locationType": "default"}, "attendees": [],
            "organizer": {"emailAddress": {"name": mb.user.name, "address": mb.email}},
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "singleValueExtendedProperties": [],
        }
        self._apply(mb, event, body, creating=True)
        if event.get("recurrence"):
            event["type"] = "seriesMaster"
            event["_exceptions"] = {}
        validate_times(event)
        cal.events[event_id] = event
        if tx:
            mb.transactions[tx] = (cal.id, event_id)
        self._record(cal, event_id, None)
        self._invite(mb, event, "request")
        return event, True

    def _apply(self, mb: Mailbox, event: dict, body: dict, creating: bool) -> None:
        """Merge a client's fields into an event (create or PATCH)."""
        for key, value in body.items():
            if key in READ_ONLY or key.startswith("@"):
                continue
            if key not in WRITABLE:
                raise GraphError(400, "RequestBodyRead",
                                 f"The property '{key}' does not exist on type 'microsoft.graph.event'.")
            if key == "transactionId" and not creating:
                if value != event.get("transactionId"):
                    raise GraphError(400, "ErrorInvalidRequest", "transactionId cannot be changed.")
                continue
            if key in ("start", "end"):
                if not isinstance(value, dict) or not value.get("dateTime"):
                    raise GraphError(400, "ErrorInvalidRequest", f"Invalid {key}.")
                event[key] = normalise(value)
                event["originalStartTimeZone" if key == "start" else "originalEndTimeZone"] = event[key]["timeZone"]
            elif key == "showAs" and value not in SHOW_AS:
                raise GraphError(400, "ErrorInvalidRequest", f"Invalid showAs value '{value}'.")
            elif key == "sensitivity" and value not in SENSITIVITY:
                raise GraphError(400, "ErrorInvalidRequest", f"Invalid sensitivity value '{value}'.")
            elif key == "body":
                event["body"] = {"contentType": (value or {}).get("contentType", "text"),
                                 "content": (value or {}).get("content", "")}
                event["bodyPreview"] = _preview(value)
            elif key == "attendees":
                event["attendees"] = _attendees(value)
            elif key == "singleValueExtendedProperties":
                props = {p["id"]: p for p in event.get("singleValueExtendedProperties") or []}
                for p in value or []:
                    if not isinstance(p, dict) or not str(p.get("id", "")).startswith(("String ", "Integer ",
                                                                                       "Boolean ", "SystemTime ")):
                        raise GraphError(400, "ErrorInvalidProperty", "Invalid extended property id.")
                    props[p["id"]] = {"id": p["id"], "value": p.get("value")}
                event["singleValueExtendedProperties"] = list(props.values())
            elif key == "location":
                event["location"] = {"displayName": (value or {}).get("displayName", ""), "locationType": "default",
                                     **{k: v for k, v in (value or {}).items() if k != "displayName"}}
            else:
                event[key] = copy.deepcopy(value)
        if "isOnlineMeeting" in body or "onlineMeetingProvider" in body:
            self._online_meeting(mb, event)

    @staticmethod
    def _online_meeting(mb: Mailbox, event: dict) -> None:
        """Teams for work accounts; personal accounts get no meeting (no Teams for Business)."""
        if not event.get("isOnlineMeeting") or mb.user.personal:
            event["isOnlineMeeting"] = False
            event["onlineMeeting"] = None
            return
        if event.get("onlineMeetingProvider") in (None, "unknown"):
            event["onlineMeetingProvider"] = "teamsForBusiness"
        if not event.get("onlineMeeting"):
            event["onlineMeeting"] = {"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                                                 + secrets.token_urlsafe(24) + "%40thread.v2/0"}

    def _invite(self, mb: Mailbox, event: dict, kind: str) -> None:
        if event.get("attendees"):
            self.invitations.append({"mailbox": mb.email, "event_id": event["id"], "kind": kind,
                                     "subject": event.get("subject"),
                                     "attendees": [a["emailAddress"]["address"] for a in event["attendees"]]})

    def _touch(self, event: dict) -> None:
        event["changeKey"] = new_change_key()
        event["lastModifiedDateTime"] = utc_stamp(datetime.now(UTC))

    def update(self, mb: Mailbox, event_id: str, body: dict, if_match: str | None, owner: bool = False) -> dict:
        """PATCH; `owner` = the mailbox owner editing in Outlook (read-only calendars too)."""
        cal, stored, original = self.find(mb, event_id)
        if not cal.can_edit and not owner:
            raise GraphError(403, "ErrorAccessDenied")
        check_etag(self.current(cal, stored, original), if_match)
        before = copy.deepcopy(stored)
        if original is None:
            work = copy.deepcopy(stored)
            self._apply(mb, work, body, creating=False)
            if work.get("recurrence") and work.get("type") == "singleInstance":
                work["type"], work["_exceptions"] = "seriesMaster", {}
            elif work.get("type") == "seriesMaster" and {"start", "end", "recurrence"} & set(body):
                # Exchange drops a series' exceptions when its pattern or times change
                work["_exceptions"] = {}
            validate_times(work)
            self._touch(work)
            cal.events[stored["id"]] = work
            result = work
        else:
            bad = [k for k in body if k not in OVERRIDABLE and k not in READ_ONLY and not k.startswith("@")]
            if bad:
                raise GraphError(400, "ErrorInvalidRequest", f"'{bad[0]}' cannot be set on an occurrence.")
            current = self.current(cal, stored, original)
            self._apply(mb, current, body, creating=False)
            validate_times(current)
            key = utc_z(original)
            exc = stored["_exceptions"].setdefault(key, {"cancelled": False, "fields": {}})
            keys = set(body) & set(OVERRIDABLE)
            keys |= {derived for name, derived in (("start", "originalStartTimeZone"), ("end", "originalEndTimeZone"),
                                                   ("body", "bodyPreview")) if name in body}
            if keys & {"isOnlineMeeting", "onlineMeetingProvider"}:
                keys |= {"isOnlineMeeting", "onlineMeetingProvider", "onlineMeeting"}
            exc["fields"].update({k: copy.deepcopy(current[k]) for k in keys if k in current})
            exc["changeKey"] = new_change_key()
            exc["lastModifiedDateTime"] = utc_stamp(datetime.now(UTC))
            self._touch(stored)
            result = self.current(cal, stored, original)
        self._record(cal, stored["id"], before)
        if "attendees" in body or ("start" in body and result.get("attendees")):
            self._invite(mb, result, "update")
        return result

    def delete(self, mb: Mailbox, event_id: str, if_match: str | None = None, owner: bool = False) -> None:
        cal, stored, original = self.find(mb, event_id)
        if not cal.can_edit and not owner:
            raise GraphError(403, "ErrorAccessDenied")
        target = self.current(cal, stored, original)
        check_etag(target, if_match)
        before = copy.deepcopy(stored)
        if original is None:
            del cal.events[stored["id"]]
        else:
            stored["_exceptions"][utc_z(original)] = {"cancelled": True, "fields": {},
                                                     "changeKey": new_change_key(),
                                                     "lastModifiedDateTime": utc_stamp(datetime.now(UTC))}
            self._touch(stored)
        self._record(cal, stored["id"], before)
        if target.get("attendees"):
            self.cancellations.append({"mailbox": mb.email, "event_id": target["id"], "subject": target.get("subject"),
                                       "attendees": [a["emailAddress"]["address"] for a in target["attendees"]]})


def check_etag(event: dict, if_match: str | None) -> None:
    """If-Match naming another version -> 412 ErrorIrresolvableConflict."""
    if if_match is None or if_match.strip() in ("", "*"):
        return

    def bare(tag: str) -> str:
        return tag.strip().removeprefix("W/").strip('"')

    if bare(if_match) != event["changeKey"]:
        raise GraphError(412, "ErrorIrresolvableConflict")
