"""Microsoft 365 and Outlook.com calendars (Microsoft Graph) behind the provider contract.

Reading (provider-facts §2.1): one calendarView delta round per calendar and window,
`/me/calendars/{id}/calendarView/delta?startDateTime=..&endDateTime=..`, paged through
`@odata.nextLink` until a page hands out `@odata.deltaLink`. The whole deltaLink is the
cursor, with the window it was made for: the window is fixed per token, so when the sync
window rolls forward a fresh round is made (a full listing the engine diffs). Later calls
GET the deltaLink as it is. 410 (the token is gone) raises InvalidCursor: the engine lists
again and diffs, keeping its mapping rows.

calendarView hands out occurrences, not series: each occurrence (and each single event) is
one item. Replays are tolerated (the last entry for an id wins). `@removed` entries only
carry an id; Graph also sends them for changes outside the window, so they remove only what
the mirror holds (an id it never had, such as an occurrence beyond the window, changes
nothing, and nothing homecal wrote is ever deleted because of one).

Writing (§2.2, §2.3): creates carry `transactionId` (derived from the idempotency key: a
retried create cannot make a second event) and the key as an extended property (for
`ref_for_key`). Delta does not return extended properties, so the engine also knows its
clones through the mapping table. Many creates go out as JSON batches of 20.

Free/busy (§2.4): getSchedule, for a work or school mailbox linked read-write (the only
scope that may call it), 62 days per call; calendarView everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

from daemon.config import Config
from daemon.errors import AccessDenied, HomecalError, InvalidCursor, NotFound, ProviderError
from daemon.models import AccessMode, CalendarInfo, ChangeSet, Draft, EventRef, Interval, Item, Window
from daemon.providers import microsoft_events as me
from daemon.providers import microsoft_http as mh
from daemon.providers.base import Provider

log = logging.getLogger("homecal.microsoft")

CURSOR_PREFIX = "m1"
PAGE_SIZE = 200
#: getSchedule's longest span per call (ErrorTimeIntervalTooBig beyond it)
SCHEDULE_DAYS = 62
_BUSY_STATUS = frozenset({"busy", "tentative", "oof"})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def microsoft_provider(config: Config, secret: Mapping[str, Any], mode: AccessMode, tz: tzinfo, *,
                       on_token: Callable[[dict], None] | None = None) -> MicrosoftProvider:
    """A provider for one Microsoft account; `on_token(updates)` is told when msal's cache changed."""
    from daemon.oauth_microsoft import TokenSource

    tokens = TokenSource(config, secret, on_change=on_token)
    mailbox = str(secret.get("home_account_id") or secret.get("email") or id(tokens))
    client = mh.GraphClient(config.microsoft.graph_endpoint, tokens, mailbox=mailbox,
                            in_flight=config.microsoft.requests_in_flight)
    return MicrosoftProvider(client, mode=AccessMode(mode), tz=tz, email=secret.get("email") or None,
                             personal=bool(secret.get("personal")))


class MicrosoftProvider(Provider):
    """One linked Microsoft account (a mailbox)."""

    kind = "microsoft"
    can_write = True
    incremental = True
    batch_size = mh.BATCH_SIZE

    def __init__(self, client: mh.GraphClient, *, mode: AccessMode, tz: tzinfo, email: str | None = None,
                 personal: bool = False):
        super().__init__(mode=mode, tz=tz)
        self.client = client
        self.email = email
        self.personal = personal
        self.details = mode == AccessMode.READ_WRITE

    # ------------------------------------------------------------------ account

    def me(self) -> dict[str, str]:
        """The signed-in mailbox: its address and display name."""
        answer = self.client.call("GET", "me", "reading the account's profile",
                                  params={"$select": "mail,userPrincipalName,displayName"})
        email = answer.get("mail") or answer.get("userPrincipalName") or ""
        self.email = email or self.email
        return {"email": email, "name": answer.get("displayName") or ""}

    def list_calendars(self) -> list[CalendarInfo]:
        infos: list[CalendarInfo] = []
        for page in self.client.pages("me/calendars", "listing calendars", params={"$top": "100"}):
            for cal in page.get("value") or ():
                if not cal.get("id"):
                    continue
                color = cal.get("hexColor") or None
                infos.append(CalendarInfo(remote_id=cal["id"], name=cal.get("name") or cal["id"],
                                          color=color, writable=bool(cal.get("canEdit", True))))
        return infos

    # ------------------------------------------------------------------ reading

    def _cursor(self, window: Window, link: str) -> str:
        return "|".join([CURSOR_PREFIX, "d" if self.details else "f", _iso(window.start), _iso(window.end), link])

    def _link_for(self, cursor: str | None, window: Window) -> str | None:
        """The deltaLink in `cursor` if it was made for this window and mode, else None."""
        if not cursor:
            return None
        parts = cursor.split("|", 4)
        if len(parts) != 5 or parts[0] != CURSOR_PREFIX:
            return None
        if parts[1] != ("d" if self.details else "f") or parts[2:4] != [_iso(window.start), _iso(window.end)]:
            return None  # another window (it rolled forward) or mode: a fresh round
        return parts[4]

    def _round(self, calendar_id: str, link: str | None, window: Window) -> tuple[list[dict], str]:
        """Every entry of one delta round (from `link`, or a fresh one) and the new deltaLink."""
        if link:
            first, params = link, None
        else:
            first = f"me/calendars/{quote(calendar_id, safe='')}/calendarView/delta"
            params = {"startDateTime": _iso(window.start) + "Z", "endDateTime": _iso(window.end) + "Z"}
        entries: list[dict] = []
        url: str | None = first
        headers = {"Prefer": mh.PREFER + f", odata.maxpagesize={PAGE_SIZE}"}
        while url:
            page = self.client.call("GET", url, "reading calendar changes", params=params, headers=headers)
            params = None
            entries.extend(e for e in page.get("value") or () if isinstance(e, dict))
            url = page.get("@odata.nextLink")
            if not url:
                delta = page.get("@odata.deltaLink")
                if not delta:
                    raise ProviderError("Microsoft Graph's last page of changes carried no deltaLink")
                return entries, delta
        raise ProviderError("Microsoft Graph sent no pages")  # pragma: no cover - the loop returns

    def changes(self, calendar_id: str, cursor: str | None, window: Window,
                known: Mapping[str, str | None] | None = None) -> ChangeSet:
        link = self._link_for(cursor, window)
        try:
            entries, delta = self._round(calendar_id, link, window)
        except mh.Gone:
            if link:
                raise InvalidCursor("Microsoft's delta token is no longer valid (410); a full listing follows") \
                    from None
            entries, delta = self._round(calendar_id, None, window)  # a token lost mid-round: once more
        full = link is None
        known = known or {}
        latest: dict[str, dict] = {}
        for entry in entries:
            if entry.get("id"):
                latest.pop(entry["id"], None)
                latest[entry["id"]] = entry  # replays: the last word on an id counts
        items: list[Item] = []
        removed: list[str] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        for eid, entry in latest.items():
            if "@removed" in entry:
                removed.append(eid)
                continue
            if entry.get("type") == "seriesMaster":
                continue  # calendarView gives the occurrences; a master is not an event in time
            etag = me.etag(entry)
            if full and etag and known.get(eid) == etag:
                unchanged.append(eid)
                continue
            try:
                inst = me.to_instance(entry, details=self.details)
            except me.EventUnreadable as err:
                log.warning("calendar event %s skipped: %s", me.digest(eid), err)
                skipped.append(eid)
                continue
            items.append(Item(eid, etag, [inst] if me.in_window(inst, window, self.tz) else []))
        return ChangeSet(items=items, removed=[] if full else removed, cursor=self._cursor(window, delta),
                         full=full, unchanged=unchanged, skipped=skipped)

    def busy(self, calendar_ids: Iterable[str], start: datetime, end: datetime) -> list[Interval]:
        """Busy time: getSchedule for a work or school mailbox linked read-write (all its
        calendars), 62 days per call; otherwise the events themselves (personal accounts cannot
        call getSchedule, and Calendars.ReadBasic may not)."""
        if self.personal or not self.details or not self.email:
            return super().busy(calendar_ids, start, end)
        out: list[Interval] = []
        lo = start
        while lo < end:
            hi = min(end, lo + timedelta(days=SCHEDULE_DAYS))
            body = {"schedules": [self.email], "startTime": {"dateTime": _iso(lo), "timeZone": "UTC"},
                    "endTime": {"dateTime": _iso(hi), "timeZone": "UTC"}, "availabilityViewInterval": 30}
            answer = self.client.call("POST", "me/calendar/getSchedule", "asking for free/busy time", json=body)
            for schedule in answer.get("value") or ():
                if schedule.get("error"):
                    raise ProviderError("Microsoft could not give the mailbox's free/busy time")
                for entry in schedule.get("scheduleItems") or ():
                    if entry.get("status") not in _BUSY_STATUS:
                        continue
                    try:
                        s = me.parse_time(entry.get("start"), "start").astimezone(UTC)
                        e = me.parse_time(entry.get("end"), "end").astimezone(UTC)
                    except me.EventUnreadable:
                        continue
                    if s < e and s < hi and e > lo:
                        out.append(Interval(max(s, start), min(e, end)))
            lo = hi
        return sorted(set(out), key=lambda i: (i.start, i.end))

    # ------------------------------------------------------------------ writing

    def _writable(self) -> None:
        if self.mode != AccessMode.READ_WRITE:
            raise AccessDenied(f"this Microsoft account is linked {self.mode}: homecal never writes to it")

    @staticmethod
    def _ref(calendar_id: str, ev: Any) -> EventRef:
        if not isinstance(ev, dict) or not ev.get("id"):
            raise ProviderError("Microsoft Graph did not say which event it wrote")
        return EventRef(calendar_id, ev["id"], ev.get("@odata.etag") or None, join_url=me.join_url(ev))

    def _create_body(self, draft: Draft, key: str) -> dict:
        return me.body_for(draft, key, self.tz) | {"transactionId": me.transaction_id(key)}

    def create(self, calendar_id: str, draft: Draft, key: str) -> EventRef:
        self._writable()
        body = self._create_body(draft, key)
        ev = self.client.call("POST", f"me/calendars/{quote(calendar_id, safe='')}/events", "creating an event",
                              json=body)
        return self._settled(calendar_id, ev, body, draft, key)

    def _settled(self, calendar_id: str, ev: Any, body: dict, draft: Draft, key: str) -> EventRef:
        """The ref of a create; when Graph answered with the event an earlier create of the
        same transactionId made (a retry after a crash), that event is brought up to `draft`."""
        ref = self._ref(calendar_id, ev)
        if me.matches(ev, body):
            return ref
        return self.update(ref, draft, key)

    def create_many(self, calendar_id: str, drafts: Sequence[tuple[Draft, str]]) -> list[EventRef | HomecalError]:
        """Create many events through JSON batches; per draft its ref or the error it met."""
        self._writable()
        url = f"/me/calendars/{quote(calendar_id, safe='')}/events"
        members = [{"method": "POST", "url": url, "body": self._create_body(d, k)} for d, k in drafts]
        out: list[EventRef | HomecalError] = []
        answers = self.client.batch(members, "creating events")
        for (draft, key), member, (status, body, _headers) in zip(drafts, members, answers, strict=True):
            if 200 <= status < 300:
                try:
                    out.append(self._settled(calendar_id, body, member["body"], draft, key))
                except HomecalError as err:
                    out.append(err)
            else:
                out.append(mh.translate(status, body, "creating an event"))
        return out

    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        self._writable()
        body = me.body_for(draft, key, self.tz)
        if draft.kind == "booking":
            # a moved booking keeps the Teams meeting it has rather than asking for a new one
            body.pop("isOnlineMeeting", None)
            body.pop("onlineMeetingProvider", None)
        ev = self.client.call("PATCH", f"me/events/{quote(ref.id, safe='')}", "updating an event", json=body,
                              headers={"If-Match": ref.etag} if ref.etag else None)
        return self._ref(ref.calendar_id, ev)

    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        """Delete the event. Graph itself sends a meeting's attendees the cancellation when the
        organizer deletes it (a booking); copies have no attendees, so nobody hears of them."""
        self._writable()
        try:
            self.client.call("DELETE", f"me/events/{quote(ref.id, safe='')}", "deleting an event")
        except NotFound:
            return  # already gone: success (idempotent)

    def ref_for_key(self, calendar_id: str, key: str, window: Window) -> EventRef | None:
        flt = (f"singleValueExtendedProperties/Any(ep: ep/id eq '{me.KEY_PROP}' and ep/value eq '{key}')")
        try:
            answer = self.client.call("GET", f"me/calendars/{quote(calendar_id, safe='')}/events",
                                      "finding an event", params={"$filter": flt, "$select": "id"})
        except NotFound:
            return None
        for ev in answer.get("value") or ():
            if ev.get("id"):
                return EventRef(calendar_id, ev["id"], ev.get("@odata.etag") or None)
        return None

    def close(self) -> None:
        self.client.close()
