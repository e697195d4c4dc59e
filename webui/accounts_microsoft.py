"""Linking Microsoft accounts from the web UI (/accounts/microsoft/..., /accounts/<id>/relink/microsoft).

Endpoint names: accounts_microsoft.new (the form), accounts_microsoft.callback (Microsoft's
redirect), accounts_microsoft.relink (re-link an existing Microsoft account).

The form shows each access mode with what homecal sees, stores and does and the exact
Microsoft permissions it asks for (daemon.access), before anything happens. Submitting it
starts msal's authorization-code flow with PKCE and state (daemon.oauth_microsoft.start_web)
and sends the browser to Microsoft's sign-in page. The flow (its PKCE verifier included) stays
on the server, in memory, keyed by its state, bound to the logged-in user, forgotten after 10
minutes and used once; the browser only ever carries the state. Microsoft's answer comes back
to the callback, which redeems the code (finish_web), lists the calendars and stores the account
(daemon.linking_microsoft), or puts the new sign-in into the account being re-linked. A
no-access account asks Microsoft nothing: the user types the address.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, RadioField
from wtforms.validators import Length, Optional

from daemon import access, linking_microsoft
from daemon.errors import HomecalError, UsageError
from daemon.models import AccessMode
from daemon.store import accounts
from daemon.store import settings as global_settings
from daemon.store.accounts import Account, Calendar
from webui.accounts_forms import ButtonForm, _mode_choices, _name_field
from webui.security import CONTENT_SECURITY_POLICY
from webui.state import get_config, get_store

bp = Blueprint("accounts_microsoft", __name__, url_prefix="/accounts")

CALLBACK_PATH = "/accounts/microsoft/callback"
#: how long a started flow may wait for Microsoft's answer (its codes live about 10 minutes too)
PENDING_LIFETIME = 600
#: started flows a user may have waiting at once (each POST of the form starts one)
MAX_PENDING_PER_USER = 10
_EXTENSION_KEY = "homecal_microsoft_pending"
#: what homecal keeps of each event in free-busy mode (Graph's own field names, as Microsoft shows them)
FREE_BUSY_FIELDS = "only each event's start, end and show-as (free, tentative, busy, away, working elsewhere)"


class MicrosoftForm(FlaskForm):
    name = _name_field()
    mode = RadioField("Access mode", choices=_mode_choices("microsoft"), default=AccessMode.READ_WRITE.value)
    email = EmailField("Microsoft address (no access only)", validators=[Optional(), Length(max=254)],
                       description="Only for No access: homecal asks Microsoft nothing, so it cannot look the "
                                   "address up. The other modes read it from Microsoft.",
                       render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"})

    def validate(self, extra_validators: object = None) -> bool:
        ok = super().validate(extra_validators)
        if self.mode.data == AccessMode.NO_ACCESS.value:
            try:
                linking_microsoft.no_access_secret(self.email.data or "")
            except UsageError:
                self.email.errors = [*self.email.errors,
                                     "Enter the Microsoft account's address, e.g. ann@contoso.com."]
                ok = False
        return ok


# -- pending flows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Waiting:
    """A flow sent to Microsoft, waiting for its answer at the callback."""

    #: msal's auth-code flow dict (state, PKCE verifier, nonce, redirect URI, ...): server side only
    flow: dict = field(repr=False)
    mode: AccessMode
    user_id: int
    #: the new account's name; "" when re-linking
    name: str
    #: the account being re-linked, else None
    account_id: int | None
    #: time.monotonic() when the flow started
    started: float

    @property
    def state(self) -> str:
        return str(self.flow["state"])

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) - self.started > PENDING_LIFETIME


class _PendingFlows:
    """The per-app store of started flows (one lock: the web server is threaded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_state: dict[str, _Waiting] = {}

    def keep(self, waiting: _Waiting) -> None:
        with self._lock:
            for state in [s for s, w in self._by_state.items() if w.expired()]:
                del self._by_state[state]
            mine = sorted((w.started, s) for s, w in self._by_state.items() if w.user_id == waiting.user_id)
            for _started, state in mine[:max(0, len(mine) - MAX_PENDING_PER_USER + 1)]:
                del self._by_state[state]
            self._by_state[waiting.state] = waiting

    def take(self, state: str, user_id: int) -> _Waiting | None:
        """The user's flow with this state, removed (an answer is used once); None if there is none."""
        with self._lock:
            waiting = self._by_state.get(state)
            if waiting is None or waiting.user_id != user_id:
                return None
            del self._by_state[state]
        return None if waiting.expired() else waiting


def _flows() -> _PendingFlows:
    flows = current_app.extensions.get(_EXTENSION_KEY)
    if flows is None:
        flows = current_app.extensions.setdefault(_EXTENSION_KEY, _PendingFlows())
    return flows


# -- helpers ---------------------------------------------------------------------------------


def redirect_uri() -> str:
    """Where Microsoft sends the browser back: the public URL's callback (register it with the app)."""
    return global_settings.effective_public_url(get_config(), get_store()) + CALLBACK_PATH


def _client_configured() -> bool:
    return bool(get_config().microsoft.client_id)


def _allow_sign_in_target(response: Response) -> Response:
    """Let this page's form end at Microsoft's sign-in page.

    The form posts to homecal, which answers with a redirect to the authority; browsers apply
    the page's CSP form-action to that redirect too, so the authority's origin is added for this
    page only.
    """
    parts = urlsplit(get_config().microsoft.authority)
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {origin}")
    return response


def _page(template: str, **context: object) -> Response:
    return _allow_sign_in_target(current_app.make_response(render_template(template, **context)))


def _explain(err: HomecalError) -> str:
    return linking_microsoft.explain_microsoft(err)


def _linked_message(account: Account, cals: list[Calendar], verb: str) -> str:
    email = accounts.secret(get_store(), account.id).get("email")
    count = len(cals)
    return (f"{verb} {account.name}{f' ({email})' if email else ''} with {count} "
            f"calendar{'' if count == 1 else 's'}.")


def _require_client() -> None:
    if not _client_configured():
        raise UsageError("no Microsoft app is configured yet: an admin registers one in the Microsoft Entra admin "
                         "center and sets [microsoft] client_id in the config file (the README's section "
                         "\"Linking Microsoft 365 or Outlook.com\" explains how)")


def _send_to_microsoft(mode: AccessMode, name: str, account_id: int | None, login_hint: str | None = None) -> Response:
    from daemon import oauth_microsoft

    _require_client()
    flow = oauth_microsoft.start_web(get_config(), mode, redirect_uri(), login_hint=login_hint or None)
    _flows().keep(_Waiting(flow=flow, mode=mode, user_id=g.user.id, name=name, account_id=account_id,
                           started=time.monotonic()))
    return redirect(flow["auth_uri"], code=302)


def _form_context(form: MicrosoftForm, error: str = "") -> dict[str, object]:
    return {"form": form, "error": error, "modes": access.describe_all("microsoft"),
            "meanings": access.SCOPE_MEANINGS, "client_configured": _client_configured(),
            "redirect_uri": redirect_uri(), "free_busy_fields": FREE_BUSY_FIELDS}


# -- linking ---------------------------------------------------------------------------------


@bp.route("/microsoft/new", methods=["GET", "POST"])
def new() -> Response:
    form = MicrosoftForm()
    error = ""
    if request.method == "GET":
        # After a failed or declined sign-in the form comes back with what was chosen.
        if request.args.get("name"):
            form.name.data = request.args["name"][:64]
        if request.args.get("mode") in {m.value for m in access.modes_for("microsoft")}:
            form.mode.data = request.args["mode"]
    elif form.validate_on_submit():
        store, mode = get_store(), AccessMode(form.mode.data)
        try:
            name = accounts.check_new_name(store, g.user.id, form.name.data)
        except UsageError as err:
            form.name.errors = [_explain(err)]
        else:
            try:
                if mode == AccessMode.NO_ACCESS:
                    account, cals = linking_microsoft.link_microsoft(
                        store, get_config(), g.user.id, name, mode, linking_microsoft.no_access_secret(form.email.data))
                    flash(_linked_message(account, cals, "Linked"), "success")
                    return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
                return _send_to_microsoft(mode, name, None)
            except HomecalError as err:
                error = _explain(err)
    return _page("accounts/microsoft_new.html", **_form_context(form, error))


def _back_to_form(waiting: _Waiting) -> Response:
    if waiting.account_id is not None:
        return redirect(url_for(".relink", account_id=waiting.account_id))
    return redirect(url_for(".new", name=waiting.name, mode=waiting.mode.value))


@bp.route("/microsoft/callback")
def callback() -> Response:
    waiting = _flows().take(request.args.get("state", ""), g.user.id)
    if waiting is None:
        abort(400, "This answer from Microsoft does not belong to a linking you started here, or it came more "
                   "than 10 minutes later. Start linking again from the Accounts page.")
    if request.args.get("error") == "access_denied":
        flash("You declined access on Microsoft's sign-in page, so nothing was linked. Start again if you "
              "change your mind.", "info")
        return _back_to_form(waiting)
    from daemon import oauth_microsoft

    store, config = get_store(), get_config()
    try:
        secret = oauth_microsoft.finish_web(config, waiting.flow, request.args.to_dict())
        if waiting.account_id is not None:
            account = accounts.get(store, waiting.account_id, g.user.id)
            cals = linking_microsoft.relink_microsoft(store, config, account, secret)
            message = _linked_message(account, cals, "Re-linked")
        else:
            account, cals = linking_microsoft.link_microsoft(store, config, g.user.id, waiting.name, waiting.mode,
                                                             secret)
            message = _linked_message(account, cals, "Linked")
    except HomecalError as err:
        flash(_explain(err), "error")
        return _back_to_form(waiting)
    flash(message, "success")
    return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))


# -- re-linking ------------------------------------------------------------------------------


@bp.route("/<int:account_id>/relink/microsoft", methods=["GET", "POST"])
def relink(account_id: int) -> Response:
    store = get_store()
    account = accounts.get(store, account_id, g.user.id)  # another user's id: 404
    if account.kind != "microsoft":
        return redirect(url_for("accounts.relink", account_id=account.id))
    if account.mode == AccessMode.NO_ACCESS:
        flash(f"{account.name} is linked without access: homecal holds no Microsoft sign-in to renew.", "info")
        return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
    form = ButtonForm()
    error = ""
    secret = accounts.secret(store, account.id)
    email = secret.get("email") or secret.get("username") or ""
    if form.validate_on_submit():
        try:
            # The sign-in page opens with the account's address filled in: the same person.
            return _send_to_microsoft(account.mode, "", account.id, login_hint=secret.get("username") or email)
        except HomecalError as err:
            error = _explain(err)
    return _page("accounts/microsoft_relink.html", form=form, error=error, account=account, email=email,
                 info=access.describe("microsoft", account.mode), meanings=access.SCOPE_MEANINGS,
                 client_configured=_client_configured(), free_busy_fields=FREE_BUSY_FIELDS)
