"""homecal's store: one SQLite file whose secrets and event details are sealed.

`open_store(config)` is the only way in. It finds the master key, proves the key opens the
database *before* changing anything, finishes an interrupted key rotation if one is
pending, then applies migrations.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from daemon.config import Config
from daemon.errors import MasterKeyError, StoreError
from daemon.store.crypto import Sealer
from daemon.store.db import (
    Store,
    _connect,
    check_key,
    migrate,
    raise_wrong_key,
    secure_data_dir,
    write_key_check,
)
from daemon.store.keys import MasterKey, external_key, new_key, pending_path, read_key_file, write_key_file

__all__ = ["Store", "open_store", "resolve_key"]

log = logging.getLogger("homecal.store")


def resolve_key(config: Config, env: dict[str, str] | None = None, *, create: bool = False) -> MasterKey:
    """Find the master key; with `create`, make a key file if none exists anywhere."""
    env = dict(os.environ) if env is None else env
    ext = external_key(env)
    if ext is not None:
        return ext
    path = config.storage.key_path
    if not path.exists() and create:
        if config.storage.db_path.exists():
            # Never mint a new key for data sealed with a lost one: it could not open it.
            raise MasterKeyError(
                f"key file {path} is missing but {config.storage.db_path} exists. Restore the "
                "key file (or set $HOMECAL_KEY); a new key could not open the existing data."
            )
        secure_data_dir(path.parent)
        write_key_file(path, new_key())
        log.info("created master key file %s (mode 0600): back it up, the data is useless without it", path)
    return MasterKey(read_key_file(path), str(path), path)


def _settle_pending_rotation(db_path: Path, key: MasterKey) -> MasterKey:
    """Finish or discard a rotation that was interrupted, so the right key is in place."""
    if key.path is None:
        return key
    pending = pending_path(key.path)
    if not pending.exists():
        return key
    probe = _connect(db_path)
    try:
        if check_key(probe, Sealer(key.key)) is not False:
            pending.unlink()  # crashed before the re-seal committed: the old key still rules
            log.warning("discarded the unfinished key rotation %s; the current key is unchanged", pending)
            return key
        new = read_key_file(pending)
        if check_key(probe, Sealer(new)):
            os.replace(pending, key.path)  # crashed after commit: complete the swap
            log.warning("completed the interrupted key rotation: %s is the new key", key.path)
            return MasterKey(new, str(key.path), key.path)
    finally:
        probe.close()
    return key


def open_store(config: Config, env: dict[str, str] | None = None, *, create: bool = False) -> Store:
    """Open (with `create`, first create) the store. Raises MasterKeyError / StoreError."""
    db_path = config.storage.db_path
    exists = db_path.exists()
    if not exists and not create:
        raise StoreError(f"no database at {db_path}; run `homecal init` first")
    key = resolve_key(config, env, create=create)
    if exists:
        key = _settle_pending_rotation(db_path, key)
        try:
            probe = _connect(db_path)
            try:
                ok = check_key(probe, Sealer(key.key))
            finally:
                probe.close()
        except Exception as err:  # noqa: BLE001 - any sqlite failure here means "not usable"
            raise StoreError(f"cannot read {db_path}: {err}") from err
        if ok is False:
            raise_wrong_key(db_path, key.source)
    else:
        secure_data_dir(db_path.parent)
    store = Store(db_path, Sealer(key.key))
    store.key = key  # type: ignore[attr-defined]
    try:
        store.db.enable_wal()
        if not exists:
            os.chmod(db_path, 0o600)
        migrate(store)
        if check_key(store.db, store.sealer) is None:
            write_key_check(store)
    except MasterKeyError:
        store.close()
        raise
    except Exception as err:
        store.close()
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"cannot open {db_path}: {err}") from err
    return store
