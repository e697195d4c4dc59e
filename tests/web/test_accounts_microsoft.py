"""Linking Microsoft accounts in the web UI, against the fake sign-in service (tests/fakes/ms_login.py)
and the fake Graph API (tests/fakes/graph_api.py), with msal doing the protocol work.

The form shows every mode with its exact Microsoft permissions and what homecal stores, before
anything happens; submitting it sends the browser to Microsoft's sign-in page with PKCE S256 and
state, to come back at {public URL}/accounts/microsoft/callback; the callback stores the account
and its calendars with the sign-in sealed. A declined consent, a reused or forged answer, a
missing CSRF token, a missing app registration and another user's account id all leave nothing
behind. Re-link keeps the account for the same person and refuses another one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from daemon import access
from daemon.config import Config
from daemon.models import AccessMode
from daemon.store import accounts, users
from tests.fakes.graph_api import graph_fake  # noqa: F401  (until tests/conftest.py imports it)
from tests.fakes.ms_directory import ms_directory  # noqa: F401
from tests.fakes.ms_login import ms_login  # noqa: F401
from tests.ms_helpers import CLIENT_ID, microsoft_config
from tests.web.oauth_helpers import LinkPages, clock_moves_on, mode_radios, query, text
from webui import create_app

ANN = "ann@contoso.com"
BOB = "bob@contoso.com"
AUTHORITY_HOST = "https://login.microsoftonline.com"
CALLBACK = "http://127.0.0.1:8400/accounts/microsoft/callback"

PAGES = LinkPages("microsoft")
start_link, back_at_homecal = PAGES.start, PAGES.back_at_homecal


@pytest.fixture
def mconfig(config: Config, graph_fake, ms_login) -> Config:  # noqa: F811
    return microsoft_config(graph_fake, ms_login, config)


@pytest.fixture
def app(mconfig: Config, store) -> Flask:
    return create_app(mconfig, store, testing=True)


@pytest.fixture
def ann(graph_fake, ms_login):  # noqa: F811
    """ann at Contoso, with her default calendar and a shared one she may only read; she signs in."""
    graph_fake.directory.add_user(ANN)
    graph_fake.mailbox(ANN)
    graph_fake.add_calendar(ANN, "Team holidays", can_edit=False)
    ms_login.sign_in_as = ANN
    return graph_fake


@pytest.fixture
def logged_in(admin, auth) -> users.User:
    auth.login()
    return admin


def sign_in(ms_login, location: str) -> str:  # noqa: F811
    """What the browser does at Microsoft: open the sign-in URL, get sent back. Returns where to.

    The URL names Microsoft's real host (msal insists on https); the fake listens on loopback.
    """
    assert location.startswith(AUTHORITY_HOST + "/"), location
    answer = requests.get(ms_login.endpoint + location[len(AUTHORITY_HOST):], allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:300]
    return answer.headers["Location"]


def link(client: FlaskClient, auth, ms_login, **form: str):  # noqa: F811
    return back_at_homecal(client, sign_in(ms_login, start_link(client, auth, **form).headers["Location"]))


def raw_database(config: Config) -> bytes:
    """Every byte of the SQLite file and its write-ahead log, as someone who copies them reads them."""
    db = Path(config.storage.db_path)
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


# ------------------------------------------------------------------------------ the form


def test_the_pages_need_a_login(client, admin, ann) -> None:
    for path in ("/accounts/microsoft/new", "/accounts/microsoft/callback?state=x&code=y", "/accounts/1/relink/microsoft"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_the_form_shows_each_modes_exact_permissions_and_what_is_stored(client, logged_in) -> None:
    response = client.get("/accounts/microsoft/new")
    page = text(response)
    assert mode_radios(page) == ["read-write", "free-busy", "no-access"]
    blocks = page.split('class="choice"')[1:]
    assert "<code>Calendars.ReadWrite</code>" in blocks[0] and "<code>User.Read</code>" in blocks[0]
    assert "Calendars.ReadBasic" not in blocks[0]
    assert "<code>Calendars.ReadBasic</code>" in blocks[1] and "<code>User.Read</code>" in blocks[1]
    assert "Calendars.ReadWrite" not in blocks[1]
    assert "None: nothing is requested from the provider." in blocks[2]
    assert "only each event&#39;s start, end and show-as" in page
    assert "only the address you type" in page
    assert CALLBACK in page  # the redirect URI to register
    assert "No Microsoft app is configured" not in page
    # the form may end at Microsoft's sign-in page (CSP form-action follows the redirect)
    csp = response.headers["Content-Security-Policy"]
    assert f"form-action 'self' {AUTHORITY_HOST}" in csp and "script-src 'self'" in csp


def test_without_a_client_id_the_pages_say_what_to_set_up(config, store, admin, make_auth, ms_login) -> None:  # noqa: F811
    client = create_app(config, store, testing=True).test_client()
    make_auth(client).login()
    chooser = text(client.get("/accounts/add"))
    assert "[microsoft] client_id" in chooser and "Linking Microsoft 365 or Outlook.com" in chooser
    assert "Microsoft 365 or Outlook.com<span" not in chooser  # no tile to a sign-in that cannot work
    page = text(client.get("/accounts/microsoft/new"))
    assert "No Microsoft app is configured yet" in page
    token = make_auth(client).csrf_token("/accounts/microsoft/new")
    response = client.post("/accounts/microsoft/new", data={"csrf_token": token, "name": "Work", "mode": "free-busy"})
    assert response.status_code == 200 and "[microsoft] client_id" in text(response)
    assert accounts.all_accounts(store) == [] and ms_login.requests == []


def test_the_chooser_offers_microsoft_when_an_app_is_configured(client, logged_in) -> None:
    page = text(client.get("/accounts/add"))
    assert 'href="/accounts/microsoft/new"' in page and "Microsoft 365 or Outlook.com" in page
    assert "Coming soon" not in page


def test_a_post_without_the_csrf_token_is_refused(client, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    response = client.post("/accounts/microsoft/new", data={"name": "Work", "mode": "read-write"})
    assert response.status_code == 400
    assert accounts.all_accounts(store) == [] and ms_login.requests == []


# ------------------------------------------------------------------------------ linking


def test_linking_read_write_sends_pkce_and_state_and_stores_the_account_sealed(
        client, auth, logged_in, store, mconfig, ann, ms_login) -> None:  # noqa: F811
    response = start_link(client, auth)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{AUTHORITY_HOST}/common/oauth2/v2.0/authorize?")
    q = query(location)
    assert q["client_id"] == CLIENT_ID and q["response_type"] == "code" and q["redirect_uri"] == CALLBACK
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and len(q["state"]) >= 16
    scopes = q["scope"].split(" ")
    assert {"Calendars.ReadWrite", "User.Read"} <= {s.rsplit("/", 1)[-1] for s in scopes}
    assert not any("ReadBasic" in s for s in scopes)
    # the PKCE verifier stays on the server: the browser's cookie does not even carry the state
    cookie = client.get_cookie("homecal_session")
    assert cookie is not None and q["state"] not in cookie.value

    response = back_at_homecal(client, sign_in(ms_login, location))
    assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/#account-")
    [account] = accounts.all_accounts(store, logged_in.id)
    assert (account.kind, account.name, account.mode, account.status) == ("microsoft", "Work",
                                                                          AccessMode.READ_WRITE, "ok")
    cals = {c.name: c for c in accounts.calendars(store, account.id)}
    assert set(cals) == {"Calendar", "Team holidays"}
    assert cals["Calendar"].writable and not cals["Team holidays"].writable
    secret = accounts.secret(store, account.id)
    assert secret["email"] == ANN and secret["home_account_id"] and secret["personal"] is False
    assert secret["client_id"] == CLIENT_ID and secret["token_cache"]
    page = text(client.get("/accounts/"))
    assert f"Linked Work ({ANN}) with 2 calendars." in page

    # the sign-in is sealed: none of msal's cache, nor the refresh token in it, is in the file
    cache = json.loads(secret["token_cache"])
    [refresh] = cache["RefreshToken"].values()
    raw = raw_database(mconfig)
    assert b"microsoft" in raw and b"Team holidays" in raw  # the plain columns are there: this is the file
    assert refresh["secret"].encode() not in raw and secret["home_account_id"].encode() not in raw
    assert b"token_cache" not in raw and ANN.encode() not in raw


def test_free_busy_asks_for_calendars_read_basic_only(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    location = start_link(client, auth, name="Busy", mode="free-busy").headers["Location"]
    scopes = {s.rsplit("/", 1)[-1] for s in query(location)["scope"].split(" ")}
    assert {"Calendars.ReadBasic", "User.Read"} <= scopes and "Calendars.ReadWrite" not in scopes
    assert back_at_homecal(client, sign_in(ms_login, location)).status_code == 302
    [account] = accounts.all_accounts(store)
    assert account.mode == AccessMode.FREE_BUSY and accounts.secret(store, account.id)["email"] == ANN


def test_the_same_answer_cannot_be_used_twice(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    back = sign_in(ms_login, start_link(client, auth).headers["Location"])
    assert back_at_homecal(client, back).status_code == 302
    again = back_at_homecal(client, back)
    assert again.status_code == 400 and "Start linking again" in text(again)
    assert len(accounts.all_accounts(store)) == 1


def test_an_answer_more_than_10_minutes_late_is_refused(client, auth, logged_in, store, ann, ms_login,  # noqa: F811
                                                       monkeypatch) -> None:
    back = sign_in(ms_login, start_link(client, auth).headers["Location"])
    clock_moves_on(monkeypatch, 10 * 60 + 1)
    response = back_at_homecal(client, back)
    assert response.status_code == 400 and "more than 10 minutes later" in text(response)
    assert accounts.all_accounts(store) == [] and ms_login.token_requests() == []


def test_another_users_answer_is_refused(client, auth, logged_in, store, ann, ms_login, app, make_auth) -> None:  # noqa: F811
    back = sign_in(ms_login, start_link(client, auth).headers["Location"])
    users.create(store, "bea", "another long password", is_admin=False)
    other = app.test_client()
    make_auth(other).login("bea", "another long password")
    assert back_at_homecal(other, back).status_code == 400
    assert accounts.all_accounts(store) == []


def test_declining_stores_nothing_and_says_so(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    ms_login.deny_next = True
    response = link(client, auth, ms_login, name="Declined", mode="free-busy")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/microsoft/new?")
    assert query(response.headers["Location"]) == {"name": "Declined", "mode": "free-busy"}
    page = text(client.get(response.headers["Location"]))
    assert "You declined access on Microsoft" in page and 'value="Declined"' in page
    assert accounts.all_accounts(store) == []
    assert ms_login.token_requests() == []  # no code was redeemed


def test_a_sign_in_whose_calendars_cannot_be_listed_keeps_nothing(client, auth, logged_in, store, ann,
                                                                  ms_login) -> None:  # noqa: F811
    ann.fail_next(status=403, code="ErrorAccessDenied", path_contains="/me/calendars")
    response = link(client, auth, ms_login)
    assert response.headers["Location"].startswith("/accounts/microsoft/new?")
    page = text(client.get(response.headers["Location"]))
    assert "Microsoft Graph answered 403 ErrorAccessDenied to listing calendars" in page
    assert "Traceback" not in page and accounts.all_accounts(store) == []


def test_no_access_asks_microsoft_nothing(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    response = start_link(client, auth, name="Private", mode="no-access", email=ANN)
    assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/")
    [account] = accounts.all_accounts(store)
    [cal] = accounts.calendars(store, account.id)
    assert (account.kind, account.mode) == ("microsoft", AccessMode.NO_ACCESS)
    assert (cal.remote_id, cal.name, cal.writable) == ("calendar", ANN, False)
    assert accounts.secret(store, account.id) == {"email": ANN}
    assert ms_login.requests == [] and ann.requests == []


def test_no_access_needs_the_address(client, auth, logged_in, store, ann) -> None:
    response = start_link(client, auth, mode="no-access", email="")
    assert response.status_code == 200 and "Enter the Microsoft account&#39;s address" in text(response)
    assert accounts.all_accounts(store) == []


def test_a_taken_name_is_refused_before_going_to_microsoft(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    accounts.add(store, logged_in.id, "local", "Work", AccessMode.READ_WRITE, {})
    response = start_link(client, auth)
    assert response.status_code == 200 and "already exists" in text(response)
    assert ms_login.requests == []


# ------------------------------------------------------------------------------ re-linking


def _needs_relink(client, auth, logged_in, store, ms_login):  # noqa: F811
    assert link(client, auth, ms_login).status_code == 302
    [account] = accounts.all_accounts(store)
    accounts.record_failure(store, account.id, "Microsoft refused homecal's sign-in", status="needs-relink")
    return account


def test_relink_as_the_same_person_keeps_the_account_and_makes_it_healthy(client, auth, logged_in, store, ann,
                                                                          ms_login) -> None:  # noqa: F811
    account = _needs_relink(client, auth, logged_in, store, ms_login)
    before = accounts.secret(store, account.id)
    cal_ids = sorted(c.id for c in accounts.calendars(store, account.id))
    # the account page's Re-link button leads to the Microsoft page
    assert client.get(f"/accounts/{account.id}/relink").headers["Location"] == \
        f"/accounts/{account.id}/relink/microsoft"
    page = text(client.get(f"/accounts/{account.id}/relink/microsoft"))
    assert "Microsoft no longer accepts homecal" in page and "<code>Calendars.ReadWrite</code>" in page
    token = auth.csrf_token(f"/accounts/{account.id}/relink/microsoft")
    response = client.post(f"/accounts/{account.id}/relink/microsoft", data={"csrf_token": token})
    assert response.status_code == 302
    assert query(response.headers["Location"]).get("login_hint") == ANN  # Microsoft's page offers ann
    done = back_at_homecal(client, sign_in(ms_login, response.headers["Location"]))
    assert done.headers["Location"] == f"/accounts/#account-{account.id}"
    again = accounts.get(store, account.id)
    assert again.status == "ok" and [a.id for a in accounts.all_accounts(store)] == [account.id]
    assert sorted(c.id for c in accounts.calendars(store, account.id)) == cal_ids
    after = accounts.secret(store, account.id)
    assert after["home_account_id"] == before["home_account_id"] and after["token_cache"] != before["token_cache"]
    assert f"Re-linked Work ({ANN}) with 2 calendars." in text(client.get("/accounts/"))


def test_relink_as_another_person_is_refused_naming_both(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    account = _needs_relink(client, auth, logged_in, store, ms_login)
    before = accounts.secret(store, account.id)
    ann.directory.add_user(BOB)
    ann.mailbox(BOB)
    ms_login.sign_in_as = BOB
    token = auth.csrf_token(f"/accounts/{account.id}/relink/microsoft")
    location = client.post(f"/accounts/{account.id}/relink/microsoft", data={"csrf_token": token}).headers["Location"]
    response = back_at_homecal(client, sign_in(ms_login, location))
    assert response.headers["Location"] == f"/accounts/{account.id}/relink/microsoft"
    page = text(client.get(response.headers["Location"]))
    assert BOB in page and ANN in page and "add" in page
    assert accounts.secret(store, account.id) == before
    assert accounts.get(store, account.id).status == "needs-relink"


def test_another_users_account_cannot_be_relinked(client, auth, logged_in, store, ann) -> None:
    bea = users.create(store, "bea", "another long password", is_admin=False)
    theirs = accounts.add(store, bea.id, "microsoft", "Theirs", AccessMode.READ_WRITE, {"email": BOB})
    assert client.get(f"/accounts/{theirs.id}/relink/microsoft").status_code == 404


def test_a_no_access_account_has_nothing_to_relink(client, auth, logged_in, store, ann, ms_login) -> None:  # noqa: F811
    start_link(client, auth, name="Private", mode="no-access", email=ANN)
    [account] = accounts.all_accounts(store)
    response = client.get(f"/accounts/{account.id}/relink/microsoft")
    assert response.status_code == 302
    assert "no Microsoft sign-in to renew" in text(client.get(response.headers["Location"]))
    assert ms_login.requests == []


def test_scopes_shown_are_the_ones_requested() -> None:
    """The page and the sign-in take their permissions from the same table."""
    assert access.scopes("microsoft", AccessMode.READ_WRITE) == ("Calendars.ReadWrite", "User.Read")
    assert access.scopes("microsoft", AccessMode.FREE_BUSY) == ("Calendars.ReadBasic", "User.Read")
    assert "microsoft" in access.LINKABLE and "microsoft" not in access.COMING
