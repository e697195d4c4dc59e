"""Google's OAuth endpoints in the fake: consent (auto-approved), token, revoke.

Consent `GET /o/oauth2/auth` answers 302 to the redirect URI with `code` and `state`, signed
in as `fake.login_as`. Like Google, it grants the OpenID basics under their long names
(`email` comes back as `.../auth/userinfo.email`), honours granular consent
(`fake.grant_only`), and gives a refresh token only with `access_type=offline` on the first
consent of a user to a client or with `prompt=consent`.

Token `POST /token` takes the client by form fields or HTTP Basic (requests-oauthlib sends
Basic), checks the secret, the code's redirect URI and PKCE (S256 or plain), and answers like
Google: JSON with access_token, expires_in, scope, token_type (+ refresh_token on the code
grant), or `{"error", "error_description"}` with 400/401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from tests.fakes.google_state import SCOPE_PREFIX, AuthCode, full_scope

if TYPE_CHECKING:
    from tests.fakes.google_http import FakeCore, Response

#: scopes the user cannot untick, and the long names Google returns for the short ones
_BASIC = {"openid": "openid", "email": SCOPE_PREFIX + "userinfo.email", "profile": SCOPE_PREFIX + "userinfo.profile"}
_LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/.*)?$")
CODE_LIFETIME = 600


def _page(status: int, title: str, text: str) -> Response:
    html = f"<!doctype html><title>{title}</title><h1>Error {status}: {title}</h1><p>{text}</p>"
    return status, {"Content-Type": "text/html; charset=utf-8"}, html.encode()


def _redirect(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return 302, {"Location": uri + sep + urlencode(params), "Content-Type": "text/html"}, b""


def _oauth_error(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": description}).encode()
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


def normalise_scopes(scopes: list[str]) -> tuple[str, ...]:
    """Scopes as Google reports them (short OpenID names expanded), order kept, no repeats."""
    out: list[str] = []
    for scope in scopes:
        name = _BASIC.get(scope, full_scope(scope))
        if name not in out:
            out.append(name)
    return tuple(out)


def consent(core: FakeCore, q: dict[str, list[str]]) -> Response:
    def arg(name: str) -> str | None:
        return q[name][0] if q.get(name) else None

    client_id, redirect_uri = arg("client_id"), arg("redirect_uri") or ""
    if client_id != core.client_id:
        return _page(400, "invalid_client", "The OAuth client was not found.")
    if not (_LOOPBACK.match(redirect_uri) or redirect_uri in core.allowed_redirects):
        return _page(400, "redirect_uri_mismatch",
                     "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.")
    state = arg("state")
    extra = {"state": state} if state is not None else {}
    if arg("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **extra})
    requested = normalise_scopes((arg("scope") or "").split())
    if not requested:
        return _page(400, "invalid_request", "Missing required parameter: scope")
    if core.deny_next:
        core.deny_next = False
        return _redirect(redirect_uri, {"error": "access_denied", **extra})
    if not core.login_as:
        return _page(400, "no_user", "Nobody is signed in (set fake.login_as).")
    email = core.login_as
    core.state.add_user(email, "Europe/Berlin")
    granted = requested
    if core.grant_only is not None:  # granular consent: the user unticked some boxes
        allowed = set(normalise_scopes(list(core.grant_only))) | set(_BASIC.values())
        granted = tuple(s for s in requested if s in allowed)
    offline = arg("access_type") == "offline" and (
        "consent" in (arg("prompt") or "").split() or (email, client_id) not in core.state.consented)
    if arg("access_type") == "offline":
        core.state.consented.add((email, client_id))
    challenge = arg("code_challenge")
    method = (arg("code_challenge_method") or "plain") if challenge else None
    code = "4/fake-" + secrets.token_urlsafe(32)
    core.state.codes[code] = AuthCode(client_id, redirect_uri, email, granted, challenge, method, offline,
                                      time.time() + CODE_LIFETIME)
    return _redirect(redirect_uri, {**extra, "code": code, "scope": " ".join(granted)})


def _client_credentials(headers: dict[str, str], form: dict[str, str]) -> tuple[str | None, str | None]:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return user, password
    return form.get("client_id"), form.get("client_secret")


def _token_answer(core: FakeCore, email: str, scopes: tuple[str, ...], client_id: str,
                  with_refresh: bool) -> Response:
    st = core.state
    body = {"access_token": st.issue_access_token(email, scopes, client_id, core.access_token_lifetime),
            "expires_in": core.access_token_lifetime, "scope": " ".join(scopes), "token_type": "Bearer"}
    if with_refresh:
        body["refresh_token"] = st.issue_refresh_token(email, scopes, client_id)
    return 200, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}, json.dumps(body).encode()


def token_endpoint(core: FakeCore, path: str, method: str, headers: dict[str, str], body: bytes,
                   query: dict[str, list[str]]) -> Response:
    from tests.fakes.google_http import parse_query

    form = {k: v[0] for k, v in parse_query(body.decode("utf-8", "replace")).items()}
    form.update({k: v[0] for k, v in query.items() if k not in form})
    fault = core.take_scripted(method, path, envelope=True)
    if fault is not None:
        return _oauth_error(fault.status, fault.reason, "Scripted failure.")
    if method != "POST":
        return _oauth_error(405, "invalid_request", "Use POST.")
    if path == "/revoke":
        return _revoke(core, form.get("token", ""))
    client_id, secret = _client_credentials(headers, form)
    if client_id != core.client_id:
        return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
    if secret != core.client_secret:
        return _oauth_error(401, "invalid_client", "Unauthorized")
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _code_grant(core, client_id, form)
    if grant_type == "refresh_token":
        grant = core.state.refresh_grants.get(form.get("refresh_token", ""))
        if grant is None or grant.revoked or grant.email not in core.state.users:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client_id:
            return _oauth_error(400, "unauthorized_client", "Unauthorized")
        return _token_answer(core, grant.email, grant.scopes, client_id, with_refresh=False)
    return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")


def _code_grant(core: FakeCore, client_id: str, form: dict[str, str]) -> Response:
    code = core.state.codes.get(form.get("code", ""))
    if code is None or code.expires_at < time.time():
        return _oauth_error(400, "invalid_grant", "Malformed auth code.")
    if code.used:
        return _oauth_error(400, "invalid_grant", "Bad Request")
    code.used = True  # single use, even when a check below fails
    if code.client_id != client_id:
        return _oauth_error(400, "invalid_grant", "Unauthorized")
    if form.get("redirect_uri") != code.redirect_uri:
        return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
    verifier = form.get("code_verifier")
    if code.challenge is None:
        if verifier:
            return _oauth_error(400, "invalid_request", "code_verifier or verifier is not needed.")
    elif not verifier:
        return _oauth_error(400, "invalid_grant", "Missing code verifier.")
    else:
        if code.method == "S256":
            derived = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        else:
            derived = verifier
        if not secrets.compare_digest(derived, code.challenge):
            return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
    return _token_answer(core, code.email, code.scopes, client_id, with_refresh=code.offline)


def _revoke(core: FakeCore, token: str) -> Response:
    st = core.state
    grant = st.refresh_grants.get(token)
    access = st.access_tokens.get(token)
    if grant is not None:
        grant.revoked = True
        for t in st.access_tokens.values():  # Google revokes the access tokens of that grant too
            if t.email == grant.email and t.client_id == grant.client_id:
                t.valid = False
    elif access is not None:
        access.valid = False
    else:
        return _oauth_error(400, "invalid_token", "Token expired or revoked")
    return 200, {"Content-Type": "application/json"}, b"{}"

