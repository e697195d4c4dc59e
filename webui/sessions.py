"""Who is logged in: the session cookie holds a user id and that user's session version.

Flask's session is a signed cookie. Storing the session version next to the id means a
password change (which bumps the version in the database) ends every other session at
their next request, without a server-side session table.
"""

from __future__ import annotations

from flask import g, session

from daemon.errors import NotFound
from daemon.store import users
from daemon.store.users import User
from webui.state import get_store

_USER_ID = "uid"
_VERSION = "sv"


def login_user(user: User) -> None:
    """Start a fresh session for `user`.

    Clearing first drops everything an attacker might have planted in the pre-login cookie
    (session fixation), including the CSRF token, so Flask-WTF issues a new one.
    """
    session.clear()
    session[_USER_ID] = user.id
    session[_VERSION] = user.session_version
    session.permanent = True  # lifetime is PERMANENT_SESSION_LIFETIME (14 days)
    g.user = user


def logout_user() -> None:
    session.clear()
    g.user = None


def load_logged_in_user() -> User | None:
    """Set and return `g.user` from the session; a stale or forged-looking session is cleared."""
    g.user = None
    user_id = session.get(_USER_ID)
    if user_id is None:
        return None
    try:
        user = users.get(get_store(), int(user_id))
    except (NotFound, TypeError, ValueError):
        session.clear()  # the user was deleted, or the cookie holds garbage
        return None
    if session.get(_VERSION) != user.session_version:
        session.clear()  # the password changed since this session began
        return None
    g.user = user
    return user
