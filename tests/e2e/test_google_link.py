"""Linking a Google account from the web UI, in a real Chromium, against the fake Google
(tests/fakes/google_api.py) on loopback (issue #6).

What only a browser proves: the "Continue to Google" form posts to homecal, which answers with
a redirect to Google's consent screen; Chromium applies the page's CSP form-action to that
redirect too, so linking works only if the page allows Google's origin. The walk: log in, add
a Google account in free-busy mode (the form shows each mode's exact scopes), come back from
the consent screen to the account with both of ann's calendars; Google then refuses the token,
a sync marks the account, the dashboard says it needs re-linking and that nothing was deleted,
and the Re-link button leads through the consent screen back to the same account, healthy.
A declined consent brings the user back to the form with a plain message and links nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from daemon import linking
from daemon.config import Config
from daemon.models import AccessMode, Style
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.store.db import Store
from daemon.sync.cycle import run_sync
from daemon.sync.options import RuleOptions
from tests.e2e.conftest import ADMIN, PASSWORD
from tests.e2e import oauth_steps as steps
from tests.e2e.oauth_steps import public_fixture  # noqa: F401 - the `public` fixture
from tests.fakes.google_api import GoogleFake
from tests.google_helpers import google_config

pytestmark = pytest.mark.e2e

ANN = "ann@example.com"
SECOND = "Family"
NAME = "Ann at Google"
G = "https://www.googleapis.com/auth/"
#: each mode's radio label and the exact scopes its block must list (no-access: none)
MODES = {
    "Read and write": [f"{G}calendar.events", f"{G}calendar.calendarlist.readonly", "openid", "email"],
    "Free/busy only": [f"{G}calendar.events.freebusy", f"{G}calendar.calendarlist.readonly"],
    "No access": [],
}


@pytest.fixture(autouse=True)
def _oauthlib_env_restored(monkeypatch) -> None:
    """oauth_google sets OAUTHLIB_INSECURE_TRANSPORT for the fake's http endpoints on loopback;
    setting it here first makes monkeypatch put the variable back as it was afterwards."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake() as running:
        running.add_user(ANN)
        running.add_calendar(ANN, summary=SECOND, access_role="owner")
        running.login_as = ANN
        yield running


@pytest.fixture
def config(config: Config, fake: GoogleFake) -> Config:
    """The app's config with [google] pointed at the fake (endpoints and its OAuth client)."""
    return google_config(config, fake)


def test_link_free_busy_through_consent_then_relink_after_google_refuses_and_a_declined_consent(
        public: str, browser, fake: GoogleFake, store: Store, config: Config) -> None:
    from playwright.sync_api import expect

    admin = users.create(store, ADMIN, PASSWORD, is_admin=True)
    with steps.browser_walk(browser) as walk:
        page = walk.page
        steps.log_in(page, public)

        # -- 1. link in free-busy mode: the scopes are on the form before anything is sent
        steps.open_add_form(page, "Google Calendar", "Add a Google account", MODES)
        expect(page.get_by_text(f"{G}calendar.events.freebusy", exact=True)).to_be_visible()
        expect(page.get_by_text(f"{public}/accounts/google/callback", exact=True)).to_be_visible()
        page.get_by_label("Account name").fill(NAME)
        page.get_by_label("Free/busy only", exact=True).check()
        steps.shot(page, "account-google")
        consents = _consent_count(fake)
        page.get_by_role("button", name="Continue to Google").click()

        # through the consent screen (CSP form-action followed the redirect) and back
        expect(page).to_have_url(re.compile(re.escape(f"{public}/accounts/") + r"#account-\d+$"))
        assert _consent_count(fake) == consents + 1, "the browser never reached Google's consent screen"
        account, card = steps.expect_linked(page, store, admin.id, "google", AccessMode.FREE_BUSY, NAME, ANN)
        rows = card.locator(".calendar-table tbody th")
        expect(rows).to_have_text([ANN, SECOND], ignore_case=False)
        expect(card.get_by_text("Free/busy only")).to_be_visible()
        steps.shot(page, "account-google-linked")
        calendar_ids = sorted(c.id for c in accounts.calendars(store, account.id))

        # -- 2. a busy rule from ann's calendar: one block copied while Google still answers
        family = next(c for c in accounts.calendars(store, account.id) if c.name == SECOND)
        home, [target] = linking.link(store, config, admin.id, "local", "Home", AccessMode.READ_WRITE, {})
        start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        fake.put_event(family.remote_id, {"summary": "School run", "start": _gtime(start),
                                          "end": _gtime(start + timedelta(hours=1))})
        rule = rules_repo.add(store, admin.id, [family.id], target.id, RuleOptions(style=Style.BUSY))
        (report,) = run_sync(store, config, refresh=True)
        assert (report.status, report.created) == ("ok", 1), report.message

        # -- 3. Google refuses: the next sync marks the account and deletes nothing
        fake.revoke(ANN)
        fake.expire_access_tokens()
        (report,) = run_sync(store, config, refresh=True)
        assert report.status == "error"
        assert accounts.get(store, account.id).status == "needs-relink"
        assert len(rules_repo.mappings(store, rule.id)) == 1

        row = steps.needs_relink_row(page, public, account)
        expect(row.get_by_text("Nothing was deleted", exact=False)).to_be_visible()
        steps.shot(page, "dashboard-google-relink")
        steps.open_relink(page, public, row, account, NAME)
        expect(page.get_by_text(f"{G}calendar.events.freebusy", exact=True)).to_be_visible()
        steps.shot(page, "account-google-relink")
        consents = _consent_count(fake)
        page.get_by_role("button", name="Continue to Google").click()

        card = steps.expect_relinked(page, public, account, NAME, ANN)
        assert _consent_count(fake) == consents + 1, "the re-link never reached Google's consent screen"
        expect(card.get_by_text("Needs re-link")).to_have_count(0)
        again = accounts.get(store, account.id)
        assert again.status == "ok" and [a.id for a in accounts.all_accounts(store, admin.id)] == [account.id, home.id]
        assert sorted(c.id for c in accounts.calendars(store, account.id)) == calendar_ids
        page.goto(f"{public}/")
        expect(page.locator(f"tr#account-{account.id}").get_by_text("Needs re-link")).to_have_count(0)

        # -- 4. a declined consent: back on the form, told plainly, nothing linked
        fake.deny_next = True
        consents = _consent_count(fake)
        steps.decline_consent(page, public, "google", "Continue to Google",
                        "You declined access on Google's consent screen, so nothing was linked.")
        assert _consent_count(fake) == consents + 1
        assert [a.name for a in accounts.all_accounts(store, admin.id)] == [NAME, "Home"]
        steps.shot(page, "account-google-declined")
        assert walk.problems == []


def _consent_count(fake: GoogleFake) -> int:
    """How often a browser opened the fake's consent screen."""
    return sum(r.path.endswith("/o/oauth2/auth") for r in fake.requests)


def _gtime(moment: datetime) -> dict:
    return {"dateTime": moment.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}
