"""daemon.oauth_google and daemon.oauth_loopback without Google: the authorization URL (scopes
per mode, PKCE S256, state, offline access, forced consent), which client is used, the checks
on Google's answer (state, declined, granted scopes, refresh token), the secret's shape, and
the loopback receiver that waits for the redirect."""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from daemon import access, oauth_google
from daemon.config import Config, with_overrides
from daemon.errors import UsageError
from daemon.models import AccessMode
from daemon.oauth_loopback import LoopbackReceiver, LoopbackTimeout
from daemon.store import settings as st

G = "https://www.googleapis.com/auth/"
RW, FB, NA = AccessMode.READ_WRITE, AccessMode.FREE_BUSY, AccessMode.NO_ACCESS
CLIENT_ID = "1234-abc.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-file-secret-9f8e7d"
REDIRECT = "https://cal.example.org/accounts/google/callback"


@pytest.fixture(autouse=True)
def _restore_oauthlib_env(monkeypatch):
    """oauth_google allows plain http to a loopback endpoint through oauthlib's switch; undo it after."""
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)


@pytest.fixture
def gconfig(config: Config) -> Config:
    return with_overrides(config, google={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_each_mode_requests_exactly_the_scopes_of_the_issue() -> None:
    assert access.scopes("google", RW) == (f"{G}calendar.events", f"{G}calendar.calendarlist.readonly",
                                           "openid", "email")
    assert access.scopes("google", FB) == (f"{G}calendar.events.freebusy", f"{G}calendar.calendarlist.readonly")
    assert access.scopes("google", NA) == ()
    assert "google" in access.LINKABLE and "google" not in access.COMING


@pytest.mark.parametrize("mode", [RW, FB])
def test_the_authorization_url_carries_pkce_state_offline_consent_and_the_exact_scopes(gconfig, store, mode) -> None:
    url, pending = oauth_google.start(gconfig, store, mode, REDIRECT)
    assert url.startswith("https://accounts.google.com/o/oauth2/auth?")
    q = query(url)
    assert q["scope"].split(" ") == list(access.scopes("google", mode))
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID and q["redirect_uri"] == REDIRECT
    assert q["access_type"] == "offline" and q["prompt"] == "consent" and q["include_granted_scopes"] == "false"
    assert q["state"] == pending.state and len(pending.state) >= 32
    assert q["code_challenge_method"] == "S256"
    digest = hashlib.sha256(pending.code_verifier.encode()).digest()
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert 43 <= len(pending.code_verifier) <= 128
    # the verifier and the client secret never leave the server
    assert pending.code_verifier not in url and CLIENT_SECRET not in url
    assert CLIENT_SECRET not in repr(pending) and pending.code_verifier not in repr(pending)


def test_every_flow_gets_its_own_state_and_verifier(gconfig, store) -> None:
    _, first = oauth_google.start(gconfig, store, RW, REDIRECT)
    _, second = oauth_google.start(gconfig, store, RW, REDIRECT)
    assert first.state != second.state and first.code_verifier != second.code_verifier


def test_the_configured_endpoints_are_used(gconfig, store) -> None:
    cfg = with_overrides(gconfig, google={"auth_uri": "http://127.0.0.1:9/o/oauth2/auth",
                                          "token_uri": "http://127.0.0.1:9/token"})
    url, pending = oauth_google.start(cfg, store, FB, REDIRECT)
    assert url.startswith("http://127.0.0.1:9/o/oauth2/auth?") and pending.token_uri == "http://127.0.0.1:9/token"
    # plain http elsewhere than on loopback would send the code in clear text
    cfg = with_overrides(gconfig, google={"token_uri": "http://tokens.example.org/token"})
    with pytest.raises(UsageError, match="token_uri must be an https"):
        oauth_google.start(cfg, store, RW, REDIRECT)


def test_no_access_never_goes_to_google(gconfig, store) -> None:
    with pytest.raises(UsageError, match="without signing in"):
        oauth_google.start(gconfig, store, NA, REDIRECT)
    secret = oauth_google.no_access_secret(" ann@example.com ")
    assert secret["email"] == "ann@example.com" and secret["token"] == secret["refresh_token"] == ""
    assert secret["scopes"] == []
    with pytest.raises(UsageError, match="address"):
        oauth_google.no_access_secret("ann")


def test_without_a_client_the_error_says_where_to_put_one(config, store) -> None:
    with pytest.raises(UsageError) as err:
        oauth_google.start(config, store, RW, REDIRECT)
    assert "Settings > Google" in str(err.value) and "[google] client_id" in str(err.value)
    # an id without its secret is no client either
    with pytest.raises(UsageError, match="client secret"):
        oauth_google.start(with_overrides(config, google={"client_id": CLIENT_ID}), store, RW, REDIRECT)


def test_a_client_saved_in_the_ui_wins_and_its_secret_stays_sealed(gconfig, store, data_dir) -> None:
    ui_secret = "GOCSPX-ui-secret-1a2b3c4d"
    st.save_google_client(store, "ui-client.apps.googleusercontent.com", ui_secret)
    client = st.effective_google_client(gconfig, store)
    assert (client.client_id, client.client_secret, client.source) == (
        "ui-client.apps.googleusercontent.com", ui_secret, st.FROM_UI)
    assert ui_secret not in repr(client)
    url, pending = oauth_google.start(gconfig, store, RW, REDIRECT)
    assert query(url)["client_id"] == "ui-client.apps.googleusercontent.com"
    assert pending.client_secret == ui_secret
    assert ui_secret.encode() not in b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    # the same client may be saved again without retyping its secret; a new client needs its own
    st.save_google_client(store, "ui-client.apps.googleusercontent.com", None)
    assert st.effective_google_client(gconfig, store).client_secret == ui_secret
    with pytest.raises(UsageError, match="client secret"):
        st.save_google_client(store, "other.apps.googleusercontent.com", "")
    with pytest.raises(UsageError):
        st.save_google_client(store, "has spaces", "x")
    st.reset_google_client(store)
    assert st.effective_google_client(gconfig, store) == st.GoogleClient(CLIENT_ID, CLIENT_SECRET, st.FROM_FILE)
    assert not st.effective_google_client(gconfig, store).client_secret == ui_secret


# -- Google's answer ---------------------------------------------------------------------------


@pytest.fixture
def pending(gconfig, store) -> oauth_google.PendingAuth:
    return oauth_google.start(gconfig, store, RW, REDIRECT)[1]


def _token(scope: str | None, refresh: str | None = "1//refresh-abc") -> dict:
    token = {"access_token": "ya29.access-xyz", "token_type": "Bearer", "expires_in": 3599,
             "expires_at": datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()}
    if scope is not None:
        token["scope"] = scope
    if refresh:
        token["refresh_token"] = refresh
    return token


def test_a_redirect_with_another_state_is_refused_before_any_exchange(pending, monkeypatch) -> None:
    monkeypatch.setattr(oauth_google, "_exchange", lambda *a: pytest.fail("exchanged a foreign code"))
    with pytest.raises(oauth_google.StateMismatch):
        oauth_google.finish(pending, f"{REDIRECT}?code=4/abc&state=forged")
    with pytest.raises(oauth_google.StateMismatch):
        oauth_google.finish(pending, {"code": "4/abc"})


def test_declining_on_the_consent_screen_is_said_plainly(pending) -> None:
    with pytest.raises(oauth_google.LinkDeclined, match="declined"):
        oauth_google.finish(pending, f"{REDIRECT}?error=access_denied&state={pending.state}")


def test_the_secret_holds_tokens_granted_scopes_client_and_times(pending, monkeypatch) -> None:
    granted = f"{G}calendar.events {G}calendar.calendarlist.readonly openid {G}userinfo.email"
    seen = {}
    monkeypatch.setattr(oauth_google, "_exchange", lambda p, code: seen.setdefault("code", code) and _token(granted))
    moment = datetime(2026, 11, 21, 9, 0, 30, tzinfo=UTC)
    secret = oauth_google.finish(pending, {"code": "4/the-code", "state": pending.state}, now=moment)
    assert seen["code"] == "4/the-code"
    assert secret == {
        "email": "", "token": "ya29.access-xyz", "refresh_token": "1//refresh-abc",
        "expiry": "2026-11-21T10:00:00Z", "scopes": granted.split(), "client_id": CLIENT_ID,
        # the config file's secret stays in the file
        "client_secret": "", "linked_at": "2026-11-21T09:00:30Z", "refreshed_at": "2026-11-21T09:00:30Z"}


def test_a_unticked_box_fails_the_link_naming_what_is_missing(pending, monkeypatch) -> None:
    granted = f"{G}calendar.calendarlist.readonly openid {G}userinfo.email"
    monkeypatch.setattr(oauth_google, "_exchange", lambda p, code: _token(granted))
    with pytest.raises(oauth_google.MissingScopes) as err:
        oauth_google.finish(pending, {"code": "4/c", "state": pending.state})
    message = str(err.value)
    assert message.startswith("Google granted only calendar.calendarlist.readonly, openid, userinfo.email")
    assert "'View and edit events on all your calendars'" in message and "link again" in message
    assert "ya29" not in message and "1//" not in message


def test_free_busy_needs_both_of_its_scopes() -> None:
    oauth_google.check_scopes(access.scopes("google", FB), [f"{G}calendar.events.freebusy",
                                                            f"{G}calendar.calendarlist.readonly"])
    with pytest.raises(oauth_google.MissingScopes, match="See the list of Google calendars"):
        oauth_google.check_scopes(access.scopes("google", FB), [f"{G}calendar.events.freebusy"])
    with pytest.raises(oauth_google.MissingScopes, match="granted only nothing"):
        oauth_google.check_scopes(access.scopes("google", FB), [])


def test_no_scope_in_the_answer_means_as_requested_but_no_refresh_token_is_an_error(pending, monkeypatch) -> None:
    monkeypatch.setattr(oauth_google, "_exchange", lambda p, code: _token(None))
    assert oauth_google.finish(pending, "4/bare-code")["scopes"] == list(access.scopes("google", RW))
    monkeypatch.setattr(oauth_google, "_exchange", lambda p, code: _token(None, refresh=None))
    with pytest.raises(oauth_google.OAuthFailed, match="no refresh token"):
        oauth_google.finish(pending, "4/bare-code")


def test_a_flow_older_than_ten_minutes_is_not_finished(pending, monkeypatch) -> None:
    monkeypatch.setattr(oauth_google, "_exchange", lambda *a: pytest.fail("exchanged an expired flow"))
    import time

    old = oauth_google.PendingAuth(**{**pending.__dict__, "started": time.monotonic() - 601})
    with pytest.raises(UsageError, match="more than 10 minutes"):
        oauth_google.finish(old, {"code": "4/c", "state": old.state})


def test_an_unreachable_token_endpoint_is_a_plain_error_without_secrets(gconfig, store) -> None:
    from tests.conftest import free_port

    port = free_port()  # nothing listens there
    cfg = with_overrides(gconfig, google={"token_uri": f"http://127.0.0.1:{port}/token"})
    _, pending = oauth_google.start(cfg, store, RW, REDIRECT)
    with pytest.raises(oauth_google.OAuthFailed) as err:
        oauth_google.finish(pending, {"code": "4/secret-code", "state": pending.state})
    message = str(err.value)
    assert "cannot reach Google's token endpoint (127.0.0.1)" in message
    assert "4/secret-code" not in message and CLIENT_SECRET not in message and pending.code_verifier not in message


# -- the loopback receiver -------------------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_receiver_waits_for_the_redirect_with_its_state_and_ignores_others() -> None:
    with LoopbackReceiver(0) as receiver:
        assert receiver.redirect_uri == f"http://127.0.0.1:{receiver.port}/"
        result: dict = {}
        waiter = threading.Thread(target=lambda: result.update(receiver.wait("s-123", timeout=10)))
        waiter.start()
        assert _get(receiver.redirect_uri + "favicon.ico")[0] == 404
        status, page = _get(receiver.redirect_uri + "?code=4/x&state=forged")
        assert status == 400 and "does not belong" in page
        assert waiter.is_alive()  # still waiting for the right one
        status, page = _get(receiver.redirect_uri + "?code=4/good&state=s-123&scope=a+b")
        waiter.join(5)
        assert status == 200 and "close this tab" in page
        assert result == {"code": "4/good", "state": "s-123", "scope": "a b"}


def test_the_receiver_gives_up_after_its_timeout_and_refuses_a_busy_port() -> None:
    with LoopbackReceiver(0) as receiver:
        with pytest.raises(LoopbackTimeout, match="nothing was linked"):
            receiver.wait("s", timeout=0.05)
        with pytest.raises(UsageError, match="--port"):
            LoopbackReceiver(receiver.port)
