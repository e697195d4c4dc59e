"""First-run setup: only with no user, only from this machine, only without a proxy."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from daemon.store import users

REMOTE = {"REMOTE_ADDR": "192.0.2.5"}
GOOD = {"username": "root-admin", "password": "a long enough password", "confirm": "a long enough password"}


def _post_setup(client, auth, **fields: str):
    data = {**GOOD, **fields, "csrf_token": auth.csrf_token("/setup")}
    return client.post("/setup", data=data)


def test_setup_form_has_labels_and_autocomplete(client) -> None:
    response = client.get("/setup")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for field_id in ("username", "password", "confirm"):
        assert f'for="{field_id}"' in html
    assert 'autocomplete="username"' in html
    assert html.count('autocomplete="new-password"') == 2


def test_setup_creates_the_admin_and_logs_in(client, auth, store) -> None:
    response = _post_setup(client, auth)
    assert response.status_code == 302
    assert urlsplit(response.location).path == "/"
    [admin] = users.all_users(store)
    assert admin.username == "root-admin" and admin.is_admin
    page = client.get("/").get_data(as_text=True)
    assert "Welcome, root-admin" in page
    assert users.authenticate(store, "root-admin", GOOD["password"]) is not None


def test_first_visit_from_this_machine_goes_to_setup(client) -> None:
    for path in ("/", "/login"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert urlsplit(response.location).path == "/setup"


def test_setup_is_hidden_from_other_machines(client) -> None:
    assert client.get("/setup", environ_overrides=REMOTE).status_code == 404
    assert client.post("/setup", data=GOOD, environ_overrides=REMOTE).status_code in (400, 404)


def test_remote_visitors_are_told_to_run_homecal_init(client) -> None:
    response = client.get("/", environ_overrides=REMOTE)
    assert urlsplit(response.location).path == "/login"
    page = client.get("/login", environ_overrides=REMOTE)
    assert page.status_code == 503
    assert "homecal init" in page.get_data(as_text=True)


@pytest.mark.parametrize("header", [
    {"X-Forwarded-For": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9"},
])
def test_setup_is_hidden_behind_a_reverse_proxy(client, store, header) -> None:
    assert client.get("/setup", headers=header).status_code == 404
    page = client.get("/login", headers=header)
    assert "homecal init" in page.get_data(as_text=True)
    assert users.count(store) == 0


def test_ipv6_loopback_may_run_setup(client) -> None:
    assert client.get("/setup", environ_overrides={"REMOTE_ADDR": "::1"}).status_code == 200


def test_setup_is_gone_once_a_user_exists(client, auth, store) -> None:
    token = auth.csrf_token("/setup")
    users.create(store, "someone", "another long password")
    assert client.get("/setup").status_code == 404
    response = client.post("/setup", data={**GOOD, "csrf_token": token})
    assert response.status_code == 404
    assert [u.username for u in users.all_users(store)] == ["someone"]


def test_mismatched_passwords_are_reported_and_the_name_kept(client, auth, store) -> None:
    response = _post_setup(client, auth, confirm="something else entirely")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The passwords do not match." in html
    assert 'value="root-admin"' in html
    assert GOOD["password"] not in html  # passwords are never echoed back
    assert users.count(store) == 0


def test_short_password_is_reported_and_the_name_kept(client, auth, store) -> None:
    response = _post_setup(client, auth, password="short", confirm="short")
    html = response.get_data(as_text=True)
    assert "Password must be at least 10 characters." in html
    assert 'value="root-admin"' in html
    assert 'aria-invalid="true"' in html
    assert users.count(store) == 0


def test_bad_user_name_is_reported(client, auth, store) -> None:
    response = _post_setup(client, auth, username="-bad name")
    assert "User name must be 1-64 letters" in response.get_data(as_text=True)
    assert users.count(store) == 0
