"""daemon.store.settings (UI values layered over the config file) and the profile, role and
removal functions of daemon.store.users, on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import Config, with_overrides
from daemon.errors import UsageError
from daemon.models import AccessMode
from daemon.store import accounts, users
from daemon.store import settings as st

SECRET = "ui-saved-smtp-secret-42"


def _file_config(config: Config, **smtp: object) -> Config:
    return with_overrides(config, smtp=smtp)


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# -- SMTP ------------------------------------------------------------------------------------


def test_without_ui_values_the_config_file_is_in_force(config, store) -> None:
    cfg = _file_config(config, host="smtp.example.org", port=2525, username="me", password="file-pw",
                       password_file="/run/pw", from_address="cal@example.org")
    smtp = st.effective_smtp(cfg, store)
    assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.from_address) == (
        "smtp.example.org", 2525, "me", "file-pw", "cal@example.org")
    sources = st.smtp_sources(cfg, store)
    assert sources["host"] == sources["port"] == sources["password"] == st.FROM_FILE
    assert sources["security"] == st.FROM_DEFAULT  # starttls = true is the built-in default


def test_the_environment_password_is_named_as_its_source(config, store) -> None:
    cfg = _file_config(config, host="smtp.example.org", password="env-pw")  # no password_file
    assert st.smtp_sources(cfg, store)["password"] == st.FROM_ENV


@pytest.mark.parametrize("starttls,port,expected", [(True, 587, "starttls"), (False, 465, "tls"), (False, 25, "none")])
def test_the_config_files_starttls_flag_maps_to_a_security_choice(config, store, starttls, port, expected) -> None:
    assert st.effective_smtp(_file_config(config, starttls=starttls, port=port), store).security == expected


def test_ui_values_override_and_only_differences_are_stored(config, store) -> None:
    cfg = _file_config(config, host="smtp.example.org", port=587, from_address="cal@example.org")
    st.save_smtp(cfg, store, {"host": "mail.other.org", "port": 587, "security": "starttls", "username": "",
                              "from_address": "cal@example.org"}, password=SECRET)
    smtp = st.effective_smtp(cfg, store)
    assert (smtp.host, smtp.password) == ("mail.other.org", SECRET)
    sources = st.smtp_sources(cfg, store)
    assert sources["host"] == sources["password"] == st.FROM_UI
    assert sources["from_address"] == st.FROM_FILE  # equal to the file's value: not pinned
    # A later edit of the config file still applies to what the UI did not override.
    later = _file_config(cfg, from_address="new@example.org")
    assert st.effective_smtp(later, store).from_address == "new@example.org"


def test_an_empty_password_keeps_the_stored_one_and_clear_removes_it(config, store) -> None:
    cfg = _file_config(config, host="smtp.example.org", password="file-pw", password_file="/run/pw")
    values = {"host": "smtp.example.org", "port": 587, "security": "starttls", "username": "u", "from_address": ""}
    st.save_smtp(cfg, store, values, password=SECRET)
    st.save_smtp(cfg, store, values, password="")
    assert st.effective_smtp(cfg, store).password == SECRET
    st.save_smtp(cfg, store, values, clear_password=True)
    assert st.effective_smtp(cfg, store).password == "file-pw"  # the config file's applies again


def test_reset_forgets_every_ui_value(config, store) -> None:
    cfg = _file_config(config, host="smtp.example.org")
    st.save_smtp(cfg, store, {"host": "other.example.org", "port": 25, "security": "none", "username": "x",
                              "from_address": "a@example.org"}, password=SECRET)
    assert st.smtp_overridden(store)
    st.reset_smtp(store)
    assert not st.smtp_overridden(store)
    assert st.effective_smtp(cfg, store) == st.config_smtp(cfg)


def test_the_saved_password_is_sealed_on_disk(config, store, data_dir) -> None:
    st.save_smtp(config, store, {"host": "smtp.example.org", "port": 587, "security": "starttls",
                                 "username": "u", "from_address": ""}, password=SECRET)
    store.checkpoint()
    assert st.effective_smtp(config, store).password == SECRET
    assert SECRET.encode() not in _all_bytes(data_dir)


@pytest.mark.parametrize("field,value", [("host", "bad host!"), ("port", 0), ("port", 70000),
                                         ("security", "ssl"), ("from_address", "not-an-address"),
                                         ("username", "two\nlines")])
def test_bad_smtp_values_are_refused_with_the_field_named(config, store, field, value) -> None:
    values = {"host": "smtp.example.org", "port": 587, "security": "starttls", "username": "", "from_address": ""}
    values[field] = value
    assert field in st.check_smtp(values)
    with pytest.raises(UsageError):
        st.save_smtp(config, store, values)
    assert not st.smtp_overridden(store)


# -- public URL --------------------------------------------------------------------------------


@pytest.mark.parametrize("given,stored", [
    ("https://cal.example.org", "https://cal.example.org"),
    ("https://Cal.Example.org/", "https://cal.example.org"),
    ("HTTPS://cal.example.org:8443/homecal/", "https://cal.example.org:8443/homecal"),
    ("http://192.168.1.5:8400", "http://192.168.1.5:8400"),
    ("https://[2001:db8::1]/cal", "https://[2001:db8::1]/cal"),
])
def test_good_public_urls_are_normalised(given: str, stored: str) -> None:
    assert st.validate_public_url(given) == stored


@pytest.mark.parametrize("url", [
    "", "cal.example.org", "ftp://cal.example.org", "javascript:alert(1)", "https://",
    "https://user:pw@cal.example.org", "https://evil.example@cal.example.org",
    "https://cal.example.org/?next=x", "https://cal.example.org/#x", "https://cal.example.org/a/../b",
    "https://cal.example.org/%2e%2e/", "https://cal.example.org\\@evil.example", "https://cal.example.org//evil",
    "https://cal example.org", "https://cal.example.org:99999", "https://bad_host!/", "https://cal.example.org/a b",
    "https://cal.example.org/" + "x" * 400,
])
def test_public_urls_with_tricks_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        st.validate_public_url(url)


def test_the_public_url_falls_back_from_ui_to_file_to_default(config, store) -> None:
    assert st.effective_public_url(config, store) == "http://127.0.0.1:8400"
    assert st.configured_public_url(config, store) == ""  # nobody set one
    assert st.public_url_source(config, store) == st.FROM_DEFAULT
    cfg = with_overrides(config, server={"public_url": "https://file.example.org/"})
    assert st.effective_public_url(cfg, store) == "https://file.example.org"
    assert st.public_url_source(cfg, store) == st.FROM_FILE
    st.save_public_url(store, "https://ui.example.org")
    assert st.effective_public_url(cfg, store) == st.configured_public_url(cfg, store) == "https://ui.example.org"
    assert st.public_url_source(cfg, store) == st.FROM_UI
    st.save_public_url(store, "")
    assert st.effective_public_url(cfg, store) == "https://file.example.org"


# -- users: profile ------------------------------------------------------------------------------


def test_email_is_sealed_and_can_be_cleared(store, data_dir) -> None:
    user = users.create(store, "alice", "long enough password")
    users.set_email(store, user.id, " alice.private@example.org ")
    store.checkpoint()
    assert users.email(store, user.id) == "alice.private@example.org"
    assert b"alice.private@example.org" not in _all_bytes(data_dir)
    users.set_email(store, user.id, None)
    assert users.email(store, user.id) is None
    with pytest.raises(UsageError):
        users.set_email(store, user.id, "not an address")


def test_time_zone_is_validated(store) -> None:
    user = users.create(store, "alice", "long enough password")
    users.set_timezone(store, user.id, "Europe/Berlin")
    assert users.get(store, user.id).timezone == "Europe/Berlin"
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "europe/berlin"):
        with pytest.raises(UsageError):
            users.set_timezone(store, user.id, bad)
    assert users.get(store, user.id).timezone == "Europe/Berlin"


def test_working_hours_round_trip_in_weekday_order(store) -> None:
    user = users.create(store, "alice", "long enough password")
    assert users.working_hours(store, user.id) is None
    users.set_working_hours(store, user.id, {"fri": ("10:00", "14:30"), "mon": ["08:00", "16:00"]})
    assert list(users.working_hours(store, user.id).items()) == [("mon", ("08:00", "16:00")),
                                                                 ("fri", ("10:00", "14:30"))]
    users.set_working_hours(store, user.id, {})
    assert users.working_hours(store, user.id) == {}  # saved, every day off


@pytest.mark.parametrize("hours", [{"mon": ("17:00", "09:00")}, {"mon": ("09:00", "09:00")},
                                   {"funday": ("09:00", "17:00")}, {"mon": ("9:00", "17:00")},
                                   {"mon": ("09:00", "24:00")}, {"mon": ("09:00",)}, {"mon": "09:00-17:00"}])
def test_bad_working_hours_are_refused(store, hours) -> None:
    user = users.create(store, "alice", "long enough password")
    with pytest.raises(UsageError):
        users.set_working_hours(store, user.id, hours)
    assert users.working_hours(store, user.id) is None


# -- users: roles and removal ----------------------------------------------------------------------


def test_the_last_admin_cannot_be_demoted_or_removed(store) -> None:
    boss = users.create(store, "boss", "long enough password", is_admin=True)
    with pytest.raises(UsageError, match="only admin"):
        users.set_admin(store, boss.id, False)
    with pytest.raises(UsageError, match="only admin"):
        users.remove(store, boss.id)
    second = users.create(store, "second", "long enough password")
    users.set_admin(store, second.id, True)
    users.set_admin(store, boss.id, False)  # another admin exists now
    assert [u.username for u in users.all_users(store) if u.is_admin] == ["second"]


def test_a_user_who_owns_something_cannot_be_removed(store) -> None:
    users.create(store, "boss", "long enough password", is_admin=True)
    alice = users.create(store, "alice", "long enough password")
    account = accounts.add(store, alice.id, "local", "Home", AccessMode.READ_WRITE, {})
    assert users.owned(store, alice.id) == {"accounts": 1}
    with pytest.raises(UsageError, match="still owns"):
        users.remove(store, alice.id)
    accounts.remove(store, account.id)
    users.remove(store, alice.id)
    assert [u.username for u in users.all_users(store)] == ["boss"]


def test_a_removed_users_id_is_never_given_again(store) -> None:
    users.create(store, "boss", "long enough password", is_admin=True)
    gone = users.create(store, "gone", "long enough password")
    users.remove(store, gone.id)
    newcomer = users.create(store, "newcomer", "long enough password")
    assert newcomer.id > gone.id
