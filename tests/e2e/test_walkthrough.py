"""The walk a new user takes, in a real Chromium against a real Radicale (issue #4, point 8),
and on to a booking link a visitor books and cancels (issue #5, point 9).

First-run setup, log in, link a CalDAV account on Radicale, add a local calendar, create a
busy rule and look at its dry-run preview, save it, sync, and find the events in the week
view (the source's events, and homecal's busy blocks once copies are shown). Desktop-size
screenshots of the main pages are saved on the way (test-artifacts/screenshots/); the best
go into docs/screenshots and the README.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import ADMIN, CONTRAST_JS, PASSWORD, PHONE, SCREENSHOTS, fits_the_screen
from tests.servers import RadicaleServer, SmtpSink

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 900}
EVENTS = [("Design review", 9), ("Lunch with Ana", 12), ("Dentist", 16)]


def event_ics(uid: str, summary: str, start: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//e2e//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(fmt)}\r\n"
            f"DTEND:{(start + timedelta(hours=1)).strftime(fmt)}\r\nSUMMARY:{summary}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def shot(page, name: str) -> None:
    """Save a screenshot, and check on the way that every text on the page is readable."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    low = page.evaluate(CONTRAST_JS)
    assert low == [], f"{name}: text below the WCAG AA contrast: {low}"


def test_setup_link_caldav_busy_rule_sync_week_view_and_a_visitor_books(live_server: str, browser,
                                                                        radicale: RadicaleServer,
                                                                        smtp_sink: SmtpSink) -> None:
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dav_user = radicale.new_user("walk")
    cal_url = radicale.make_calendar(dav_user, "work", name="Work")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for n, (summary, hour) in enumerate(EVENTS):
        radicale.put(dav_user, f"{cal_url}e{n}.ics", event_ics(f"e{n}", summary, today + timedelta(hours=hour)))

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    try:
        # first run: the admin account, then the empty dashboard
        page.goto(f"{live_server}/")
        expect(page).to_have_url(f"{live_server}/setup")
        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Repeat password").fill(PASSWORD)
        page.get_by_role("button", name="Create admin account").click()
        expect(page).to_have_url(f"{live_server}/")

        # log out and in again, as a returning user does
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{live_server}/")

        # link the CalDAV account: the access modes are explained before anything is sent
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
        page.goto(f"{live_server}/accounts/add/caldav")
        expect(page.get_by_role("heading", name="Add a CalDAV account")).to_be_visible()
        expect(page.get_by_text("Free/busy", exact=False).first).to_be_visible()
        page.get_by_label("Account name").fill("Radicale")
        page.get_by_label("Server address").fill(radicale.url)
        page.get_by_label("User name").fill(dav_user)
        page.get_by_label("Password", exact=True).fill(radicale.password(dav_user))
        shot(page, "account-caldav")
        page.get_by_role("button", name="Link account").click()
        expect(page.get_by_text("Work").first).to_be_visible()

        # a local calendar as the target
        page.goto(f"{live_server}/accounts/add/local")
        page.get_by_label("Account name").fill("Home")
        page.get_by_role("button", name="Add calendar").click()
        expect(page).to_have_url(re.compile(r"/accounts/#account-\d+$"))
        shot(page, "accounts")

        # a busy rule, previewed before it is saved
        page.goto(f"{live_server}/rules/new")
        page.get_by_role("group", name="From").get_by_label("Work", exact=False).check()
        into = page.get_by_label("Into")
        into.select_option(label=next(o for o in into.locator("option").all_inner_texts() if "Home" in o))
        page.get_by_role("button", name="Preview").click()
        preview = page.locator("main")
        expect(preview.get_by_text("Busy").first).to_be_visible()
        expect(preview.get_by_text("3 to create", exact=False).or_(preview.get_by_text("3 created", exact=False))
               .or_(preview.get_by_text("create 3", exact=False)).first).to_be_visible()
        shot(page, "rule-preview")
        page.get_by_role("button", name="Save rule").first.click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()

        # sync now from the dashboard
        page.goto(f"{live_server}/")
        page.get_by_role("button", name="Sync now").first.click()
        expect(page.get_by_text("3 created", exact=False).first).to_be_visible()

        page.goto(f"{live_server}/")
        shot(page, "dashboard")

        # the week view: the source's events at their times; the copies only when asked for
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendar").click()
        page.get_by_role("navigation", name="Views").get_by_role("link", name="Week").click()
        for summary, _ in EVENTS:
            expect(page.get_by_role("link", name=summary, exact=False).first).to_be_visible()
        assert page.get_by_role("link", name=re.compile(r"^Busy")).count() == 0
        shot(page, "calendar-week")
        page.get_by_role("link", name="Show copies made by homecal", exact=False).click()
        expect(page.get_by_role("link", name=re.compile(r"^Busy"))).to_have_count(3)

        # keyboard: the month view is one key away
        page.locator("body").press("m")
        expect(page).to_have_url(re.compile(r"view=month"))
        shot(page, "calendar-month")
        page.goto(f"{live_server}/calendar/?view=agenda")
        shot(page, "calendar-agenda")
        page.goto(f"{live_server}/rules/")
        shot(page, "rules")
        page.goto(f"{live_server}/settings/")
        shot(page, "settings")
        page.goto(f"{live_server}/feeds/")
        shot(page, "feeds")
        assert fits_the_screen(page)

        booking_walk(page, browser, live_server, smtp_sink)
        assert console_errors == []
    finally:
        context.close()


def booking_walk(page, browser, live_server: str, sink: SmtpSink) -> None:
    """Issue #5, point 9: the host makes a booking link, a visitor in another browser books
    it, the host sees it in the calendar, and the visitor cancels from the link in the mail."""
    from playwright.sync_api import expect

    # mail through the real SMTP server on loopback, and links that point at this server
    page.goto(f"{live_server}/settings/mail")
    page.get_by_label("SMTP server").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(sink.port))
    page.get_by_label("Security").select_option("none")
    page.get_by_label("Sender address").fill("homecal@example.org")
    page.get_by_role("button", name="Save mail settings").click()
    page.goto(f"{live_server}/settings/public-url")
    page.get_by_role("textbox", name="Public URL").fill(live_server)
    page.get_by_role("button", name="Save public URL").click()

    # the host's link: every day bookable, no notice, so the test runs on any day
    page.goto(f"{live_server}/links/new")
    page.get_by_label("Title").fill("Intro call")
    page.get_by_label("Address name").fill("intro")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        page.get_by_label(day, exact=True).fill("00:00-24:00")
    page.get_by_label("Minimum notice (minutes)").fill("0")
    shot(page, "booking-link-form")
    page.get_by_role("button", name="Save booking link").click()
    expect(page.get_by_text("/book/intro").first).to_be_visible()
    shot(page, "booking-links")

    # a visitor in New York, on a phone, in a browser of their own
    visitor = browser.new_context(viewport=PHONE, timezone_id="America/New_York")
    try:
        vpage = visitor.new_page()
        errors: list[str] = []
        vpage.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        vpage.goto(f"{live_server}/book/intro")
        # the browser's zone is picked up by booking.js; the no-JS form names it
        expect(vpage).to_have_url(re.compile(r"tz=America%2FNew_York|tz=America/New_York"))
        expect(vpage.get_by_label("Your time zone")).to_have_value("America/New_York")
        shot(vpage, "booking-visitor-slots")
        assert fits_the_screen(vpage)
        # not the first: under load the next half hour may begin before the form is sent
        slot = vpage.locator("a.slot").nth(3)
        when = slot.locator("time").get_attribute("datetime")
        slot.click()
        vpage.get_by_label("Your name").fill("Visitor Vera")
        vpage.get_by_label("Your e-mail address").fill("vera@example.org")
        shot(vpage, "booking-visitor-form")
        vpage.get_by_role("button", name="Confirm booking").click()
        expect(vpage.get_by_role("heading", name="You’re booked")).to_be_visible()
        shot(vpage, "booking-visitor-booked")

        # the host sees it in the calendar, on its day
        day = datetime.fromisoformat(when).astimezone(UTC).date()
        page.goto(f"{live_server}/calendar/?view=day&date={day.isoformat()}")
        expect(page.get_by_role("link", name="Intro call: Visitor Vera", exact=False).first).to_be_visible()
        shot(page, "booking-host-calendar")

        # two invitations arrive (visitor and host may be one mail each); the visitor's has the links
        mails = sink.wait_for(1, timeout=30)
        to_vera = next(m for m in mails if "vera@example.org" in m.rcpt_tos)
        assert to_vera.message.get_content_type() == "multipart/mixed"
        text = to_vera.message.get_body(("plain",)).get_content()
        manage = re.search(r"https?://\S+/booking/\S+", text).group(0)
        assert manage.startswith(live_server)
        vpage.goto(manage)
        vpage.get_by_role("link", name="Cancel").click()
        expect(vpage.get_by_role("heading", name="Cancel this booking?")).to_be_visible()
        vpage.get_by_role("button", name="Cancel this booking").click()
        expect(vpage.get_by_role("heading", name="This booking is cancelled")).to_be_visible()
        shot(vpage, "booking-visitor-cancelled")
        assert errors == []
    finally:
        visitor.close()

    page.goto(f"{live_server}/calendar/?view=day&date={day.isoformat()}")
    expect(page.get_by_role("link", name="Intro call: Visitor Vera", exact=False)).to_have_count(0)


def test_the_contrast_check_sees_pale_text(browser) -> None:
    page = browser.new_page()
    try:
        page.set_content('<body><p style="color:#aaaaaa">pale</p><p style="color:#333333">dark</p>'
                         '<h1 style="color:#888888;font-size:32px">big grey</h1></body>')
        low = page.evaluate(CONTRAST_JS)
        assert len(low) == 1 and '"pale"' in low[0]
    finally:
        page.close()
