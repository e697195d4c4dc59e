"""A fake of Microsoft's sign-in service (the identity platform's v2.0 endpoints), over real HTTP.

Production reaches it through msal with `[microsoft] login_endpoint = login.endpoint`: msal
keeps its https authority (it refuses any other), and daemon.oauth_microsoft.LoginHttp sends
requests for the authority's host here, same path and query. So the metadata served names
https://login.microsoftonline.com/... endpoints, as Entra's does.

Paths: /{tenant}/v2.0/.well-known/openid-configuration, /common/discovery/instance,
/{tenant}/oauth2/v2.0/authorize, /{tenant}/oauth2/v2.0/token, /{tenant}/oauth2/v2.0/devicecode.
Users and tokens live in the shared Directory (tests/fakes/ms_directory.py), so the Graph
fake accepts what this one issues and a revoked user is refused by both.

Knobs: `sign_in_as` (who consents at /authorize), `deny_next`, `approve_device(user_code,
email)`, `deny_device(user_code)`, `expire_device(user_code)`, `clients` (client_id -> secret
or None for a public client), `redirect_uris` (None: any), `device_interval`. Log: `requests`.
Errors are Entra-shaped: 400 {"error", "error_description": "AADSTSnnn: ...", "error_codes"}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import pytest

from tests.fakes.loopback import WsgiLoopback
from tests.fakes.ms_directory import Directory, MsUser, TokenRefused

__all__ = ["MsLoginFake", "ms_login", "LoginRecord"]

HOST = "login.microsoftonline.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CODE_LIFETIME = 600
_ALIASES = ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]
_PATH = re.compile(r"^/(?P<tenant>[^/]+)/(?P<rest>v2\.0/\.well-known/openid-configuration|discovery/instance|"
                   r"oauth2/v2\.0/(?:authorize|token|devicecode))$")

Response = tuple[int, dict[str, str], bytes]


@dataclass
class LoginRecord:
    """One request the fake answered (no token values)."""

    method: str
    path: str
    query: dict[str, str]
    grant_type: str | None
    client_id: str | None
    with_secret: bool
    status: int
    error: str | None = None


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    user: MsUser
    scopes: str
    challenge: str | None
    method: str | None
    nonce: str | None
    expires: float
    used: bool = False


@dataclass
class _Device:
    client_id: str
    scopes: str
    user_code: str
    expires: float
    user: MsUser | None = None
    declined: bool = False
    redeemed: bool = False


def _json(status: int, body: dict, extra: dict[str, str] | None = None) -> Response:
    headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"} | (extra or {})
    return status, headers, json.dumps(body).encode()


def entra_error(status: int, error: str, code: int, text: str) -> Response:
    """An error answer as Entra's token endpoints give it."""
    return _json(status, {"error": error, "error_description": f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()}",
                          "error_codes": [code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                          "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())})


def _page(status: int, code: int, text: str) -> Response:
    html = f"<!doctype html><title>Sign in</title><h1>Sorry, but we're having trouble signing you in.</h1><p>AADSTS{code}: {text}</p>"
    return status, {"Content-Type": "text/html; charset=utf-8"}, html.encode()


def _redirect(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return 302, {"Location": uri + sep + urlencode(params)}, b""


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class MsLoginFake(WsgiLoopback):
    """Microsoft's sign-in endpoints on 127.0.0.1, sharing users and tokens with a Directory."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        #: client_id -> client secret (confidential) or None (public client)
        self.clients: dict[str, str | None] = {"homecal-test-client": None}
        #: redirect URIs registered for the app; None accepts any
        self.redirect_uris: set[str] | None = None
        self.sign_in_as: str | None = None
        self.deny_next = False
        self.device_interval = 1
        self.device_lifetime = 900
        self.requests: list[LoginRecord] = []
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}  # device_code -> state
        self._lock = threading.Lock()
        self.endpoint = ""

    # ---- lifecycle (tests.fakes.loopback) ---------------------------------------------------
    def _started(self, base_url: str) -> None:
        self.endpoint = base_url

    # ---- test knobs ----------------------------------------------------------------------
    def _device(self, user_code: str) -> _Device:
        with self._lock:
            return next(d for d in self._devices.values() if d.user_code == user_code)

    def approve_device(self, user_code: str, email: str) -> None:
        """The user enters `user_code` at the verification page and signs in as `email`."""
        self._device(user_code).user = self.directory.user(email)

    def deny_device(self, user_code: str) -> None:
        self._device(user_code).declined = True

    def expire_device(self, user_code: str) -> None:
        self._device(user_code).expires = 0.0

    def token_requests(self, grant_type: str | None = None) -> list[LoginRecord]:
        """Requests to the token endpoint (optionally of one grant type)."""
        return [r for r in self.requests if r.path.endswith("/token") and grant_type in (None, r.grant_type)]

    # ---- HTTP ----------------------------------------------------------------------------
    def wsgi(self, environ: dict, start_response: Any) -> Iterator[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id, client_secret = _credentials(environ.get("HTTP_AUTHORIZATION", ""), form)
        status, headers, payload = self.handle(method, path, query, form, client_id, client_secret)
        error = None
        if status >= 400 and headers.get("Content-Type", "").startswith("application/json"):
            error = json.loads(payload).get("error")
        record = LoginRecord(method, path, query, form.get("grant_type"), client_id or query.get("client_id"),
                             client_secret is not None, status, error)
        with self._lock:
            self.requests.append(record)
        start_response(f"{status} X", list(headers.items()))
        return [payload]

    def handle(self, method: str, path: str, query: dict[str, str], form: dict[str, str],
               client_id: str | None, client_secret: str | None) -> Response:
        m = _PATH.match(path)
        if not m:
            return _json(404, {"error": "not_found"})
        tenant, rest = m.group("tenant"), m.group("rest")
        if rest.endswith("openid-configuration") and method == "GET":
            return _json(200, self._metadata(tenant))
        if rest == "discovery/instance" and method == "GET":
            return _json(200, self._instance(query))
        if rest.endswith("authorize") and method == "GET":
            return self._authorize(tenant, query)
        if method != "POST":
            return entra_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
        refused = self._check_client(client_id, client_secret, form.get("grant_type"))
        if refused:
            return refused
        if rest.endswith("devicecode"):
            return self._devicecode(str(client_id), form)
        return self._token(str(client_id), form)

    def _metadata(self, tenant: str) -> dict:
        base = f"https://{HOST}/{tenant}"
        issuer_tenant = tenant if re.fullmatch(r"[0-9a-f-]{36}", tenant) else "{tenantid}"
        return {"issuer": f"https://{HOST}/{issuer_tenant}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "request_uri_parameter_supported": False, "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com", "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com"}

    def _instance(self, query: dict[str, str]) -> dict:
        endpoint = unquote_plus(query.get("authorization_endpoint", f"https://{HOST}/common/oauth2/authorize"))
        tenant = (urlsplit(endpoint).path.strip("/").split("/") or ["common"])[0] or "common"
        return {"tenant_discovery_endpoint": f"https://{HOST}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": HOST, "preferred_cache": "login.windows.net", "aliases": _ALIASES},
                             {"preferred_network": "login.partner.microsoftonline.cn",
                              "preferred_cache": "login.partner.microsoftonline.cn",
                              "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"]}]}

    def _tenant_refuses(self, tenant: str, user: MsUser) -> bool:
        if tenant == "consumers":
            return not user.personal
        if tenant == "organizations":
            return user.personal
        if tenant == "common":
            return False
        return tenant != user.tid

    def _authorize(self, tenant: str, q: dict[str, str]) -> Response:
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        if client_id not in self.clients:
            return _page(400, 700016, f"Application with identifier '{client_id}' was not found in the directory.")
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            return _page(400, 50011, "The redirect URI specified in the request does not match the redirect "
                                     "URIs configured for the application.")
        extra = {"state": q["state"]} if "state" in q else {}
        if q.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **extra})
        if self.deny_next:
            self.deny_next = False
            return _redirect(redirect_uri, {"error": "access_denied", "error_description":
                                            "AADSTS65004: User declined to consent to access the app.", **extra})
        if not self.sign_in_as:
            return _page(400, 0, "Nobody is signed in (set login.sign_in_as).")
        user = self.directory.user(self.sign_in_as)
        if self._tenant_refuses(tenant, user):
            return _redirect(redirect_uri, {"error": "invalid_request", "error_description":
                                            f"AADSTS50020: User account from identity provider does not exist in "
                                            f"tenant '{tenant}'.", **extra})
        code = "0.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(client_id, redirect_uri, user, q.get("scope", ""), q.get("code_challenge"),
                                      q.get("code_challenge_method"), q.get("nonce"), time.time() + CODE_LIFETIME)
        return _redirect(redirect_uri, {"code": code, **extra, "session_state": str(uuid.uuid4())})

    def _check_client(self, client_id: str | None, secret: str | None, grant_type: str | None) -> Response | None:
        if not client_id or client_id not in self.clients:
            return entra_error(400, "invalid_client", 700016, f"Application with identifier '{client_id}' was not "
                                                              "found in the directory.")
        expected = self.clients[client_id]
        if expected is None and secret is not None:
            return entra_error(401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor "
                                                              "'client_secret' should be presented.")
        if expected is not None and secret is not None and not secrets.compare_digest(secret, expected):
            return entra_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if expected is not None and secret is None and grant_type == "authorization_code":
            # a confidential web app must prove itself; public flows (device code, their refresh) need not
            return entra_error(401, "invalid_client", 7000218, "The request body must contain the following "
                                                               "parameter: 'client_assertion' or 'client_secret'.")
        return None

    def _devicecode(self, client_id: str, form: dict[str, str]) -> Response:
        user_code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))
        device_code = "DAQABAAEAAA-fake-" + secrets.token_urlsafe(48)
        with self._lock:
            self._devices[device_code] = _Device(client_id, form.get("scope", ""), user_code,
                                                 time.time() + self.device_lifetime)
        uri = "https://microsoft.com/devicelogin"
        return _json(200, {"user_code": user_code, "device_code": device_code, "verification_uri": uri,
                           "expires_in": self.device_lifetime, "interval": self.device_interval,
                           "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
                                      f"{user_code} to authenticate."})

    def _token(self, client_id: str, form: dict[str, str]) -> Response:
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(client_id, form)
        if grant == "refresh_token":
            try:
                return _json(200, self.directory.redeem_refresh(form.get("refresh_token", ""),
                                                                form.get("scope", ""), client_id))
            except TokenRefused as refused:
                return _refused(refused)
        if grant == DEVICE_GRANT:
            return self._device_grant(client_id, form)
        return entra_error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                                                                 f"'{grant}'.")

    def _code_grant(self, client_id: str, form: dict[str, str]) -> Response:
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            if code is None or code.expires < time.time():
                return entra_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token "
                                                                "has expired due to inactivity.")
            if code.used:
                return entra_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
            code.used = True  # single use, even when a check below fails
        if code.client_id != client_id:
            return entra_error(400, "invalid_grant", 70000, "The code was issued to another client.")
        if form.get("redirect_uri") != code.redirect_uri:
            return entra_error(400, "invalid_grant", 50011, "The redirect URI does not match the one of the "
                                                            "authorization request.")
        verifier = form.get("code_verifier")
        if code.challenge:
            if not verifier:
                return entra_error(400, "invalid_grant", 50148, "The code_verifier is missing.")
            derived = _s256(verifier) if code.method == "S256" else verifier
            if not secrets.compare_digest(derived, code.challenge):
                return entra_error(400, "invalid_grant", 501481, "The Code_Verifier does not match the "
                                                                 "code_challenge supplied in the authorization request.")
        return _json(200, self.directory.issue(code.user, code.scopes, client_id, nonce=code.nonce))

    def _device_grant(self, client_id: str, form: dict[str, str]) -> Response:
        with self._lock:
            device = self._devices.get(form.get("device_code", ""))
            if device is None or device.redeemed or device.client_id != client_id:
                return entra_error(400, "bad_verification_code", 70019, "Verification code expired or unknown.")
            if device.declined:
                return entra_error(400, "authorization_declined", 70000, "The user declined the sign-in.")
            if device.expires < time.time():
                return entra_error(400, "expired_token", 70020, "The provided device code has expired.")
            if device.user is None:
                return entra_error(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. "
                                                                        "Authorization is pending. Continue polling.")
            device.redeemed = True
            user = device.user
        return _json(200, self.directory.issue(user, device.scopes, client_id))


def _refused(err: TokenRefused) -> Response:
    found = re.match(r"AADSTS(\d+): ?(.*)", err.description)
    code, text = (int(found.group(1)), found.group(2)) if found else (70000, err.description)
    return entra_error(400, err.code, code, text)


def _credentials(authorization: str, form: dict[str, str]) -> tuple[str | None, str | None]:
    """client_id and client_secret from HTTP Basic (msal's way) or the form."""
    if authorization.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return unquote_plus(user), unquote_plus(password)
    return form.get("client_id"), form.get("client_secret")


@pytest.fixture(name="ms_login")
def ms_login_fixture(ms_directory: Directory) -> Iterator[MsLoginFake]:
    """A started MsLoginFake on the test's Directory, stopped after the test."""
    with MsLoginFake(ms_directory) as fake:
        yield fake


#: the same fixture under its own name, for `from tests.fakes.ms_login import ms_login`
ms_login = ms_login_fixture
