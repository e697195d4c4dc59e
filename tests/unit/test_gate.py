"""The access gate: writes only in read-write mode, and only to events homecal made,
unless the calendar was granted extended permission."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from daemon.errors import AccessDenied
from daemon.models import AccessMode, CalendarInfo, Draft, EventRef
from daemon.providers.local import LocalProvider
from daemon.store import accounts, users
from daemon.sync.gate import Gate

START = datetime(2026, 6, 11, 9, tzinfo=timezone.utc)
DRAFT = Draft(kind="busy", summary="Busy", start=START, end=START + timedelta(hours=1))
USER_EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:mine\r\n"
              "DTSTAMP:20260101T000000Z\r\nDTSTART:20260611T090000Z\r\nDTEND:20260611T100000Z\r\n"
              "SUMMARY:My own\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def setup(store, mode=AccessMode.READ_WRITE):
    owner = users.create(store, "owner", "correct horse battery")
    acc = accounts.add(store, owner.id, "local", "cal", mode, {})
    cal = accounts.save_calendars(store, acc.id, [CalendarInfo("local", "cal")])[0]
    provider = LocalProvider(store=store, account_id=acc.id, name="cal", mode=AccessMode.READ_WRITE, tz=timezone.utc)
    provider.put_ics("local", "mine", USER_EVENT)
    return acc, cal, provider


def test_the_users_own_events_are_untouchable_without_extended_permission(store):
    acc, cal, provider = setup(store)
    gate = Gate(store, provider, acc, cal)
    with pytest.raises(AccessDenied, match="not created by homecal"):
        gate.update(EventRef("local", "mine"), DRAFT, "k")
    with pytest.raises(AccessDenied):
        gate.delete(EventRef("local", "mine"))
    assert provider.ref_for_key("local", "x", None) is None  # nothing was written
    accounts.set_calendar_flags(store, cal.id, extended_permission=True)
    gate = Gate(store, provider, acc, accounts.calendar(store, cal.id))
    gate.delete(EventRef("local", "mine"))  # explicitly granted: allowed


@pytest.mark.parametrize("mode", [AccessMode.FREE_BUSY, AccessMode.NO_ACCESS])
def test_no_write_at_all_outside_read_write(store, mode):
    acc, cal, provider = setup(store, mode)
    gate = Gate(store, provider, acc, cal)
    with pytest.raises(AccessDenied, match="never writes"):
        gate.create(DRAFT, "k")
    with pytest.raises(AccessDenied):
        gate.delete(EventRef("local", "mine"))
