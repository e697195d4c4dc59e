"""The command line, in process: init, status, doctor, rotate-key and their error lines."""

from __future__ import annotations

import json
import os

import pytest

from daemon.cli import main


@pytest.fixture
def cfg(tmp_path, data_dir):
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndata_dir = "{data_dir}"\n')
    return str(path)


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "pw"
    p.write_text("correct horse battery\n")
    return str(p)


def test_init_creates_everything_and_an_admin(cfg, pwfile, data_dir, capsys):
    assert main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile]) == 0
    out = capsys.readouterr().out
    assert "created database" in out and "back this file up" in out and "created admin user alice" in out
    assert (data_dir / "homecal.key").stat().st_mode & 0o777 == 0o600
    # a second init is harmless and says the database is ready
    assert main(["--config", cfg, "init"]) == 0
    assert "database ready" in capsys.readouterr().out


def test_init_refuses_a_duplicate_admin_and_bad_passwords(cfg, pwfile, tmp_path, capsys):
    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    capsys.readouterr()
    assert main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile]) == 2
    assert "already exists" in capsys.readouterr().err
    short = tmp_path / "short"
    short.write_text("abc")
    assert main(["--config", cfg, "init", "--admin-user", "bob", "--admin-password-file", str(short)]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert main(["--config", cfg, "init", "--admin-user", "bob", "--admin-password-file", str(tmp_path / "none")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_init_without_a_terminal_or_file_explains(cfg, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["--config", cfg, "init", "--admin-user", "alice"]) == 2
    assert "--admin-password-file" in capsys.readouterr().err


def test_password_from_stdin(cfg, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", "-"]) == 0


def test_status_before_and_after_init(cfg, pwfile, capsys):
    assert main(["--config", cfg, "status"]) == 0
    assert "not initialised" in capsys.readouterr().out
    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    capsys.readouterr()
    assert main(["--config", cfg, "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["initialised"] and info["admins"] == ["alice"] and info["daemon"]["running"] is False
    from daemon.store.migrations import MIGRATIONS

    assert info["schema"] == MIGRATIONS[-1].__name__


def test_doctor_passes_on_a_healthy_install_and_fails_on_a_bad_one(cfg, pwfile, data_dir, capsys):
    assert main(["--config", cfg, "doctor"]) == 1
    assert "run `homecal init`" in capsys.readouterr().out
    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    capsys.readouterr()
    assert main(["--config", cfg, "doctor"]) == 0
    assert "all checks passed" in capsys.readouterr().out
    os.chmod(data_dir, 0o777)
    assert main(["--config", cfg, "doctor", "--json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["data directory"]["level"] == "fail" and "chmod 700" in checks["data directory"]["detail"]


def test_doctor_reports_a_wrong_key(cfg, pwfile, monkeypatch, capsys):
    import base64

    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    capsys.readouterr()
    monkeypatch.setenv("HOMECAL_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    assert main(["--config", cfg, "doctor"]) == 1
    assert "does not open" in capsys.readouterr().out


def test_config_errors_are_listed_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = 0\nhost = 5\n')
    assert main(["--config", str(bad), "status"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: [server] port: must be between 1 and 65535" in err
    assert f"{bad}: [server] host: must be a string" in err
    assert "Traceback" not in err


def test_rotate_key(cfg, pwfile, data_dir, capsys):
    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    before = (data_dir / "homecal.key").read_text()
    assert main(["--config", cfg, "rotate-key"]) == 0
    assert "re-sealed" in capsys.readouterr().out
    assert (data_dir / "homecal.key").read_text() != before
    assert main(["--config", cfg, "doctor"]) == 0


def test_key_errors_exit_3(cfg, pwfile, data_dir, capsys):
    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    (data_dir / "homecal.key").unlink()
    assert main(["--config", cfg, "status"]) == 3
    assert "Restore it from your backup" in capsys.readouterr().err


def test_status_counts_booking_links_upcoming_bookings_and_mail_that_waits_or_was_given_up(cfg, pwfile, capsys):
    from daemon.booking import service
    from daemon.booking.link_settings import WEEKDAYS, LinkSettings
    from daemon.config import load_config
    from daemon.store import booking_links, open_store

    main(["--config", cfg, "init", "--admin-user", "alice", "--admin-password-file", pwfile])
    config = load_config(cfg)
    store = open_store(config, env={})
    link = booking_links.create(store, 1, LinkSettings(title="Chat", min_notice=0,
                                                       weekly_hours={d: (("00:00", "24:00"),) for d in WEEKDAYS}),
                                slug="chat")
    slot = service.offered_slots(config, store, link, duration=30)[4]
    visitor = service.validate_visitor(link, name="Bo", email="bo@example.org", timezone="UTC", answers={})
    service.book(config, store, link, duration=30, start=slot.start, visitor=visitor)
    store.db.execute("UPDATE outbox SET status = 'failed'")  # as after 8 refused tries
    store.close()
    capsys.readouterr()
    assert main(["--config", cfg, "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["booking_links"] == 1 and info["upcoming_bookings"] == 1
    assert info["mail_outbox"] == {"waiting": 0, "given_up": 1}  # alice has no e-mail: the visitor's only
    assert main(["--config", cfg, "status"]) == 0
    out = capsys.readouterr().out
    assert "1 link(s), 1 upcoming booking(s); mail outbox: 0 waiting, 1 given up" in out
