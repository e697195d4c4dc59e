"""Accounts and their calendars. An account's URL, login, password or tokens are one sealed
JSON object; the rest (kind, name, mode, status) stays plain for listing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from daemon.errors import NotFound, UsageError
from daemon.models import AccessMode, CalendarInfo
from daemon.store.db import Store, utcnow

KINDS = ("caldav", "ics", "local", "google", "microsoft")
NAME_RE = re.compile(r"^[\w][\w .@+-]{0,63}$")


@dataclass(frozen=True)
class Account:
    id: int
    user_id: int
    kind: str
    name: str
    mode: AccessMode
    status: str
    last_error: str | None
    last_success_at: str | None
    failures: int
    backoff_until: str | None


@dataclass(frozen=True)
class Calendar:
    id: int
    account_id: int
    remote_id: str
    name: str
    color: str | None
    writable: bool
    use_for_conflicts: bool
    extended_permission: bool
    cursor: str | None
    cursor_window: str | None
    last_refresh_at: str | None
    last_full_at: str | None


def _account(row: dict) -> Account:
    return Account(row["id"], row["user_id"], row["kind"], row["name"], AccessMode(row["mode"]), row["status"] or "ok",
                   row["last_error"], row["last_success_at"], row["failures"] or 0, row["backoff_until"])


def _calendar(row: dict) -> Calendar:
    return Calendar(row["id"], row["account_id"], row["remote_id"], row["name"] or row["remote_id"], row["color"],
                    bool(row["writable"]), bool(row["use_for_conflicts"]), bool(row["extended_permission"]),
                    row["cursor"], row["cursor_window"], row["last_refresh_at"], row["last_full_at"])


def add(store: Store, user_id: int, kind: str, name: str, mode: AccessMode, secret: dict) -> Account:
    if kind not in KINDS:
        raise UsageError(f"account kind must be one of {', '.join(KINDS)}")
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise UsageError("account name must be 1-64 letters, digits, spaces or . @ + - _")
    with store.atomic() as db:
        if db.execute("SELECT 1 FROM accounts WHERE user_id = ? AND name = ?", [user_id, name]).fetchone():
            raise UsageError(f"an account named {name!r} already exists")
        cur = db.execute("INSERT INTO accounts (user_id, kind, name, mode, status, created_at, failures) "
                         "VALUES (?, ?, ?, ?, 'ok', ?, 0) RETURNING id",
                         [user_id, kind, name, str(mode), utcnow()])
        aid = cur.fetchone()[0]
        db.execute("UPDATE accounts SET config_sealed = ? WHERE id = ?",
                   [store.seal("accounts", "config_sealed", aid, json.dumps(secret)), aid])
    return get(store, aid)


def check_new_name(store: Store, user_id: int, name: str) -> str:
    """The cleaned `name` if `add` would accept it for this user (to fail before a slow provider call)."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise UsageError("account name must be 1-64 letters, digits, spaces or . @ + - _")
    if store.db.execute("SELECT 1 FROM accounts WHERE user_id = ? AND name = ?", [user_id, name]).fetchone():
        raise UsageError(f"an account named {name!r} already exists")
    return name


def get(store: Store, account_id: int, user_id: int | None = None) -> Account:
    sql, args = "SELECT * FROM accounts WHERE id = ?", [account_id]
    if user_id is not None:
        sql, args = sql + " AND user_id = ?", args + [user_id]
    rows = list(store.db.query(sql, args))
    if not rows:
        raise NotFound(f"no account {account_id}")
    return _account(rows[0])


def find(store: Store, ref: str, user_id: int | None = None) -> Account:
    """An account by id or name (CLI arguments accept both)."""
    sql = "SELECT * FROM accounts WHERE (name = ? OR CAST(id AS TEXT) = ?)"
    args: list = [ref, ref]
    if user_id is not None:
        sql, args = sql + " AND user_id = ?", args + [user_id]
    rows = list(store.db.query(sql, args))
    if not rows:
        raise NotFound(f"no account named {ref!r}; see `homecal account list`")
    return _account(rows[0])


def all_accounts(store: Store, user_id: int | None = None) -> list[Account]:
    if user_id is None:
        return [_account(r) for r in store.db.query("SELECT * FROM accounts ORDER BY id")]
    return [_account(r) for r in store.db.query("SELECT * FROM accounts WHERE user_id = ? ORDER BY id", [user_id])]


def secret(store: Store, account_id: int) -> dict:
    row = store.db.execute("SELECT config_sealed FROM accounts WHERE id = ?", [account_id]).fetchone()
    if row is None:
        raise NotFound(f"no account {account_id}")
    return json.loads(store.unseal("accounts", "config_sealed", account_id, row[0]) or "{}")


def set_secret(store: Store, account_id: int, value: dict) -> None:
    store.db.execute("UPDATE accounts SET config_sealed = ? WHERE id = ?",
                     [store.seal("accounts", "config_sealed", account_id, json.dumps(value)), account_id])


def record_success(store: Store, account_id: int) -> None:
    store.db.execute("UPDATE accounts SET status = 'ok', last_error = NULL, failures = 0, backoff_until = NULL, "
                     "last_success_at = ? WHERE id = ?", [utcnow(), account_id])


def record_failure(store: Store, account_id: int, message: str, *, status: str = "error",
                   backoff_until: str | None = None) -> None:
    store.db.execute("UPDATE accounts SET status = ?, last_error = ?, last_error_at = ?, failures = failures + 1, "
                     "backoff_until = ? WHERE id = ?", [status, message[:500], utcnow(), backoff_until, account_id])


def remove(store: Store, account_id: int) -> None:
    """Remove an account, its calendars and their mirror. Refused while rules use them."""
    with store.atomic() as db:
        cal_ids = [r[0] for r in db.execute("SELECT id FROM calendars WHERE account_id = ?", [account_id])]
        if cal_ids:
            marks = ",".join("?" * len(cal_ids))
            used = sorted({r[0] for r in db.execute(
                f"SELECT id FROM rules WHERE target_calendar_id IN ({marks}) "
                f"UNION SELECT rule_id FROM rule_sources WHERE calendar_id IN ({marks})", cal_ids + cal_ids)})
            if used:
                raise UsageError(f"rules {', '.join(map(str, used))} use this account's calendars; "
                                 "remove them first (homecal rule remove ID)")
            for table in ("instances", "items", "local_events"):
                db.execute(f"DELETE FROM {table} WHERE calendar_id IN ({marks})", cal_ids)
            db.execute("DELETE FROM calendars WHERE account_id = ?", [account_id])
        db.execute("DELETE FROM accounts WHERE id = ?", [account_id])


# -- calendars ---------------------------------------------------------------------------

def save_calendars(store: Store, account_id: int, infos: list[CalendarInfo]) -> list[Calendar]:
    """Record the calendars a provider listed; new ones are added, known ones renamed."""
    with store.atomic() as db:
        for info in infos:
            db.execute(
                "INSERT INTO calendars (account_id, remote_id, name, color, writable) VALUES (?, ?, ?, ?, ?) "
                # A colour already set (chosen in homecal, or listed before) is kept: a refresh
                # must not undo the user's choice.
                "ON CONFLICT(account_id, remote_id) DO UPDATE SET name = excluded.name, "
                "color = coalesce(calendars.color, excluded.color), "
                "writable = excluded.writable",
                [account_id, info.remote_id, info.name, info.color, int(info.writable)])
    return calendars(store, account_id)


def calendars(store: Store, account_id: int | None = None, user_id: int | None = None) -> list[Calendar]:
    sql = "SELECT c.* FROM calendars c JOIN accounts a ON a.id = c.account_id WHERE 1=1"
    args: list = []
    if account_id is not None:
        sql, args = sql + " AND c.account_id = ?", args + [account_id]
    if user_id is not None:
        sql, args = sql + " AND a.user_id = ?", args + [user_id]
    return [_calendar(r) for r in store.db.query(sql + " ORDER BY c.id", args)]


def calendar(store: Store, calendar_id: int) -> Calendar:
    rows = list(store.db.query("SELECT * FROM calendars WHERE id = ?", [calendar_id]))
    if not rows:
        raise NotFound(f"no calendar {calendar_id}")
    return _calendar(rows[0])


def find_calendar(store: Store, ref: str, user_id: int | None = None) -> Calendar:
    """A calendar by id, by "account/calendar name", or by name when that is unambiguous."""
    cals = calendars(store, user_id=user_id)
    if ref.isdigit():
        hit = [c for c in cals if c.id == int(ref)]
    elif "/" in ref:
        acc_name, cal_name = ref.split("/", 1)
        accs = {a.id: a.name for a in all_accounts(store, user_id)}
        hit = [c for c in cals if accs.get(c.account_id) == acc_name and c.name == cal_name]
    else:
        hit = [c for c in cals if c.name == ref]
    if not hit:
        raise NotFound(f"no calendar {ref!r}; see `homecal calendars`")
    if len(hit) > 1:
        raise UsageError(f"{ref!r} names {len(hit)} calendars; use its id or ACCOUNT/CALENDAR")
    return hit[0]


def set_cursor(store: Store, calendar_id: int, cursor: str | None, window_start: str, *, full: bool,
               at: str | None = None) -> None:
    now = at or utcnow()
    sql = "UPDATE calendars SET cursor = ?, cursor_window = ?, last_refresh_at = ?"
    args: list = [cursor, window_start, now]
    if full:
        sql, args = sql + ", last_full_at = ?", args + [now]
    store.db.execute(sql + " WHERE id = ?", args + [calendar_id])


def set_calendar_flags(store: Store, calendar_id: int, **flags: bool) -> None:
    allowed = {"use_for_conflicts", "extended_permission"}
    for key, value in flags.items():
        if key not in allowed:
            raise UsageError(f"unknown calendar setting {key}")
        store.db.execute(f"UPDATE calendars SET {key} = ? WHERE id = ?", [int(bool(value)), calendar_id])


COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")


def set_calendar_color(store: Store, calendar_id: int, color: str | None) -> None:
    """Store the calendar's colour as #RRGGBB (None clears it)."""
    if color is not None:
        if not COLOR_RE.match(color.strip()):
            raise UsageError("colour must be #RRGGBB")
        color = color.strip().upper()
    store.db.execute("UPDATE calendars SET color = ? WHERE id = ?", [color, calendar_id])


def user_calendar(store: Store, calendar_id: int, user_id: int) -> Calendar:
    """A calendar of one of `user_id`'s accounts; NotFound for anyone else's."""
    rows = list(store.db.query("SELECT c.* FROM calendars c JOIN accounts a ON a.id = c.account_id "
                               "WHERE c.id = ? AND a.user_id = ?", [calendar_id, user_id]))
    if not rows:
        raise NotFound(f"no calendar {calendar_id}")
    return _calendar(rows[0])
