"""Linking Google accounts from the web UI (/accounts/google/..., /accounts/<id>/relink/google).

Endpoint names: accounts_google.new (the form), accounts_google.callback (Google's redirect),
accounts_google.relink (re-link an existing Google account).

The form shows each access mode with what homecal sees and does and the exact scopes it will
request (daemon.access), before anything happens. Submitting it starts the authorization-code
flow with PKCE and state (daemon.oauth_google) and sends the browser to Google. The pending
flow (its PKCE verifier included) stays on the server, in memory, keyed by its state, bound to
the logged-in user and forgotten after 10 minutes; the browser only ever carries the state.
Google's answer comes back to the callback, which exchanges the code, lists the calendars and
stores the account (daemon.linking), or puts new tokens into the account being re-linked.
A no-access account asks Google nothing: the user types the address.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, RadioField
from wtforms.validators import Length, Optional

from daemon import access, linking, oauth_google
from daemon.errors import HomecalError, UsageError
from daemon.models import AccessMode
from daemon.store import accounts
from daemon.store import settings as global_settings
from daemon.store.accounts import Account, Calendar
from webui.accounts_forms import ButtonForm, _mode_choices, _name_field
from webui.forms import as_sentence
from webui.security import CONTENT_SECURITY_POLICY
from webui.state import get_config, get_store

bp = Blueprint("accounts_google", __name__, url_prefix="/accounts")

CALLBACK_PATH = "/accounts/google/callback"
#: started flows a user may have waiting at once (each POST of the form starts one)
MAX_PENDING_PER_USER = 10
_EXTENSION_KEY = "homecal_google_pending"


class GoogleForm(FlaskForm):
    name = _name_field()
    mode = RadioField("Access mode", choices=_mode_choices("google"), default=AccessMode.READ_WRITE.value)
    email = EmailField("Google address (no access only)", validators=[Optional(), Length(max=254)],
                       description="Only for No access: homecal asks Google nothing, so it cannot look the "
                                   "address up. The other modes read it from Google.",
                       render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"})

    def validate(self, extra_validators: object = None) -> bool:
        ok = super().validate(extra_validators)
        if self.mode.data == AccessMode.NO_ACCESS.value:
            try:
                oauth_google.no_access_secret(self.email.data or "")
            except UsageError:
                self.email.errors = [*self.email.errors, "Enter the Google account's address, e.g. ann@gmail.com."]
                ok = False
        return ok


# -- pending flows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Waiting:
    """A flow sent to Google, waiting for its answer at the callback."""

    auth: oauth_google.PendingAuth
    user_id: int
    #: the new account's name; "" when re-linking
    name: str
    #: the account being re-linked, else None
    account_id: int | None


class _PendingFlows:
    """The per-app store of started flows (one lock: the web server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_state: dict[str, _Waiting] = {}

    def keep(self, waiting: _Waiting) -> None:
        with self._lock:
            for state in [s for s, w in self._by_state.items() if w.auth.expired()]:
                del self._by_state[state]
            mine = sorted((w.auth.started, s) for s, w in self._by_state.items() if w.user_id == waiting.user_id)
            for _started, state in mine[:max(0, len(mine) - MAX_PENDING_PER_USER + 1)]:
                del self._by_state[state]
            self._by_state[waiting.auth.state] = waiting

    def take(self, state: str, user_id: int) -> _Waiting | None:
        """The user's flow with this state, removed (an answer is used once); None if there is none."""
        with self._lock:
            waiting = self._by_state.get(state)
            if waiting is None or waiting.user_id != user_id:
                return None
            del self._by_state[state]
        return None if waiting.auth.expired() else waiting


def _flows() -> _PendingFlows:
    flows = current_app.extensions.get(_EXTENSION_KEY)
    if flows is None:
        flows = current_app.extensions.setdefault(_EXTENSION_KEY, _PendingFlows())
    return flows


# -- helpers ---------------------------------------------------------------------------------


def redirect_uri() -> str:
    """Where Google sends the browser back: the public URL's callback (register it with the client)."""
    return global_settings.effective_public_url(get_config(), get_store()) + CALLBACK_PATH


def _allow_google_form_target(response: Response) -> Response:
    """Let this page's form end at Google's consent screen.

    The form posts to homecal, which answers with a redirect to Google; browsers apply the
    page's CSP form-action to that redirect too, so Google's origin is added for this page only.
    """
    parts = urlsplit(get_config().google.auth_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {origin}")
    return response


def _page(template: str, **context: object) -> Response:
    return _allow_google_form_target(current_app.make_response(render_template(template, **context)))


def _explain(err: HomecalError) -> str:
    if isinstance(err, UsageError):
        return as_sentence(str(err))
    return linking.explain(err, "google")


def _linked_message(account: Account, cals: list[Calendar], verb: str) -> str:
    email = accounts.secret(get_store(), account.id).get("email")
    count = len(cals)
    return (f"{verb} {account.name}{f' ({email})' if email else ''} with {count} "
            f"calendar{'' if count == 1 else 's'}.")


def _send_to_google(mode: AccessMode, name: str, account_id: int | None) -> Response:
    url, auth = oauth_google.start(get_config(), get_store(), mode, redirect_uri())
    _flows().keep(_Waiting(auth=auth, user_id=g.user.id, name=name, account_id=account_id))
    return redirect(url, code=303)


def _form_context(form: GoogleForm, error: str = "") -> dict[str, object]:
    client = global_settings.effective_google_client(get_config(), get_store())
    return {"form": form, "error": error, "modes": access.describe_all("google"), "meanings": access.SCOPE_MEANINGS,
            "client_configured": client.configured, "redirect_uri": redirect_uri()}


# -- linking ---------------------------------------------------------------------------------


@bp.route("/google/new", methods=["GET", "POST"])
def new() -> Response:
    form = GoogleForm()
    error = ""
    if request.method == "GET":
        # After a failed or declined consent the form comes back with what was chosen.
        if request.args.get("name"):
            form.name.data = request.args["name"][:64]
        if request.args.get("mode") in {m.value for m in access.modes_for("google")}:
            form.mode.data = request.args["mode"]
    elif form.validate_on_submit():
        store, mode = get_store(), AccessMode(form.mode.data)
        try:
            name = accounts.check_new_name(store, g.user.id, form.name.data)
        except UsageError as err:
            form.name.errors = [as_sentence(str(err))]
        else:
            try:
                if mode == AccessMode.NO_ACCESS:
                    account, cals = linking.link_google(store, get_config(), g.user.id, name, mode,
                                                        oauth_google.no_access_secret(form.email.data))
                    flash(_linked_message(account, cals, "Linked"), "success")
                    return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
                return _send_to_google(mode, name, None)
            except HomecalError as err:
                error = _explain(err)
    return _page("accounts/google_new.html", **_form_context(form, error))


def _back_to_form(waiting: _Waiting) -> Response:
    if waiting.account_id is not None:
        return redirect(url_for(".relink", account_id=waiting.account_id))
    return redirect(url_for(".new", name=waiting.name, mode=waiting.auth.mode.value))


@bp.route("/google/callback")
def callback() -> Response:
    waiting = _flows().take(request.args.get("state", ""), g.user.id)
    if waiting is None:
        abort(400, "This answer from Google does not belong to a linking you started here, or it came more than "
                   "10 minutes later. Start linking again from the Accounts page.")
    if request.args.get("error") == "access_denied":
        flash("You declined access on Google's consent screen, so nothing was linked. Start again if you "
              "change your mind.", "info")
        return _back_to_form(waiting)
    store, config = get_store(), get_config()
    try:
        secret = oauth_google.finish(waiting.auth, request.args.to_dict())
        if waiting.account_id is not None:
            account = accounts.get(store, waiting.account_id, g.user.id)
            cals = linking.relink_google(store, config, account, secret)
            message = _linked_message(account, cals, "Re-linked")
        else:
            account, cals = linking.link_google(store, config, g.user.id, waiting.name, waiting.auth.mode, secret)
            message = _linked_message(account, cals, "Linked")
    except HomecalError as err:
        flash(_explain(err), "error")
        return _back_to_form(waiting)
    flash(message, "success")
    return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))


# -- re-linking ------------------------------------------------------------------------------


@bp.route("/<int:account_id>/relink/google", methods=["GET", "POST"])
def relink(account_id: int) -> Response:
    account = accounts.get(get_store(), account_id, g.user.id)  # another user's id: 404
    if account.kind != "google":
        return redirect(url_for("accounts.relink", account_id=account.id))
    if account.mode == AccessMode.NO_ACCESS:
        flash(f"{account.name} is linked without access: homecal holds no Google sign-in to renew.", "info")
        return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
    form = ButtonForm()
    error = ""
    if form.validate_on_submit():
        try:
            return _send_to_google(account.mode, "", account.id)
        except HomecalError as err:
            error = _explain(err)
    client = global_settings.effective_google_client(get_config(), get_store())
    return _page("accounts/google_relink.html", form=form, error=error, account=account,
                 email=accounts.secret(get_store(), account.id).get("email") or "",
                 info=access.describe("google", account.mode), meanings=access.SCOPE_MEANINGS,
                 client_configured=client.configured)
