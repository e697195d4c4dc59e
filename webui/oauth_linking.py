"""The web pages that link an account through a provider's sign-in: one copy for Google and Microsoft.

webui/accounts_google.py and webui/accounts_microsoft.py each describe their provider in an
OAuthLinking (its name, its sign-in module, its daemon linking functions, its templates) and
route their three pages to it:

- the form (`new`): each access mode with what homecal sees and does and the exact scopes it
  asks for; a no-access account is stored at once (the user types the address, the provider is
  asked nothing); any other mode starts the provider's authorization-code flow with PKCE and
  state and sends the browser to the provider. The flow waits on the server
  (webui.oauth_pending: bound to the user, 10 minutes, used once);
- the callback: the provider's answer, which is redeemed, lists the calendars and stores the
  account (or puts the new sign-in into the account being re-linked);
- re-link (`relink`): a button that sends the user to sign in again, as the same person.

The forms' pages may end at the provider: the form posts to homecal, which redirects to the
provider, and browsers apply the page's CSP form-action to that redirect too, so the
provider's origin is added to form-action for these pages only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, RadioField
from wtforms.validators import Length, Optional

from daemon import access
from daemon.config import Config
from daemon.errors import HomecalError, UsageError
from daemon.models import AccessMode
from daemon.store import accounts
from daemon.store import settings as global_settings
from daemon.store.accounts import Account, Calendar
from daemon.store.db import Store
from webui.accounts_forms import ButtonForm, _mode_choices, _name_field
from webui.oauth_pending import Waiting, pending_flows
from webui.security import CONTENT_SECURITY_POLICY
from webui.state import get_config, get_store


class Started(NamedTuple):
    """A flow the provider's module started: where to send the browser, and what to keep."""

    url: str
    flow: object
    state: str
    #: time.monotonic() when it started
    started: float


Link = Callable[[Store, Config, int, str, AccessMode, dict], tuple[Account, list[Calendar]]]
Relink = Callable[[Store, Config, Account, dict], list[Calendar]]


@dataclass(frozen=True)
class OAuthLinking:
    """One provider's sign-in pages: what differs between Google and Microsoft, and the shared views."""

    kind: str
    #: the provider's name in messages ("Google")
    label: str
    #: where the user allows access, in messages ("Google's consent screen")
    consent_page: str
    callback_path: str
    #: the form's and the re-link page's templates (both extend accounts/_oauth_*.html)
    new_template: str
    relink_template: str
    #: the status of the redirect to the provider (Google's pages have always used 303)
    redirect_code: int
    #: the provider's sign-in URL, whose origin the forms may end at
    sign_in_uri: Callable[[Config], str]
    client_configured: Callable[[], bool]
    #: (mode, redirect URI, login hint or None): start a flow; raises HomecalError if it cannot
    start: Callable[[AccessMode, str, str | None], Started]
    #: (kept flow, the callback's query): the new account's secret
    finish: Callable[[object, dict], dict]
    link: Link
    relink: Relink
    explain: Callable[[HomecalError], str]
    no_access_secret: Callable[[str], dict]
    #: more for both templates (e.g. what free-busy mode keeps)
    extra_context: dict = field(default_factory=dict)

    # -- helpers ---------------------------------------------------------------------------

    def redirect_uri(self) -> str:
        """Where the provider sends the browser back: the public URL's callback (register it there)."""
        return global_settings.effective_public_url(get_config(), get_store()) + self.callback_path

    def _page(self, template: str, **context: object) -> Response:
        response = current_app.make_response(render_template(template, provider=self.label, **context))
        parts = urlsplit(self.sign_in_uri(get_config()))
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}")
        return response

    def _send(self, mode: AccessMode, name: str, account_id: int | None, login_hint: str | None = None) -> Response:
        started = self.start(mode, self.redirect_uri(), login_hint)
        pending_flows(self.kind).keep(Waiting(flow=started.flow, state=started.state, mode=mode, user_id=g.user.id,
                                              name=name, account_id=account_id, started=started.started))
        return redirect(started.url, code=self.redirect_code)

    def _back_to_form(self, waiting: Waiting) -> Response:
        if waiting.account_id is not None:
            return redirect(url_for(".relink", account_id=waiting.account_id))
        return redirect(url_for(".new", name=waiting.name, mode=waiting.mode.value))

    # -- the pages -------------------------------------------------------------------------

    def new(self, form: FlaskForm) -> Response:
        error = ""
        if request.method == "GET":
            # After a failed or declined consent the form comes back with what was chosen.
            if request.args.get("name"):
                form.name.data = request.args["name"][:64]
            if request.args.get("mode") in {m.value for m in access.modes_for(self.kind)}:
                form.mode.data = request.args["mode"]
        elif form.validate_on_submit():
            store, mode = get_store(), AccessMode(form.mode.data)
            try:
                name = accounts.check_new_name(store, g.user.id, form.name.data)
            except UsageError as err:
                form.name.errors = [self.explain(err)]
            else:
                try:
                    if mode == AccessMode.NO_ACCESS:
                        account, cals = self.link(store, get_config(), g.user.id, name, mode,
                                                  self.no_access_secret(form.email.data))
                        flash(linked_message(account, cals, "Linked"), "success")
                        return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
                    return self._send(mode, name, None)
                except HomecalError as err:
                    error = self.explain(err)
        return self._page(self.new_template, form=form, error=error, modes=access.describe_all(self.kind),
                          meanings=access.SCOPE_MEANINGS, client_configured=self.client_configured(),
                          redirect_uri=self.redirect_uri(), **self.extra_context)

    def callback(self) -> Response:
        waiting = pending_flows(self.kind).take(request.args.get("state", ""), g.user.id)
        if waiting is None:
            abort(400, f"This answer from {self.label} does not belong to a linking you started here, or it came "
                       f"more than 10 minutes later. Start linking again from the Accounts page.")
        if request.args.get("error") == "access_denied":
            flash(f"You declined access on {self.consent_page}, so nothing was linked. Start again if you "
                  f"change your mind.", "info")
            return self._back_to_form(waiting)
        store, config = get_store(), get_config()
        try:
            secret = self.finish(waiting.flow, request.args.to_dict())
            if waiting.account_id is not None:
                account = accounts.get(store, waiting.account_id, g.user.id)
                cals = self.relink(store, config, account, secret)
                message = linked_message(account, cals, "Re-linked")
            else:
                account, cals = self.link(store, config, g.user.id, waiting.name, waiting.mode, secret)
                message = linked_message(account, cals, "Linked")
        except HomecalError as err:
            flash(self.explain(err), "error")
            return self._back_to_form(waiting)
        flash(message, "success")
        return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))

    def relink_page(self, account_id: int) -> Response:
        store = get_store()
        account = accounts.get(store, account_id, g.user.id)  # another user's id: 404
        if account.kind != self.kind:
            return redirect(url_for("accounts.relink", account_id=account.id))
        if account.mode == AccessMode.NO_ACCESS:
            flash(f"{account.name} is linked without access: homecal holds no {self.label} sign-in to renew.",
                  "info")
            return redirect(url_for("accounts.index", _anchor=f"account-{account.id}"))
        form = ButtonForm()
        error = ""
        secret = accounts.secret(store, account.id)
        email = secret.get("email") or secret.get("username") or ""
        if form.validate_on_submit():
            try:
                # The sign-in page opens with the account's address filled in (where the
                # provider takes a hint): the same person.
                return self._send(account.mode, "", account.id, login_hint=secret.get("username") or email)
            except HomecalError as err:
                error = self.explain(err)
        return self._page(self.relink_template, form=form, error=error, account=account, email=email,
                          info=access.describe(self.kind, account.mode), meanings=access.SCOPE_MEANINGS,
                          client_configured=self.client_configured(), **self.extra_context)


def linked_message(account: Account, cals: list[Calendar], verb: str) -> str:
    """The flash after a (re-)link: the account, its address and how many calendars it has."""
    email = accounts.secret(get_store(), account.id).get("email")
    count = len(cals)
    return (f"{verb} {account.name}{f' ({email})' if email else ''} with {count} "
            f"calendar{'' if count == 1 else 's'}.")


def sign_in_form(kind: str, label: str, example: str, no_access_secret: Callable[[str], dict]) -> type[FlaskForm]:
    """The link form of a provider with a sign-in: a name, the access mode, the address for no access."""

    class SignInForm(FlaskForm):
        name = _name_field()
        mode = RadioField("Access mode", choices=_mode_choices(kind), default=AccessMode.READ_WRITE.value)
        email = EmailField(f"{label} address (no access only)", validators=[Optional(), Length(max=254)],
                           description=f"Only for No access: homecal asks {label} nothing, so it cannot look the "
                                       f"address up. The other modes read it from {label}.",
                           render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"})

        def validate(self, extra_validators: object = None) -> bool:
            ok = super().validate(extra_validators)
            if self.mode.data == AccessMode.NO_ACCESS.value:
                try:
                    no_access_secret(self.email.data or "")
                except UsageError:
                    self.email.errors = [*self.email.errors, f"Enter the {label} account's address, e.g. {example}."]
                    ok = False
            return ok

    SignInForm.__name__ = SignInForm.__qualname__ = f"{label}Form"
    return SignInForm
