"""Crash safety, proven with real process death.

`homecal sync` runs as a child process and is killed (os._exit at crash points on the K-th
write, and SIGKILL at random moments) again and again during a large sync, then runs to
the end. The target must hold exactly one copy per source instance, no orphan, nothing
lost, and every mapping row settled. The same scenario runs against every backend that
can be a target.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.models import AccessMode, EventRef, Window
from daemon.providers.local import LocalProvider
from daemon.store import open_store
from tests.conftest import clean_env

pytestmark = pytest.mark.slow

CRASH_POINTS = ["sync-before-create", "sync-after-create", "sync-after-delete"]


def ics(uid: str, start: datetime, summary: str) -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
            f"DTEND:{start + timedelta(minutes=30):%Y%m%dT%H%M%SZ}\r\nSUMMARY:{summary}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


class LocalBackend:
    """Source and target are homecal's own local calendars."""

    name = "local"
    size = 150

    def __init__(self, cfg_path: str):
        self.cfg_path = cfg_path

    def setup(self, homecal) -> None:
        for name in ("src", "dst"):
            assert homecal("account", "add", "local", "--name", name).returncode == 0

    def _provider(self, store, account: str) -> LocalProvider:
        acc = store.db.execute("SELECT id FROM accounts WHERE name = ?", [account]).fetchone()[0]
        return LocalProvider(store=store, account_id=acc, name=account, mode=AccessMode.READ_WRITE, tz=timezone.utc)

    def put(self, uid: str, text: str) -> None:
        store = open_store(load_config(self.cfg_path), env={})
        try:
            self._provider(store, "src").put_ics("local", uid, text)
        finally:
            store.close()

    def remove(self, uid: str) -> None:
        store = open_store(load_config(self.cfg_path), env={})
        try:
            self._provider(store, "src").delete(EventRef("local", uid))
        finally:
            store.close()

    def target_partner_keys(self) -> list[str]:
        store = open_store(load_config(self.cfg_path), env={})
        try:
            window = Window.around(datetime.now(timezone.utc), 1, 90)
            items = self._provider(store, "dst").changes("local", None, window).items
            return [i.partner_key for item in items for i in item.instances]
        finally:
            store.close()


class CalDAVBackend:
    """Source and target are collections on a real Radicale (kept smaller: Radicale is slow)."""

    name = "caldav"
    size = 45

    def __init__(self, cfg_path: str, radicale):
        self.cfg_path = cfg_path
        self.radicale = radicale
        self.user = radicale.new_user("crash")
        self.urls = {n: radicale.make_calendar(self.user, n) for n in ("src", "dst")}

    def setup(self, homecal) -> None:
        pw = Path(self.cfg_path).with_name("dav-pw")
        pw.write_text(self.radicale.password(self.user))
        p = homecal("account", "add", "caldav", "--name", "dav", "--url", self.radicale.url,
                    "--username", self.user, "--password-file", str(pw))
        assert p.returncode == 0, p.stderr

    def put(self, uid: str, text: str) -> None:
        self.radicale.put(self.user, self.urls["src"] + f"{uid}.ics", text)

    def remove(self, uid: str) -> None:
        self.radicale.delete(self.user, self.urls["src"] + f"{uid}.ics")

    def target_partner_keys(self) -> list[str]:
        import caldav

        from daemon.ical import instances_from_ical

        client = caldav.DAVClient(self.urls["dst"], username=self.user, password=self.radicale.password(self.user))
        window = Window.around(datetime.now(timezone.utc), 1, 90)
        keys = []
        for obj in client.calendar(url=self.urls["dst"]).objects(load_objects=True):
            if obj.data:
                keys += [i.partner_key for i in instances_from_ical(obj.data, str(obj.url), window, timezone.utc)]
        return keys


@pytest.fixture(params=[LocalBackend, CalDAVBackend], ids=lambda b: b.name)
def backend(request, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[sync]\nmax_deletions = 100000\n')
    if request.param is CalDAVBackend:
        return CalDAVBackend(str(cfg), request.getfixturevalue("radicale"))
    return request.param(str(cfg))


def run_homecal(cfg_path: str, *args: str, crash: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = clean_env(**({"HOMECAL_CRASH_AT": crash} if crash else {}))
    return subprocess.run([sys.executable, "-m", "daemon", "--config", cfg_path, *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def kill_at_random(cfg_path: str, rng: random.Random) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", cfg_path, "sync"], env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.4, 1.6))  # start-up takes ~0.3 s; land inside the write phase
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def settled_state(cfg_path: str) -> tuple[list[str], dict[str, str]]:
    store = open_store(load_config(cfg_path), env={})
    try:
        rows = store.db.execute("SELECT idem_key, state FROM mappings").fetchall()
        return [r[0] for r in rows], {r[0]: r[1] for r in rows}
    finally:
        store.close()


def assert_exactly_one_copy_each(backend, expected: int) -> None:
    keys = backend.target_partner_keys()
    mapped, states = settled_state(backend.cfg_path)
    assert len(keys) == len(set(keys)), "a source instance has two copies"
    assert len(keys) == expected, f"{len(keys)} copies for {expected} source events"
    assert set(keys) == set(mapped), "orphans or lost copies"
    assert set(states.values()) == {"synced"}


def test_sigkill_at_many_points_never_duplicates_orphans_or_loses(backend, tmp_path):
    cfg = backend.cfg_path
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    assert run_homecal(cfg, "init", "--admin-user", "admin", "--admin-password-file", str(pw)).returncode == 0
    homecal = lambda *a: run_homecal(cfg, *a)  # noqa: E731
    backend.setup(homecal)
    base = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    for i in range(backend.size):
        backend.put(f"ev{i}", ics(f"ev{i}", base + timedelta(hours=i * 5), f"Event {i}"))
    src, dst = ("dav/src", "dav/dst") if backend.name == "caldav" else ("src", "dst")
    assert homecal("rule", "add", "--from", src, "--to", dst, "--style", "clone",
                   "--working-hours", "mon-sun 00:00-23:59").returncode == 0

    rng = random.Random(20261121)
    kills = 0
    # Phase 1: the initial copy, killed at deterministic points on the K-th write ...
    for point, nth in [("sync-before-create", 1), ("sync-after-create", 3), ("sync-before-create", 7),
                       ("sync-after-create", 11), ("sync-after-create", 1), ("sync-before-create", 2)]:
        p = run_homecal(cfg, "sync", crash=f"{point}:{nth}")
        assert p.returncode == 137, p.stderr
        kills += 1
    # ... and at random moments.
    for _ in range(4):
        kill_at_random(cfg, rng)
        kills += 1
    assert homecal("sync").returncode == 0
    assert_exactly_one_copy_each(backend, backend.size)

    # Phase 2: a third of the sources deleted, a third changed, crashes inside deletes and updates.
    for i in range(0, backend.size, 3):
        backend.remove(f"ev{i}")
    for i in range(1, backend.size, 3):
        backend.put(f"ev{i}", ics(f"ev{i}", base + timedelta(hours=i * 5, minutes=15), f"Event {i} (moved)"))
    for nth in (1, 4, 9):
        p = run_homecal(cfg, "sync", crash=f"sync-after-delete:{nth}")
        assert p.returncode == 137, p.stderr
        kills += 1
    kill_at_random(cfg, rng)
    kills += 1
    assert homecal("sync").returncode == 0
    remaining = backend.size - len(range(0, backend.size, 3))
    assert_exactly_one_copy_each(backend, remaining)
    # and a quiet cycle afterwards changes nothing
    out = homecal("sync").stdout
    assert "unchanged" in out, out
    assert kills == 14
