"""The Google fake's memory: users, calendars, events with a change log, OAuth grants, tokens.

Every event lives in its calendar as the API body Google would return (a deleted one keeps its
body with `status: cancelled`, since Google keeps deleted ids reserved). Each write bumps the
calendar's change sequence and stamps the event with it; a sync token is an opaque string
that maps to (calendar, sequence), so an incremental listing is "every event stamped after
that sequence". All access goes through `State.lock` (one re-entrant lock).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from tests.fakes.google_errors import ApiError
from tests.fakes.google_time import (
    Series,
    event_time,
    new_etag,
    now,
    occurrence_key,
    rfc3339,
)

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
ROLES = ("freeBusyReader", "reader", "writer", "owner")
#: Google's rule for client-supplied event ids
_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
#: fields a client cannot set (Google ignores them in bodies)
READ_ONLY = {"kind", "etag", "id", "created", "updated", "htmlLink", "creator", "iCalUID", "hangoutLink",
             "recurringEventId", "originalStartTime"}


def full_scope(scope: str) -> str:
    """`calendar.events` -> its URL; URLs and the OpenID names stay as they are."""
    if scope.startswith("https://") or scope in ("openid", "email", "profile"):
        return scope
    return SCOPE_PREFIX + scope


@dataclass
class Calendar:
    id: str
    owner: str
    summary: str
    time_zone: str
    color: str
    events: dict[str, dict] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # event id -> sequence of its last change
    seq: int = 0


@dataclass
class Subscription:
    """One calendarList entry of a user."""

    calendar_id: str
    access_role: str
    primary: bool = False


@dataclass
class User:
    email: str
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


@dataclass
class AccessToken:
    email: str
    scopes: frozenset[str]
    client_id: str
    expires_at: float  # epoch seconds
    valid: bool = True


@dataclass
class RefreshGrant:
    email: str
    scopes: tuple[str, ...]
    client_id: str
    revoked: bool = False


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    email: str
    scopes: tuple[str, ...]
    challenge: str | None
    method: str | None
    offline: bool
    expires_at: float
    used: bool = False


def _random_id(n: int = 26) -> str:
    """A random base32hex lowercase id, the kind Google generates."""
    return base64.b32hexencode(secrets.token_bytes(n)).decode().lower().rstrip("=")[:n]


def is_deleted(event: dict) -> bool:
    return event.get("status") == "cancelled"


class State:
    """Everything the fake knows. Callers hold `lock` around every use."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.calendars: dict[str, Calendar] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.codes: dict[str, AuthCode] = {}
        self.consented: set[tuple[str, str]] = set()  # (email, client_id) that gave offline consent once
        self.sync_tokens: dict[str, tuple[str, int]] = {}
        # page token -> (calendar id, response head, remaining pages, nextSyncToken or None)
        self.pages: dict[str, tuple[str, dict, list[list[dict]], str | None]] = {}
        self.empty_pages = False  # every other page of a listing comes back empty

    # ---- users and calendars -------------------------------------------------------------
    def add_user(self, email: str, time_zone: str) -> str:
        if email not in self.users:
            self.users[email] = User(email)
            self.add_calendar(email, email, "owner", time_zone, "#9fc6e7", email, primary=True)
        return email

    def add_calendar(self, email: str, summary: str, access_role: str, time_zone: str, color: str,
                     calendar_id: str | None, primary: bool = False) -> str:
        if access_role not in ROLES:
            raise ValueError(f"access_role must be one of {ROLES}")
        user = self.users[email]
        cal_id = calendar_id or f"{_random_id(26)}@group.calendar.google.com"
        if cal_id not in self.calendars:
            self.calendars[cal_id] = Calendar(cal_id, email, summary, time_zone, color)
        user.subscriptions[cal_id] = Subscription(cal_id, access_role, primary)
        return cal_id

    def resolve_calendar(self, email: str, calendar_id: str) -> tuple[Calendar, Subscription]:
        """The calendar a user asks for ("primary" allowed); 404 when the user cannot see it."""
        user = self.users.get(email)
        if user is None:
            raise ApiError(404, "notFound")
        if calendar_id == "primary":
            calendar_id = next((s.calendar_id for s in user.subscriptions.values() if s.primary), "")
        sub = user.subscriptions.get(calendar_id)
        if sub is None or calendar_id not in self.calendars:
            raise ApiError(404, "notFound")
        return self.calendars[calendar_id], sub

    # ---- tokens --------------------------------------------------------------------------
    def issue_access_token(self, email: str, scopes: tuple[str, ...], client_id: str, lifetime: float) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.access_tokens[token] = AccessToken(email, frozenset(scopes), client_id, time.time() + lifetime)
        return token

    def issue_refresh_token(self, email: str, scopes: tuple[str, ...], client_id: str) -> str:
        token = "1//fake-" + secrets.token_urlsafe(32)
        self.refresh_grants[token] = RefreshGrant(email, scopes, client_id)
        return token

    def new_sync_token(self, cal: Calendar) -> str:
        token = "CP" + secrets.token_urlsafe(18)
        self.sync_tokens[token] = (cal.id, cal.seq)
        return token

    # ---- events: lookup ------------------------------------------------------------------
    def _instance_of(self, cal: Calendar, event_id: str) -> dict | None:
        """A not-yet-stored instance of a live recurring master, materialised from its id."""
        master_id, sep, key = event_id.rpartition("_")
        master = cal.events.get(master_id) if sep else None
        if master is None or not master.get("recurrence"):
            return None
        series = Series(master, cal.time_zone)
        try:
            start, _ = event_time({"date": f"{key[:4]}-{key[4:6]}-{key[6:8]}"} if len(key) == 8 else
                                  {"dateTime": f"{key[:4]}-{key[4:6]}-{key[6:8]}T{key[9:11]}:{key[11:13]}:{key[13:15]}Z"},
                                  cal.time_zone)
        except ValueError:
            return None
        # a generous window around the start: zones of the key and of the series may differ by a day
        match = [o for o in series.between(start - timedelta(days=1), start + series.duration + timedelta(days=1))
                 if o.key == key]
        if not match:
            return None
        return instance_body(master, match[0])

    def lookup(self, cal: Calendar, event_id: str) -> tuple[dict | None, bool]:
        """(event, stored): a stored event, or a materialised instance (stored False), or None."""
        if event_id in cal.events:
            return cal.events[event_id], True
        return self._instance_of(cal, event_id), False

    # ---- events: writes ------------------------------------------------------------------
    def _stamp(self, cal: Calendar, event: dict) -> dict:
        """Record a change: new etag and updated time, next sequence number, stored."""
        cal.seq += 1
        event["etag"] = new_etag()
        event["updated"] = rfc3339(now())
        cal.events[event["id"]] = event
        cal.changed[event["id"]] = cal.seq
        return event

    def insert(self, cal: Calendar, body: dict, actor: str, conference: bool, check_id: bool = True) -> dict:
        event_id = body.get("id")
        if event_id is not None:
            if check_id and not (isinstance(event_id, str) and _ID_RE.match(event_id)):
                raise ApiError(400, "invalid", "Invalid resource id value.")
            if event_id in cal.events:  # live or deleted: ids stay reserved
                raise ApiError(409, "duplicate")
        else:
            event_id = _random_id()
        stamp = rfc3339(now())
        event = {
            "kind": "calendar#event", "id": event_id, "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid="
                        + base64.urlsafe_b64encode(f"{event_id} {cal.id}".encode()).decode().rstrip("="),
            "created": stamp, "creator": {"email": actor}, "organizer": {"email": cal.id},
            "iCalUID": body.get("iCalUID") or f"{event_id}@google.com", "sequence": 0,
            "reminders": {"useDefault": True}, "eventType": "default",
        }
        if cal.id != cal.owner:
            event["organizer"]["displayName"] = cal.summary
        for key, value in body.items():
            if key not in READ_ONLY and value is not None:
                event[key] = copy.deepcopy(value)
        if body.get("recurringEventId"):  # exceptions put by a test keep their series link
            event["recurringEventId"] = body["recurringEventId"]
            event["originalStartTime"] = copy.deepcopy(body.get("originalStartTime") or body.get("start"))
        if not conference:
            event.pop("conferenceData", None)  # version 0: the client's conference data is ignored
        self._conference(event, conference)
        validate_times(event, cal.time_zone)
        return copy.deepcopy(self._stamp(cal, event))

    def patch(self, cal: Calendar, event_id: str, body: dict, if_match: str | None, conference: bool) -> dict:
        event = self._writable(cal, event_id, if_match, undelete=body.get("status") == "confirmed")
        kept = copy.deepcopy(event.get("conferenceData"))
        for key, value in body.items():
            if key in READ_ONLY:
                continue
            if key == "extendedProperties" and isinstance(value, dict):
                props = event.setdefault("extendedProperties", {})
                for scope in ("private", "shared"):
                    if scope in value:
                        merged = props.setdefault(scope, {})
                        for k, v in (value[scope] or {}).items():
                            if v is None:
                                merged.pop(k, None)
                            else:
                                merged[k] = v
            elif value is None:
                event.pop(key, None)
            else:
                event[key] = copy.deepcopy(value)
        return self._finish_write(cal, event, conference, kept)

    def update(self, cal: Calendar, event_id: str, body: dict, if_match: str | None, conference: bool) -> dict:
        old = self._writable(cal, event_id, if_match, undelete=False)
        event = {k: old[k] for k in ("kind", "id", "htmlLink", "created", "creator", "organizer", "iCalUID",
                                     "recurringEventId", "originalStartTime") if k in old}
        event.update({"status": "confirmed", "sequence": old.get("sequence", 0),
                      "reminders": {"useDefault": True}, "eventType": "default"})
        for key, value in body.items():
            if key not in READ_ONLY and value is not None:
                event[key] = copy.deepcopy(value)
        return self._finish_write(cal, event, conference, copy.deepcopy(old.get("conferenceData")))

    def delete(self, cal: Calendar, event_id: str, if_match: str | None = None) -> None:
        event, stored = self.lookup(cal, event_id)
        if event is None:
            raise ApiError(404, "notFound")
        if stored and is_deleted(event):
            raise ApiError(410, "deleted")
        check_etag(event, if_match)
        event = copy.deepcopy(event)
        event["status"] = "cancelled"
        self._stamp(cal, event)
        self._cascade(cal, event)

    def put(self, cal: Calendar, body: dict) -> dict:
        """A user's own edit in Google: create or wholly replace, any id shape allowed."""
        body = copy.deepcopy(body)
        old = cal.events.get(body.get("id", ""))
        if old is None:
            return self.insert(cal, body, cal.owner, conference=False, check_id=False)
        event = {k: old[k] for k in ("kind", "id", "htmlLink", "created", "creator", "organizer", "iCalUID",
                                     "recurringEventId", "originalStartTime") if k in old}
        event.update({"status": "confirmed", "sequence": old.get("sequence", 0)})
        event.update({k: v for k, v in body.items() if v is not None and k not in ("etag", "updated")})
        validate_times(event, cal.time_zone)
        self._stamp(cal, event)
        self._cascade(cal, event)
        return copy.deepcopy(event)

    def _writable(self, cal: Calendar, event_id: str, if_match: str | None, undelete: bool) -> dict:
        """A working copy of the event to write (instances become exceptions)."""
        event, stored = self.lookup(cal, event_id)
        if event is None:
            raise ApiError(404, "notFound")
        if stored and is_deleted(event) and not undelete:
            raise ApiError(403, "forbidden")
        check_etag(event, if_match)
        return copy.deepcopy(event)

    def _finish_write(self, cal: Calendar, event: dict, conference: bool, kept: dict | None = None) -> dict:
        if not conference:
            # conferenceDataVersion=0: the client knows nothing of conferences, so Google ignores
            # what it sent and keeps the event's own
            event.pop("conferenceData", None)
            if kept:
                event["conferenceData"] = kept
        self._conference(event, conference)
        validate_times(event, cal.time_zone)
        self._stamp(cal, event)
        self._cascade(cal, event)
        return copy.deepcopy(event)

    def _cascade(self, cal: Calendar, event: dict) -> None:
        """A cancelled master takes its exceptions with it."""
        if not (is_deleted(event) and event.get("recurrence")):
            return
        for other in list(cal.events.values()):
            if other.get("recurringEventId") == event["id"] and not is_deleted(other):
                other = copy.deepcopy(other)
                other["status"] = "cancelled"
                self._stamp(cal, other)

    @staticmethod
    def _conference(event: dict, conference: bool) -> None:
        """conferenceDataVersion=1 with a createRequest makes a Meet link; otherwise Google drops it."""
        data = event.get("conferenceData")
        if not data or not conference:
            return
        if "createRequest" in data and "entryPoints" not in data:
            # one conference per request id, each with its own code (like Google's xxx-yyyy-zzz)
            digest = hashlib.sha256(str(data["createRequest"].get("requestId")).encode()).hexdigest()
            letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:10])
            code = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
            uri = f"https://meet.google.com/{code}"
            data["createRequest"]["status"] = {"statusCode": "success"}
            data["entryPoints"] = [{"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{code}"}]
            data["conferenceSolution"] = {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"}
            data["conferenceId"] = code
            event["hangoutLink"] = uri


def check_etag(event: dict, if_match: str | None) -> None:
    """If-Match that names another version -> 412 conditionNotMet."""
    if if_match is None or if_match.strip() == "*":
        return

    def bare(tag: str) -> str:
        return tag.strip().removeprefix("W/").strip('"')

    if bare(if_match) != bare(event.get("etag", "")):
        raise ApiError(412, "conditionNotMet")


def validate_times(event: dict, default_tz: str) -> None:
    """Google's checks on start/end: present, same kind, not reversed, zone for a series."""
    start, end = event.get("start"), event.get("end")
    if is_deleted(event) and event.get("recurringEventId") and not start:
        return  # a cancelled exception needs only its original start
    if not isinstance(start, dict) or not (start.get("date") or start.get("dateTime")):
        raise ApiError(400, "required", "Missing start time.")
    if not isinstance(end, dict) or not (end.get("date") or end.get("dateTime")):
        raise ApiError(400, "required", "Missing end time.")
    if bool(start.get("date")) != bool(end.get("date")):
        raise ApiError(400, "invalid", "Start and end times must either both be date or both be dateTime.")
    try:
        s, _ = event_time(start, default_tz)
        e, _ = event_time(end, default_tz)
    except (ValueError, TypeError) as err:
        raise ApiError(400, "invalid", "Invalid start or end time.") from err
    if e < s:
        raise ApiError(400, "timeRangeEmpty")
    if event.get("recurrence"):
        if start.get("dateTime") and not start.get("timeZone"):
            raise ApiError(400, "required", "Missing time zone definition for start time.")
        try:
            Series(event, default_tz)
        except (ValueError, TypeError) as err:
            raise ApiError(400, "invalid", "Invalid recurrence rule.") from err


def instance_body(master: dict, occ) -> dict:
    """One instance of a master as Google shows it (id `<master>_<key>`)."""
    event = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
    event["id"] = f"{master['id']}_{occ.key}"
    event["start"], event["end"] = copy.deepcopy(occ.start_value), copy.deepcopy(occ.end_value)
    event["recurringEventId"] = master["id"]
    event["originalStartTime"] = copy.deepcopy(occ.start_value)
    return event


def exception_key(event: dict, default_tz: str) -> str | None:
    """The occurrence key an exception replaces (from originalStartTime)."""
    original = event.get("originalStartTime")
    if not event.get("recurringEventId") or not original:
        return None
    try:
        return occurrence_key(original, default_tz)
    except (ValueError, KeyError, TypeError):
        return None
