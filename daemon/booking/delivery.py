"""Where a booking goes and what is written and mailed for it, per access mode.

- `event`: the target is a read-write calendar of a provider that schedules (CalDAV,
  Google, Microsoft). The booking is an event there with the host as ORGANIZER and the
  visitor as ATTENDEE, written through the access gate; the provider sends the invitation.
  The visitor gets a plain mail with the links to reschedule or cancel.
- `invite`: anything else (a free-busy or no-access account, no target, or a calendar kept
  in homecal itself). Nothing is written to a provider. The booking is a busy event in a
  calendar homecal keeps (the chosen local calendar, else the host's "Bookings" calendar),
  and an iMIP REQUEST (CANCEL when cancelled) is mailed to the visitor and to the host,
  ORGANIZER the configured sender.
A link offering Google Meet asks a Google target for a conference; the link Google returns
is kept (sealed) with the booking and shown in its mails and pages.
Every mail goes through the durable outbox in the same transaction as the booking's state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import tzinfo

from daemon.booking import invites
from daemon.config import Config
from daemon.errors import HomecalError, NotFound
from daemon.models import AccessMode, CalendarInfo, Draft, EventRef
from daemon.providers import make_provider
from daemon.store import accounts, outbox, users
from daemon.store.accounts import Account, Calendar
from daemon.store.bookings import BookingRow
from daemon.store.db import Store
from daemon.store.settings import effective_public_url, effective_smtp
from daemon.sync.gate import Gate

log = logging.getLogger("homecal.booking")

BOOKINGS_ACCOUNT_META = "bookings_account:{user_id}"
BOOKINGS_CALENDAR_NAME = "Bookings"
#: providers whose servers send invitations for events with attendees (RFC 6638 and the APIs)
SCHEDULING_KINDS = ("caldav", "google", "microsoft")
FALLBACK_SENDER = "homecal@localhost"
#: the video conferences a link may offer, as people read them
CONFERENCE_NAMES = {"google_meet": "Google Meet", "teams": "Microsoft Teams"}
#: what the visitor reads when the provider made no conference link (failed, or not supported)
NO_VIDEO_LINK = "The host will send the video link."
NO_VIDEO_LINK_HOST = "no link was made; please send the visitor one."


@dataclass(frozen=True)
class Target:
    account: Account
    calendar: Calendar
    delivery: str  # event | invite


def bookings_calendar(store: Store, user_id: int) -> Calendar:
    """The host's own "Bookings" calendar in homecal (made on first use, remembered by id)."""
    key = BOOKINGS_ACCOUNT_META.format(user_id=user_id)
    account_id = store.meta_get(key)
    if account_id:
        try:
            account = accounts.get(store, int(account_id), user_id)
            return accounts.calendars(store, account.id)[0]
        except (NotFound, IndexError):
            pass  # removed by its owner: make a new one
    names = {a.name for a in accounts.all_accounts(store, user_id)}
    name = next(n for n in (BOOKINGS_CALENDAR_NAME, "Bookings (homecal)", *(f"Bookings {i}" for i in range(2, 99)))
                if n not in names)
    account = accounts.add(store, user_id, "local", name, AccessMode.READ_WRITE, {})
    cal = accounts.save_calendars(store, account.id, [CalendarInfo("local", name)])[0]
    store.meta_set(key, str(account.id))
    return cal


def resolve_target(store: Store, user_id: int, calendar_id: int | None) -> Target:
    """Where a booking of this link goes now (the target may have been removed or re-linked)."""
    if calendar_id is not None:
        try:
            cal = accounts.user_calendar(store, calendar_id, user_id)
        except NotFound:
            cal = None
        if cal is not None:
            account = accounts.get(store, cal.account_id)
            if account.mode == AccessMode.READ_WRITE and cal.writable and account.kind != "ics":
                delivery = "event" if account.kind in SCHEDULING_KINDS else "invite"
                return Target(account, cal, delivery)
    cal = bookings_calendar(store, user_id)
    return Target(accounts.get(store, cal.account_id), cal, "invite")


def _gate(config: Config, store: Store, target: Target, tz: tzinfo) -> Gate:
    return Gate(store, make_provider(store, config, target.account, tz), target.account, target.calendar)


def conference_for(row: BookingRow, target: Target) -> str | None:
    """The conference the booking's event asks its provider for: Google Meet in a Google
    calendar, Microsoft Teams in a Microsoft calendar, when the link offered it and the booking
    is an event there. A personal Microsoft account cannot make Teams meetings: Graph leaves the
    event without one, and the booking says the host will send the video link."""
    wanted = row.details.get("conference")
    if target.delivery != "event":
        return None
    if wanted == "google_meet" and target.account.kind == "google":
        return "google_meet"
    if wanted == "teams" and target.account.kind == "microsoft":
        return "teams"
    return None


def _draft(row: BookingRow, target: Target, host_name: str, host_email: str | None, tz: tzinfo) -> Draft:
    d = row.details
    lines = [f"Booked by {d['name']} <{d['email']}> through homecal."]
    lines += [f"{q}: {a}" for q, a in d.get("answer_lines", [])]
    with_people = target.delivery == "event" and host_email
    return Draft(kind="booking", summary=f"{d['title']}: {d['name']}", start=row.start.astimezone(tz),
                 end=row.end.astimezone(tz), description="\n".join(lines), location=d.get("location") or None,
                 private=True, sequence=row.sequence if with_people else 0,
                 organizer=(host_name, host_email) if with_people else None,
                 attendees=((d["name"], d["email"]),) if with_people else (),
                 conference=conference_for(row, target))  # type: ignore[arg-type]


def booking_key(row: BookingRow) -> str:
    return f"booking-{row.uid}"


def write_event(config: Config, store: Store, row: BookingRow, target: Target, tz: tzinfo) -> EventRef:
    """Create (or, for a moved booking, update) the booking's event in the target calendar."""
    host = users.get(store, row.user_id)
    draft = _draft(row, target, host.username, users.email(store, row.user_id), tz)
    gate = _gate(config, store, target, tz)
    try:
        if row.target_id and row.target_calendar_id == target.calendar.id:
            return gate.update(EventRef(target.calendar.remote_id, row.target_id, row.target_etag), draft,
                               booking_key(row))
        return gate.create(draft, booking_key(row))
    finally:
        gate.provider.close()


def delete_event(config: Config, store: Store, row: BookingRow, tz: tzinfo) -> None:
    """Remove the booking's event, if one was written. A failure is logged: the booking is
    cancelled in homecal either way and the host sees the error in the log."""
    if not row.target_id or row.target_calendar_id is None:
        return
    try:
        cal = accounts.calendar(store, row.target_calendar_id)
        account = accounts.get(store, cal.account_id)
        gate = Gate(store, make_provider(store, config, account, tz), account, cal)
        try:
            # a meeting: the provider tells the visitor it is cancelled (Google does)
            gate.delete(EventRef(cal.remote_id, row.target_id, row.target_etag), notify=True)
        finally:
            gate.provider.close()
    except (HomecalError, OSError) as err:
        log.warning("booking %s: its event could not be deleted from calendar %s: %s", row.id,
                    row.target_calendar_id, err)


def refresh_view(config: Config, store: Store, user_id: int, calendar_id: int | None) -> None:
    """Bring the written calendar's mirror up to date so the calendar view shows the booking
    now, not after the next cycle. Best effort: the next cycle does it anyway."""
    if calendar_id is None:
        return
    from daemon.sync.cycle import SYNC_LOCK, engine_for

    if not SYNC_LOCK.acquire(timeout=5):
        return
    try:
        engine_for(store, config).refresh_calendars(user_id, calendar_ids=[calendar_id])
    except HomecalError as err:
        log.info("calendar %s not refreshed after a booking: %s", calendar_id, err)
    finally:
        SYNC_LOCK.release()


# -- mail --------------------------------------------------------------------------------------


def sender(config: Config, store: Store) -> str:
    return effective_smtp(config, store).from_address or FALLBACK_SENDER


def manage_url(config: Config, store: Store, token: str) -> str:
    return f"{effective_public_url(config, store).rstrip('/')}/booking/{token}"


def _when(row: BookingRow, tz: tzinfo) -> str:
    start, end = row.start.astimezone(tz), row.end.astimezone(tz)
    return f"{start:%A %d %B %Y, %H:%M}-{end:%H:%M} ({getattr(tz, 'key', 'UTC')})"


def _visitor_zone(row: BookingRow, host_tz: tzinfo) -> tzinfo:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(row.details.get("timezone") or "UTC")
    except (ValueError, KeyError):
        return host_tz


def queue_mails(config: Config, store: Store, row: BookingRow, delivery: str, event: str, host_tz: tzinfo) -> None:
    """Queue what the visitor and the host are told about `event` (booked | moved | cancelled).

    Call inside the transaction that changed the booking, so state and mail commit together.
    """
    d = row.details
    frm = sender(config, store)
    link = manage_url(config, store, d["token"])
    vtz = _visitor_zone(row, host_tz)
    where = host_where = f"\nWhere: {d['location']}" if d.get("location") else ""
    if event != "cancelled" and d.get("conference") in CONFERENCE_NAMES:
        video = f"\nVideo call ({CONFERENCE_NAMES[d['conference']]}): "
        where += video + (d.get("join_url") or NO_VIDEO_LINK)
        host_where += video + (d.get("join_url") or NO_VIDEO_LINK_HOST)
    verb = {"booked": "is booked", "moved": "has moved", "cancelled": "is cancelled"}[event]
    visitor_text = (f"Hello {d['name']},\n\n{d['title']} with {d['host']} {verb}.\n\n"
                    f"When: {_when(row, vtz)}{where}\n")
    if event != "cancelled":
        visitor_text += f"\nTo reschedule or cancel: {link}\n"
        if d.get("message"):
            visitor_text += f"\n{d['message']}\n"
    prefix = {"booked": "", "moved": "Moved: ", "cancelled": "Cancelled: "}[event]
    subject = f"{prefix}{d['title']} with {d['host']}: {_when(row, vtz)}"
    host_subject = f"{prefix}{d['title']} with {d['name']}: {_when(row, host_tz)}"
    host_email = users.email(store, row.user_id)
    answers = "".join(f"\n{q}: {a}" for q, a in d.get("answer_lines", []))
    host_text = (f"{d['title']} with {d['name']} <{d['email']}> {verb}.\n\n"
                 f"When: {_when(row, host_tz)}{host_where}{answers}\n")
    kind = {"booked": "invite", "moved": "update", "cancelled": "cancel"}[event]
    if delivery == "event":
        # The provider invites the visitor; this mail only carries the management links.
        outbox.enqueue(store, user_id=row.user_id, booking_id=row.id, kind="confirmation", recipient=d["email"],
                       message=invites.plain_mail(recipient=d["email"], sender=frm, subject=subject,
                                                  text=visitor_text))
        return
    method = "CANCEL" if event == "cancelled" else "REQUEST"
    people = ((d["name"], d["email"]),) + (((d["host"], host_email),) if host_email else ())
    invite = invites.Invite(
        uid=row.uid, sequence=row.sequence, start=row.start.astimezone(host_tz), end=row.end.astimezone(host_tz),
        tzid=getattr(host_tz, "key", "UTC"), summary=f"{d['title']}: {d['name']} and {d['host']}",
        organizer_email=frm, organizer_name=f"{d['host']} (homecal)", attendees=people,
        description=f"Booked through homecal.{answers}", location=d.get("location") or "",
        status="CANCELLED" if event == "cancelled" else "CONFIRMED")
    outbox.enqueue(store, user_id=row.user_id, booking_id=row.id, kind=kind, recipient=d["email"],
                   message=invites.invite_mail(invite, method, recipient=d["email"], sender=frm, subject=subject,
                                               text=visitor_text))
    if host_email:
        outbox.enqueue(store, user_id=row.user_id, booking_id=row.id, kind=kind, recipient=host_email,
                       message=invites.invite_mail(invite, method, recipient=host_email, sender=frm,
                                                   subject=host_subject, text=host_text))


def ics(row: BookingRow, host_tz: tzinfo, organizer: str) -> str:
    """The booking as a METHOD:PUBLISH calendar for the visitor's "Add to calendar" download."""
    d = row.details
    invite = invites.Invite(
        uid=row.uid, sequence=row.sequence, start=row.start.astimezone(host_tz), end=row.end.astimezone(host_tz),
        tzid=getattr(host_tz, "key", "UTC"), summary=f"{d['title']} with {d['host']}", organizer_email=organizer,
        organizer_name=d["host"], attendees=((d["name"], d["email"]),),
        location=d.get("location") or d.get("join_url") or "",
        status="CANCELLED" if row.status == "cancelled" else "CONFIRMED")
    return invites.itip(invite, "PUBLISH")

