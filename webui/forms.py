"""The WTForms classes behind every form of the shell; each carries a CSRF token.

Validation reuses the store's own rules (users.validate_username / validate_password), so the
web UI and `homecal init` accept exactly the same names and passwords.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from daemon.errors import UsageError
from daemon.store import users


def as_sentence(message: str) -> str:
    """The store's messages are written for the CLI ("password must ..."); make them sentences."""
    message = message.strip()
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def _store_rule(check: Callable[[str], str]) -> Callable[[FlaskForm, Field], None]:
    """Turn a users.validate_* function into a WTForms validator."""

    def validator(form: FlaskForm, field: Field) -> None:
        try:
            check(field.data or "")
        except UsageError as err:
            raise ValidationError(as_sentence(str(err))) from None

    return validator


class LoginForm(FlaskForm):
    username = StringField(
        "User name",
        validators=[DataRequired("Enter your user name."), Length(max=64)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=users.MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Log in")


class SetupForm(FlaskForm):
    username = StringField(
        "User name",
        validators=[DataRequired("Choose a user name."), _store_rule(users.validate_username)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false",
                   "maxlength": 64},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Choose a password."), _store_rule(users.validate_password)],
        render_kw={"autocomplete": "new-password", "minlength": users.MIN_PASSWORD,
                   "maxlength": users.MAX_PASSWORD},
        description=f"At least {users.MIN_PASSWORD} characters.",
    )
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired("Repeat the password."), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Create admin account")


class LogoutForm(FlaskForm):
    """No fields of its own: it exists so the log-out button in the nav posts a CSRF token."""
