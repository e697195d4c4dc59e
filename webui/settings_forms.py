"""The forms of the settings pages. Validation reuses the store's rules (users.validate_*,
settings.check_smtp, settings.validate_public_url), so the web UI accepts exactly what the
store accepts and shows each problem next to its field.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Form, FormField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields import TimeField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional, ValidationError

from daemon.errors import UsageError
from daemon.mail import validate_address
from daemon.store import settings as global_settings
from daemon.store import users
from webui.forms import as_sentence

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice; 3.4 drops them
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None  # type: ignore[assignment,misc]


def choices(pairs: list[tuple[str, str]]) -> list:
    """(value, label) pairs in the form the installed WTForms wants."""
    return [SelectChoice(value, label) for value, label in pairs] if SelectChoice else list(pairs)


SECURITY_LABELS = [
    ("starttls", "STARTTLS (usually port 587)"),
    ("tls", "TLS from the start (usually port 465)"),
    ("none", "None: unencrypted (only for a server on this machine or network)"),
]


def _rule(check: Callable[[str], str], message: str | None = None) -> Callable[[FlaskForm, object], None]:
    """A store validator as a WTForms validator; an empty field is left to Optional/DataRequired."""

    def validator(form: object, field: object) -> None:
        data = getattr(field, "data", "") or ""
        if not data:
            return
        try:
            check(data)
        except UsageError as err:
            raise ValidationError(message or as_sentence(str(err))) from None

    return validator


_ADDRESS_MESSAGE = "Enter an e-mail address like name@example.org."
_NEW_PASSWORD_HINT = f"At least {users.MIN_PASSWORD} characters."


class ProfileForm(FlaskForm):
    email = EmailField(
        "E-mail address",
        validators=[Optional(), Length(max=254), _rule(validate_address, _ADDRESS_MESSAGE)],
        description="Optional. The test mail goes here, and later booking notifications.",
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    timezone = SelectField(
        "Time zone",
        validators=[DataRequired("Choose a time zone."), _rule(users.validate_timezone)],
        description="Calendar views, working hours and booking pages use it.",
        validate_choice=False,  # _rule checks the name; an outdated stored zone stays selectable
    )

    def set_zone_choices(self, current: str) -> None:
        zones = sorted(users.time_zones() | {current})
        self.timezone.choices = choices([(z, z.replace("_", " ")) for z in zones])


class DayForm(Form):
    """One weekday of the working-hours form (a plain Form: the outer form carries the token)."""

    works = BooleanField("Working day")
    start = TimeField("From", validators=[Optional()], format=["%H:%M", "%H:%M:%S"])
    end = TimeField("Until", validators=[Optional()], format=["%H:%M", "%H:%M:%S"])

    def validate(self, extra_validators: object = None) -> bool:
        ok = super().validate(extra_validators)
        if not self.works.data:
            # A day off ignores its times, even unreadable ones; they are shown again as typed.
            self.start.errors, self.end.errors = [], []
            return True
        if not ok:
            return False
        if self.start.data is None:
            self.start.errors.append("Enter when the day starts.")
            ok = False
        if self.end.data is None:
            self.end.errors.append("Enter when the day ends.")
            ok = False
        if ok and self.end.data <= self.start.data:
            self.end.errors.append("The end must be after the start.")
            ok = False
        return ok


class WorkingHoursForm(FlaskForm):
    mon = FormField(DayForm, label="Monday")
    tue = FormField(DayForm, label="Tuesday")
    wed = FormField(DayForm, label="Wednesday")
    thu = FormField(DayForm, label="Thursday")
    fri = FormField(DayForm, label="Friday")
    sat = FormField(DayForm, label="Saturday")
    sun = FormField(DayForm, label="Sunday")

    def days(self) -> list[tuple[str, FormField]]:
        return [(day, getattr(self, day)) for day in users.WEEKDAYS]

    def hours(self) -> dict[str, tuple[str, str]]:
        return {day: (f.start.data.strftime("%H:%M"), f.end.data.strftime("%H:%M"))
                for day, f in self.days() if f.works.data}


class PasswordChangeForm(FlaskForm):
    current = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=users.MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        "New password",
        validators=[DataRequired("Choose a new password."), _rule(users.validate_password)],
        description=_NEW_PASSWORD_HINT,
        render_kw={"autocomplete": "new-password", "minlength": users.MIN_PASSWORD, "maxlength": users.MAX_PASSWORD},
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired("Repeat the new password."), EqualTo("new", "The new passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class SmtpForm(FlaskForm):
    host = StringField(
        "SMTP server", validators=[Length(max=253)],
        description="For example smtp.fastmail.com. Empty switches mail off.",
        render_kw={"spellcheck": "false", "autocapitalize": "none"},
    )
    port = IntegerField(
        "Port", validators=[InputRequired("Enter the port."), NumberRange(1, 65535, "The port must be between 1 and 65535.")],
        render_kw={"inputmode": "numeric"},
    )
    security = SelectField("Security", choices=choices(SECURITY_LABELS))
    username = StringField(
        "User name", validators=[Length(max=254)], description="Empty: send without logging in.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    # Never rendered back (PasswordField hides its value): the page must not carry the secret.
    password = PasswordField(
        "Password", validators=[Length(max=1024)],
        description="Leave empty to keep the saved password.",
        render_kw={"autocomplete": "new-password"},
    )
    clear_password = BooleanField("Remove the password saved in homecal")
    from_address = EmailField(
        "Sender address", validators=[Length(max=254)],
        description="Mails and invites come from this address, e.g. homecal@example.org.",
        render_kw={"spellcheck": "false"},
    )

    def validate(self, extra_validators: object = None) -> bool:
        ok = super().validate(extra_validators)
        if self.port.errors:
            return False
        values = {name: (getattr(self, name).data or "").strip() if name != "port" else self.port.data
                  for name in global_settings.SMTP_FIELDS}
        for name, message in global_settings.check_smtp(values).items():
            getattr(self, name).errors.append(message)
            ok = False
        if self.password.data and self.clear_password.data:
            self.clear_password.errors.append("Either enter a new password or remove it, not both.")
            ok = False
        return ok


class TestMailForm(FlaskForm):
    recipient = EmailField(
        "Send a test mail to",
        validators=[DataRequired("Enter the address the test mail goes to."), Length(max=254),
                    _rule(validate_address, _ADDRESS_MESSAGE)],
        description="It is sent with the saved settings above.",
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )


class PublicUrlForm(FlaskForm):
    public_url = StringField(
        "Public URL",
        validators=[Length(max=global_settings.MAX_URL), _rule(global_settings.validate_public_url)],
        description="Where people reach homecal, e.g. https://cal.example.org. Booking and feed links "
                    "start with it. Empty: use the config file's value.",
        render_kw={"type": "url", "spellcheck": "false", "autocapitalize": "none", "inputmode": "url"},
    )


class GoogleClientForm(FlaskForm):
    client_id = StringField(
        "Client id",
        validators=[DataRequired("Enter the client id."), Length(max=global_settings.MAX_GOOGLE_VALUE),
                    _rule(global_settings.check_google_client_id)],
        description="From Google Cloud, APIs & Services, Credentials; it ends in .apps.googleusercontent.com.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )
    # Never rendered back (PasswordField hides its value): the page must not carry the secret.
    client_secret = PasswordField(
        "Client secret",
        validators=[Length(max=global_settings.MAX_GOOGLE_VALUE), _rule(global_settings.check_google_client_secret)],
        description="Stored sealed and never shown again. Leave empty to keep the saved secret of the same client.",
        render_kw={"autocomplete": "new-password"},
    )


class ConfirmForm(FlaskForm):
    """No fields: a button that posts its CSRF token (reset to config, grant or take rights)."""


class AddUserForm(FlaskForm):
    username = StringField(
        "User name",
        validators=[DataRequired("Choose a user name."), _rule(users.validate_username)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false", "maxlength": 64},
    )
    password = PasswordField(
        "Initial password",
        validators=[DataRequired("Choose an initial password."), _rule(users.validate_password)],
        description=f"{_NEW_PASSWORD_HINT} Tell it to the new user; they can change it under Settings.",
        render_kw={"autocomplete": "new-password", "minlength": users.MIN_PASSWORD},
    )
    is_admin = BooleanField("Admin: may manage users, mail and the public URL")


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired("Choose a new password."), _rule(users.validate_password)],
        description=_NEW_PASSWORD_HINT,
        render_kw={"autocomplete": "new-password", "minlength": users.MIN_PASSWORD},
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired("Repeat the new password."), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class RemoveUserForm(FlaskForm):
    # Not named "confirm": the password form on the same page has a field of that name (and id).
    confirm_remove = BooleanField("Yes, remove this user", validators=[DataRequired("Tick the box to confirm.")])
