"""User management (/settings/users) through real HTTP requests: adding users who can then log
in to an empty homecal of their own, resetting passwords, admin rights, removal, and members
who get 404 for every admin URL and action."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask.testing import FlaskClient

from daemon.models import AccessMode
from daemon.store import accounts, users
from tests.web.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.usefixtures("admin")

MEMBER = ("member", "member password 123")


def _post(client: FlaskClient, auth, path: str, data: dict[str, object] | None = None):
    return client.post(path, data={"csrf_token": auth.csrf_token("/settings/"), **(data or {})})


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _logged_in_as(client: FlaskClient, name: str) -> bool:
    response = client.get("/settings/")
    return response.status_code == 200 and f"You are logged in as <strong>{name}</strong>" in _text(response)


@pytest.fixture
def member(store) -> users.User:
    return users.create(store, *MEMBER)


def test_the_list_shows_every_user_their_role_and_what_they_own(client, auth, store, admin, member) -> None:
    accounts.add(store, member.id, "local", "Member calendar", AccessMode.READ_WRITE, {})
    auth.login()
    page = _text(client.get("/settings/users"))
    assert '<th scope="row">admin <span class="muted">(you)</span></th>' in page
    assert "<td>Admin</td>" in page and "<td>Member</td>" in page
    assert "1 calendar account" in page and "nothing" in page
    assert "Member calendar" not in page  # counts only: the admin does not see others' accounts


def test_an_added_user_can_log_in_and_sees_an_empty_homecal(app, client, auth, store, admin, make_auth) -> None:
    accounts.add(store, admin.id, "local", "Admin private calendar", AccessMode.READ_WRITE, {})
    auth.login()
    response = _post(client, auth, "/settings/users", {"username": "newbie", "password": "newbie password 1"})
    assert response.status_code == 302
    assert "User newbie was added." in _text(client.get(response.location))
    newbie = next(u for u in users.all_users(store) if u.username == "newbie")
    assert not newbie.is_admin

    other = app.test_client()
    assert make_auth(other).login("newbie", "newbie password 1").status_code == 302
    assert _logged_in_as(other, "newbie")
    assert accounts.all_accounts(store, user_id=newbie.id) == []
    checked = 0
    for path in ("/", "/accounts/", "/rules/", "/calendar/", "/feeds/"):
        response = other.get(path)
        if response.status_code == 200:  # areas still being built answer 404 for now
            assert "Admin private calendar" not in _text(response), path
            checked += 1
    assert checked >= 1
    # A member has no user management.
    assert other.get("/settings/users").status_code == 404


def test_adding_an_admin(client, auth, store) -> None:
    auth.login()
    _post(client, auth, "/settings/users", {"username": "second", "password": "second password 1", "is_admin": "y"})
    assert next(u for u in users.all_users(store) if u.username == "second").is_admin


@pytest.mark.parametrize("name,password,message", [
    ("admin", "long enough password", "User 'admin' already exists."),
    ("bad name!", "long enough password", "User name must be 1-64 letters"),
    ("fine", "short", "Password must be at least 10 characters."),
    ("", "", "Choose a user name."),
])
def test_bad_new_users_are_explained_and_the_name_is_kept(client, auth, store, name, password, message) -> None:
    auth.login()
    response = _post(client, auth, "/settings/users", {"username": name, "password": password})
    page = _text(response)
    assert response.status_code == 200
    assert message in page
    assert re.search(rf'<input [^>]*name="username"[^>]*value="{re.escape(name)}"', page)
    if password:
        assert f'value="{password}"' not in page
    assert len(users.all_users(store)) == 1


def test_resetting_a_password_logs_the_user_out_everywhere(app, client, auth, store, member, make_auth) -> None:
    theirs = app.test_client()
    make_auth(theirs).login(*MEMBER)
    assert _logged_in_as(theirs, "member")
    auth.login()
    bad = _text(_post(client, auth, f"/settings/users/{member.id}/password", {"password": "x", "confirm": "y"}))
    assert "Password must be at least 10 characters." in bad and "The passwords do not match." in bad
    new = "set by the admin 1"
    response = _post(client, auth, f"/settings/users/{member.id}/password", {"password": new, "confirm": new})
    assert response.status_code == 302
    assert "The password of member was changed" in _text(client.get(response.location))
    assert not _logged_in_as(theirs, "member")
    assert users.authenticate(store, "member", new) is not None
    assert _logged_in_as(client, "admin")


def test_an_admin_resetting_their_own_password_stays_logged_in(client, auth, store, admin) -> None:
    auth.login()
    new = "my own new password"
    _post(client, auth, f"/settings/users/{admin.id}/password", {"password": new, "confirm": new})
    assert _logged_in_as(client, "admin")
    assert users.authenticate(store, "admin", new) is not None


def test_granting_and_taking_admin_rights(app, client, auth, store, admin, member, make_auth) -> None:
    auth.login()
    assert _post(client, auth, f"/settings/users/{member.id}/grant-admin").status_code == 302
    assert users.get(store, member.id).is_admin
    theirs = app.test_client()
    make_auth(theirs).login(*MEMBER)
    assert theirs.get("/settings/users").status_code == 200
    assert _post(client, auth, f"/settings/users/{member.id}/revoke-admin").status_code == 302
    assert not users.get(store, member.id).is_admin
    assert theirs.get("/settings/users").status_code == 404  # takes effect at once


def test_the_last_admin_cannot_demote_or_remove_themselves(client, auth, store, admin) -> None:
    auth.login()
    page = _text(client.get(f"/settings/users/{admin.id}"))
    assert "admin is the only admin. Make another user admin before taking these rights away." in page
    assert "admin is the only admin and cannot be removed." in page
    assert "revoke-admin" not in page and "/remove" not in page
    # Direct POSTs are refused too.
    page = _text(_post(client, auth, f"/settings/users/{admin.id}/revoke-admin"))
    assert "Admin is the only admin; make another user admin first." in page
    page = _text(_post(client, auth, f"/settings/users/{admin.id}/remove", {"confirm_remove": "y"}))
    assert "Admin is the only admin and cannot be removed." in page
    assert users.get(store, admin.id).is_admin


def test_an_admin_may_step_down_when_another_admin_exists(client, auth, store, admin, member) -> None:
    users.set_admin(store, member.id, True)
    auth.login()
    response = _post(client, auth, f"/settings/users/{admin.id}/revoke-admin")
    assert response.status_code == 302
    assert "You are no longer an admin." in _text(client.get(response.location))
    assert client.get("/settings/users").status_code == 404


def test_removing_a_user_who_owns_nothing(app, client, auth, store, member, make_auth) -> None:
    theirs = app.test_client()
    make_auth(theirs).login(*MEMBER)
    auth.login()
    page = _text(_post(client, auth, f"/settings/users/{member.id}/remove", {}))
    assert "Tick the box to confirm." in page
    assert users.all_users(store)[-1].username == "member"
    response = _post(client, auth, f"/settings/users/{member.id}/remove", {"confirm_remove": "y"})
    assert response.status_code == 302
    assert "User member was removed." in _text(client.get(response.location))
    assert [u.username for u in users.all_users(store)] == ["admin"]
    assert not _logged_in_as(theirs, "member")
    assert client.get(f"/settings/users/{member.id}").status_code == 404
    # A user added later never inherits the removed user's id, so the old cookie stays dead.
    users.create(store, "later", "later password 1")
    assert theirs.get("/settings/").status_code == 302


def test_a_user_who_owns_something_is_explained_not_removed(client, auth, store, member) -> None:
    accounts.add(store, member.id, "local", "Home", AccessMode.READ_WRITE, {})
    accounts.add(store, member.id, "local", "Work", AccessMode.READ_WRITE, {})
    auth.login()
    page = _text(client.get(f"/settings/users/{member.id}"))
    assert "member still owns 2 calendar accounts." in page
    assert f"/settings/users/{member.id}/remove" not in page
    page = _text(_post(client, auth, f"/settings/users/{member.id}/remove", {"confirm_remove": "y"}))
    assert "member still owns 2 calendar accounts. Ask them to remove those first" in page
    assert any(u.username == "member" for u in users.all_users(store))


def test_unknown_user_ids_are_404(client, auth) -> None:
    auth.login()
    assert client.get("/settings/users/999").status_code == 404
    for action in ("password", "grant-admin", "revoke-admin", "remove"):
        assert _post(client, auth, f"/settings/users/999/{action}", {"confirm_remove": "y"}).status_code == 404


def test_members_get_404_for_every_admin_url_and_action(client, auth, store, admin, member) -> None:
    auth.login(*MEMBER)
    page = _text(client.get("/settings/"))
    assert "/settings/users" not in page
    for user_id in (admin.id, member.id):
        assert client.get(f"/settings/users/{user_id}").status_code == 404
        for action, data in [("password", {"password": "taken over 12345", "confirm": "taken over 12345"}),
                             ("grant-admin", {}), ("revoke-admin", {}), ("remove", {"confirm_remove": "y"})]:
            response = _post(client, auth, f"/settings/users/{user_id}/{action}", data)
            assert response.status_code == 404, (user_id, action)
    assert client.get("/settings/users").status_code == 404
    assert _post(client, auth, "/settings/users", {"username": "sneaky", "password": "sneaky password 1",
                                                   "is_admin": "y"}).status_code == 404
    # Nothing changed.
    assert [(u.username, u.is_admin) for u in users.all_users(store)] == [("admin", True), ("member", False)]
    assert users.authenticate(store, "admin", ADMIN_PASSWORD) is not None


@pytest.mark.parametrize("action", ["password", "grant-admin", "revoke-admin", "remove"])
def test_admin_posts_without_csrf_token_are_refused(client, auth, store, member, action) -> None:
    auth.login()
    response = client.post(f"/settings/users/{member.id}/{action}",
                           data={"password": "long enough pass", "confirm": "long enough pass"})
    assert response.status_code == 400
    assert client.post("/settings/users", data={"username": "x1", "password": "long enough pass"}).status_code == 400
    assert [(u.username, u.is_admin) for u in users.all_users(store)] == [("admin", True), ("member", False)]
    assert users.authenticate(store, "member", MEMBER[1]) is not None
