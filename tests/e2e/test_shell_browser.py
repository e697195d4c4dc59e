"""A real Chromium walks the web shell: first-run setup, dashboard, log out, log in.

The app runs under waitress exactly as in production. Screenshots at phone size land in
test-artifacts/screenshots/ for a human to look at. Without /usr/bin/chromium the test is
skipped, unless HOMECAL_REQUIRE_E2E=1 demands that it runs (CI sets it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import waitress

from tests.conftest import free_port
from webui import create_app

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 740}
ADMIN, PASSWORD = "admin", "correct horse battery"


def _unavailable(reason: str) -> None:
    """Skip, or fail when the environment promised a browser."""
    if os.environ.get("HOMECAL_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason}, but HOMECAL_REQUIRE_E2E=1 requires the browser tests to run")
    pytest.skip(reason)


@pytest.fixture
def live_server(config, store) -> Iterator[str]:
    app = create_app(config, store)
    port = free_port()
    server = waitress.create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, name="waitress-e2e", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


def _fits_the_screen(page) -> bool:
    """No horizontal scrolling: everything fits the phone's width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


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
        assert _fits_the_screen(page)
        page.screenshot(path=str(SCREENSHOTS / "setup.png"), full_page=True)

        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Repeat password").fill(PASSWORD)
        page.get_by_role("button", name="Create admin account").click()

        expect(page).to_have_url(f"{live_server}/")
        expect(page.get_by_role("heading", name=f"Welcome, {ADMIN}")).to_be_visible()
        expect(page.get_by_text("No calendar accounts yet")).to_be_visible()
        assert _fits_the_screen(page)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{live_server}/login")
        expect(page.get_by_text("You have been logged out.")).to_be_visible()
        assert _fits_the_screen(page)
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
        _unavailable("no browser")
    monkeypatch.setenv("HOMECAL_REQUIRE_E2E", "1")
    with pytest.raises(pytest.fail.Exception, match="HOMECAL_REQUIRE_E2E=1"):
        _unavailable("no browser")
