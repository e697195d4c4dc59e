"""`homecal run` as a real process: serves /healthz, reports itself, stops cleanly on signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import clean_env, free_port

pytestmark = pytest.mark.slow


def homecal(*args: str, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=env or clean_env(),
                          capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def cfg(tmp_path) -> tuple[str, int, Path]:
    port = free_port()
    data = tmp_path / "data"
    path = tmp_path / "config.toml"
    path.write_text(f'[server]\nport = {port}\n[storage]\ndata_dir = "{data}"\n')
    return str(path), port, data


def start(cfg_path: str, port: int, **env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", cfg_path, "run"],
                            env=clean_env(**env), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"homecal run exited early:\n{proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("homecal run did not answer /healthz within 30 s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_reports_and_stops_cleanly(cfg, sig):
    cfg_path, port, data = cfg
    proc = start(cfg_path, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            health = json.loads(r.read())
        assert health["status"] == "ok" and health["database"] == "ok"
        # first run created the key file and database on the defaults of the config
        assert (data / "homecal.key").stat().st_mode & 0o777 == 0o600
        status = json.loads(homecal("--config", cfg_path, "status", "--json").stdout)
        assert status["daemon"]["running"] and status["daemon"]["pid"] == proc.pid
    finally:
        proc.send_signal(sig)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    err = proc.stderr.read()
    assert code == 0, err
    assert f"serving http://127.0.0.1:{port}/" in err
    assert "no admin yet" in err and "/setup" in err
    assert "stopped" in err and "Traceback" not in err
    wal = Path(f"{data}/homecal.sqlite3-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and closed
    status = json.loads(homecal("--config", cfg_path, "status", "--json").stdout)
    assert status["daemon"]["running"] is False
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_logs_carry_journald_priorities_under_systemd(cfg):
    cfg_path, port, _ = cfg
    proc = start(cfg_path, port, JOURNAL_STREAM="8:1234")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    lines = [line for line in proc.stderr.read().splitlines() if line]
    assert lines and all(line.startswith(("<6>", "<4>", "<3>", "<7>")) for line in lines), lines
    assert any(line.startswith("<6>homecal.runtime: homecal") for line in lines)


def test_port_in_use_is_a_clear_error(cfg):
    cfg_path, port, _ = cfg
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        proc = homecal("--config", cfg_path, "run")
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "[server] port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_config_stops_start_up_before_anything_is_created(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[server]\nport = "x"\n[sync]\nmax_deletions = -1\n')
    proc = homecal("--config", str(bad), "run")
    assert proc.returncode == 2
    assert "[server] port" in proc.stderr and "[sync] max_deletions" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_the_scheduler_runs_rules_without_being_asked(cfg, tmp_path):
    """A rule added while the daemon runs is synced by the daemon's own cycle."""
    from datetime import datetime, timedelta, timezone

    from daemon.config import load_config
    from daemon.models import AccessMode
    from daemon.providers.local import LocalProvider
    from daemon.store import open_store

    cfg_path, port, _ = cfg
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    assert homecal("--config", cfg_path, "init", "--admin-user", "admin", "--admin-password-file", str(pw)).returncode == 0
    for name in ("home", "work"):
        assert homecal("--config", cfg_path, "account", "add", "local", "--name", name).returncode == 0
    store = open_store(load_config(cfg_path), env={})
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    LocalProvider(store=store, account_id=1, name="home", mode=AccessMode.READ_WRITE, tz=timezone.utc).put_ics(
        "local", "e1", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\n"
        f"DTSTAMP:20260101T000000Z\r\nDTSTART:{when:%Y%m%dT%H%M%SZ}\r\n"
        f"DTEND:{when + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    store.close()
    assert homecal("--config", cfg_path, "rule", "add", "--from", "home", "--to", "work", "--style", "busy").returncode == 0
    proc = start(cfg_path, port)
    try:
        deadline = time.monotonic() + 40
        rule = {}
        while time.monotonic() < deadline:
            info = json.loads(homecal("--config", cfg_path, "status", "--json").stdout)
            rule = info["rules"][0]
            if rule["counts"].get("created") == 1:
                break
            time.sleep(1)
        assert rule["counts"].get("created") == 1, rule
        assert rule["last_success_at"] and rule["next_run_at"] and rule["state"] == "active"
        assert info["accounts"][0]["last_success_at"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert "rule 1: ok (created 1, updated 0, deleted 0)" in proc.stderr.read()
