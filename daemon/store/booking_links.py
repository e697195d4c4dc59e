"""Booking links: create, edit, list, look up by the public URL, remove.

A public link is found by its slug. A private link's URL carries a long random secret
instead; only its SHA-256 is in `slug` (so a lookup is one indexed query and the secret is
never stored in the clear) and the secret itself is sealed, so its owner can see the URL
again. The settings (title, hours, location, questions, ...) are sealed JSON.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from daemon.booking.link_settings import LinkSettings, LinkSettingsError, validate_slug
from daemon.errors import NotFound, UsageError
from daemon.store.db import Store, utcnow

SECRET_BYTES = 18  # 24 URL-safe characters: unguessable, still fits a line of an e-mail
MAX_LINKS_PER_USER = 100


@dataclass(frozen=True)
class BookingLink:
    id: int
    user_id: int
    private: bool
    enabled: bool
    # the path segment after /book/: the slug, or the secret of a private link
    url_key: str
    settings: LinkSettings
    created_at: str
    updated_at: str | None

    @property
    def title(self) -> str:
        return self.settings.title


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _link(store: Store, row: dict) -> BookingLink:
    settings = LinkSettings.from_json(store.unseal("booking_links", "settings_sealed", row["id"],
                                                   row["settings_sealed"]))
    if row["private"]:
        key = store.unseal("booking_links", "secret_sealed", row["id"], row["secret_sealed"])
    else:
        key = row["slug"]
    return BookingLink(row["id"], row["user_id"], bool(row["private"]), bool(row["enabled"]), key, settings,
                       row["created_at"], row["updated_at"])


def _rows(store: Store, where: str, args: list) -> list[dict]:
    cur = store.db.execute(f"SELECT * FROM booking_links WHERE {where}", args)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _check_slug_free(store: Store, slug: str, link_id: int | None) -> None:
    row = store.db.execute("SELECT id FROM booking_links WHERE slug = ?", [slug]).fetchone()
    if row is not None and row[0] != link_id:
        raise LinkSettingsError({"slug": f"/book/{slug} is already taken; choose another"})


def create(store: Store, user_id: int, settings: LinkSettings, *, slug: str | None = None,
           private: bool = False) -> BookingLink:
    """A new link. Public links need a `slug`; private links get a random secret."""
    n = store.db.execute("SELECT count(*) FROM booking_links WHERE user_id = ?", [user_id]).fetchone()[0]
    if n >= MAX_LINKS_PER_USER:
        raise UsageError(f"a user can have at most {MAX_LINKS_PER_USER} booking links")
    secret = secrets.token_urlsafe(SECRET_BYTES) if private else None
    key = _digest(secret) if secret else validate_slug(slug or "")
    with store.atomic() as db:
        _check_slug_free(store, key, None)
        now = utcnow()
        link_id = db["booking_links"].insert({"user_id": user_id, "slug": key, "private": int(private),
                                              "enabled": 1, "created_at": now, "updated_at": now}).last_pk
        db["booking_links"].update(link_id, {
            "settings_sealed": store.seal("booking_links", "settings_sealed", link_id, settings.to_json()),
            "secret_sealed": store.seal("booking_links", "secret_sealed", link_id, secret) if secret else None,
        })
    return get(store, link_id, user_id)


def update(store: Store, link_id: int, user_id: int, settings: LinkSettings, *, slug: str | None = None,
           enabled: bool | None = None) -> BookingLink:
    """Save new settings (and, for a public link, a new slug). Bookings already taken keep
    their times; the new settings apply to the slots offered from now on."""
    link = get(store, link_id, user_id)
    values: dict = {"updated_at": utcnow(),
                    "settings_sealed": store.seal("booking_links", "settings_sealed", link_id, settings.to_json())}
    if slug is not None and not link.private:
        values["slug"] = validate_slug(slug)
        _check_slug_free(store, values["slug"], link_id)
    if enabled is not None:
        values["enabled"] = int(enabled)
    with store.atomic() as db:
        db["booking_links"].update(link_id, values)
    return get(store, link_id, user_id)


def new_secret(store: Store, link_id: int, user_id: int) -> BookingLink:
    """A private link's new URL: the old one stops working at once."""
    link = get(store, link_id, user_id)
    if not link.private:
        raise UsageError("only a private link has a secret URL")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    with store.atomic() as db:
        db["booking_links"].update(link_id, {
            "slug": _digest(secret), "updated_at": utcnow(),
            "secret_sealed": store.seal("booking_links", "secret_sealed", link_id, secret)})
    return get(store, link_id, user_id)


def get(store: Store, link_id: int, user_id: int | None = None) -> BookingLink:
    """The link, only if it belongs to `user_id` when one is given; else NotFound."""
    where, args = "id = ?", [link_id]
    if user_id is not None:
        where, args = "id = ? AND user_id = ?", [link_id, user_id]
    rows = _rows(store, where, args)
    if not rows:
        raise NotFound(f"booking link {link_id} does not exist")
    return _link(store, rows[0])


def for_user(store: Store, user_id: int) -> list[BookingLink]:
    return [_link(store, r) for r in _rows(store, "user_id = ? ORDER BY id", [user_id])]


def by_url_key(store: Store, key: str) -> BookingLink | None:
    """The enabled link behind a /book/<key> URL, or None. Never says which part was wrong."""
    if not key or len(key) > 100:
        return None
    rows = _rows(store, "((private = 0 AND slug = ?) OR (private = 1 AND slug = ?)) AND enabled = 1",
                 [key.lower(), _digest(key)])
    return _link(store, rows[0]) if rows else None


def remove(store: Store, link_id: int, user_id: int) -> None:
    """Delete a link and its booking history. Upcoming bookings must be cancelled first
    (the caller does that, so visitors hear about it); the outbox keeps its mail."""
    get(store, link_id, user_id)
    with store.atomic() as db:
        upcoming = db.execute("SELECT count(*) FROM bookings WHERE link_id = ? AND status = 'confirmed' "
                              "AND end_utc > ?", [link_id, utcnow()]).fetchone()[0]
        if upcoming:
            raise UsageError(f"this link has {upcoming} upcoming booking(s); cancel them first")
        db.execute("UPDATE outbox SET booking_id = NULL WHERE booking_id IN "
                   "(SELECT id FROM bookings WHERE link_id = ?)", [link_id])
        db.execute("DELETE FROM bookings WHERE link_id = ?", [link_id])
        db.execute("DELETE FROM booking_links WHERE id = ?", [link_id])
