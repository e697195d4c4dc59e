"""Bookings: taking a slot (the one place double booking is prevented), reading, moving, cancelling.

Times, status and provenance are plain columns; who booked (name, e-mail, answers, zone, the
location given to them and the video link of a conference the provider made, the management
token for their mails) is sealed in `details_sealed`. The token of the reschedule and cancel
links is looked up by SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from daemon.errors import NotFound
from daemon.store.db import Store, utcnow


def utc_text(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BookingRow:
    id: int
    link_id: int
    user_id: int
    uid: str
    sequence: int
    status: str
    start: datetime
    end: datetime
    local_day: str
    delivery: str | None
    target_calendar_id: int | None
    target_id: str | None
    target_etag: str | None
    details: dict
    created_at: str
    updated_at: str | None
    cancelled_at: str | None
    cancelled_by: str | None


def _row(store: Store, row: dict) -> BookingRow:
    details = json.loads(store.unseal("bookings", "details_sealed", row["id"], row["details_sealed"]) or "{}")
    return BookingRow(row["id"], row["link_id"], row["user_id"], row["uid"], row["sequence"], row["status"],
                      datetime.fromisoformat(row["start_utc"]), datetime.fromisoformat(row["end_utc"]),
                      row["local_day"], row["delivery"], row["target_calendar_id"], row["target_id"],
                      row["target_etag"], details, row["created_at"], row["updated_at"], row["cancelled_at"],
                      row["cancelled_by"])


def _select(store: Store, where: str, args: list) -> list[BookingRow]:
    cur = store.db.execute(f"SELECT * FROM bookings WHERE {where}", args)
    cols = [c[0] for c in cur.description]
    return [_row(store, dict(zip(cols, r, strict=True))) for r in cur.fetchall()]


def busy_of_user(store: Store, user_id: int, start: datetime, end: datetime, *,
                 exclude_id: int | None = None) -> list[tuple[datetime, datetime]]:
    """Confirmed bookings of the host (through any link) overlapping [start, end)."""
    rows = store.db.execute(
        "SELECT start_utc, end_utc FROM bookings WHERE user_id = ? AND status = 'confirmed' "
        "AND start_utc < ? AND end_utc > ? AND id != ?",
        [user_id, utc_text(end), utc_text(start), exclude_id or 0]).fetchall()
    return [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in rows]


def per_day(store: Store, link_id: int, first: date, last: date, *, exclude_id: int | None = None) -> dict[date, int]:
    """Confirmed bookings of one link per host day, for the daily limit."""
    rows = store.db.execute(
        "SELECT local_day, count(*) FROM bookings WHERE link_id = ? AND status = 'confirmed' "
        "AND local_day BETWEEN ? AND ? AND id != ? GROUP BY local_day",
        [link_id, first.isoformat(), last.isoformat(), exclude_id or 0]).fetchall()
    return {date.fromisoformat(d): n for d, n in rows}


def insert(store: Store, *, link_id: int, user_id: int, uid: str, start: datetime, end: datetime, local_day: date,
           token: str, details: dict, check: Callable[[], bool]) -> int | None:
    """Take the slot: inside one transaction run `check` (which re-reads the host's bookings)
    and insert only if it still says the slot is free. None when it was taken. `atomic()`
    takes the write lock first, so racing bookings queue and each reads the latest rows."""
    with store.atomic() as conn:
        if not check():
            return None
        now = utcnow()
        try:
            cur = conn.execute(
                "INSERT INTO bookings (link_id, user_id, uid, sequence, status, start_utc, end_utc, local_day, "
                "token_hash, created_at, updated_at) VALUES (?, ?, ?, 0, 'confirmed', ?, ?, ?, ?, ?, ?)",
                [link_id, user_id, uid, utc_text(start), utc_text(end), local_day.isoformat(),
                 token_digest(token), now, now])
        except sqlite3.IntegrityError:  # the partial unique index: same host, same start
            return None
        booking_id = cur.lastrowid
        conn.execute("UPDATE bookings SET details_sealed = ? WHERE id = ?",
                     [store.seal("bookings", "details_sealed", booking_id, json.dumps(details)), booking_id])
    return booking_id


def move(store: Store, booking_id: int, *, start: datetime, end: datetime, local_day: date,
         check: Callable[[], bool]) -> bool:
    """Move a confirmed booking (SEQUENCE + 1) if `check` still passes inside the transaction."""
    with store.atomic() as conn:
        if not check():
            return False
        try:
            changed = conn.execute(
                "UPDATE bookings SET start_utc = ?, end_utc = ?, local_day = ?, sequence = sequence + 1, "
                "updated_at = ? WHERE id = ? AND status = 'confirmed'",
                [utc_text(start), utc_text(end), local_day.isoformat(), utcnow(), booking_id]).rowcount
        except sqlite3.IntegrityError:
            return False
    return bool(changed)


def mark_cancelled(store: Store, booking_id: int, by: str) -> bool:
    """Cancel (SEQUENCE + 1). False if it was not confirmed (already cancelled)."""
    now = utcnow()
    with store.atomic() as db:
        return bool(db.execute(
            "UPDATE bookings SET status = 'cancelled', sequence = sequence + 1, cancelled_at = ?, cancelled_by = ?, "
            "updated_at = ? WHERE id = ? AND status = 'confirmed'", [now, by, now, booking_id]).rowcount)


def delete(store: Store, booking_id: int) -> None:
    """Forget a booking that could not be delivered (its slot is free again)."""
    with store.atomic() as db:
        db.execute("UPDATE outbox SET booking_id = NULL WHERE booking_id = ?", [booking_id])
        db.execute("DELETE FROM bookings WHERE id = ?", [booking_id])


def set_delivery(store: Store, booking_id: int, *, delivery: str, target_calendar_id: int | None,
                 target_id: str | None, target_etag: str | None) -> None:
    with store.atomic() as db:
        db["bookings"].update(booking_id, {"delivery": delivery, "target_calendar_id": target_calendar_id,
                                           "target_id": target_id, "target_etag": target_etag})


def merge_details(store: Store, booking_id: int, changes: dict) -> None:
    """Add or replace keys of a booking's sealed details (e.g. the video link the provider
    returned once its event was written); sealed again as a whole, inside one transaction."""
    with store.atomic() as db:
        row = db.execute("SELECT details_sealed FROM bookings WHERE id = ?", [booking_id]).fetchone()
        if row is None:
            raise NotFound(f"booking {booking_id} does not exist")
        details = json.loads(store.unseal("bookings", "details_sealed", booking_id, row[0]) or "{}")
        details.update(changes)
        db.execute("UPDATE bookings SET details_sealed = ? WHERE id = ?",
                   [store.seal("bookings", "details_sealed", booking_id, json.dumps(details)), booking_id])


def get(store: Store, booking_id: int, user_id: int | None = None) -> BookingRow:
    where, args = "id = ?", [booking_id]
    if user_id is not None:
        where, args = "id = ? AND user_id = ?", [booking_id, user_id]
    rows = _select(store, where, args)
    if not rows:
        raise NotFound(f"booking {booking_id} does not exist")
    return rows[0]


def by_token(store: Store, token: str) -> BookingRow | None:
    if not token or len(token) > 100:
        return None
    rows = _select(store, "token_hash = ?", [token_digest(token)])
    return rows[0] if rows else None


def for_user(store: Store, user_id: int, *, since: datetime | None = None, include_cancelled: bool = False,
             limit: int = 500) -> list[BookingRow]:
    where, args = "user_id = ?", [user_id]
    if since is not None:
        where += " AND end_utc > ?"
        args.append(utc_text(since))
    if not include_cancelled:
        where += " AND status = 'confirmed'"
    return _select(store, f"{where} ORDER BY start_utc, id LIMIT ?", [*args, limit])
