"""The accounts pages, through real HTTP requests to the app: linking CalDAV on a real Radicale
(right password, wrong password, unreachable), ICS feeds on a real feed server, local calendars,
the access-mode facts shown before linking, per-calendar settings, re-link, refresh, remove,
CSRF, and other users' ids.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from daemon import linking
from daemon.errors import UsageError
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.sync.options import RuleOptions
from tests.conftest import free_port
from tests.servers import RadicaleServer

FEED = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nX-WR-CALNAME:Holidays\r\n"
        "BEGIN:VEVENT\r\nUID:h1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260501\r\n"
        "DTEND;VALUE=DATE:20260502\r\nSUMMARY:Labour Day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
DAV_USERS = {f"dav{i}": f"Right-Pass-{i}-qZ7x" for i in range(24)}
_next_dav = itertools.count()


@dataclass
class Dav:
    server: RadicaleServer
    user: str
    password: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def dav_server(tmp_path_factory) -> Iterator[RadicaleServer]:
    """Radicale with real logins, so a wrong password gets a real 401."""
    with RadicaleServer(tmp_path_factory.mktemp("radicale-web"), users=DAV_USERS) as server:
        yield server


@pytest.fixture
def dav(dav_server: RadicaleServer) -> Dav:
    user = f"dav{next(_next_dav)}"
    return Dav(dav_server, user, DAV_USERS[user])


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[dict[str, str | None]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name"):
            self.found.setdefault(values["name"] or "", []).append(values)


def inputs(html: str) -> dict[str, list[dict[str, str | None]]]:
    parser = _Inputs()
    parser.feed(html)
    return parser.found


def value(html: str, name: str) -> str | None:
    return inputs(html)[name][0].get("value")


def checked(html: str, name: str) -> str | None:
    """The value of the checked radio (or checkbox) `name`, None if none is checked."""
    for attrs in inputs(html).get(name, []):
        if "checked" in attrs:
            return attrs.get("value")
    return None


def text(response) -> str:
    return response.get_data(as_text=True)


def post(client: FlaskClient, auth, path: str, data: dict, *, token_from: str | None = None):
    token = auth.csrf_token(token_from or path)
    return client.post(path, data={"csrf_token": token, **data})


def caldav_form(dav: Dav, **over: str) -> dict:
    data = {"preset": "other", "name": "Work", "url": dav.url, "username": dav.user, "password": dav.password,
            "mode": "read-write", "emails": ""}
    data.update(over)
    return data


def stored_bytes(data_dir: Path) -> bytes:
    """Everything homecal wrote to disk: the database, its WAL and shared memory files."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


@pytest.fixture
def logged_in(admin, auth) -> users.User:
    auth.login()
    return admin


# ------------------------------------------------------------------------------ CalDAV


def test_linking_caldav_keeps_the_account_its_calendars_and_no_readable_password(
        client, auth, logged_in, store, dav, data_dir) -> None:
    dav.server.make_calendar(dav.user, "work", name="Work calendar", color="#3366CCFF")
    dav.server.make_calendar(dav.user, "family", name="Family")
    response = post(client, auth, "/accounts/add/caldav", caldav_form(dav, emails="me@example.org"))
    assert response.status_code == 302
    [account] = accounts.all_accounts(store, logged_in.id)
    assert (account.kind, account.name, account.mode) == ("caldav", "Work", AccessMode.READ_WRITE)
    secret = accounts.secret(store, account.id)
    assert secret == {"url": dav.url, "username": dav.user, "password": dav.password, "emails": ["me@example.org"]}
    page = text(client.get(response.location))
    assert "Linked Work with 2 calendars." in page
    assert "Work calendar" in page and "Family" in page and "#3366CC" in page
    for path in ("/accounts/", "/", f"/accounts/{account.id}/relink", f"/accounts/{account.id}/remove"):
        assert dav.password not in text(client.get(path)), path
    # sealed: not in the database file, its WAL or anything else homecal wrote
    assert dav.password.encode() not in stored_bytes(data_dir)


def test_a_wrong_password_keeps_nothing_and_gives_back_everything_but_the_password(
        client, auth, logged_in, store, dav, data_dir) -> None:
    response = post(client, auth, "/accounts/add/caldav",
                    caldav_form(dav, password="Wrong-Password-123", mode="free-busy", emails="a@example.org"))
    assert response.status_code == 200
    page = text(response)
    assert "The server refused the login: check the user name and password." in page
    assert 'role="alert"' in page
    assert value(page, "name") == "Work" and value(page, "url") == dav.url
    assert value(page, "username") == dav.user and value(page, "emails") == "a@example.org"
    assert checked(page, "mode") == "free-busy" and checked(page, "preset") == "other"
    assert not value(page, "password") and "Wrong-Password-123" not in page
    assert accounts.all_accounts(store) == [] and accounts.calendars(store) == []
    assert b"Wrong-Password-123" not in stored_bytes(data_dir)


def test_icloud_failures_point_at_the_app_specific_password(client, auth, logged_in, store, dav) -> None:
    # The iCloud preset with the URL given (a real server stands in for Apple's).
    page = text(post(client, auth, "/accounts/add/caldav",
                     caldav_form(dav, preset="icloud", password="my-apple-id-password")))
    assert "The server refused the login" in page and "app-specific password" in page
    assert checked(page, "preset") == "icloud"
    assert accounts.all_accounts(store) == []


def test_an_unreachable_server_keeps_nothing(client, auth, logged_in, store, dav) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    page = text(post(client, auth, "/accounts/add/caldav", caldav_form(dav, url=url)))
    assert "homecal could not reach the server" in page
    assert value(page, "url") == url and value(page, "username") == dav.user
    assert accounts.all_accounts(store) == []


def test_form_problems_are_shown_next_to_their_fields(client, auth, logged_in, store) -> None:
    page = text(post(client, auth, "/accounts/add/caldav",
                     {"preset": "nextcloud", "name": "bad/name", "url": "", "username": "me", "password": "",
                      "mode": "read-write", "emails": "not-an-address"}))
    assert "Use 1 to 64 letters" in page
    assert "Enter the password." in page
    assert "Not an email address: not-an-address." in page
    assert value(page, "name") == "bad/name" and value(page, "username") == "me"
    # The Nextcloud preset needs the user's host: an empty URL is asked for, not guessed.
    page = text(post(client, auth, "/accounts/add/caldav",
                     {"preset": "nextcloud", "name": "Cloud", "url": "", "username": "me", "password": "pw",
                      "mode": "read-write"}))
    assert "Enter your Nextcloud address." in page
    assert accounts.all_accounts(store) == []


def test_the_preset_fills_the_url_and_shows_its_hint_without_javascript(client, logged_in) -> None:
    page = text(client.get("/accounts/add/caldav?preset=icloud"))
    assert checked(page, "preset") == "icloud" and value(page, "name") == "iCloud"
    assert "iCloud needs an app-specific password" in page and "appleid.apple.com" in page
    assert "homecal uses https://caldav.icloud.com/" in page
    page = text(client.get("/accounts/add/caldav?preset=fastmail"))
    assert "https://caldav.fastmail.com/" in page and "App passwords" in page
    # every preset is reachable from the chooser; Google and Microsoft have pages of their own
    chooser = text(client.get("/accounts/add"))
    for key in ("icloud", "fastmail", "nextcloud", "other"):
        assert f"/accounts/add/caldav?preset={key}" in chooser
    assert "/accounts/add/google" not in chooser and "/accounts/add/microsoft" not in chooser
    assert "Coming" not in chooser  # nothing is left that homecal cannot link


def test_preset_urls() -> None:
    assert linking.caldav_url("icloud", "") == "https://caldav.icloud.com/"
    assert linking.caldav_url("fastmail", " ") == "https://caldav.fastmail.com/"
    assert linking.caldav_url("nextcloud", "cloud.example.org") == "https://cloud.example.org/remote.php/dav/"
    assert linking.caldav_url("nextcloud", "https://example.org/nc/") == "https://example.org/nc/remote.php/dav/"
    assert linking.caldav_url("nextcloud", "https://example.org/remote.php/dav/") == \
        "https://example.org/remote.php/dav/"
    assert linking.caldav_url("icloud", "https://p42-caldav.icloud.com/") == "https://p42-caldav.icloud.com/"
    for preset, url in (("nextcloud", ""), ("other", ""), ("other", "ftp://example.org/")):
        with pytest.raises(UsageError):
            linking.caldav_url(preset, url)


def test_the_access_modes_are_explained_before_linking(client, logged_in) -> None:
    page = text(client.get("/accounts/add/caldav"))
    assert checked(page, "mode") == "read-write"
    assert "Only the start, end and busy status of each event." in page
    assert "Never titles, places, descriptions or attendees" in page
    assert "Never edit or delete events it did not create, unless you grant a calendar extended permission." in page
    assert "the password gives homecal the same access you have" in page


def test_the_access_page_lists_the_exact_scopes_of_every_provider(client, logged_in) -> None:
    page = text(client.get("/accounts/access"))
    for scope in ("https://www.googleapis.com/auth/calendar.events<",
                  "https://www.googleapis.com/auth/calendar.events.freebusy",
                  "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
                  ">openid<", ">email<", "Calendars.ReadWrite", "Calendars.ReadBasic", "User.Read"):
        assert scope in page, scope
    assert "None: nothing is requested from the provider." in page  # no-access
    assert "anyone with its URL can read it" in page


# ------------------------------------------------------------------------------ feeds and local


def test_linking_a_feed_reads_it_first(client, auth, logged_in, store, feed_server) -> None:
    feed_server.set_body(FEED)
    response = post(client, auth, "/accounts/add/feed", {"name": "Holidays feed", "url": feed_server.url(),
                                                          "mode": "free-busy"})
    assert response.status_code == 302
    [account] = accounts.all_accounts(store, logged_in.id)
    assert (account.kind, account.mode) == ("ics", AccessMode.FREE_BUSY)
    [cal] = accounts.calendars(store, account.id)
    assert cal.name == "Holidays" and not cal.writable
    page = text(client.get("/accounts/"))
    assert "No (read-only)" in page and "Free/busy only" in page
    assert "Full details (read only)" in text(client.get("/accounts/add/feed"))


def test_a_broken_feed_keeps_nothing(client, auth, logged_in, store, feed_server) -> None:
    feed_server.set_body(FEED)
    feed_server.fail(500)
    page = text(post(client, auth, "/accounts/add/feed", {"name": "Feed", "url": feed_server.url(),
                                                           "mode": "read-write"}))
    assert "The server answered in a way homecal did not expect" in page
    assert value(page, "url") == feed_server.url()
    page = text(post(client, auth, "/accounts/add/feed", {"name": "Feed", "url": "ftp://example.org/x.ics",
                                                           "mode": "read-write"}))
    assert "A feed URL starts with https:// or webcal://" in page and value(page, "name") == "Feed"
    assert accounts.all_accounts(store) == []


def test_a_local_calendar_and_a_name_taken_twice(client, auth, logged_in, store) -> None:
    assert post(client, auth, "/accounts/add/local", {"name": "Bookings"}).status_code == 302
    [cal] = accounts.calendars(store, user_id=logged_in.id)
    assert cal.name == "Bookings" and cal.writable
    page = text(post(client, auth, "/accounts/add/local", {"name": "Bookings"}))
    assert "An account named &#39;Bookings&#39; already exists." in page and value(page, "name") == "Bookings"
    assert len(accounts.all_accounts(store)) == 1


# ------------------------------------------------------------------------------ calendar settings


def _local(store, user_id: int, name: str = "home", mode: AccessMode = AccessMode.READ_WRITE,
           kind: str = "local") -> tuple[accounts.Account, accounts.Calendar]:
    account = accounts.add(store, user_id, kind, name, mode, {})
    [cal] = accounts.save_calendars(store, account.id, [CalendarInfo("local", name)])
    return account, cal


def test_calendar_flags_and_colour_persist(client, auth, logged_in, store) -> None:
    _, cal = _local(store, logged_in.id)
    page = text(client.get(f"/accounts/calendars/{cal.id}"))
    assert "checked" in inputs(page)["use_for_conflicts"][0]  # on by default
    response = post(client, auth, f"/accounts/calendars/{cal.id}", {"color": "#aa33cc"})  # box left unticked
    assert response.status_code == 302
    saved = accounts.calendar(store, cal.id)
    assert saved.color == "#AA33CC" and not saved.use_for_conflicts and not saved.extended_permission
    page = text(client.get(f"/accounts/calendars/{cal.id}"))
    assert value(page, "color") == "#AA33CC" and "checked" not in inputs(page)["use_for_conflicts"][0]
    # a refresh of the calendar list keeps the colour the user chose
    accounts.save_calendars(store, cal.account_id, [CalendarInfo("local", "home", color="#000000")])
    assert accounts.calendar(store, cal.id).color == "#AA33CC"
    page = text(post(client, auth, f"/accounts/calendars/{cal.id}", {"color": "red", "use_for_conflicts": "y"}))
    assert "Choose a colour as #RRGGBB" in page
    assert accounts.calendar(store, cal.id).color == "#AA33CC"


def test_extended_permission_needs_an_explicit_confirmation(client, auth, logged_in, store) -> None:
    _, cal = _local(store, logged_in.id)
    page = text(client.get(f"/accounts/calendars/{cal.id}"))
    assert "may also edit and delete" in page and "checked" not in inputs(page)["extended_permission"][0]
    page = text(post(client, auth, f"/accounts/calendars/{cal.id}",
                     {"color": "#112233", "use_for_conflicts": "y", "extended_permission": "y"}))
    assert "Tick this box to grant the permission" in page
    assert "checked" in inputs(page)["extended_permission"][0]  # what the user chose is kept
    assert not accounts.calendar(store, cal.id).extended_permission
    assert accounts.calendar(store, cal.id).color is None  # nothing saved from the refused form
    response = post(client, auth, f"/accounts/calendars/{cal.id}",
                    {"color": "#112233", "extended_permission": "y", "confirm_extended": "y"})
    assert response.status_code == 302 and accounts.calendar(store, cal.id).extended_permission
    assert "Any event (extended permission)" in text(client.get("/accounts/"))
    # Once granted, saving again does not ask again; turning it off needs no confirmation.
    assert post(client, auth, f"/accounts/calendars/{cal.id}",
                {"color": "#112233", "extended_permission": "y"}).status_code == 302
    assert accounts.calendar(store, cal.id).extended_permission
    assert post(client, auth, f"/accounts/calendars/{cal.id}", {"color": "#112233"}).status_code == 302
    assert not accounts.calendar(store, cal.id).extended_permission


def test_extended_permission_is_not_offered_where_homecal_never_writes(client, auth, logged_in, store) -> None:
    _, cal = _local(store, logged_in.id, "fb", AccessMode.FREE_BUSY, kind="caldav")
    page = text(client.get(f"/accounts/calendars/{cal.id}"))
    assert "Not available: homecal never writes to this calendar" in page
    post(client, auth, f"/accounts/calendars/{cal.id}",
         {"color": "#112233", "extended_permission": "y", "confirm_extended": "y"})
    assert not accounts.calendar(store, cal.id).extended_permission


# ------------------------------------------------------------------------------ re-link, refresh, remove


def _link_dav(client, auth, store, dav: Dav, user_id: int) -> accounts.Account:
    assert post(client, auth, "/accounts/add/caldav", caldav_form(dav)).status_code == 302
    return accounts.all_accounts(store, user_id)[-1]


def test_relink_after_the_password_was_refused(client, auth, logged_in, store, dav, data_dir) -> None:
    dav.server.make_calendar(dav.user, "work")
    account = _link_dav(client, auth, store, dav, logged_in.id)
    # The sync found the stored password refused (it was changed on the server).
    accounts.set_secret(store, account.id, linking.caldav_secret(dav.url, dav.user, "Old-Password-999"))
    accounts.record_failure(store, account.id, f"CalDAV login refused for {dav.user}@127.0.0.1: check the "
                            "password (iCloud needs an app-specific password)", status="needs-relink",
                            backoff_until="2999-01-01T00:00:00+00:00")
    assert "Re-link" in text(client.get("/accounts/"))
    page = text(client.get(f"/accounts/{account.id}/relink"))
    assert "The server refused homecal's login." in page
    assert value(page, "url") == dav.url and value(page, "username") == dav.user
    assert not value(page, "password") and "Old-Password-999" not in page

    page = text(post(client, auth, f"/accounts/{account.id}/relink",
                     {"url": dav.url, "username": dav.user, "password": "Still-Wrong-777"}))
    assert "The server refused the login" in page and "Still-Wrong-777" not in page
    assert accounts.secret(store, account.id)["password"] == "Old-Password-999"
    assert accounts.get(store, account.id).status == "needs-relink"

    response = post(client, auth, f"/accounts/{account.id}/relink",
                    {"url": dav.url, "username": dav.user, "password": dav.password})
    assert response.status_code == 302
    healed = accounts.get(store, account.id)
    assert (healed.status, healed.failures, healed.backoff_until, healed.last_error) == ("ok", 0, None, None)
    assert accounts.secret(store, account.id)["password"] == dav.password
    assert "is linked again and works" in text(client.get(response.location))
    for secret_text in (b"Old-Password-999", b"Still-Wrong-777", dav.password.encode()):
        assert secret_text not in stored_bytes(data_dir)


def test_refresh_lists_new_calendars_and_notices_a_refused_login(client, auth, logged_in, store, dav) -> None:
    dav.server.make_calendar(dav.user, "work")
    account = _link_dav(client, auth, store, dav, logged_in.id)
    dav.server.make_calendar(dav.user, "later", name="Added later")
    response = post(client, auth, f"/accounts/{account.id}/refresh", {}, token_from="/accounts/")
    assert response.status_code == 302
    assert "Added later" in text(client.get(response.location))
    assert len(accounts.calendars(store, account.id)) == 2

    accounts.set_secret(store, account.id, linking.caldav_secret(dav.url, dav.user, "Revoked-Password-1"))
    response = post(client, auth, f"/accounts/{account.id}/refresh", {}, token_from="/accounts/")
    assert "Could not refresh Work: The server refused the login" in text(client.get(response.location))
    assert accounts.get(store, account.id).status == "needs-relink"


def test_remove_explains_first_and_waits_for_the_rules(client, auth, logged_in, store) -> None:
    account, cal = _local(store, logged_in.id, "home")
    _, other = _local(store, logged_in.id, "work")
    rule = rules_repo.add(store, logged_in.id, [cal.id], other.id, RuleOptions.from_dict({"style": "busy"}),
                          "home into work")
    page = text(client.get(f"/accounts/{account.id}/remove"))
    assert "cannot be removed yet" in page and "home into work" in page and f"/rules/{rule.id}" in page
    page = text(post(client, auth, f"/accounts/{account.id}/remove", {}))
    assert "Rules still use this account" in page
    assert accounts.get(store, account.id)

    rules_repo.remove(store, rule.id)
    page = text(client.get(f"/accounts/{account.id}/remove"))
    assert "The events kept in this local calendar are deleted" in page
    response = post(client, auth, f"/accounts/{account.id}/remove", {})
    assert response.status_code == 302
    assert [a.name for a in accounts.all_accounts(store)] == ["work"]
    assert "Removed home." in text(client.get(response.location))


# ------------------------------------------------------------------------------ CSRF and other users


def _post_urls(account_id: int, calendar_id: int) -> list[str]:
    return ["/accounts/add/caldav", "/accounts/add/feed", "/accounts/add/local",
            f"/accounts/{account_id}/relink", f"/accounts/{account_id}/refresh", f"/accounts/{account_id}/remove",
            f"/accounts/calendars/{calendar_id}"]


def test_a_post_without_csrf_token_is_refused(client, logged_in, store) -> None:
    account, cal = _local(store, logged_in.id)
    for url in _post_urls(account.id, cal.id):
        response = client.post(url, data={"name": "sneaky", "color": "#000000", "extended_permission": "y",
                                          "confirm_extended": "y", "url": "https://example.org/x.ics"})
        assert response.status_code == 400, url
        assert "The form expired" in text(response)
    assert [a.name for a in accounts.all_accounts(store)] == ["home"]
    assert not accounts.calendar(store, cal.id).extended_permission


def test_another_user_gets_404_for_every_account_and_calendar_id(client, auth, store) -> None:
    alice = users.create(store, "alice", "alice password 1")
    users.create(store, "bob", "bob password 12")
    account, cal = _local(store, alice.id, "alice-private")
    feed = accounts.add(store, alice.id, "ics", "alice-feed", AccessMode.READ_WRITE,
                        {"url": "https://example.org/secret-token.ics"})
    auth.login("bob", "bob password 12")
    token = auth.csrf_token("/accounts/add/local")
    for acc_id in (account.id, feed.id):
        for url in (f"/accounts/{acc_id}/relink", f"/accounts/{acc_id}/remove"):
            assert client.get(url).status_code == 404, url
        for url in (f"/accounts/{acc_id}/relink", f"/accounts/{acc_id}/refresh", f"/accounts/{acc_id}/remove"):
            assert client.post(url, data={"csrf_token": token, "url": "https://evil.example/x.ics"}).status_code \
                == 404, url
    assert client.get(f"/accounts/calendars/{cal.id}").status_code == 404
    response = client.post(f"/accounts/calendars/{cal.id}", data={
        "csrf_token": token, "color": "#000000", "extended_permission": "y", "confirm_extended": "y"})
    assert response.status_code == 404
    for page in ("/accounts/", "/"):
        body = text(client.get(page))
        assert "alice-private" not in body and "alice-feed" not in body and "secret-token" not in body
    assert [a.name for a in accounts.all_accounts(store, alice.id)] == ["alice-private", "alice-feed"]
    assert accounts.secret(store, feed.id)["url"] == "https://example.org/secret-token.ics"
    assert not accounts.calendar(store, cal.id).extended_permission and accounts.calendar(store, cal.id).color is None
