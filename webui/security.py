"""The web UI's guard rails: login required by default, `@public` opt-outs, safe redirects,
the first-run loopback check, and the security headers on every response.

Every view needs a logged-in user unless it is explicitly marked `@public`; forgetting the
decorator fails closed (the page asks for a log-in) rather than open.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, redirect, request, url_for

from daemon.store import users
from webui.sessions import load_logged_in_user
from webui.state import get_store

F = TypeVar("F", bound=Callable[..., object])

_PUBLIC_ATTR = "homecal_public"
#: endpoints that are public without carrying the decorator (Flask's own static files)
_ALWAYS_PUBLIC = frozenset({"static"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
#: a reverse proxy adds these; their presence means "loopback" is really someone else
_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def public(view: F) -> F:
    """Mark a view as reachable without logging in (log-in page, health check, booking pages)."""
    setattr(view, _PUBLIC_ATTR, True)
    return view


def is_public_endpoint(app: Flask, endpoint: str | None) -> bool:
    if endpoint is None:
        return False
    if endpoint in _ALWAYS_PUBLIC:
        return True
    view = app.view_functions.get(endpoint)
    return bool(getattr(view, _PUBLIC_ATTR, False))


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None.

    Only "/something" is accepted: no scheme, no host, no "//host" (protocol-relative) and no
    backslash (browsers read "/\\evil.com" as "//evil.com"), no control characters.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def is_loopback_request() -> bool:
    """True when the client is this machine and no reverse proxy relayed the request."""
    if any(h in request.headers for h in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # "::ffff:127.0.0.1" on dual-stack sockets
    return address.is_loopback


def setup_allowed() -> bool:
    """First-run setup is open only while there is no user and only from this machine."""
    return is_loopback_request() and users.count(get_store()) == 0


def _require_login() -> Response | None:
    """before_request: load `g.user`; send anonymous visitors of private pages to log in."""
    user = load_logged_in_user()
    # endpoint is None when routing failed: let the 404/405 through unchanged.
    if request.endpoint is None or is_public_endpoint(current_app, request.endpoint) or user is not None:
        return None
    if setup_allowed():
        return redirect(url_for("auth.setup"))
    # Only GET can be replayed after logging in; a POST target would answer 405.
    next_path = None
    if request.method in ("GET", "HEAD"):
        next_path = safe_next(request.full_path.rstrip("?"))
    if next_path and next_path != "/":
        return redirect(url_for("auth.login", next=next_path))
    return redirect(url_for("auth.login"))


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Anything but static files may show private data or carry a CSRF token: never cache.
    if request.endpoint not in _ALWAYS_PUBLIC:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Install the login gate and the header hook. Call before CSRFProtect.init_app so an
    anonymous POST to a private page is sent to log in, not answered with a CSRF error."""
    app.before_request(_require_login)
    app.after_request(_add_security_headers)
