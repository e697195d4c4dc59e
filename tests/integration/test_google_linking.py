"""Linking Google accounts end to end against the fake Google API: `homecal account add google`
as a real process on a "headless server" (the printed URL opened elsewhere, the redirect
coming back to the loopback receiver), the no-access path that asks Google nothing, the
timeout, and re-linking, which replaces the tokens of the same account and makes it healthy."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from daemon import access, linking, oauth_google
from daemon.cli import main
from daemon.config import Config, load_config
from daemon.errors import AuthError, ProviderError, UsageError
from daemon.models import AccessMode
from daemon.providers import make_provider
from daemon.store import accounts, open_store, users
from daemon.store.db import Store
from tests.conftest import free_port
from tests.fakes.google_api import GoogleFake
from tests.google_helpers import google_config
from tests.linking_helpers import homecal_process, initialised_config

ANN = "ann@example.com"
G = "https://www.googleapis.com/auth/"
URL_LINE = re.compile(r"^\s+(http://127\.0\.0\.1:\d+/o/oauth2/auth\?\S+)$", re.M)


@pytest.fixture(autouse=True)
def _restore_oauthlib_env(monkeypatch):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake() as running:
        running.add_user(ANN)
        running.add_calendar(ANN, summary="Work", access_role="owner")
        running.add_calendar(ANN, summary="Holidays", access_role="reader")
        running.login_as = ANN
        yield running


@pytest.fixture
def cfg(tmp_path: Path, data_dir: Path, fake: GoogleFake) -> str:
    """A config file pointing at the fake, and a store with an admin, as `homecal init` leaves it."""
    secret_file = tmp_path / "google-secret"
    secret_file.write_text(fake.client_secret + "\n")
    return initialised_config(tmp_path, data_dir,
                              f'[google]\nclient_id = "{fake.client_id}"\nclient_secret_file = "{secret_file}"\n'
                              f'api_endpoint = "{fake.url}"\nauth_uri = "{fake.auth_uri}"\n'
                              f'token_uri = "{fake.token_uri}"\n')


def _open(cfg: str) -> tuple[Config, Store]:
    config = load_config(cfg)
    return config, open_store(config)


def browser_at_google(url: str) -> str:
    """The laptop's browser: open the consent URL; Google answers with a redirect. Returns it."""
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    return answer.headers["Location"]


def headless(cfg: str, *args: str) -> contextlib.AbstractContextManager[tuple[subprocess.Popen, str]]:
    """`homecal ARGS` as its own process, read up to "Waiting for Google..."; killed if still running."""
    return homecal_process(cfg, list(args), "Waiting for Google")


# ------------------------------------------------------------------------------ headless CLI


def test_headless_linking_prints_the_tunnel_and_url_then_stores_the_account(cfg, fake) -> None:
    port = free_port()
    with headless(cfg, "account", "add", "google", "--name", "work", "--port", str(port),
                  "--timeout", "60") as (proc, printed):
        assert re.search(rf"^\s+ssh -L {port}:127\.0\.0\.1:{port} \S+@\S+$", printed, re.M), printed
        assert "View and edit events on all your calendars" in printed
        [url] = URL_LINE.findall(printed)
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert q["redirect_uri"] == f"http://127.0.0.1:{port}/"
        assert q["scope"].split(" ") == list(access.scopes("google", AccessMode.READ_WRITE))
        assert q["code_challenge_method"] == "S256" and q["access_type"] == "offline" and q["prompt"] == "consent"

        back = browser_at_google(url)
        assert back.startswith(f"http://127.0.0.1:{port}/?")
        # a forged answer first: refused, and the receiver keeps waiting for the real one
        forged = requests.get(f"http://127.0.0.1:{port}/?code=4/forged&state=nope", timeout=10)
        assert forged.status_code == 400
        page = requests.get(back, timeout=10)  # through the tunnel, to the receiver
        assert page.status_code == 200 and "close this tab" in page.text
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"Google linked {ANN}." in out and "added google account work" in out and "3 calendar(s)" in out
    # nothing secret on the terminal
    assert "code=" not in out + err and fake.client_secret not in out + err

    config, store = _open(cfg)
    try:
        [account] = accounts.all_accounts(store)
        assert (account.kind, account.name, account.mode, account.status) == ("google", "work",
                                                                             AccessMode.READ_WRITE, "ok")
        assert sorted(c.name for c in accounts.calendars(store, account.id)) == sorted([ANN, "Holidays", "Work"])
        secret = accounts.secret(store, account.id)
        assert secret["email"] == ANN and secret["refresh_token"] and secret["client_secret"] == ""
        # the stored tokens work through the daemon's own path
        provider = make_provider(store, config, account, ZoneInfo("UTC"))
        try:
            assert len(provider.list_calendars()) == 3
        finally:
            provider.close()
    finally:
        store.close()


def test_headless_no_access_asks_google_nothing(cfg, fake, capsys) -> None:
    fake.reset_counts()
    assert main(["--config", cfg, "account", "add", "google", "--name", "quiet", "--mode", "no-access"]) == 2
    assert "needs --email" in capsys.readouterr().err
    assert main(["--config", cfg, "account", "add", "google", "--name", "quiet", "--mode", "no-access",
                 "--email", ANN]) == 0
    assert "added google account quiet" in capsys.readouterr().out
    assert fake.http_requests == 0
    _, store = _open(cfg)
    try:
        [account] = accounts.all_accounts(store)
        [cal] = accounts.calendars(store, account.id)
        assert (account.mode, cal.remote_id, cal.name, cal.writable) == (AccessMode.NO_ACCESS, "primary", ANN, False)
        # refreshing its calendars asks Google nothing either
        assert linking.refresh(store, load_config(cfg), account) == [cal]
    finally:
        store.close()
    assert fake.http_requests == 0


def test_headless_linking_gives_up_after_its_timeout_and_keeps_nothing(cfg, fake, capsys) -> None:
    code = main(["--config", cfg, "account", "add", "google", "--name", "late", "--port", "0", "--timeout", "0.2"])
    captured = capsys.readouterr()
    assert code == 1 and "no answer from Google within 0.2 seconds" in captured.err
    assert "ssh -L " in captured.out
    _, store = _open(cfg)
    try:
        assert accounts.all_accounts(store) == []
    finally:
        store.close()


def test_headless_linking_without_a_client_says_where_to_put_one(tmp_path, data_dir, capsys) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(f'[storage]\ndata_dir = "{data_dir}"\n')
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    assert main(["--config", str(path), "init", "--admin-user", "admin", "--admin-password-file", str(pw)]) == 0
    capsys.readouterr()
    assert main(["--config", str(path), "account", "add", "google", "--name", "g"]) == 2
    err = capsys.readouterr().err
    assert "Settings > Google" in err and "[google] client_id" in err and "Traceback" not in err


def test_a_declined_consent_on_the_command_line_keeps_nothing(cfg, fake, capsys) -> None:
    fake.deny_next = True
    port = free_port()
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("code", main(
        ["--config", cfg, "account", "add", "google", "--name", "no", "--port", str(port), "--timeout", "30"])))
    worker.start()
    try:
        url = _printed_url(capsys, worker)
        page = requests.get(browser_at_google(url), timeout=10)
        assert "You declined access" in page.text
    finally:
        worker.join(30)
    assert result["code"] == 2 and "declined" in capsys.readouterr().err
    _, store = _open(cfg)
    try:
        assert accounts.all_accounts(store) == []
    finally:
        store.close()


def _printed_url(capsys, worker: threading.Thread) -> str:
    """The consent URL `main` printed in another thread (capsys collects across threads)."""
    import time

    seen = ""
    for _ in range(500):
        seen += capsys.readouterr().out
        found = URL_LINE.findall(seen)
        if found:
            return found[0]
        assert worker.is_alive(), seen
        time.sleep(0.02)
    raise AssertionError(f"no URL printed: {seen}")


# ------------------------------------------------------------------------------ re-link


def _consent(config: Config, store: Store, mode: AccessMode) -> dict:
    """One pass through the consent screen of the fake, as a browser would; returns the secret."""
    url, pending = oauth_google.start(config, store, mode, "http://127.0.0.1:9/", client_type="installed")
    return oauth_google.finish(pending, browser_at_google(url))


@pytest.fixture
def linked(config: Config, store: Store, fake: GoogleFake):
    gconfig = google_config(config, fake)
    admin = users.create(store, "admin", "correct horse battery", is_admin=True)
    account, cals = linking.link_google(store, gconfig, admin.id, "Work", AccessMode.READ_WRITE,
                                        _consent(gconfig, store, AccessMode.READ_WRITE))
    return gconfig, account, cals


def test_relink_replaces_the_tokens_and_clears_needs_relink(store, fake, linked) -> None:
    gconfig, account, cals = linked
    before = accounts.secret(store, account.id)
    fake.revoke(ANN)  # e.g. the user removed homecal's access in their Google account
    with pytest.raises(AuthError):
        linking.refresh(store, gconfig, account)
    assert accounts.get(store, account.id).status == "needs-relink"

    fake.add_calendar(ANN, summary="New since", access_role="owner")
    cals_after = linking.relink_google(store, gconfig, account, _consent(gconfig, store, AccessMode.READ_WRITE))
    after = accounts.secret(store, account.id)
    assert after["token"] != before["token"] and after["refresh_token"] != before["refresh_token"]
    assert after["email"] == ANN and after["linked_at"] >= before["linked_at"]
    fresh = accounts.get(store, account.id)
    assert (fresh.status, fresh.last_error, fresh.failures) == ("ok", None, 0)
    # same calendar rows (rules point at them), plus the new one
    assert [c.id for c in cals_after][:len(cals)] == [c.id for c in cals]
    assert "New since" in {c.name for c in cals_after}
    assert len(linking.refresh(store, gconfig, fresh)) == 4


def test_relink_as_another_google_account_is_refused_and_changes_nothing(store, fake, linked) -> None:
    gconfig, account, _ = linked
    before = accounts.secret(store, account.id)
    fake.add_user("bob@example.com")
    fake.login_as = "bob@example.com"
    with pytest.raises(UsageError, match="you signed in to Google as bob@example.com"):
        linking.relink_google(store, gconfig, account, _consent(gconfig, store, AccessMode.READ_WRITE))
    assert accounts.secret(store, account.id) == before


def test_a_failing_calendar_list_keeps_nothing(config, store, fake) -> None:
    gconfig = google_config(config, fake)
    admin = users.create(store, "admin", "correct horse battery", is_admin=True)
    secret = _consent(gconfig, store, AccessMode.FREE_BUSY)
    fake.fail_next(401, "authError", count=20, path_contains="calendarList")
    with pytest.raises(ProviderError):
        linking.link_google(store, gconfig, admin.id, "Busy", AccessMode.FREE_BUSY, secret)
    assert accounts.all_accounts(store) == [] and accounts.calendars(store) == []


def test_a_used_or_foreign_code_is_refused_in_plain_words(config, store, fake) -> None:
    gconfig = google_config(config, fake)
    url, pending = oauth_google.start(gconfig, store, AccessMode.READ_WRITE, "http://127.0.0.1:9/")
    back = browser_at_google(url)
    oauth_google.finish(pending, back)
    with pytest.raises(oauth_google.OAuthFailed) as err:
        oauth_google.finish(pending, back)  # Google's codes are single use
    code = parse_qs(urlsplit(back).query)["code"][0]
    assert "expired or was used already" in str(err.value) and code not in str(err.value)
    # a flow with the wrong client secret: Google refuses the client, the message says where to look
    bad = google_config(config, fake, client_secret="wrong")
    url, pending = oauth_google.start(bad, store, AccessMode.READ_WRITE, "http://127.0.0.1:9/")
    with pytest.raises(oauth_google.OAuthFailed, match="client id and secret") as err:
        oauth_google.finish(pending, browser_at_google(url))
    assert "wrong" not in str(err.value)


def test_headless_relink_renews_the_permission_and_keeps_the_account(cfg, fake) -> None:
    from tests.google_helpers import link_google

    config, store = _open(cfg)
    try:
        admin = users.all_users(store)[0]
        account = link_google(store, config, fake, admin.id, ANN, name="work")
        old = accounts.secret(store, account.id)
        cal_ids = [c.id for c in accounts.calendars(store, account.id)]
        fake.revoke(ANN)
        accounts.record_failure(store, account.id, "refused", status="needs-relink")
    finally:
        store.close()
    port = free_port()
    with headless(cfg, "account", "relink", "work", "--port", str(port), "--timeout", "60") as (proc, printed):
        assert "Re-linking the Google account 'work'" in printed and f"ssh -L {port}:127.0.0.1:{port}" in printed
        [url] = URL_LINE.findall(printed)
        assert requests.get(browser_at_google(url), timeout=10).status_code == 200
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "re-linked" in out and "rules and copies kept" in out
    config, store = _open(cfg)
    try:
        account = accounts.get(store, account.id)
        new = accounts.secret(store, account.id)
        assert account.status == "ok" and new["refresh_token"] != old["refresh_token"]
        assert [c.id for c in accounts.calendars(store, account.id)] == cal_ids
    finally:
        store.close()


def test_relink_of_a_caldav_account_points_to_the_web_ui(cfg, capsys) -> None:
    assert main(["--config", cfg, "account", "add", "local", "--name", "home"]) == 0
    assert main(["--config", cfg, "account", "relink", "home"]) == 2
    assert "re-link it in the web UI" in capsys.readouterr().err
