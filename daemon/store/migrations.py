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
