"""The forms of the accounts area: linking (CalDAV, ICS feed, local), re-linking, calendar settings.

Names are checked with the store's own rule (accounts.NAME_RE), so the web UI and
`homecal account add` accept the same names. Passwords are PasswordFields, which WTForms never
renders back with their value.
"""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, PasswordField, RadioField, SelectChoice, StringField
from wtforms.fields import ColorField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from daemon import access
from daemon.linking import PRESETS
from daemon.models import AccessMode
from daemon.store import accounts

_EMAIL_SPLIT = re.compile(r"[\s,;]+")


class ButtonForm(FlaskForm):
    """Only a CSRF token: behind every button that POSTs without fields (sync now, confirm, refresh)."""


def _account_name(form: FlaskForm, field: Field) -> None:
    if not accounts.NAME_RE.match((field.data or "").strip()):
        raise ValidationError("Use 1 to 64 letters, digits, spaces or . @ + - _ (starting with a letter or digit).")


def _mode_choices(kind: str) -> list[SelectChoice]:
    return [SelectChoice(m.value, access.mode_label(kind, m)) for m in access.modes_for(kind)]


def _preset_choices() -> list[SelectChoice]:
    # The hints ride along as data attributes for static/accounts.js; without it the server
    # renders the chosen preset's hints after a submit.
    return [SelectChoice(p.key, p.label, render_kw={"data-url-hint": p.url_hint, "data-label": p.label,
                                                     "data-username-hint": p.username_hint,
                                                     "data-password-hint": p.password_hint})
            for p in PRESETS.values()]


def split_emails(text: str | None) -> list[str]:
    return [e for e in _EMAIL_SPLIT.split(text or "") if e]


def _emails(form: FlaskForm, field: Field) -> None:
    bad = [e for e in split_emails(field.data) if "@" not in e or len(e) > 254]
    if bad:
        raise ValidationError(f"Not an email address: {', '.join(bad[:3])}.")


def _name_field() -> StringField:
    return StringField("Account name", validators=[DataRequired("Give the account a name."), _account_name],
                       description="A short name for you, e.g. iCloud or Work.",
                       render_kw={"maxlength": 64, "autocomplete": "off"})


class CalDAVForm(FlaskForm):
    preset = RadioField("Provider", choices=_preset_choices(), default="other")
    name = _name_field()
    url = StringField("Server address", validators=[Optional(), Length(max=2000)],
                      render_kw={"inputmode": "url", "autocapitalize": "none", "spellcheck": "false"})
    username = StringField("User name", validators=[DataRequired("Enter the user name."), Length(max=320)],
                           render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    # "new-password": the browser must not fill in the homecal log-in password here.
    password = PasswordField("Password", validators=[DataRequired("Enter the password."), Length(max=1024)],
                             render_kw={"autocomplete": "new-password"})
    mode = RadioField("Access mode", choices=_mode_choices("caldav"), default=AccessMode.READ_WRITE.value)
    emails = StringField("Your email addresses on this account (optional)",
                         validators=[Optional(), Length(max=1000), _emails],
                         description="Comma-separated. They let homecal recognise invitations you declined. "
                                     "Left empty, the user name is used when it is an email address.",
                         render_kw={"autocapitalize": "none", "spellcheck": "false"})


class FeedForm(FlaskForm):
    name = _name_field()
    url = StringField("Feed URL", validators=[DataRequired("Enter the feed's URL."), Length(max=2000)],
                      description="The address of a published calendar, starting with https:// or webcal://.",
                      render_kw={"inputmode": "url", "autocapitalize": "none", "spellcheck": "false"})
    mode = RadioField("Access mode", choices=_mode_choices("ics"), default=AccessMode.READ_WRITE.value)


class LocalForm(FlaskForm):
    name = _name_field()


class RelinkCalDAVForm(FlaskForm):
    url = StringField("Server address", validators=[DataRequired("Enter the server's address."), Length(max=2000)],
                      render_kw={"inputmode": "url", "autocapitalize": "none", "spellcheck": "false"})
    username = StringField("User name", validators=[DataRequired("Enter the user name."), Length(max=320)],
                           render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    password = PasswordField("New password", validators=[DataRequired("Enter the password."), Length(max=1024)],
                             description="It is tried before it replaces the old one.",
                             render_kw={"autocomplete": "new-password"})


class RelinkFeedForm(FlaskForm):
    url = StringField("Feed URL", validators=[DataRequired("Enter the feed's URL."), Length(max=2000)],
                      description="The feed's current address. It is tried before it replaces the old one.",
                      render_kw={"inputmode": "url", "autocapitalize": "none", "spellcheck": "false"})


class CalendarForm(FlaskForm):
    use_for_conflicts = BooleanField("Use for conflicts",
                                     description="Events here make you busy for booking links.")
    color = ColorField("Colour", validators=[DataRequired("Choose a colour.")],
                       description="How this calendar's events look in the calendar view.")
    extended_permission = BooleanField("Let homecal edit and delete events it did not create",
                                       render_kw={"aria-describedby": "extended-warning"})
    confirm_extended = BooleanField("I understand: homecal may change or delete my own events in this calendar")

    def validate_color(self, field: Field) -> None:
        if not accounts.COLOR_RE.match((field.data or "").strip()):
            raise ValidationError("Choose a colour as #RRGGBB, e.g. #1F5F8B.")
