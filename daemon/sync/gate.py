"""The access gate: the one place every write to a provider passes through.

Rules (DESIGN.md, "Access modes and the gate"):
- Only read-write accounts are written to; free-busy and no-access accounts never are.
- A read-only calendar or provider (ICS feed) is never written to.
- Update and delete touch only partner events (written by homecal: a mapping row or a
  booking names them), unless the user granted that calendar extended permission.
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.errors import AccessDenied, HomecalError
from daemon.models import AccessMode, Draft, EventRef
from daemon.providers.base import Provider
from daemon.store.accounts import Account, Calendar
from daemon.store.db import Store


class Gate:
    """Write access to one target calendar of one account."""

    def __init__(self, store: Store, provider: Provider, account: Account, calendar: Calendar):
        self.store = store
        self.provider = provider
        self.account = account
        self.calendar = calendar

    def _check_writable(self) -> None:
        if self.account.mode != AccessMode.READ_WRITE:
            raise AccessDenied(f"account {self.account.name} is linked {self.account.mode}: homecal never writes to it")
        if not self.provider.can_write or not self.calendar.writable:
            raise AccessDenied(f"calendar {self.calendar.name} is read-only")

    def _check_partner(self, ref: EventRef) -> None:
        if self.calendar.extended_permission:
            return
        # Written by homecal: a sync mapping or a booking names the event.
        hit = self.store.db.execute(
            "SELECT 1 FROM mappings WHERE target_calendar_id = ? AND target_id = ? "
            "UNION ALL SELECT 1 FROM bookings WHERE target_calendar_id = ? AND target_id = ? LIMIT 1",
            [self.calendar.id, ref.id, self.calendar.id, ref.id]).fetchone()
        if hit is None:
            raise AccessDenied(f"event {ref.id} in {self.calendar.name} was not created by homecal and the calendar "
                               "has no extended permission: it is left untouched")

    def create(self, draft: Draft, key: str) -> EventRef:
        self._check_writable()
        return self.provider.create(self.calendar.remote_id, draft, key)

    def create_many(self, drafts: Sequence[tuple[Draft, str]]) -> list[EventRef | HomecalError]:
        self._check_writable()
        return self.provider.create_many(self.calendar.remote_id, drafts)

    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        self._check_writable()
        self._check_partner(ref)
        return self.provider.update(ref, draft, key)

    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        self._check_writable()
        self._check_partner(ref)
        self.provider.delete(ref, notify=notify)
