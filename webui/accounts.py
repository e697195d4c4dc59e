"""Accounts (/accounts): link CalDAV, ICS and local accounts with their access mode; per-calendar flags.

Google accounts are linked through OAuth in webui.accounts_google (/accounts/google/new) and
Microsoft accounts in webui.accounts_microsoft (/accounts/microsoft/new); this module's chooser
and re-link page send them there.

Endpoint names other areas link to: accounts.index, accounts.relink.

Linking, re-linking and refreshing go through daemon.linking (shared with `homecal account
add`): credentials are tried before anything is stored, so a failed link keeps nothing. Every
account and calendar id in a URL is looked up together with the logged-in user, so another
user's id is a 404, never a page.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from daemon import access, linking
from daemon.errors import HomecalError, UsageError
from daemon.models import AccessMode
from daemon.overview import user_overview
from daemon.store import accounts
from daemon.store import rules as rules_repo
from daemon.store.accounts import Account, Calendar
from webui.accounts_forms import (
    ButtonForm,
    CalDAVForm,
    CalendarForm,
    FeedForm,
    LocalForm,
    RelinkCalDAVForm,
    RelinkFeedForm,
    split_emails,
)
from webui.forms import as_sentence
from webui.state import get_config, get_store

bp = Blueprint("accounts", __name__, url_prefix="/accounts")

#: offered for a calendar that has no colour yet (the first of the calendar view's palette)
DEFAULT_COLOR = "#1F5F8B"


def _account(account_id: int) -> Account:
    """The logged-in user's account `account_id`; NotFound (404) for anyone else's."""
    return accounts.get(get_store(), account_id, g.user.id)


def _linked(account: Account, cals: list[Calendar]) -> Response:
    count = len(cals)
    flash(f"Linked {account.name} with {count} calendar{'' if count == 1 else 's'}."
          + ("" if count else " The server listed none: add a calendar there, then refresh."), "success")
    return redirect(url_for(".index", _anchor=f"account-{account.id}"))


def _link(kind: str, name: str, mode: AccessMode, secret: dict, preset: str | None = None) -> tuple[Response | None, str]:
    """Link, or return the error to show on the re-rendered form."""
    try:
        account, cals = linking.link(get_store(), get_config(), g.user.id, kind, name, mode, secret)
    except UsageError as err:
        return None, as_sentence(str(err))
    except HomecalError as err:
        return None, linking.explain(err, kind, preset)
    return _linked(account, cals), ""


# -- listing -------------------------------------------------------------------------------

@bp.route("/")
def index() -> str:
    store = get_store()
    now = datetime.now(timezone.utc)
    overview = user_overview(store, g.user.id, now, testing_client=get_config().google.testing_client)
    by_account: dict[int, list[Calendar]] = {}
    for cal in accounts.calendars(store, user_id=g.user.id):
        by_account.setdefault(cal.account_id, []).append(cal)
    return render_template("accounts/index.html", accounts=overview.accounts, calendars=by_account,
                           kind_labels=access.KIND_LABELS, mode_label=access.mode_label,
                           button_form=ButtonForm())


@bp.route("/add")
def add() -> str:
    return render_template("accounts/add.html", presets=linking.PRESETS.values(), coming=access.COMING,
                           kind_labels=access.KIND_LABELS,
                           microsoft_configured=bool(get_config().microsoft.client_id))


@bp.route("/access")
def access_modes() -> str:
    kinds = list(access.LINKABLE) + list(access.COMING)
    return render_template("accounts/access.html", kinds=kinds, kind_labels=access.KIND_LABELS,
                           modes={k: access.describe_all(k) for k in kinds}, meanings=access.SCOPE_MEANINGS,
                           coming=access.COMING)


# -- linking ---------------------------------------------------------------------------------

@bp.route("/add/caldav", methods=["GET", "POST"])
def add_caldav() -> str | Response:
    form = CalDAVForm()
    error = ""
    if request.method == "GET":
        # ?preset=icloud from the chooser; the form works without it (and without JavaScript).
        preset = request.args.get("preset", "")
        if preset in linking.PRESETS:
            form.preset.data = preset
            if preset != "other":
                form.name.data = linking.PRESETS[preset].label
    elif form.validate_on_submit():
        preset = form.preset.data
        try:
            url = linking.caldav_url(preset, form.url.data)
        except UsageError as err:
            form.url.errors = [as_sentence(str(err))]
        else:
            username = form.username.data.strip()
            emails = split_emails(form.emails.data) or ([username] if "@" in username else [])
            secret = linking.caldav_secret(url, username, form.password.data, emails)
            done, error = _link("caldav", form.name.data, AccessMode(form.mode.data), secret, preset)
            if done:
                return done
    preset = linking.PRESETS.get(form.preset.data or "other", linking.PRESETS["other"])
    # The hints follow the chosen preset (server-side, so they are right without JavaScript).
    form.url.description, form.username.description = preset.url_hint, preset.username_hint
    form.password.description = preset.password_hint
    return render_template("accounts/caldav.html", form=form, error=error, preset=preset,
                           presets=linking.PRESETS.values(), modes=access.describe_all("caldav"))


@bp.route("/add/feed", methods=["GET", "POST"])
def add_feed() -> str | Response:
    form = FeedForm()
    error = ""
    if form.validate_on_submit():
        try:
            secret = linking.ics_secret(form.url.data)
        except UsageError as err:
            form.url.errors = [as_sentence(str(err))]
        else:
            done, error = _link("ics", form.name.data, AccessMode(form.mode.data), secret)
            if done:
                return done
    return render_template("accounts/feed.html", form=form, error=error, modes=access.describe_all("ics"))


@bp.route("/add/local", methods=["GET", "POST"])
def add_local() -> str | Response:
    form = LocalForm()
    error = ""
    if form.validate_on_submit():
        done, error = _link("local", form.name.data, AccessMode.READ_WRITE, {})
        if done:
            return done
    return render_template("accounts/local.html", form=form, error=error, modes=access.describe_all("local"))


# -- one account -------------------------------------------------------------------------------

@bp.route("/<int:account_id>/relink", methods=["GET", "POST"])
def relink(account_id: int) -> str | Response:
    store = get_store()
    account = _account(account_id)
    if account.kind == "google":
        return redirect(url_for("accounts_google.relink", account_id=account.id))
    if account.kind == "microsoft":
        return redirect(url_for("accounts_microsoft.relink", account_id=account.id))
    if account.kind not in ("caldav", "ics"):
        flash(f"{account.name} is a {access.KIND_LABELS.get(account.kind, account.kind)}: "
              "there is nothing to re-link.", "info")
        return redirect(url_for(".index", _anchor=f"account-{account.id}"))
    form = RelinkCalDAVForm() if account.kind == "caldav" else RelinkFeedForm()
    error = ""
    if request.method == "GET" and account.kind == "caldav":
        # The address and login are shown to their owner; the password never is. (A feed's URL
        # often is its secret, so it is not shown back.)
        secret = accounts.secret(store, account.id)
        form.url.data, form.username.data = secret.get("url", ""), secret.get("username", "")
    if form.validate_on_submit():
        try:
            if account.kind == "caldav":
                old = accounts.secret(store, account.id)
                secret = linking.caldav_secret(linking.caldav_url("other", form.url.data), form.username.data.strip(),
                                               form.password.data, old.get("emails", []))
            else:
                secret = linking.ics_secret(form.url.data)
            cals = linking.relink(store, get_config(), account, secret)
        except UsageError as err:
            form.url.errors = [as_sentence(str(err))]
        except HomecalError as err:
            error = linking.explain(err, account.kind)
        else:
            flash(f"{account.name} is linked again and works: {len(cals)} "
                  f"calendar{'' if len(cals) == 1 else 's'}.", "success")
            return redirect(url_for(".index", _anchor=f"account-{account.id}"))
    return render_template("accounts/relink.html", form=form, error=error, account=account,
                           kind_label=access.KIND_LABELS.get(account.kind, account.kind))


@bp.route("/<int:account_id>/refresh", methods=["POST"])
def refresh(account_id: int) -> Response:
    account = _account(account_id)  # CSRFProtect has already refused a POST without a valid token
    try:
        cals = linking.refresh(get_store(), get_config(), account)
    except HomecalError as err:
        flash(f"Could not refresh {account.name}: {linking.explain(err, account.kind)}", "error")
    else:
        flash(f"{account.name}: {len(cals)} calendar{'' if len(cals) == 1 else 's'}.", "success")
    return redirect(url_for(".index", _anchor=f"account-{account.id}"))


@bp.route("/<int:account_id>/remove", methods=["GET", "POST"])
def remove(account_id: int) -> str | Response:
    store = get_store()
    account = _account(account_id)
    form = ButtonForm()
    error = ""
    if form.validate_on_submit():
        try:
            accounts.remove(store, account.id)  # what `homecal account remove` does
        except UsageError:
            error = "Rules still use this account's calendars: remove them first."
        else:
            flash(f"Removed {account.name}. Nothing was changed on the server.", "success")
            return redirect(url_for(".index"))
    blockers = [rules_repo.get(store, rid) for rid in linking.removal_blockers(store, account.id)]
    cals = accounts.calendars(store, account.id)
    return render_template("accounts/remove.html", account=account, form=form, error=error, blockers=blockers,
                           calendars=cals, kind_label=access.KIND_LABELS.get(account.kind, account.kind))


# -- one calendar -------------------------------------------------------------------------------

def _can_extend(account: Account, cal: Calendar) -> bool:
    """Extended permission only means something where homecal may write at all."""
    return account.mode == AccessMode.READ_WRITE and cal.writable and account.kind not in ("ics",)


@bp.route("/calendars/<int:calendar_id>", methods=["GET", "POST"])
def calendar(calendar_id: int) -> str | Response:
    store = get_store()
    cal = accounts.user_calendar(store, calendar_id, g.user.id)
    account = _account(cal.account_id)
    can_extend = _can_extend(account, cal)
    form = CalendarForm()
    if request.method == "GET":
        form.use_for_conflicts.data = cal.use_for_conflicts
        form.color.data = cal.color or DEFAULT_COLOR
        form.extended_permission.data = cal.extended_permission
    elif form.validate_on_submit():
        extended = bool(form.extended_permission.data) and can_extend
        if extended and not cal.extended_permission and not form.confirm_extended.data:
            form.confirm_extended.errors = ["Tick this box to grant the permission, or leave the permission off."]
        else:
            with store.atomic():
                accounts.set_calendar_flags(store, cal.id, use_for_conflicts=bool(form.use_for_conflicts.data),
                                            extended_permission=extended)
                accounts.set_calendar_color(store, cal.id, form.color.data)
            flash(f"Saved the settings of {cal.name}.", "success")
            return redirect(url_for(".index", _anchor=f"calendar-{cal.id}"))
    return render_template("accounts/calendar.html", form=form, cal=cal, account=account, can_extend=can_extend)
