"""The settings pages through real HTTP requests: profile and time zone, working hours,
password change, mail (with a real SMTP server receiving the test mail), public URL, and who
may change what."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from daemon.config import with_overrides
from daemon.store import settings as st
from daemon.store import users
from tests.conftest import free_port
from tests.servers import self_signed_tls
from tests.servers import SmtpSink
from tests.web.conftest import ADMIN_PASSWORD
from webui import create_app

pytestmark = pytest.mark.usefixtures("admin")

SMTP_SECRET = "smtp-Secret-in-the-UI-7781"
MEMBER = ("member", "member password 123")


def _post(client: FlaskClient, auth, path: str, data: dict[str, object]):
    """POST like the browser: with the session's CSRF token (any settings page carries it)."""
    return client.post(path, data={"csrf_token": auth.csrf_token("/settings/"), **data})


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _smtp_form(port: int, /, **changes: object) -> dict[str, object]:
    data = {"host": "127.0.0.1", "port": str(port), "security": "none", "username": "homecal",
            "password": SMTP_SECRET, "from_address": "homecal@example.org"}
    data.update(changes)
    return data


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(login=("homecal", SMTP_SECRET)) as server:
        yield server


@pytest.fixture
def member(store) -> users.User:
    return users.create(store, *MEMBER)


# -- profile -----------------------------------------------------------------------------------


def test_profile_saves_email_and_time_zone(client, auth, store, admin) -> None:
    auth.login()
    response = _post(client, auth, "/settings/", {"email": "boss@example.org", "timezone": "America/New_York"})
    assert response.status_code == 302
    page = _text(client.get("/settings/"))
    assert "Your profile was saved." in page
    assert 'value="boss@example.org"' in page
    assert '<option selected value="America/New_York">' in page
    assert users.get(store, admin.id).timezone == "America/New_York"
    assert users.email(store, admin.id) == "boss@example.org"


def test_profile_with_bad_values_shows_messages_and_keeps_what_was_typed(client, auth, store, admin) -> None:
    auth.login()
    response = _post(client, auth, "/settings/", {"email": "boss at example", "timezone": "Mars/Olympus_Mons"})
    page = _text(response)
    assert response.status_code == 200
    assert "Enter an e-mail address like name@example.org." in page
    assert "Unknown time zone 'Mars/Olympus_Mons'" in page
    assert 'value="boss at example"' in page
    assert users.get(store, admin.id).timezone == "UTC"
    assert users.email(store, admin.id) is None


def test_the_time_zone_list_offers_every_zone(client, auth) -> None:
    auth.login()
    page = _text(client.get("/settings/"))
    assert page.count("<option ") == len(users.time_zones())
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in page
    assert '<label class="field-label" for="timezone">Time zone</label>' in page


# -- working hours -------------------------------------------------------------------------------


def _hours_form(**days: tuple[str, str] | None) -> dict[str, str]:
    """Form fields for the working-hours page: days not named are off with empty times."""
    data: dict[str, str] = {}
    for day in users.WEEKDAYS:
        span = days.get(day)
        if span is not None:
            data[f"{day}-works"] = "y"
        data[f"{day}-start"], data[f"{day}-end"] = span or ("", "")
    return data


def test_working_hours_persist_and_show_again(client, auth, store, admin) -> None:
    auth.login()
    page = _text(client.get("/settings/working-hours"))
    assert "Not saved yet" in page  # a suggestion until saved
    response = _post(client, auth, "/settings/working-hours",
                     _hours_form(mon=("08:30", "16:00"), wed=("10:00", "18:15"), sat=("09:00", "12:00")))
    assert response.status_code == 302
    assert users.working_hours(store, admin.id) == {"mon": ("08:30", "16:00"), "wed": ("10:00", "18:15"),
                                                     "sat": ("09:00", "12:00")}
    page = _text(client.get("/settings/working-hours"))
    assert "Your working hours were saved." in page and "Not saved yet" not in page
    assert 'checked id="mon-works"' in page and 'id="tue-works" name="tue-works" type="checkbox" value="y">' in page
    assert 'id="wed-end" name="wed-end" type="time" value="18:15"' in page


def test_working_hours_must_end_after_they_start(client, auth, store, admin) -> None:
    auth.login()
    response = _post(client, auth, "/settings/working-hours", _hours_form(mon=("17:00", "09:00"), tue=("09:00", "")))
    page = _text(response)
    assert response.status_code == 200
    assert "Please correct the days marked below." in page
    assert "The end must be after the start." in page
    assert "Enter when the day ends." in page
    assert 'id="mon-start" name="mon-start" type="time" value="17:00"' in page  # kept as typed
    assert users.working_hours(store, admin.id) is None


def test_unreadable_times_are_reported_but_ignored_on_days_off(client, auth, store, admin) -> None:
    auth.login()
    form = _hours_form(mon=("25:99", "17:00"))
    form["sun-start"] = "garbage"  # sunday is off: its times do not matter
    page = _text(_post(client, auth, "/settings/working-hours", form))
    assert "Not a valid time value" in page
    assert page.count("Not a valid time value") == 1
    assert users.working_hours(store, admin.id) is None


# -- password ----------------------------------------------------------------------------------


def _logged_in(client: FlaskClient) -> bool:
    response = client.get("/settings/password")
    return response.status_code == 200 and "Log out" in response.get_data(as_text=True)


def test_changing_the_password_logs_out_other_sessions_but_not_this_one(app, client, auth, make_auth, store) -> None:
    other = app.test_client()
    make_auth(other).login()
    auth.login()
    assert _logged_in(other)
    new = "a brand new password"
    response = _post(client, auth, "/settings/password", {"current": ADMIN_PASSWORD, "new": new, "confirm": new})
    assert response.status_code == 302
    page = _text(client.get(response.location))
    assert "Your password was changed. Every other session was logged out." in page
    assert _logged_in(client)
    assert not _logged_in(other)
    assert users.authenticate(store, "admin", new) is not None
    assert users.authenticate(store, "admin", ADMIN_PASSWORD) is None
    # The session goes on working for forms too (its CSRF token was renewed with the cookie).
    assert _post(client, auth, "/settings/", {"email": "", "timezone": "UTC"}).status_code == 302


def test_a_wrong_current_password_is_refused(client, auth, store) -> None:
    auth.login()
    new = "a brand new password"
    response = _post(client, auth, "/settings/password", {"current": "not my password", "new": new, "confirm": new})
    page = _text(response)
    assert response.status_code == 200
    assert "That is not your current password." in page
    assert "not my password" not in page and new not in page  # passwords are never shown again
    assert users.authenticate(store, "admin", ADMIN_PASSWORD) is not None
    assert _logged_in(client)


@pytest.mark.parametrize("new,confirm,message", [
    ("short", "short", "Password must be at least 10 characters."),
    ("long enough password", "different password", "The new passwords do not match."),
    ("", "", "Choose a new password."),
])
def test_bad_new_passwords_are_explained(client, auth, store, new, confirm, message) -> None:
    auth.login()
    page = _text(_post(client, auth, "/settings/password", {"current": ADMIN_PASSWORD, "new": new, "confirm": confirm}))
    assert message in page
    assert users.authenticate(store, "admin", ADMIN_PASSWORD) is not None


def test_guessing_the_current_password_is_throttled(client, auth) -> None:
    auth.login()
    data = {"current": "guess", "new": "long enough password", "confirm": "long enough password"}
    statuses = [_post(client, auth, "/settings/password", data).status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


# -- mail ----------------------------------------------------------------------------------------


def test_a_test_mail_reaches_a_real_smtp_server(client, auth, store, admin, sink) -> None:
    auth.login()
    users.set_email(store, admin.id, "boss@example.org")
    assert _post(client, auth, "/settings/mail", _smtp_form(sink.port)).status_code == 302
    page = _text(client.get("/settings/mail"))
    assert "The mail settings were saved." in page
    assert 'name="recipient" required spellcheck="false" type="email" value="boss@example.org"' in page  # own address
    response = _post(client, auth, "/settings/mail/test", {"recipient": "someone@example.net"})
    assert response.status_code == 302
    assert "A test mail was sent to someone@example.net." in _text(client.get(response.location))
    [got] = sink.received
    assert got.mail_from == "homecal@example.org"
    assert got.rcpt_tos == ["someone@example.net"]
    assert got.message["Subject"] == "homecal test mail"
    assert got.message["To"] == "someone@example.net"


def test_the_page_says_where_each_value_comes_from(config, store, make_auth) -> None:
    file_config = with_overrides(config, smtp={"host": "smtp.file.example", "username": "fileuser"})
    client = create_app(file_config, store, testing=True).test_client()
    auth = make_auth(client)
    auth.login()
    page = _text(client.get("/settings/mail"))
    assert re.search(r"SMTP server</th><td>smtp.file.example</td><td><span [^>]*>config file</span>", page)
    assert re.search(r"Sender address</th><td>not set</td><td><span [^>]*>default</span>", page)
    form = _smtp_form(2525, host="smtp.ui.example", username="fileuser", password="", from_address="")
    form["security"] = "starttls"
    assert _post(client, auth, "/settings/mail", form).status_code == 302
    page = _text(client.get("/settings/mail"))
    assert re.search(r"SMTP server</th><td>smtp.ui.example</td><td><span [^>]*>saved in homecal</span>", page)
    assert re.search(r"User name</th><td>fileuser</td><td><span [^>]*>config file</span>", page)
    # Back to the file's values with one button.
    assert _post(client, auth, "/settings/mail/reset", {}).status_code == 302
    assert "smtp.ui.example" not in _text(client.get("/settings/mail"))


@pytest.mark.parametrize("changes,message", [
    ({"port": "0"}, "The port must be between 1 and 65535."),
    ({"port": "abc"}, "Not a valid integer value."),
    ({"host": "smtp example org"}, "Enter a server name like smtp.example.org, or an IP address."),
    ({"from_address": "homecal at example"}, "Enter an e-mail address like homecal@example.org."),
    ({"security": "ssl3"}, "Not a valid choice."),
    ({"clear_password": "y"}, "Either enter a new password or remove it, not both."),
])
def test_bad_mail_settings_show_messages_keep_the_input_and_never_the_password(
        client, auth, store, config, changes, message) -> None:
    auth.login()
    response = _post(client, auth, "/settings/mail", _smtp_form(2525, username="typed-user", **changes))
    page = _text(response)
    assert response.status_code == 200
    assert message in page
    assert 'value="typed-user"' in page
    assert SMTP_SECRET not in page
    assert not st.smtp_overridden(store)


def test_an_empty_password_keeps_the_saved_one_and_clear_removes_it(client, auth, store, config, sink) -> None:
    auth.login()
    _post(client, auth, "/settings/mail", _smtp_form(sink.port))
    _post(client, auth, "/settings/mail", _smtp_form(sink.port, password=""))
    assert st.effective_smtp(config, store).password == SMTP_SECRET
    assert "set (hidden)" in _text(client.get("/settings/mail"))
    _post(client, auth, "/settings/mail", _smtp_form(sink.port, password="", clear_password="y"))
    assert st.effective_smtp(config, store).password == ""
    # Without the password the server refuses the log-in, in plain words.
    page = _text(_post(client, auth, "/settings/mail/test", {"recipient": "a@example.org"}))
    assert "Authentication failed" in page


def test_send_failures_are_explained_in_plain_words(client, auth, tmp_path) -> None:
    auth.login()
    # Connection refused: nothing listens on the port.
    _post(client, auth, "/settings/mail", _smtp_form(free_port()))
    page = _text(_post(client, auth, "/settings/mail/test", {"recipient": "a@example.org"}))
    assert "refused the connection" in page
    assert 'value="a@example.org"' in page  # the recipient stays in the form
    # Authentication failed, from a server that even echoes the password it was sent.
    with SmtpSink(login=("homecal", "the real one 123"), echo_password=True) as server:
        _post(client, auth, "/settings/mail", _smtp_form(server.port))
        page = _text(_post(client, auth, "/settings/mail/test", {"recipient": "a@example.org"}))
        assert "Authentication failed: the mail server rejected the user name or password" in page
        assert SMTP_SECRET not in page
    # TLS problem: STARTTLS with a certificate the system does not trust.
    server_ctx, _ = self_signed_tls(tmp_path)
    with SmtpSink(starttls=server_ctx) as server:
        _post(client, auth, "/settings/mail", _smtp_form(server.port, security="starttls"))
        page = _text(_post(client, auth, "/settings/mail/test", {"recipient": "a@example.org"}))
        assert "TLS problem: the certificate of 127.0.0.1 could not be verified" in page


def test_mail_switched_off_is_explained_when_testing(client, auth) -> None:
    auth.login()
    page = _text(client.get("/settings/mail"))
    assert "Mail is off:" in page
    page = _text(_post(client, auth, "/settings/mail/test", {"recipient": "a@example.org"}))
    assert "Mail is not set up: no SMTP server is configured." in page


def test_the_smtp_password_never_shows_in_pages_logs_or_the_database(
        client, auth, data_dir: Path, store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    auth.login()
    pages = []
    with SmtpSink(login=("homecal", "another password 1"), echo_password=True) as server:
        pages.append(_post(client, auth, "/settings/mail", _smtp_form(server.port)))
        pages.append(_post(client, auth, "/settings/mail", _smtp_form(server.port, port="bad")))
        pages.append(_post(client, auth, "/settings/mail/test", {"recipient": "a@example.org"}))
        pages += [client.get(p) for p in ("/settings/mail", "/settings/", "/settings/public-url", "/settings/users")]
    assert any("Authentication failed" in _text(p) for p in pages)  # the password was really used
    for page in pages:
        assert SMTP_SECRET not in page.get_data(as_text=True)
    homecal_lines = [r.getMessage() for r in caplog.records if r.name.startswith("homecal")]
    assert homecal_lines and not any(SMTP_SECRET in line for line in homecal_lines)
    store.checkpoint()
    on_disk = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert SMTP_SECRET.encode() not in on_disk


# -- public URL --------------------------------------------------------------------------------


def test_the_public_url_is_saved_validated_and_can_fall_back(client, auth, store, config) -> None:
    auth.login()
    page = _text(client.get("/settings/public-url"))
    assert "http://127.0.0.1:8400" in page and "default" in page
    response = _post(client, auth, "/settings/public-url", {"public_url": "https://user:pw@evil.example/"})
    page = _text(response)
    assert response.status_code == 200
    assert "The URL must not contain a user name or password." in page
    assert 'value="https://user:pw@evil.example/"' in page
    assert _post(client, auth, "/settings/public-url", {"public_url": "https://Cal.Example.org/"}).status_code == 302
    page = _text(client.get("/settings/public-url"))
    assert "<code>https://cal.example.org</code>" in page and "saved in homecal" in page
    assert st.effective_public_url(config, store) == "https://cal.example.org"
    _post(client, auth, "/settings/public-url", {"public_url": ""})
    assert st.effective_public_url(config, store) == "http://127.0.0.1:8400"


# -- who may change what ---------------------------------------------------------------------------


def test_members_see_global_settings_read_only_and_cannot_post_them(client, auth, store, config, member) -> None:
    st.save_smtp(config, store, {"host": "smtp.example.org", "port": 587, "security": "starttls",
                                 "username": "mailer-login", "from_address": "cal@example.org"}, password=SMTP_SECRET)
    st.save_public_url(store, "https://cal.example.org")
    auth.login(*MEMBER)
    page = _text(client.get("/settings/mail"))
    assert "smtp.example.org" in page and "cal@example.org" in page
    assert "Only an admin can change these settings." in page
    assert "mailer-login" not in page and SMTP_SECRET not in page
    assert "<form" not in page.split('<main')[1].replace('class="logout-form"', "")
    assert "Users" not in page.split('aria-label="Settings sections"')[1].split("</nav>")[0]
    page = _text(client.get("/settings/public-url"))
    assert "https://cal.example.org" in page and "Only an admin can change it." in page
    for path, data in [("/settings/mail", _smtp_form(25)), ("/settings/mail/test", {"recipient": "a@example.org"}),
                       ("/settings/mail/reset", {}), ("/settings/public-url", {"public_url": "https://evil.example"})]:
        assert _post(client, auth, path, data).status_code == 403, path
    assert st.effective_smtp(config, store).host == "smtp.example.org"
    assert st.effective_public_url(config, store) == "https://cal.example.org"


def test_members_keep_their_own_profile_hours_and_password(client, auth, store, member) -> None:
    auth.login(*MEMBER)
    assert _post(client, auth, "/settings/", {"email": "", "timezone": "Asia/Tokyo"}).status_code == 302
    assert _post(client, auth, "/settings/working-hours", _hours_form(mon=("07:00", "15:00"))).status_code == 302
    assert users.get(store, member.id).timezone == "Asia/Tokyo"
    assert users.working_hours(store, member.id) == {"mon": ("07:00", "15:00")}
    assert users.get(store, 1).timezone == "UTC"  # the admin's are untouched
    new = "member new password"
    assert _post(client, auth, "/settings/password",
                 {"current": MEMBER[1], "new": new, "confirm": new}).status_code == 302
    assert users.authenticate(store, MEMBER[0], new) is not None


@pytest.mark.parametrize("path", ["/settings/", "/settings/working-hours", "/settings/password", "/settings/mail",
                                  "/settings/mail/test", "/settings/mail/reset", "/settings/public-url"])
def test_a_post_without_csrf_token_is_refused(client, auth, store, admin, path) -> None:
    auth.login()
    response = client.post(path, data={"email": "x@example.org", "timezone": "Asia/Tokyo", "host": "evil.example",
                                       "port": "25", "security": "none", "recipient": "a@example.org",
                                       "public_url": "https://evil.example", "current": ADMIN_PASSWORD,
                                       "new": "long enough password", "confirm": "long enough password"})
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)
    assert users.get(store, admin.id).timezone == "UTC"
    assert not st.smtp_overridden(store)
    assert store.meta_get(st.PUBLIC_URL_KEY) is None
    assert users.authenticate(store, "admin", ADMIN_PASSWORD) is not None


def test_settings_pages_are_accessible_in_structure(client, auth, member) -> None:
    auth.login()
    for path in ("/settings/", "/settings/working-hours", "/settings/password", "/settings/mail",
                 "/settings/public-url", "/settings/users", "/settings/users/1", f"/settings/users/{member.id}"):
        html = client.get(path).get_data(as_text=True)
        assert html.count("<h1>") == 1, path
        ids = re.findall(r'\bid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), (path, sorted(i for i in ids if ids.count(i) > 1))
        levels = [int(n) for n in re.findall(r"<h([1-6])", html)]
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), (path, levels)  # no skipped level
        for input_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html):
            tag = re.search(rf'<(?:input|select|textarea)[^>]*\bid="{re.escape(input_id)}"[^>]*>', html).group(0)
            if 'type="hidden"' in tag or " hidden" in tag:
                continue
            assert f'for="{input_id}"' in html, (path, input_id)
        assert "<input type=\"submit\"" not in html and "style=" not in html and "<script" not in html
        assert 'aria-current="page"' in html.split('aria-label="Settings sections"')[1].split("</nav>")[0]
