"""`homecal rotate-key`: re-seal every sealed value under a new master key, crash-safely.

Order matters. (1) The new key is written beside the old one as KEYFILE.new and fsynced.
(2) One transaction re-seals every `*_sealed` column and the key check. (3) KEYFILE.new
replaces KEYFILE. A crash before (2) commits leaves the old key in force (the stale .new is
discarded at the next start); a crash between (2) and (3) is finished at the next start,
because the .new key is the one that opens the database.
"""

from __future__ import annotations

import logging
import os

from daemon.errors import MasterKeyError
from daemon.faults import crash_point
from daemon.store.crypto import Sealer
from daemon.store.db import Store
from daemon.store.keys import new_key, pending_path, write_key_file

log = logging.getLogger("homecal.store")


def _pk(store: Store, table: str) -> str:
    pks = store.db[table].pks
    return pks[0] if pks and pks[0] != "rowid" else "rowid"


def rotate_key(store: Store) -> int:
    """Re-seal everything under a fresh key. Returns the number of values re-sealed."""
    key = store.key  # type: ignore[attr-defined]
    if key.path is None:
        raise MasterKeyError(
            f"the master key comes from {key.source}; rotate-key rewrites key files only. "
            "Move the key into a key file (unset the variable / credential) and rotate then."
        )
    pending = pending_path(key.path)
    if pending.exists():
        pending.unlink()
    fresh = new_key()
    write_key_file(pending, fresh)
    new_sealer = Sealer(fresh)
    old = store.sealer
    count = 0
    with store.atomic() as db:
        for table, columns in store.sealed_columns().items():
            pk = _pk(store, table)
            cols = ", ".join(columns)
            for row in db.execute(f"SELECT {pk}, {cols} FROM [{table}]").fetchall():
                row_id, values = row[0], row[1:]
                updates = {}
                for column, blob in zip(columns, values, strict=True):
                    if blob is None:
                        continue
                    plain = old.open(blob, table=table, column=column, row=row_id)
                    updates[column] = new_sealer.seal(plain, table=table, column=column, row=row_id)
                    count += 1
                if updates:
                    sets = ", ".join(f"{c} = ?" for c in updates)
                    db.execute(f"UPDATE [{table}] SET {sets} WHERE {pk} = ?", [*updates.values(), row_id])
                    crash_point("rotate-midway")
    crash_point("rotate-after-commit")
    os.replace(pending, key.path)
    dir_fd = os.open(key.path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    store.sealer = new_sealer
    store.key = type(key)(fresh, key.source, key.path)  # type: ignore[attr-defined]
    log.info("rotated the master key: %d sealed values re-sealed", count)
    return count
