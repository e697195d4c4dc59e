"""The provider contract: the few methods every calendar backend implements.

A provider talks to one account. It never stores anything itself: the engine passes in the
cursor it saved last time and saves the one returned. HTTP and protocol errors are
translated here, at the boundary, into daemon.errors (`raise ... from err`):

- AuthError: credentials refused; the account needs re-linking. Never "no events".
- RateLimited(retry_after): slow down.
- InvalidCursor: the saved cursor is no longer valid; call again with cursor=None.
- PreconditionFailed: the object changed since its etag was read.
- NotFound: the object or calendar is gone.
- ProviderError: anything else (network, 5xx, malformed answers as a whole).

Write methods are only ever reached through the access gate (daemon.sync.gate), which
checks the account's mode and the event's provenance first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import ClassVar

from daemon.errors import AccessDenied, AuthError, HomecalError, RateLimited
from daemon.models import AccessMode, CalendarInfo, ChangeSet, Draft, EventRef, Interval, Window

#: property / marker name that identifies events homecal wrote (loop guard)
MARKER = "X-HOMECAL-KEY"


class Provider(ABC):
    """One linked account of one kind. Subclasses set the class attributes honestly."""

    kind: ClassVar[str]
    #: the provider can write events at all (an ICS feed cannot)
    can_write: ClassVar[bool] = True
    #: `changes` with a cursor returns only what changed (else every call is a full listing)
    incremental: ClassVar[bool] = False
    #: creates sent per request by `create_many` (1: the provider has no batch endpoint)
    batch_size: ClassVar[int] = 1

    def __init__(self, *, mode: AccessMode, tz: tzinfo):
        self.mode = mode
        #: the owner's zone, for all-day and floating times
        self.tz = tz

    @abstractmethod
    def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar of the account. Raises AuthError / ProviderError."""

    @abstractmethod
    def changes(self, calendar_id: str, cursor: str | None, window: Window,
                known: Mapping[str, str | None] | None = None) -> ChangeSet:
        """What changed in `calendar_id` since `cursor`, as instances inside `window`.

        `cursor=None` asks for a full listing (`ChangeSet.full`). A cursor the server rejects
        raises InvalidCursor; the caller then asks again with None and diffs, never wiping its
        own records. `known` (item id -> etag, from the caller's mirror) lets a full listing
        skip downloading objects whose etag is unchanged: they are reported in
        `ChangeSet.unchanged`. In free-busy mode instances carry no details. Objects that fail
        to parse go to `ChangeSet.skipped` (logged), never into `removed`.
        """

    def busy(self, calendar_ids: Iterable[str], start: datetime, end: datetime) -> list[Interval]:
        """Busy intervals in [start, end) across the calendars, computed from events.

        The default expands events through `changes`; providers with a trustworthy free/busy
        endpoint may override it.
        """
        window = Window(start, end)
        out: list[Interval] = []
        for cal in calendar_ids:
            for item in self.changes(cal, None, window).items:
                for inst in item.instances:
                    if inst.transparent or inst.declined or inst.status == "cancelled":
                        continue
                    s, e = inst.utc_bounds(self.tz)
                    if s < end and e > start:
                        out.append(Interval(max(s, start), min(e, end)))
        return sorted(out, key=lambda i: (i.start, i.end))

    @abstractmethod
    def create(self, calendar_id: str, draft: Draft, key: str) -> EventRef:
        """Create the event for idempotency `key` (deterministic: same source, same key).

        Creating a key that already exists must not make a second event: the provider
        overwrites the existing one and returns its ref (CalDAV: same UID and href; Google:
        same id, 409 -> update; Graph: same transactionId).
        """

    def create_many(self, calendar_id: str, drafts: Sequence[tuple[Draft, str]]) -> list[EventRef | HomecalError]:
        """Create many (draft, key) pairs; per pair its ref, or the error it met (in order).

        Providers with a batch endpoint override it. A refused login or a rate limit that
        stops the whole account is raised, not listed.
        """
        out: list[EventRef | HomecalError] = []
        for draft, key in drafts:
            try:
                out.append(self.create(calendar_id, draft, key))
            except (AuthError, RateLimited, AccessDenied):
                raise
            except HomecalError as err:
                out.append(err)
        return out

    @abstractmethod
    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        """Replace the event at `ref` with `draft`, If-Match its etag when it has one.

        Raises PreconditionFailed if it changed meanwhile, NotFound if it is gone.
        """

    @abstractmethod
    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        """Delete the event at `ref`. Already gone counts as success (idempotent).

        `notify`: the event is a meeting (a booking) whose attendees the provider should tell
        of the cancellation, where it sends invitations itself (Google). Copies never notify.
        """

    def ref_for_key(self, calendar_id: str, key: str, window: Window) -> EventRef | None:
        """The event homecal wrote under `key` in `window`, if any (to finish a crashed write).

        The default lists the calendar; providers with deterministic ids override it cheaply.
        """
        for item in self.changes(calendar_id, None, window).items:
            if any(inst.partner_key == key for inst in item.instances):
                return EventRef(calendar_id, item.id, item.etag)
        return None

    def close(self) -> None:  # noqa: B027 - optional hook: most providers hold nothing to release
        """Release connections. Safe to call twice."""
