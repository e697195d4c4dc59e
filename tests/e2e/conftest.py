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


#: WCAG 2 contrast of every visible text against the background it sits on; returns the
#: elements under 4.5:1 (3:1 for large text: 24px, or 18.66px bold)
CONTRAST_JS = """
() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width === 0 || box.height === 0 || el.closest('[hidden]')) continue;
    if (el.closest('.visually-hidden, .cal-sr, .skip-link')) continue;
    const fg = parse(style.color), bg = background(el);
    const hi = Math.max(lum(fg), lum(bg)), lo = Math.min(lum(fg), lum(bg));
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < need) bad.push(`${el.tagName.toLowerCase()}.${el.className} "${walker.currentNode.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  return bad;
}
"""
