"""The booking outbox against a real SMTP server (aiosmtpd on loopback) and a real store.

What a user notices: the invite arrives once and renders as an invitation; when the mail
server is down the mail waits and goes out later, exactly once; the outbox page says why in
plain words; nobody sees another user's mail; and the visitor's details are never stored or
logged in the clear. Time moves by passing `now`, never by sleeping.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.booking import outbox_job
from daemon.booking.invites import Invite, invite_mail, plain_mail
from daemon.config import Config, with_overrides
from daemon.errors import NotFound, UsageError
from daemon.store import Store, outbox, users
from tests.servers import SmtpSink

BERLIN = ZoneInfo("Europe/Berlin")
SENDER = "homecal@example.org"
VISITOR = "juergen.visitor@example.net"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def alice(store: Store) -> int:
    return users.create(store, "alice", "correct horse battery").id


@pytest.fixture
def mail_config(config: Config, smtp_sink: SmtpSink) -> Config:
    return with_overrides(config, smtp=smtp_sink.config_smtp(SENDER))


def _invite(sequence: int = 0) -> Invite:
    start = datetime(2026, 3, 29, 10, 0, tzinfo=BERLIN)  # the Sunday summer time starts
    return Invite(uid="booking-17@homecal", sequence=sequence, start=start, end=start + timedelta(minutes=30),
                  tzid="Europe/Berlin", summary="Intro call: Jürgen and Alice", organizer_email=SENDER,
                  organizer_name="Alice (homecal)", attendees=(("Jürgen Visitor", VISITOR), ("Alice", "alice@example.org")))


def _request(recipient: str = VISITOR, subject: str = "Intro call with Alice") -> EmailMessage:
    return invite_mail(_invite(), "REQUEST", recipient=recipient, sender=SENDER, subject=subject,
                       text="Hello Jürgen,\n\nyour call is booked.\n")


def _enqueue(store: Store, user_id: int, *, recipient: str = VISITOR, subject: str = "Intro call with Alice",
             now: datetime = T0) -> int:
    return outbox.enqueue(store, user_id=user_id, booking_id=None, kind="invite", recipient=recipient,
                          message=_request(recipient, subject), now=now)


def _entry(store: Store, user_id: int, entry_id: int) -> outbox.OutboxEntry:
    return outbox.get(store, entry_id, user_id)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def test_an_enqueued_invite_arrives_as_an_invitation(store, alice, mail_config, smtp_sink) -> None:
    entry_id = _enqueue(store, alice)
    assert outbox.pending_count(store, alice) == 1

    counts = outbox_job.deliver_due(mail_config, store, now=T0)

    assert counts["sent"] == 1
    [got] = smtp_sink.received
    assert got.mail_from == SENDER and got.rcpt_tos == [VISITOR]
    message = got.message
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/calendar", "application/ics"]
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "REQUEST"
    cal = icalendar.Calendar.from_ical(part.get_content())
    [event] = cal.walk("VEVENT")
    assert cal["METHOD"] == "REQUEST"
    assert event["UID"] == "booking-17@homecal" and event["SEQUENCE"] == 0
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert event["DTSTART"].dt.astimezone(UTC) == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert str(event["ORGANIZER"]) == f"mailto:{message['From']}"
    assert f"mailto:{VISITOR}" in [str(a) for a in event["ATTENDEE"]]

    entry = _entry(store, alice, entry_id)
    assert (entry.status, entry.attempts, entry.sent_at, entry.last_error) == ("sent", 1, _iso(T0), None)
    assert outbox.pending_count(store, alice) == 0
    assert outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(days=1))["sent"] == 0
    assert len(smtp_sink.received) == 1


def test_recipient_and_message_are_sealed_in_the_store(store, alice) -> None:
    entry_id = _enqueue(store, alice, subject="Secret subject 42")
    row = store.db.execute("SELECT * FROM outbox WHERE id = ?", [entry_id]).fetchone()
    flat = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    assert b"juergen" not in flat and b"Secret subject" not in flat and b"VCALENDAR" not in flat
    entry = _entry(store, alice, entry_id)
    assert (entry.recipient, entry.subject, entry.kind, entry.status) == (VISITOR, "Secret subject 42", "invite",
                                                                         "pending")


def test_a_server_that_is_down_leaves_the_mail_waiting_then_it_goes_out_once(
        store, alice, mail_config, smtp_sink, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    entry_id = _enqueue(store, alice)
    smtp_sink.stop()

    counts = outbox_job.deliver_due(mail_config, store, now=T0)

    assert counts == {"sent": 0, "retry": 1, "failed": 0, "waiting": 0}
    entry = _entry(store, alice, entry_id)
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.next_attempt_at == _iso(T0 + timedelta(minutes=1))
    assert entry.last_error == (f"127.0.0.1:{smtp_sink.port} refused the connection. Check the server name and "
                                "port, and that the mail server is running.")

    smtp_sink.start()
    outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(seconds=30))  # not yet due
    assert smtp_sink.received == []
    assert outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(minutes=1))["sent"] == 1
    outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(hours=3))
    assert len(smtp_sink.received) == 1
    entry = _entry(store, alice, entry_id)
    assert (entry.status, entry.attempts, entry.last_error) == ("sent", 2, None)
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("homecal"))
    assert "refused the connection" in ours  # the admin can see why in the log...
    assert VISITOR not in ours and "Jürgen" not in ours and "Intro call" not in ours  # ...but not to whom


def test_a_temporary_refusal_is_recorded_in_the_servers_words(store, alice, mail_config, smtp_sink) -> None:
    entry_id = _enqueue(store, alice)
    smtp_sink.refuse = "451 4.3.0 Mailbox busy, try again later"
    outbox_job.deliver_due(mail_config, store, now=T0)
    entry = _entry(store, alice, entry_id)
    assert entry.status == "pending"
    assert entry.last_error == "The mail server answered with an error: 451 4.3.0 Mailbox busy, try again later."


def test_the_stored_error_never_holds_the_smtp_password(store, alice, config, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "outbox-pa55word-xyz"
    with SmtpSink(login=("homecal", "the right one 1"), echo_password=True) as server:
        cfg = with_overrides(config, smtp=server.config_smtp(SENDER) | {"username": "homecal", "password": secret})
        entry_id = _enqueue(store, alice)
        outbox_job.deliver_due(cfg, store, now=T0)
    entry = _entry(store, alice, entry_id)
    assert entry.last_error.startswith("Authentication failed")
    assert secret not in entry.last_error
    assert not any(secret in r.getMessage() for r in caplog.records if r.name.startswith("homecal"))


def test_two_senders_at_once_deliver_each_mail_exactly_once(store, alice, mail_config, smtp_sink) -> None:
    ids = [_enqueue(store, alice, subject=f"Mail {i}") for i in range(12)]
    start = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def sender() -> None:
        start.wait()
        results.append(outbox_job.deliver_due(mail_config, store, now=T0))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    subjects = sorted(str(r.message["Subject"]) for r in smtp_sink.received)
    assert subjects == sorted(f"Mail {i}" for i in range(12))  # each once, none missing
    assert sum(r["sent"] for r in results) == 12
    assert {_entry(store, alice, i).status for i in ids} == {"sent"}


def test_queueing_while_mail_goes_out_never_fails_with_a_locked_database(
        store, alice, mail_config, smtp_sink) -> None:
    # Bookings queue mail in web threads while the job sends: neither may see "database is locked".
    errors: list[BaseException] = []
    done = threading.Event()

    def queue(prefix: str) -> None:
        try:
            for i in range(20):
                _enqueue(store, alice, subject=f"{prefix} {i}")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def send_until_done() -> None:
        try:
            while not done.wait(0.005):  # back to back, as a kick after every booking would
                outbox_job.deliver_due(mail_config, store, now=T0)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    sender = threading.Thread(target=send_until_done)
    sender.start()
    queuers = [threading.Thread(target=queue, args=(name,)) for name in ("a", "b")]
    for t in queuers:
        t.start()
    for t in queuers:
        t.join(60)
    done.set()
    sender.join(60)
    assert errors == []
    outbox_job.deliver_due(mail_config, store, now=T0)
    subjects = sorted(str(r.message["Subject"]) for r in smtp_sink.received)
    assert subjects == sorted(f"{p} {i}" for p in ("a", "b") for i in range(20))


def test_a_sender_that_died_mid_send_is_taken_over_after_its_lease(store, alice, mail_config, smtp_sink) -> None:
    entry_id = _enqueue(store, alice)
    [(claimed_id, recipient, _)] = outbox.claim_due(store, T0)  # ...and the process dies here
    assert (claimed_id, recipient) == (entry_id, VISITOR)
    assert outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(minutes=5))["sent"] == 0
    assert outbox_job.deliver_due(mail_config, store, now=T0 + outbox.LEASE)["sent"] == 1
    assert len(smtp_sink.received) == 1
    assert _entry(store, alice, entry_id).attempts == 2


def test_without_smtp_settings_mail_waits_and_says_so_once(store, alice, config, smtp_sink, caplog) -> None:
    caplog.set_level(logging.INFO)
    outbox_job._unconfigured_logged.clear()  # another test may have logged it in this process
    entry_id = _enqueue(store, alice)

    first = outbox_job.deliver_due(config, store, now=T0)
    outbox_job.deliver_due(config, store, now=T0 + timedelta(minutes=1))

    assert first == {"sent": 0, "retry": 0, "failed": 0, "waiting": 1}
    entry = _entry(store, alice, entry_id)
    assert (entry.status, entry.attempts, entry.last_error) == ("pending", 0, None)
    warnings = [r.getMessage() for r in caplog.records if r.name == "homecal.outbox"]
    assert len(warnings) == 1 and "no SMTP server is configured" in warnings[0]
    # once mail is set up, the waiting mail goes out
    cfg = with_overrides(config, smtp=smtp_sink.config_smtp(SENDER))
    assert outbox_job.deliver_due(cfg, store, now=T0 + timedelta(minutes=2))["sent"] == 1


def test_after_max_attempts_the_mail_is_given_up_and_retry_now_brings_it_back(
        store, alice, mail_config, smtp_sink) -> None:
    entry_id = _enqueue(store, alice)
    smtp_sink.stop()
    now = T0
    waits = []
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        counts = outbox_job.deliver_due(mail_config, store, now=now)
        entry = _entry(store, alice, entry_id)
        assert entry.attempts == attempt
        if attempt < outbox.MAX_ATTEMPTS:
            assert counts["retry"] == 1 and entry.status == "pending"
            due = datetime.fromisoformat(entry.next_attempt_at)
            waits.append(due - now)
            now = due
    assert counts["failed"] == 1
    assert (entry.status, entry.next_attempt_at) == ("failed", None)
    assert "refused the connection" in entry.last_error
    assert waits[:5] == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                         timedelta(hours=6)]
    assert outbox.pending_count(store, alice) == 0

    smtp_sink.start()
    outbox_job.deliver_due(mail_config, store, now=now + timedelta(days=2))
    assert smtp_sink.received == []  # given up means not tried again by itself

    later = now + timedelta(days=3)
    outbox.retry_now(store, entry_id, alice, now=later)
    entry = _entry(store, alice, entry_id)
    assert (entry.status, entry.next_attempt_at, entry.attempts) == ("pending", _iso(later), 0)
    assert outbox_job.deliver_due(mail_config, store, now=later)["sent"] == 1
    assert len(smtp_sink.received) == 1
    with pytest.raises(UsageError, match="already been sent"):
        outbox.retry_now(store, entry_id, alice)


def test_retry_now_makes_a_waiting_mail_due_at_once(store, alice, mail_config, smtp_sink) -> None:
    entry_id = _enqueue(store, alice)
    smtp_sink.stop()
    outbox_job.deliver_due(mail_config, store, now=T0)
    smtp_sink.start()
    outbox.retry_now(store, entry_id, alice, now=T0 + timedelta(seconds=5))
    assert outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(seconds=5))["sent"] == 1


def test_nobody_sees_or_retries_another_users_mail(store, alice) -> None:
    bob = users.create(store, "bob", "correct horse battery").id
    a1 = _enqueue(store, alice, subject="for alice 1", now=T0)
    b1 = _enqueue(store, bob, recipient="bobs.visitor@example.net", subject="for bob", now=T0)
    a2 = _enqueue(store, alice, subject="for alice 2", now=T0 + timedelta(minutes=1))

    assert [(e.id, e.subject) for e in outbox.for_user(store, alice)] == [(a2, "for alice 2"), (a1, "for alice 1")]
    assert [(e.id, e.recipient) for e in outbox.for_user(store, bob)] == [(b1, "bobs.visitor@example.net")]
    assert outbox.pending_count(store, alice) == 2 and outbox.pending_count(store) == 3
    with pytest.raises(NotFound):
        outbox.retry_now(store, b1, alice)
    with pytest.raises(NotFound):
        outbox.get(store, b1, alice)


def test_a_mail_queued_in_a_rolled_back_booking_is_never_sent(store, alice, mail_config, smtp_sink) -> None:
    with pytest.raises(RuntimeError), store.atomic():
        _enqueue(store, alice)
        raise RuntimeError("the slot was just taken")
    with store.atomic():  # and inside a committed one it is there
        kept = _enqueue(store, alice, subject="kept")
    assert [e.id for e in outbox.for_user(store, alice)] == [kept]
    outbox_job.deliver_due(mail_config, store, now=T0)
    assert [str(r.message["Subject"]) for r in smtp_sink.received] == ["kept"]


def test_a_kick_delivers_without_waiting_for_the_scheduler(store, alice, mail_config, smtp_sink) -> None:
    now = datetime.now(UTC)
    outbox.enqueue(store, user_id=alice, booking_id=None, kind="confirmation", recipient=VISITOR, now=now,
                   message=plain_mail(recipient=VISITOR, sender=SENDER, subject="first", text="x"))
    outbox_job.kick(mail_config, store)
    outbox.enqueue(store, user_id=alice, booking_id=None, kind="confirmation", recipient=VISITOR, now=now,
                   message=plain_mail(recipient=VISITOR, sender=SENDER, subject="second", text="x"))
    outbox_job.kick(mail_config, store)  # while the first may still run: one more round after it

    got = smtp_sink.wait_for(2)
    assert outbox_job.wait_idle(10)
    assert sorted(str(r.message["Subject"]) for r in got) == ["first", "second"]
    assert len(smtp_sink.received) == 2


def test_the_scheduler_runs_the_outbox_job(store, config) -> None:
    from daemon.scheduler import JobTracker, build_scheduler

    scheduler = build_scheduler(config, store, threading.Event(), JobTracker())
    job = scheduler.get_job("outbox")
    assert job is not None and job.trigger.interval == timedelta(seconds=30)
