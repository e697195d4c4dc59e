"""The forms of the rules area: a rule's options (every option of `RuleOptions`), its calendars,
removal, confirmation and "Sync now".

Validation has two layers: the form's own checks (calendars chosen, times written as
times) and `RuleOptions.from_dict`, the one place rule options are validated for the CLI
too. Its problems are routed back to the field they are about, so each message shows next
to what the user typed.
"""

from __future__ import annotations

import re
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from daemon.errors import UsageError
from daemon.models import AccessMode
from daemon.store import accounts as accounts_repo
from daemon.store.db import Store
from daemon.sync.options import TEMPLATE_FIELDS, RuleOptions
from webui.forms import as_sentence
from webui.rules_text import Calendars

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def load_calendars(store: Store, user_id: int) -> Calendars:
    """The current user's calendars, as the form offers them (nobody else's, ever)."""
    accounts = {a.id: a for a in accounts_repo.all_accounts(store, user_id)}
    labels: dict[int, str] = {}
    names: dict[int, str] = {}
    writable: list[int] = []
    for cal in accounts_repo.calendars(store, user_id=user_id):
        account = accounts[cal.account_id]
        labels[cal.id] = f"{account.name} / {cal.name}"
        names[cal.id] = cal.name
        if cal.writable and account.mode == AccessMode.READ_WRITE:
            writable.append(cal.id)
    return Calendars(labels, names, writable)


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (easier than a multi-select, with a keyboard and on a phone)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _choices(pairs) -> list[SelectChoice]:  # noqa: ANN001 - (value, label) pairs
    return [SelectChoice(value, label) for value, label in pairs]


def _optional_int(value: object) -> int | None:
    return None if value in ("", None) else int(value)  # type: ignore[arg-type]


class RuleOptionsForm(FlaskForm):
    """What can change on a saved rule: its label and every option."""

    name = StringField("Name", validators=[Optional(), Length(max=80, message="Keep the name under 80 characters.")],
                       description="Optional. Lists show it instead of the calendars' names.")
    style = RadioField("Style", choices=_choices([
        ("busy", "Busy block: only the time, titled “Busy”, no details"),
        ("clone", "Clone: a copy with the title (and description and location if chosen below)"),
    ]), default="busy")
    skip_declined = BooleanField("Leave out events I declined", default=True)
    skip_free = BooleanField("Leave out events shown as free", default=True,
                             description="Events marked “free” or “transparent” do not block time.")
    tentative = SelectField("Tentative events", choices=_choices([
        ("busy", "Count them as busy"), ("skip", "Leave them out")]), default="busy")
    all_day = SelectField("All-day events", choices=_choices([
        ("busy-only", "Only those shown as busy"), ("skip", "Leave them out"), ("all", "All of them")]),
        default="busy-only")
    working_hours = BooleanField("Only events during working hours",
                                 description="Events that do not overlap these hours are left out.")
    wh_days = MultiCheckboxField("Working days", choices=_choices(enumerate(DAY_NAMES)), coerce=int,
                                 default=[0, 1, 2, 3, 4], invalid_choice_message="Choose days of the week.")
    wh_start = StringField("Working hours start", default="09:00", render_kw={"type": "time"},
                           description="In your time zone, like 09:00.")
    wh_end = StringField("Working hours end", default="17:00", render_kw={"type": "time"},
                         description="Like 17:00.")
    title_include = StringField("Only titles matching", render_kw={"spellcheck": "false"},
                                description="A regular expression, case-insensitive. Empty: every title.")
    title_exclude = StringField("Leave out titles matching", render_kw={"spellcheck": "false"},
                                description="A regular expression, case-insensitive, e.g. ^private|dentist")
    title_template = StringField(
        "Title of the copies", render_kw={"spellcheck": "false"},
        description="Empty: “Busy” for busy blocks, the original title for clones. "
                    + " and ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
                    + " are filled in, e.g. “{calendar}: {title}”.")
    copy_description = BooleanField("Copy the description", default=True, description="Clones only.")
    copy_location = BooleanField("Copy the location", default=True, description="Clones only.")
    private = BooleanField("Mark the copies private", default=True,
                           description="People you share the target calendar with see only “busy”.")

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001 - WTForms' signature
        ok = super().validate(extra_validators)
        if self.working_hours.data:
            ok = self._check_working_hours() and ok
        if ok:
            try:
                self.options = RuleOptions.from_dict(self.raw_options())
            except UsageError as err:
                self._route_problems(str(err))
                ok = False
        return ok

    def _check_working_hours(self) -> bool:
        ok = True
        if not self.wh_days.data:
            self.wh_days.errors.append("Choose at least one working day.")
            ok = False
        for f in (self.wh_start, self.wh_end):
            if not _TIME_RE.match((f.data or "").strip()):
                f.errors.append("Enter a time like 09:00.")
                ok = False
        return ok

    def raw_options(self) -> dict:
        """The options as `RuleOptions.from_dict` takes them (the CLI builds the same dict)."""
        raw: dict = {
            "style": self.style.data, "skip_declined": bool(self.skip_declined.data),
            "skip_free": bool(self.skip_free.data), "tentative": self.tentative.data, "all_day": self.all_day.data,
            "title_include": (self.title_include.data or "").strip(),
            "title_exclude": (self.title_exclude.data or "").strip(),
            "title_template": (self.title_template.data or "").strip(),
            "copy_description": bool(self.copy_description.data), "copy_location": bool(self.copy_location.data),
            "private": bool(self.private.data),
        }
        if self.working_hours.data:
            raw["working_hours"] = {"days": sorted(set(self.wh_days.data or [])),
                                    "start": (self.wh_start.data or "").strip().zfill(5),
                                    "end": (self.wh_end.data or "").strip().zfill(5)}
        return raw

    #: (what a RuleOptions problem starts with, the field it is about, how to call that field)
    _PROBLEM_FIELDS = (
        ("title_include", "title_include", "the pattern"),
        ("title_exclude", "title_exclude", "the pattern"),
        ("title_template", "title_template", "the title"),
        ("working hours must end", "wh_end", ""),
        ("working-hours days", "wh_days", ""),
        ("working hours", "wh_start", ""),
        ("style", "style", "the style"),
        ("tentative", "tentative", "the choice"),
        ("all_day", "all_day", "the choice"),
    )

    def _route_problems(self, message: str) -> None:
        """Put each of `RuleOptions.from_dict`'s problems next to its field."""
        for problem in (p.strip() for p in message.split("; ") if p.strip()):
            for prefix, name, subject in self._PROBLEM_FIELDS:
                if problem.startswith(prefix):
                    text = f"{subject} {problem[len(prefix):].strip()}" if subject else problem
                    getattr(self, name).errors.append(as_sentence(text))
                    break
            else:
                self.form_errors.append(as_sentence(problem))

    @classmethod
    def data_from(cls, options: RuleOptions, name: str = "") -> dict:
        """A saved rule's options as form data (to fill the edit form)."""
        wh = options.working_hours
        return {
            "name": name, "style": str(options.style), "skip_declined": options.skip_declined,
            "skip_free": options.skip_free, "tentative": options.tentative, "all_day": options.all_day,
            "working_hours": wh is not None, "wh_days": list(wh.days) if wh else [0, 1, 2, 3, 4],
            "wh_start": wh.start if wh else "09:00", "wh_end": wh.end if wh else "17:00",
            "title_include": options.title_include, "title_exclude": options.title_exclude,
            "title_template": options.title_template, "copy_description": options.copy_description,
            "copy_location": options.copy_location, "private": options.private,
        }


class NewRuleForm(RuleOptionsForm):
    """A new rule also chooses its calendars (fixed afterwards: see rules.edit)."""

    sources = MultiCheckboxField("From", coerce=int,
                                 invalid_choice_message="Choose among your own calendars.",
                                 description="The calendars whose events are copied. Choose one or more.")
    target = SelectField("Into", coerce=_optional_int,
                         invalid_choice_message="Choose one of your calendars that homecal can write to.",
                         description="Only writable calendars of read-write accounts are offered.")

    def set_choices(self, cals: Calendars) -> None:
        self.sources.choices = _choices(cals.labels.items())
        self.target.choices = _choices([("", "Choose a calendar…")] + [(cid, cals.labels[cid]) for cid in cals.writable])

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001 - WTForms' signature
        ok = super().validate(extra_validators)
        sources = self.sources.data or []
        if not sources and not self.sources.errors:
            self.sources.errors.append("Choose at least one calendar to copy from.")
            ok = False
        if self.target.data is None and not self.target.errors:
            self.target.errors.append("Choose the calendar the events go into.")
            ok = False
        elif self.target.data in sources:
            self.target.errors.append("A calendar cannot sync into itself: choose another calendar here, "
                                      "or untick it under “From”.")
            ok = False
        return ok

    def source_ids(self) -> list[int]:
        return list(dict.fromkeys(self.sources.data or []))  # order kept, duplicates dropped


class RemoveRuleForm(FlaskForm):
    copies = RadioField("Its copies", choices=_choices([
        ("delete", "Delete the copies it made from the target calendar"),
        ("keep", "Leave the copies where they are"),
    ]), default="delete")


class ConfirmDeletionsForm(FlaskForm):
    next = HiddenField()


class SyncNowForm(FlaskForm):
    """Runs the user's rules now; `rule_id` narrows it to one of them."""

    next = HiddenField()
    rule_id = HiddenField()
