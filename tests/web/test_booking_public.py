"""The visitor's booking pages through the Flask test client over a real store: slots in the
visitor's zone, the form with its guards (CSRF, honeypot, rate limits, size limits), the
confirmation page and its .ics, cancelling and moving behind a button press, and clear
answers (never a 500) to bad addresses and parameters.

Slots come from the real booking service; expected times are computed with zoneinfo here,
independently of the code under test.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest

from daemon.booking import service
from daemon.booking.link_settings import WEEKDAYS, LinkSettings, Location, Question
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts, booking_links, users
from tests.web.conftest import csrf_tokens
from tests.web.test_whole_ui import _Page
from webui import booking_forms

UTC = timezone.utc
HOST, HOST_TZ = "hanna", "Europe/Berlin"
BERLIN, TOKYO, NEW_YORK = ZoneInfo(HOST_TZ), ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")
TAKEN = "That time was just taken. Here are the times still free."
SLOT_RE = re.compile(r'class="slot" href="([^"]+)"')


# -- the world ---------------------------------------------------------------------------

@pytest.fixture
def host(store) -> users.User:
    user = users.create(store, HOST, "a long enough password")
    users.set_timezone(store, user.id, HOST_TZ)
    return users.get(store, user.id)


@pytest.fixture
def home(store, host) -> int:
    """The host's local calendar, where bookings go."""
    account = accounts.add(store, host.id, "local", "home", AccessMode.READ_WRITE, {})
    [cal] = accounts.save_calendars(store, account.id, [CalendarInfo("local", "home")])
    return cal.id


def settings_for(home: int, **changes: object) -> LinkSettings:
    base = LinkSettings(
        title="Intro call", durations=(30, 60), weekly_hours={d: (("09:00", "12:00"),) for d in WEEKDAYS},
        min_notice=0, target_calendar_id=home, location=Location("address", "Hauptstraße 1, Berlin"),
        questions=(Question("topic", "What is it about?", required=True),
                   Question("notes", "Anything else?", kind="textarea")),
        confirmation_message="Ring twice.\nSee you!")
    return replace(base, **changes)


@pytest.fixture
def link(store, host, home) -> booking_links.BookingLink:
    return booking_links.create(store, host.id, settings_for(home), slug="intro")


def bookings_count(store) -> int:
    return store.db.execute("SELECT count(*) FROM bookings").fetchone()[0]


# -- reading pages -----------------------------------------------------------------------

def text(response) -> str:
    return response.get_data(as_text=True)


def slot_hrefs(page: str) -> list[str]:
    return [html.unescape(h) for h in SLOT_RE.findall(page)]


def start_of(href: str) -> datetime:
    stamp = re.search(r"/(\d{8}T\d{4}Z)", href).group(1)
    return datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def days_and_times(page: str) -> list[tuple[str, list[str]]]:
    """(day heading, [visible times]) in page order."""
    out = []
    for heading, body in re.findall(r'<h3 id="day-[^"]+" class="slot-day">([^<]+)</h3>\s*<ul[^>]*>(.*?)</ul>',
                                    page, re.S):
        out.append((heading, re.findall(r"<time [^>]*>([^<]+)</time>", body)))
    return out


def later_slot(page: str, hours: float = 2, index: int = 0) -> str:
    """A slot link starting at least `hours` from now (today's early slots may pass mid-test)."""
    soon = datetime.now(UTC) + timedelta(hours=hours)
    hrefs = [h for h in slot_hrefs(page) if start_of(h) > soon]
    assert hrefs, "no slot far enough ahead on the page"
    return hrefs[index]


def form_data(page: str, **fields: str) -> dict[str, str]:
    """What a browser sends for the booking form on `page`, with `fields` filled in."""
    hidden = {name: html.unescape(value) for name, value in
              re.findall(r'<input [^>]*id="booking-[a-z]+" name="(\w+)" type="hidden" value="([^"]*)"', page)}
    assert set(hidden) == {"duration", "tz"}
    data = {"csrf_token": csrf_tokens(page)[0], "name": "Vera Visitor", "email": "vera@example.org",
            "q_topic": "Our project", "q_notes": "", "website": "", **hidden}
    data.update(fields)
    return data


def book(client, href: str, **fields: str):
    """Open the form behind a slot link and send it, as a browser does."""
    page = client.get(href)
    assert page.status_code == 200, text(page)
    return client.post(href.split("?")[0], data=form_data(text(page), **fields))


def token_of(response) -> str:
    assert response.status_code == 303, text(response)
    m = re.fullmatch(r"/booking/([A-Za-z0-9_-]+)", response.location)
    assert m, response.location
    return m.group(1)


def day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


# -- the slots page ----------------------------------------------------------------------

def test_slots_are_grouped_by_the_visitors_day_and_shown_on_the_visitors_clock(client, store, host, home) -> None:
    # 22:00 in Berlin is the next morning in Tokyo: days and times must both move.
    booking_links.create(store, host.id, settings_for(home, durations=(30,),
                         weekly_hours={d: (("22:00", "23:00"),) for d in WEEKDAYS}), slug="late")
    tomorrow = datetime.now(BERLIN).date() + timedelta(days=1)
    first_tokyo_day = tomorrow + timedelta(days=1)
    page = text(client.get(f"/book/late?tz=Asia/Tokyo&from={first_tokyo_day.isoformat()}"))
    assert "Times are shown in <strong>Asia/Tokyo</strong>" in page
    assert '<option selected>Asia/Tokyo</option>' in page

    shown = days_and_times(page)
    assert len(shown) == 7  # one Tokyo week, a morning slot pair each day
    for i, (heading, times) in enumerate(shown):
        berlin_day = tomorrow + timedelta(days=i)
        expected = [datetime.combine(berlin_day, time(22, m), BERLIN).astimezone(TOKYO) for m in (0, 30)]
        assert heading == day_label(berlin_day + timedelta(days=1))
        assert times == [e.strftime("%H:%M") for e in expected]
        assert {e.date() for e in expected} == {berlin_day + timedelta(days=1)}
    # Each slot links to its form, keeping the visitor's choices.
    first = slot_hrefs(page)[0]
    assert first == (f"/book/late/{datetime.combine(tomorrow, time(22), BERLIN).astimezone(UTC):%Y%m%dT%H%MZ}"
                     "?duration=30&tz=Asia/Tokyo")


def test_without_a_zone_the_hosts_is_named_and_the_script_may_replace_it(client, link) -> None:
    page = text(client.get("/book/intro"))
    assert f"Times are shown in <strong>{HOST_TZ}</strong> ({HOST}’s time zone)" in page
    assert '<a href="#tz">change</a>' in page
    assert 'data-auto="1"' in page and f"<option selected>{HOST_TZ}</option>" in page
    assert '<script src="/static/booking.js" defer></script>' in page
    assert "resolvedOptions().timeZone" in client.get("/static/booking.js").get_data(as_text=True)
    # The no-JavaScript fallback: the "Show times" form is a plain GET of the same page.
    form = re.search(r'<form id="tz-form"[^>]*method="get" action="([^"]+)"', page)
    assert form and form.group(1) == "/book/intro"
    chosen = text(client.get("/book/intro", query_string={"duration": "30", "tz": "America/New_York"}))
    assert 'data-auto="0"' in chosen and "Times are shown in <strong>America/New_York</strong>" in chosen
    soonest = later_slot(chosen)
    assert f"<time datetime=\"{start_of(soonest).isoformat()}\">" \
           f"{start_of(soonest).astimezone(NEW_YORK):%H:%M}</time>" in chosen


def test_durations_and_weeks_page_within_the_links_window(client, store, host, home) -> None:
    booking_links.create(store, host.id, settings_for(home, rolling_days=10), slug="short")
    first = text(client.get("/book/short?tz=Europe/Berlin"))
    assert 'rel="prev"' not in first
    later = re.search(r'href="([^"]+)" rel="next"', first)
    assert later
    second = text(client.get(html.unescape(later.group(1))))
    assert 'rel="prev"' in second and 'rel="next"' not in second  # 10 days: two pages
    assert all(start_of(h) < datetime.now(UTC) + timedelta(days=11) for h in slot_hrefs(second))
    # A week outside the window is clamped into it, not an error.
    far = client.get("/book/short?tz=Europe/Berlin&from=2099-01-01")
    assert far.status_code == 200 and slot_hrefs(text(far)) == slot_hrefs(second)
    # Another duration: hourly slots, and the choice travels with every slot link.
    hourly = text(client.get("/book/short?tz=Europe/Berlin&duration=60"))
    hrefs = slot_hrefs(hourly)
    assert hrefs and all(h.endswith("?duration=60&tz=Europe/Berlin") for h in hrefs)
    assert all(start_of(h).astimezone(BERLIN).strftime("%H:%M") in ("09:00", "10:00", "11:00") for h in hrefs)
    assert '<a href="/book/short?duration=60&amp;tz=Europe/Berlin" aria-current="true">60 minutes</a>' in hourly


# -- booking, confirmation, cancelling ---------------------------------------------------

def test_a_visitor_books_gets_the_confirmation_and_the_ics_then_cancels(client, store, link) -> None:
    slots_page = text(client.get("/book/intro?tz=America/New_York"))
    href = later_slot(slots_page)
    start = start_of(href)
    form_page = client.get(href)
    assert "Hauptstraße 1, Berlin" in text(form_page)
    assert f"{start.astimezone(NEW_YORK):%H:%M} – {start.astimezone(NEW_YORK) + timedelta(minutes=30):%H:%M}" \
        in text(form_page)
    response = client.post(href.split("?")[0], data=form_data(text(form_page), q_notes="Two of us"))
    token = token_of(response)

    page = client.get(f"/booking/{token}")
    body = text(page)
    assert page.status_code == 200 and "You’re booked" in body
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex, nofollow">' in body
    ny, berlin = start.astimezone(NEW_YORK), start.astimezone(BERLIN)
    assert f"{ny:%H:%M} – {ny + timedelta(minutes=30):%H:%M}" in body and "America/New_York" in body
    assert f"For {HOST}: " in body and f"{berlin:%H:%M} – {berlin + timedelta(minutes=30):%H:%M} (Europe/Berlin)" \
        in body
    assert "Hauptstraße 1, Berlin" in body and "Ring twice.\nSee you!" in body

    booking = service.booking_by_token(store, token)
    assert booking.status == "confirmed" and booking.start == start and booking.duration == 30
    assert booking.visitor.name == "Vera Visitor" and booking.visitor.timezone == "America/New_York"
    assert booking.visitor.answers == {"topic": "Our project", "notes": "Two of us"}
    # The slot is gone for the next visitor.
    assert href not in slot_hrefs(text(client.get("/book/intro?tz=America/New_York")))

    ics = client.get(f"/booking/{token}/invite.ics")
    assert ics.mimetype == "text/calendar"
    assert ics.headers["Content-Disposition"].startswith("attachment")
    [event] = icalendar.Calendar.from_ical(ics.get_data()).walk("VEVENT")
    assert event.decoded("DTSTART").astimezone(UTC) == start
    assert event.decoded("DTEND").astimezone(UTC) == start + timedelta(minutes=30)
    assert str(event["UID"]) == booking.uid

    # A mail scanner opening the cancel link changes nothing.
    cancel_page = client.get(f"/booking/{token}/cancel")
    assert cancel_page.status_code == 200 and "Cancel this booking" in text(cancel_page)
    assert service.booking_by_token(store, token).status == "confirmed"
    assert client.post(f"/booking/{token}/cancel", data={}).status_code == 400  # no CSRF token
    assert service.booking_by_token(store, token).status == "confirmed"

    done = client.post(f"/booking/{token}/cancel", data={"csrf_token": csrf_tokens(text(cancel_page))[0]})
    assert done.status_code == 303 and done.location == f"/booking/{token}"
    after = text(client.get(f"/booking/{token}"))
    assert "This booking is cancelled" in after and "You cancelled it." in after
    assert "Reschedule" not in after and "/cancel" not in after
    cancelled = service.booking_by_token(store, token)
    assert cancelled.status == "cancelled" and cancelled.cancelled_by == "visitor"
    assert href in slot_hrefs(text(client.get("/book/intro?tz=America/New_York")))  # free again
    # The cancelled booking cannot be moved, and cancelling again changes nothing.
    assert client.get(f"/booking/{token}/reschedule").status_code == 409
    assert "already cancelled" in text(client.get(f"/booking/{token}/cancel"))


def test_the_booking_form_needs_its_csrf_token(client, store, link) -> None:
    href = later_slot(text(client.get("/book/intro")))
    data = form_data(text(client.get(href)))
    del data["csrf_token"]
    response = client.post(href.split("?")[0], data=data)
    assert response.status_code == 400 and "The form expired" in text(response)
    data["csrf_token"] = "forged"
    assert client.post(href.split("?")[0], data=data).status_code == 400
    assert bookings_count(store) == 0


def test_a_filled_honeypot_books_nothing_and_shows_the_form_again(client, store, link) -> None:
    href = later_slot(text(client.get("/book/intro")))
    response = book(client, href, website="http://spam.example/")
    assert response.status_code == 400
    page = text(response)
    assert "Your booking was not sent" in page and 'value="Vera Visitor"' in page
    assert bookings_count(store) == 0
    # The field is there for robots, hidden from people by the stylesheet, and labelled.
    assert '<div class="hp-field">' in page and "Leave this field empty" in page
    assert ".hp-field" in client.get("/static/booking.css").get_data(as_text=True)


def test_bookings_are_limited_per_address_and_per_email(client, store, link, monkeypatch) -> None:
    monkeypatch.setattr(booking_forms, "ADDRESS_LIMIT", 2)
    monkeypatch.setattr(booking_forms, "EMAIL_LIMIT", 2)
    hrefs = [h for h in slot_hrefs(text(client.get("/book/intro"))) if start_of(h) > datetime.now(UTC)
             + timedelta(hours=2)]
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    token_of(book(client, hrefs[0], email="a@example.org"))
    token_of(book(client, hrefs[1], email="b@example.org"))
    refused = book(client, hrefs[2], email="c@example.org")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many bookings in a short time" in text(refused) and 'value="c@example.org"' in text(refused)
    assert bookings_count(store) == 2

    # Another address may book, but not the same e-mail a third time.
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    token_of(book(client, hrefs[3], email="A@example.org "))
    assert book(client, hrefs[4], email="a@example.org").status_code == 429
    token_of(book(client, hrefs[4], email="d@example.org"))
    assert bookings_count(store) == 4


# -- bad input ---------------------------------------------------------------------------

def test_bad_parameters_fall_back_with_a_clear_notice(client, link) -> None:
    for query, notice in (("tz=Mars/Olympus", "That time zone is not known here. Times are shown in Europe/Berlin."),
                          ("tz=../../etc/passwd", "That time zone is not known here."),
                          ("duration=45", "That meeting length is not offered; choose 30, 60 minutes."),
                          ("duration=x%00", "That meeting length is not offered"),
                          ("from=next-week", "That week is not a date like 2026-11-23")):
        response = client.get(f"/book/intro?{query}")
        assert response.status_code == 200, query
        assert notice in html.unescape(text(response)), query
        assert slot_hrefs(text(response)), query


def test_a_bad_or_unavailable_start_is_explained(client, link) -> None:
    for start in ("tomorrow", "20261399T2599Z", "00000101T0000Z", "2026-11-23T09:00Z", "%F0%9F%92%A5"):
        response = client.get(f"/book/intro/{start}")
        assert response.status_code == 400, start
        assert "does not name a time" in text(response) and 'href="/book/intro?' in text(response)
    # Well-formed, but not a time this link offers: the fresh slots instead.
    for start in ("19990101T0900Z", "20991231T0900Z",
                  f"{datetime.now(BERLIN).date() + timedelta(days=2):%Y%m%d}T0317Z"):
        response = client.get(f"/book/intro/{start}")
        assert response.status_code == 409, start
        assert "That time is not available any more" in text(response) and slot_hrefs(text(response))


def test_a_length_the_link_does_not_offer_is_refused_not_replaced(client, store, link) -> None:
    href = later_slot(text(client.get("/book/intro")))
    path = href.split("?")[0]
    wrong = client.get(f"{path}?duration=45")
    assert wrong.status_code == 400 and "This link offers meetings of 30, 60 minutes." in text(wrong)
    page = text(client.get(href))
    for duration in ("45", "", "30.0", "٣٠"):
        response = client.post(path, data=form_data(page, duration=duration))
        assert response.status_code == 400 and "Not a valid meeting length" in text(response), duration
    assert bookings_count(store) == 0


def test_oversized_and_control_character_fields_get_messages_and_book_nothing(client, store, link) -> None:
    href = later_slot(text(client.get("/book/intro")))
    cases = {
        "name": ("N" * 101, "Use at most 100 characters."),
        "email": ("e" * 250 + "@example.org", "Use at most 254 characters."),
        "q_notes": ("x" * 2001, "Use at most 2000 characters."),
    }
    for field, (value, message) in cases.items():
        response = book(client, href, **{field: value})
        assert response.status_code == 400, field
        assert message in text(response), field
    for field, value in (("name", "Vera\nBcc: x@example.org"), ("q_topic", "a\x00b"), ("q_notes", "bell\x07")):
        response = book(client, href, **{field: value})
        assert response.status_code == 400 and "Remove the control characters" in text(response), field
    for value in ("not an address", "a@b@c", "vera@example.org, eve@example.org"):
        response = book(client, href, email=value)
        assert response.status_code == 400 and "Enter an e-mail address like name@example.org." in text(response)
    response = book(client, href, q_topic="   ")
    assert response.status_code == 400 and "Please answer this question." in text(response)
    # A body far beyond any honest form is refused before anything else.
    page = text(client.get(href))
    huge = client.post(href.split("?")[0], data=form_data(page, q_notes="y" * (booking_forms.MAX_FORM_BYTES + 10)))
    assert huge.status_code == 413
    assert bookings_count(store) == 0


def test_the_services_own_checks_land_next_to_their_field_and_keep_the_input(client, store, link) -> None:
    # A line separator passes the form's own check for long answers; the service refuses it.
    href = later_slot(text(client.get("/book/intro")))
    response = book(client, href, name="Zoë <Visitor>", q_notes="first\u2028second")
    page = text(response)
    assert response.status_code == 400
    notes_errors = re.search(r'<ul class="field-errors" id="q_notes-error">\s*<li>([^<]+)</li>', page)
    assert notes_errors and "2000 characters of text" in notes_errors.group(1)
    assert 'value="Zoë &lt;Visitor&gt;"' in page and 'value="vera@example.org"' in page
    assert 'value="Our project"' in page and "first\u2028second</textarea>" in page
    assert bookings_count(store) == 0


def test_a_slot_taken_meanwhile_shows_the_times_still_free(app, client, store, link) -> None:
    href = later_slot(text(client.get("/book/intro?tz=Asia/Tokyo")))
    other = app.test_client()
    slow_form = text(other.get(href))
    token_of(book(client, href))
    response = other.post(href.split("?")[0], data=form_data(slow_form, email="slow@example.org"))
    assert response.status_code == 409
    page = text(response)
    assert TAKEN in page
    assert slot_hrefs(page) and href not in slot_hrefs(page)
    assert "Times are shown in <strong>Asia/Tokyo</strong>" in page  # the visitor's zone is kept
    assert bookings_count(store) == 1
    # Following the stale link later says the same without an error page.
    stale = other.get(href)
    assert stale.status_code == 409 and "not available any more" in text(stale)


def test_visitors_racing_for_one_slot_one_books_the_others_see_fresh_slots(app, store, link) -> None:
    racers = 50  # issue #5: 50 concurrent bookings at one slot, through the web form
    clients = [app.test_client() for _ in range(racers)]
    href = later_slot(text(clients[0].get("/book/intro")))
    forms = []
    for i, c in enumerate(clients):
        c.environ_base["REMOTE_ADDR"] = f"192.0.2.{i + 1}"
        forms.append(form_data(text(c.get(href)), email=f"racer{i}@example.org"))
    barrier = threading.Barrier(racers)
    answers: list = [None] * racers

    def race(i: int) -> None:
        barrier.wait()
        answers[i] = clients[i].post(href.split("?")[0], data=forms[i])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [303] + [409] * (racers - 1)
    for answer in answers:
        if answer.status_code == 409:
            assert TAKEN in text(answer) and slot_hrefs(text(answer)) and href not in slot_hrefs(text(answer))
    assert bookings_count(store) == 1


def test_unknown_disabled_and_garbage_addresses_are_plain_404s(client, store, host, home, link) -> None:
    private = booking_links.create(store, host.id, settings_for(home, title="Secret chat"), private=True)
    assert "Secret chat" in text(client.get(f"/book/{private.url_key}"))
    booking_links.update(store, link.id, host.id, link.settings, enabled=False)
    for url in ("/book/intro", "/book/nope", f"/book/{private.url_key[:-1]}", "/book/" + "a" * 300,
                "/book/intro/20991231T0900Z", "/book/%C3%A9t%C3%A9", "/booking/x", "/booking/" + "A" * 32,
                "/booking/" + "A" * 32 + "/invite.ics", "/booking/" + "A" * 32 + "/cancel",
                "/booking/" + "A" * 32 + "/reschedule", "/booking/" + "A" * 32 + "/reschedule/20991231T0900Z",
                "/booking/%00%01", "/booking/" + "é" * 40):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "There is no page at this address." in text(response)
        assert "Secret chat" not in text(response) and "Intro call" not in text(response)
    token = "A" * 32
    assert client.post(f"/booking/{token}/cancel", data={"csrf_token": auth_token(client, private)}).status_code \
        == 404


def auth_token(client, link) -> str:
    """A valid CSRF token of this client's session, from the public form page of `link`."""
    href = later_slot(text(client.get(f"/book/{link.url_key}")))
    return csrf_tokens(text(client.get(href)))[0]


def test_an_unreadable_conflict_calendar_makes_times_temporarily_unavailable(client, store, host, home) -> None:
    account = accounts.add(store, host.id, "local", "work", AccessMode.READ_WRITE, {})
    [work] = accounts.save_calendars(store, account.id, [CalendarInfo("local", "work")])
    booking_links.create(store, host.id, settings_for(home, conflict_calendar_ids=(work.id,)), slug="work")
    response = client.get("/book/work")
    assert response.status_code == 503
    assert "Times are temporarily unavailable" in text(response) and not slot_hrefs(text(response))
    tomorrow_nine = datetime.combine(datetime.now(BERLIN).date() + timedelta(days=1), time(9), BERLIN)
    form = client.get(f"/book/work/{tomorrow_nine.astimezone(UTC):%Y%m%dT%H%MZ}")
    assert form.status_code == 503 and "Times are temporarily unavailable" in text(form)


# -- moving a booking --------------------------------------------------------------------

def test_a_visitor_moves_a_booking_after_pressing_the_button(client, store, link) -> None:
    page = text(client.get("/book/intro?tz=America/New_York&duration=60"))
    first, second = later_slot(page), later_slot(page, index=1)
    token = token_of(book(client, first))

    picker = client.get(f"/booking/{token}/reschedule")
    body = text(picker)
    assert picker.status_code == 200 and "Times are shown in <strong>America/New_York</strong>" in body
    assert "Booked now" in body and "Meeting length" not in body  # same duration, no choice
    moves = slot_hrefs(body)
    target = next(h for h in moves if start_of(h) == start_of(second))
    assert target.startswith(f"/booking/{token}/reschedule/")

    confirm = client.get(target)
    assert confirm.status_code == 200 and "Move to the new time" in text(confirm)
    assert service.booking_by_token(store, token).start == start_of(first)  # GET changes nothing

    moved = client.post(target, data={"csrf_token": csrf_tokens(text(confirm))[0]})
    assert moved.status_code == 303 and moved.location == f"/booking/{token}"
    booking = service.booking_by_token(store, token)
    assert booking.start == start_of(second) and booking.duration == 60 and booking.sequence > 0
    after = text(client.get(f"/booking/{token}"))
    ny = start_of(second).astimezone(NEW_YORK)
    assert "Your booking is moved to" in after and f"{ny:%H:%M} – {ny + timedelta(hours=1):%H:%M}" in after
    assert client.get(f"/booking/{token}/reschedule/garbage").status_code == 400


# -- every page --------------------------------------------------------------------------

def test_every_visitor_page_is_standalone_accessible_and_self_contained(client, store, link) -> None:
    slots_url = "/book/intro?tz=America/New_York"
    href = later_slot(text(client.get(slots_url)))
    token = token_of(book(client, href))
    move = next(h for h in slot_hrefs(text(client.get(f"/booking/{token}/reschedule")))
                if start_of(h) > datetime.now(UTC) + timedelta(hours=2))
    urls = [slots_url, "/book/intro?tz=Nowhere/Else&from=x", href, f"/booking/{token}", f"/booking/{token}/cancel",
            f"/booking/{token}/reschedule", move, "/book/intro/garbage", "/booking/x"]
    for url in urls:
        response = client.get(url)
        page = text(response)
        assert response.status_code < 500 and response.mimetype == "text/html", url
        assert response.headers["Referrer-Policy"] == "no-referrer", url
        assert '<meta name="robots" content="noindex, nofollow">' in page, url
        assert "Log out" not in page and "site-nav" not in page, url  # not the admin shell
        # No external assets, no inline script or style (the CSP forbids them anyway).
        for tag, attr in re.findall(r"<(script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", page):
            assert attr.startswith("/static/"), (url, tag, attr)
        assert "<script>" not in page and "style=" not in page and "<style" not in page, url
        parsed = _Page()
        parsed.feed(page)
        assert parsed.headings.count(1) == 1, url
        for before, after in zip(parsed.headings, parsed.headings[1:], strict=False):
            assert after <= before + 1, f"{url}: h{before} then h{after}"
        assert not [i for i, n in parsed.ids.items() if n > 1], url
        for control in parsed.controls:
            assert control.get("id") in parsed.labelled or control["_in_label"], (url, control.get("name"))
        assert parsed.empty_buttons == 0, url
