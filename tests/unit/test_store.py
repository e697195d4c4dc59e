"""The store: key handling before any change, migrations, sealing in place, no leaks, rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.errors import MasterKeyError, SealError, StoreError
from daemon.store import open_store
from daemon.store import users
from daemon.store.db import utcnow
from daemon.store.keys import pending_path
from tests.conftest import clean_env


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_store_is_wal_private_and_migrated(store, config):
    assert store.db.journal_mode == "wal"
    from daemon.store.migrations import MIGRATIONS

    assert store.applied_migrations() == [m.__name__ for m in MIGRATIONS]
    for path in (config.storage.db_path, config.storage.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(config.storage.data_path.stat().st_mode) == 0o700
    # users own accounts, rules and links from the first schema on
    for table in ("accounts", "rules", "booking_links"):
        assert any(fk.other_table == "users" for fk in store.db[table].foreign_keys), table


def test_open_without_init_says_what_to_do(config):
    with pytest.raises(StoreError, match="run `homecal init`"):
        open_store(config, env={})


def test_wrong_key_stops_and_changes_nothing(store, config):
    store.close()
    before = digest(config.storage.db_path)
    wrong = base64.urlsafe_b64encode(os.urandom(32)).decode()
    with pytest.raises(MasterKeyError, match="does not open"):
        open_store(config, env={"HOMECAL_KEY": wrong}, create=True)
    assert digest(config.storage.db_path) == before


def test_missing_key_file_is_not_replaced_by_a_new_one(store, config):
    store.close()
    config.storage.key_path.unlink()
    with pytest.raises(MasterKeyError, match="missing"):
        open_store(config, env={}, create=True)
    assert not config.storage.key_path.exists()


def test_key_file_readable_by_others_is_refused(store, config):
    store.close()
    os.chmod(config.storage.key_path, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        open_store(config, env={})


@pytest.mark.parametrize("text", ["not base64!!", base64.urlsafe_b64encode(b"short").decode()])
def test_malformed_key_from_environment(store, config, text):
    store.close()
    with pytest.raises(MasterKeyError, match=r"\$HOMECAL_KEY"):
        open_store(config, env={"HOMECAL_KEY": text})


def test_key_from_environment_and_systemd_credential(config, tmp_path):
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    s = open_store(config, env={"HOMECAL_KEY": key}, create=True)
    s.meta_set_secret("probe", "value")
    s.close()
    assert not config.storage.key_path.exists()  # an external key means no key file is made
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "homecal.key").write_text(key)
    s = open_store(config, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert s.meta_get_secret("probe") == "value"
    s.close()


def test_database_from_a_newer_homecal_is_refused(store, config):
    store.db["_migrations"].insert({"name": "m999_future", "applied_at": utcnow()})
    store.close()
    with pytest.raises(StoreError, match="newer homecal"):
        open_store(config, env={})


def test_a_sealed_value_copied_to_another_row_does_not_open(store):
    a = users.create(store, "alice", "correct horse battery")
    b = users.create(store, "bob", "correct horse battery")
    store.db["users"].update(a.id, {"email_sealed": store.seal("users", "email_sealed", a.id, "alice@example.org")})
    blob = store.db["users"].get(a.id)["email_sealed"]
    store.db["users"].update(b.id, {"email_sealed": blob})  # an attacker with write access swaps values
    assert store.unseal("users", "email_sealed", a.id, blob) == "alice@example.org"
    with pytest.raises(SealError):
        store.unseal("users", "email_sealed", b.id, store.db["users"].get(b.id)["email_sealed"])


def fill_every_sealed_column(store, marker: str) -> dict[str, list[str]]:
    """Write a marked value into every sealed column the schema has; return what was covered."""
    user = users.create(store, "owner", "correct horse battery", is_admin=True)
    store.db["users"].update(user.id, {"email_sealed": store.seal("users", "email_sealed", user.id, f"{marker}-email@x")})
    store.meta_set_secret("smtp_password", f"{marker}-meta")
    from daemon.store import feeds

    feed_token = feeds.regenerate(store, user.id)
    with store.atomic() as db:
        db["accounts"].insert({"user_id": user.id, "kind": "caldav", "name": "work", "mode": "read-write",
                               "created_at": utcnow()})
        aid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        secret = json.dumps({"url": "https://cal.example.org/", "password": f"{marker}-password"})
        db["accounts"].update(aid, {"config_sealed": store.seal("accounts", "config_sealed", aid, secret)})
    # event details: the mirror of a calendar, and a calendar kept in homecal itself
    from datetime import datetime, timedelta, timezone

    from daemon.models import AccessMode, CalendarInfo, ChangeSet, Instance, Item
    from daemon.providers.local import LocalProvider
    from daemon.store import accounts, mirror

    cal = accounts.save_calendars(store, aid, [CalendarInfo("https://cal.example.org/work/", "Work")])[0]
    start = datetime(2026, 6, 1, 9, tzinfo=timezone.utc)
    event = Instance(key="u1|", item_id="u1.ics", uid="u1", start=start, end=start + timedelta(hours=1),
                     summary=f"{marker}-title", description=f"{marker}-description", location=f"{marker}-location")
    mirror.apply_changes(store, cal.id, ChangeSet([Item("u1.ics", "e1", [event])], [], "c1", full=True), timezone.utc)
    local = accounts.add(store, user.id, "local", "home", AccessMode.READ_WRITE, {})
    accounts.save_calendars(store, local.id, [CalendarInfo("local", "home")])
    LocalProvider(store=store, account_id=local.id, name="home", mode=AccessMode.READ_WRITE, tz=timezone.utc) \
        .put_ics("local", "u2", f"BEGIN:VCALENDAR\r\nSUMMARY:{marker}-local\r\nEND:VCALENDAR\r\n")
    # the feed token is random, so the marker cannot be inside it: reseal a marked value instead
    assert feeds.user_for(store, feed_token) == user.id
    store.db["users"].update(user.id, {"feed_token_sealed": store.seal("users", "feed_token_sealed", user.id,
                                                                       f"{marker}-feed-token")})
    # a private booking link (title, address), a booking (the visitor) and its mail
    from daemon.booking.link_settings import Location, LinkSettings
    from daemon.store import booking_links

    link = booking_links.create(store, user.id, LinkSettings(title=f"{marker}-link",
                                                             location=Location("address", f"{marker}-street")),
                                private=True)
    store.db["booking_links"].update(link.id, {"secret_sealed": store.seal("booking_links", "secret_sealed", link.id,
                                                                           f"{marker}-link-secret")})
    with store.atomic() as db:
        bid = db["bookings"].insert({"link_id": link.id, "user_id": user.id, "uid": "b1", "status": "confirmed",
                                     "start_utc": "2026-06-02T09:00:00+00:00",
                                     "end_utc": "2026-06-02T09:30:00+00:00"}).last_pk
        db["bookings"].update(bid, {"details_sealed": store.seal("bookings", "details_sealed", bid,
                                                                 json.dumps({"name": f"{marker}-visitor"}))})
        oid = db["outbox"].insert({"user_id": user.id, "booking_id": bid, "kind": "invite",
                                   "status": "pending"}).last_pk
        db["outbox"].update(oid, {
            "recipient_sealed": store.seal("outbox", "recipient_sealed", oid, f"{marker}@example.org"),
            "message_sealed": store.seal("outbox", "message_sealed", oid, f"Subject: {marker}-mail")})
    return {"users": ["email_sealed", "feed_token_sealed"], "meta": ["value_sealed"], "accounts": ["config_sealed"],
            "instances": ["data_sealed"], "local_events": ["ics_sealed"],
            "booking_links": ["secret_sealed", "settings_sealed"], "bookings": ["details_sealed"],
            "outbox": ["recipient_sealed", "message_sealed"]}


def db_files(config) -> list[Path]:
    base = config.storage.db_path
    return [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm"), Path(f"{base}-journal")) if p.exists()]


def test_no_marker_reaches_the_database_wal_or_journal(store, config):
    marker = "LEAKMARKER" + os.urandom(6).hex()
    covered = fill_every_sealed_column(store, marker)
    # The test must grow with the schema: every sealed column is exercised here.
    assert covered == store.sealed_columns()
    for path in db_files(config):  # before the checkpoint the data sits in the WAL
        assert marker.encode() not in path.read_bytes(), path
    store.checkpoint()
    store.close()
    files = db_files(config)
    assert config.storage.db_path in files
    for path in files:
        data = path.read_bytes()
        assert marker.encode() not in data, path
        assert marker.encode("utf-16-le") not in data, path


def test_rotate_key_reseals_everything(store, config):
    from daemon.store.rotate import rotate_key

    fill_every_sealed_column(store, "ROT")
    old_key = config.storage.key_path.read_text()
    assert rotate_key(store) == 13  # 12 values + the key check
    store.close()
    assert config.storage.key_path.read_text() != old_key
    assert not pending_path(config.storage.key_path).exists()
    with pytest.raises(MasterKeyError):
        open_store(config, env={"HOMECAL_KEY": old_key.strip()})
    s = open_store(config, env={})
    assert s.meta_get_secret("smtp_password") == "ROT-meta"
    from daemon.store import feeds

    assert feeds.token(s, 1) == "ROT-feed-token"
    s.close()


ROTATE_SCRIPT = """
import sys
from daemon.config import Config, with_overrides
from daemon.store import open_store
from daemon.store.rotate import rotate_key
config = with_overrides(Config(), storage={"data_dir": sys.argv[1]})
rotate_key(open_store(config))
"""


@pytest.mark.parametrize("point", ["rotate-midway", "rotate-after-commit"])
def test_a_crash_during_rotation_leaves_a_working_key(store, config, point):
    fill_every_sealed_column(store, "CRASH")
    store.close()
    old_key = config.storage.key_path.read_text()
    proc = subprocess.run([sys.executable, "-c", ROTATE_SCRIPT, str(config.storage.data_path)],
                          env=clean_env(HOMECAL_CRASH_AT=point), capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr  # killed on the spot
    assert pending_path(config.storage.key_path).exists()
    s = open_store(config, env={})
    assert s.meta_get_secret("smtp_password") == "CRASH-meta"
    row = s.db["accounts"].get(1)
    assert "CRASH-password" in s.unseal("accounts", "config_sealed", 1, row["config_sealed"])
    s.close()
    assert not pending_path(config.storage.key_path).exists()
    rotated = config.storage.key_path.read_text() != old_key
    assert rotated == (point == "rotate-after-commit")


def test_users_passwords_are_hashed_slowly_and_checked(store):
    users.create(store, "alice", "correct horse battery", is_admin=True)
    row = store.db["users"].get(1)
    assert row["password_hash"].startswith("scrypt:") and "correct horse" not in row["password_hash"]
    assert users.authenticate(store, "alice", "correct horse battery").is_admin
    assert users.authenticate(store, "alice", "wrong password!!") is None
    assert users.authenticate(store, "nobody", "correct horse battery") is None


def test_store_is_usable_from_many_threads(store):
    import threading

    errors = []

    def work(i):
        try:
            for j in range(20):
                store.meta_set(f"k{i}-{j}", str(j))
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.db.execute("SELECT count(*) FROM meta WHERE key GLOB 'k[0-9]*'").fetchone()[0] == 120


def test_database_that_is_not_sqlite_is_a_clear_error(store, config):
    store.close()
    for path in db_files(config):
        path.unlink()
    config.storage.db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=f"cannot read {config.storage.db_path}"):
        open_store(config, env={}, create=True)
