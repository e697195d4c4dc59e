"""Taking, moving and cancelling bookings, per access mode of the target account.

The one entry point the web UI uses for bookings. What a booking becomes depends on where
it goes:
- a read-write calendar (CalDAV, Google, Microsoft, local): an event in that calendar with
  the visitor as attendee, written through the access gate (the provider sends its own
  invitation); the visitor gets a plain confirmation mail with the manage links.
- otherwise (free-busy or no-access account, or no target chosen): no provider write; the
  booking becomes a busy event in homecal's own "Bookings" calendar of the host, and an
  iMIP REQUEST goes by mail to the visitor and to the host.

No double booking: after a live re-check of the conflict calendars, the slot is taken
inside one `BEGIN IMMEDIATE` transaction that re-reads the host's bookings, so of any number
of visitors racing for one slot exactly one gets it (and a partial unique index stands
behind that). Availability fails closed: a conflict calendar that cannot be read makes the
link say "temporarily unavailable" instead of offering times that may be taken.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.booking import availability, busy, delivery
from daemon.booking.availability import Slot
from daemon.config import Config
from daemon.errors import HomecalError, NotFound, UsageError
from daemon.mail import validate_address
from daemon.store import booking_links, bookings, users
from daemon.store.booking_links import BookingLink
from daemon.store.bookings import BookingRow
from daemon.store.db import Store
from daemon.store.settings import effective_public_url

log = logging.getLogger("homecal.booking")

MAX_NAME = 100
MAX_ANSWER = 2000
TOKEN_BYTES = 24
UNAVAILABLE = "Times are temporarily unavailable. Please try again later."
TAKEN = "That time was just taken. Please choose another."
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


class BookingUnavailable(HomecalError):
    """Times cannot be offered or taken right now (a conflict calendar cannot be read)."""

    http_status = 503


class SlotTaken(HomecalError):
    """Someone else took the slot (or it stopped being free) a moment ago."""

    http_status = 409


class VisitorError(UsageError):
    """The visitor's form is wrong; `problems` maps field names (name, email, timezone,
    or a question id) to a message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class Visitor:
    name: str
    email: str
    timezone: str  # IANA zone the visitor chose or their browser reported
    answers: dict[str, str] = field(default_factory=dict)  # question id -> answer


@dataclass(frozen=True)
class Booking:
    id: int
    link_id: int
    user_id: int
    uid: str
    sequence: int
    status: str  # confirmed | cancelled
    start: datetime  # aware UTC
    end: datetime
    delivery: str  # event | invite
    target_calendar_id: int | None
    title: str  # the link's title when booked
    location: str  # the location text as the visitor sees it ("" for none)
    visitor: Visitor
    created_at: str
    cancelled_at: str | None
    cancelled_by: str | None  # visitor | host
    conference: str = ""  # the video call the link offered: "google_meet", "teams" or ""
    join_url: str = ""  # its link, when the provider made one ("" otherwise: the host sends it)

    @property
    def duration(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def conference_name(self) -> str:
        """"Google Meet" or "Microsoft Teams"; "" when the link offered no conference."""
        return delivery.CONFERENCE_NAMES.get(self.conference, "")


@dataclass(frozen=True)
class BookingResult:
    booking: Booking
    token: str  # the secret of the visitor's /booking/<token> links


# -- reading ---------------------------------------------------------------------------------


def host_zone(store: Store, user_id: int) -> ZoneInfo:
    try:
        return ZoneInfo(users.get(store, user_id).timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def _calendars(store: Store, link: BookingLink, now: datetime) -> list:
    try:
        return busy.check_readable(store, link, now)
    except busy.Unreadable as err:
        log.info("booking link %s unavailable: %s", link.id, err)
        raise BookingUnavailable(UNAVAILABLE) from None


def offered_slots(config: Config, store: Store, link: BookingLink, *, duration: int, now: datetime | None = None,
                  start: datetime | None = None, end: datetime | None = None,
                  exclude_booking: int | None = None) -> list[Slot]:
    """The slots a visitor may pick now, from what the sync keeps (no provider request).

    Raises BookingUnavailable when a conflict calendar cannot be read (fail closed) and
    ValueError for a duration the link does not offer.
    """
    now = _now(now)
    tz = host_zone(store, link.user_id)
    first, last = availability.bookable_range(link.settings, tz, now)
    first, last = max(first, start) if start else first, min(last, end) if end else last
    if first >= last:
        return []
    cals = _calendars(store, link, now)
    pad = timedelta(minutes=link.settings.buffer_before + link.settings.buffer_after + max(link.settings.durations))
    busy_list = busy.busy_times(store, link, cals, first - pad, last + pad, exclude_booking=exclude_booking)
    days = bookings.per_day(store, link.id, first.astimezone(tz).date(), last.astimezone(tz).date(),
                            exclude_id=exclude_booking)
    return availability.slots(link.settings, duration=duration, tz=tz, busy=busy_list, booked_per_day=days,
                              now=now, start=first, end=last)


def availability_version(store: Store, link: BookingLink, now: datetime | None = None) -> tuple:
    """Everything `offered_slots` depends on besides its arguments, read cheaply: the link,
    the host's zone, each calendar's read state (a mirror change always comes with a new
    cursor and read time), the accounts' health, the host's bookings, and the minute.
    Equal versions mean equal slots, so a rendered page may be reused."""
    cals = store.db.execute(
        "SELECT c.id, c.last_refresh_at, c.cursor, a.status, a.backoff_until FROM calendars c "
        "JOIN accounts a ON a.id = c.account_id WHERE a.user_id = ? ORDER BY c.id", [link.user_id]).fetchall()
    booked = store.db.execute("SELECT count(*), coalesce(sum(sequence), 0), max(updated_at) FROM bookings "
                              "WHERE user_id = ?", [link.user_id]).fetchone()
    zone = store.db.execute("SELECT timezone FROM users WHERE id = ?", [link.user_id]).fetchone()
    minute = _now(now).replace(second=0, microsecond=0)
    return (link.id, link.updated_at, link.settings.to_json(), zone, tuple(cals), tuple(booked), minute)


def _check_slot(store: Store, link: BookingLink, cals: list, *, duration: int, start: datetime, now: datetime,
                tz: ZoneInfo, exclude_booking: int | None = None) -> bool:
    """Is `start` still bookable, from the current rows (run inside the slot transaction)."""
    s = link.settings
    span = timedelta(minutes=s.buffer_before + duration + s.buffer_after)
    busy_list = busy.busy_times(store, link, cals, start - span, start + span, exclude_booking=exclude_booking,
                                fresh=True)
    day = start.astimezone(tz).date()
    days = bookings.per_day(store, link.id, day, day, exclude_id=exclude_booking)
    return availability.is_bookable(s, duration=duration, tz=tz, busy=busy_list, booked_per_day=days, now=now,
                                    start=start)


# -- the visitor -------------------------------------------------------------------------------


def _clean(text: object, limit: int) -> str:
    value = str(text or "").replace("\r\n", "\n").strip()
    return value[: limit + 1]


def validate_visitor(link: BookingLink, *, name: str, email: str, timezone: str,
                     answers: Mapping[str, str]) -> Visitor:
    """The visitor's details checked (sizes, e-mail, zone, required questions) or VisitorError."""
    problems: dict[str, str] = {}
    name_v = _clean(name, MAX_NAME)
    if not name_v:
        problems["name"] = "please give your name"
    elif len(name_v) > MAX_NAME or _CONTROL_RE.search(name_v):
        problems["name"] = f"at most {MAX_NAME} characters on one line"
    try:
        email_v = validate_address(email or "")
    except UsageError:
        problems["email"] = "please give an e-mail address like name@example.org"
        email_v = ""
    tz_v = (timezone or "").strip()
    if tz_v not in users.time_zones():
        problems["timezone"] = "choose a time zone from the list"
    out: dict[str, str] = {}
    for q in link.settings.questions:
        value = _clean(answers.get(q.id, ""), MAX_ANSWER)
        if q.kind == "text":
            value = value.replace("\n", " ")
        if len(value) > MAX_ANSWER or _CONTROL_RE.search(value.replace("\n", "").replace("\t", "")):
            problems[q.id] = f"at most {MAX_ANSWER} characters of text"
        elif q.required and not value:
            problems[q.id] = "this question needs an answer"
        elif value:
            out[q.id] = value
    if problems:
        raise VisitorError(problems)
    return Visitor(name_v, email_v, tz_v, out)


# -- taking, moving, cancelling ------------------------------------------------------------------


def _location(link: BookingLink) -> str:
    loc = link.settings.location
    if loc.kind == "jitsi":
        # A fresh, unguessable room per booking: anyone with a room name can join it.
        return f"https://meet.jit.si/homecal-{secrets.token_urlsafe(12).replace('_', 'x').replace('-', 'y')}"
    return loc.value if loc.kind in ("address", "phone", "video") else ""


def _details(store: Store, link: BookingLink, visitor: Visitor, token: str) -> dict:
    questions = {q.id: q.label for q in link.settings.questions}
    details = {"name": visitor.name, "email": visitor.email, "timezone": visitor.timezone,
               "answers": visitor.answers,
               "answer_lines": [[questions[k], v] for k, v in visitor.answers.items() if k in questions],
               "title": link.settings.title, "host": users.get(store, link.user_id).username,
               "location": _location(link), "message": link.settings.confirmation_message, "token": token}
    if link.settings.location.kind in delivery.CONFERENCE_NAMES:
        # what the visitor was promised; the delivery decides whether a provider can make it
        details["conference"] = link.settings.location.kind
    return details


def book(config: Config, store: Store, link: BookingLink, *, duration: int, start: datetime, visitor: Visitor,
         now: datetime | None = None) -> BookingResult:
    """Take `start` for `visitor`: pre-check, live re-check of the conflict calendars, the
    slot transaction, then the write or the invitations. SlotTaken when someone was faster."""
    now = _now(now)
    if duration not in link.settings.durations:
        raise UsageError(f"this link offers {', '.join(map(str, link.settings.durations))} minutes")
    if start.tzinfo is None:
        raise UsageError("a slot time must carry its zone")
    start = start.astimezone(timezone.utc)
    tz = host_zone(store, link.user_id)
    cals = _calendars(store, link, now)
    if not _check_slot(store, link, cals, duration=duration, start=start, now=now, tz=tz):
        raise SlotTaken(TAKEN)
    try:
        busy.live_recheck(config, store, link, cals)
    except busy.Unreadable as err:
        log.warning("booking link %s: live re-check failed (%s); not booking", link.id, err)
        raise BookingUnavailable(UNAVAILABLE) from None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    booking_id = bookings.insert(
        store, link_id=link.id, user_id=link.user_id, uid=f"{secrets.token_hex(16)}@homecal",
        start=start, end=start + timedelta(minutes=duration), local_day=start.astimezone(tz).date(), token=token,
        details=_details(store, link, visitor, token),
        check=lambda: _check_slot(store, link, cals, duration=duration, start=start, now=now, tz=tz))
    if booking_id is None:
        raise SlotTaken(TAKEN)
    row = bookings.get(store, booking_id)
    target = delivery.resolve_target(store, link.user_id, link.settings.target_calendar_id)
    try:
        ref = delivery.write_event(config, store, row, target, tz)
    except HomecalError as err:
        # The slot must not stay taken by a booking nobody will hear about.
        log.warning("booking %s could not be written to calendar %s: %s", booking_id, target.calendar.id, err)
        bookings.delete(store, booking_id)
        raise BookingUnavailable("The booking could not be saved in the host's calendar. "
                                 "Please try again in a few minutes.") from None
    with store.atomic():
        bookings.set_delivery(store, booking_id, delivery=target.delivery, target_calendar_id=target.calendar.id,
                              target_id=ref.id, target_etag=ref.etag)
        if ref.join_url:
            bookings.merge_details(store, booking_id, {"join_url": ref.join_url})
        delivery.queue_mails(config, store, bookings.get(store, booking_id), target.delivery, "booked", tz)
    log.info("booking %s taken through link %s (%s)", booking_id, link.id, target.delivery)
    _after_write(config, store, link.user_id, target.calendar.id)
    return BookingResult(_booking(bookings.get(store, booking_id)), token)


def _after_write(config: Config, store: Store, user_id: int, calendar_id: int | None) -> None:
    from daemon.booking.outbox_job import kick

    delivery.refresh_view(config, store, user_id, calendar_id)
    kick(config, store)


def _live_row(store: Store, token: str) -> BookingRow:
    row = bookings.by_token(store, token)
    if row is None:
        raise NotFound("this booking link is not valid")
    return row


def reschedule(config: Config, store: Store, token: str, *, start: datetime, now: datetime | None = None) -> Booking:
    """Move the booking to `start` (same duration), if that is free; SEQUENCE goes up."""
    now = _now(now)
    row = _live_row(store, token)
    if row.status != "confirmed":
        raise UsageError("this booking was cancelled; book a new time instead")
    if row.end <= now:
        raise UsageError("this booking is in the past")
    link = booking_links.get(store, row.link_id)
    duration = int((row.end - row.start).total_seconds() // 60)
    if duration not in link.settings.durations:
        raise UsageError("this link no longer offers this length of meeting; cancel and book again")
    if start.tzinfo is None:
        raise UsageError("a slot time must carry its zone")
    start = start.astimezone(timezone.utc)
    tz = host_zone(store, link.user_id)
    cals = _calendars(store, link, now)

    def check() -> bool:
        return _check_slot(store, link, cals, duration=duration, start=start, now=now, tz=tz,
                           exclude_booking=row.id)

    if not check():
        raise SlotTaken(TAKEN)
    try:
        busy.live_recheck(config, store, link, cals)
    except busy.Unreadable:
        raise BookingUnavailable(UNAVAILABLE) from None
    if not bookings.move(store, row.id, start=start, end=start + timedelta(minutes=duration),
                         local_day=start.astimezone(tz).date(), check=check):
        raise SlotTaken(TAKEN)
    moved = bookings.get(store, row.id)
    target = delivery.resolve_target(store, link.user_id, row.target_calendar_id)
    try:
        ref = delivery.write_event(config, store, moved, target, tz)
    except HomecalError as err:
        log.warning("booking %s moved, but its event could not be updated: %s", row.id, err)
        ref = None
    with store.atomic():
        if ref is not None:
            bookings.set_delivery(store, row.id, delivery=row.delivery or target.delivery,
                                  target_calendar_id=target.calendar.id, target_id=ref.id, target_etag=ref.etag)
            join_url = _join_url_after_move(row, target.calendar.id, ref.join_url)
            if join_url != row.details.get("join_url"):
                bookings.merge_details(store, row.id, {"join_url": join_url})
        moved = bookings.get(store, row.id)
        delivery.queue_mails(config, store, moved, row.delivery or target.delivery, "moved", tz)
    _after_write(config, store, link.user_id, target.calendar.id)
    return _booking(bookings.get(store, row.id))


def _join_url_after_move(row: BookingRow, calendar_id: int, returned: str | None) -> str | None:
    """The video link after a move: an updated event keeps its conference (and its link,
    even if the answer left it out); an event written anew elsewhere has only what it got."""
    if calendar_id == row.target_calendar_id:
        return returned or row.details.get("join_url")
    return returned


def _cancel(config: Config, store: Store, row: BookingRow, by: str) -> Booking:
    tz = host_zone(store, row.user_id)
    if row.status != "confirmed":
        return _booking(row)  # already cancelled: pressing the button twice changes nothing
    with store.atomic():
        if not bookings.mark_cancelled(store, row.id, by):
            return _booking(bookings.get(store, row.id))
        delivery.queue_mails(config, store, bookings.get(store, row.id), row.delivery or "invite", "cancelled", tz)
    delivery.delete_event(config, store, row, tz)
    log.info("booking %s cancelled by the %s", row.id, by)
    _after_write(config, store, row.user_id, row.target_calendar_id)
    return _booking(bookings.get(store, row.id))


def cancel_by_token(config: Config, store: Store, token: str, *, now: datetime | None = None) -> Booking:
    return _cancel(config, store, _live_row(store, token), "visitor")


def cancel_by_host(config: Config, store: Store, booking_id: int, user_id: int, *,
                   now: datetime | None = None) -> Booking:
    return _cancel(config, store, bookings.get(store, booking_id, user_id), "host")


# -- views of a booking ----------------------------------------------------------------------------


def _booking(row: BookingRow) -> Booking:
    d = row.details
    return Booking(
        id=row.id, link_id=row.link_id, user_id=row.user_id, uid=row.uid, sequence=row.sequence, status=row.status,
        start=row.start, end=row.end, delivery=row.delivery or "invite", target_calendar_id=row.target_calendar_id,
        title=d.get("title", ""), location=d.get("location", ""),
        visitor=Visitor(d.get("name", ""), d.get("email", ""), d.get("timezone", "UTC"), dict(d.get("answers", {}))),
        created_at=row.created_at, cancelled_at=row.cancelled_at, cancelled_by=row.cancelled_by,
        conference=d.get("conference") or "", join_url=d.get("join_url") or "")


def booking_by_token(store: Store, token: str) -> Booking | None:
    row = bookings.by_token(store, token)
    return _booking(row) if row else None


def bookings_for_user(store: Store, user_id: int, *, upcoming_only: bool = True,
                      now: datetime | None = None) -> list[Booking]:
    rows = bookings.for_user(store, user_id, since=_now(now) if upcoming_only else None,
                             include_cancelled=not upcoming_only)
    return [_booking(r) for r in rows]


def booking_ics(store: Store, booking: Booking, config: Config | None = None) -> str:
    row = bookings.get(store, booking.id)
    organizer = delivery.sender(config, store) if config is not None else delivery.FALLBACK_SENDER
    return delivery.ics(row, host_zone(store, row.user_id), organizer)


def manage_url(config: Config, store: Store, token: str) -> str:
    return delivery.manage_url(config, store, token)


def public_url(config: Config, store: Store, link: BookingLink) -> str:
    return f"{effective_public_url(config, store).rstrip('/')}/book/{link.url_key}"
