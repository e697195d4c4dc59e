"""The browser steps that linking a Google and a Microsoft account share (issues #6 and #7).

Both walks log in, open the provider's "Add an account" form and read each mode's permissions
on it, come back from the provider's consent page to the linked account, find it marked on
the dashboard, re-link it from there and decline consent once. The steps here hold those
shared parts and their checks; each test keeps what differs (the provider's fake, its scopes,
how the browser reaches it) and the order of the walk.

`public_fixture` is the `public` fixture: import it into the test module (`# noqa: F401`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from daemon.models import AccessMode
from daemon.store import accounts
from daemon.store import settings as global_settings
from daemon.store.accounts import Account
from daemon.store.db import Store
from tests.e2e.conftest import ADMIN, CONTRAST_JS, PASSWORD, SCREENSHOTS

__all__ = ["DESKTOP", "WAIT_MS", "Walk", "browser_walk", "decline_consent", "expect_linked", "expect_relinked",
           "log_in", "needs_relink_row", "open_add_form", "open_relink", "public_fixture", "shot"]

DESKTOP = {"width": 1280, "height": 900}
#: Playwright's waits: a loaded 2-core machine can be slow, a broken page fails anyway
WAIT_MS = 15_000


@pytest.fixture(name="public")
def public_fixture(live_server: str, store: Store) -> str:
    """The live server's address as the public URL: the provider sends the browser back there."""
    global_settings.save_public_url(store, live_server)
    return live_server


def shot(page: Any, name: str) -> None:
    """Save a screenshot, and check on the way that every text on the page is readable."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    low = page.evaluate(CONTRAST_JS)
    assert low == [], f"{name}: text below the WCAG AA contrast: {low}"


@dataclass
class Walk:
    """One desktop browser context and its page; `problems` collects console errors."""

    context: Any
    page: Any
    problems: list[str] = field(default_factory=list)


@contextmanager
def browser_walk(browser: Any) -> Iterator[Walk]:
    """A desktop context with WAIT_MS timeouts (Playwright's defaults restored afterwards)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=DESKTOP)
    try:
        context.set_default_timeout(WAIT_MS)
        walk = Walk(context, context.new_page())
        # a CSP refusal shows up as a console error (and the navigation stops short of the provider)
        walk.page.on("console", lambda msg: walk.problems.append(msg.text) if msg.type == "error" else None)
        walk.page.on("pageerror", lambda err: walk.problems.append(str(err)))
        yield walk
    finally:
        context.close()
        expect.set_options(timeout=None)  # back to Playwright's default for the other tests


def log_in(page: Any, public: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{public}/login")
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{public}/")


def open_add_form(page: Any, provider_link: str | re.Pattern, heading: str, modes: dict[str, list[str]]) -> None:
    """From the main navigation to the provider's form; each mode's block lists exactly its scopes."""
    from playwright.sync_api import expect

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name="Add an account").first.click()
    page.get_by_role("link", name=provider_link).click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    choices = page.locator(".choice")
    expect(choices).to_have_count(len(modes))
    for block, (label, scopes) in zip(choices.all(), modes.items(), strict=True):
        expect(block.get_by_label(label, exact=True)).to_be_visible()
        expect(block.locator("code")).to_have_text(scopes)


def expect_linked(page: Any, store: Store, owner_id: int, kind: str, mode: AccessMode, name: str,
                  email: str) -> tuple[Account, Any]:
    """Back from consent: the owner's only account, healthy, its card and the "Linked" message shown.
    Returns the account and its card."""
    from playwright.sync_api import expect

    [account] = accounts.all_accounts(store, owner_id)
    assert (account.kind, account.mode, account.status) == (kind, mode, "ok")
    card = page.locator(f"#account-{account.id}")
    expect(card.get_by_role("heading", name=name)).to_be_visible()
    expect(page.get_by_text(f"Linked {name} ({email}) with 2 calendars.")).to_be_visible()
    return account, card


def needs_relink_row(page: Any, public: str, account: Account) -> Any:
    """The dashboard, where the account's row is badged "Needs re-link"; returns the row."""
    from playwright.sync_api import expect

    page.goto(f"{public}/")
    row = page.locator(f"tr#account-{account.id}")
    expect(row.locator(".badge")).to_have_text(re.compile(r"Needs re-link$"))
    return row


def open_relink(page: Any, public: str, row: Any, account: Account, name: str) -> None:
    """From the dashboard row through the account's card to its re-link page, which says nothing was deleted."""
    from playwright.sync_api import expect

    row.get_by_role("link", name=f"Re-link {name}").click()
    expect(page).to_have_url(f"{public}/accounts/#account-{account.id}")
    page.locator(f"#account-{account.id}").get_by_role("link", name=f"Re-link {name}").click()
    expect(page.get_by_role("heading", name=f"Re-link {name}")).to_be_visible()
    expect(page.get_by_text("nothing was deleted", exact=False)).to_be_visible()


def expect_relinked(page: Any, public: str, account: Account, name: str, email: str) -> Any:
    """Back from consent on the same account's card, "Re-linked" and healthy; returns the card."""
    from playwright.sync_api import expect

    expect(page).to_have_url(f"{public}/accounts/#account-{account.id}")
    expect(page.get_by_text(f"Re-linked {name} ({email}) with 2 calendars.")).to_be_visible()
    card = page.locator(f"#account-{account.id}")
    expect(card.locator(".badge")).to_have_text(re.compile("Healthy"))
    return card


def decline_consent(page: Any, public: str, kind: str, button: str, message: str) -> None:
    """Start linking "Declined" read-write and decline (the fake was told to): back on the filled
    form with `message`."""
    from playwright.sync_api import expect

    page.goto(f"{public}/accounts/{kind}/new")
    page.get_by_label("Account name").fill("Declined")
    page.get_by_label("Read and write", exact=True).check()
    page.get_by_role("button", name=button).click()
    expect(page.get_by_text(message, exact=False)).to_be_visible()
    expect(page).to_have_url(re.compile(re.escape(f"{public}/accounts/{kind}/new?")))
    expect(page.get_by_label("Account name")).to_have_value("Declined")
