"""The settings of one booking link, validated in one place and stored as sealed JSON.

Every time of day here is wall-clock time in the host's zone (the user's time zone):
"09:00-17:00 on Mondays" stays 09:00-17:00 across DST. Validation collects every problem,
keyed by field name, so a form can show each message next to its field.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, time
from typing import Any, Literal

from daemon.errors import UsageError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOCATION_KINDS = ("none", "address", "phone", "video", "jitsi", "google_meet", "teams")
QUESTION_KINDS = ("text", "textarea")

MAX_TITLE = 120
MAX_DURATIONS = 6
MAX_MINUTES = 12 * 60
MAX_RANGES_PER_DAY = 6
MAX_OVERRIDES = 366
MAX_QUESTIONS = 10
MAX_LABEL = 200
MAX_LOCATION = 300
MAX_MESSAGE = 2000
MAX_WINDOW_DAYS = 366
MAX_NOTICE_MINUTES = 60 * 24 * 60
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

Range = tuple[str, str]  # ("09:00", "12:00"); "24:00" is allowed as an end


class LinkSettingsError(UsageError):
    """Invalid settings; `problems` maps each field name to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class Question:
    """A custom question on the booking form. `id` is stable so answers survive edits."""

    id: str
    label: str
    required: bool = False
    kind: Literal["text", "textarea"] = "text"


@dataclass(frozen=True)
class Location:
    """Where the meeting happens. `value` is the address, phone number or video URL.

    `jitsi` generates a fresh meet.jit.si room per booking; `google_meet` and `teams` ask the
    target provider for a conference and need a read-write Google or Microsoft target.
    """

    kind: Literal["none", "address", "phone", "video", "jitsi", "google_meet", "teams"] = "none"
    value: str = ""


@dataclass(frozen=True)
class LinkSettings:
    """Everything a booking link offers. Minutes everywhere; times are the host's wall clock."""

    title: str
    durations: tuple[int, ...] = (30,)
    # weekday ("mon".."sun") -> ranges; a weekday missing or empty is not bookable
    weekly_hours: dict[str, tuple[Range, ...]] = field(default_factory=lambda: {
        d: (("09:00", "17:00"),) for d in WEEKDAYS[:5]})
    # ISO date -> ranges replacing that day's weekly hours; an empty tuple is a day off
    overrides: dict[str, tuple[Range, ...]] = field(default_factory=dict)
    # calendars whose busy time blocks slots (the host's own calendar ids)
    conflict_calendar_ids: tuple[int, ...] = ()
    # where bookings go; None = homecal's own "Bookings" calendar of the host
    target_calendar_id: int | None = None
    buffer_before: int = 0
    buffer_after: int = 0
    min_notice: int = 240
    window_kind: Literal["rolling", "fixed"] = "rolling"
    rolling_days: int = 30
    fixed_start: str | None = None  # ISO dates, inclusive
    fixed_end: str | None = None
    interval: int | None = None  # slot step; None = the duration asked for
    daily_limit: int | None = None  # bookings per host day through this link; None = no limit
    all_day_blocks: bool = True  # do (opaque) all-day events block the whole day?
    location: Location = Location()
    questions: tuple[Question, ...] = ()
    confirmation_message: str = ""

    # -- derived ----------------------------------------------------------------------
    def step(self, duration: int) -> int:
        return self.interval or duration

    def ranges_on(self, day: date) -> tuple[tuple[time, time | None], ...]:
        """The bookable wall-clock ranges of `day`: the override if there is one, else the
        weekday's hours. An end of None means midnight at the end of the day."""
        ranges = self.overrides.get(day.isoformat())
        if ranges is None:
            ranges = self.weekly_hours.get(WEEKDAYS[day.weekday()], ())
        return tuple((_parse_hhmm(a), None if b == "24:00" else _parse_hhmm(b)) for a, b in ranges)

    # -- storage ----------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LinkSettings:
        return from_dict(json.loads(text))


def _parse_hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def _minutes(text: str) -> int:
    if text == "24:00":
        return 24 * 60
    m = _HHMM_RE.match(text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * 60 + int(m.group(2))


def _check_ranges(ranges: Any, where: str) -> tuple[Range, ...]:
    """Ranges as ("HH:MM", "HH:MM") pairs, start before end, sorted, not overlapping."""
    if not isinstance(ranges, list | tuple) or len(ranges) > MAX_RANGES_PER_DAY:
        raise ValueError(f"{where}: at most {MAX_RANGES_PER_DAY} time ranges")
    out: list[tuple[int, int, Range]] = []
    for pair in ranges:
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise ValueError(f"{where}: write each range as HH:MM-HH:MM")
        a, b = pair[0].strip(), pair[1].strip()
        try:
            if a == "24:00":
                raise ValueError(a)
            start, end = _minutes(a), _minutes(b)
        except ValueError:
            raise ValueError(f"{where}: {a}-{b} is not a time range like 09:00-17:00") from None
        if end <= start:
            raise ValueError(f"{where}: {a}-{b} ends before it starts")
        out.append((start, end, (a, b)))
    out.sort()
    for (_, end1, r1), (start2, _, r2) in zip(out, out[1:], strict=False):
        if start2 < end1:
            raise ValueError(f"{where}: {r1[0]}-{r1[1]} and {r2[0]}-{r2[1]} overlap")
    return tuple(r for _, _, r in out)


def parse_ranges(text: str, where: str = "hours") -> tuple[Range, ...]:
    """"09:00-12:00, 13:00-17:00" -> (("09:00", "12:00"), ("13:00", "17:00")); "" -> ()."""
    pairs = []
    for part in re.split(r"[,;\s]+", (text or "").strip()):
        if not part:
            continue
        if part.count("-") != 1:
            raise ValueError(f"{where}: {part[:20]!r} is not a time range like 09:00-17:00")
        pairs.append(tuple(part.split("-")))
    return _check_ranges(pairs, where)


def format_ranges(ranges: tuple[Range, ...]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges)


def _int(data: dict, key: str, lo: int, hi: int, problems: dict[str, str], *, optional: bool = False) -> int | None:
    value = data.get(key)
    if value in (None, "") and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except (TypeError, ValueError):
            problems[key] = "must be a whole number"
            return None
    if not lo <= value <= hi:
        problems[key] = f"must be between {lo} and {hi}"
        return None
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError
    return date.fromisoformat(value.strip())


def from_dict(data: dict[str, Any]) -> LinkSettings:
    """Validated LinkSettings from plain data (stored JSON or a form), or LinkSettingsError
    naming every field that is wrong. Unknown keys are ignored; missing ones take defaults."""
    if not isinstance(data, dict):
        raise LinkSettingsError({"settings": "must be an object"})
    problems: dict[str, str] = {}
    base = LinkSettings(title="x")
    values: dict[str, Any] = {}

    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems["title"] = "give the link a title"
    elif len(title.strip()) > MAX_TITLE or any(ord(c) < 32 for c in title):
        problems["title"] = f"at most {MAX_TITLE} characters on one line"
    else:
        values["title"] = title.strip()

    durations = data.get("durations", base.durations)
    try:
        ds = sorted({int(d) for d in durations})
        if not ds or len(ds) > MAX_DURATIONS or not all(5 <= d <= MAX_MINUTES for d in ds):
            raise ValueError
        values["durations"] = tuple(ds)
    except (TypeError, ValueError):
        problems["durations"] = f"one to {MAX_DURATIONS} lengths in minutes, each from 5 to {MAX_MINUTES}"

    hours = data.get("weekly_hours", None)
    if hours is not None:
        try:
            if not isinstance(hours, dict) or set(hours) - set(WEEKDAYS):
                raise ValueError("use the weekdays mon to sun")
            values["weekly_hours"] = {d: _check_ranges(r, d) for d, r in hours.items() if r}
        except ValueError as err:
            problems["weekly_hours"] = str(err)

    overrides = data.get("overrides", {}) or {}
    try:
        if not isinstance(overrides, dict) or len(overrides) > MAX_OVERRIDES:
            raise ValueError(f"at most {MAX_OVERRIDES} dates")
        out = {}
        for day, ranges in overrides.items():
            try:
                key = _iso_date(day).isoformat()
            except ValueError:
                raise ValueError(f"{str(day)[:12]!r} is not a date like 2026-12-24") from None
            out[key] = _check_ranges(ranges, key)
        values["overrides"] = dict(sorted(out.items()))
    except ValueError as err:
        problems["overrides"] = str(err)

    for key in ("conflict_calendar_ids",):
        try:
            values[key] = tuple(sorted({int(c) for c in data.get(key, ()) or ()}))
        except (TypeError, ValueError):
            problems[key] = "pick calendars from the list"
    target = data.get("target_calendar_id")
    if target not in (None, ""):
        try:
            values["target_calendar_id"] = int(target)
        except (TypeError, ValueError):
            problems["target_calendar_id"] = "pick a calendar from the list"

    for key, hi in (("buffer_before", MAX_MINUTES), ("buffer_after", MAX_MINUTES),
                    ("min_notice", MAX_NOTICE_MINUTES)):
        if key in data:
            v = _int(data, key, 0, hi, problems)
            if v is not None:
                values[key] = v
    if "interval" in data:
        v = _int(data, "interval", 5, MAX_MINUTES, problems, optional=True)
        if "interval" not in problems:
            values["interval"] = v
    if "daily_limit" in data:
        v = _int(data, "daily_limit", 1, 100, problems, optional=True)
        if "daily_limit" not in problems:
            values["daily_limit"] = v

    kind = data.get("window_kind", "rolling")
    if kind not in ("rolling", "fixed"):
        problems["window_kind"] = "choose a rolling or a fixed window"
    else:
        values["window_kind"] = kind
    if kind == "rolling" and "rolling_days" in data:
        v = _int(data, "rolling_days", 1, MAX_WINDOW_DAYS, problems)
        if v is not None:
            values["rolling_days"] = v
    if kind == "fixed":
        try:
            first, last = _iso_date(data.get("fixed_start")), _iso_date(data.get("fixed_end"))
        except ValueError:
            problems["fixed_start"] = "a fixed window needs a first and a last date like 2026-12-01"
        else:
            if last < first:
                problems["fixed_end"] = "the last date is before the first"
            elif (last - first).days > MAX_WINDOW_DAYS:
                problems["fixed_end"] = f"a window spans at most {MAX_WINDOW_DAYS} days"
            else:
                values["fixed_start"], values["fixed_end"] = first.isoformat(), last.isoformat()

    if "all_day_blocks" in data:
        values["all_day_blocks"] = bool(data["all_day_blocks"])

    loc = data.get("location") or {}
    lkind = loc.get("kind", "none") if isinstance(loc, dict) else None
    lvalue = str(loc.get("value", "") or "").strip() if isinstance(loc, dict) else ""
    if lkind not in LOCATION_KINDS:
        problems["location"] = "choose a kind of location from the list"
    elif len(lvalue) > MAX_LOCATION or any(ord(c) < 32 for c in lvalue):
        problems["location"] = f"at most {MAX_LOCATION} characters on one line"
    elif lkind in ("address", "phone", "video") and not lvalue:
        problems["location"] = f"give the {'video link' if lkind == 'video' else lkind}"
    elif lkind == "video" and not re.match(r"^https://[^\s/]+\.[^\s]+$", lvalue):
        problems["location"] = "a video link starts with https://"
    elif lkind == "phone" and not re.match(r"^\+?[0-9 ()./-]{3,40}$", lvalue):
        problems["location"] = "a phone number has digits, spaces and + ( ) - . / only"
    else:
        values["location"] = Location(lkind, lvalue if lkind in ("address", "phone", "video") else "")

    questions = data.get("questions", ()) or ()
    try:
        if not isinstance(questions, list | tuple) or len(questions) > MAX_QUESTIONS:
            raise ValueError(f"at most {MAX_QUESTIONS} questions")
        qs, seen = [], set()
        for i, q in enumerate(questions):
            if not isinstance(q, dict):
                raise ValueError("each question needs a label")
            label = str(q.get("label", "") or "").strip()
            if not label or len(label) > MAX_LABEL or any(ord(c) < 32 for c in label):
                raise ValueError(f"question {i + 1}: a label of 1 to {MAX_LABEL} characters on one line")
            qid = str(q.get("id") or f"q{i + 1}")
            if not re.match(r"^[a-z0-9_]{1,20}$", qid) or qid in seen:
                qid = f"q{i + 1}"
                while qid in seen:
                    qid += "x"
            seen.add(qid)
            qkind = q.get("kind", "text")
            if qkind not in QUESTION_KINDS:
                raise ValueError(f"question {i + 1}: a short or a long answer")
            qs.append(Question(qid, label, bool(q.get("required")), qkind))
        values["questions"] = tuple(qs)
    except ValueError as err:
        problems["questions"] = str(err)

    message = data.get("confirmation_message", "") or ""
    if not isinstance(message, str) or len(message) > MAX_MESSAGE:
        problems["confirmation_message"] = f"at most {MAX_MESSAGE} characters"
    else:
        values["confirmation_message"] = message.strip().replace("\r\n", "\n")

    if problems:
        raise LinkSettingsError(problems)
    settings = replace(base, **values)
    if settings.window_kind == "fixed" and not settings.fixed_start:
        raise LinkSettingsError({"fixed_start": "a fixed window needs a first and a last date"})
    return settings


def validate_slug(slug: str) -> str:
    """A public slug: lower-case letters, digits and inner hyphens, 1 to 64 characters."""
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug):
        raise LinkSettingsError({"slug": "use 1 to 64 lower-case letters, digits and hyphens, "
                                         "not starting or ending with a hyphen"})
    return slug


def window_dates(settings: LinkSettings, today: date) -> tuple[date, date]:
    """The first and last bookable host dates (inclusive) as of the host's `today`."""
    from datetime import timedelta

    if settings.window_kind == "fixed" and settings.fixed_start and settings.fixed_end:
        return max(today, date.fromisoformat(settings.fixed_start)), date.fromisoformat(settings.fixed_end)
    return today, today + timedelta(days=settings.rolling_days - 1)
