"""Linking Microsoft accounts against the fake sign-in service and the fake Graph API, with msal
doing the protocol work: linking_microsoft (list and read /me first, then store; a refreshed
token is kept; a listing that fails keeps nothing), no-access (nothing asked of Microsoft),
re-linking (the same person only, healthy afterwards), and `homecal account add microsoft` /
`account relink` with the device code: in process with the fake approving the printed code,
a timeout, and Ctrl-C on a real process, which all leave nothing behind."""

from __future__ import annotations

import contextlib
import io
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon import linking, linking_microsoft
from daemon.cli import main
from daemon.config import Config, load_config
from daemon.errors import AuthError, ProviderError, UsageError
from daemon.models import AccessMode
from daemon.providers import make_provider
from daemon.store import accounts, open_store, users
from daemon.store.db import Store
from tests.fakes.graph_api import graph_fake  # noqa: F401  (until tests/conftest.py imports it)
from tests.fakes.ms_directory import ms_directory  # noqa: F401
from tests.fakes.ms_login import ms_login  # noqa: F401
from tests.linking_helpers import homecal_process, initialised_config
from tests.ms_helpers import AUTHORITY, CLIENT_ID, microsoft_config, ms_secret

ANN = "ann@contoso.com"
BOB = "bob@contoso.com"
CODE_LINE = re.compile(r"https://microsoft\.com/devicelogin and enter the code (\w+) ")
RW, FB, NA = AccessMode.READ_WRITE, AccessMode.FREE_BUSY, AccessMode.NO_ACCESS


@pytest.fixture
def mconfig(config: Config, graph_fake, ms_login) -> Config:  # noqa: F811
    return microsoft_config(graph_fake, ms_login, config)


@pytest.fixture
def owner(store: Store) -> users.User:
    return users.create(store, "admin", "correct horse battery", is_admin=True)


@pytest.fixture
def ann(graph_fake):  # noqa: F811
    """ann at Contoso with her default calendar and one she may only read."""
    graph_fake.directory.add_user(ANN)
    graph_fake.mailbox(ANN)
    graph_fake.add_calendar(ANN, "Team holidays", can_edit=False)
    return graph_fake


def _bob(graph_fake) -> None:  # noqa: F811
    graph_fake.directory.add_user(BOB)
    graph_fake.mailbox(BOB)


# ------------------------------------------------------------------------------ linking_microsoft


def test_link_lists_the_calendars_reads_the_address_and_stores_both(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    secret = ms_secret(mconfig, ms_login, ANN, RW)
    assert secret["email"] == ""  # the sign-in does not know the mailbox: linking asks Graph
    account, cals = linking.link(store, mconfig, owner.id, "microsoft", "Work", RW, secret)  # the shared entry
    assert (account.kind, account.name, account.mode, account.status) == ("microsoft", "Work", RW, "ok")
    assert sorted((c.name, c.writable) for c in cals) == [("Calendar", True), ("Team holidays", False)]
    stored = accounts.secret(store, account.id)
    assert stored["email"] == ANN and stored["name"] and stored["home_account_id"] == secret["home_account_id"]
    # the stored sign-in works through the daemon's own path
    provider = make_provider(store, mconfig, account, ZoneInfo("UTC"))
    try:
        assert len(provider.list_calendars()) == 2
    finally:
        provider.close()


def test_a_token_refreshed_while_linking_is_kept(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    secret = ms_secret(mconfig, ms_login, ANN, FB)
    ann.directory.expire_access_tokens()  # Graph answers 401; msal redeems the refresh token
    before = len(ms_login.token_requests("refresh_token"))
    account, _cals = linking_microsoft.link_microsoft(store, mconfig, owner.id, "Busy", FB, secret)
    assert len(ms_login.token_requests("refresh_token")) == before + 1
    stored = accounts.secret(store, account.id)
    assert stored["token_cache"] != secret["token_cache"] and stored["email"] == ANN
    # the kept cache holds the new tokens: the next use needs no refresh (the old refresh
    # token was rotated away and would be refused)
    provider = make_provider(store, mconfig, account, ZoneInfo("UTC"))
    try:
        provider.list_calendars()
    finally:
        provider.close()
    assert len(ms_login.token_requests("refresh_token")) == before + 1


def test_a_listing_that_fails_keeps_nothing_and_is_explained(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    secret = ms_secret(mconfig, ms_login, ANN, RW)
    ann.fail_next(status=403, code="ErrorAccessDenied", path_contains="/me/calendars")
    with pytest.raises(ProviderError) as refused:
        linking_microsoft.link_microsoft(store, mconfig, owner.id, "Work", RW, secret)
    assert accounts.all_accounts(store) == []
    said = linking.explain(refused.value, "microsoft")
    assert said.startswith("Microsoft Graph answered 403") and said.endswith(".")

    ann.directory.revoke(ANN)  # a password change: every token of ann's is dead
    with pytest.raises(AuthError) as dead:
        linking_microsoft.link_microsoft(store, mconfig, owner.id, "Work", RW, secret)
    assert accounts.all_accounts(store) == []
    said = linking.explain(dead.value, "microsoft")
    assert "link" in said.lower() and secret["token_cache"][:20] not in said


def test_no_access_asks_microsoft_nothing(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    account, [cal] = linking.link(store, mconfig, owner.id, "microsoft", "Private", NA,
                                  linking_microsoft.no_access_secret(f"  {ANN} "))
    assert (cal.remote_id, cal.name, cal.writable) == ("calendar", ANN, False)
    assert accounts.secret(store, account.id) == {"email": ANN}
    assert linking.refresh(store, mconfig, account) == [cal]  # refreshing asks nothing either
    assert ms_login.requests == [] and ann.requests == []
    with pytest.raises(UsageError, match="address"):
        linking_microsoft.no_access_secret("not an address")


def test_a_taken_name_is_refused_before_microsoft_is_asked(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    secret = ms_secret(mconfig, ms_login, ANN, RW)
    linking.link(store, mconfig, owner.id, "local", "Work", RW, {})
    seen = len(ann.requests)
    with pytest.raises(UsageError, match="already exists"):
        linking_microsoft.link_microsoft(store, mconfig, owner.id, "Work", RW, secret)
    assert len(ann.requests) == seen


# ------------------------------------------------------------------------------ re-linking


def _linked(store, mconfig, owner, ms_login, mode=RW):  # noqa: F811
    account, _ = linking_microsoft.link_microsoft(store, mconfig, owner.id, "Work", mode,
                                                  ms_secret(mconfig, ms_login, ANN, mode))
    accounts.record_failure(store, account.id, "Microsoft refused homecal's sign-in", status="needs-relink")
    return account


def test_relink_as_the_same_person_replaces_the_sign_in_and_makes_the_account_healthy(
        store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    account = _linked(store, mconfig, owner, ms_login)
    before = accounts.secret(store, account.id)
    cal_ids = sorted(c.id for c in accounts.calendars(store, account.id))
    ann.add_calendar(ANN, "New since")
    cals = linking_microsoft.relink_microsoft(store, mconfig, account, ms_secret(mconfig, ms_login, ANN, RW))
    again = accounts.get(store, account.id)
    assert again.status == "ok" and again.failures == 0 and again.last_error is None
    after = accounts.secret(store, account.id)
    assert after["token_cache"] != before["token_cache"] and after["home_account_id"] == before["home_account_id"]
    assert set(cal_ids) < {c.id for c in cals} and "New since" in {c.name for c in cals}


def test_relink_as_another_person_is_refused_before_their_mailbox_is_read(store, mconfig, owner, ann,
                                                                          ms_login) -> None:  # noqa: F811
    account = _linked(store, mconfig, owner, ms_login)
    before = accounts.secret(store, account.id)
    _bob(ann)
    bobs = ms_secret(mconfig, ms_login, BOB, RW)
    seen = len(ann.requests)
    with pytest.raises(UsageError) as refused:
        linking_microsoft.relink_microsoft(store, mconfig, account, bobs)
    message = str(refused.value)
    assert BOB in message and ANN in message and "new account" in message
    assert len(ann.requests) == seen  # bob's calendars were never listed
    assert accounts.secret(store, account.id) == before and accounts.get(store, account.id).status == "needs-relink"


def test_without_the_home_account_id_the_address_decides(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    account = _linked(store, mconfig, owner, ms_login)
    old = accounts.secret(store, account.id)
    accounts.set_secret(store, account.id, {k: v for k, v in old.items() if k != "home_account_id"})
    _bob(ann)
    with pytest.raises(UsageError, match=re.escape(BOB)):
        linking_microsoft.relink_microsoft(store, mconfig, account, ms_secret(mconfig, ms_login, BOB, RW))
    linking_microsoft.relink_microsoft(store, mconfig, account, ms_secret(mconfig, ms_login, ANN, RW))
    assert accounts.get(store, account.id).status == "ok"


def test_what_cannot_be_relinked_through_microsoft(store, mconfig, owner, ann, ms_login) -> None:  # noqa: F811
    private, _ = linking.link(store, mconfig, owner.id, "microsoft", "Private", NA, {"email": ANN})
    with pytest.raises(UsageError, match="no sign-in to renew"):
        linking_microsoft.relink_microsoft(store, mconfig, private, {"email": ANN})
    local, _ = linking.link(store, mconfig, owner.id, "local", "Home", RW, {})
    with pytest.raises(UsageError, match="not re-linked through Microsoft"):
        linking_microsoft.relink_microsoft(store, mconfig, local, {})


# ------------------------------------------------------------------------------ the command line


@pytest.fixture
def cfg(tmp_path: Path, data_dir: Path, graph_fake, ms_login) -> str:  # noqa: F811
    """A config file pointing at the fakes, and a store with an admin, as `homecal init` leaves it."""
    return initialised_config(tmp_path, data_dir,
                              f'[microsoft]\nclient_id = "{CLIENT_ID}"\nauthority = "{AUTHORITY}"\n'
                              f'login_endpoint = "{ms_login.endpoint}"\ngraph_endpoint = "{graph_fake.endpoint}"\n')


class _Terminal(io.StringIO):
    """stdout that another thread may read while homecal writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


@contextlib.contextmanager
def homecal_waiting(*args: str) -> Iterator[tuple[_Terminal, dict]]:
    """`homecal ARGS` in a thread of this process; yields its output so far and, at the end, its exit code."""
    out, err, result = _Terminal(), _Terminal(), {}

    def run() -> None:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result["code"] = main(list(args))
        result["err"] = err.getvalue()

    thread = threading.Thread(target=run, name="homecal-cli", daemon=True)
    thread.start()
    try:
        yield out, result
    finally:
        thread.join(timeout=30)
        assert not thread.is_alive(), "homecal kept waiting"


def printed_code(out: _Terminal, result: dict) -> str:
    """The code homecal printed, as the user reads it off the terminal."""
    for _ in range(2000):
        found = CODE_LINE.search(out.text())
        if found or "code" in result:
            break
        threading.Event().wait(0.005)
    assert found, f"no code printed: {out.text()} {result}"
    return found.group(1)


def _stored(cfg: str) -> list[accounts.Account]:
    store = open_store(load_config(cfg))
    try:
        return accounts.all_accounts(store)
    finally:
        store.close()


def test_account_add_microsoft_prints_the_device_code_and_links_once_it_is_entered(cfg, ann, ms_login) -> None:  # noqa: F811
    with homecal_waiting("--config", cfg, "account", "add", "microsoft", "--name", "work") as (out, result):
        code = printed_code(out, result)
        assert "Waiting for Microsoft" in out.text() and "Calendars.ReadWrite" in out.text()
        ms_login.approve_device(code, ANN)  # ann enters the code on her phone and allows access
    printed = out.text()
    assert result["code"] == 0, result["err"]
    assert "To sign in, use a web browser to open the page https://microsoft.com/devicelogin" in printed
    assert f"Microsoft linked {ANN}." in printed and "added microsoft account work" in printed
    assert "2 calendar(s)" in printed and "Team holidays  (read-only)" in printed
    assert "token" not in printed.lower().replace("tokens", "")
    [account] = _stored(cfg)
    assert (account.kind, account.mode, account.status) == ("microsoft", RW, "ok")


def test_account_relink_renews_a_microsoft_account_with_the_device_code(cfg, ann, ms_login) -> None:  # noqa: F811
    with homecal_waiting("--config", cfg, "account", "add", "microsoft", "--name", "work",
                         "--mode", "free-busy") as (out, result):
        ms_login.approve_device(printed_code(out, result), ANN)
    assert result["code"] == 0, result["err"]
    with homecal_waiting("--config", cfg, "account", "relink", "work") as (out, result):
        code = printed_code(out, result)
        assert "Calendars.ReadBasic" in out.text() and "Calendars.ReadWrite" not in out.text()
        ms_login.approve_device(code, ANN)
    assert result["code"] == 0, result["err"]
    assert "Microsoft account work re-linked; 2 calendar(s), rules and copies kept." in out.text()
    _bob(ann)
    with homecal_waiting("--config", cfg, "account", "relink", "work") as (out, result):
        ms_login.approve_device(printed_code(out, result), BOB)
    assert result["code"] == 2 and BOB in result["err"] and ANN in result["err"] and "Traceback" not in result["err"]


def test_a_timeout_leaves_nothing_behind(cfg, ann, ms_login) -> None:  # noqa: F811
    with homecal_waiting("--config", cfg, "account", "add", "microsoft", "--name", "work",
                         "--timeout", "0.5") as (out, result):
        printed_code(out, result)  # nobody enters it
    assert result["code"] == 2 and "nobody entered the code in time" in result["err"]
    assert "Traceback" not in result["err"] and _stored(cfg) == []


def test_a_declined_sign_in_leaves_nothing_behind(cfg, ann, ms_login) -> None:  # noqa: F811
    with homecal_waiting("--config", cfg, "account", "add", "microsoft", "--name", "work") as (out, result):
        ms_login.deny_device(printed_code(out, result))
    assert result["code"] != 0 and "declined" in result["err"] and _stored(cfg) == []


def test_no_access_from_the_command_line_asks_nothing(cfg, ann, ms_login, capsys) -> None:  # noqa: F811
    assert main(["--config", cfg, "account", "add", "microsoft", "--name", "private", "--mode", "no-access",
                 "--email", ANN]) == 0
    assert "added microsoft account private" in capsys.readouterr().out
    assert ms_login.requests == [] and ann.requests == []


def test_ctrl_c_while_waiting_leaves_nothing_behind(cfg, ann, ms_login) -> None:  # noqa: F811
    args = ["account", "add", "microsoft", "--name", "work"]
    with homecal_process(cfg, args, "Waiting for Microsoft") as (proc, printed):
        assert CODE_LINE.search(printed)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert _stored(cfg) == []
