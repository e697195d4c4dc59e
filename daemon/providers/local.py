"""Local calendars: kept in homecal's own store, sealed like everything else.

Used for no-access accounts (homecal's own record of what it booked) and as a plain
calendar a user can sync into or out of. Each change bumps a per-calendar sequence, which
is the cursor: incremental listings cost one indexed query.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import tzinfo

from daemon import ical
from daemon.errors import InvalidCursor, NotFound, PreconditionFailed
from daemon.models import AccessMode, CalendarInfo, ChangeSet, Draft, EventRef, Item, Window
from daemon.providers.base import Provider
from daemon.store.db import Store

log = logging.getLogger("homecal.local")

REMOTE_ID = "local"


class LocalProvider(Provider):
    kind = "local"
    can_write = True
    incremental = True

    def __init__(self, *, store: Store, account_id: int, name: str, mode: AccessMode, tz: tzinfo):
        super().__init__(mode=mode, tz=tz)
        self.store = store
        self.account_id = account_id
        self.name = name

    def _calendar_id(self, remote_id: str) -> int:
        row = self.store.db.execute("SELECT id FROM calendars WHERE account_id = ? AND remote_id = ?",
                                    [self.account_id, remote_id]).fetchone()
        if row is None:
            raise NotFound(f"local calendar {remote_id} does not exist")
        return row[0]

    def list_calendars(self) -> list[CalendarInfo]:
        return [CalendarInfo(remote_id=REMOTE_ID, name=self.name, writable=True)]

    def _max_seq(self, cal_id: int) -> int:
        return self.store.db.execute("SELECT coalesce(max(seq), 0) FROM local_events WHERE calendar_id = ?",
                                     [cal_id]).fetchone()[0]

    def changes(self, calendar_id: str, cursor: str | None, window: Window,
                known: Mapping[str, str | None] | None = None) -> ChangeSet:
        cal_id = self._calendar_id(calendar_id)
        top = self._max_seq(cal_id)
        if cursor is not None:
            try:
                since = int(cursor.removeprefix("seq:"))
            except ValueError:
                raise InvalidCursor(f"not a local cursor: {cursor!r}") from None
            if since > top:
                raise InvalidCursor("cursor from the future: the local calendar was reset")
            rows = self.store.db.execute(
                "SELECT id, uid, etag, deleted, ics_sealed FROM local_events WHERE calendar_id = ? AND seq > ?",
                [cal_id, since]).fetchall()
        else:
            rows = self.store.db.execute(
                "SELECT id, uid, etag, deleted, ics_sealed FROM local_events WHERE calendar_id = ? AND deleted = 0",
                [cal_id]).fetchall()
        items, removed, unchanged, skipped = [], [], [], []
        for row_id, uid, etag, deleted, sealed in rows:
            if deleted:
                removed.append(uid)
                continue
            if cursor is None and known is not None and known.get(uid) == etag:
                unchanged.append(uid)
                continue
            text = self.store.unseal("local_events", "ics_sealed", row_id, sealed)
            try:
                instances = ical.instances_from_ical(text, uid, window, self.tz,
                                                     details=self.mode == AccessMode.READ_WRITE)
            except ical.MalformedEvent as err:
                log.warning("local calendar %s: skipped an unreadable event: %s", cal_id, err)
                skipped.append(uid)
                continue
            items.append(Item(uid, etag, instances))
        return ChangeSet(items, removed, f"seq:{top}", full=cursor is None, unchanged=unchanged, skipped=skipped)

    def put_ics(self, calendar_id: str, uid: str, text: str, *, if_match: str | None = None,
                create_only: bool = False) -> EventRef:
        """Store an iCalendar object under `uid` (create or replace), like a CalDAV PUT."""
        cal_id = self._calendar_id(calendar_id)
        etag = hashlib.sha256(text.encode()).hexdigest()[:16]
        with self.store.atomic() as db:
            row = db.execute("SELECT id, etag, deleted FROM local_events WHERE calendar_id = ? AND uid = ?",
                             [cal_id, uid]).fetchone()
            seq = self._max_seq(cal_id) + 1
            if row is None or row[2]:
                if if_match is not None:
                    raise NotFound(f"event {uid} does not exist")
                if row is None:
                    row_id = db.execute("INSERT INTO local_events (calendar_id, uid, etag, seq, deleted) "
                                        "VALUES (?, ?, ?, ?, 0) RETURNING id", [cal_id, uid, etag, seq]).fetchone()[0]
                else:
                    row_id = row[0]
                    db.execute("UPDATE local_events SET etag = ?, seq = ?, deleted = 0 WHERE id = ?", [etag, seq, row_id])
            else:
                if if_match is not None and row[1] != if_match:
                    raise PreconditionFailed(f"event {uid} changed since it was read")
                row_id = row[0]
                db.execute("UPDATE local_events SET etag = ?, seq = ? WHERE id = ?", [etag, seq, row_id])
            db.execute("UPDATE local_events SET ics_sealed = ? WHERE id = ?",
                       [self.store.seal("local_events", "ics_sealed", row_id, text), row_id])
        return EventRef(calendar_id, uid, etag)

    def create(self, calendar_id: str, draft: Draft, key: str) -> EventRef:
        uid = f"homecal-{key}"
        # Same key, same uid: a repeated create replaces the event instead of adding one.
        return self.put_ics(calendar_id, uid, ical.draft_to_ical(draft, uid, key, tz=self.tz))

    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        return self.put_ics(ref.calendar_id, ref.id, ical.draft_to_ical(draft, ref.id, key, tz=self.tz),
                            if_match=ref.etag)

    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        cal_id = self._calendar_id(ref.calendar_id)
        with self.store.atomic() as db:
            seq = self._max_seq(cal_id) + 1
            # A tombstone row (deleted=1) lets incremental listings report the removal.
            db.execute("UPDATE local_events SET deleted = 1, seq = ?, ics_sealed = NULL "
                       "WHERE calendar_id = ? AND uid = ? AND deleted = 0", [seq, cal_id, ref.id])

    def ref_for_key(self, calendar_id: str, key: str, window: Window) -> EventRef | None:
        cal_id = self._calendar_id(calendar_id)
        row = self.store.db.execute("SELECT uid, etag FROM local_events WHERE calendar_id = ? AND uid = ? AND deleted = 0",
                                    [cal_id, f"homecal-{key}"]).fetchone()
        return EventRef(calendar_id, row[0], row[1]) if row else None
