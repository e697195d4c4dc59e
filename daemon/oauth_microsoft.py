"""Microsoft sign-in through msal: linking (web auth-code flow, headless device flow) and tokens.

msal does the protocol work (PKCE, state, nonce, the token cache, refresh-token rotation).
What homecal adds: the least-privilege scopes of daemon.access, an HTTP client that can send
the authority's requests elsewhere (`[microsoft] login_endpoint`, so tests reach a local
fake while msal still sees the https authority it insists on), the account's secret dict
(see the Microsoft spec: the msal cache is kept sealed in the store, because it holds the
refresh token), and errors in plain words: no token, code or client secret ever reaches a
message or a log. The HTTP client (LoginHttp) and msal_app live in daemon.oauth_microsoft_http
and are re-exported here.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from daemon import access
from daemon.config import Config
from daemon.errors import AuthError, ProviderError, UsageError
from daemon.models import AccessMode
from daemon.oauth_microsoft_http import LoginHttp, msal_app, require_client_id, unreachable

__all__ = ["LinkDeclined", "LinkTimedOut", "LoginHttp", "StateMismatch", "TokenSource", "finish_device",
           "finish_web", "msal_app", "no_access_secret", "scopes_for", "start_device", "start_web"]

# msal's DEBUG records carry account names and request details; they are never wanted.
logging.getLogger("msal").setLevel(logging.WARNING)

#: the tenant id of every personal Microsoft account (outlook.com, hotmail.com, live.com)
PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
GRAPH_PREFIX = "https://graph.microsoft.com/"
#: scopes msal adds by itself and refuses to be given
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
_REFUSED = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})


class LinkDeclined(AuthError):
    """The user said no on Microsoft's consent page or to the device code."""


class StateMismatch(UsageError):
    """The answer does not belong to the flow this homecal started (wrong or stale state)."""


class LinkTimedOut(UsageError):
    """Nobody entered the device code in time."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def scopes_for(mode: AccessMode | str) -> list[str]:
    """The Graph scopes homecal asks for in `mode` (msal adds openid, profile and offline_access)."""
    return [s for s in access.scopes("microsoft", mode) if s not in RESERVED_SCOPES]


def _aadsts(result: Mapping[str, Any]) -> str:
    codes = result.get("error_codes") or []
    if codes:
        return f"AADSTS{codes[0]}"
    found = re.search(r"AADSTS\d+", str(result.get("error_description", "")))
    return found.group(0) if found else ""


def _reason(result: Mapping[str, Any]) -> str:
    """`error` plus the AADSTS number, never the description's free text."""
    error = re.sub(r"[^a-z_]", "", str(result.get("error", "")))[:40] or "no reason given"
    code = _aadsts(result)
    return f"{error}, {code}" if code else error


def _refusal(result: Mapping[str, Any], then: str) -> AuthError:
    """AuthError for an error answer; an app registration problem says where to look instead."""
    if result.get("error") in ("invalid_client", "unauthorized_client"):
        return AuthError(f"Microsoft refused homecal's app registration ({_reason(result)}): check [microsoft] "
                         f"client_id and the client secret, then {then}")
    return AuthError(f"Microsoft refused the sign-in ({_reason(result)}): {then}")


def _short(scope: str) -> str:
    return scope.removeprefix(GRAPH_PREFIX)


def _secret(config: Config, app: msal.ClientApplication, cache: msal.SerializableTokenCache,
            result: Mapping[str, Any], meta: Mapping[str, Any]) -> dict:
    """The account's secret dict from a successful token answer."""
    wanted = list(meta["scopes"])
    granted = {_short(s).lower() for s in str(result.get("scope", " ".join(wanted))).split()}
    missing = [s for s in wanted if s.lower() not in granted]
    if missing:
        raise UsageError(f"Microsoft did not grant {', '.join(missing)}: consent to every permission "
                         "shown and link again (nothing was stored)")
    claims = result.get("id_token_claims") or {}
    accounts = app.get_accounts()
    account = next((a for a in accounts if a.get("local_account_id") == claims.get("oid")), None)
    account = account or (accounts[0] if len(accounts) == 1 else None)
    if account is None:
        raise ProviderError("Microsoft's answer names no account: start linking again")
    tid = str(claims.get("tid", ""))
    now = _now_iso()
    return {"client_id": meta["client_id"], "authority": meta["authority"], "client_type": meta["client_type"],
            "home_account_id": account["home_account_id"],
            "username": claims.get("preferred_username") or account.get("username", ""),
            "email": "", "name": claims.get("name", ""), "tenant_id": tid, "personal": tid == PERSONAL_TENANT,
            "scopes": wanted, "token_cache": cache.serialize(), "linked_at": now, "refreshed_at": now}


def _start(config: Config, mode: AccessMode | str, public: bool) -> tuple[msal.ClientApplication, dict]:
    mode = AccessMode(mode)
    if mode == AccessMode.NO_ACCESS:
        raise UsageError("a no-access Microsoft account is linked without signing in to Microsoft: "
                         "give its address instead")
    cid = require_client_id(config, None)
    app = msal_app(config, public=public)
    client_type = "public" if public or not config.microsoft.client_secret else "confidential"
    return app, {"mode": mode.value, "scopes": scopes_for(mode), "client_id": cid,
                 "authority": config.microsoft.authority, "client_type": client_type, "started": time.time()}


def _app_for(config: Config, meta: Mapping[str, Any], cache: msal.SerializableTokenCache) -> msal.ClientApplication:
    return msal_app(config, cache, client_id=meta["client_id"], authority=meta["authority"],
                    public=meta.get("client_type") == "public")


def start_web(config: Config, mode: AccessMode | str, redirect_uri: str, *, login_hint: str | None = None) -> dict:
    """msal's auth-code flow for the browser: send the user to flow["auth_uri"], keep the flow server side."""
    app, meta = _start(config, mode, public=False)
    with warnings.catch_warnings():
        # msal recommends response_mode=form_post, but a cross-site POST back would arrive
        # without homecal's SameSite session cookie; the query answer is checked by state+PKCE.
        warnings.simplefilter("ignore", UserWarning)
        # select_account: a browser already signed in to one Microsoft account must still let
        # the user pick the account to link (a second mailbox, a personal next to a work one)
        flow = app.initiate_auth_code_flow(meta["scopes"], redirect_uri=redirect_uri, login_hint=login_hint,
                                           prompt=None if login_hint else "select_account")
    flow["homecal"] = meta
    return flow


def finish_web(config: Config, flow: Mapping[str, Any], params: Mapping[str, str]) -> dict:
    """The account's secret from Microsoft's answer at the redirect URI (its query parameters)."""
    flow, params = dict(flow), {k: v for k, v in params.items()}
    meta = flow.get("homecal") or {}
    if not meta or not flow.get("state") or params.get("state") != flow["state"]:
        raise StateMismatch("this answer from Microsoft does not belong to the linking homecal started "
                            "(it is stale or was opened twice): start linking again")
    if params.get("error") == "access_denied":
        raise LinkDeclined("you declined access on Microsoft's consent page, so nothing was linked")
    cache = msal.SerializableTokenCache()
    app = _app_for(config, meta, cache)
    try:
        result = app.acquire_token_by_auth_code_flow(flow, params)
    except requests.RequestException:
        raise unreachable(app.http_client.http_client) from None
    except MsalServiceError:
        raise ProviderError("Microsoft's sign-in service answered with a server error: try again later") from None
    except (ValueError, RuntimeError):  # msal's own checks (state, nonce); their text holds both values
        raise StateMismatch("Microsoft's answer did not match the linking homecal started: start linking "
                            "again") from None
    if "error" in result:
        raise _refusal(result, "start linking again")
    return _secret(config, app, cache, result, meta)


def start_device(config: Config, mode: AccessMode | str) -> dict:
    """msal's device flow: show flow["message"] (verification_uri and user_code) to the user."""
    app, meta = _start(config, mode, public=True)
    try:
        flow = app.initiate_device_flow(meta["scopes"])
    except requests.RequestException:
        raise unreachable(app.http_client.http_client) from None
    if "user_code" not in flow:
        if flow.get("error") in ("invalid_client", "unauthorized_client"):
            raise _refusal(flow, "try again")
        raise AuthError(f"Microsoft refused to start a device sign-in ({_reason(flow)}): check that the app "
                        "registration allows public client flows")
    flow["homecal"] = meta
    return flow


def finish_device(config: Config, flow: dict, *, timeout: float | None = None) -> dict:
    """Wait until the code is entered and approved; the account's secret. LinkTimedOut after `timeout` s."""
    meta = flow.get("homecal") or {}
    if not meta:
        raise UsageError("this device sign-in was not started by homecal: start linking again")
    if timeout is not None:
        # msal polls until flow["expires_at"]; moving it nearer is its documented way to stop early
        flow["expires_at"] = min(float(flow.get("expires_at", 0)), time.time() + max(0.0, timeout))
    cache = msal.SerializableTokenCache()
    app = _app_for(config, meta, cache)
    try:
        result = app.acquire_token_by_device_flow(flow)
    except requests.RequestException:
        raise unreachable(app.http_client.http_client) from None
    except MsalServiceError:
        raise ProviderError("Microsoft's sign-in service answered with a server error: try again later") from None
    error = result.get("error")
    if error in ("authorization_pending", "slow_down", "expired_token", "code_expired"):
        raise LinkTimedOut("nobody entered the code in time, so nothing was linked: start linking again")
    if error == "authorization_declined":
        raise LinkDeclined("the sign-in was declined on Microsoft's page, so nothing was linked")
    if error:
        raise _refusal(result, "start linking again")
    return _secret(config, app, cache, result, meta)


def no_access_secret(email: str) -> dict:
    """The secret of a no-access Microsoft account: the address the user typed, nothing else."""
    email = (email or "").strip()
    if "@" not in email or len(email) > 254 or any(ch.isspace() for ch in email):
        raise UsageError("give the Microsoft account's address, e.g. ann@outlook.com")
    return {"email": email}


class TokenSource:
    """Access tokens for one linked account from its sealed msal cache; refreshes through msal.

    `on_change` receives {"token_cache", "refreshed_at"} whenever msal changed the cache (a
    refresh rotates the refresh token): the caller seals and stores it. Thread-safe.
    """

    def __init__(self, config: Config, secret: Mapping[str, Any], *,
                 on_change: Callable[[dict], None] | None = None) -> None:
        self._config = config
        self._meta = {"client_id": secret.get("client_id") or config.microsoft.client_id,
                      "authority": secret.get("authority") or config.microsoft.authority,
                      "client_type": secret.get("client_type")}
        self._home = str(secret.get("home_account_id", ""))
        self._scopes = list(secret.get("scopes") or [])
        self._cache = msal.SerializableTokenCache()
        self._cache.deserialize(secret.get("token_cache") or None)
        self._on_change = on_change
        self._app: msal.ClientApplication | None = None
        self._lock = threading.Lock()

    def _refused(self, why: str) -> AuthError:
        return AuthError(f"Microsoft refused homecal's sign-in ({why}): link the account again")

    def _silent_scopes(self) -> list[str]:
        """The wanted scopes spelled as the cache holds them (Entra may answer long or short names,
        and msal finds a cached access token only under the exact names it stored)."""
        wanted = {s.lower() for s in self._scopes}
        for rt in self._cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN,
                                     query={"home_account_id": self._home}):
            stored = [s for s in str(rt.get("target", "")).split() if _short(s).lower() in wanted]
            if {_short(s).lower() for s in stored} == wanted:
                return stored
        return list(self._scopes)

    def token(self, *, force_refresh: bool = False) -> str:
        """A valid access token; force_refresh after Graph answered 401 to the cached one."""
        with self._lock:
            if self._app is None:
                self._app = msal_app(self._config, self._cache, client_id=self._meta["client_id"],
                                     authority=self._meta["authority"],
                                     public=True if self._meta["client_type"] == "public" else None)
            app = self._app
            try:
                account = next((a for a in app.get_accounts() if a.get("home_account_id") == self._home), None)
                if account is None:
                    raise self._refused("no sign-in is stored for this account")
                result = app.acquire_token_silent_with_error(self._silent_scopes(), account,
                                                             force_refresh=force_refresh)
            except requests.RequestException:
                raise unreachable(app.http_client.http_client) from None
            except MsalServiceError:
                raise ProviderError("Microsoft's sign-in service answered with a server error: "
                                    "try again later") from None
            except ValueError:
                raise ProviderError("Microsoft's sign-in service answered with something that is not a "
                                    "token: try again later") from None
            if not result:
                raise self._refused("no refresh token is stored for this account")
            if "error" in result:
                if result.get("error") in _REFUSED:
                    raise self._refused(_reason(result))
                if result.get("error") in ("invalid_client", "unauthorized_client"):
                    raise _refusal(result, "link the account again")
                raise ProviderError(f"Microsoft's sign-in service refused a token ({_reason(result)}): "
                                    "try again later")
            if self._cache.has_state_changed and self._on_change is not None:
                self._on_change({"token_cache": self._cache.serialize(), "refreshed_at": _now_iso()})
            return str(result["access_token"])
