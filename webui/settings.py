"""Settings (/settings): profile and time zone, working hours, password, mail (SMTP and its test
mail), public URL, the Google OAuth client; the users pages live in webui.users_admin on the
same blueprint.

Each sub-page has its own form and Save button. Mail, the public URL and the Google client are
global, so only admins change them; other users see them read-only (never a secret). Endpoint names other areas link to:
settings.index, settings.users (admin only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from functools import wraps
from typing import TypeVar

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from daemon import mail as mailer
from daemon.errors import UsageError
from daemon.store import settings as global_settings
from daemon.store import users
from webui import users_admin
from webui.forms import as_sentence
from webui.sessions import login_user
from webui.settings_forms import (
    SECURITY_LABELS,
    ConfirmForm,
    GoogleClientForm,
    PasswordChangeForm,
    ProfileForm,
    PublicUrlForm,
    SmtpForm,
    TestMailForm,
    WorkingHoursForm,
)
from webui.state import get_config, get_store, web_state

bp = Blueprint("settings", __name__, url_prefix="/settings")

F = TypeVar("F", bound=Callable[..., object])

#: the settings sub-pages, in nav order: (endpoint, label, admin only)
SECTIONS = [
    ("settings.index", "Profile", False),
    ("settings.working_hours", "Working hours", False),
    ("settings.password", "Password", False),
    ("settings.mail", "Mail", False),
    ("settings.public_url", "Public URL", False),
    ("settings.google", "Google", False),
    ("settings.users", "Users", True),
]


def admin_required(status: int) -> Callable[[F], F]:
    """Refuse non-admins with `status`: 404 where even the page's existence is private,
    403 where they may look (read-only) but not change."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: object, **kwargs: object) -> object:
            if not g.user.is_admin:
                abort(status, "Only an admin can change this." if status == 403 else None)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def render(template: str, **context: object) -> str:
    """A settings page with the sub-navigation."""
    sections = [(ep, label) for ep, label, admin_only in SECTIONS if g.user.is_admin or not admin_only]
    return render_template(template, sections=sections, **context)


# -- profile ---------------------------------------------------------------------------------


@bp.route("/", methods=["GET", "POST"])
def index() -> Response | str:
    store = get_store()
    user = g.user
    form = ProfileForm(data={"email": users.email(store, user.id) or "", "timezone": user.timezone})
    form.set_zone_choices(user.timezone)
    if form.validate_on_submit():
        with store.atomic():
            users.set_email(store, user.id, (form.email.data or "").strip() or None)
            users.set_timezone(store, user.id, form.timezone.data)
        flash("Your profile was saved.", "success")
        return redirect(url_for("settings.index"))
    return render("settings/profile.html", form=form)


# -- working hours -----------------------------------------------------------------------------


def _as_time(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


@bp.route("/working-hours", methods=["GET", "POST"])
def working_hours() -> Response | str:
    store = get_store()
    saved = users.working_hours(store, g.user.id)
    shown = saved if saved is not None else users.DEFAULT_WORKING_HOURS
    data = {day: {"works": day in shown, "start": _as_time(shown.get(day, ("09:00", "17:00"))[0]),
                  "end": _as_time(shown.get(day, ("09:00", "17:00"))[1])} for day in users.WEEKDAYS}
    form = WorkingHoursForm(data=data)
    if form.validate_on_submit():
        users.set_working_hours(store, g.user.id, form.hours())
        flash("Your working hours were saved.", "success")
        return redirect(url_for("settings.working_hours"))
    return render("settings/working_hours.html", form=form, saved=saved is not None,
                  error="Please correct the days marked below." if form.errors else None)


# -- password ----------------------------------------------------------------------------------


@bp.route("/password", methods=["GET", "POST"])
def password() -> Response | str:
    store = get_store()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        # Guessing the current password from a stolen session is throttled like a log-in.
        throttle, key = web_state().throttle, f"password-change:{g.user.id}"
        wait = throttle.retry_after(key)
        if wait:
            raise TooManyRequests("Too many wrong passwords. Please wait a few minutes and try again.",
                                  retry_after=wait)
        if users.authenticate(store, g.user.username, form.current.data) is None:
            throttle.record_failure(key)
            form.current.errors.append("That is not your current password.")
        else:
            throttle.reset(key)
            # set_password bumps the session version, which ends every other session; this
            # one continues with a fresh cookie carrying the new version.
            login_user(users.set_password(store, g.user.id, form.new.data))
            flash("Your password was changed. Every other session was logged out.", "success")
            return redirect(url_for("settings.password"))
    return render("settings/password.html", form=form)


# -- mail ----------------------------------------------------------------------------------------


def _smtp_form_data() -> dict[str, object]:
    current = global_settings.effective_smtp(get_config(), get_store())
    return {name: getattr(current, name) for name in global_settings.SMTP_FIELDS}


def _test_form() -> TestMailForm:
    return TestMailForm(formdata=None, data={"recipient": users.email(get_store(), g.user.id) or ""})


def _render_mail(smtp_form: SmtpForm | None = None, test_form: TestMailForm | None = None,
                 test_error: str | None = None) -> str:
    config, store = get_config(), get_store()
    if g.user.is_admin:
        smtp_form = smtp_form or SmtpForm(formdata=None, data=_smtp_form_data())
        test_form = test_form or _test_form()
    return render(
        "settings/mail.html",
        smtp=global_settings.effective_smtp(config, store),
        sources=global_settings.smtp_sources(config, store),
        overridden=global_settings.smtp_overridden(store),
        config_file=config.source,
        smtp_form=smtp_form, test_form=test_form, test_error=test_error,
        reset_form=ConfirmForm(formdata=None),
        security_labels=dict(SECURITY_LABELS),
    )


@bp.route("/mail", methods=["GET", "POST"])
def mail() -> Response | str:
    if request.method == "GET":
        return _render_mail()
    if not g.user.is_admin:
        abort(403, "Only an admin can change this.")
    form = SmtpForm()
    if not form.validate_on_submit():
        return _render_mail(smtp_form=form)
    values = {name: getattr(form, name).data for name in global_settings.SMTP_FIELDS}
    values = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    try:
        global_settings.save_smtp(get_config(), get_store(), values, password=form.password.data or None,
                                  clear_password=form.clear_password.data)
    except UsageError as err:  # the form checks the same rules; this is belt and braces
        form.host.errors.append(as_sentence(str(err)))
        return _render_mail(smtp_form=form)
    flash("The mail settings were saved.", "success")
    return redirect(url_for("settings.mail"))


@bp.route("/mail/reset", methods=["POST"])
@admin_required(403)
def reset_mail() -> Response:
    global_settings.reset_smtp(get_store())
    flash("The mail settings saved in homecal were removed; the config file's values apply.", "success")
    return redirect(url_for("settings.mail"))


@bp.route("/mail/test", methods=["POST"])
@admin_required(403)
def test_mail() -> Response | str:
    form = TestMailForm()
    if not form.validate_on_submit():
        return _render_mail(test_form=form)
    config, store = get_config(), get_store()
    smtp = global_settings.effective_smtp(config, store)
    recipient = form.recipient.data.strip()
    try:
        message = mailer.make_test_mail(recipient, sender=smtp.from_address, requested_by=g.user.username,
                                      base_url=global_settings.effective_public_url(config, store))
        mailer.send(smtp, message)
    except mailer.MailError as err:
        return _render_mail(test_form=form, test_error=str(err))
    flash(f"A test mail was sent to {recipient}. Check that inbox (and its spam folder).", "success")
    return redirect(url_for("settings.mail"))


# -- public URL ------------------------------------------------------------------------------------


@bp.route("/public-url", methods=["GET", "POST"])
def public_url() -> Response | str:
    config, store = get_config(), get_store()
    source = global_settings.public_url_source(config, store)
    form = PublicUrlForm(data={"public_url": store.meta_get(global_settings.PUBLIC_URL_KEY) or ""})
    if request.method == "POST":
        if not g.user.is_admin:
            abort(403, "Only an admin can change this.")
        if form.validate_on_submit():
            global_settings.save_public_url(store, form.public_url.data)
            flash("The public URL was saved.", "success")
            return redirect(url_for("settings.public_url"))
    return render("settings/public_url.html", form=form, source=source, config_url=config.server.public_url,
                  effective=global_settings.effective_public_url(config, store))


# -- Google OAuth client ---------------------------------------------------------------------------


def _render_google(form: GoogleClientForm | None = None) -> str:
    from daemon.oauth_loopback import DEFAULT_PORT

    config, store = get_config(), get_store()
    client = global_settings.effective_google_client(config, store)
    if g.user.is_admin and form is None:
        form = GoogleClientForm(formdata=None, data={"client_id": store.meta_get(global_settings.GOOGLE_CLIENT_ID_KEY)
                                                     or ""})
    public = global_settings.effective_public_url(config, store)
    return render("settings/google.html", client=client, form=form, saved=global_settings.google_client_saved(store),
                  reset_form=ConfirmForm(formdata=None), config_file=config.source,
                  web_redirect=public + "/accounts/google/callback",
                  loopback_redirect=f"http://127.0.0.1:{DEFAULT_PORT}/",
                  public_url_source=global_settings.public_url_source(config, store), from_ui=global_settings.FROM_UI)


@bp.route("/google", methods=["GET", "POST"])
def google() -> Response | str:
    if request.method == "GET":
        return _render_google()
    if not g.user.is_admin:
        abort(403, "Only an admin can change this.")
    form = GoogleClientForm()
    if not form.validate_on_submit():
        return _render_google(form)
    try:
        global_settings.save_google_client(get_store(), form.client_id.data, form.client_secret.data or None)
    except UsageError as err:
        form.client_secret.errors = [*form.client_secret.errors, as_sentence(str(err))]
        return _render_google(form)
    flash("The Google OAuth client was saved. New links use it; linked accounts keep the client they were "
          "linked with.", "success")
    return redirect(url_for("settings.google"))


@bp.route("/google/reset", methods=["POST"])
@admin_required(403)
def reset_google() -> Response:
    global_settings.reset_google_client(get_store())
    flash("The Google client saved in homecal was removed; the config file's client (if any) applies to new links.",
          "success")
    return redirect(url_for("settings.google"))


users_admin.register(bp, render=render, admin_required=admin_required)
