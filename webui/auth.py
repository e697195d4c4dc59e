"""Log-in, log-out and first-run setup (the `auth` blueprint).

Setup creates the first admin from the browser, but only while no user exists and only for
a request made on this machine without a reverse proxy in between; everyone else is told to
run `homecal init` on the server.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from daemon.errors import UsageError
from daemon.store import users
from webui.forms import LoginForm, SetupForm, as_sentence
from webui.security import public, safe_next, setup_allowed
from webui.sessions import login_user, logout_user
from webui.state import get_store, web_state

bp = Blueprint("auth", __name__)

WRONG_CREDENTIALS = "Wrong user name or password."


def _not_set_up() -> tuple[str, int]:
    """The page for visitors who may not run setup while no admin exists yet."""
    # 503: the service exists but cannot be used until someone sets it up on the server.
    return render_template("not_set_up.html"), 503


def _throttle_key() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str | tuple[str, int]:
    store = get_store()
    if users.count(store) == 0:
        return redirect(url_for("auth.setup")) if setup_allowed() else _not_set_up()
    next_path = safe_next(request.args.get("next"))
    if g.user is not None:
        return redirect(next_path or url_for("dashboard.index"))

    form = LoginForm()
    error = None
    if request.method == "POST":
        throttle = web_state().throttle
        wait = throttle.retry_after(_throttle_key())
        if wait:
            minutes = max(1, round(wait / 60))
            raise TooManyRequests(
                f"Too many failed log-in attempts from your address. "
                f"Please wait about {minutes} minute{'s' if minutes != 1 else ''} and try again.",
                retry_after=wait,
            )
        if form.validate_on_submit():
            user = users.authenticate(store, form.username.data, form.password.data)
            if user is not None:
                throttle.reset(_throttle_key())
                login_user(user)
                return redirect(next_path or url_for("dashboard.index"))
            throttle.record_failure(_throttle_key())
            # One message for both cases: never reveal whether the name exists.
            error = WRONG_CREDENTIALS
    return render_template("login.html", form=form, error=error, next_path=next_path)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    # POST only, with the CSRF token: a link or image on another site cannot log you out.
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
@public
def setup() -> Response | str:
    if not setup_allowed():
        abort(404)  # no hint that a setup page exists at all
    form = SetupForm()
    if form.validate_on_submit():
        store = get_store()
        try:
            with store.atomic():
                # Re-check inside the transaction: two tabs may submit at once.
                if users.count(store) != 0:
                    abort(404)
                user = users.create(store, form.username.data, form.password.data, is_admin=True)
        except UsageError as err:
            form.username.errors = [*form.username.errors, as_sentence(str(err))]
        else:
            login_user(user)
            flash("Your admin account is ready. You are logged in.", "success")
            return redirect(url_for("dashboard.index"))
    return render_template("setup.html", form=form)
