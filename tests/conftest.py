"""Fixtures every test layer shares: an isolated config and a real store on disk."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from daemon.config import Config, with_overrides
from daemon.store import Store, open_store


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test may read the developer's real config, key or data directory."""
    for var in ("HOMECAL_CONFIG", "HOMECAL_KEY", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY",
                "HOMECAL_SMTP_PASSWORD", "HOMECAL_GOOGLE_CLIENT_SECRET", "HOMECAL_MICROSOFT_CLIENT_SECRET",
                "HOMECAL_CRASH_AT", "CONFIGURATION_DIRECTORY", "JOURNAL_STREAM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    yield
    # CLI tests call setup_logging(), which detaches the homecal logger from the root;
    # reattach it so caplog sees later tests' records.
    import logging

    for name in ("homecal", "waitress", "apscheduler"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
        lg.setLevel(logging.NOTSET)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config(data_dir) -> Config:
    return with_overrides(Config(), storage={"data_dir": str(data_dir)})


@pytest.fixture
def store(config) -> Store:
    s = open_store(config, env={}, create=True)
    yield s
    # A booking's mail kick runs in a background thread on this store; closing its connection
    # under a running statement would crash the process (the daemon waits the same way).
    from daemon.booking.outbox_job import wait_idle

    assert wait_idle(30), "a kicked outbox delivery did not finish"
    s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """Environment for a homecal subprocess: this one minus homecal's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECAL_")}
    env.update(extra)
    return env


# Real servers on loopback (Radicale, an ICS feed server, a counting proxy, SMTP), shared by
# every test layer; the names come from the decorators in tests/servers.py.
from tests.servers import counting_proxy_fixture, feed_server_fixture, radicale_fixture  # noqa: E402,F401
from tests.servers import smtp_sink_fixture  # noqa: E402,F401
# The fake Google Calendar API (and OAuth endpoints) on loopback.
from tests.fakes.google_api import google_fake_fixture  # noqa: E402,F401
# The fake Microsoft identity platform (shared users and tokens), its sign-in service and Graph.
from tests.fakes.ms_directory import ms_directory  # noqa: E402,F401
from tests.fakes.ms_login import ms_login_fixture  # noqa: E402,F401
from tests.fakes.graph_api import graph_fake_fixture  # noqa: E402,F401
