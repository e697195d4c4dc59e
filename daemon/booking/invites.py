"""The invitations a booking mails: iTIP calendar text (RFC 5546) and iMIP messages (RFC 6047).

Pure builders, no I/O. `itip` writes the VCALENDAR (REQUEST for an invite or an update,
CANCEL, PUBLISH for the .ics download on the confirmation page); `invite_mail` wraps it in
the part tree Gmail and Outlook render with Accept/Decline buttons (provider-facts.md 4.3):

    multipart/mixed
      multipart/alternative
        text/plain
        text/calendar; method=REQUEST; charset=UTF-8
      application/ics; name=invite.ics

Names, summaries and subjects come from visitors. Anything that goes into a mail header has
its line breaks and control characters removed (a newline there would add a header or a
recipient); in the calendar body icalendar's own escaping keeps a newline inside its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from daemon.ical import PRODID, with_zones
from daemon.mail import validate_address

Method = Literal["REQUEST", "CANCEL", "PUBLISH"]
MailMethod = Literal["REQUEST", "CANCEL"]

#: longest summary, name or subject put into a header or a parameter; the rest is cut
MAX_HEADER_TEXT = 200
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


@dataclass(frozen=True)
class Invite:
    """Everything about one booking that an invitation carries."""

    uid: str
    sequence: int
    start: datetime  # aware
    end: datetime  # aware
    tzid: str  # the host's IANA zone: DTSTART/DTEND are written with TZID + a VTIMEZONE
    summary: str
    organizer_email: str  # ORGANIZER (mailto:), the configured SMTP sender
    organizer_name: str
    attendees: tuple[tuple[str, str], ...]  # (name, email): the visitor and the host
    description: str = ""
    location: str = ""
    status: str = "CONFIRMED"  # CONFIRMED or CANCELLED


def one_line(text: str, limit: int = MAX_HEADER_TEXT) -> str:
    """`text` safe for a mail header or an iCalendar parameter: control characters (CR and LF
    above all) become one space, the result is trimmed and cut to `limit` characters."""
    return _CONTROL_RE.sub(" ", text or "").strip()[:limit].strip()


def _param_text(text: str) -> str:
    # A double quote cannot appear inside a quoted iCalendar parameter value (RFC 5545 3.1);
    # dropping it is kinder than the RFC 6868 escape few clients decode.
    return one_line(text).replace('"', "")


def _zone(tzid: str):  # noqa: ANN202 - a tzinfo
    """The host's zone, or UTC when the name is not a zone this machine knows."""
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _address(name: str, email: str) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{validate_address(email)}")
    cn = _param_text(name)
    if cn:
        address.params["CN"] = cn
    return address


def _event(invite: Invite, method: Method) -> icalendar.Event:
    if invite.end <= invite.start:
        raise ValueError("an invite must end after it starts")
    if invite.start.tzinfo is None or invite.end.tzinfo is None:
        raise ValueError("an invite needs aware start and end times")
    zone = _zone(invite.tzid)
    event = icalendar.Event()
    event.add("UID", invite.uid)
    event.add("DTSTAMP", datetime.now(UTC).replace(microsecond=0))
    # Written in the host's zone: the time a person reads in the raw text is the host's
    # wall clock, and the VTIMEZONE makes it the same instant for every receiver.
    event.add("DTSTART", invite.start.astimezone(zone).replace(microsecond=0))
    event.add("DTEND", invite.end.astimezone(zone).replace(microsecond=0))
    event.add("SEQUENCE", invite.sequence)
    event.add("SUMMARY", invite.summary)
    if invite.description:
        event.add("DESCRIPTION", invite.description)
    if invite.location:
        event.add("LOCATION", invite.location)
    event.add("STATUS", "CANCELLED" if method == "CANCEL" else invite.status)
    event.add("TRANSP", "OPAQUE")
    if invite.organizer_email.strip() or method != "PUBLISH":  # a download needs no organizer
        event.add("ORGANIZER", _address(invite.organizer_name, invite.organizer_email))
    if method != "PUBLISH":  # RFC 5546 3.2.1: a PUBLISH has no attendees to answer
        for name, email in invite.attendees:
            attendee = _address(name, email)
            attendee.params.update({"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT",
                                    "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"})
            event.add("ATTENDEE", attendee)
    return event


def itip(invite: Invite, method: Method) -> str:
    """The iCalendar text for `method`. A CANCEL carries the sequence it is given (the caller
    passes it already incremented) and STATUS:CANCELLED; a PUBLISH has no attendees."""
    if method not in ("REQUEST", "CANCEL", "PUBLISH"):
        raise ValueError(f"unsupported iTIP method {method!r}")
    event = _event(invite, method)
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("METHOD", method)
    cal.add_component(event)
    return with_zones(cal, invite.start.astimezone(_zone(invite.tzid)).year)


def _headers(message: EmailMessage, *, recipient: str, sender: str, subject: str) -> None:
    sender = validate_address(sender)
    message["From"] = sender
    message["To"] = validate_address(recipient)
    message["Subject"] = one_line(subject)
    message["Date"] = formatdate(usegmt=True)
    # Set now, not at sending time: a retry after a crash between "accepted" and "marked
    # sent" carries the same Message-ID, so receivers can drop the duplicate.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])


def invite_mail(invite: Invite, method: MailMethod, *, recipient: str, sender: str, subject: str,
                text: str) -> EmailMessage:
    """The iMIP message for one recipient. From is `sender`, which must be the ORGANIZER's
    address: receivers treat a mismatch as spoofing and drop the RSVP buttons."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"an iMIP message is a REQUEST or a CANCEL, not {method!r}")
    if validate_address(sender).lower() != invite.organizer_email.strip().lower():
        raise ValueError("the sender of an invite must be its ORGANIZER")
    calendar = itip(invite, method)
    message = EmailMessage()
    _headers(message, recipient=recipient, sender=sender, subject=subject)
    message.set_content(text)
    # The method parameter must equal the body's METHOD (the text/calendar registration).
    # Given as bytes so the part keeps the CRLF line ends RFC 5545 asks for (as text, the
    # email package would rewrite them to LF before encoding).
    message.add_alternative(calendar.encode("utf-8"), maintype="text", subtype="calendar",
                            params={"method": method, "charset": "UTF-8"})
    filename = "cancel.ics" if method == "CANCEL" else "invite.ics"
    message.add_attachment(calendar.encode("utf-8"), maintype="application", subtype="ics",
                           filename=filename, params={"name": filename})
    return message


def plain_mail(*, recipient: str, sender: str, subject: str, text: str) -> EmailMessage:
    """A text-only mail, e.g. the confirmation a visitor gets when the provider itself sends
    the invitation."""
    message = EmailMessage()
    _headers(message, recipient=recipient, sender=sender, subject=subject)
    message.set_content(text)
    return message
