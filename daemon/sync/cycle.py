"""Wiring: a SyncEngine over real providers, as the daemon, the CLI and the web UI use it."""

from __future__ import annotations

from datetime import tzinfo

from daemon.config import Config
from daemon.providers import make_provider
from daemon.store.accounts import Account
from daemon.store.db import Store
from daemon.sync.engine import SyncEngine


def engine_for(store: Store, config: Config) -> SyncEngine:
    def provider_for(account: Account, tz: tzinfo):
        return make_provider(store, config, account, tz)

    return SyncEngine(store, config, provider_for)
