"""The sync command line in process, over local calendars (CalDAV and feeds: integration tests)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from daemon.cli import main
from daemon.config import load_config
from daemon.models import AccessMode
from daemon.providers.local import LocalProvider
from daemon.store import open_store


@pytest.fixture
def cfg(tmp_path, data_dir):
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndata_dir = "{data_dir}"\n[sync]\nmax_deletions = 2\n')
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    assert main(["--config", str(path), "init", "--admin-user", "admin", "--admin-password-file", str(pw)]) == 0
    return str(path)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def put_event(cfg, account_name, uid, summary, days=1):
    config = load_config(cfg)
    store = open_store(config)
    try:
        acc = store.db.execute("SELECT id FROM accounts WHERE name = ?", [account_name]).fetchone()[0]
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)
        text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
                f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
                f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        LocalProvider(store=store, account_id=acc, name=account_name, mode=AccessMode.READ_WRITE,
                      tz=timezone.utc).put_ics("local", uid, text)
    finally:
        store.close()


def test_accounts_calendars_rules_and_sync(cfg, capsys):
    code, out, _ = run(capsys, "--config", cfg, "account", "add", "local", "--name", "personal")
    assert code == 0 and "added local account personal" in out
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "work")
    code, out, _ = run(capsys, "--config", cfg, "calendars", "--json")
    cals = {c["account"]: c["id"] for c in json.loads(out)}
    assert set(cals) == {"personal", "work"}

    put_event(cfg, "personal", "p1", "Doctor")
    code, out, _ = run(capsys, "--config", cfg, "rule", "add", "--from", "personal/personal", "--to", str(cals["work"]),
                       "--style", "busy", "--working-hours", "mon-sun 00:00-23:59")
    assert code == 0 and "added rule 1" in out

    code, out, _ = run(capsys, "--config", cfg, "sync", "--dry-run")
    assert code == 0 and "would create 1" in out and "Busy" in out
    code, out, _ = run(capsys, "--config", cfg, "sync")
    assert code == 0 and "rule 1: ok, create 1, update 0, delete 0" in out
    code, out, _ = run(capsys, "--config", cfg, "sync", "--rule", "1")
    assert code == 0 and "rule 1: unchanged" in out

    code, out, _ = run(capsys, "--config", cfg, "rule", "list", "--json")
    [rule] = json.loads(out)
    assert rule["style"] == "busy" and rule["counts"]["created"] == 1 and rule["last_success_at"]
    code, out, _ = run(capsys, "--config", cfg, "status")
    assert "rule 1" in out and "created 1" in out

    code, _, err = run(capsys, "--config", cfg, "account", "remove", "work")
    assert code == 2 and "rules 1 use this account" in err
    code, out, _ = run(capsys, "--config", cfg, "rule", "remove", "1")
    assert code == 0 and "deleted its 1 event" in out
    assert run(capsys, "--config", cfg, "account", "remove", "work")[0] == 0


def test_deletion_guard_through_the_cli(cfg, capsys):
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "a")
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "b")
    for i in range(4):
        put_event(cfg, "a", f"e{i}", f"Event {i}", days=i + 1)
    run(capsys, "--config", cfg, "rule", "add", "--from", "a", "--to", "b", "--style", "busy")
    run(capsys, "--config", cfg, "sync")
    store = open_store(load_config(cfg))
    try:
        cal = store.db.execute("SELECT c.id FROM calendars c JOIN accounts a ON a.id = c.account_id WHERE a.name = 'a'").fetchone()[0]
        store.db.execute("UPDATE local_events SET deleted = 1, seq = seq + 100 WHERE calendar_id = ? AND uid != 'e0'", [cal])
    finally:
        store.close()
    code, out, _ = run(capsys, "--config", cfg, "sync")
    assert code == 1 and "paused" in out
    code, out, _ = run(capsys, "--config", cfg, "rule", "confirm-deletions", "1")
    assert code == 0
    code, out, _ = run(capsys, "--config", cfg, "sync")
    assert code == 0 and "delete 3" in out


@pytest.mark.parametrize("args,message", [
    (["rule", "add", "--from", "a", "--to", "a", "--style", "busy"], "cannot sync into itself"),
    (["rule", "add", "--from", "nope", "--to", "a", "--style", "busy"], "no calendar 'nope'"),
    (["rule", "add", "--from", "a", "--to", "b", "--style", "busy", "--working-hours", "weekdays"], "mon-fri 09:00-17:00"),
    (["rule", "add", "--from", "a", "--to", "b", "--style", "clone", "--include", "("], "regular expression"),
    (["rule", "remove", "99"], "no rule 99"),
    (["rule", "confirm-deletions", "99"], "no rule 99"),
    (["account", "add", "caldav", "--name", "x"], "needs --url and --username"),
    (["account", "add", "google", "--name", "g"], "Settings > Google"),
    (["account", "add", "microsoft", "--name", "m"], "set [microsoft] client_id"),
    (["account", "add", "microsoft", "--name", "m", "--mode", "no-access"], "needs --email ADDRESS"),
    (["account", "add", "microsoft", "--name", "m", "--mode", "no-access", "--email", "nope"],
     "give the Microsoft account's address"),
    (["account", "add", "local", "--name", "a"], "already exists"),
    (["account", "remove", "ghost"], "no account named 'ghost'"),
])
def test_bad_input_gets_one_clear_line(cfg, capsys, args, message):
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "a")
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "b")
    code, _, err = run(capsys, "--config", cfg, *args)
    assert code != 0 and message in err and "Traceback" not in err


def test_free_busy_target_is_refused_at_rule_add(cfg, capsys):
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "a")
    run(capsys, "--config", cfg, "account", "add", "local", "--name", "fb", "--mode", "free-busy")
    code, _, err = run(capsys, "--config", cfg, "rule", "add", "--from", "a", "--to", "fb", "--style", "busy")
    assert code == 2 and "cannot be written" in err


@pytest.mark.parametrize("args,message", [
    (["account", "add", "google", "--name", "g", "--port", "70000"], "70000 is not a port"),
    (["account", "add", "google", "--name", "g", "--port", "x"], "'x' is not a port number"),
    (["account", "relink", "a", "--timeout", "0"], "more than 0 seconds"),
])
def test_bad_google_linking_flags_get_a_usage_line(cfg, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(["--config", cfg, *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "Traceback" not in err
