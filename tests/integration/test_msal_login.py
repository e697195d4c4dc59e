"""Microsoft sign-in with the real msal against the fake sign-in service (tests/fakes/ms_login.py).

Nothing of msal is mocked: its requests go over loopback HTTP through
daemon.oauth_microsoft.LoginHttp, so PKCE, state, nonce, the token cache, refresh-token
rotation and instance discovery are msal's own.
"""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
import requests

from daemon import oauth_microsoft
from daemon.config import with_overrides
from daemon.errors import AuthError, ProviderError
from daemon.models import AccessMode
from tests.conftest import free_port
from tests.fakes.ms_directory import PERSONAL_TENANT, ms_directory  # noqa: F401
from tests.fakes.ms_login import DEVICE_GRANT, ms_login  # noqa: F401
from tests.ms_helpers import microsoft_config, ms_secret

REDIRECT = "https://cal.example.com/accounts/microsoft/callback"


@pytest.fixture
def ms_config(ms_login):  # noqa: F811
    return microsoft_config(None, ms_login)


def _consent(ms_login, flow: dict) -> dict[str, str]:  # noqa: F811
    """Open flow["auth_uri"] as a browser would (at the fake) and read the redirect's parameters."""
    url = oauth_microsoft.LoginHttp(microsoft_config(None, ms_login)).route(flow["auth_uri"])
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _web_link(config, ms_login, email: str, mode=AccessMode.READ_WRITE) -> dict:  # noqa: F811
    ms_login.sign_in_as = email
    flow = oauth_microsoft.start_web(config, mode, REDIRECT)
    return oauth_microsoft.finish_web(config, flow, _consent(ms_login, flow))


def _cached_tokens(secret: dict, section: str) -> list[str]:
    return [entry["secret"] for entry in json.loads(secret["token_cache"]).get(section, {}).values()]


# -- the web flow --------------------------------------------------------------------------------


def test_auth_code_flow_links_a_work_account_end_to_end(ms_config, ms_login, ms_directory):  # noqa: F811
    user = ms_directory.add_user("ann@contoso.com", name="Ann Example")
    ms_login.sign_in_as = "ann@contoso.com"
    flow = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT, login_hint="ann@contoso.com")
    asked = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert flow["auth_uri"].startswith("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?")
    assert asked["code_challenge_method"] == ["S256"] and asked["state"] == [flow["state"]]
    assert set(asked["scope"][0].split()) == {"Calendars.ReadWrite", "User.Read", "offline_access", "openid",
                                              "profile"}
    assert asked["redirect_uri"] == [REDIRECT] and asked["login_hint"] == ["ann@contoso.com"]
    assert "prompt" not in asked  # the hint names the account; without one the user picks it
    assert "select_account" in oauth_microsoft.start_web(ms_config, "free-busy", REDIRECT)["auth_uri"]

    secret = oauth_microsoft.finish_web(ms_config, flow, _consent(ms_login, flow))

    assert secret["home_account_id"] == user.home_account_id
    assert (secret["username"], secret["name"], secret["tenant_id"]) == ("ann@contoso.com", "Ann Example", user.tid)
    assert secret["personal"] is False
    assert secret["scopes"] == ["Calendars.ReadWrite", "User.Read"]
    assert secret["client_id"] == "homecal-test-client"
    assert secret["authority"] == "https://login.microsoftonline.com/common"
    assert secret["linked_at"].endswith("Z") and secret["refreshed_at"] == secret["linked_at"]
    token = oauth_microsoft.TokenSource(ms_config, secret).token()
    assert ms_directory.check_access(token) == (user, frozenset({"Calendars.ReadWrite", "User.Read"}))


def test_free_busy_link_gets_only_the_basic_calendar_scope(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    secret = _web_link(ms_config, ms_login, "ann@contoso.com", AccessMode.FREE_BUSY)
    token = oauth_microsoft.TokenSource(ms_config, secret).token()
    assert ms_directory.check_access(token)[1] == frozenset({"Calendars.ReadBasic", "User.Read"})


def test_an_answer_with_another_state_is_refused_before_any_code_is_redeemed(ms_config, ms_login,  # noqa: F811
                                                                          ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    ms_login.sign_in_as = "ann@contoso.com"
    flow = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT)
    params = _consent(ms_login, flow)
    other = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT)
    with pytest.raises(oauth_microsoft.StateMismatch) as err:
        oauth_microsoft.finish_web(ms_config, other, params)
    assert "start linking again" in str(err.value)
    assert params["code"] not in str(err.value) and flow["state"] not in str(err.value)
    assert ms_login.token_requests() == []
    # the right flow still works with the same answer: nothing was spent
    assert oauth_microsoft.finish_web(ms_config, flow, params)["username"] == "ann@contoso.com"


def test_a_declined_consent_links_nothing_and_says_so(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    ms_login.sign_in_as, ms_login.deny_next = "ann@contoso.com", True
    flow = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT)
    params = _consent(ms_login, flow)
    assert params["error"] == "access_denied"
    with pytest.raises(AuthError, match="you declined access on Microsoft's consent page, so nothing was linked"):
        oauth_microsoft.finish_web(ms_config, flow, params)
    assert ms_login.token_requests() == []


def test_an_answer_used_twice_is_refused_the_second_time(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    ms_login.sign_in_as = "ann@contoso.com"
    flow = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT)
    params = _consent(ms_login, flow)
    oauth_microsoft.finish_web(ms_config, flow, params)
    with pytest.raises(AuthError) as err:
        oauth_microsoft.finish_web(ms_config, flow, params)
    assert "AADSTS54005" in str(err.value) and params["code"] not in str(err.value)


def test_pkce_binds_the_code_to_the_flow_that_asked_for_it(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    ms_login.sign_in_as = "ann@contoso.com"
    flow = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT)
    params = _consent(ms_login, flow)
    stolen = dict(flow, code_verifier=oauth_microsoft.start_web(ms_config, "read-write", REDIRECT)["code_verifier"])
    with pytest.raises(AuthError, match="AADSTS501481"):
        oauth_microsoft.finish_web(ms_config, stolen, params)


def test_the_consumers_authority_refuses_a_work_account(ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    config = microsoft_config(None, ms_login, authority="https://login.microsoftonline.com/consumers")
    ms_login.sign_in_as = "ann@contoso.com"
    flow = oauth_microsoft.start_web(config, AccessMode.READ_WRITE, REDIRECT)
    with pytest.raises(AuthError, match=r"refused the sign-in \(invalid_request, AADSTS50020\)"):
        oauth_microsoft.finish_web(config, flow, _consent(ms_login, flow))


# -- the device flow -----------------------------------------------------------------------------


def test_device_flow_links_once_the_code_is_approved(ms_config, ms_login, ms_directory):  # noqa: F811
    user = ms_directory.add_user("bob@contoso.com")
    flow = oauth_microsoft.start_device(ms_config, AccessMode.READ_WRITE)
    assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]
    # approved while homecal is already polling: the first answers are "authorization_pending"
    approve = threading.Timer(0.3, ms_login.approve_device, (flow["user_code"], "bob@contoso.com"))
    approve.start()
    try:
        secret = oauth_microsoft.finish_device(ms_config, flow, timeout=20)
    finally:
        approve.cancel()
    assert secret["home_account_id"] == user.home_account_id and secret["personal"] is False
    polls = [r.error for r in ms_login.token_requests(DEVICE_GRANT)]
    assert polls[0] == "authorization_pending" and polls[-1] is None


def test_a_declined_device_code_links_nothing(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("bob@contoso.com")
    flow = oauth_microsoft.start_device(ms_config, AccessMode.READ_WRITE)
    ms_login.deny_device(flow["user_code"])
    with pytest.raises(oauth_microsoft.LinkDeclined, match="declined"):
        oauth_microsoft.finish_device(ms_config, flow, timeout=20)


def test_device_flow_gives_up_after_the_timeout(ms_config, ms_login, ms_directory):  # noqa: F811
    flow = oauth_microsoft.start_device(ms_config, AccessMode.READ_WRITE)
    with pytest.raises(oauth_microsoft.LinkTimedOut, match="nobody entered the code in time"):
        oauth_microsoft.finish_device(ms_config, flow, timeout=0.1)
    assert all(r.error == "authorization_pending" for r in ms_login.token_requests())


def test_an_expired_device_code_says_to_start_again(ms_config, ms_login):  # noqa: F811
    flow = oauth_microsoft.start_device(ms_config, AccessMode.FREE_BUSY)
    ms_login.expire_device(flow["user_code"])
    with pytest.raises(oauth_microsoft.LinkTimedOut, match="start linking again"):
        oauth_microsoft.finish_device(ms_config, flow, timeout=20)


def test_a_personal_account_is_flagged_personal(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("carol@outlook.com", personal=True)
    secret = ms_secret(ms_config, ms_login, "carol@outlook.com", AccessMode.READ_WRITE)
    assert secret["personal"] is True and secret["tenant_id"] == PERSONAL_TENANT
    work = ms_secret(ms_config, ms_login, "dan@contoso.com", AccessMode.READ_WRITE)
    assert work["personal"] is False and work["tenant_id"] != PERSONAL_TENANT


def test_an_unknown_app_registration_is_named_as_the_problem(ms_login, ms_directory):  # noqa: F811
    config = microsoft_config(None, ms_login, client_id="not-registered")
    with pytest.raises(AuthError, match=r"app registration \(invalid_client, AADSTS700016\).*client_id"):
        oauth_microsoft.start_device(config, AccessMode.READ_WRITE)


def test_an_unreachable_sign_in_service_is_a_provider_error():
    config = microsoft_config(None, type("Dead", (), {"endpoint": f"http://127.0.0.1:{free_port()}"})(),
                              authority="https://login.microsoftonline.com/organizations")
    with pytest.raises(ProviderError, match="cannot reach Microsoft's sign-in service") as err:
        oauth_microsoft.start_device(config, AccessMode.READ_WRITE)
    assert not isinstance(err.value, AuthError)  # a network failure never means "link again"


# -- TokenSource ---------------------------------------------------------------------------------


@pytest.fixture
def linked(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.add_user("ann@contoso.com")
    return ms_secret(ms_config, ms_login, "ann@contoso.com", AccessMode.READ_WRITE)


def test_a_fresh_token_comes_from_the_cache_without_a_request(ms_config, ms_login, linked):  # noqa: F811
    seen = len(ms_login.requests)
    changes: list[dict] = []
    token = oauth_microsoft.TokenSource(ms_config, linked, on_change=changes.append).token()
    assert token in _cached_tokens(linked, "AccessToken")
    assert ms_login.requests[seen:] == [] and changes == []


def test_a_401_from_graph_forces_a_refresh_and_the_new_cache_is_handed_over(ms_config, ms_login, ms_directory,  # noqa: F811
                                                                             linked):
    changes: list[dict] = []
    source = oauth_microsoft.TokenSource(ms_config, linked, on_change=changes.append)
    old = source.token()
    ms_directory.expire_access_tokens()  # Graph now answers 401 to `old`
    new = source.token(force_refresh=True)
    assert new != old and ms_directory.check_access(new)[0].email == "ann@contoso.com"
    assert [r.grant_type for r in ms_login.token_requests()][-1] == "refresh_token"
    assert len(changes) == 1 and changes[0]["refreshed_at"].endswith("Z")
    assert new in changes[0]["token_cache"]
    # Entra rotated the refresh token: the new cache holds the new one, the old one is spent
    assert _cached_tokens({"token_cache": changes[0]["token_cache"]}, "RefreshToken") != \
        _cached_tokens(linked, "RefreshToken")


def test_an_access_token_about_to_expire_is_refreshed_by_itself(ms_config, ms_login, ms_directory):  # noqa: F811
    ms_directory.access_ttl = 120  # msal treats a token with less than 5 minutes left as expired
    ms_directory.add_user("ann@contoso.com")
    secret = ms_secret(ms_config, ms_login, "ann@contoso.com", AccessMode.READ_WRITE)
    changes: list[dict] = []
    token = oauth_microsoft.TokenSource(ms_config, secret, on_change=changes.append).token()
    assert token not in _cached_tokens(secret, "AccessToken")
    assert len(changes) == 1 and ms_login.token_requests()[-1].grant_type == "refresh_token"


def test_the_saved_cache_keeps_working_and_a_stale_one_is_refused(ms_config, ms_login, ms_directory, linked):  # noqa: F811
    changes: list[dict] = []
    oauth_microsoft.TokenSource(ms_config, linked, on_change=changes.append).token(force_refresh=True)
    saved = linked | changes[0]
    seen = len(ms_login.requests)
    assert oauth_microsoft.TokenSource(ms_config, saved).token() in changes[0]["token_cache"]
    assert ms_login.requests[seen:] == []
    # a cache that was not saved after the refresh holds a used-up refresh token
    with pytest.raises(AuthError, match="link the account again"):
        oauth_microsoft.TokenSource(ms_config, linked).token(force_refresh=True)


def test_a_revoked_user_needs_a_relink_and_no_token_shows(ms_config, ms_login, ms_directory, linked):  # noqa: F811
    ms_directory.revoke("ann@contoso.com")
    changes: list[dict] = []
    with pytest.raises(AuthError) as err:
        oauth_microsoft.TokenSource(ms_config, linked, on_change=changes.append).token(force_refresh=True)
    message = str(err.value)
    assert message == "Microsoft refused homecal's sign-in (invalid_grant, AADSTS50173): link the account again"
    for token in _cached_tokens(linked, "AccessToken") + _cached_tokens(linked, "RefreshToken"):
        assert token not in message
    # msal asked instance discovery for other names of the authority before giving up
    assert any(r.path == "/common/discovery/instance" for r in ms_login.requests)


def test_a_secret_without_a_stored_sign_in_needs_a_relink(ms_config, linked):
    with pytest.raises(AuthError, match="no sign-in is stored"):
        oauth_microsoft.TokenSource(ms_config, linked | {"home_account_id": "someone.else"}).token()
    with pytest.raises(AuthError, match="link the account again"):
        oauth_microsoft.TokenSource(ms_config, linked | {"token_cache": ""}).token()


def test_the_sealed_cache_holds_the_refresh_token_and_round_trips(ms_config, ms_login, ms_directory, linked):  # noqa: F811
    cache = json.loads(linked["token_cache"])
    assert set(cache) >= {"AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"}
    refresh = _cached_tokens(linked, "RefreshToken")
    assert len(refresh) == 1 and refresh[0].startswith("rt-")  # a live credential: the store seals it
    again = msal.SerializableTokenCache()
    again.deserialize(linked["token_cache"])
    assert json.loads(again.serialize()) == cache and not again.has_state_changed
    # the Directory accepts that refresh token: it is the real thing, not a copy
    assert ms_directory.redeem_refresh(refresh[0], ["Calendars.ReadWrite"], "homecal-test-client")["access_token"]


def test_an_unreachable_sign_in_service_during_refresh_is_not_a_relink(ms_config, ms_login, linked):  # noqa: F811
    dead = with_overrides(ms_config, microsoft={"login_endpoint": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(ProviderError, match="cannot reach") as err:
        oauth_microsoft.TokenSource(dead, linked).token(force_refresh=True)
    assert not isinstance(err.value, AuthError)


# -- a confidential client -----------------------------------------------------------------------


def test_a_confidential_client_links_and_refreshes_with_its_secret(ms_login, ms_directory):  # noqa: F811
    ms_login.clients = {"homecal-test-client": "s3cret-value"}
    config = microsoft_config(None, ms_login, client_secret="s3cret-value")
    assert isinstance(oauth_microsoft.msal_app(config), msal.ConfidentialClientApplication)
    ms_directory.add_user("ann@contoso.com")
    secret = _web_link(config, ms_login, "ann@contoso.com")
    assert secret["client_type"] == "confidential" and "s3cret-value" not in json.dumps(secret)
    changes: list[dict] = []
    oauth_microsoft.TokenSource(config, secret, on_change=changes.append).token(force_refresh=True)
    assert len(changes) == 1
    assert [r.with_secret for r in ms_login.token_requests()] == [True, True]


def test_a_wrong_client_secret_is_named_without_showing_it(ms_login, ms_directory):  # noqa: F811
    ms_login.clients = {"homecal-test-client": "s3cret-value"}
    config = microsoft_config(None, ms_login, client_secret="wrong-value")
    ms_directory.add_user("ann@contoso.com")
    with pytest.raises(AuthError) as err:
        _web_link(config, ms_login, "ann@contoso.com")
    assert "app registration (invalid_client, AADSTS7000215)" in str(err.value)
    assert "wrong-value" not in str(err.value) and "s3cret" not in str(err.value)


def test_the_device_flow_of_a_confidential_setup_stays_a_public_client(ms_login, ms_directory):  # noqa: F811
    ms_login.clients = {"homecal-test-client": "s3cret-value"}
    config = microsoft_config(None, ms_login, client_secret="s3cret-value")
    secret = ms_secret(config, ms_login, "ann@contoso.com", AccessMode.READ_WRITE)
    assert secret["client_type"] == "public"  # msal's device flow exists only on public clients
    oauth_microsoft.TokenSource(config, secret).token(force_refresh=True)
    assert [r.with_secret for r in ms_login.token_requests()] == [False, False]



def test_no_token_reaches_a_log_record(ms_config, ms_login, ms_directory, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    ms_directory.add_user("ann@contoso.com")
    ms_login.sign_in_as = "ann@contoso.com"
    flow = oauth_microsoft.start_web(ms_config, AccessMode.READ_WRITE, REDIRECT)
    params = _consent(ms_login, flow)
    secret = oauth_microsoft.finish_web(ms_config, flow, params)
    changes: list[dict] = []
    oauth_microsoft.TokenSource(ms_config, secret, on_change=changes.append).token(force_refresh=True)
    cache = {"token_cache": changes[0]["token_cache"]}
    shown = caplog.text
    for value in ([params["code"], flow["code_verifier"]] + _cached_tokens(secret, "RefreshToken")
                  + _cached_tokens(cache, "RefreshToken") + _cached_tokens(cache, "AccessToken")):
        assert value not in shown


def test_a_linked_accounts_token_opens_graph(ms_login, ms_directory):  # noqa: F811
    from tests.fakes.graph_api import GraphFake

    ms_directory.add_user("ann@contoso.com", name="Ann Example")
    with GraphFake(ms_directory) as graph:
        config = microsoft_config(graph, ms_login)
        assert config.microsoft.graph_endpoint == graph.endpoint
        secret = ms_secret(config, ms_login, "ann@contoso.com", AccessMode.READ_WRITE)
        token = oauth_microsoft.TokenSource(config, secret).token()
        me = requests.get(f"{graph.endpoint}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["displayName"] == "Ann Example"
