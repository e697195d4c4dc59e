"""homecal's web UI: `create_app(config, store)` builds the Flask application.

Later areas (accounts, rules, calendar view, booking links, public booking pages, feeds) each
add one blueprint module and one line to BLUEPRINTS. Every route needs a log-in unless its
view is decorated with `webui.security.public`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Blueprint, Flask, g
from flask_wtf.csrf import CSRFProtect

import daemon
from daemon.config import Config
from daemon.store import Store
from daemon.store.settings import configured_public_url
from webui import (accounts, accounts_google, accounts_microsoft, auth, booking_public, calendar_view, dashboard,
                   errors, feeds, health, links, rules, security, settings)
from webui.forms import LogoutForm
from webui.state import WebState, install
from webui.throttle import LoginThrottle

__all__ = ["BLUEPRINTS", "create_app"]

#: one blueprint per area of the UI, registered in this order
BLUEPRINTS: list[Blueprint] = [auth.bp, dashboard.bp, accounts.bp, accounts_google.bp, accounts_microsoft.bp, rules.bp, calendar_view.bp, links.bp,
                               booking_public.bp, feeds.bp, settings.bp, health.bp]

SECRET_KEY_META = "flask_secret_key"
SESSION_LIFETIME = timedelta(days=14)
MAX_UPLOAD_BYTES = 1024 * 1024


def _secret_key(store: Store) -> str:
    """The session-signing key, sealed in the store so it survives restarts.

    Generated on first start; rotating the master key re-seals it like any other secret.
    """
    key = store.meta_get_secret(SECRET_KEY_META)
    if not key:
        key = secrets.token_urlsafe(48)
        store.meta_set_secret(SECRET_KEY_META, key)
    return key


def create_app(config: Config, store: Store, *, testing: bool = False) -> Flask:
    """Build the web UI for `config`, reading and writing through the open `store`.

    `testing` sets Flask's TESTING flag only: CSRF protection and the login gate stay on, so
    tests exercise exactly what users get.
    """
    app = Flask(__name__)
    app.config.update(
        TESTING=testing,
        SECRET_KEY=_secret_key(store),
        SESSION_COOKIE_NAME="homecal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Only when users reach homecal over https; a plain-http LAN setup would otherwise
        # never get its cookie back. A public URL saved in Settings counts from the next start.
        SESSION_COOKIE_SECURE=configured_public_url(config, store).lower().startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        # The token is bound to the session cookie, which logout and the 14-day lifetime end
        # anyway; a separate time limit would only break forms left open over lunch.
        WTF_CSRF_TIME_LIMIT=None,
    )
    install(app, WebState(config=config, store=store, throttle=LoginThrottle()))

    # Order matters: the login gate runs before the CSRF check (see security.init_app).
    security.init_app(app)
    CSRFProtect(app)
    errors.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    # Templates use many {% if %} blocks; trimming keeps the served HTML readable.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _shell_context() -> dict[str, object]:
        # Must not touch the store: the error page renders through here when the store fails.
        user = g.get("user")
        # formdata=None: never parse the request body here (it may be the cause of a 413).
        return {
            "version": daemon.__version__,
            "current_user": user,
            "logout_form": LogoutForm(formdata=None) if user is not None else None,
        }

    return app
