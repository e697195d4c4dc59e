"""Linking Google accounts from the web UI (/accounts/google/..., /accounts/<id>/relink/google).

Endpoint names: accounts_google.new (the form), accounts_google.callback (Google's redirect),
accounts_google.relink (re-link an existing Google account).

The pages are webui.oauth_linking's, shared with Microsoft; this module says what is Google's:
the authorization-code flow with PKCE and state of daemon.oauth_google, the linking functions
of daemon.linking, the texts and templates. The form shows each access mode with what homecal
sees and does and the exact scopes it will request (daemon.access), before anything happens.
The pending flow (its PKCE verifier included) stays on the server (webui.oauth_pending: bound
to the logged-in user, forgotten after 10 minutes, used once); the browser only ever carries
the state. A no-access account asks Google nothing: the user types the address.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint
from werkzeug.wrappers import Response

from daemon import linking, oauth_google
from daemon.config import Config
from daemon.errors import HomecalError, UsageError
from daemon.models import AccessMode
from daemon.store import settings as global_settings
from webui.forms import as_sentence
from webui.oauth_linking import OAuthLinking, Started, sign_in_form
from webui.state import get_config, get_store

bp = Blueprint("accounts_google", __name__, url_prefix="/accounts")

CALLBACK_PATH = "/accounts/google/callback"

GoogleForm = sign_in_form("google", "Google", "ann@gmail.com", oauth_google.no_access_secret)


def _start(mode: AccessMode, redirect_uri: str, login_hint: str | None) -> Started:
    # Google's consent screen takes no hint here: it shows the accounts the browser knows.
    url, auth = oauth_google.start(get_config(), get_store(), mode, redirect_uri)
    return Started(url=url, flow=auth, state=auth.state, started=auth.started)


def _finish(auth: object, params: dict) -> dict:
    return oauth_google.finish(cast(oauth_google.PendingAuth, auth), params)


def _explain(err: HomecalError) -> str:
    if isinstance(err, UsageError):
        return as_sentence(str(err))
    return linking.explain(err, "google")


def _client_configured() -> bool:
    return global_settings.effective_google_client(get_config(), get_store()).configured


def _auth_uri(config: Config) -> str:
    return config.google.auth_uri


LINKING = OAuthLinking(
    kind="google", label="Google", consent_page="Google's consent screen", callback_path=CALLBACK_PATH,
    new_template="accounts/google_new.html", relink_template="accounts/google_relink.html", redirect_code=303,
    sign_in_uri=_auth_uri, client_configured=_client_configured, start=_start, finish=_finish,
    link=linking.link_google, relink=linking.relink_google, explain=_explain,
    no_access_secret=oauth_google.no_access_secret)


@bp.route("/google/new", methods=["GET", "POST"])
def new() -> Response:
    return LINKING.new(GoogleForm())


@bp.route("/google/callback")
def callback() -> Response:
    return LINKING.callback()


@bp.route("/<int:account_id>/relink/google", methods=["GET", "POST"])
def relink(account_id: int) -> Response:
    return LINKING.relink_page(account_id)
