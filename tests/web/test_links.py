"""The booking-links pages (/links), driven through real HTTP requests to the app over a real store.

Links are read back through the booking-links store, bookings are taken through the real
booking service into a local calendar, and the outbox rows are the ones the service queued.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest

from daemon.booking import outbox_job, service
from daemon.booking.link_settings import LinkSettings, Location, Question
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts, booking_links, outbox, users
from daemon.store import settings as global_settings
from tests.web.test_whole_ui import _Page

UTC = timezone.utc
PASSWORD = "correct horse battery"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# -- helpers ----------------------------------------------------------------------------------

def local_calendar(store, user_id: int, name: str, mode: AccessMode = AccessMode.READ_WRITE):
    acc = accounts.add(store, user_id, "local", name, mode, {})
    return accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0]


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def form(token: str, **over) -> dict:
    """The link form as a browser posts it, with a plain public link filled in."""
    data = {"csrf_token": token, "title": "Intro call", "access": "public", "slug": "intro", "durations": ["30"],
            "durations_other": "", "overrides": "", "window_kind": "rolling", "rolling_days": "30",
            "fixed_start": "", "fixed_end": "", "min_notice": "240", "buffer_before": "0", "buffer_after": "0",
            "interval": "", "daily_limit": "", "all_day_blocks": "y", "target_calendar_id": "",
            "location_kind": "none", "location_value": "", "confirmation_message": "",
            "questions-0-id": "", "questions-0-label": "", "questions-0-kind": "text"}
    data.update({f"hours_{d}": "09:00-17:00" for d in WEEK[:5]} | {"hours_sat": "", "hours_sun": ""})
    for key, value in over.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def link_count(store) -> int:
    return store.db.execute("SELECT count(*) FROM booking_links").fetchone()[0]


def open_settings(**over) -> LinkSettings:
    """Bookable all day every day from now on, so a test always finds a slot."""
    values = {"title": "Chat", "durations": (30,), "weekly_hours": {d: (("00:00", "24:00"),) for d in WEEK},
              "min_notice": 0, "rolling_days": 14}
    return LinkSettings(**(values | over))


def take_booking(config, store, link, name: str = "Vera Visitor", email: str = "vera@example.org",
                 answers: dict | None = None) -> service.Booking:
    slot = service.offered_slots(config, store, link, duration=30)[3]
    visitor = service.validate_visitor(link, name=name, email=email, timezone="Europe/Paris",
                                       answers=answers or {})
    booking = service.book(config, store, link, duration=30, start=slot.start, visitor=visitor).booking
    outbox_job.wait_idle(10)  # the service kicks a delivery in the background
    return booking


@pytest.fixture
def host(admin, auth, store):
    """The logged-in admin, in Berlin time, with a local calendar "home" checked for conflicts and
    a free-busy calendar "work" that is not."""
    users.set_timezone(store, admin.id, "Europe/Berlin")
    auth.login()
    home = local_calendar(store, admin.id, "home")
    accounts.set_calendar_flags(store, home.id, use_for_conflicts=True)
    work = local_calendar(store, admin.id, "work", AccessMode.FREE_BUSY)
    accounts.set_calendar_flags(store, work.id, use_for_conflicts=False)
    return type("Host", (), {"user": users.get(store, admin.id), "home": home, "work": work})


@pytest.fixture
def bob(store):
    """Another user with a link, a calendar, a booking and its mail."""
    user = users.create(store, "bob", PASSWORD)
    cal = local_calendar(store, user.id, "bobcal")
    link = booking_links.create(store, user.id, open_settings(title="Bob's link", target_calendar_id=cal.id),
                                slug="bob")
    return type("Bob", (), {"user": user, "cal": cal, "link": link})


# -- the list ---------------------------------------------------------------------------------

def test_the_empty_list_explains_what_a_booking_link_is(client, host):
    page = text(client.get("/links/"))
    assert "No booking links yet" in page
    assert "people can book a meeting with you in a time you are free" in page
    assert 'href="/links/new"' in page
    assert '<a href="/links/" aria-current="page">Booking links</a>' in page


def test_the_list_shows_each_link_with_its_address_state_lengths_and_target(client, store, config, host):
    public = booking_links.create(store, host.user.id, open_settings(title="Coffee", durations=(30, 60),
                                                                     target_calendar_id=host.home.id),
                                  slug="coffee")
    private = booking_links.create(store, host.user.id, open_settings(title="Secret chat"), private=True)
    booking_links.update(store, private.id, host.user.id, private.settings, enabled=False)
    page = text(client.get("/links/"))
    assert "Coffee" in page and service.public_url(config, store, public) in page
    assert "30 or 60 minutes" in page
    assert "home / home (bookings are kept here, homecal emails the invitations)" in page
    assert f"/book/{private.url_key}" in page and "Private link" in page
    assert "Off: not taking bookings" in page and "On: taking bookings" in page


# -- creating and editing ---------------------------------------------------------------------

def test_a_link_with_every_field_is_stored_as_typed(client, auth, store, host):
    token = auth.csrf_token("/links/new")
    response = client.post("/links/new", data=form(
        token, title="Project kick-off", slug="Kick-Off", durations=["30", "60"], durations_other="20, 120",
        hours_mon="09:00-12:00, 13:00-17:00", hours_tue="", hours_sat="10:00-12:00",
        overrides="2026-12-24: off\n\n2026-12-27: 10:00-14:00, 15:00-16:00",
        conflict_calendar_ids=[str(host.home.id), str(host.work.id)], target_calendar_id=str(host.home.id),
        buffer_before="10", buffer_after="15", min_notice="1440", window_kind="fixed", rolling_days="",
        fixed_start="2026-12-01", fixed_end="2027-01-31", interval="15", daily_limit="4", all_day_blocks=None,
        location_kind="address", location_value="Hauptstr. 1, Berlin",
        **{"questions-0-label": "What is it about?", "questions-0-required": "y", "questions-0-kind": "textarea",
           "questions-1-label": "Company", "questions-1-kind": "text", "questions-2-label": ""},
        confirmation_message="See you soon!\nBring the agenda."))
    assert response.status_code == 302, text(response)
    (link,) = booking_links.for_user(store, host.user.id)
    s = booking_links.get(store, link.id, host.user.id).settings
    assert (link.private, link.enabled, link.url_key) == (False, True, "kick-off")
    assert s.title == "Project kick-off"
    assert s.durations == (20, 30, 60, 120)
    assert s.weekly_hours == {"mon": (("09:00", "12:00"), ("13:00", "17:00")), "wed": (("09:00", "17:00"),),
                              "thu": (("09:00", "17:00"),), "fri": (("09:00", "17:00"),),
                              "sat": (("10:00", "12:00"),)}
    assert s.overrides == {"2026-12-24": (), "2026-12-27": (("10:00", "14:00"), ("15:00", "16:00"))}
    assert s.conflict_calendar_ids == tuple(sorted((host.home.id, host.work.id)))
    assert s.target_calendar_id == host.home.id
    assert (s.buffer_before, s.buffer_after, s.min_notice) == (10, 15, 1440)
    assert (s.window_kind, s.fixed_start, s.fixed_end) == ("fixed", "2026-12-01", "2027-01-31")
    assert (s.interval, s.daily_limit, s.all_day_blocks) == (15, 4, False)
    assert s.location == Location("address", "Hauptstr. 1, Berlin")
    assert [(q.label, q.required, q.kind) for q in s.questions] == [("What is it about?", True, "textarea"),
                                                                    ("Company", False, "text")]
    assert s.confirmation_message == "See you soon!\nBring the agenda."
    assert "Booking link saved: Project kick-off" in text(client.get("/links/"))


def test_the_new_form_starts_from_working_hours_and_the_conflict_calendars(client, store, host):
    users.set_working_hours(store, host.user.id, {"tue": ("08:00", "12:00")})
    page = text(client.get("/links/new"))
    assert 'id="hours_tue" name="hours_tue" type="text" value="08:00-12:00"' in page
    assert 'id="hours_mon" name="hours_mon" type="text" value=""' in page
    assert re.search(rf'checked id="conflict_calendar_ids-\d" name="conflict_calendar_ids" type="checkbox" '
                     rf'value="{host.home.id}"', page)
    assert not re.search(rf'checked id="[^"]+" name="conflict_calendar_ids" type="checkbox" value="{host.work.id}"',
                         page)
    # where bookings go, and what they become there
    assert "homecal's own Bookings calendar (bookings are emailed invitations)" in page
    assert "work / work (homecal cannot write there: bookings are emailed invitations)" in page
    # Meet and Teams are offered only with a read-write Google or Microsoft calendar
    assert re.search(r'<input disabled id="location_kind-\d" name="location_kind" type="radio" value="google_meet">',
                     page)
    assert "Google Meet (needs a read-write Google calendar as target)" in page


def test_editing_shows_the_saved_values_and_keeps_question_ids(client, auth, store, host):
    link = booking_links.create(store, host.user.id, open_settings(
        title="Chat", durations=(30, 50), overrides={"2026-12-24": ()}, interval=20,
        questions=(Question("topic", "Topic", True, "text"),)), slug="chat")
    page = text(client.get(f"/links/{link.id}/edit"))
    assert 'name="title" type="text" value="Chat"' in page and 'value="chat"' in page
    assert 'name="durations_other" type="text" value="50"' in page
    assert "2026-12-24: off" in page and 'name="hours_sun" type="text" value="00:00-24:00"' in page
    assert 'name="questions-0-id" type="hidden" value="topic"' in page
    token = auth.csrf_token(f"/links/{link.id}/edit")
    response = client.post(f"/links/{link.id}/edit", data=form(
        token, title="Chat (new)", slug="chat-2", access="private",  # the kind of a saved link stays
        **{"questions-0-id": "topic", "questions-0-label": "Your topic", "questions-0-kind": "text"}))
    assert response.status_code == 302, text(response)
    saved = booking_links.get(store, link.id, host.user.id)
    assert (saved.title, saved.url_key, saved.private) == ("Chat (new)", "chat-2", False)
    assert saved.settings.questions == (Question("topic", "Your topic", False, "text"),)
    assert booking_links.by_url_key(store, "chat") is None and booking_links.by_url_key(store, "chat-2")


BAD_FIELDS = [
    ({"title": ""}, "title", "Give the link a title."),
    ({"slug": "Not a slug!"}, "slug", "Use 1 to 64 lower-case letters, digits and hyphens"),
    ({"durations": None}, "durations", "Choose at least one length."),
    ({"durations_other": "half an hour"}, "durations_other", "Write lengths in minutes"),
    ({"durations_other": "2"}, "durations", "One to 6 lengths in minutes, each from 5 to 720."),
    ({"hours_mon": "9-17"}, "hours_mon", "Monday: 9-17 is not a time range like 09:00-17:00."),
    ({"hours_wed": "12:00-10:00"}, "hours_wed", "Wednesday: 12:00-10:00 ends before it starts."),
    ({"hours_thu": "09:00-12:00, 11:00-13:00"}, "hours_thu", "overlap"),
    ({"overrides": "2026-12-24: off\nsometime: off"}, "overrides", "'sometime' is not a date like 2026-12-24"),
    ({"overrides": "2026-12-24 at noon"}, "overrides", "Line 1: write “2026-12-24: off”"),
    ({"overrides": "2026-12-24: 10-14"}, "overrides", "Line 1: 2026-12-24: 10-14 is not a time range"),
    ({"buffer_before": "ten"}, "buffer_before", "Must be a whole number."),
    ({"buffer_after": "9999"}, "buffer_after", "Must be between 0 and 720."),
    ({"min_notice": "-5"}, "min_notice", "Must be between 0 and 86400."),
    ({"rolling_days": "0"}, "rolling_days", "Must be between 1 and 366."),
    ({"window_kind": "fixed", "fixed_start": "", "fixed_end": "2026-12-31"}, "fixed_start",
     "A fixed window needs a first and a last date"),
    ({"window_kind": "fixed", "fixed_start": "2026-12-31", "fixed_end": "2026-12-01"}, "fixed_end",
     "The last date is before the first."),
    ({"interval": "3"}, "interval", "Must be between 5 and 720."),
    ({"daily_limit": "0"}, "daily_limit", "Must be between 1 and 100."),
    ({"location_kind": "address", "location_value": ""}, "location_value", "Give the address."),
    ({"location_kind": "video", "location_value": "http://meet.example.org/x"}, "location_value",
     "A video link starts with https://."),
    ({"location_kind": "phone", "location_value": "call me maybe"}, "location_value", "A phone number has digits"),
    ({"location_kind": "google_meet"}, "location_kind", "This needs a read-write Google calendar"),
    ({"location_kind": "teams"}, "location_kind", "This needs a read-write Microsoft calendar"),
    ({"questions-0-label": "x" * 201}, "questions-0-label", "200 characters"),
    ({"confirmation_message": "x" * 2001}, "confirmation_message", "At most 2000 characters."),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD_FIELDS, ids=[f for _, f, _ in BAD_FIELDS])
def test_each_bad_field_is_named_next_to_it_and_what_was_typed_stays(client, auth, store, host, changes, field,
                                                                     message):
    token = auth.csrf_token("/links/new")
    response = client.post("/links/new", data=form(token, title="Typed title", **changes) if "title" not in changes
                           else form(token, **changes))
    page = text(response)
    assert response.status_code == 400
    assert link_count(store) == 0
    errors = re.search(rf'<ul class="field-errors" id="{field}-error">(.*?)</ul>', page, re.S)
    assert errors, f"no message next to {field}"
    assert message in errors.group(1)
    assert "Some answers need a change" in page
    # what the user typed is still there, in every field
    for key, value in changes.items():
        if key.startswith(("hours_", "durations_other", "buffer", "min_notice", "interval", "daily_limit",
                           "location_value", "slug", "rolling_days")) and value:
            assert f'name="{key}" type="text" value="{value}"' in page or f'value="{value}"' in page
        if key in ("overrides", "confirmation_message"):
            assert value in page
    if "title" not in changes:
        assert 'value="Typed title"' in page


def test_a_taken_slug_says_so(client, auth, store, host, bob):
    token = auth.csrf_token("/links/new")
    response = client.post("/links/new", data=form(token, slug="bob"))
    assert response.status_code == 400
    assert "/book/bob is already taken; choose another." in text(response)
    assert booking_links.for_user(store, host.user.id) == []


def test_calendars_of_another_user_are_refused(client, auth, store, host, bob):
    token = auth.csrf_token("/links/new")
    response = client.post("/links/new", data=form(token, conflict_calendar_ids=[str(bob.cal.id)]))
    assert response.status_code == 400 and "Choose among your own calendars." in text(response)
    response = client.post("/links/new", data=form(token, target_calendar_id=str(bob.cal.id)))
    assert response.status_code == 400 and "Choose one of your own calendars." in text(response)
    assert "bobcal" not in text(response)
    assert booking_links.for_user(store, host.user.id) == []


# -- private links, on and off, removal -------------------------------------------------------

def test_a_private_link_gets_a_secret_url_that_the_booking_page_resolves(client, auth, store, config, host):
    token = auth.csrf_token("/links/new")
    response = client.post("/links/new", data=form(token, access="private", slug=""))
    assert response.status_code == 302, text(response)
    (link,) = booking_links.for_user(store, host.user.id)
    assert link.private and len(link.url_key) >= 24
    assert booking_links.by_url_key(store, link.url_key).id == link.id
    assert f"/book/{link.url_key}" in text(client.get("/links/"))

    token = auth.csrf_token("/links/")
    response = client.post(f"/links/{link.id}/new-secret", data={"csrf_token": token}, follow_redirects=True)
    renewed = booking_links.get(store, link.id, host.user.id)
    assert renewed.url_key != link.url_key
    assert booking_links.by_url_key(store, link.url_key) is None
    assert booking_links.by_url_key(store, renewed.url_key).id == link.id
    page = text(response)
    assert "has a new secret URL" in page and service.public_url(config, store, renewed) in page


def test_turning_a_link_off_and_on(client, auth, store, host):
    link = booking_links.create(store, host.user.id, open_settings(), slug="chat")
    token = auth.csrf_token("/links/")
    client.post(f"/links/{link.id}/enabled", data={"csrf_token": token, "enabled": "0"})
    assert not booking_links.get(store, link.id).enabled and booking_links.by_url_key(store, "chat") is None
    assert "Off: not taking bookings" in text(client.get("/links/"))
    client.post(f"/links/{link.id}/enabled", data={"csrf_token": token, "enabled": "1"})
    assert booking_links.get(store, link.id).enabled and booking_links.by_url_key(store, "chat")


def test_removing_is_refused_while_bookings_are_upcoming(client, auth, store, config, host):
    link = booking_links.create(store, host.user.id, open_settings(target_calendar_id=host.home.id), slug="chat")
    booking = take_booking(config, store, link)
    page = text(client.get(f"/links/{link.id}/remove"))
    assert "This link has 1 upcoming booking, so it cannot be removed yet." in page
    token = auth.csrf_token("/links/")
    response = client.post(f"/links/{link.id}/remove", data={"csrf_token": token})
    assert "cancel them first" in text(response)
    assert booking_links.get(store, link.id)

    service.cancel_by_host(config, store, booking.id, host.user.id)
    response = client.post(f"/links/{link.id}/remove", data={"csrf_token": token}, follow_redirects=True)
    assert "Booking link removed: Chat." in text(response)
    assert booking_links.for_user(store, host.user.id) == []


# -- bookings ---------------------------------------------------------------------------------

def test_the_host_sees_a_booking_and_cancels_it(client, auth, store, config, host):
    link = booking_links.create(store, host.user.id, open_settings(
        title="Consultation", target_calendar_id=host.home.id,
        questions=(Question("topic", "What about?", True), Question("phone", "Phone")),
    ), slug="consult")
    booking = take_booking(config, store, link, answers={"topic": "The roof"})
    berlin = booking.start.astimezone(service.host_zone(store, host.user.id))

    page = text(client.get("/links/bookings"))
    assert f"{berlin:%a %d %b %Y, %H:%M}–" in page and "Europe/Berlin" in page
    assert "Consultation" in page and "Vera Visitor" in page and "vera@example.org" in page
    assert "What about?" in page and "The roof" in page
    assert "Emailed invitation; kept in home / home" in page
    assert f'href="/links/bookings/{booking.id}/cancel"' in page

    confirm = text(client.get(f"/links/bookings/{booking.id}/cancel"))
    assert "Cancel the booking with Vera Visitor" in confirm and "Cancel this booking" in confirm
    assert service.bookings_for_user(store, host.user.id)[0].status == "confirmed"  # opening it changes nothing

    token = auth.csrf_token(f"/links/bookings/{booking.id}/cancel")
    response = client.post(f"/links/bookings/{booking.id}/cancel", data={"csrf_token": token},
                           follow_redirects=True)
    page = text(response)
    assert "Booking cancelled: Vera Visitor" in page and "vera@example.org is told" in page
    assert "No upcoming bookings" in page
    (cancelled,) = service.bookings_for_user(store, host.user.id, upcoming_only=False)
    assert (cancelled.status, cancelled.cancelled_by) == ("cancelled", "host")
    assert "Cancelled by you" in text(client.get("/links/bookings?show=all"))
    outbox_job.wait_idle(10)
    kinds = [e.kind for e in outbox.for_user(store, host.user.id) if e.recipient == "vera@example.org"]
    assert "cancel" in kinds


# -- the outbox -------------------------------------------------------------------------------

def test_the_outbox_lists_waiting_mail_and_says_mail_is_not_set_up(client, auth, store, config, host):
    link = booking_links.create(store, host.user.id, open_settings(title="Chat", target_calendar_id=host.home.id),
                                slug="chat")
    take_booking(config, store, link)
    entry = next(e for e in outbox.for_user(store, host.user.id) if e.recipient == "vera@example.org")
    page = text(client.get("/links/outbox"))
    assert "vera@example.org" in page and entry.subject in page and "Waiting to be sent" in page
    assert "Mail is not set up" in page and 'href="/settings/mail"' in page
    token = auth.csrf_token("/links/outbox")
    response = client.post(f"/links/outbox/{entry.id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "The mail is queued, but mail is not set up yet" in text(response)
    outbox_job.wait_idle(10)
    assert outbox.get(store, entry.id, host.user.id).status == "pending"


def test_a_failed_mail_shows_why_and_retry_now_sends_it(client, auth, store, config, host, smtp_sink):
    global_settings.save_smtp(config, store, {"host": "127.0.0.1", "port": smtp_sink.port, "security": "none",
                                              "from_address": "homecal@example.org"})
    smtp_sink.refuse = "451 4.3.0 Mailbox busy, try again later"
    link = booking_links.create(store, host.user.id, open_settings(title="Chat", target_calendar_id=host.home.id),
                                slug="chat")
    take_booking(config, store, link)
    entry = next(e for e in outbox.for_user(store, host.user.id) if e.recipient == "vera@example.org")
    assert (entry.status, entry.attempts) == ("pending", 1) and entry.last_error

    page = text(client.get("/links/outbox"))
    assert "Waiting to be sent" in page and entry.last_error in page and "Mail is not set up" not in page
    assert f'action="/links/outbox/{entry.id}/retry"' in page

    smtp_sink.refuse = None
    token = auth.csrf_token("/links/outbox")
    response = client.post(f"/links/outbox/{entry.id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "The mail is being sent again now." in text(response)
    outbox_job.wait_idle(10)
    assert any("vera@example.org" in m.rcpt_tos for m in smtp_sink.wait_for(1))
    assert outbox.get(store, entry.id, host.user.id).status == "sent"
    page = text(client.get("/links/outbox"))
    assert "Sent" in page and f'action="/links/outbox/{entry.id}/retry"' not in page


def test_a_mail_that_gave_up_can_be_retried(client, auth, store, config, host):
    link = booking_links.create(store, host.user.id, open_settings(title="Chat", target_calendar_id=host.home.id),
                                slug="chat")
    take_booking(config, store, link)
    entry = next(e for e in outbox.for_user(store, host.user.id) if e.recipient == "vera@example.org")
    now = datetime.now(UTC)
    while outbox.get(store, entry.id, host.user.id).status != "failed":  # every attempt fails
        now += timedelta(days=1)
        for claimed, _, _ in outbox.claim_due(store, now, limit=50):
            outbox.mark_failed(store, claimed, "The mail server refused the login.", now)
    page = text(client.get("/links/outbox"))
    assert "Gave up after several tries" in page and "The mail server refused the login." in page
    token = auth.csrf_token("/links/outbox")
    client.post(f"/links/outbox/{entry.id}/retry", data={"csrf_token": token})
    again = outbox.get(store, entry.id, host.user.id)
    assert (again.status, again.attempts) == ("pending", 0)


def test_no_smtp_warning_once_mail_is_set_up(client, store, config, host):
    global_settings.save_smtp(config, store, {"host": "127.0.0.1", "port": 2525, "security": "none",
                                              "from_address": "homecal@example.org"})
    assert "Mail is not set up" not in text(client.get("/links/outbox"))
    assert "No mail yet" in text(client.get("/links/outbox"))


# -- other people's ids, CSRF -----------------------------------------------------------------

def _bob_state(store, bob):
    link = booking_links.get(store, bob.link.id)
    return (link.settings, link.enabled, link.url_key,
            [(b.status, b.start) for b in service.bookings_for_user(store, bob.user.id, upcoming_only=False)],
            [(e.status, e.attempts, e.next_attempt_at) for e in outbox.for_user(store, bob.user.id)])


def test_another_users_link_booking_and_mail_answer_404_and_change_nothing(client, auth, store, config, host, bob):
    booking = take_booking(config, store, bob.link, name="Bob's visitor")
    entry = outbox.for_user(store, bob.user.id)[0]
    before = _bob_state(store, bob)
    token = auth.csrf_token("/links/new")
    gets = [f"/links/{bob.link.id}/edit", f"/links/{bob.link.id}/remove", f"/links/bookings/{booking.id}/cancel"]
    posts = [(f"/links/{bob.link.id}/edit", form(token, slug="stolen")),
             (f"/links/{bob.link.id}/enabled", {"csrf_token": token, "enabled": "0"}),
             (f"/links/{bob.link.id}/new-secret", {"csrf_token": token}),
             (f"/links/{bob.link.id}/remove", {"csrf_token": token}),
             (f"/links/bookings/{booking.id}/cancel", {"csrf_token": token}),
             (f"/links/outbox/{entry.id}/retry", {"csrf_token": token})]
    for url in gets:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Bob's" not in text(response)
    for url, data in posts:
        assert client.post(url, data=data).status_code == 404, url
    assert _bob_state(store, bob) == before
    for url in ("/links/", "/links/bookings?show=all", "/links/outbox"):
        page = text(client.get(url))
        assert "Bob's" not in page and "bob" not in page.replace("bobcal", "")


def test_every_form_needs_its_csrf_token(client, auth, store, config, host):
    link = booking_links.create(store, host.user.id, open_settings(target_calendar_id=host.home.id), slug="chat")
    booking = take_booking(config, store, link)
    entry = outbox.for_user(store, host.user.id)[0]
    for url, data in [("/links/new", form("", slug="other")), (f"/links/{link.id}/edit", form("", title="Changed")),
                      (f"/links/{link.id}/enabled", {"enabled": "0"}), (f"/links/{link.id}/remove", {}),
                      (f"/links/{link.id}/new-secret", {}), (f"/links/bookings/{booking.id}/cancel", {}),
                      (f"/links/outbox/{entry.id}/retry", {})]:
        data.pop("csrf_token", None)
        assert client.post(url, data=data).status_code == 400, url
    assert [x.title for x in booking_links.for_user(store, host.user.id)] == ["Chat"]
    assert booking_links.get(store, link.id).enabled
    assert service.bookings_for_user(store, host.user.id)[0].status == "confirmed"


# -- markup -----------------------------------------------------------------------------------

def _check_markup(where: str, body: str) -> None:
    """The checks tests/web/test_whole_ui.py makes on every page, for this area's pages with data."""
    page = _Page()
    page.feed(body)
    assert page.headings.count(1) == 1, f"{where}: {page.headings.count(1)} h1"
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, f"{where}: heading level jumps from h{before} to h{after}"
    assert not [i for i, n in page.ids.items() if n > 1], f"{where}: duplicate ids"
    for control in page.controls:
        named = (control.get("id") in page.labelled or control["_in_label"] or control.get("aria-label")
                 or control.get("aria-labelledby"))
        assert named, f"{where}: a {control.get('name')!r} control has no label"
    assert page.empty_buttons == 0, f"{where}: a button without text"


def test_every_page_of_the_area_has_labelled_controls_ordered_headings_and_unique_ids(client, auth, store,
                                                                                       config, host):
    link = booking_links.create(store, host.user.id, open_settings(
        target_calendar_id=host.home.id, questions=(Question("topic", "Topic", True),)), slug="chat")
    booking_links.create(store, host.user.id, open_settings(title="Hidden"), private=True)
    booking = take_booking(config, store, link, answers={"topic": "Roof"})
    urls = ["/links/", "/links/new", f"/links/{link.id}/edit", f"/links/{link.id}/remove", "/links/bookings",
            "/links/bookings?show=all", f"/links/bookings/{booking.id}/cancel", "/links/outbox"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        _check_markup(f"GET {url}", response.get_data(as_text=True))
    token = auth.csrf_token("/links/new")
    bad = client.post("/links/new", data=form(token, title="", hours_mon="9-5", location_kind="teams",
                                              overrides="nonsense", **{"questions-0-label": "x" * 300}))
    assert bad.status_code == 400
    _check_markup("POST /links/new with errors", bad.get_data(as_text=True))


GARBAGE = [
    {"durations": ["abc"]}, {"durations": ["7"]}, {"target_calendar_id": "abc"}, {"conflict_calendar_ids": ["x"]},
    {"window_kind": "weird"}, {"location_kind": "evil"}, {"access": "secret"}, {"questions-0-kind": "essay"},
    {f"questions-{i}-label": f"Q{i}" for i in range(15)}, {"questions-99-label": "far"}, {"title": "a\x00b"},
    {"hours_mon": "09:00-10:00 " * 10}, {"overrides": "\n".join(f"2026-01-{d:02d}: off" for d in range(1, 32)) * 13},
]


@pytest.mark.parametrize("changes", GARBAGE, ids=[next(iter(c)) for c in GARBAGE])
def test_garbage_gets_a_message_never_a_500(client, auth, store, host, changes):
    token = auth.csrf_token("/links/new")
    response = client.post("/links/new", data=form(token, **changes))
    assert response.status_code in (302, 400), text(response)
    if response.status_code == 400:
        assert 'class="field-errors"' in text(response) or 'class="form-error"' in text(response)


def test_editing_a_private_link_keeps_it_private_and_its_url(client, auth, store, host):
    link = booking_links.create(store, host.user.id, open_settings(title="Quiet"), private=True)
    page = text(client.get(f"/links/{link.id}/edit"))
    assert "Private link: a secret, unguessable URL" in page and f"/book/{link.url_key}" in page
    assert 'name="slug"' not in page
    token = auth.csrf_token(f"/links/{link.id}/edit")
    response = client.post(f"/links/{link.id}/edit", data=form(token, title="Quieter", access=None, slug=None))
    assert response.status_code == 302, text(response)
    saved = booking_links.get(store, link.id, host.user.id)
    assert (saved.title, saved.private, saved.url_key) == ("Quieter", True, link.url_key)
