"""Users: the owners of accounts, rules and booking links. Passwords hashed with scrypt."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from daemon.errors import NotFound, UsageError
from daemon.store.db import Store, utcnow

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


@functools.cache
def _dummy_hash() -> str:
    """A hash checked when the user does not exist, so a login for an unknown name takes as
    long as one for a known name. Made on first use: scrypt at import would slow every CLI call."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash("homecal-dummy-password-for-timing", method="scrypt")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    is_admin: bool
    timezone: str
    session_version: int


def _user(row: dict) -> User:
    return User(row["id"], row["username"], bool(row["is_admin"]), row["timezone"] or "UTC", row["session_version"])


def validate_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise UsageError("user name must be 1-64 letters, digits or . _ @ -, starting with a letter or digit")
    return username


def validate_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise UsageError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"password must be at most {MAX_PASSWORD} characters")
    return password


def count(store: Store) -> int:
    return store.db["users"].count


def _hash(password: str) -> str:
    # Imported here: werkzeug costs ~40 ms to import, which every `homecal sync` would pay.
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password, method="scrypt")


def _check(hashed: str, password: str) -> bool:
    from werkzeug.security import check_password_hash

    return check_password_hash(hashed, password)


def create(store: Store, username: str, password: str, *, is_admin: bool = False) -> User:
    username = validate_username(username)
    validate_password(password)
    with store.atomic() as db:
        if db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise UsageError(f"user {username!r} already exists")
        db["users"].insert({
            "username": username,
            "password_hash": _hash(password),
            "is_admin": int(is_admin),
            "created_at": utcnow(),
        })
        uid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    return get(store, uid)


def get(store: Store, user_id: int) -> User:
    rows = list(store.db["users"].rows_where("id = ?", [user_id]))
    if not rows:
        raise NotFound(f"no user with id {user_id}")
    return _user(rows[0])


def all_users(store: Store) -> list[User]:
    return [_user(r) for r in store.db["users"].rows_where(order_by="id")]


def authenticate(store: Store, username: str, password: str) -> User | None:
    """The user if the password matches, else None (same work either way)."""
    rows = list(store.db["users"].rows_where("username = ?", [(username or "").strip()]))
    if not rows:
        _check(_dummy_hash(), password or "")
        return None
    if not _check(rows[0]["password_hash"], password or ""):
        return None
    return _user(rows[0])


def set_password(store: Store, user_id: int, password: str) -> User:
    """Change the password and end every existing session of that user."""
    validate_password(password)
    with store.atomic() as db:
        db.execute(
            "UPDATE users SET password_hash = ?, session_version = session_version + 1 WHERE id = ?",
            [_hash(password), user_id],
        )
    return get(store, user_id)
