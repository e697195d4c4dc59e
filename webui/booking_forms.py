"""What the public booking pages accept from visitors: the booking form, the URL and query
parameters (slot start, duration, time zone, week), the abuse guards (honeypot, rate limits),
and how times are written for people.

Everything that comes from a visitor is parsed here into a value or a plain message; the
views in webui/booking_public.py never see raw input. Nothing here raises on bad input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from daemon.booking.availability import Slot
from daemon.booking.service import MAX_ANSWER, MAX_NAME
from daemon.errors import UsageError
from daemon.mail import MAX_ADDRESS, validate_address
from daemon.store import users
from daemon.store.booking_links import BookingLink
from webui.throttle import LoginThrottle

UTC = timezone.utc
#: the slot start in URLs: UTC, minute precision, e.g. 20261123T0900Z
START_FORMAT = "%Y%m%dT%H%MZ"
_START_RE = re.compile(r"^\d{8}T\d{4}Z$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: link keys (slugs, private secrets) and booking tokens: URL-safe base64 alphabet only
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,200}$")
#: the largest booking form body we read: ten long answers, percent-encoded, fit with room
MAX_FORM_BYTES = 256 * 1024
#: bookings (attempts that reach the service) per client address / per visitor e-mail
ADDRESS_LIMIT, EMAIL_LIMIT, LIMIT_WINDOW_SECONDS = 10, 5, 10 * 60
QUESTION_PREFIX = "q_"


# -- URL and query parameters --------------------------------------------------------------

def valid_key(key: str) -> bool:
    return bool(_KEY_RE.match(key or ""))


def valid_token(token: str) -> bool:
    return bool(_TOKEN_RE.match(token or ""))


def parse_start(text: str) -> datetime | None:
    """The aware UTC start named by a URL segment like 20261123T0900Z, or None."""
    if not _START_RE.match(text or ""):
        return None
    try:
        return datetime.strptime(text, START_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # 20261399T2599Z and friends
        return None


def format_start(value: datetime) -> str:
    return value.astimezone(UTC).strftime(START_FORMAT)


def parse_day(text: str | None) -> date | None:
    """A `from` parameter (2026-11-23) as a date, or None."""
    if not text or not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@cache
def zone_names() -> tuple[str, ...]:
    """Every zone a visitor may pick, sorted (the <select> and the check use the same list)."""
    return tuple(sorted(users.time_zones()))


@dataclass(frozen=True)
class Choice:
    """What the visitor chose through the query string, after checking it."""

    duration: int
    zone: ZoneInfo
    zone_name: str
    #: the visitor named a zone (else it is the default and the page script may replace it)
    zone_given: bool
    notices: tuple[str, ...] = ()
    #: a duration was asked for that the link does not offer (the default is used instead)
    bad_duration: bool = False

    def query(self, **extra: object) -> dict[str, object]:
        """Query parameters that keep this choice in a link."""
        return {"duration": self.duration, "tz": self.zone_name, **extra}


def choose(link: BookingLink, args: Mapping[str, str], *, default_zone: str,
           fixed_duration: int | None = None) -> Choice:
    """The duration and zone from `args`; anything unusable falls back to the default with a
    notice that says so (a stale or hand-edited link still shows a working page)."""
    notices: list[str] = []
    bad_duration = False
    durations = link.settings.durations
    duration = fixed_duration if fixed_duration is not None else durations[0]
    raw = (args.get("duration") or "").strip()
    if fixed_duration is None and raw:
        if raw.isascii() and raw.isdigit() and len(raw) <= 4 and int(raw) in durations:
            duration = int(raw)
        else:
            bad_duration = True
            offered = ", ".join(f"{d}" for d in durations)
            notices.append(f"That meeting length is not offered; choose {offered} minutes. "
                           f"Showing {duration} minutes.")
    raw_zone = (args.get("tz") or "").strip()
    zone_name = default_zone
    if raw_zone:
        if raw_zone in users.time_zones():
            zone_name = raw_zone
        else:
            notices.append(f"That time zone is not known here. Times are shown in {default_zone}.")
    return Choice(duration, ZoneInfo(zone_name), zone_name, bool(raw_zone) and zone_name == raw_zone,
                  tuple(notices), bad_duration)


# -- how times read ------------------------------------------------------------------------

def day_label(day: date, *, year: bool = False) -> str:
    text = f"{day:%A} {day.day} {day:%B}"
    return f"{text} {day.year}" if year else text


def week_label(first: date) -> str:
    """"22 – 28 November 2026", "29 November – 5 December 2026": short enough for a phone."""
    last = first + timedelta(days=6)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day} – {last.day} {last:%B %Y}"
    start = f"{first.day} {first:%B}" + (f" {first.year}" if first.year != last.year else "")
    return f"{start} – {last.day} {last:%B %Y}"


def clock(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%H:%M")


@dataclass(frozen=True)
class When:
    """A span of time as one zone's clock shows it."""

    zone_name: str
    day: str
    start: str
    end: str
    #: the end falls on another day than the start in this zone
    end_day: str | None = None

    @property
    def text(self) -> str:
        end = f"{self.end_day}, {self.end}" if self.end_day else self.end
        return f"{self.day}, {self.start} – {end}"


def when(start: datetime, end: datetime, zone_name: str) -> When:
    tz = ZoneInfo(zone_name)
    first, last = start.astimezone(tz), end.astimezone(tz)
    end_day = day_label(last.date(), year=True) if last.date() != first.date() else None
    return When(zone_name, day_label(first.date(), year=True), clock(start, tz), clock(end, tz), end_day)


@dataclass
class Day:
    """One day of slots on the slots page, in the visitor's zone."""

    day: date
    label: str
    slots: list[tuple[Slot, str]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"day-{self.day.isoformat()}"


def by_day(slots: Iterable[Slot], tz: tzinfo) -> list[Day]:
    """Slots grouped by the visitor's calendar day, in order; labels are the visitor's clock."""
    days: list[Day] = []
    for slot in slots:
        local = slot.start.astimezone(tz)
        if not days or days[-1].day != local.date():
            days.append(Day(local.date(), day_label(local.date())))
        days[-1].slots.append((slot, local.strftime("%H:%M")))
    return days


def week_bounds(first_day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC [start, end) of the seven visitor days from `first_day`."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(first_day + timedelta(days=7), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


# -- the booking form ----------------------------------------------------------------------

_LINE_BREAKERS = frozenset("\u2028\u2029\x85")


def _bad_chars(text: str, *, multiline: bool) -> bool:
    """Control characters: never in a one-line field, only tab and line ends in a long one."""
    allowed = "\t\r\n" if multiline else ""
    return any((ord(c) < 32 and c not in allowed) or 127 <= ord(c) < 160
               or (not multiline and c in _LINE_BREAKERS) for c in text)


def _plain_text(*, multiline: bool) -> Callable[[FlaskForm, Field], None]:
    def validator(form: FlaskForm, field: Field) -> None:
        if field.data and _bad_chars(field.data, multiline=multiline):
            raise ValidationError("Remove the control characters from this field.")

    return validator


def _email_rule(form: FlaskForm, field: Field) -> None:
    try:
        field.data = validate_address(field.data or "")
    except UsageError:
        raise ValidationError("Enter an e-mail address like name@example.org.") from None


class BaseBookingForm(FlaskForm):
    """Name, e-mail, the honeypot and the choices carried from the slots page. The link's own
    questions are added per link by `booking_form`."""

    name = StringField(
        "Your name",
        validators=[DataRequired("Enter your name."),
                    Length(max=MAX_NAME, message=f"Use at most {MAX_NAME} characters."),
                    _plain_text(multiline=False)],
        render_kw={"autocomplete": "name", "maxlength": MAX_NAME},
    )
    email = EmailField(
        "Your e-mail address",
        validators=[DataRequired("Enter your e-mail address."),
                    Length(max=MAX_ADDRESS, message=f"Use at most {MAX_ADDRESS} characters."),
                    _email_rule],
        render_kw={"autocomplete": "email", "maxlength": MAX_ADDRESS, "spellcheck": "false"},
        description="The confirmation and the links to change or cancel go here.",
    )
    # The honeypot: hidden by CSS, so people leave it empty and form-filling robots do not.
    website = StringField("Leave this field empty", render_kw={"autocomplete": "off", "tabindex": "-1"})
    duration = HiddenField()
    tz = HiddenField()
    submit = SubmitField("Confirm booking")


def question_field_name(question_id: str) -> str:
    return QUESTION_PREFIX + question_id


def booking_form(link: BookingLink, **kwargs: object) -> BaseBookingForm:
    """The form for `link`: the base fields plus one field per question of the link."""

    class LinkBookingForm(BaseBookingForm):
        pass

    for question in link.settings.questions:
        long = question.kind == "textarea"
        validators: list = [DataRequired("Please answer this question.")] if question.required else [Optional()]
        validators += [Length(max=MAX_ANSWER, message=f"Use at most {MAX_ANSWER} characters."),
                       _plain_text(multiline=long)]
        kind = TextAreaField if long else StringField
        setattr(LinkBookingForm, question_field_name(question.id), kind(
            question.label, validators=validators, description="" if question.required else "Optional.",
            render_kw={"maxlength": MAX_ANSWER, **({"rows": 4} if long else {})}))
    return LinkBookingForm(**kwargs)


def question_fields(form: BaseBookingForm, link: BookingLink) -> list[Field]:
    return [form[question_field_name(q.id)] for q in link.settings.questions]


def answers(form: BaseBookingForm, link: BookingLink) -> dict[str, str]:
    return {q.id: (form[question_field_name(q.id)].data or "").strip() for q in link.settings.questions}


def show_problems(form: BaseBookingForm, problems: Mapping[str, str]) -> list[str]:
    """Put the service's VisitorError problems next to their fields; the rest (e.g. the time
    zone, which has no visible field) come back as form-level messages."""
    unplaced: list[str] = []
    for key, message in problems.items():
        name = key if key in ("name", "email") else question_field_name(key)
        text = message.strip()
        text = (text[:1].upper() + text[1:]) if text else "Please check this field."
        if not text.endswith((".", "!", "?")):
            text += "."
        if name in form._fields and name not in ("website", "duration", "tz"):
            form[name].errors = [*form[name].errors, text]
        else:
            unplaced.append(text)
    return unplaced


class ActionForm(FlaskForm):
    """No fields: the cancel and move buttons post only their CSRF token."""


# -- rate limits ---------------------------------------------------------------------------

class BookingLimits:
    """Booking attempts per client address and per visitor e-mail, in memory (see
    webui/throttle.py for why memory is enough). E-mails are kept only as hashes."""

    _KEY = "homecal_booking_limits"

    def __init__(self) -> None:
        self.by_address = LoginThrottle(ADDRESS_LIMIT, LIMIT_WINDOW_SECONDS)
        self.by_email = LoginThrottle(EMAIL_LIMIT, LIMIT_WINDOW_SECONDS)

    @classmethod
    def of_app(cls) -> BookingLimits:
        """The limits of the running app (each test app gets its own)."""
        limits = current_app.extensions.get(cls._KEY)
        if limits is None:
            limits = current_app.extensions.setdefault(cls._KEY, cls())
        return limits

    @staticmethod
    def _email_key(email: str | None) -> str | None:
        if not email:
            return None
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()

    def retry_after(self, address: str, email: str | None = None) -> int:
        """Seconds until another booking attempt is allowed; 0 when it is allowed now."""
        wait = self.by_address.retry_after(address)
        email_key = self._email_key(email)
        if email_key:
            wait = max(wait, self.by_email.retry_after(email_key))
        return wait

    def record(self, address: str, email: str | None = None) -> None:
        self.by_address.record_failure(address)
        email_key = self._email_key(email)
        if email_key:
            self.by_email.record_failure(email_key)
