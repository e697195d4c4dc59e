"""The secret token behind each user's free/busy feed URL: create, show, look up, revoke.

A feed URL is a bearer secret that calendar clients fetch without logging in, so the token
is long and random, looked up only by its SHA-256, and kept sealed for showing it again to
its owner. Regenerating replaces it: the old URL stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets

from daemon.store.db import Store

TOKEN_BYTES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token(store: Store, user_id: int) -> str | None:
    """The user's current feed token, or None when they have none (never made, or revoked)."""
    row = store.db.execute("SELECT feed_token_sealed FROM users WHERE id = ?", [user_id]).fetchone()
    if row is None or row[0] is None:
        return None
    return store.unseal("users", "feed_token_sealed", user_id, row[0])


def regenerate(store: Store, user_id: int) -> str:
    """A new token for the user; the previous one (if any) stops working."""
    new = secrets.token_urlsafe(TOKEN_BYTES)
    with store.atomic() as db:
        db["users"].update(user_id, {"feed_token_hash": _digest(new),
                                     "feed_token_sealed": store.seal("users", "feed_token_sealed", user_id, new)})
    return new


def revoke(store: Store, user_id: int) -> None:
    with store.atomic() as db:
        db["users"].update(user_id, {"feed_token_hash": None, "feed_token_sealed": None})


def user_for(store: Store, presented: str) -> int | None:
    """The id of the user whose feed token this is, or None.

    The lookup is by digest, so its timing says nothing about how much of a guess was right.
    """
    if not presented or len(presented) > 200:
        return None
    row = store.db.execute("SELECT id FROM users WHERE feed_token_hash = ?", [_digest(presented)]).fetchone()
    return int(row[0]) if row else None
