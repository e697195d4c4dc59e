"""Linking Google accounts in the web UI, against the fake Google (tests/fakes/google_api.py):
the form shows every mode with its exact scopes before anything happens; submitting it sends
the browser to the consent screen with state, PKCE, offline access and forced consent; the
callback stores the account and its calendars; a declined consent, an unticked box, a forged
state, a missing CSRF token and another user's account id all leave nothing behind. Re-link
keeps the account; Settings keeps the Google client with its secret sealed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from flask import Flask

from daemon import access
from daemon.config import Config
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.store import settings as st
from daemon.sync.options import RuleOptions
from tests.fakes.google_api import GoogleFake
from tests.google_helpers import google_config
from tests.web.oauth_helpers import LinkPages, clock_moves_on, mode_radios, query, text
from webui import create_app

G = "https://www.googleapis.com/auth/"
ANN = "ann@example.com"

PAGES = LinkPages("google")
start_link, back_at_homecal = PAGES.start, PAGES.back_at_homecal


@pytest.fixture(autouse=True)
def _restore_oauthlib_env(monkeypatch):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)


def _app(config: Config, store) -> Flask:
    app = create_app(config, store, testing=True)
    return app


@pytest.fixture
def fake() -> GoogleFake:
    with GoogleFake() as running:
        yield running


@pytest.fixture
def gconfig(config, fake: GoogleFake) -> Config:
    return google_config(config, fake)


@pytest.fixture
def app(gconfig, store) -> Flask:
    return _app(gconfig, store)


@pytest.fixture
def ann(fake: GoogleFake) -> GoogleFake:
    fake.add_user(ANN)
    fake.add_calendar(ANN, summary="Work", access_role="owner")
    fake.add_calendar(ANN, summary="Team holidays", access_role="reader")
    fake.login_as = ANN
    return fake


@pytest.fixture
def logged_in(admin, auth) -> users.User:
    auth.login()
    return admin


def consent(location: str) -> str:
    """What the browser does at Google: open the consent URL, get sent back. Returns where to."""
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:300]
    return answer.headers["Location"]


# ------------------------------------------------------------------------------ the form


def test_the_form_shows_every_mode_with_what_it_sees_does_and_its_exact_scopes(client, logged_in) -> None:
    response = client.get("/accounts/google/new")
    page = text(response)
    assert mode_radios(page) == ["read-write", "free-busy", "no-access"]
    for mode in (AccessMode.READ_WRITE, AccessMode.FREE_BUSY):
        for scope in access.scopes("google", mode):
            assert f"<code>{scope}</code>" in page, scope
    # each mode's block lists its own scopes and no others
    blocks = page.split('class="choice"')[1:]
    assert f"{G}calendar.events<" in blocks[0] and "calendar.events.freebusy" not in blocks[0]
    assert f"{G}calendar.events.freebusy<" in blocks[1] and f"{G}calendar.events<" not in blocks[1]
    assert "None: nothing is requested from the provider." in blocks[2]
    assert "Only the start, end and busy status of each event." in page
    assert "http://127.0.0.1:8400/accounts/google/callback" in page  # the redirect URI to register
    assert "No Google OAuth client yet" not in page
    # the page's form may end at Google's consent screen (CSP form-action follows redirects)
    csp = response.headers["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1:" in csp and "script-src 'self'" in csp


def test_without_a_client_the_form_points_to_settings(config, store, admin, make_auth) -> None:
    client = _app(config, store).test_client()
    make_auth(client).login()
    page = text(client.get("/accounts/google/new"))
    assert "No Google OAuth client yet" in page and 'href="/settings/google"' in page
    token = make_auth(client).csrf_token("/accounts/google/new")
    response = client.post("/accounts/google/new", data={"csrf_token": token, "name": "Work", "mode": "free-busy"})
    assert response.status_code == 200 and "Settings &gt; Google" in text(response)
    assert accounts.all_accounts(store) == []


def test_the_chooser_offers_google(client, logged_in) -> None:
    page = text(client.get("/accounts/add"))
    assert 'href="/accounts/google/new"' in page
    # without an app registration, Microsoft explains what it needs instead of offering sign-in
    assert "Microsoft 365" in page and "[microsoft] client_id" in page and "Coming" not in page


# ------------------------------------------------------------------------------ linking


def test_linking_read_write_sends_pkce_state_offline_consent_and_stores_the_account(
        client, auth, logged_in, store, ann) -> None:
    response = start_link(client, auth)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(ann.auth_uri + "?")
    q = query(location)
    assert q["scope"].split(" ") == [f"{G}calendar.events", f"{G}calendar.calendarlist.readonly", "openid", "email"]
    assert q["client_id"] == ann.client_id and q["response_type"] == "code"
    assert q["redirect_uri"] == "http://127.0.0.1:8400/accounts/google/callback"
    assert q["access_type"] == "offline" and q["prompt"] == "consent"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and len(q["state"]) >= 32
    # the verifier stays on the server: the browser's cookie does not carry it
    cookie = client.get_cookie("homecal_session")
    assert cookie is not None and q["state"] not in cookie.value

    response = back_at_homecal(client, consent(location))
    assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/#account-")
    [account] = accounts.all_accounts(store, logged_in.id)
    assert (account.kind, account.name, account.mode, account.status) == ("google", "Work", AccessMode.READ_WRITE, "ok")
    cals = {c.name: c for c in accounts.calendars(store, account.id)}
    assert set(cals) == {ANN, "Work", "Team holidays"}
    assert cals[ANN].remote_id == ANN and cals["Work"].writable and not cals["Team holidays"].writable
    secret = accounts.secret(store, account.id)
    assert secret["email"] == ANN and secret["token"] and secret["refresh_token"]
    assert f"{G}calendar.events" in secret["scopes"] and secret["client_id"] == ann.client_id
    assert secret["client_secret"] == ""  # the config file's secret stays in the file
    assert secret["linked_at"] == secret["refreshed_at"] and secret["expiry"]
    page = text(client.get("/accounts/"))
    assert f"Linked Work ({ANN}) with 3 calendars." in page


def test_the_same_answer_cannot_be_used_twice(client, auth, logged_in, store, ann) -> None:
    back = consent(start_link(client, auth).headers["Location"])
    assert back_at_homecal(client, back).status_code == 302
    again = back_at_homecal(client, back)
    assert again.status_code == 400 and "Start linking again" in text(again)
    assert len(accounts.all_accounts(store)) == 1


def test_free_busy_asks_only_for_busy_times_and_the_calendar_list(client, auth, logged_in, store, ann) -> None:
    location = start_link(client, auth, name="Busy", mode="free-busy").headers["Location"]
    assert query(location)["scope"].split(" ") == [f"{G}calendar.events.freebusy",
                                                    f"{G}calendar.calendarlist.readonly"]
    assert back_at_homecal(client, consent(location)).status_code == 302
    [account] = accounts.all_accounts(store)
    assert account.mode == AccessMode.FREE_BUSY
    assert accounts.secret(store, account.id)["email"] == ANN


def test_no_access_asks_google_nothing(client, auth, logged_in, store, ann) -> None:
    ann.reset_counts()
    response = start_link(client, auth, name="Private", mode="no-access", email=ANN)
    assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/")
    [account] = accounts.all_accounts(store)
    [cal] = accounts.calendars(store, account.id)
    assert (cal.remote_id, cal.name, cal.writable) == ("primary", ANN, False)
    assert accounts.secret(store, account.id)["token"] == ""
    assert ann.requests == [] and ann.http_requests == 0


def test_no_access_needs_the_address(client, auth, logged_in, store, ann) -> None:
    response = start_link(client, auth, mode="no-access", email="")
    assert response.status_code == 200 and "Enter the Google account&#39;s address" in text(response)
    assert accounts.all_accounts(store) == []


def test_a_taken_name_is_refused_before_going_to_google(client, auth, logged_in, store, ann) -> None:
    accounts.add(store, logged_in.id, "local", "Work", AccessMode.READ_WRITE, {})
    response = start_link(client, auth)
    assert response.status_code == 200 and "already exists" in text(response)


def test_declining_stores_nothing_and_says_so(client, auth, logged_in, store, ann) -> None:
    ann.deny_next = True
    location = start_link(client, auth, name="Declined", mode="free-busy").headers["Location"]
    response = back_at_homecal(client, consent(location))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/google/new?")
    assert query(response.headers["Location"]) == {"name": "Declined", "mode": "free-busy"}
    page = text(client.get(response.headers["Location"]))
    assert "You declined access on Google" in page
    assert 'value="Declined"' in page
    assert accounts.all_accounts(store) == []


def test_an_unticked_box_stores_nothing_and_names_what_is_missing(client, auth, logged_in, store, ann) -> None:
    ann.grant_only = [f"{G}calendar.calendarlist.readonly", "openid", "email"]
    response = back_at_homecal(client, consent(start_link(client, auth).headers["Location"]))
    page = text(client.get(response.headers["Location"]))
    assert "Google granted only" in page and "View and edit events on all your calendars" in page
    assert accounts.all_accounts(store) == []


def test_an_answer_more_than_10_minutes_late_is_refused(client, auth, logged_in, store, ann, monkeypatch) -> None:
    nine_minutes = consent(start_link(client, auth, name="Early").headers["Location"])
    late = consent(start_link(client, auth, name="Late").headers["Location"])
    clock_moves_on(monkeypatch, 9 * 60)
    assert back_at_homecal(client, nine_minutes).status_code == 302
    clock_moves_on(monkeypatch, 10 * 60 + 1)
    response = back_at_homecal(client, late)
    assert response.status_code == 400 and "more than 10 minutes later" in text(response)
    assert [a.name for a in accounts.all_accounts(store)] == ["Early"]


def test_a_forged_or_foreign_state_is_refused(client, auth, logged_in, store, ann, app) -> None:
    response = client.get("/accounts/google/callback?code=4/anything&state=forged")
    assert response.status_code == 400 and "does not belong to a linking you started" in text(response)
    # a flow started by admin cannot be finished in another user's session
    back = consent(start_link(client, auth).headers["Location"])
    users.create(store, "bob", "bob's long password", is_admin=False)
    other = app.test_client()
    from tests.web.conftest import AuthActions

    AuthActions(other).login("bob", "bob's long password")
    assert back_at_homecal(other, back).status_code == 400
    assert accounts.all_accounts(store) == []
    # ... and admin's own flow still finishes
    assert back_at_homecal(client, back).status_code == 302
    assert [a.user_id for a in accounts.all_accounts(store)] == [logged_in.id]


def test_starting_a_link_needs_the_csrf_token(client, logged_in, store, ann) -> None:
    response = client.post("/accounts/google/new", data={"name": "Work", "mode": "read-write"})
    assert response.status_code == 400 and "The form expired" in text(response)
    assert ann.requests == []


def test_the_callback_needs_a_login(client, admin, ann) -> None:
    response = client.get("/accounts/google/callback?code=x&state=y")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# ------------------------------------------------------------------------------ re-link


def _linked(client, auth, store, fake) -> accounts.Account:
    back_at_homecal(client, consent(start_link(client, auth).headers["Location"]))
    [account] = accounts.all_accounts(store)
    return account


def test_relink_replaces_the_tokens_and_keeps_account_calendars_and_rules(client, auth, logged_in, store, ann) -> None:
    account = _linked(client, auth, store, ann)
    before = accounts.secret(store, account.id)
    cals = accounts.calendars(store, account.id)
    work = next(c for c in cals if c.name == "Work")
    mine = accounts.add(store, logged_in.id, "local", "Mine", AccessMode.READ_WRITE, {})
    [target] = accounts.save_calendars(store, mine.id, [CalendarInfo("local:1", "Mine")])
    rule = rules_repo.add(store, logged_in.id, [work.id], target.id, RuleOptions.from_dict({"style": "busy"}))
    accounts.record_failure(store, account.id, "Google refused the token", status="needs-relink")
    ann.revoke(ANN)

    handed_over = client.get(f"/accounts/{account.id}/relink")  # the generic re-link page hands over
    assert handed_over.headers["Location"] == f"/accounts/{account.id}/relink/google"
    page = text(client.get(handed_over.headers["Location"]))
    assert "Google no longer accepts homecal's sign-in" in page and f"<code>{G}calendar.events</code>" in page
    token = auth.csrf_token(f"/accounts/{account.id}/relink/google")
    response = client.post(f"/accounts/{account.id}/relink/google", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].startswith(ann.auth_uri)
    done = back_at_homecal(client, consent(response.headers["Location"]))
    assert done.status_code == 302
    assert f"Re-linked Work ({ANN}) with 3 calendars." in text(client.get(done.headers["Location"]))

    after = accounts.secret(store, account.id)
    assert after["refresh_token"] != before["refresh_token"] and after["token"] != before["token"]
    assert accounts.get(store, account.id).status == "ok"
    assert [c.id for c in accounts.calendars(store, account.id)] == [c.id for c in cals]
    assert rules_repo.get(store, rule.id).source_ids == (work.id,)


def test_another_users_account_cannot_be_relinked(client, auth, logged_in, store, ann) -> None:
    bob = users.create(store, "bob", "bob's long password", is_admin=False)
    theirs = accounts.add(store, bob.id, "google", "Bob", AccessMode.READ_WRITE, {"email": "bob@example.com"})
    assert client.get(f"/accounts/{theirs.id}/relink/google").status_code == 404
    token = auth.csrf_token("/accounts/google/new")
    assert client.post(f"/accounts/{theirs.id}/relink/google", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/accounts/{theirs.id}/relink").status_code == 404
    assert ann.requests == []


def test_relink_needs_the_csrf_token_and_no_access_has_nothing_to_relink(client, auth, logged_in, store, ann) -> None:
    account = _linked(client, auth, store, ann)
    ann.reset_counts()
    response = client.post(f"/accounts/{account.id}/relink/google", data={})
    assert response.status_code == 400 and ann.requests == []
    quiet = accounts.add(store, logged_in.id, "google", "Quiet", AccessMode.NO_ACCESS, {"email": ANN})
    response = client.get(f"/accounts/{quiet.id}/relink/google")
    assert response.status_code == 302
    assert "no Google sign-in to renew" in text(client.get(response.headers["Location"]))


# ------------------------------------------------------------------------------ settings


def test_settings_keep_the_client_secret_sealed_and_never_show_it(client, auth, logged_in, store, data_dir,
                                                                   gconfig) -> None:
    page = text(client.get("/settings/google"))
    assert "config file" in page and "http://127.0.0.1:8400/accounts/google/callback" in page
    assert "http://127.0.0.1:8765/" in page
    secret = "GOCSPX-typed-in-the-ui-7q"
    token = auth.csrf_token("/settings/google")
    response = client.post("/settings/google", data={"csrf_token": token, "client_id": "ui.apps.googleusercontent.com",
                                                     "client_secret": secret})
    assert response.status_code == 302
    page = text(client.get("/settings/google"))
    assert "saved (hidden)" in page and "ui.apps.googleusercontent.com" in page and secret not in page
    assert st.effective_google_client(gconfig, store).client_secret == secret
    stored = b"".join(p.read_bytes() for p in Path(data_dir).rglob("*") if p.is_file())
    assert secret.encode() not in stored
    # a different client without its secret is refused
    token = auth.csrf_token("/settings/google")
    response = client.post("/settings/google", data={"csrf_token": token, "client_id": "new.apps.googleusercontent.com",
                                                     "client_secret": ""})
    assert response.status_code == 200 and "client secret that belongs to this client id" in text(response)
    # back to the config file's client
    token = auth.csrf_token("/settings/google")
    assert client.post("/settings/google/reset", data={"csrf_token": token}).status_code == 302
    assert st.effective_google_client(gconfig, store).source == st.FROM_FILE


def test_links_made_with_the_ui_client_keep_its_secret(client, auth, logged_in, store, ann, gconfig) -> None:
    st.save_google_client(store, ann.client_id, ann.client_secret)
    account = _linked(client, auth, store, ann)
    assert accounts.secret(store, account.id)["client_secret"] == ann.client_secret


def test_only_an_admin_changes_the_google_client(client, auth, store, make_auth) -> None:
    users.create(store, "bob", "bob's long password", is_admin=False)
    auth.login("bob", "bob's long password")
    page = text(client.get("/settings/google"))
    assert "Only an admin can change it." in page and 'name="client_secret"' not in page
    token = auth.csrf_token("/settings/google")
    response = client.post("/settings/google", data={"csrf_token": token, "client_id": "x.apps.googleusercontent.com",
                                                     "client_secret": "y"})
    assert response.status_code == 403 and not st.google_client_saved(store)

