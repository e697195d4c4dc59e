"""Google token health in the web UI: a Google account whose token was refused says so in
plain words on the dashboard (nothing deleted, syncing paused) with the way to its account
page; every Google account shows its token's age; a link about to be stopped by Google
carries the warning, on the dashboard and the accounts page. No token reaches a page."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest

from daemon.config import Config, with_overrides
from daemon.models import AccessMode
from daemon.store import accounts, users
from tests.google_helpers import stored_secret

RELINK_TEXT = ("Needs re-link: Google refused the stored permission (token expired or revoked). "
               "Nothing was deleted; syncing of this account is paused.")


@pytest.fixture
def config(data_dir) -> Config:
    return with_overrides(Config(), storage={"data_dir": str(data_dir)}, google={"testing_client": True})


@pytest.fixture
def logged_in(admin, auth) -> users.User:
    auth.login()
    return admin


def google_secret(linked: datetime) -> dict:
    return stored_secret(linked, client_secret="")


def add_google(store, user_id: int, name: str, age: timedelta) -> int:
    linked = datetime.now(timezone.utc) - age
    return accounts.add(store, user_id, "google", name, AccessMode.READ_WRITE, google_secret(linked)).id


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def row(text: str, account_id: int) -> str:
    """The dashboard's table row of one account."""
    start = text.index(f'id="account-{account_id}"')
    return text[start:text.index("</tr>", start)]


def words(fragment: str) -> str:
    """The text of an HTML fragment as a reader sees it: no tags, single spaces."""
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_a_refused_google_account_says_what_happened_and_links_to_its_account_page(client, store, logged_in):
    account_id = add_google(store, logged_in.id, "work", timedelta(days=2))
    accounts.record_failure(store, account_id, "Google refused the stored permission: invalid_grant",
                            status="needs-relink")

    text = page(client, "/")
    mine = row(text, account_id)
    assert "Needs re-link" in mine  # the badge
    assert RELINK_TEXT in words(mine)
    assert f'href="/accounts/#account-{account_id}"' in mine
    assert f"/accounts/{account_id}/relink\"" not in mine  # the CalDAV password form is no use for Google
    assert "1 thing needs your attention" in text


def test_every_google_account_shows_its_token_age(client, store, logged_in):
    fresh = add_google(store, logged_in.id, "fresh", timedelta(hours=3))
    older = add_google(store, logged_in.id, "older", timedelta(days=3, hours=1))
    text = page(client, "/")
    assert "Google link made today." in words(row(text, fresh))
    assert "Google link made 3 days ago." in words(row(text, older))
    assert "token-warning" not in text  # both younger than 5 days
    assert "Everything is in order" in text


def test_a_link_google_is_about_to_stop_carries_the_warning(client, store, logged_in):
    account_id = add_google(store, logged_in.id, "work", timedelta(days=5, hours=2))
    expected = re.compile(r"Warning: Google will stop this link on \w{3} \d+ \w{3} \d{4}, \d\d:\d\d \(UTC\): "
                          r"publish your OAuth client to production \(README, section \"Linking Google Calendar\"\)")
    text = page(client, "/")
    assert expected.search(words(row(text, account_id)))
    assert "1 thing needs your attention" in text


def test_the_accounts_page_shows_the_token_age_and_warning(client, store, logged_in):
    # Unused for 160 days: Google drops it at six months, whatever the client's publishing status.
    account_id = add_google(store, logged_in.id, "old", timedelta(days=160))
    text = page(client, "/accounts/")
    start = text.index(f'id="account-{account_id}"')
    card = words(text[start:text.index("</section>", start)])
    assert "Google link made 160 days ago." in card
    assert "Warning:" in card


def test_no_token_reaches_a_page(client, store, logged_in):
    account_id = add_google(store, logged_in.id, "work", timedelta(days=6))
    accounts.record_failure(store, account_id, "Google refused the stored permission", status="needs-relink")
    for path in ("/", "/accounts/"):
        text = page(client, path)
        assert "ACCESS-MARKER" not in text and "REFRESH-MARKER" not in text


def test_another_users_google_accounts_stay_out_of_my_dashboard(client, store, logged_in):
    other = users.create(store, "bob", "correct horse battery")
    theirs = add_google(store, other.id, "bobs-google", timedelta(days=6))
    text = page(client, "/")
    assert f'id="account-{theirs}"' not in text and "bobs-google" not in text


def test_a_refused_microsoft_account_says_so_in_plain_words(client, store, logged_in):
    linked = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    account_id = accounts.add(store, logged_in.id, "microsoft", "outlook", AccessMode.READ_WRITE, {
        "email": "ann@contoso.com", "home_account_id": "oid.tid", "linked_at": linked, "refreshed_at": linked,
        "token_cache": '{"RefreshToken": {"x": {"secret": "MS-REFRESH-MARKER"}}}'}).id
    accounts.record_failure(store, account_id, "Microsoft refused homecal's sign-in (invalid_grant, AADSTS50173): "
                                               "link the account again", status="needs-relink")
    text = page(client, "/")
    mine = words(row(text, account_id))
    assert "Needs re-link: Microsoft refused the stored permission (token expired or revoked)." in mine
    assert "Nothing was deleted; syncing of this account is paused." in mine
    accounts_page = page(client, "/accounts/")
    assert "linked 3 days ago" in words(accounts_page) or "3 days" in words(accounts_page)
    assert f"/accounts/{account_id}/relink" in accounts_page
    assert "MS-REFRESH-MARKER" not in text + accounts_page
