"""Fixtures shared by unit tests: `env`, an owner with three local calendars A, B and C."""

from __future__ import annotations

import pytest

from daemon.config import with_overrides
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts, users


@pytest.fixture
def env(store, config):
    owner = users.create(store, "owner", "correct horse battery", is_admin=True)
    cals = {}
    for name in ("A", "B", "C"):
        acc = accounts.add(store, owner.id, "local", name, AccessMode.READ_WRITE, {})
        cals[name] = accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0]
    cfg = with_overrides(config, sync={"max_deletions": 50})
    return type("Env", (), {"store": store, "owner": owner, "cals": cals, "config": cfg})
