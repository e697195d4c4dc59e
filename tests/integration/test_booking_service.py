"""Bookings end to end through the service, on real SQLite files and a real Radicale.

What a host and a visitor would notice: a booking blocks its slot at once, shows in the
host's calendar, mails the right invitations (read through the outbox), moves with a higher
SEQUENCE and cancels; a read-write CalDAV target gets an event with the visitor as attendee;
busy time from a CalDAV calendar (recurring, transparent, changed since the last sync)
decides what is offered; an unreadable conflict calendar fails closed; and 50 visitors
racing for one slot produce exactly one booking.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email import message_from_string, policy
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.booking import service
from daemon.booking.link_settings import LinkSettings
from daemon.linking import caldav_secret, link
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts, booking_links, mirror, users
from daemon.sync.cycle import engine_for
from tests.conftest import free_port
from tests.servers import RadicaleServer

BERLIN = ZoneInfo("Europe/Berlin")
# A Saturday noon; the first weekday slots are Monday 23 November, 09:00 Berlin (08:00 UTC).
NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
MONDAY_9 = datetime(2026, 11, 23, 9, tzinfo=BERLIN)


@pytest.fixture
def host(store):
    user = users.create(store, "ann", "correct horse battery", is_admin=True)
    users.set_timezone(store, user.id, "Europe/Berlin")
    users.set_email(store, user.id, "ann@example.org")
    return user


def local_calendar(store, user_id: int, name: str = "home"):
    acc = accounts.add(store, user_id, "local", name, AccessMode.READ_WRITE, {})
    return accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0]


def make_link(store, user_id: int, **settings) -> booking_links.BookingLink:
    return booking_links.create(store, user_id, LinkSettings(title="Intro call", **settings), slug="intro")


def visitor(link, name: str = "Bob", email: str = "bob@example.org"):
    return service.validate_visitor(link, name=name, email=email, timezone="America/New_York", answers={})


def refresh(store, config, user_id: int) -> None:
    assert engine_for(store, config).refresh_calendars(user_id) == 0


def starts(slots) -> list[datetime]:
    return [s.start for s in slots]


def parsed(entry_message: str) -> icalendar.Calendar:
    msg = message_from_string(entry_message, policy=policy.default)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    return icalendar.Calendar.from_ical(part.get_content())


def outbox_messages(store, user_id: int) -> list[tuple[str, str, str]]:
    """(kind, recipient, message text) of every queued mail, oldest first."""
    rows = store.db.execute("SELECT id, kind, recipient_sealed, message_sealed FROM outbox WHERE user_id = ? "
                            "ORDER BY id", [user_id]).fetchall()
    return [(kind, store.unseal("outbox", "recipient_sealed", i, r), store.unseal("outbox", "message_sealed", i, m))
            for i, kind, r, m in rows]


# -- no provider write: homecal's own calendar and emailed invitations ----------------------------


def test_a_booking_blocks_its_slot_shows_in_the_calendar_and_invites_both_people(store, config, host):
    home = local_calendar(store, host.id)
    link = make_link(store, host.id, conflict_calendar_ids=(home.id,))
    refresh(store, config, host.id)
    offered = service.offered_slots(config, store, link, duration=30, now=NOW)
    assert offered[0].start == MONDAY_9

    result = service.book(config, store, link, duration=30, start=MONDAY_9, visitor=visitor(link), now=NOW)

    assert result.booking.status == "confirmed" and result.booking.delivery == "invite"
    assert MONDAY_9 not in starts(service.offered_slots(config, store, link, duration=30, now=NOW))
    # the host's calendar view reads the mirror: the booking is there already
    cal_id = result.booking.target_calendar_id
    shown = mirror.instances_between(store, [cal_id], MONDAY_9, MONDAY_9 + timedelta(hours=1))
    assert [e.instance.summary for e in shown] == ["Intro call: Bob"]
    assert accounts.calendar(store, cal_id).name == "Bookings"
    mails = outbox_messages(store, host.id)
    assert sorted(r for _, r, _ in mails) == ["ann@example.org", "bob@example.org"]
    for kind, recipient, text in mails:
        cal = parsed(text)
        event = cal.walk("VEVENT")[0]
        assert kind == "invite" and str(cal["METHOD"]) == "REQUEST"
        assert str(event["UID"]) == result.booking.uid and int(event["SEQUENCE"]) == 0
        assert event["DTSTART"].dt == MONDAY_9 and event["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert cal.walk("VTIMEZONE")[0]["TZID"] == "Europe/Berlin"
        assert str(event["ORGANIZER"]).lower() == "mailto:homecal@localhost"  # no sender configured yet
        assert f"mailto:{recipient}" in [str(a) for a in event.get("ATTENDEE")]
    visitor_mail = message_from_string(next(t for _, r, t in mails if r == "bob@example.org"), policy=policy.default)
    assert f"/booking/{result.token}" in visitor_mail.get_body(("plain",)).get_content()


def test_the_visitor_moves_then_cancels_and_each_mail_has_a_higher_sequence(store, config, host):
    link = make_link(store, host.id)
    result = service.book(config, store, link, duration=30, start=MONDAY_9, visitor=visitor(link), now=NOW)
    later = MONDAY_9 + timedelta(hours=2)

    moved = service.reschedule(config, store, result.token, start=later, now=NOW)
    assert moved.start == later and moved.sequence == 1
    offered = starts(service.offered_slots(config, store, link, duration=30, now=NOW))
    assert MONDAY_9 in offered and later not in offered

    cancelled = service.cancel_by_token(config, store, result.token, now=NOW)
    assert cancelled.status == "cancelled" and cancelled.sequence == 2 and cancelled.cancelled_by == "visitor"
    assert later in starts(service.offered_slots(config, store, link, duration=30, now=NOW))
    # pressing cancel again changes nothing and sends nothing more
    before = len(outbox_messages(store, host.id))
    assert service.cancel_by_token(config, store, result.token, now=NOW).sequence == 2
    assert len(outbox_messages(store, host.id)) == before

    to_bob = [parsed(t) for _, r, t in outbox_messages(store, host.id) if r == "bob@example.org"]
    assert [(str(c["METHOD"]), int(c.walk("VEVENT")[0]["SEQUENCE"])) for c in to_bob] == \
        [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]
    assert {str(c.walk("VEVENT")[0]["UID"]) for c in to_bob} == {result.booking.uid}
    assert str(to_bob[2].walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    # the event in homecal's calendar is gone too
    cal_id = result.booking.target_calendar_id
    assert mirror.instances_between(store, [cal_id], MONDAY_9, MONDAY_9 + timedelta(days=1)) == []


def test_the_host_cancels_from_homecal_and_another_users_booking_is_out_of_reach(store, config, host):
    link = make_link(store, host.id)
    result = service.book(config, store, link, duration=30, start=MONDAY_9, visitor=visitor(link), now=NOW)
    other = users.create(store, "eve", "correct horse battery")
    with pytest.raises(service.NotFound):
        service.cancel_by_host(config, store, result.booking.id, other.id, now=NOW)
    assert service.booking_by_token(store, result.token).status == "confirmed"
    done = service.cancel_by_host(config, store, result.booking.id, host.id, now=NOW)
    assert done.status == "cancelled" and done.cancelled_by == "host"
    assert service.bookings_for_user(store, host.id, now=NOW) == []
    assert [b.status for b in service.bookings_for_user(store, host.id, upcoming_only=False, now=NOW)] == \
        ["cancelled"]


def test_visitor_details_are_sealed_and_the_token_is_not_stored(store, config, host):
    link = make_link(store, host.id)
    result = service.book(config, store, link, duration=30, start=MONDAY_9,
                          visitor=visitor(link, name="Zebulon Quux", email="zq@example.org"), now=NOW)
    store.checkpoint()
    data = config.storage.db_path.read_bytes()
    for secret in (b"Zebulon", b"zq@example.org", result.token.encode()):
        assert secret not in data


def test_the_daily_limit_and_the_buffers_apply_to_later_visitors(store, config, host):
    link = make_link(store, host.id, daily_limit=1, buffer_after=30, durations=(30,))
    service.book(config, store, link, duration=30, start=MONDAY_9, visitor=visitor(link), now=NOW)
    offered = starts(service.offered_slots(config, store, link, duration=30, now=NOW))
    assert all(s.astimezone(BERLIN).date() != MONDAY_9.date() for s in offered)
    other = booking_links.create(store, host.id, LinkSettings(title="Other", buffer_before=30), slug="other")
    near = starts(service.offered_slots(config, store, other, duration=30, now=NOW))
    # 09:00-09:30 is booked: with 30 minutes before, 10:00 is the first free start that day
    assert [s.astimezone(BERLIN).strftime("%H:%M") for s in near if s.date() == MONDAY_9.date()][:1] == ["10:00"]


def test_bad_visitor_input_names_every_field(store, host):
    link = booking_links.create(store, host.id, LinkSettings(
        title="Intro", questions=({"id": "q1", "label": "Topic", "required": True},)), slug="q")
    with pytest.raises(service.VisitorError) as err:
        service.validate_visitor(link, name="", email="not an address", timezone="Mars/Base", answers={})
    assert set(err.value.problems) == {"name", "email", "timezone", "q1"}


# -- 50 visitors, one slot ------------------------------------------------------------------


def test_fifty_concurrent_bookings_of_one_slot_make_exactly_one_booking(store, config, host):
    home = local_calendar(store, host.id)
    link = make_link(store, host.id, conflict_calendar_ids=(home.id,))
    refresh(store, config, host.id)
    results: list[object] = []
    gate = threading.Barrier(50)

    def attempt(i: int) -> None:
        v = visitor(link, name=f"Visitor {i}", email=f"v{i}@example.org")
        gate.wait()
        try:
            results.append(service.book(config, store, link, duration=30, start=MONDAY_9, visitor=v, now=NOW))
        except service.SlotTaken as err:
            results.append(err)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [r for r in results if isinstance(r, service.BookingResult)]
    lost = [r for r in results if isinstance(r, service.SlotTaken)]
    assert len(won) == 1 and len(lost) == 49, results
    assert all(str(e) == service.TAKEN for e in lost)
    rows = store.db.execute("SELECT count(*) FROM bookings WHERE status = 'confirmed'").fetchone()[0]
    assert rows == 1
    assert MONDAY_9 not in starts(service.offered_slots(config, store, link, duration=30, now=NOW))
    assert len(outbox_messages(store, host.id)) == 2  # one invitation each to the winner and the host


# -- CalDAV on Radicale: conflicts, fail closed, read-write target --------------------------------


def vevent(uid: str, start: datetime, end: datetime, extra: str = "") -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Dentist\r\n"
            f"DTSTART:{start.astimezone(timezone.utc):{fmt}}\r\nDTEND:{end.astimezone(timezone.utc):{fmt}}\r\n"
            f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")


@pytest.fixture
def dav(radicale, store, config, host):
    """A Radicale user with calendar `work`, linked read-write in homecal and read once."""
    user = radicale.new_user("book")
    url = radicale.make_calendar(user, "work")
    account, cals = link(store, config, host.id, "caldav", "work", AccessMode.READ_WRITE,
                         caldav_secret(url, user, radicale.password(user), ["ann@example.org"]))

    class Dav:
        pass

    d = Dav()
    d.user, d.url, d.account, d.calendar = user, url, account, cals[0]
    d.put = lambda name, text: radicale.put(user, url + name, text)
    d.session = radicale.session(user)
    refresh(store, config, host.id)
    return d


def now_in_window() -> datetime:
    # CalDAV reads go through the real sync window (around the real clock), so these
    # tests book in the coming days rather than on a fixed date.
    return datetime.now(timezone.utc).replace(microsecond=0)


def test_caldav_busy_time_recurring_and_transparent_events_decide_the_slots(store, config, host, dav):
    now = now_in_window()
    link = booking_links.create(store, host.id, LinkSettings(
        title="Call", conflict_calendar_ids=(dav.calendar.id,), min_notice=0, rolling_days=14,
        weekly_hours={d: (("00:00", "24:00"),) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}),
        slug="call")
    day = (now + timedelta(days=2)).astimezone(BERLIN).replace(hour=10, minute=0, second=0)
    dav.put("weekly.ics", vevent("weekly", day, day + timedelta(hours=1), "RRULE:FREQ=DAILY;COUNT=3\r\n"))
    dav.put("free.ics", vevent("free", day + timedelta(hours=3), day + timedelta(hours=4), "TRANSP:TRANSPARENT\r\n"))
    refresh(store, config, host.id)
    offered = starts(service.offered_slots(config, store, link, duration=30, now=now))
    for n in range(3):  # every occurrence blocks, not only the first
        assert day + timedelta(days=n) not in offered
        assert day + timedelta(days=n, minutes=30) not in offered
    assert day + timedelta(days=3) in offered
    assert day + timedelta(hours=3) in offered  # transparent: free


def test_a_change_made_since_the_last_sync_is_caught_at_booking_time(store, config, host, dav):
    now = now_in_window()
    link = booking_links.create(store, host.id, LinkSettings(
        title="Call", conflict_calendar_ids=(dav.calendar.id,), min_notice=0,
        weekly_hours={d: (("00:00", "24:00"),) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}),
        slug="call")
    slot = service.offered_slots(config, store, link, duration=30, now=now)[10].start
    dav.put("new.ics", vevent("new", slot, slot + timedelta(minutes=30)))  # no sync in between
    with pytest.raises(service.SlotTaken):
        service.book(config, store, link, duration=30, start=slot, visitor=visitor(link), now=now)
    assert slot not in starts(service.offered_slots(config, store, link, duration=30, now=now))


def test_an_unreadable_conflict_calendar_makes_the_link_unavailable_not_wrong(store, config, host, tmp_path):
    now = now_in_window()
    server = RadicaleServer(tmp_path / "radicale").start()  # its own server: this test stops it
    try:
        user = server.new_user("down")
        url = server.make_calendar(user, "work")
        _, cals = link(store, config, host.id, "caldav", "work", AccessMode.READ_WRITE,
                       caldav_secret(url, user, server.password(user)))
        refresh(store, config, host.id)
        link_ = booking_links.create(store, host.id, LinkSettings(
            title="Call", conflict_calendar_ids=(cals[0].id,), min_notice=0), slug="call")
        slot = service.offered_slots(config, store, link_, duration=30, now=now)[0].start
    finally:
        server.stop()
    with pytest.raises(service.BookingUnavailable):
        service.book(config, store, link_, duration=30, start=slot, visitor=visitor(link_), now=now)
    assert store.db.execute("SELECT count(*) FROM bookings").fetchone()[0] == 0
    # the failed read is recorded: the page now says unavailable instead of offering times
    with pytest.raises(service.BookingUnavailable):
        service.offered_slots(config, store, link_, duration=30, now=now)


def test_a_conflict_account_that_needs_relinking_makes_the_link_unavailable(store, config, host, dav):
    link_ = booking_links.create(store, host.id, LinkSettings(
        title="Call", conflict_calendar_ids=(dav.calendar.id,)), slug="call")
    assert service.offered_slots(config, store, link_, duration=30, now=now_in_window())
    accounts.record_failure(store, dav.account.id, "token expired", status="needs-relink")
    with pytest.raises(service.BookingUnavailable):
        service.offered_slots(config, store, link_, duration=30, now=now_in_window())


def test_a_read_write_caldav_target_gets_an_event_with_the_visitor_as_attendee(store, config, host, dav):
    now = now_in_window()
    link = booking_links.create(store, host.id, LinkSettings(
        title="Call", conflict_calendar_ids=(dav.calendar.id,), target_calendar_id=dav.calendar.id, min_notice=0,
        weekly_hours={d: (("00:00", "24:00"),) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}),
        slug="call")
    slots = service.offered_slots(config, store, link, duration=30, now=now)
    result = service.book(config, store, link, duration=30, start=slots[4].start, visitor=visitor(link), now=now)
    assert result.booking.delivery == "event"

    def server_events() -> list[icalendar.Event]:
        # Radicale answers a GET of the collection with every event in one calendar
        answer = dav.session.get(dav.url)
        assert answer.status_code == 200
        return icalendar.Calendar.from_ical(answer.content).walk("VEVENT")

    [event] = server_events()
    assert event["DTSTART"].dt == slots[4].start
    assert str(event["ORGANIZER"]) == "mailto:ann@example.org"
    assert [str(a) for a in [event["ATTENDEE"]]] == ["mailto:bob@example.org"]
    assert event["ATTENDEE"].params["RSVP"] == "TRUE"
    # the provider invites; the visitor's mail from homecal is a plain confirmation with the links
    [(kind, recipient, text)] = outbox_messages(store, host.id)
    assert kind == "confirmation" and recipient == "bob@example.org" and "text/calendar" not in text
    # the booking's own event does not block other slots twice, and its slot is gone
    refresh(store, config, host.id)
    assert slots[4].start not in starts(service.offered_slots(config, store, link, duration=30, now=now))

    service.reschedule(config, store, result.token, start=slots[8].start, now=now)
    [event] = server_events()
    assert event["DTSTART"].dt == slots[8].start and int(event["SEQUENCE"]) == 1
    service.cancel_by_token(config, store, result.token, now=now)
    assert server_events() == []


def test_no_access_conflict_calendars_are_never_read(store, config, host, radicale):
    user = radicale.new_user("na")
    url = radicale.make_calendar(user, "private")
    account, cals = link(store, config, host.id, "caldav", "private", AccessMode.NO_ACCESS,
                         caldav_secret(url, user, radicale.password(user)))
    link_ = booking_links.create(store, host.id, LinkSettings(title="Call", conflict_calendar_ids=(cals[0].id,)),
                                 slug="call")
    # nothing may be asked of the server: point the account where nobody answers
    accounts.set_secret(store, account.id, caldav_secret(f"http://127.0.0.1:{free_port()}/", user, "x"))
    offered = service.offered_slots(config, store, link_, duration=30, now=NOW)
    assert offered and offered[0].start == MONDAY_9
    result = service.book(config, store, link_, duration=30, start=MONDAY_9, visitor=visitor(link_), now=NOW)
    assert result.booking.delivery == "invite"


# -- the mail that arrives ----------------------------------------------------------------------


def test_the_invitations_reach_a_real_smtp_server_as_imip_and_the_cancel_follows(store, config, host, smtp_sink):
    from daemon.booking.outbox_job import deliver_due
    from daemon.config import with_overrides

    config = with_overrides(config, smtp=smtp_sink.config_smtp("bookings@example.org"))
    link = make_link(store, host.id)
    result = service.book(config, store, link, duration=30, start=MONDAY_9, visitor=visitor(link), now=NOW)
    deliver_due(config, store)
    mails = smtp_sink.wait_for(2)
    assert sorted(r for m in mails for r in m.rcpt_tos) == ["ann@example.org", "bob@example.org"]
    for mail in mails:
        msg = mail.message
        assert msg["From"] == "bookings@example.org"
        # multipart/mixed > multipart/alternative > (text/plain, text/calendar) + application/ics
        assert [p.get_content_type() for p in msg.walk()] == [
            "multipart/mixed", "multipart/alternative", "text/plain", "text/calendar", "application/ics"]
        part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
        assert part.get_param("method") == "REQUEST"
        cal = icalendar.Calendar.from_ical(part.get_content())
        event = cal.walk("VEVENT")[0]
        assert str(cal["METHOD"]) == "REQUEST" and str(event["UID"]) == result.booking.uid
        assert str(event["ORGANIZER"]) == "mailto:bookings@example.org"
        assert event["DTSTART"].dt == MONDAY_9 and cal.walk("VTIMEZONE")[0]["TZID"] == "Europe/Berlin"
        me = next(a for a in event["ATTENDEE"] if str(a) == f"mailto:{mail.rcpt_tos[0]}")
        assert me.params["RSVP"] == "TRUE" and me.params["PARTSTAT"] == "NEEDS-ACTION"

    service.cancel_by_token(config, store, result.token, now=NOW)
    deliver_due(config, store)
    cancels = smtp_sink.wait_for(4)[2:]
    for mail in cancels:
        part = next(p for p in mail.message.walk() if p.get_content_type() == "text/calendar")
        cal = icalendar.Calendar.from_ical(part.get_content())
        event = cal.walk("VEVENT")[0]
        assert part.get_param("method") == "CANCEL" and str(cal["METHOD"]) == "CANCEL"
        assert str(event["UID"]) == result.booking.uid and int(event["SEQUENCE"]) == 1
        assert str(event["STATUS"]) == "CANCELLED"


def test_a_booking_moves_to_a_time_overlapping_its_own_even_when_its_calendar_is_checked(store, config, host):
    home = local_calendar(store, host.id)
    link = make_link(store, host.id, durations=(60,), interval=30, conflict_calendar_ids=(home.id,),
                     target_calendar_id=home.id)
    refresh(store, config, host.id)
    result = service.book(config, store, link, duration=60, start=MONDAY_9, visitor=visitor(link), now=NOW)
    # its event is in a conflict calendar now, and blocks 09:00-10:00 for everyone else
    half_past = MONDAY_9 + timedelta(minutes=30)
    assert half_past not in starts(service.offered_slots(config, store, link, duration=60, now=NOW))
    # but not for itself: the visitor may move it by half an hour
    offered = service.offered_slots(config, store, link, duration=60, now=NOW, exclude_booking=result.booking.id)
    assert half_past in starts(offered)
    moved = service.reschedule(config, store, result.token, start=half_past, now=NOW)
    assert moved.start == half_past
    shown = mirror.instances_between(store, [home.id], MONDAY_9, MONDAY_9 + timedelta(hours=3))
    assert [(e.instance.summary, e.instance.start) for e in shown] == [("Intro call: Bob", half_past)]
