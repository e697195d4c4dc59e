"""Wiring: a SyncEngine over real providers, as the daemon, the CLI and the web UI use it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import tzinfo

from daemon.config import Config
from daemon.providers import make_provider
from daemon.store.accounts import Account
from daemon.store.db import Store
from daemon.sync.engine import RuleReport, SyncEngine

#: One sync at a time per process: the scheduler's cycle and a "Sync now" from the web UI
#: wait for each other instead of planning against the same rows at once. (Separate
#: processes, e.g. `homecal sync` next to the daemon, are kept safe by the intent rows.)
SYNC_LOCK = threading.Lock()


def engine_for(store: Store, config: Config) -> SyncEngine:
    def provider_for(account: Account, tz: tzinfo):
        return make_provider(store, config, account, tz)

    return SyncEngine(store, config, provider_for)


def run_sync(store: Store, config: Config, rule_ids: list[int] | None = None, *, dry_run: bool = False,
             should_stop: Callable[[], bool] = lambda: False, refresh: bool = False,
             refresh_user: int | None = None) -> list[RuleReport]:
    """One engine run under SYNC_LOCK (a dry run takes it too: it refreshes the mirrors).

    With `refresh`, every calendar (of `refresh_user`, or all) is then brought up to date for
    the calendar view, including the copies the rules just wrote. The daemon's cycle and the
    web UI's "Sync now" do that; `homecal sync` runs the rules only.
    """
    with SYNC_LOCK:
        engine = engine_for(store, config)
        reports = engine.run(rule_ids, dry_run=dry_run, should_stop=should_stop)
        if refresh and not dry_run and not should_stop():
            engine.refresh_calendars(refresh_user, should_stop=should_stop)
        return reports
