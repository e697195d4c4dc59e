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
#: meta key: the highest id of a removed user, so a new user never inherits it
_HIGH_WATER = "users_removed_max_id"


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
            # Never reuse the id of a removed user: an old session cookie holds (id, version)
            # and would otherwise open the new user's account.
            "id": _next_id(db),
            "username": username,
            "password_hash": _hash(password),
            "is_admin": int(is_admin),
            "created_at": utcnow(),
        })
        uid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    return get(store, uid)


def _next_id(db) -> int:
    """One more than any id a user ever had (the table has no AUTOINCREMENT)."""
    current = db.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()[0]
    row = db.execute("SELECT value FROM meta WHERE key = ?", [_HIGH_WATER]).fetchone()
    removed = int(row[0]) if row and row[0] else 0
    return max(current, removed) + 1


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


# -- profile: e-mail, time zone, working hours ------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
#: what the working-hours form suggests before a user has saved any
DEFAULT_WORKING_HOURS: dict[str, tuple[str, str]] = {day: ("09:00", "17:00") for day in WEEKDAYS[:5]}


def email(store: Store, user_id: int) -> str | None:
    """The user's e-mail address (sealed: it is personal data), or None."""
    row = store.db.execute("SELECT email_sealed FROM users WHERE id = ?", [user_id]).fetchone()
    if row is None:
        raise NotFound(f"no user with id {user_id}")
    return store.unseal("users", "email_sealed", user_id, row[0])


def set_email(store: Store, user_id: int, address: str | None) -> None:
    """Set or (with None or "") clear the user's e-mail address."""
    from daemon.mail import validate_address  # smtplib and ssl are not needed by every CLI call

    value = validate_address(address) if address else None
    get(store, user_id)
    store.db["users"].update(user_id, {"email_sealed": store.seal("users", "email_sealed", user_id, value)})


@functools.cache
def time_zones() -> frozenset[str]:
    """Every IANA zone name this system knows (read once: it walks the zoneinfo tree)."""
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def validate_timezone(name: str) -> str:
    # Membership, not ZoneInfo(name): the name becomes a file path inside the zone database.
    name = (name or "").strip()
    if name not in time_zones():
        raise UsageError(f"unknown time zone {name!r}; use an IANA name like Europe/Berlin")
    return name


def set_timezone(store: Store, user_id: int, name: str) -> None:
    name = validate_timezone(name)
    get(store, user_id)
    store.db["users"].update(user_id, {"timezone": name})


def validate_working_hours(hours: dict[str, tuple[str, str] | list[str]]) -> dict[str, tuple[str, str]]:
    """{"mon": ("09:00", "17:00"), ...}: days missing are off; each day must end after it starts."""
    clean: dict[str, tuple[str, str]] = {}
    for day, span in hours.items():
        if day not in WEEKDAYS:
            raise UsageError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        if not isinstance(span, list | tuple) or len(span) != 2 or not all(
                isinstance(t, str) and _HHMM.match(t) for t in span):
            raise UsageError(f"{day}: working hours must be two times like 09:00 and 17:00")
        start, end = span
        if end <= start:  # zero-padded HH:MM compares correctly as text
            raise UsageError(f"{day}: working hours must end after they start")
        clean[day] = (start, end)
    return {day: clean[day] for day in WEEKDAYS if day in clean}


def working_hours(store: Store, user_id: int) -> dict[str, tuple[str, str]] | None:
    """The user's weekly working hours, or None when they never saved any."""
    import json

    row = store.db.execute("SELECT working_hours FROM users WHERE id = ?", [user_id]).fetchone()
    if row is None:
        raise NotFound(f"no user with id {user_id}")
    if not row[0]:
        return None
    return {day: (span[0], span[1]) for day, span in json.loads(row[0]).items()}


def set_working_hours(store: Store, user_id: int, hours: dict[str, tuple[str, str] | list[str]]) -> None:
    import json

    clean = validate_working_hours(hours)
    get(store, user_id)
    store.db["users"].update(user_id, {"working_hours": json.dumps({d: list(s) for d, s in clean.items()})})


# -- administration: roles, ownership, removal --------------------------------------------


def admin_count(store: Store) -> int:
    return store.db.execute("SELECT COUNT(*) FROM users WHERE is_admin = 1").fetchone()[0]


def set_admin(store: Store, user_id: int, is_admin: bool) -> User:
    """Grant or take admin rights; the last admin cannot lose them (nobody could add users)."""
    with store.atomic() as db:
        user = get(store, user_id)
        if user.is_admin and not is_admin and admin_count(store) <= 1:
            raise UsageError(f"{user.username} is the only admin; make another user admin first")
        db["users"].update(user_id, {"is_admin": int(is_admin)})
    return get(store, user_id)


def owned(store: Store, user_id: int) -> dict[str, int]:
    """How many rows of each table belong to the user, found from the schema's foreign keys,
    so tables added later (booking links, bookings, ...) are counted without a change here."""
    counts: dict[str, int] = {}
    for table in store.db.tables:
        for fk in table.foreign_keys:
            if fk.other_table == "users" and fk.other_column == "id" and table.name != "users":
                n = store.db.execute(f'SELECT COUNT(*) FROM "{table.name}" WHERE "{fk.column}" = ?',
                                     [user_id]).fetchone()[0]
                if n:
                    counts[table.name] = counts.get(table.name, 0) + n
    return counts


def remove(store: Store, user_id: int) -> None:
    """Delete a user who owns nothing. Their sessions end with the row; their id is retired."""
    with store.atomic() as db:
        user = get(store, user_id)
        if user.is_admin and admin_count(store) <= 1:
            raise UsageError(f"{user.username} is the only admin and cannot be removed")
        things = owned(store, user_id)
        if things:
            listing = ", ".join(f"{n} {table}" for table, n in sorted(things.items()))
            raise UsageError(f"{user.username} still owns {listing}; remove those first")
        row = db.execute("SELECT value FROM meta WHERE key = ?", [_HIGH_WATER]).fetchone()
        high = max(int(row[0]) if row and row[0] else 0, user_id)
        db["meta"].upsert({"key": _HIGH_WATER, "value": str(high)}, pk="key")
        db.execute("DELETE FROM users WHERE id = ?", [user_id])
