"""Microsoft accounts in a test store, backed by the fake Graph API and the fake sign-in service.

The secret comes through the real device flow (tests/ms_helpers.ms_secret: msal and all);
providers are built by `make_provider`, the path the daemon takes.
"""

from __future__ import annotations

import pytest

from daemon.config import Config
from daemon.models import AccessMode
from daemon.providers import microsoft_http
from daemon.store.accounts import Account
from daemon.store.db import Store
from tests.ms_helpers import microsoft_config, ms_secret
from tests.sync_helpers import save_linked

__all__ = ["graph_config", "link_microsoft", "fast_graph_retries"]


def graph_config(config: Config, graph_fake, ms_login, **extra) -> Config:
    """`config` pointed at the fakes (Graph and sign-in)."""
    return microsoft_config(graph_fake, ms_login, config, **extra)


def link_microsoft(store: Store, config: Config, graph_fake, ms_login, user_id: int, email: str, *,
                   mode: AccessMode = AccessMode.READ_WRITE, name: str | None = None) -> Account:
    """A Microsoft account of `email` (a mailbox of the fake) with its calendars listed."""
    secret = ms_secret(config, ms_login, email, mode)
    graph_fake.mailbox(email)
    secret["email"] = email
    return save_linked(store, config, user_id, "microsoft", name or f"M {email}", mode, secret)


@pytest.fixture
def fast_graph_retries(monkeypatch):
    """Backoff in milliseconds instead of seconds: the schedule's shape is what is tested."""
    monkeypatch.setitem(microsoft_http.RETRY, "base", 0.002)
    monkeypatch.setitem(microsoft_http.RETRY, "cap", 0.02)
    monkeypatch.setitem(microsoft_http.RETRY, "attempts", 8)
