"""Linking a Microsoft account from the web UI, in a real Chromium, against the fake sign-in
service (tests/fakes/ms_login.py) and the fake Graph API (tests/fakes/graph_api.py) on loopback
(issue #7).

What only a browser proves: the "Continue to Microsoft" form posts to homecal, which answers
with a redirect to Microsoft's sign-in page; Chromium applies the page's CSP form-action to that
redirect too, so linking works only if the page allows the authority's origin. msal names
Microsoft's real https host in the sign-in URL, so the browser context routes that host to the
fake (the request still leaves the page as it would for real, CSP included). The walk: log in,
add a Microsoft account in free-busy mode (the form shows each mode's exact permissions), come
back to the account with both of ann's calendars; Microsoft then refuses the sign-in (a password
change), the account needs re-linking and the dashboard says so, and the Re-link button leads
through Microsoft's page back to the same account, healthy. A declined consent brings the user
back to the form with a plain message and links nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from daemon import linking
from daemon.config import Config
from daemon.errors import AuthError
from daemon.models import AccessMode
from daemon.store import accounts, users
from daemon.store import settings as global_settings
from daemon.store.db import Store
from tests.e2e.conftest import ADMIN, CONTRAST_JS, PASSWORD, SCREENSHOTS
from tests.fakes.graph_api import graph_fake  # noqa: F401  (until tests/conftest.py imports it)
from tests.fakes.ms_directory import ms_directory  # noqa: F401
from tests.fakes.ms_login import ms_login  # noqa: F401
from tests.ms_helpers import microsoft_config

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 900}
ANN = "ann@contoso.com"
SECOND = "Family"
NAME = "Ann at Contoso"
AUTHORITY_HOST = "https://login.microsoftonline.com"
#: each mode's radio label and the exact permissions its block must list (no-access: none)
MODES = {
    "Read and write": ["Calendars.ReadWrite", "User.Read"],
    "Free/busy only": ["Calendars.ReadBasic", "User.Read"],
    "No access": [],
}
#: Playwright's waits: a loaded 2-core machine can be slow, a broken page fails anyway
WAIT_MS = 15_000


@pytest.fixture
def people(graph_fake, ms_login) -> Iterator[object]:  # noqa: F811
    graph_fake.directory.add_user(ANN)
    graph_fake.mailbox(ANN)
    graph_fake.add_calendar(ANN, SECOND)
    ms_login.sign_in_as = ANN
    yield graph_fake


@pytest.fixture
def config(config: Config, graph_fake, ms_login) -> Config:  # noqa: F811
    """The app's config with [microsoft] pointed at the fakes."""
    return microsoft_config(graph_fake, ms_login, config)


@pytest.fixture
def public(live_server: str, store: Store) -> str:
    """The live server's address as the public URL: Microsoft sends the browser back there."""
    global_settings.save_public_url(store, live_server)
    return live_server


def shot(page, name: str) -> None:
    """Save a screenshot, and check on the way that every text on the page is readable."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    low = page.evaluate(CONTRAST_JS)
    assert low == [], f"{name}: text below the WCAG AA contrast: {low}"


def _route_to_fake(context, ms_login) -> list[str]:  # noqa: F811
    """Send the browser's requests for Microsoft's host to the fake; returns the paths it opened."""
    opened: list[str] = []

    def handle(route) -> None:
        url = route.request.url
        opened.append(url[len(AUTHORITY_HOST):].split("?", 1)[0])
        answer = requests.get(ms_login.endpoint + url[len(AUTHORITY_HOST):], allow_redirects=False, timeout=10)
        headers = {k: v for k, v in answer.headers.items() if k.lower() in ("location", "content-type")}
        route.fulfill(status=answer.status_code, headers=headers, body=answer.content)

    context.route(f"{AUTHORITY_HOST}/**", handle)
    return opened


def test_link_free_busy_through_microsoft_then_relink_after_a_password_change_and_a_declined_consent(
        public: str, browser, people, ms_login, store: Store, config: Config) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    admin = users.create(store, ADMIN, PASSWORD, is_admin=True)
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    opened = _route_to_fake(context, ms_login)
    page = context.new_page()
    problems: list[str] = []
    # a CSP refusal shows up as a console error (and the navigation stops short of Microsoft)
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    try:
        page.goto(f"{public}/login")
        page.get_by_label("User name").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{public}/")

        # -- 1. link in free-busy mode: the permissions are on the form before anything is sent
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
        page.get_by_role("link", name="Add an account").first.click()
        page.get_by_role("link", name=re.compile("^Microsoft 365 or Outlook.com")).click()
        expect(page.get_by_role("heading", name="Add a Microsoft account")).to_be_visible()
        choices = page.locator(".choice")
        expect(choices).to_have_count(len(MODES))
        for block, (label, scopes) in zip(choices.all(), MODES.items(), strict=True):
            expect(block.get_by_label(label, exact=True)).to_be_visible()
            expect(block.locator("code")).to_have_text(scopes)
        expect(page.get_by_text("start, end and show-as", exact=False)).to_be_visible()
        expect(page.get_by_text(f"{public}/accounts/microsoft/callback", exact=True)).to_be_visible()
        page.get_by_label("Account name").fill(NAME)
        page.get_by_label("Free/busy only", exact=True).check()
        shot(page, "account-microsoft")
        page.get_by_role("button", name="Continue to Microsoft").click()

        # through Microsoft's sign-in page (CSP form-action followed the redirect) and back
        expect(page).to_have_url(re.compile(re.escape(f"{public}/accounts/") + r"#account-\d+$"))
        assert opened == ["/common/oauth2/v2.0/authorize"], "the browser never reached Microsoft's sign-in page"
        [account] = accounts.all_accounts(store, admin.id)
        assert (account.kind, account.mode, account.status) == ("microsoft", AccessMode.FREE_BUSY, "ok")
        card = page.locator(f"#account-{account.id}")
        expect(card.get_by_role("heading", name=NAME)).to_be_visible()
        expect(page.get_by_text(f"Linked {NAME} ({ANN}) with 2 calendars.")).to_be_visible()
        expect(card.locator(".calendar-table tbody th")).to_have_text(["Calendar", SECOND])
        expect(card.get_by_text("Free/busy only")).to_be_visible()
        shot(page, "account-microsoft-linked")
        calendar_ids = sorted(c.id for c in accounts.calendars(store, account.id))

        # -- 2. a password change: Microsoft refuses homecal's sign-in, nothing is deleted
        people.directory.revoke(ANN)
        with pytest.raises(AuthError):
            linking.refresh(store, config, account)
        assert accounts.get(store, account.id).status == "needs-relink"

        page.goto(f"{public}/")
        row = page.locator(f"tr#account-{account.id}")
        expect(row.locator(".badge")).to_have_text(re.compile(r"Needs re-link$"))
        row.get_by_role("link", name=f"Re-link {NAME}").click()
        expect(page).to_have_url(f"{public}/accounts/#account-{account.id}")
        page.locator(f"#account-{account.id}").get_by_role("link", name=f"Re-link {NAME}").click()
        expect(page.get_by_role("heading", name=f"Re-link {NAME}")).to_be_visible()
        expect(page.get_by_text("nothing was deleted", exact=False)).to_be_visible()
        expect(page.get_by_text("Calendars.ReadBasic", exact=True)).to_be_visible()
        shot(page, "account-microsoft-relink")
        page.get_by_role("button", name="Continue to Microsoft").click()

        expect(page).to_have_url(f"{public}/accounts/#account-{account.id}")
        assert len(opened) == 2
        expect(page.get_by_text(f"Re-linked {NAME} ({ANN}) with 2 calendars.")).to_be_visible()
        card = page.locator(f"#account-{account.id}")
        expect(card.locator(".badge")).to_have_text(re.compile("Healthy"))
        assert accounts.get(store, account.id).status == "ok"
        assert sorted(c.id for c in accounts.calendars(store, account.id)) == calendar_ids

        # -- 3. a declined consent: back on the form, told plainly, nothing linked
        ms_login.deny_next = True
        page.goto(f"{public}/accounts/microsoft/new")
        page.get_by_label("Account name").fill("Declined")
        page.get_by_label("Read and write", exact=True).check()
        page.get_by_role("button", name="Continue to Microsoft").click()
        expect(page.get_by_text("You declined access on Microsoft's sign-in page, so nothing was linked.",
                                exact=False)).to_be_visible()
        expect(page).to_have_url(re.compile(re.escape(f"{public}/accounts/microsoft/new?")))
        expect(page.get_by_label("Account name")).to_have_value("Declined")
        assert len(opened) == 3
        assert [a.name for a in accounts.all_accounts(store, admin.id)] == [NAME]
        shot(page, "account-microsoft-declined")
        assert problems == []
    finally:
        context.close()
        expect.set_options(timeout=None)  # back to Playwright's default for the other tests
