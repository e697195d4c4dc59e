"""Google Calendar provider (API v3) behind the provider contract.

Reading (provider-facts §1.1, §1.2):

- `events.list` with `singleEvents=false` and `showDeleted=true`, the same parameters every
  time; a full listing adds `timeMin` (the window's start, as Google's own sample does) and
  follows `nextPageToken` through empty pages until the last page hands out
  `nextSyncToken`. Incremental calls send the token and nothing that cannot go with it.
  410 raises InvalidCursor: the engine lists again and diffs, keeping its mapping rows.
- The cursor is ``g1.<params>:<token>``: a token is only ever used with the parameter set it
  was issued for (Google hands out the same token for different filters).
- The unit (`Item`) is a Google event; a recurring series is one item (the master's id)
  whose occurrences inside the window come from `events.instances` with `showDeleted`, so
  Google expands it in the series' own zone (DST) and cancelled or moved occurrences come
  back as Google keeps them. A changed exception alone re-reads its series. In a full
  listing a series whose master and exceptions carry the etags the caller knows is not
  re-read.
- free-busy mode asks for time fields only (`fields=`), and the token's scope
  (calendar.events.freebusy) would not show more anyway.

Writing (§1.3, §1.4): event ids derive from the idempotency key (base32hex); an insert that
meets 409 (the id exists, or is a deleted id Google keeps reserved) reads the event and
patches it (restoring a deleted one). Clones and busy blocks are marked in
`extendedProperties.private`, carry no attendees and are written with sendUpdates=none.
Many creates go out as batches (`create_many`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from daemon.config import Config
from daemon.errors import AccessDenied, HomecalError, InvalidCursor, NotFound, ProviderError
from daemon.models import AccessMode, CalendarInfo, ChangeSet, Draft, EventRef, Interval, Item, Window
from daemon.providers import google_events as ge
from daemon.providers import google_http as gh
from daemon.providers.base import Provider

log = logging.getLogger("homecal.google")

CURSOR_PREFIX = "g1."
PAGE_SIZE = 2500
#: freebusy.query limits (provider-facts §1.5)
FREEBUSY_DAYS = 90
FREEBUSY_CALENDARS = 50
#: fields asked for in free-busy mode: times and busy status, never text
_FREE_BUSY_FIELDS = ("nextPageToken,nextSyncToken,items(id,etag,status,start,end,transparency,recurrence,"
                     "recurringEventId,originalStartTime,iCalUID)")
#: time fields of one occurrence in free-busy mode (events.instances)
_FREE_BUSY_INSTANCE_FIELDS = ("nextPageToken,items(id,etag,status,start,end,transparency,recurringEventId,"
                              "originalStartTime,iCalUID)")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_expiry(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # google-auth compares expiry with a naive UTC clock
    return moment.astimezone(UTC).replace(tzinfo=None)


def credentials_from(secret: Mapping[str, Any], config: Config):
    """google-auth Credentials for an account's sealed secret (refresh through `[google] token_uri`)."""
    from google.oauth2.credentials import Credentials

    return Credentials(
        token=secret.get("token") or None, refresh_token=secret.get("refresh_token") or None,
        token_uri=config.google.token_uri, client_id=secret.get("client_id") or config.google.client_id,
        client_secret=secret.get("client_secret") or config.google.client_secret,
        scopes=list(secret.get("scopes") or ()) or None, expiry=_parse_expiry(secret.get("expiry")))


def token_updates(credentials) -> dict[str, Any]:
    """What changes in an account's secret after the library refreshed its access token."""
    expiry = credentials.expiry.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if credentials.expiry else None
    return {"token": credentials.token, "expiry": expiry,
            "refreshed_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")}


def google_provider(config: Config, secret: Mapping[str, Any], mode: AccessMode, tz: tzinfo, *,
                    on_token: Callable[[dict], None] | None = None) -> GoogleProvider:
    """A provider for one Google account; `on_token(updates)` is told of every token refresh."""
    credentials = credentials_from(secret, config)
    service = gh.build_service(config.google.api_endpoint, credentials)
    user = f"{secret.get('client_id') or config.google.client_id}:{secret.get('email') or id(credentials)}"
    caller = gh.Caller(service, credentials, gh.bucket_for(user, config.google.requests_per_minute),
                       config.google.api_endpoint,
                       on_token=(lambda creds: on_token(token_updates(creds))) if on_token else None)
    return GoogleProvider(caller, mode=mode, tz=tz, email=secret.get("email") or None)


class GoogleProvider(Provider):
    """One linked Google account."""

    kind = "google"
    can_write = True
    incremental = True
    #: creates per batch request (the engine hands over many creates at once)
    batch_size = gh.BATCH_SIZE

    def __init__(self, caller: gh.Caller, *, mode: AccessMode, tz: tzinfo, email: str | None = None):
        super().__init__(mode=mode, tz=tz)
        self.caller = caller
        self.api = caller.service
        self.email = email
        self.details = mode == AccessMode.READ_WRITE

    # ------------------------------------------------------------------ calendars

    def list_calendars(self) -> list[CalendarInfo]:
        infos: list[CalendarInfo] = []
        page: str | None = None
        while True:
            answer = self.caller.execute(self.api.calendarList().list(pageToken=page, maxResults=250),
                                         "listing calendars")
            for entry in answer.get("items") or ():
                if not entry.get("id"):
                    continue
                if entry.get("primary"):
                    self.email = entry["id"]
                infos.append(CalendarInfo(
                    remote_id=entry["id"], name=entry.get("summaryOverride") or entry.get("summary") or entry["id"],
                    color=entry.get("backgroundColor"), writable=entry.get("accessRole") in ("owner", "writer"),
                    timezone=entry.get("timeZone")))
            page = answer.get("nextPageToken")
            if not page:
                return infos

    # ------------------------------------------------------------------ reading

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"singleEvents": False, "showDeleted": True, "maxResults": PAGE_SIZE}
        if not self.details:
            params["fields"] = _FREE_BUSY_FIELDS
        return params

    def _fingerprint(self) -> str:
        # what decides which events a token covers (the page size does not)
        text = repr(sorted((k, v) for k, v in self._params().items() if k != "maxResults"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def _split_cursor(self, cursor: str | None) -> str | None:
        if not cursor:
            return None
        head, _, token = cursor.partition(":")
        if head != CURSOR_PREFIX + self._fingerprint() or not token:
            # issued for other parameters (another mode or version): never reuse it
            return None
        return token

    def _list(self, calendar_id: str, token: str | None, window: Window) -> tuple[list[dict], str]:
        params = self._params()
        if token:
            params["syncToken"] = token
        else:
            params["timeMin"] = _rfc3339(window.start)
        events: list[dict] = []
        page: str | None = None
        while True:
            request = self.api.events().list(calendarId=calendar_id, pageToken=page, **params)
            try:
                answer = self.caller.execute(request, "listing events")
            except gh.Gone:
                if token:
                    raise InvalidCursor("Google's sync token is no longer valid (410); a full listing follows") \
                        from None
                raise
            # an empty page is not the end: only a missing nextPageToken is (§1.1)
            events.extend(answer.get("items") or ())
            page = answer.get("nextPageToken")
            if not page:
                next_token = answer.get("nextSyncToken")
                if not next_token:
                    raise ProviderError("Google's last page of events carried no sync token")
                return events, next_token

    def changes(self, calendar_id: str, cursor: str | None, window: Window,
                known: Mapping[str, str | None] | None = None) -> ChangeSet:
        token = self._split_cursor(cursor)
        events, next_token = self._list(calendar_id, token, window)
        new_cursor = f"{CURSOR_PREFIX}{self._fingerprint()}:{next_token}"
        full = token is None
        known = known or {}
        singles: dict[str, dict] = {}
        masters: dict[str, dict] = {}
        exceptions: dict[str, list[dict]] = {}
        removed: list[str] = []
        for ev in events:
            eid = ev.get("id")
            if not eid:
                continue
            if ev.get("recurringEventId"):
                exceptions.setdefault(ev["recurringEventId"], []).append(ev)
            elif ev.get("status") == "cancelled":
                removed.append(eid)  # a deleted event or series: only its id is guaranteed
            elif ev.get("recurrence"):
                masters[eid] = ev
            else:
                singles[eid] = ev
        items: list[Item] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        for eid, ev in singles.items():
            etag = ev.get("etag")
            if full and etag and known.get(eid) == etag:
                unchanged.append(eid)
                continue
            try:
                inst = ge.to_instance(ev, eid, details=self.details)
            except ge.EventUnreadable as err:
                log.warning("calendar event %s skipped: %s", _digest(eid), err)
                skipped.append(eid)
                continue
            items.append(Item(eid, etag, [inst] if ge.in_window(inst, window, self.tz) else []))
        # a series is re-read when its master or any exception changed
        touched = (set(masters) | set(exceptions)) - set(removed)
        for master_id in sorted(touched):
            master = masters.get(master_id)
            etag = ge.series_etag(master, exceptions.get(master_id, [])) if (full and master) else None
            if etag and known.get(master_id) == etag:
                unchanged.append(master_id)
                continue
            try:
                item = self._series(calendar_id, master_id, master, window, etag)
            except NotFound:
                item = None
            except ge.EventUnreadable as err:
                log.warning("calendar series %s skipped: %s", _digest(master_id), err)
                skipped.append(master_id)
                continue
            if item is None:
                if not full:
                    removed.append(master_id)  # the series is gone; its exceptions with it
                continue
            items.append(item)
        return ChangeSet(items=items, removed=[] if full else sorted(set(removed)), cursor=new_cursor, full=full,
                         unchanged=unchanged, skipped=skipped)

    def _series(self, calendar_id: str, master_id: str, master: dict | None, window: Window,
                etag: str | None) -> Item | None:
        """A recurring series as one item, its occurrences expanded by Google; None if deleted."""
        if master is None:
            master = self.caller.execute(self.api.events().get(calendarId=calendar_id, eventId=master_id,
                                                               **self._fields()), "reading a series")
        if master.get("status") == "cancelled":
            return None
        if not master.get("recurrence"):
            # no longer recurring: an ordinary event (Google reuses the id)
            inst = ge.to_instance(master, master_id, details=self.details)
            return Item(master_id, master.get("etag"), [inst] if ge.in_window(inst, window, self.tz) else [])
        uid = str(master.get("iCalUID") or master_id)
        occurrences: list[dict] = []
        page: str | None = None
        while True:
            params: dict[str, Any] = {"calendarId": calendar_id, "eventId": master_id, "showDeleted": True,
                                      "timeMin": _rfc3339(window.start), "timeMax": _rfc3339(window.end),
                                      "maxResults": PAGE_SIZE, "pageToken": page}
            if not self.details:
                params["fields"] = _FREE_BUSY_INSTANCE_FIELDS
            answer = self.caller.execute(self.api.events().instances(**params), "expanding a series")
            occurrences.extend(answer.get("items") or ())
            page = answer.get("nextPageToken")
            if not page or len(occurrences) >= 10000:
                break
        instances = []
        for occ in occurrences:
            if occ.get("status") == "cancelled" and not occ.get("start") and occ.get("originalStartTime"):
                # a cancelled occurrence guarantees only its id and original start (§1.2): it
                # stays in the mirror as cancelled (never busy), where it would have been
                occ = occ | {"start": occ["originalStartTime"], "end": _shifted_end(master, occ["originalStartTime"])}
            try:
                inst = ge.to_instance(occ, master_id, details=self.details, uid=uid)
            except ge.EventUnreadable:
                continue  # one unreadable occurrence costs only itself
            if ge.in_window(inst, window, self.tz):
                instances.append(inst)
        return Item(master_id, etag or ge.series_etag(master, occurrences, expanded=True), instances)

    def _fields(self) -> dict[str, str]:
        return {} if self.details else {"fields": "id,etag,status,start,end,transparency,recurrence,iCalUID"}

    def busy(self, calendar_ids: Iterable[str], start: datetime, end: datetime) -> list[Interval]:
        """Busy time: freebusy.query in free-busy mode, in windows of at most 90 days and 50
        calendars (§1.5). Read-write mode's scope (calendar.events) does not cover that call,
        so there the events are read and expanded instead."""
        if self.details:
            return super().busy(calendar_ids, start, end)
        ids = list(calendar_ids)
        out: list[Interval] = []
        for first in range(0, len(ids), FREEBUSY_CALENDARS):
            group = ids[first:first + FREEBUSY_CALENDARS]
            lo = start
            while lo < end:
                hi = min(end, lo + timedelta(days=FREEBUSY_DAYS))
                body = {"timeMin": _rfc3339(lo), "timeMax": _rfc3339(hi), "timeZone": "UTC",
                        "items": [{"id": cid} for cid in group]}
                answer = self.caller.execute(self.api.freebusy().query(body=body), "asking for free/busy time")
                for cid in group:
                    entry = (answer.get("calendars") or {}).get(cid) or {}
                    if entry.get("errors"):
                        reason = (entry["errors"][0] or {}).get("reason", "error")
                        raise ProviderError(f"Google could not give free/busy time of a calendar ({reason})")
                    for b in entry.get("busy") or ():
                        s = datetime.fromisoformat(b["start"].replace("Z", "+00:00"))
                        e = datetime.fromisoformat(b["end"].replace("Z", "+00:00"))
                        if s < e:
                            out.append(Interval(s.astimezone(UTC), e.astimezone(UTC)))
                lo = hi
        return sorted(out, key=lambda i: (i.start, i.end))

    # ------------------------------------------------------------------ writing

    def _writable(self) -> None:
        if self.mode != AccessMode.READ_WRITE:
            raise AccessDenied(f"this Google account is linked {self.mode}: homecal never writes to it")

    @staticmethod
    def _send_updates(draft: Draft) -> str:
        # a booking invites its visitor through Google; a copy must never mail anyone
        return "all" if draft.kind == "booking" else "none"

    @staticmethod
    def _conference(draft: Draft) -> dict[str, int]:
        # Only with version 1 does Google read (and keep) conferenceData; asked for only when
        # the draft wants a conference, so every other write stays exactly as it was.
        return {"conferenceDataVersion": 1} if draft.kind == "booking" and draft.conference == "google_meet" else {}

    def create(self, calendar_id: str, draft: Draft, key: str) -> EventRef:
        self._writable()
        eid = ge.event_id(key)
        body = ge.body_for(draft, key, self.tz) | {"id": eid}
        try:
            ev = self.caller.execute(self.api.events().insert(calendarId=calendar_id, body=body,
                                                              sendUpdates=self._send_updates(draft),
                                                              **self._conference(draft)),
                                     "creating an event")
        except gh.Conflict:
            ev = self._overwrite(calendar_id, eid, draft, key)
        return EventRef(calendar_id, ev["id"], ev.get("etag"), join_url=ge.join_url(ev))

    def _overwrite(self, calendar_id: str, eid: str, draft: Draft, key: str) -> dict:
        """The id exists (a retried create, or an id Google keeps after a delete): make it `draft`."""
        # status "confirmed" also restores an event deleted earlier (organizer side, §1.4)
        body = ge.body_for(draft, key, self.tz) | {"status": "confirmed"}
        try:
            return self.caller.execute(self.api.events().patch(calendarId=calendar_id, eventId=eid, body=body,
                                                               sendUpdates=self._send_updates(draft),
                                                               **self._conference(draft)),
                                       "overwriting an event")
        except gh.Forbidden as err:
            raise ProviderError(f"Google keeps this event's id reserved and refused to restore it ({err.reason})") \
                from None

    def create_many(self, calendar_id: str, drafts: Sequence[tuple[Draft, str]]) -> list[EventRef | HomecalError]:
        """Create many events with batch requests; per draft its ref or the error it met."""
        self._writable()
        requests = []
        for draft, key in drafts:
            body = ge.body_for(draft, key, self.tz) | {"id": ge.event_id(key)}
            requests.append(self.api.events().insert(calendarId=calendar_id, body=body,
                                                     sendUpdates=self._send_updates(draft)))
        answers = self.caller.batch(requests, "creating events")
        out: list[EventRef | HomecalError] = []
        for (draft, key), answer in zip(drafts, answers, strict=True):
            if isinstance(answer, gh.Conflict):
                try:
                    ev = self._overwrite(calendar_id, ge.event_id(key), draft, key)
                    out.append(EventRef(calendar_id, ev["id"], ev.get("etag")))
                except HomecalError as err:
                    out.append(err)
            elif isinstance(answer, HomecalError):
                out.append(answer)
            else:
                out.append(EventRef(calendar_id, answer["id"], answer.get("etag")))
        return out

    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        self._writable()
        body = ge.body_for(draft, key, self.tz)
        # A moved booking keeps its conference: the patch leaves conferenceData unmentioned
        # (with version 1 Google keeps what the event has) rather than asking for a new one.
        body.pop("conferenceData", None)
        request = self.api.events().patch(calendarId=ref.calendar_id, eventId=ref.id, body=body,
                                          sendUpdates=self._send_updates(draft), **self._conference(draft))
        try:
            ev = self.caller.execute(request, "updating an event", headers={"If-Match": ref.etag} if ref.etag else None)
        except (gh.Gone, gh.Forbidden):
            # a deleted event: Google keeps it as cancelled and refuses changes
            raise NotFound("the event was deleted at Google") from None
        if ev.get("status") == "cancelled":
            raise NotFound("the event was deleted at Google")
        return EventRef(ref.calendar_id, ev["id"], ev.get("etag"), join_url=ge.join_url(ev))

    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        self._writable()
        try:
            self.caller.execute(self.api.events().delete(calendarId=ref.calendar_id, eventId=ref.id,
                                                         sendUpdates="all" if notify else "none"),
                                "deleting an event")
        except (gh.Gone, NotFound):
            return  # already deleted: success (idempotent)

    def ref_for_key(self, calendar_id: str, key: str, window: Window) -> EventRef | None:
        try:
            ev = self.caller.execute(self.api.events().get(calendarId=calendar_id, eventId=ge.event_id(key)),
                                     "finding an event")
        except (NotFound, gh.Gone):
            return None
        if ev.get("status") == "cancelled" or ge.partner_key(ev) != key:
            return None
        return EventRef(calendar_id, ev["id"], ev.get("etag"))

    def close(self) -> None:
        http = getattr(self.api, "_http", None)
        if http is not None:
            try:
                http.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def _shifted_end(master: dict, original: dict) -> dict:
    """The end an occurrence starting at `original` has when it keeps the master's length."""
    if original.get("date"):
        return original
    try:
        length = ge.duration(master)
        start = ge.parse_time(original, "original start")
    except ge.EventUnreadable:
        return original
    return {"dateTime": (start + length).isoformat(), "timeZone": original.get("timeZone") or "UTC"}


def _digest(text: str) -> str:
    """A short fingerprint of an id for logs (ids are not secret, but need not be spelled out)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]

