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
from daemon.store.db import Store
from tests.e2e.conftest import ADMIN, PASSWORD
from tests.e2e import oauth_steps as steps
from tests.e2e.oauth_steps import public_fixture  # noqa: F401 - the `public` fixture
from tests.ms_helpers import microsoft_config

pytestmark = pytest.mark.e2e

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


@pytest.fixture
def people(graph_fake, ms_login) -> Iterator[object]:
    graph_fake.directory.add_user(ANN)
    graph_fake.mailbox(ANN)
    graph_fake.add_calendar(ANN, SECOND)
    ms_login.sign_in_as = ANN
    yield graph_fake


@pytest.fixture
def config(config: Config, graph_fake, ms_login) -> Config:
    """The app's config with [microsoft] pointed at the fakes."""
    return microsoft_config(graph_fake, ms_login, config)


def _route_to_fake(context, ms_login) -> list[str]:
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
        public: str, browser, people, ms_login, store: Store, config: Config) -> None:
    from playwright.sync_api import expect

    admin = users.create(store, ADMIN, PASSWORD, is_admin=True)
    with steps.browser_walk(browser) as walk:
        page = walk.page
        # routes apply to every page of the context, so the one already open goes through them too
        opened = _route_to_fake(walk.context, ms_login)
        steps.log_in(page, public)

        # -- 1. link in free-busy mode: the permissions are on the form before anything is sent
        steps.open_add_form(page, re.compile("^Microsoft 365 or Outlook.com"), "Add a Microsoft account", MODES)
        expect(page.get_by_text("start, end and show-as", exact=False)).to_be_visible()
        expect(page.get_by_text(f"{public}/accounts/microsoft/callback", exact=True)).to_be_visible()
        page.get_by_label("Account name").fill(NAME)
        page.get_by_label("Free/busy only", exact=True).check()
        steps.shot(page, "account-microsoft")
        page.get_by_role("button", name="Continue to Microsoft").click()

        # through Microsoft's sign-in page (CSP form-action followed the redirect) and back
        expect(page).to_have_url(re.compile(re.escape(f"{public}/accounts/") + r"#account-\d+$"))
        assert opened == ["/common/oauth2/v2.0/authorize"], "the browser never reached Microsoft's sign-in page"
        account, card = steps.expect_linked(page, store, admin.id, "microsoft", AccessMode.FREE_BUSY, NAME, ANN)
        expect(card.locator(".calendar-table tbody th")).to_have_text(["Calendar", SECOND])
        expect(card.get_by_text("Free/busy only")).to_be_visible()
        steps.shot(page, "account-microsoft-linked")
        calendar_ids = sorted(c.id for c in accounts.calendars(store, account.id))

        # -- 2. a password change: Microsoft refuses homecal's sign-in, nothing is deleted
        people.directory.revoke(ANN)
        with pytest.raises(AuthError):
            linking.refresh(store, config, account)
        assert accounts.get(store, account.id).status == "needs-relink"

        row = steps.needs_relink_row(page, public, account)
        steps.open_relink(page, public, row, account, NAME)
        expect(page.get_by_text("Calendars.ReadBasic", exact=True)).to_be_visible()
        steps.shot(page, "account-microsoft-relink")
        page.get_by_role("button", name="Continue to Microsoft").click()

        steps.expect_relinked(page, public, account, NAME, ANN)
        assert len(opened) == 2
        assert accounts.get(store, account.id).status == "ok"
        assert sorted(c.id for c in accounts.calendars(store, account.id)) == calendar_ids

        # -- 3. a declined consent: back on the form, told plainly, nothing linked
        ms_login.deny_next = True
        steps.decline_consent(page, public, "microsoft", "Continue to Microsoft",
                        "You declined access on Microsoft's sign-in page, so nothing was linked.")
        assert len(opened) == 3
        assert [a.name for a in accounts.all_accounts(store, admin.id)] == [NAME]
        steps.shot(page, "account-microsoft-declined")
        assert walk.problems == []
