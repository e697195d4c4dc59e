"""A real Chromium walks the web shell: first-run setup, dashboard, log out, log in.

The app runs under waitress exactly as in production. Screenshots at phone size land in
test-artifacts/screenshots/ for a human to look at. Without /usr/bin/chromium the test is
skipped, unless HOMECAL_REQUIRE_E2E=1 demands that it runs (CI sets it).
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ADMIN, PASSWORD, PHONE, SCREENSHOTS, fits_the_screen, unavailable

pytestmark = pytest.mark.e2e


def test_setup_dashboard_logout_login(live_server: str, browser) -> None:
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    # A CSP violation (inline style or script) or a failed asset shows up as a console error.
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(f"{live_server}/")
        expect(page).to_have_url(f"{live_server}/setup")
        expect(page.get_by_role("heading", name="Welcome to homecal")).to_be_visible()
        assert fits_the_screen(page)
        page.screenshot(path=str(SCREENSHOTS / "setup.png"), full_page=True)

        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Repeat password").fill(PASSWORD)
        page.get_by_role("button", name="Create admin account").click()

        expect(page).to_have_url(f"{live_server}/")
        expect(page.get_by_role("heading", name=f"Welcome, {ADMIN}")).to_be_visible()
        expect(page.get_by_text("No calendar accounts yet")).to_be_visible()
        assert fits_the_screen(page)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{live_server}/login")
        expect(page.get_by_text("You have been logged out.")).to_be_visible()
        assert fits_the_screen(page)
        page.screenshot(path=str(SCREENSHOTS / "login.png"), full_page=True)

        page.goto(f"{live_server}/")
        expect(page).to_have_url(f"{live_server}/login")
        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{live_server}/")
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

        assert console_errors == []
    finally:
        context.close()


def test_missing_browser_skips_unless_required(monkeypatch) -> None:
    monkeypatch.delenv("HOMECAL_REQUIRE_E2E", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("no browser")
    monkeypatch.setenv("HOMECAL_REQUIRE_E2E", "1")
    with pytest.raises(pytest.fail.Exception, match="HOMECAL_REQUIRE_E2E=1"):
        unavailable("no browser")
