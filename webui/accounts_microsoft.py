"""Linking Microsoft accounts from the web UI (/accounts/microsoft/..., /accounts/<id>/relink/microsoft).

Endpoint names: accounts_microsoft.new (the form), accounts_microsoft.callback (Microsoft's
redirect), accounts_microsoft.relink (re-link an existing Microsoft account).

The pages are webui.oauth_linking's, shared with Google; this module says what is Microsoft's:
msal's authorization-code flow with PKCE and state (daemon.oauth_microsoft.start_web and
finish_web), the linking functions of daemon.linking_microsoft, the texts and templates. The
form shows each access mode with what homecal sees, stores and does and the exact Microsoft
permissions it asks for (daemon.access), before anything happens. The flow (its PKCE verifier
included) stays on the server (webui.oauth_pending: bound to the logged-in user, forgotten
after 10 minutes, used once); the browser only ever carries the state. Re-linking opens the
sign-in page with the account's address filled in. A no-access account asks Microsoft nothing:
the user types the address.
"""

from __future__ import annotations

import time
from typing import cast

from flask import Blueprint
from werkzeug.wrappers import Response

from daemon import linking_microsoft
from daemon.config import Config
from daemon.errors import UsageError
from daemon.models import AccessMode
from webui.oauth_linking import OAuthLinking, Started, sign_in_form
from webui.state import get_config

bp = Blueprint("accounts_microsoft", __name__, url_prefix="/accounts")

CALLBACK_PATH = "/accounts/microsoft/callback"
#: what homecal keeps of each event in free-busy mode (Graph's own field names, as Microsoft shows them)
FREE_BUSY_FIELDS = "only each event's start, end and show-as (free, tentative, busy, away, working elsewhere)"

MicrosoftForm = sign_in_form("microsoft", "Microsoft", "ann@contoso.com", linking_microsoft.no_access_secret)


def _client_configured() -> bool:
    return bool(get_config().microsoft.client_id)


def _start(mode: AccessMode, redirect_uri: str, login_hint: str | None) -> Started:
    # msal is imported only when a flow starts (the rest of the UI does not need it).
    from daemon import oauth_microsoft

    if not _client_configured():
        raise UsageError("no Microsoft app is configured yet: an admin registers one in the Microsoft Entra admin "
                         "center and sets [microsoft] client_id in the config file (the README's section "
                         "\"Linking Microsoft 365 or Outlook.com\" explains how)")
    flow = oauth_microsoft.start_web(get_config(), mode, redirect_uri, login_hint=login_hint or None)
    return Started(url=flow["auth_uri"], flow=flow, state=str(flow["state"]), started=time.monotonic())


def _finish(flow: object, params: dict) -> dict:
    from daemon import oauth_microsoft

    return oauth_microsoft.finish_web(get_config(), cast(dict, flow), params)


def _authority(config: Config) -> str:
    return config.microsoft.authority


LINKING = OAuthLinking(
    kind="microsoft", label="Microsoft", consent_page="Microsoft's sign-in page", callback_path=CALLBACK_PATH,
    new_template="accounts/microsoft_new.html", relink_template="accounts/microsoft_relink.html",
    redirect_code=302, sign_in_uri=_authority, client_configured=_client_configured, start=_start,
    finish=_finish, link=linking_microsoft.link_microsoft, relink=linking_microsoft.relink_microsoft,
    explain=linking_microsoft.explain_microsoft, no_access_secret=linking_microsoft.no_access_secret,
    extra_context={"free_busy_fields": FREE_BUSY_FIELDS})


@bp.route("/microsoft/new", methods=["GET", "POST"])
def new() -> Response:
    return LINKING.new(MicrosoftForm())


@bp.route("/microsoft/callback")
def callback() -> Response:
    return LINKING.callback()


@bp.route("/<int:account_id>/relink/microsoft", methods=["GET", "POST"])
def relink(account_id: int) -> Response:
    return LINKING.relink_page(account_id)
