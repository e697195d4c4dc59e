"""The Store: one SQLite file (WAL) shared by the web threads and the scheduler threads.

Each thread gets its own connection (SQLite connections must not be shared across threads
mid-transaction); WAL lets readers run beside the single writer. The Store also owns the
Sealer, so every sealed read and write goes through `seal` / `unseal` with the row bound in.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database

from daemon.errors import MasterKeyError, SealError, StoreError
from daemon.store.crypto import Sealer
from daemon.store.migrations import MIGRATIONS

log = logging.getLogger("homecal.store")

KEY_CHECK = "key_check"
_KEY_CHECK_TEXT = "homecal key check"
SEALED_SUFFIX = "_sealed"


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _connect(path: Path) -> Database:
    # Autocommit: every statement outside `atomic()` commits on its own. Python's default
    # would open an implicit transaction before the first write and keep it open.
    conn = sqlite3.connect(str(path), timeout=10, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    # In WAL mode NORMAL cannot corrupt the database and survives any process crash; only a
    # power loss may drop the last commits, and deterministic write keys make those safe
    # to redo. FULL would fsync every commit: two per event written.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return Database(conn, execute_plugins=False)


class Store:
    """Open with `open_store` (daemon.store), which checks the key before touching anything."""

    def __init__(self, path: Path, sealer: Sealer):
        self.path = path
        self.sealer = sealer
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- connections -------------------------------------------------------------------
    @property
    def db(self) -> Database:
        """This thread's connection, opened on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise StoreError("the store is closed")
            db = _connect(self.path)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def release_thread(self) -> None:
        """Close this thread's connection: a short-lived thread calls it before it ends, or
        the store would keep one connection per thread ever started until `close()`."""
        db = getattr(self._local, "db", None)
        if db is None:
            return
        self._local.db = None
        with self._lock:
            if db in self._all:
                self._all.remove(db)
        try:
            db.close()
        except sqlite3.Error:
            pass

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        """One transaction (a savepoint when nested) on this thread's connection.

        BEGIN IMMEDIATE: the write lock is taken before the first read. A deferred
        transaction that reads and then writes fails at once with "database is locked" when
        another thread committed in between (its snapshot is stale, waiting cannot help);
        taking the lock first makes concurrent writers queue instead (busy_timeout).
        """
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():  # a savepoint inside the caller's transaction
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        db.conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection. Further use raises StoreError."""
        with self._lock:
            self._closed = True
            for db in self._all:
                try:
                    db.close()
                except sqlite3.Error:  # already closed by its thread
                    pass
            self._all.clear()
        self._local = threading.local()

    def checkpoint(self) -> None:
        """Fold the WAL back into the main file (used at shutdown and by housekeeping)."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- sealing -----------------------------------------------------------------------
    def seal(self, table: str, column: str, row: object, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self.sealer.seal(value, table=table, column=column, row=row)

    def unseal(self, table: str, column: str, row: object, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        return self.sealer.open(blob, table=table, column=column, row=row)

    # -- meta --------------------------------------------------------------------------
    def meta_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str | None) -> None:
        self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def meta_get_secret(self, key: str) -> str | None:
        row = self.db.execute("SELECT value_sealed FROM meta WHERE key = ?", [key]).fetchone()
        return self.unseal("meta", "value_sealed", key, row[0]) if row and row[0] is not None else None

    def meta_set_secret(self, key: str, value: str) -> None:
        self.db["meta"].upsert({"key": key, "value_sealed": self.seal("meta", "value_sealed", key, value)}, pk="key")

    # -- schema ------------------------------------------------------------------------
    def sealed_columns(self) -> dict[str, list[str]]:
        """Every `*_sealed` column, by table, read from the live schema."""
        out: dict[str, list[str]] = {}
        for table in self.db.tables:
            cols = [c.name for c in table.columns if c.name.endswith(SEALED_SUFFIX)]
            if cols:
                out[table.name] = cols
        return out

    def applied_migrations(self) -> list[str]:
        if "_migrations" not in self.db.table_names():
            return []
        return [r[0] for r in self.db.execute("SELECT name FROM _migrations ORDER BY id")]


def check_key(db: Database, sealer: Sealer) -> bool | None:
    """True if the key opens this database, False if not, None if the database has no check yet."""
    if "meta" not in db.table_names():
        return None
    row = db.execute("SELECT value_sealed FROM meta WHERE key = ?", [KEY_CHECK]).fetchone()
    if not row or row[0] is None:
        return None
    try:
        return sealer.open(row[0], table="meta", column="value_sealed", row=KEY_CHECK) == _KEY_CHECK_TEXT
    except SealError:
        return False


def write_key_check(store: Store) -> None:
    store.meta_set_secret(KEY_CHECK, _KEY_CHECK_TEXT)


def migrate(store: Store) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction. Returns their names."""
    db = store.db
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"id": int, "name": str, "applied_at": str}, pk="id")
    applied = store.applied_migrations()
    known = [m.__name__ for m in MIGRATIONS]
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise StoreError(
            f"{store.path} was written by a newer homecal (migrations {', '.join(unknown)}); "
            "upgrade homecal or restore a backup"
        )
    done = []
    for fn in MIGRATIONS:
        if fn.__name__ in applied:
            continue
        with store.atomic() as tx:
            fn(tx)
            tx["_migrations"].insert({"name": fn.__name__, "applied_at": utcnow()})
        log.info("applied migration %s", fn.__name__)
        done.append(fn.__name__)
    return done


def secure_data_dir(path: Path) -> None:
    """Create the data directory private to this user (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except PermissionError:  # a directory we do not own (e.g. set up by an admin): leave it
        pass


def raise_wrong_key(db_path: Path, source: str) -> None:
    raise MasterKeyError(
        f"the master key from {source} does not open {db_path}. Use the key this database "
        "was created with (restore the key file from your backup); nothing was changed."
    )
