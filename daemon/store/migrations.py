"""Schema migrations: plain functions registered in order, each applied once in db.atomic().

Add a migration by appending a decorated function; never edit or reorder one that has
shipped. Columns holding sealed values end in `_sealed` (BLOB) so key rotation and the leak
test find every one of them from the schema itself.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: Database) -> None:
    """Users own everything else, so teams need no rewrite later."""
    db["meta"].create({"key": str, "value": str, "value_sealed": bytes}, pk="key")
    db["users"].create(
        {
            "id": int,
            "username": str,
            "password_hash": str,
            "is_admin": int,
            "timezone": str,
            # bumped on password change: every older session cookie stops working
            "session_version": int,
            "email_sealed": bytes,
            "created_at": str,
        },
        pk="id",
        not_null={"username", "password_hash"},
        defaults={"is_admin": 0, "session_version": 1, "timezone": "UTC"},
    )
    db["users"].create_index(["username"], unique=True)
    db["accounts"].create(
        {
            "id": int,
            "user_id": int,
            "kind": str,  # caldav | ics | local | google | microsoft
            "name": str,
            "mode": str,  # read-write | free-busy | no-access
            "status": str,  # ok | needs-relink | error
            # URL, login, password, tokens: one sealed JSON object
            "config_sealed": bytes,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "kind", "name", "mode"},
        defaults={"status": "ok"},
    )
    db["accounts"].create_index(["user_id", "name"], unique=True)
    db["rules"].create(
        {"id": int, "user_id": int, "name": str, "style": str, "options": str, "created_at": str},
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id"},
    )
    db["booking_links"].create(
        {"id": int, "user_id": int, "slug": str, "title": str, "settings": str, "created_at": str},
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "slug"},
    )
    db["booking_links"].create_index(["slug"], unique=True)


@migration
def m002_sync(db: Database) -> None:
    """Calendars, the sealed mirror of source events, and the rule mappings (intent rows)."""
    accounts = db["accounts"]
    for col, typ in (("last_error", str), ("last_error_at", str), ("last_success_at", str),
                     ("failures", int), ("backoff_until", str)):
        accounts.add_column(col, typ)
    db["calendars"].create(
        {
            "id": int,
            "account_id": int,
            "remote_id": str,
            "name": str,
            "color": str,
            "writable": int,
            "use_for_conflicts": int,
            # may homecal edit or delete events it did not create here? off unless granted
            "extended_permission": int,
            # the provider's cursor and the window start it was computed for
            "cursor": str,
            "cursor_window": str,
            "last_refresh_at": str,
            "last_full_at": str,
        },
        pk="id",
        foreign_keys=[("account_id", "accounts", "id")],
        not_null={"account_id", "remote_id"},
        defaults={"writable": 1, "use_for_conflicts": 1, "extended_permission": 0},
    )
    db["calendars"].create_index(["account_id", "remote_id"], unique=True)
    # One row per provider object (CalDAV resource, Google event, feed UID).
    db["items"].create(
        {"id": int, "calendar_id": int, "item_id": str, "etag": str},
        pk="id", foreign_keys=[("calendar_id", "calendars", "id")], not_null={"calendar_id", "item_id"},
    )
    db["items"].create_index(["calendar_id", "item_id"], unique=True)
    # One row per occurrence inside the window. Times, flags and provenance stay plain so
    # they can be indexed; title, description, location and the original zone are sealed.
    db["instances"].create(
        {
            "id": int,
            "calendar_id": int,
            "item_id": str,
            "key": str,
            "start_utc": str,
            "end_utc": str,
            "all_day": int,
            "transparent": int,
            "status": str,
            "declined": int,
            "partner_key": str,
            "data_sealed": bytes,
        },
        pk="id", foreign_keys=[("calendar_id", "calendars", "id")], not_null={"calendar_id", "key"},
    )
    db["instances"].create_index(["calendar_id", "key"], unique=True)
    db["instances"].create_index(["calendar_id", "item_id"])
    db["instances"].create_index(["start_utc"])
    rules = db["rules"]
    for col, typ in (("target_calendar_id", int), ("state", str), ("deletions_confirmed", int),
                     ("pending_deletions", str), ("last_run_at", str), ("last_success_at", str),
                     ("last_error", str), ("last_counts", str), ("next_run_at", str)):
        rules.add_column(col, typ)
    db["rule_sources"].create(
        {"rule_id": int, "calendar_id": int}, pk=("rule_id", "calendar_id"),
        foreign_keys=[("rule_id", "rules", "id"), ("calendar_id", "calendars", "id")],
    )
    # The intent row of every write: inserted as pending before the provider is called with
    # the deterministic key, so a crash or retry can never make a second copy.
    db["mappings"].create(
        {
            "id": int,
            "rule_id": int,
            "source_calendar_id": int,
            "source_key": str,
            "target_calendar_id": int,
            "generation": int,  # bumped when a deleted-by-hand clone is recreated
            "idem_key": str,
            "target_id": str,
            "target_etag": str,
            "content_hash": str,
            # pending-create | synced | pending-delete | tombstone
            "state": str,
            "start_utc": str,
            "updated_at": str,
        },
        pk="id",
        foreign_keys=[("rule_id", "rules", "id")],
        not_null={"rule_id", "source_calendar_id", "source_key", "idem_key", "state"},
        defaults={"generation": 0},
    )
    db["mappings"].create_index(["rule_id", "source_calendar_id", "source_key"], unique=True)
    db["mappings"].create_index(["target_calendar_id", "idem_key"])
    db["mappings"].create_index(["target_calendar_id", "target_id"])
    # Calendars kept in homecal itself (local accounts, no-access bookings).
    db["local_events"].create(
        {"id": int, "calendar_id": int, "uid": str, "etag": str, "seq": int, "deleted": int, "ics_sealed": bytes},
        pk="id", foreign_keys=[("calendar_id", "calendars", "id")], not_null={"calendar_id", "uid"},
        defaults={"deleted": 0},
    )
    db["local_events"].create_index(["calendar_id", "uid"], unique=True)
    db["local_events"].create_index(["calendar_id", "seq"])


@migration
def m003_partner_index(db: Database) -> None:
    """The quiet-cycle check asks "is any clone missing from the target?" by partner key."""
    db["instances"].create_index(["calendar_id", "partner_key"])
    db["mappings"].create_index(["rule_id", "state"])


@migration
def m004_web_ui(db: Database) -> None:
    """Per-user settings of the web UI and the secret of each user's free/busy feed.

    The feed token is looked up by its SHA-256 (`feed_token_hash`, so a request costs one
    indexed query and the token itself is never stored in the clear) and kept sealed as well,
    so its owner can see the feed URL again.
    """
    users = db["users"]
    users.add_column("working_hours", str)  # JSON: {"mon": ["09:00", "17:00"], ...}
    users.add_column("feed_token_hash", str)
    users.add_column("feed_token_sealed", bytes)
    users.create_index(["feed_token_hash"], unique=True)


@migration
def m005_booking(db: Database) -> None:
    """Booking links, the bookings taken through them, and the durable mail outbox.

    A link's settings (title, hours, location, questions, ...) are sealed: an address or a
    phone number is the host's private detail. A private link's URL secret is looked up by
    its SHA-256 in `slug` and kept sealed so its owner can see the URL again.

    A booking keeps its times, status and provenance plain (availability reads them with
    one indexed query); the visitor (name, e-mail, answers, zone) is sealed. The management
    token of the reschedule and cancel links is looked up by its SHA-256.
    """
    links = db["booking_links"]
    links.add_column("private", int, not_null_default=0)
    links.add_column("enabled", int, not_null_default=1)
    links.add_column("secret_sealed", bytes)
    links.add_column("settings_sealed", bytes)
    links.add_column("updated_at", str)
    db["bookings"].create(
        {
            "id": int,
            "link_id": int,
            "user_id": int,
            "uid": str,  # the iCalendar UID of every message and event about this booking
            "sequence": int,  # iTIP SEQUENCE, bumped on reschedule and cancel
            "status": str,  # confirmed | cancelled
            "start_utc": str,
            "end_utc": str,
            "local_day": str,  # the host's date of the start: the daily limit counts by it
            "delivery": str,  # event (written to the target calendar) | invite (iMIP by mail)
            "target_calendar_id": int,
            "target_id": str,  # where the event was written (CalDAV href, local uid, ...)
            "target_etag": str,
            "token_hash": str,
            "details_sealed": bytes,
            "created_at": str,
            "updated_at": str,
            "cancelled_at": str,
            "cancelled_by": str,  # visitor | host
        },
        pk="id",
        foreign_keys=[("link_id", "booking_links", "id"), ("user_id", "users", "id")],
        not_null={"link_id", "user_id", "uid", "status", "start_utc", "end_utc"},
        defaults={"sequence": 0, "status": "confirmed"},
    )
    db["bookings"].create_index(["token_hash"], unique=True)
    db["bookings"].create_index(["user_id", "status", "start_utc"])
    db["bookings"].create_index(["link_id", "status", "local_day"])
    db["bookings"].create_index(["target_calendar_id", "target_id"])
    # Belt and braces under the transaction that takes a slot: one host, one confirmed
    # booking per start time, whatever the code above it does.
    db.execute("CREATE UNIQUE INDEX bookings_one_per_start ON bookings (user_id, start_utc) "
               "WHERE status = 'confirmed'")
    db["outbox"].create(
        {
            "id": int,
            "user_id": int,
            "booking_id": int,
            "kind": str,  # invite | update | cancel | confirmation | notice
            "status": str,  # pending | sending | sent | failed (gave up)
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,  # plain words from daemon.mail.explain, never a secret
            "created_at": str,
            "sent_at": str,
            "recipient_sealed": bytes,
            "message_sealed": bytes,  # the whole RFC 5322 message
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "kind", "status"},
        defaults={"attempts": 0, "status": "pending"},
    )
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["outbox"].create_index(["user_id", "created_at"])
