"""The durable mail outbox: booking invites, updates, cancels and confirmations wait here
until the SMTP server has taken them.

A mail is queued in the same transaction as the booking it is about, so a booking never
exists without its mail and a crash never loses one. The recipient and the whole message
are sealed (they hold the visitor's name, address and answers); times, status, attempts and
the last error stay plain for the outbox page and for the sender's indexed query.

Life of a row: `pending` -> (claim_due) `sending` -> `sent`, or back to `pending` with a
later `next_attempt_at` (mark_failed, with backoff), or `failed` after MAX_ATTEMPTS. While a
row is `sending`, `next_attempt_at` is the end of the sender's lease: a sender that dies
mid-send leaves the row due again LEASE later, and nothing else can claim it before.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesHeaderParser


from daemon.errors import NotFound, UsageError
from daemon.mail import validate_address
from daemon.store.db import Store

KINDS = ("invite", "update", "cancel", "confirmation", "notice")
STATUSES = ("pending", "sending", "sent", "failed")
MAX_ATTEMPTS = 8
#: wait before attempt 2, 3, ...; the last value repeats
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=6))
#: how long a claimed row belongs to its sender; longer than any send (SMTP timeout 15 s)
LEASE = timedelta(minutes=10)
MAX_ERROR = 500


@dataclass(frozen=True)
class OutboxEntry:
    """One queued mail as the outbox page shows it (the body stays sealed)."""

    id: int
    user_id: int
    booking_id: int | None
    kind: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str
    sent_at: str | None
    recipient: str
    subject: str


def _iso(when: datetime | None) -> str:
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        raise ValueError("outbox times must be aware")
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _to_text(message: EmailMessage) -> str:
    # Bytes first: as_string() would re-encode 8-bit parts; invites.py writes only 7-bit
    # and base64 parts, so this is plain ASCII in practice.
    return message.as_bytes(policy=email.policy.default).decode("utf-8")


def _from_text(text: str) -> EmailMessage:
    return email.message_from_bytes(text.encode("utf-8"), policy=email.policy.default)  # type: ignore[return-value]


def enqueue(store: Store, *, user_id: int, booking_id: int | None, kind: str, recipient: str,
            message: EmailMessage, now: datetime | None = None) -> int:
    """Queue `message` for `recipient`, due at once. Returns the entry's id.

    Works inside the caller's transaction (it nests as a savepoint), so the booking and its
    mail commit or roll back together.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    recipient = validate_address(recipient)
    when = _iso(now)
    with store.atomic() as db:  # IMMEDIATE: senders in other threads commit meanwhile
        entry_id = db["outbox"].insert({
            "user_id": user_id, "booking_id": booking_id, "kind": kind, "status": "pending", "attempts": 0,
            "next_attempt_at": when, "created_at": when}).last_pk
        # Sealed after the insert: the row id is bound into each sealed value.
        db["outbox"].update(entry_id, {
            "recipient_sealed": store.seal("outbox", "recipient_sealed", entry_id, recipient),
            "message_sealed": store.seal("outbox", "message_sealed", entry_id, _to_text(message)),
        })
    return int(entry_id)


def claim_due(store: Store, now: datetime, limit: int = 20) -> list[tuple[int, str, EmailMessage]]:
    """Take up to `limit` due rows for sending: (id, recipient, message), oldest due first.

    One UPDATE ... RETURNING, so it is atomic on its own: two senders (the scheduler job and
    a kick after a booking, or two processes) never get the same row. Each claim counts as
    an attempt, so a row whose sender keeps crashing still ends as `failed`.
    """
    at = _iso(now)
    rows = store.db.execute(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ? "
        "WHERE id IN (SELECT id FROM outbox WHERE status IN ('pending', 'sending') AND next_attempt_at <= ? "
        "ORDER BY next_attempt_at, id LIMIT ?) "
        "RETURNING id, recipient_sealed, message_sealed",
        [_iso(now + LEASE), at, limit]).fetchall()
    out = []
    for entry_id, recipient, message in sorted(rows):
        out.append((entry_id, store.unseal("outbox", "recipient_sealed", entry_id, recipient) or "",
                    _from_text(store.unseal("outbox", "message_sealed", entry_id, message) or "")))
    return out


def mark_sent(store: Store, entry_id: int, now: datetime) -> None:
    store.db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, next_attempt_at = NULL, last_error = NULL "
                     "WHERE id = ? AND status = 'sending'", [_iso(now), entry_id])


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def mark_failed(store: Store, entry_id: int, error: str, now: datetime) -> str:
    """Record a failed attempt: due again after the backoff, or `failed` after MAX_ATTEMPTS.

    `error` is shown on the outbox page; it must be plain words without secrets (the text
    of a daemon.mail.MailError or of mail.explain). Returns the row's new status.
    """
    error = " ".join((error or "unknown error").split())[:MAX_ERROR]
    with store.atomic() as db:  # IMMEDIATE: senders in other threads commit meanwhile
        row = db.execute("SELECT attempts FROM outbox WHERE id = ? AND status = 'sending'", [entry_id]).fetchone()
        if row is None:
            return "gone"  # retried or removed meanwhile: nothing to record
        attempts = row[0]
        if attempts >= MAX_ATTEMPTS:
            status, due = "failed", None
        else:
            status, due = "pending", _iso(now + backoff(attempts))
        db.execute("UPDATE outbox SET status = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                   [status, due, error, entry_id])
    return status


def release(store: Store, entry_ids: list[int], now: datetime) -> None:
    """Give claimed rows back unsent (the sender is stopping): due at once, attempt not counted."""
    for entry_id in entry_ids:
        store.db.execute("UPDATE outbox SET status = 'pending', attempts = max(attempts - 1, 0), "
                         "next_attempt_at = ? WHERE id = ? AND status = 'sending'", [_iso(now), entry_id])


def _subject(store: Store, row: dict) -> str:
    text = store.unseal("outbox", "message_sealed", row["id"], row["message_sealed"]) or ""
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(text.encode("utf-8"))
    return str(headers["Subject"] or "")


def _entry(store: Store, row: dict) -> OutboxEntry:
    return OutboxEntry(
        id=row["id"], user_id=row["user_id"], booking_id=row["booking_id"], kind=row["kind"], status=row["status"],
        attempts=row["attempts"], next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
        created_at=row["created_at"], sent_at=row["sent_at"],
        recipient=store.unseal("outbox", "recipient_sealed", row["id"], row["recipient_sealed"]) or "",
        subject=_subject(store, row))


def _rows(store: Store, where: str, args: list) -> list[dict]:
    cur = store.db.execute(f"SELECT * FROM outbox WHERE {where}", args)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def for_user(store: Store, user_id: int, limit: int = 100) -> list[OutboxEntry]:
    """The user's mails, newest first."""
    return [_entry(store, r) for r in _rows(store, "user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                                            [user_id, limit])]


def get(store: Store, entry_id: int, user_id: int) -> OutboxEntry:
    """One of the user's mails; NotFound for anyone else's."""
    rows = _rows(store, "id = ? AND user_id = ?", [entry_id, user_id])
    if not rows:
        raise NotFound(f"outbox entry {entry_id} does not exist")
    return _entry(store, rows[0])


def retry_now(store: Store, entry_id: int, user_id: int, *, now: datetime | None = None) -> None:
    """Make a waiting or given-up mail due at once. A given-up one gets a fresh series of
    attempts (the user has usually just fixed the mail settings)."""
    with store.atomic() as db:  # IMMEDIATE: senders in other threads commit meanwhile
        row = db.execute("SELECT status FROM outbox WHERE id = ? AND user_id = ?", [entry_id, user_id]).fetchone()
        if row is None:
            raise NotFound(f"outbox entry {entry_id} does not exist")
        if row[0] == "sent":
            raise UsageError("this mail has already been sent")
        if row[0] == "sending":
            raise UsageError("this mail is being sent right now")
        db.execute("UPDATE outbox SET status = 'pending', next_attempt_at = ?, "
                   "attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END WHERE id = ?",
                   [_iso(now), entry_id])


def pending_count(store: Store, user_id: int | None = None) -> int:
    """Mails not delivered yet and still being tried (pending or being sent)."""
    where, args = "status IN ('pending', 'sending')", []
    if user_id is not None:
        where, args = where + " AND user_id = ?", [user_id]
    return store.db.execute(f"SELECT count(*) FROM outbox WHERE {where}", args).fetchone()[0]
