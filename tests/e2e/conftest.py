"""Shared fixtures of the browser tests: the app under waitress on a free port, and Debian's
Chromium driven by Playwright.

Without /usr/bin/chromium the tests are skipped, unless HOMECAL_REQUIRE_E2E=1 demands that
they run (CI sets it). Screenshots land in test-artifacts/screenshots/ for a human to look at.
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

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 740}
ADMIN, PASSWORD = "admin", "correct horse battery"


def unavailable(reason: str) -> None:
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
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
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


def fits_the_screen(page) -> bool:
    """No horizontal scrolling: everything fits the phone's width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
