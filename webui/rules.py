"""Sync rules (/rules): create and edit with every option, dry-run preview, confirm deletions, sync now.

Endpoint names other areas link to: rules.index, rules.detail, rules.confirm_deletions (POST),
rules.sync_now (POST). Every rule id in a URL is looked up with the current user's id, so
another user's rule is a 404, and the calendar choices are only the user's own.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from daemon.errors import HomecalError, NotFound, UsageError
from daemon.store import rules as rules_repo
from daemon.store.rules import Rule
from daemon.sync import preview as previews
from daemon.sync.cleanup import remove_rule
from daemon.sync.cycle import run_sync
from webui.forms import as_sentence
from webui.rules_forms import (
    ConfirmDeletionsForm,
    NewRuleForm,
    RemoveRuleForm,
    RuleOptionsForm,
    SyncNowForm,
    load_calendars,
)
from webui.rules_text import (
    STATE_WORDS,
    Calendars,
    counts_words,
    has_own_name,
    last_error_words,
    options_words,
    report_summary,
    rule_label,
    source_came_back_empty,
    style_words,
)
from webui.security import safe_next
from webui.state import get_config, get_store

bp = Blueprint("rules", __name__, url_prefix="/rules")


def _own_rule(rule_id: int) -> Rule:
    """The current user's rule, or 404: someone else's rule looks exactly like a missing one."""
    try:
        return rules_repo.get(get_store(), rule_id, user_id=g.user.id)
    except NotFound:
        abort(404, "There is no rule at this address.")


def _tz():
    return previews.zone(g.user.timezone)


def _calendars() -> Calendars:
    return load_calendars(get_store(), g.user.id)


def _summary(rule: Rule, cals: Calendars) -> dict:
    """What the list and the detail page show about a rule."""
    counts = {k: v for k, v in rule.last_counts.items() if k != "signature"}
    return {
        "rule": rule, "label": rule_label(rule, cals), "own_name": has_own_name(rule),
        "sources": [cals.label(s) for s in rule.source_ids], "target": cals.label(rule.target_calendar_id),
        "style": style_words(rule.options), "state": STATE_WORDS.get(rule.state, rule.state),
        "last_run": previews.format_stamp(rule.last_run_at, _tz()),
        "last_success": previews.format_stamp(rule.last_success_at, _tz()),
        "next_run": previews.format_stamp(rule.next_run_at, _tz()) if rule.state != "paused-deletions" else "",
        "counts": counts_words(counts, empty="nothing changed") if rule.last_run_at else "",
        "last_error": last_error_words(rule, cals), "emptied": source_came_back_empty(rule),
    }


@bp.route("/")
def index() -> str:
    cals = _calendars()
    rules = [_summary(r, cals) for r in rules_repo.all_rules(get_store(), g.user.id)]
    return render_template("rules/index.html", rules=rules, sync_form=SyncNowForm(formdata=None),
                           has_calendars=bool(cals.labels))


@bp.route("/<int:rule_id>")
def detail(rule_id: int) -> str:
    rule = _own_rule(rule_id)
    cals = _calendars()
    pending = previews.pending_deletions(get_store(), rule, _tz()) if rule.state == "paused-deletions" else []
    here = url_for("rules.detail", rule_id=rule.id)
    return render_template(
        "rules/detail.html", r=_summary(rule, cals), options=options_words(rule.options), pending=pending,
        confirm_form=ConfirmDeletionsForm(formdata=None, data={"next": here}),
        sync_form=SyncNowForm(formdata=None, data={"next": here, "rule_id": rule.id}))


def _run_preview(rule: Rule, cals: Calendars) -> tuple[previews.Preview | None, str]:
    try:
        return previews.run_preview(get_store(), get_config(), rule, _tz(), cals.labels), ""
    except previews.SyncBusy as err:
        return None, as_sentence(str(err))


def _form_page(form: RuleOptionsForm, cals: Calendars, *, rule: Rule | None, preview=None, error: str = "") -> str:
    target = form.target.data if isinstance(form, NewRuleForm) else rule.target_calendar_id  # type: ignore[union-attr]
    window = previews.rule_window(get_config())
    return render_template(
        "rules/form.html", form=form, rule=rule, r=_summary(rule, cals) if rule else None, cals=cals,
        preview=preview, error=error, target_label=cals.label(target) if target else "",
        window_start=window.start.astimezone(_tz()), window_end=window.end.astimezone(_tz()))


@bp.route("/new", methods=["GET", "POST"])
def new() -> str | Response | tuple[str, int]:
    cals = _calendars()
    form = NewRuleForm()
    form.set_choices(cals)
    if not form.is_submitted() or not form.validate():
        page = _form_page(form, cals, rule=None)
        return (page, 400) if form.is_submitted() else page
    if request.form.get("action") != "save":
        rule = previews.draft_rule(g.user.id, form.source_ids(), form.target.data, form.options)
        preview, error = _run_preview(rule, cals)
        return _form_page(form, cals, rule=None, preview=preview, error=error)
    try:
        rule = rules_repo.add(get_store(), g.user.id, form.source_ids(), form.target.data, form.options,
                              (form.name.data or "").strip())
    except UsageError as err:
        return _form_page(form, cals, rule=None, error=as_sentence(str(err))), 400
    flash(f"Rule saved: {rule_label(rule, cals)}. It runs with the next sync, or press “Sync now”.", "success")
    return redirect(url_for("rules.detail", rule_id=rule.id))


@bp.route("/<int:rule_id>/edit", methods=["GET", "POST"])
def edit(rule_id: int) -> str | Response | tuple[str, int]:
    rule = _own_rule(rule_id)
    cals = _calendars()
    if request.method == "GET":
        form = RuleOptionsForm(data=RuleOptionsForm.data_from(rule.options, rule.name if has_own_name(rule) else ""))
        return _form_page(form, cals, rule=rule)
    form = RuleOptionsForm()
    if not form.validate():
        return _form_page(form, cals, rule=rule), 400
    if request.form.get("action") != "save":
        draft = previews.draft_rule(g.user.id, list(rule.source_ids), rule.target_calendar_id, form.options,
                                    saved=rule)
        preview, error = _run_preview(draft, cals)
        return _form_page(form, cals, rule=rule, preview=preview, error=error)
    store = get_store()
    with store.atomic():
        rules_repo.update_options(store, rule.id, form.options)
        rules_repo.rename(store, rule.id, (form.name.data or "").strip())
    rule = rules_repo.get(store, rule.id)
    flash(f"Rule updated: {rule_label(rule, cals)}. The next sync applies the new options.", "success")
    return redirect(url_for("rules.detail", rule_id=rule.id))


@bp.route("/<int:rule_id>/remove", methods=["GET", "POST"])
def remove(rule_id: int) -> str | Response:
    rule = _own_rule(rule_id)
    cals = _calendars()
    form = RemoveRuleForm()
    copies = sum(1 for m in rules_repo.mappings(get_store(), rule.id) if m.state != "tombstone")
    if not form.validate_on_submit():
        return render_template("rules/remove.html", form=form, r=_summary(rule, cals), copies=copies)
    delete_events = form.copies.data == "delete"
    try:
        with previews.exclusive_sync():
            deleted = remove_rule(get_store(), get_config(), rule.id, delete_events=delete_events)
    except HomecalError as err:
        flash(f"The rule was not removed: {err}", "error")
        return redirect(url_for("rules.detail", rule_id=rule.id))
    label = rule_label(rule, cals)
    if delete_events:
        flash(f"Rule removed: {label}. {deleted} cop{'y' if deleted == 1 else 'ies'} deleted from "
              f"{cals.label(rule.target_calendar_id)}.", "success")
    else:
        flash(f"Rule removed: {label}. Its copies were left in {cals.label(rule.target_calendar_id)}.", "success")
    return redirect(url_for("rules.index"))


@bp.route("/<int:rule_id>/confirm-deletions", methods=["POST"])
def confirm_deletions(rule_id: int) -> Response:
    rule = _own_rule(rule_id)
    form = ConfirmDeletionsForm()
    back = safe_next(form.next.data) or url_for("rules.detail", rule_id=rule.id)
    if not form.validate():
        abort(400)
    try:
        rules_repo.confirm_deletions(get_store(), rule.id)
    except UsageError:
        flash("This rule is not waiting for a confirmation.", "info")
        return redirect(back)
    flash(f"Deletions confirmed for {rule_label(rule, _calendars())}: the next sync deletes them "
          "(or press “Sync now”).", "success")
    return redirect(back)


@bp.route("/sync", methods=["POST"])
def sync_now() -> Response:
    form = SyncNowForm()
    back = safe_next(form.next.data) or url_for("rules.index")
    if not form.validate():
        abort(400)
    store = get_store()
    if form.rule_id.data:
        try:
            wanted = [_own_rule(int(form.rule_id.data))]
        except ValueError:
            abort(404)
    else:
        wanted = rules_repo.all_rules(store, g.user.id)
    if not wanted:
        # Still worth pressing: the calendars are read again for the calendar view.
        run_sync(store, get_config(), [], refresh=True, refresh_user=g.user.id)
        flash("Calendars refreshed. You have no rules to sync yet.", "info")
        return redirect(back)
    cals = _calendars()
    by_id = {r.id: r for r in wanted}
    for report in run_sync(store, get_config(), list(by_id), refresh=True, refresh_user=g.user.id):
        category, text = report_summary(report, rule_label(by_id[report.rule_id], cals), cals)
        flash(text, category)
    return redirect(back)
