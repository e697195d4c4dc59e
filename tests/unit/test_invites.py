"""daemon.booking.invites: the iTIP text and the iMIP mail a booking sends, parsed back the
way a receiving calendar would (icalendar, and the email package on the bytes as sent).

What matters to a user: Gmail and Outlook show Accept/Decline (METHOD matches the part's
method, ORGANIZER is mailto: and the From address, the recipient is an RSVP attendee), the
time is the same instant everywhere (TZID with a matching VTIMEZONE, also across a DST
change), an update or cancel replaces the original (same UID, the given SEQUENCE), and a
visitor's text cannot add a header or a recipient.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.booking.invites import Invite, invite_mail, itip, plain_mail
from daemon.errors import UsageError

BERLIN = ZoneInfo("Europe/Berlin")
SENDER = "homecal@example.org"


def _invite(**changes: object) -> Invite:
    base = Invite(
        uid="b-4711@homecal", sequence=0,
        start=datetime(2026, 3, 27, 10, 0, tzinfo=BERLIN), end=datetime(2026, 3, 27, 10, 30, tzinfo=BERLIN),
        tzid="Europe/Berlin", summary="Intro call: Jürgen and Ada", organizer_email=SENDER,
        organizer_name="Ada Host (homecal)",
        attendees=(("Jürgen Visitor", "juergen@example.net"), ("Ada Host", "ada@example.org")),
        description="Booked through homecal.\nQuestion: answer", location="Room 1, Main St. 5")
    return replace(base, **changes)


def _event(text: str) -> tuple[icalendar.Calendar, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(text)
    [event] = cal.walk("VEVENT")
    return cal, event


def _received(message: EmailMessage) -> EmailMessage:
    """The message as an SMTP server would hand it on: bytes, parsed again."""
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def _tree(message: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


def _utc_via_vtimezone(cal: icalendar.Calendar, prop: icalendar.prop.vDDDTypes) -> datetime:
    """The UTC instant of a TZID time computed from the VTIMEZONE in the file alone, not
    from this machine's zone database: what a client without an IANA database does."""
    tzid = prop.params["TZID"]
    [vtz] = [tz for tz in cal.walk("VTIMEZONE") if tz["TZID"] == tzid]
    zone = vtz.to_tz(lookup_tzid=False)
    return prop.dt.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC)


# -- iTIP text ----------------------------------------------------------------------------


def test_a_request_has_what_calendars_need_to_offer_accept_and_decline() -> None:
    cal, event = _event(itip(_invite(sequence=2), "REQUEST"))
    assert cal["METHOD"] == "REQUEST"
    assert event["UID"] == "b-4711@homecal"
    assert event["SEQUENCE"] == 2
    assert isinstance(event["DTSTAMP"].dt, datetime) and event["DTSTAMP"].dt.tzinfo is not None
    assert event["STATUS"] == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Intro call: Jürgen and Ada"
    assert str(event["DESCRIPTION"]) == "Booked through homecal.\nQuestion: answer"
    assert str(event["LOCATION"]) == "Room 1, Main St. 5"
    organizer = event["ORGANIZER"]
    assert str(organizer) == f"mailto:{SENDER}"
    assert organizer.params["CN"] == "Ada Host (homecal)"
    attendees = event["ATTENDEE"]
    assert [str(a) for a in attendees] == ["mailto:juergen@example.net", "mailto:ada@example.org"]
    for attendee, name in zip(attendees, ("Jürgen Visitor", "Ada Host"), strict=True):
        assert dict(attendee.params) == {"CN": name, "CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT",
                                         "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}


def test_times_carry_the_hosts_zone_with_a_matching_vtimezone() -> None:
    text = itip(_invite(), "REQUEST")
    cal, event = _event(text)
    assert "DTSTART;TZID=Europe/Berlin:20260327T100000" in text
    assert "DTEND;TZID=Europe/Berlin:20260327T103000" in text
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")  # before its first use
    assert cal.get_missing_tzids() == set()
    assert _utc_via_vtimezone(cal, event["DTSTART"]) == datetime(2026, 3, 27, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("day", "utc_hour"), [
    (27, 9),  # Friday: still CET, UTC+1
    (29, 8),  # Sunday: the clocks went forward at 02:00, CEST, UTC+2
    (30, 8),  # Monday after
])
def test_a_booking_in_the_week_summer_time_starts_is_at_the_right_instant(day: int, utc_hour: int) -> None:
    start = datetime(2026, 3, day, 10, 0, tzinfo=BERLIN)
    cal, event = _event(itip(_invite(start=start, end=start + timedelta(hours=1)), "REQUEST"))
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    expected = datetime(2026, 3, day, utc_hour, 0, tzinfo=UTC)
    assert _utc_via_vtimezone(cal, event["DTSTART"]) == expected
    assert event["DTSTART"].dt.astimezone(UTC) == expected
    assert _utc_via_vtimezone(cal, event["DTEND"]) == expected + timedelta(hours=1)


def test_a_booking_across_the_autumn_change_keeps_its_length() -> None:
    # 25 Oct 2026, 02:30 CEST -> 02:30 CET happens twice; a 01:30-03:30 booking is 3 hours long.
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    cal, event = _event(itip(_invite(start=start, end=start + timedelta(hours=3)), "REQUEST"))
    assert _utc_via_vtimezone(cal, event["DTSTART"]) == start
    assert _utc_via_vtimezone(cal, event["DTEND"]) == start + timedelta(hours=3)


def test_times_given_in_utc_are_written_on_the_hosts_wall_clock() -> None:
    start = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    text = itip(_invite(start=start, end=start + timedelta(minutes=45)), "REQUEST")
    assert "DTSTART;TZID=Europe/Berlin:20260701T090000" in text
    assert "DTEND;TZID=Europe/Berlin:20260701T094500" in text


def test_an_unknown_zone_falls_back_to_utc_without_a_dangling_tzid() -> None:
    start = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    text = itip(_invite(tzid="Mars/Olympus", start=start, end=start + timedelta(hours=1)), "REQUEST")
    cal, event = _event(text)
    assert "DTSTART:20260701T070000Z" in text
    assert "TZID" not in text and not cal.walk("VTIMEZONE")


def test_a_cancel_keeps_the_uid_with_the_sequence_given_and_status_cancelled() -> None:
    cal, event = _event(itip(_invite(sequence=3), "CANCEL"))
    assert cal["METHOD"] == "CANCEL"
    assert event["UID"] == "b-4711@homecal"
    assert event["SEQUENCE"] == 3
    assert event["STATUS"] == "CANCELLED"
    assert [str(a) for a in event["ATTENDEE"]] == ["mailto:juergen@example.net", "mailto:ada@example.org"]
    assert str(event["ORGANIZER"]) == f"mailto:{SENDER}"


def test_publish_for_the_download_has_no_attendees_to_answer() -> None:
    cal, event = _event(itip(_invite(), "PUBLISH"))
    assert cal["METHOD"] == "PUBLISH"
    assert "ATTENDEE" not in event
    assert str(event["ORGANIZER"]) == f"mailto:{SENDER}"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin" and cal.walk("VTIMEZONE")


def test_visitor_text_with_line_breaks_cannot_add_properties_or_parameters() -> None:
    evil_name = 'Eve"\r\nATTENDEE:mailto:mallory@example.com;X=1:'
    text = itip(_invite(summary="Hi\r\nATTENDEE:mailto:mallory@example.com",
                        attendees=((evil_name, "eve@example.net"),)), "REQUEST")
    cal, event = _event(text)
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:eve@example.net"  # still exactly one attendee
    # the name stays inside its quoted parameter, on one line, without the quote that would end it
    assert attendee.params["CN"] == "Eve ATTENDEE:mailto:mallory@example.com;X=1:"
    assert "X" not in attendee.params
    assert str(event["SUMMARY"]) == "Hi\nATTENDEE:mailto:mallory@example.com"  # kept as text, escaped


def test_an_invite_must_end_after_it_starts_and_have_real_addresses() -> None:
    with pytest.raises(ValueError, match="end after"):
        itip(_invite(end=datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN)), "REQUEST")
    with pytest.raises(UsageError):
        itip(_invite(attendees=(("X", "x@example.org>\r\nBcc: y@example.org"),)), "REQUEST")


# -- iMIP mail ----------------------------------------------------------------------------


def _mail(method: str = "REQUEST", **invite_changes: object) -> EmailMessage:
    return _received(invite_mail(_invite(**invite_changes), method, recipient="juergen@example.net",  # type: ignore[arg-type]
                                 sender=SENDER, subject="Intro call with Ada: Friday 27 March, 10:00",
                                 text="Hello Jürgen,\n\nyour call is booked.\n"))


def test_the_mail_has_the_part_tree_gmail_and_outlook_recognise() -> None:
    message = _mail()
    assert _tree(message) == ["multipart/mixed", "multipart/alternative", "text/plain", "text/calendar",
                              "application/ics"]
    alternative = next(message.iter_parts())
    plain, calendar = alternative.iter_parts()
    assert plain.get_content() == "Hello Jürgen,\n\nyour call is booked.\n"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_param("name") == "invite.ics"
    assert attachment.get_content().decode() == calendar.get_content()  # the same calendar twice


def test_the_calendar_part_matches_its_method_and_keeps_crlf_lines() -> None:
    message = _mail()
    calendar = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    body = calendar.get_content()
    assert body.endswith("END:VCALENDAR\r\n") and "\n" not in body.replace("\r\n", "")
    cal, event = _event(body)
    assert cal["METHOD"] == calendar.get_param("method") == "REQUEST"
    assert event["UID"] == "b-4711@homecal"


def test_from_is_the_organizer_and_to_is_an_rsvp_attendee() -> None:
    message = _mail()
    assert message["From"] == SENDER
    assert message["To"] == "juergen@example.net"
    assert message["Subject"] == "Intro call with Ada: Friday 27 March, 10:00"
    assert message["Message-ID"] and message["Date"]
    calendar = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    _, event = _event(calendar.get_content())
    assert str(event["ORGANIZER"]) == f"mailto:{message['From']}"
    [me] = [a for a in event["ATTENDEE"] if str(a) == f"mailto:{message['To']}"]
    assert me.params["RSVP"] == "TRUE"


def test_a_cancel_mail_says_cancel_in_the_part_and_the_body() -> None:
    message = _mail("CANCEL", sequence=1, status="CANCELLED")
    calendar = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "CANCEL"
    cal, event = _event(calendar.get_content())
    assert cal["METHOD"] == "CANCEL" and event["SEQUENCE"] == 1 and event["STATUS"] == "CANCELLED"
    assert [a.get_filename() for a in message.iter_attachments()] == ["cancel.ics"]


def test_a_subject_with_line_breaks_stays_one_header() -> None:
    raw = invite_mail(_invite(), "REQUEST", recipient="juergen@example.net", sender=SENDER,
                      subject="Hi\r\nBcc: mallory@example.com\nX-Evil: 1", text="x").as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == "Hi Bcc: mallory@example.com X-Evil: 1"
    assert message.get_all("To") == ["juergen@example.net"]


def test_a_recipient_or_sender_that_is_not_one_address_is_refused() -> None:
    with pytest.raises(UsageError):
        invite_mail(_invite(), "REQUEST", recipient="a@example.org, b@example.org", sender=SENDER, subject="s",
                    text="t")
    with pytest.raises(UsageError):
        plain_mail(recipient="a@example.org\r\nBcc: b@example.org", sender=SENDER, subject="s", text="t")


def test_an_invite_from_another_address_than_its_organizer_is_refused() -> None:
    with pytest.raises(ValueError, match="ORGANIZER"):
        invite_mail(_invite(), "REQUEST", recipient="juergen@example.net", sender="other@example.org",
                    subject="s", text="t")


def test_a_plain_mail_is_text_only() -> None:
    message = _received(plain_mail(recipient="juergen@example.net", sender=SENDER, subject="Booked: Friday",
                                   text="See you then.\nManage: https://cal.example.org/booking/abc\n"))
    assert _tree(message) == ["text/plain"]
    assert message["From"] == SENDER and message["To"] == "juergen@example.net"
    assert message["Subject"] == "Booked: Friday"
    assert "https://cal.example.org/booking/abc" in message.get_content()
