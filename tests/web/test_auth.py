"""Logging in and out: credentials, redirects, cookies, CSRF, session lifetime, throttling."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from flask import Flask

from daemon.config import with_overrides
from daemon.store import users
from webui import create_app
from webui.throttle import LoginThrottle

pytestmark = pytest.mark.usefixtures("admin")


def _path(location: str | None) -> str:
    return urlsplit(location or "").path


def _logged_in(client) -> bool:
    response = client.get("/")
    return response.status_code == 200 and "Log out" in response.get_data(as_text=True)


def test_login_page_has_a_labelled_form(client) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert '<label class="field-label" for="username">' in html
    assert '<label class="field-label" for="password">' in html
    assert 'autocomplete="username"' in html
    assert 'autocomplete="current-password"' in html
    assert html.count(" required") >= 2


def test_login_with_the_right_password_opens_the_dashboard(client, auth, admin) -> None:
    response = auth.login()
    assert response.status_code == 302
    assert _path(response.location) == "/"
    page = client.get("/").get_data(as_text=True)
    assert f"Welcome, {admin.username}" in page
    assert "No calendar accounts yet" in page


@pytest.mark.parametrize("username,password", [
    ("admin", "wrong password!!"),
    ("nobody", "correct horse battery"),
])
def test_wrong_credentials_show_one_message_that_reveals_nothing(client, auth, username, password) -> None:
    response = auth.login(username, password)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Wrong user name or password" in html
    assert f'value="{username}"' in html  # the form is shown again, name kept
    assert not _logged_in(client)


def test_empty_fields_are_reported_next_to_the_fields(client, auth) -> None:
    response = auth.login("", "")
    html = response.get_data(as_text=True)
    assert "Enter your user name." in html
    assert "Enter your password." in html
    assert not _logged_in(client)


@pytest.mark.parametrize("target", ["/healthz", "/some/page?tab=2"])
def test_next_is_followed_for_paths_on_this_site(auth, target) -> None:
    response = auth.login(path=f"/login?next={target}")
    assert response.status_code == 302
    assert response.location == target


@pytest.mark.parametrize("target", [
    "//evil.example", "https://evil.example/", "http:/evil.example", "/\\evil.example",
    "javascript:alert(1)", "evil.example", "/\r\nLocation: x",
])
def test_next_pointing_elsewhere_is_ignored(auth, target) -> None:
    response = auth.login(path=f"/login?next={quote(target, safe='')}")
    assert response.status_code == 302
    assert response.location == "/"


def test_a_private_page_sends_you_to_log_in_and_back(client, auth) -> None:
    response = client.get("/?view=week")
    assert response.status_code == 302
    assert response.location == "/login?next=/?view%3Dweek"
    response = auth.login(path=response.location)
    assert response.location == "/?view=week"


def test_logged_in_visit_to_login_goes_home(client, auth) -> None:
    auth.login()
    response = client.get("/login")
    assert response.status_code == 302 and _path(response.location) == "/"


def test_logout_ends_the_session(client, auth) -> None:
    auth.login()
    response = auth.logout()
    assert response.status_code == 302
    assert _path(response.location) == "/login"
    assert "You have been logged out" in client.get("/login").get_data(as_text=True)
    assert not _logged_in(client)


def test_logout_needs_post(client, auth) -> None:
    auth.login()
    assert client.get("/logout").status_code == 405
    assert _logged_in(client)


def test_logout_without_csrf_token_is_refused(client, auth) -> None:
    auth.login()
    response = client.post("/logout")
    assert response.status_code == 400
    assert "The form expired, please reload and try again" in response.get_data(as_text=True)
    assert _logged_in(client)


def test_login_without_csrf_token_gets_the_friendly_page(client, admin_password) -> None:
    response = client.post("/login", data={"username": "admin", "password": admin_password})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The form expired, please reload and try again" in html
    assert "Traceback" not in html
    assert not _logged_in(client)


def test_login_with_a_forged_csrf_token_is_refused(client, admin_password) -> None:
    client.get("/login")  # a session with a real token exists; the posted one is not it
    response = client.post("/login", data={"csrf_token": "forged", "username": "admin", "password": admin_password})
    assert response.status_code == 400
    assert not _logged_in(client)


def test_session_cookie_is_httponly_and_samesite_lax(auth) -> None:
    response = auth.login()
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("homecal_session=")]
    assert cookies, "login set no homecal_session cookie"
    flags = [part.strip().lower() for part in cookies[-1].split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # plain http here: a Secure cookie would never come back
    assert any(f.startswith("expires=") for f in flags)  # permanent: survives a browser restart


def test_session_cookie_is_secure_behind_https(config, store, make_auth) -> None:
    https_config = with_overrides(config, server={"public_url": "https://cal.example.org"})
    client = create_app(https_config, store, testing=True).test_client()
    response = make_auth(client).login()
    assert response.status_code == 302
    cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("homecal_session=")][-1]
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_login_starts_a_fresh_session(client, auth) -> None:
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        token_before = session.get("csrf_token")
    assert token_before
    auth.login()
    client.get("/")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf_token") != token_before


def test_password_change_ends_existing_sessions(client, auth, store, admin) -> None:
    auth.login()
    assert _logged_in(client)
    users.set_password(store, admin.id, "a brand new password")
    response = client.get("/")
    assert response.status_code == 302 and _path(response.location) == "/login"
    assert auth.login(password="a brand new password").status_code == 302
    assert _logged_in(client)


def test_deleted_user_is_logged_out(client, auth, store, admin) -> None:
    auth.login()
    store.db.execute("DELETE FROM users WHERE id = ?", [admin.id])
    store.db.conn.commit()
    response = client.get("/")
    assert response.status_code == 302


def test_repeated_failures_are_throttled(app: Flask, client, auth, admin_password) -> None:
    for _ in range(10):
        assert auth.login(password="wrong password!!").status_code == 200
    response = auth.login(password="wrong password!!")
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    # Even the right password waits: the attacker must not learn it was right.
    assert auth.login(password=admin_password).status_code == 429
    assert not _logged_in(client)
    # Another address is not affected.
    other = {"environ_overrides": {"REMOTE_ADDR": "192.0.2.7"}}
    assert auth.login(password=admin_password, **other).status_code == 302


def test_a_successful_login_resets_the_failure_count(auth, admin_password) -> None:
    for _ in range(9):
        auth.login(password="wrong password!!")
    assert auth.login(password=admin_password).status_code == 302
    auth.logout()
    for _ in range(9):
        assert auth.login(password="wrong password!!").status_code == 200


def test_throttle_forgets_failures_after_the_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(max_failures=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.record_failure("192.0.2.1")
    assert throttle.retry_after("192.0.2.1") > 0
    assert throttle.retry_after("192.0.2.2") == 0
    now[0] += 61
    assert throttle.retry_after("192.0.2.1") == 0
