"""The forms of the booking-links area: a link's settings (every field of `LinkSettings`), and
the small button forms (enable, new secret URL, remove, cancel a booking, retry a mail).

Validation has two layers, as in the rules area: the form turns what was typed into plain
data (hours like "09:00-12:00, 13:00-17:00", one override per line, lists of lengths) and
`link_settings.from_dict`, the one place link settings are validated, checks it. Each of its
problems is shown next to the field it is about, and the form keeps what the user typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_wtf import FlaskForm
from wtforms import (BooleanField, FieldList, Form, FormField, HiddenField, RadioField, SelectChoice, SelectField,
                     SelectMultipleField, StringField, TextAreaField)
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from daemon.booking import link_settings as ls
from daemon.booking.delivery import SCHEDULING_KINDS
from daemon.booking.link_settings import LinkSettings, LinkSettingsError
from daemon.models import AccessMode
from daemon.store import accounts as accounts_repo
from daemon.store import users
from daemon.store.db import Store
from webui.forms import as_sentence

DAY_NAMES = dict(zip(ls.WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                     strict=True))
PRESET_DURATIONS = (15, 30, 45, 60, 90)
#: the providers a generated conference needs on the target calendar (read-write)
CONFERENCE_PROVIDER = {"google_meet": "google", "teams": "microsoft"}
#: how many empty question rows a form offers beyond the saved ones
SPARE_QUESTIONS = 2
_OVERRIDE_RE = re.compile(r"^(\S+?)\s*:\s*(.*)$")
_DAY_OFF = {"", "off", "closed", "none", "-"}


@dataclass(frozen=True)
class CalendarChoice:
    """One of the user's calendars as the link form offers it."""

    id: int
    label: str  # "Account / Calendar"
    kind: str  # the account's provider kind
    read_write: bool  # homecal may write there (read-write account, writable calendar)
    use_for_conflicts: bool

    @property
    def delivery(self) -> str:
        """What a booking there becomes, by the rule of daemon.booking.delivery.resolve_target:
        "event" (the provider invites the visitor), "kept" (a busy event here, and homecal
        emails the invitation) or "invite" (emailed, kept in homecal's Bookings calendar)."""
        if self.read_write:
            return "event" if self.kind in SCHEDULING_KINDS else "kept"
        return "invite"


def user_calendars(store: Store, user_id: int) -> list[CalendarChoice]:
    """The current user's calendars (nobody else's, ever), with what a booking there becomes."""
    accounts = {a.id: a for a in accounts_repo.all_accounts(store, user_id)}
    out = []
    for cal in accounts_repo.calendars(store, user_id=user_id):
        account = accounts[cal.account_id]
        read_write = account.mode == AccessMode.READ_WRITE and cal.writable and account.kind != "ics"
        out.append(CalendarChoice(cal.id, f"{account.name} / {cal.name}", account.kind, read_write,
                                  cal.use_for_conflicts))
    return out


DELIVERY_WORDS = {
    "event": "bookings become events, the calendar service invites the visitor",
    "kept": "bookings are kept here, homecal emails the invitations",
    "invite": "homecal cannot write there: bookings are emailed invitations",
}


def delivery_words(choice: CalendarChoice | None) -> str:
    if choice is None:
        return "bookings are emailed invitations"
    return DELIVERY_WORDS[choice.delivery]


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (easier than a multi-select, with a keyboard and on a phone)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _choices(pairs) -> list[SelectChoice]:  # noqa: ANN001 - (value, label) pairs
    return [SelectChoice(value, label) for value, label in pairs]


def _optional_int(value: object) -> int | None:
    return None if value in ("", None, "None") else int(value)  # type: ignore[arg-type]


def _text(value: object) -> str:
    return (value or "").strip() if isinstance(value, str) else ""


class QuestionForm(Form):
    """One custom question; `id` keeps answers tied to it when the label is edited."""

    id = HiddenField()
    label = StringField("Question", validators=[Optional(), Length(max=ls.MAX_LABEL)])
    required = BooleanField("Required")
    kind = SelectField("Answer", choices=_choices([("text", "Short answer"), ("textarea", "Long answer")]),
                       default="text")


LOCATION_CHOICES = [
    ("none", "No location"),
    ("address", "An address"),
    ("phone", "A phone number"),
    ("video", "A fixed video link"),
    ("jitsi", "A new Jitsi Meet room for each booking (meet.jit.si)"),
    ("google_meet", "Google Meet (needs a read-write Google calendar as target)"),
    ("teams", "Microsoft Teams (needs a read-write Microsoft calendar as target)"),
]


class LinkForm(FlaskForm):
    """Every setting of a booking link. Call `set_choices` before validating or rendering."""

    title = StringField("Title", validators=[Length(max=ls.MAX_TITLE)],
                        description="Visitors see it on the booking page, e.g. “30 minutes with Alex”.")
    access = RadioField("Who can find it", choices=_choices([
        ("public", "Public: an address with a name you choose"),
        ("private", "Private link: a secret, unguessable URL to hand out yourself"),
    ]), default="public")
    slug = StringField("Address name", render_kw={"spellcheck": "false", "autocapitalize": "none"},
                       description="Lower-case letters, digits and hyphens, e.g. “intro-call” for /book/intro-call.")
    durations = MultiCheckboxField("Lengths offered", coerce=int, choices=_choices(
        (d, f"{d} minutes") for d in PRESET_DURATIONS), default=[30],
        invalid_choice_message="Choose lengths from the list, or write them under “Other lengths”.")
    durations_other = StringField("Other lengths", render_kw={"inputmode": "numeric"},
                                  description="Minutes, separated by commas, e.g. “20, 120”.")
    hours_mon = StringField(DAY_NAMES["mon"])
    hours_tue = StringField(DAY_NAMES["tue"])
    hours_wed = StringField(DAY_NAMES["wed"])
    hours_thu = StringField(DAY_NAMES["thu"])
    hours_fri = StringField(DAY_NAMES["fri"])
    hours_sat = StringField(DAY_NAMES["sat"])
    hours_sun = StringField(DAY_NAMES["sun"])
    overrides = TextAreaField(
        "Date overrides", render_kw={"rows": 4, "spellcheck": "false"},
        description="One date per line, replacing that day's weekly hours: “2026-12-24: off” or "
                    "“2026-12-27: 10:00-14:00”.")
    conflict_calendar_ids = MultiCheckboxField(
        "Calendars checked for conflicts", coerce=int, invalid_choice_message="Choose among your own calendars.",
        description="A time is offered only when none of these calendars is busy then.")
    target_calendar_id = SelectField("Bookings go to", coerce=_optional_int,
                                     invalid_choice_message="Choose one of your own calendars.")
    buffer_before = StringField("Buffer before (minutes)", default="0", render_kw={"inputmode": "numeric"},
                                description="Free time kept before each booking.")
    buffer_after = StringField("Buffer after (minutes)", default="0", render_kw={"inputmode": "numeric"},
                               description="Free time kept after each booking.")
    min_notice = StringField("Minimum notice (minutes)", default="240", render_kw={"inputmode": "numeric"},
                             description="How soon a visitor may book: 240 is four hours, 1440 a day.")
    window_kind = RadioField("Booking window", choices=_choices([
        ("rolling", "Rolling: the next days from today"), ("fixed", "Fixed: between two dates")]), default="rolling")
    rolling_days = StringField("Days ahead", default="30", render_kw={"inputmode": "numeric"},
                               description="For a rolling window: how many days, today included.")
    fixed_start = StringField("First date", render_kw={"type": "date"}, description="For a fixed window.")
    fixed_end = StringField("Last date", render_kw={"type": "date"}, description="For a fixed window.")
    interval = StringField("Start times every (minutes)", render_kw={"inputmode": "numeric"},
                           description="Empty: every length apart (a 30-minute booking starts on the half hour).")
    daily_limit = StringField("Bookings per day at most", render_kw={"inputmode": "numeric"},
                              description="Empty: no limit.")
    all_day_blocks = BooleanField("All-day events block the whole day", default=True,
                                  description="Off: an all-day event (a holiday, a birthday) leaves the day bookable.")
    location_kind = RadioField("Location", choices=_choices(LOCATION_CHOICES), default="none")
    location_value = StringField("Address, phone number or video link", validators=[Length(max=ls.MAX_LOCATION)],
                                 description="For an address, a phone number or a fixed video link (https://…).")
    questions = FieldList(FormField(QuestionForm), max_entries=ls.MAX_QUESTIONS)
    confirmation_message = TextAreaField("Confirmation message", render_kw={"rows": 3},
                                         description="Shown to the visitor after booking and in their email.")

    HOUR_FIELDS = tuple(f"hours_{d}" for d in ls.WEEKDAYS)

    # -- choices ----------------------------------------------------------------------------
    def set_choices(self, cals: list[CalendarChoice]) -> None:
        self.cals = {c.id: c for c in cals}
        self.conflict_calendar_ids.choices = _choices((c.id, c.label) for c in cals)
        self.target_calendar_id.choices = _choices(
            [("", "homecal's own Bookings calendar (bookings are emailed invitations)")]
            + [(c.id, f"{c.label} ({delivery_words(c)})") for c in cals if c.kind != "ics"])

    def conference_allowed(self, kind: str) -> bool:
        """Google Meet / Teams are offered only with a read-write calendar of that provider."""
        return any(c.read_write and c.kind == CONFERENCE_PROVIDER[kind] for c in self.cals.values())

    def pad_questions(self) -> None:
        """A few empty question rows below the saved ones (the page works without JavaScript)."""
        wanted = min(ls.MAX_QUESTIONS, max(3, len(self.questions) + SPARE_QUESTIONS))
        while len(self.questions) < wanted:
            self.questions.append_entry()

    # -- validation -------------------------------------------------------------------------
    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001 - WTForms' signature
        ok = super().validate(extra_validators)
        raw = self._raw()
        if self.location_kind.data in CONFERENCE_PROVIDER:
            target = self.cals.get(self.target_calendar_id.data) if self.target_calendar_id.data else None
            provider = CONFERENCE_PROVIDER[self.location_kind.data]
            if target is None or target.kind != provider or not target.read_write:
                name = "Google" if provider == "google" else "Microsoft"
                self.location_kind.errors.append(f"This needs a read-write {name} calendar as the calendar "
                                                 "bookings go to.")
        self.slug_value = None
        if self.access.data == "public":
            try:
                self.slug_value = ls.validate_slug(self.slug.data or "")
            except LinkSettingsError as err:
                self.slug.errors.append(as_sentence(err.problems["slug"]))
        try:
            self.settings = ls.from_dict(raw)
        except LinkSettingsError as err:
            self.route_problems(err.problems)
            ok = False
        return ok and not self.errors

    def _raw(self) -> dict:
        """What was typed, as `from_dict` takes it; parsing problems go next to their field."""
        raw: dict = {"title": self.title.data or "", "overrides": {}, "weekly_hours": {}}
        try:
            other = [int(p) for p in re.split(r"[,;\s]+", _text(self.durations_other.data)) if p]
        except ValueError:
            self.durations_other.errors.append("Write lengths in minutes, like “20, 120”.")
            other = []
        raw["durations"] = sorted(set(self.durations.data or []) | set(other))
        if not raw["durations"] and not self.durations.errors:
            self.durations.errors.append("Choose at least one length.")
        for day in ls.WEEKDAYS:
            f = getattr(self, f"hours_{day}")
            try:
                raw["weekly_hours"][day] = list(ls.parse_ranges(f.data or "", DAY_NAMES[day]))
            except ValueError as err:
                f.errors.append(as_sentence(str(err)))
        for number, line in enumerate((self.overrides.data or "").splitlines(), 1):
            if not line.strip():
                continue
            m = _OVERRIDE_RE.match(line.strip())
            if not m:
                self.overrides.errors.append(f"Line {number}: write “2026-12-24: off” or “2026-12-27: 10:00-14:00”.")
                continue
            day, rest = m.group(1), m.group(2).strip()
            if day in raw["overrides"]:
                self.overrides.errors.append(f"Line {number}: {day} is already listed above.")
                continue
            try:
                raw["overrides"][day] = [] if rest.lower() in _DAY_OFF else list(ls.parse_ranges(rest, day))
            except ValueError as err:
                self.overrides.errors.append(f"Line {number}: {as_sentence(str(err))}")
        raw["conflict_calendar_ids"] = list(self.conflict_calendar_ids.data or [])
        raw["target_calendar_id"] = self.target_calendar_id.data
        for name in ("buffer_before", "buffer_after", "min_notice", "rolling_days", "interval", "daily_limit"):
            raw[name] = _text(getattr(self, name).data)
        for name in ("buffer_before", "buffer_after"):
            raw[name] = raw[name] or "0"  # an emptied buffer means none
        raw["window_kind"] = self.window_kind.data
        raw["fixed_start"], raw["fixed_end"] = _text(self.fixed_start.data), _text(self.fixed_end.data)
        raw["all_day_blocks"] = bool(self.all_day_blocks.data)
        raw["location"] = {"kind": self.location_kind.data, "value": _text(self.location_value.data)}
        self._question_rows = [q for q in self.questions if _text(q.form.label.data)]
        raw["questions"] = [{"id": _text(q.form.id.data), "label": _text(q.form.label.data),
                             "required": bool(q.form.required.data), "kind": q.form.kind.data}
                            for q in self._question_rows]
        raw["confirmation_message"] = self.confirmation_message.data or ""
        return raw

    def route_problems(self, problems: dict[str, str]) -> None:
        """Put each of `from_dict`'s (or the store's) problems next to its field."""
        for key, message in problems.items():
            text = as_sentence(message)
            if key == "weekly_hours":
                day = next((d for d in ls.WEEKDAYS if message.startswith(d)), None)
                (getattr(self, f"hours_{day}") if day else self.hours_mon).errors.append(text)
            elif key == "questions":
                m = re.match(r"question (\d+):", message)
                if m and int(m.group(1)) <= len(self._question_rows):
                    self._question_rows[int(m.group(1)) - 1].form.label.errors.append(text)
                else:
                    self.form_errors.append(f"Questions: {text}")
            elif key == "location":
                needs_value = self.location_kind.data in ("address", "phone", "video")
                (self.location_value if needs_value else self.location_kind).errors.append(text)
            elif key == "durations":
                self.durations.errors.append(text)
            elif key in self._fields and key != "csrf_token":
                self._fields[key].errors.append(text)
            else:
                self.form_errors.append(text)

    # -- filling the form --------------------------------------------------------------------
    @classmethod
    def data_from(cls, settings: LinkSettings, *, slug: str = "", private: bool = False) -> dict:
        """A saved link's settings as form data (to fill the edit form)."""
        preset = [d for d in settings.durations if d in PRESET_DURATIONS]
        other = [str(d) for d in settings.durations if d not in PRESET_DURATIONS]
        data = {
            "title": settings.title, "access": "private" if private else "public", "slug": slug,
            "durations": preset, "durations_other": ", ".join(other),
            "overrides": "\n".join(f"{day}: {ls.format_ranges(r) if r else 'off'}"
                                   for day, r in settings.overrides.items()),
            "conflict_calendar_ids": list(settings.conflict_calendar_ids),
            "target_calendar_id": settings.target_calendar_id,
            "buffer_before": str(settings.buffer_before), "buffer_after": str(settings.buffer_after),
            "min_notice": str(settings.min_notice), "window_kind": settings.window_kind,
            "rolling_days": str(settings.rolling_days), "fixed_start": settings.fixed_start or "",
            "fixed_end": settings.fixed_end or "",
            "interval": "" if settings.interval is None else str(settings.interval),
            "daily_limit": "" if settings.daily_limit is None else str(settings.daily_limit),
            "all_day_blocks": settings.all_day_blocks, "location_kind": settings.location.kind,
            "location_value": settings.location.value,
            "questions": [{"id": q.id, "label": q.label, "required": q.required, "kind": q.kind}
                          for q in settings.questions],
            "confirmation_message": settings.confirmation_message,
        }
        for day in ls.WEEKDAYS:
            data[f"hours_{day}"] = ls.format_ranges(settings.weekly_hours.get(day, ()))
        return data

    @classmethod
    def new_data(cls, store: Store, user_id: int, cals: list[CalendarChoice]) -> dict:
        """A new link's form: the user's working hours (from Settings), conflicts as the
        calendars say, bookings into homecal's own calendar."""
        data = cls.data_from(LinkSettings(title=""))
        saved = users.working_hours(store, user_id)
        if saved is not None:
            for day in ls.WEEKDAYS:
                data[f"hours_{day}"] = "-".join(saved[day]) if day in saved else ""
        data["conflict_calendar_ids"] = [c.id for c in cals if c.use_for_conflicts]
        return data


class ButtonForm(FlaskForm):
    """No fields: a button that posts only its CSRF token (enable, new URL, remove, cancel, retry)."""
