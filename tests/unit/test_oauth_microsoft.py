"""daemon.oauth_microsoft without a network: scopes per mode, where LoginHttp sends requests, refusals."""

from __future__ import annotations

import pytest

from daemon import access, oauth_microsoft
from daemon.config import Config, with_overrides
from daemon.errors import UsageError
from daemon.models import AccessMode


def _config(**microsoft) -> Config:
    return with_overrides(Config(), microsoft=microsoft)


@pytest.mark.parametrize("mode, expected", [
    (AccessMode.READ_WRITE, ["Calendars.ReadWrite", "User.Read"]),
    (AccessMode.FREE_BUSY, ["Calendars.ReadBasic", "User.Read"]),
    (AccessMode.NO_ACCESS, []),
])
def test_scopes_are_the_access_tables_least_privilege_ones(mode, expected):
    assert oauth_microsoft.scopes_for(mode) == expected
    assert oauth_microsoft.scopes_for(mode.value) == list(access.scopes("microsoft", mode))


@pytest.mark.parametrize("mode", list(AccessMode))
def test_scopes_never_include_the_ones_msal_reserves(mode):
    # msal raises ValueError when given offline_access, openid or profile: it adds them itself
    assert not set(oauth_microsoft.scopes_for(mode)) & {"offline_access", "openid", "profile"}


def test_free_busy_never_asks_to_read_or_write_event_details():
    scopes = oauth_microsoft.scopes_for(AccessMode.FREE_BUSY)
    assert not any(s in scopes for s in ("Calendars.Read", "Calendars.ReadWrite"))


def test_login_http_sends_the_authoritys_requests_to_the_login_endpoint():
    http = oauth_microsoft.LoginHttp(_config(login_endpoint="http://127.0.0.1:9123"))
    url = "https://login.microsoftonline.com/common/oauth2/v2.0/token?x=1&y=a%20b"
    assert http.route(url) == "http://127.0.0.1:9123/common/oauth2/v2.0/token?x=1&y=a%20b"
    assert http.route("https://LOGIN.microsoftonline.com/common/discovery/instance") == \
        "http://127.0.0.1:9123/common/discovery/instance"


def test_login_http_keeps_a_path_prefix_of_the_login_endpoint():
    http = oauth_microsoft.LoginHttp(_config(login_endpoint="http://127.0.0.1:9123/entra/"))
    assert http.route("https://login.microsoftonline.com/consumers/v2.0/.well-known/openid-configuration") == \
        "http://127.0.0.1:9123/entra/consumers/v2.0/.well-known/openid-configuration"


def test_login_http_leaves_other_hosts_alone():
    http = oauth_microsoft.LoginHttp(_config(login_endpoint="http://127.0.0.1:9123"))
    for url in ("https://graph.microsoft.com/v1.0/me", "https://microsoft.com/devicelogin",
                "https://login.microsoftonline.us/common/oauth2/v2.0/token"):
        assert http.route(url) == url


def test_login_http_follows_the_authority_it_is_given():
    config = _config(authority="https://login.microsoftonline.us/organizations", login_endpoint="http://127.0.0.1:1")
    http = oauth_microsoft.LoginHttp(config)
    assert http.route("https://login.microsoftonline.us/x").startswith("http://127.0.0.1:1/")
    assert http.route("https://login.microsoftonline.com/x") == "https://login.microsoftonline.com/x"
    other = oauth_microsoft.LoginHttp(config, "https://login.microsoftonline.com/common")
    assert other.route("https://login.microsoftonline.com/x") == "http://127.0.0.1:1/x"


def test_without_a_login_endpoint_every_url_is_untouched():
    http = oauth_microsoft.LoginHttp(Config())
    url = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert http.route(url) == url


@pytest.mark.parametrize("call", [
    lambda c: oauth_microsoft.start_device(c, AccessMode.READ_WRITE),
    lambda c: oauth_microsoft.start_web(c, AccessMode.FREE_BUSY, "https://cal.example.com/cb"),
    lambda c: oauth_microsoft.msal_app(c),
    lambda c: oauth_microsoft.TokenSource(c, {"home_account_id": "x", "token_cache": "{}"}).token(),
])
def test_a_missing_client_id_says_which_key_to_set(call):
    with pytest.raises(UsageError) as err:
        call(Config())  # nothing is asked of Microsoft: the check comes first
    assert "[microsoft] client_id" in str(err.value)
    assert "README" in str(err.value)


def test_a_no_access_account_is_never_signed_in():
    config = _config(client_id="homecal-test-client")
    for start in (lambda: oauth_microsoft.start_device(config, "no-access"),
                  lambda: oauth_microsoft.start_web(config, "no-access", "https://cal.example.com/cb")):
        with pytest.raises(UsageError, match="without signing in"):
            start()


def test_a_no_access_secret_is_only_the_address():
    assert oauth_microsoft.no_access_secret("  ann@outlook.com ") == {"email": "ann@outlook.com"}
    for bad in ("", "ann", "ann @outlook.com"):
        with pytest.raises(UsageError):
            oauth_microsoft.no_access_secret(bad)


def test_refusal_reasons_carry_the_aadsts_number_but_not_the_description():
    result = {"error": "invalid_grant", "error_codes": [700082],
              "error_description": "AADSTS700082: The refresh token rt-SECRET has expired. Trace ID: 1"}
    assert oauth_microsoft._reason(result) == "invalid_grant, AADSTS700082"
    assert oauth_microsoft._reason({"error": "invalid_grant",
                                    "error_description": "AADSTS50173: revoked"}) == "invalid_grant, AADSTS50173"
    assert oauth_microsoft._reason({}) == "no reason given"
