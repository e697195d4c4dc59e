"""Google OAuth for linking an account: the authorization-code flow with PKCE and state.

`start` builds the URL the user opens (least-privilege scopes from daemon.access, PKCE S256,
a random state, offline access and forced consent so a refresh token always comes back) and
a `PendingAuth` that holds what the second half needs; `finish` exchanges the code Google
sent back for tokens and returns the account's sealed-secret dict (see the Google spec in
docs: token, refresh_token, expiry, scopes as granted, client_id, client_secret, linked_at,
refreshed_at; the e-mail is filled in by linking once the calendars are listed).

The web UI (webui/accounts_google.py) and `homecal account add google` (with the loopback
receiver in daemon/oauth_loopback.py) both go through here. google-auth-oauthlib's `Flow`
does the protocol work. What homecal adds: the client comes from Settings or the config file,
the granted scopes are checked (Google's granular consent lets a user untick a box), and every
failure becomes a HomecalError whose message is plain words without tokens, codes or the
client secret.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from daemon import access
from daemon.config import Config
from daemon.errors import ProviderError, UsageError
from daemon.models import AccessMode
from daemon.store.db import Store
from daemon.store.settings import FROM_UI, GoogleClient, effective_google_client

# requests-oauthlib logs the token request body and the token response at DEBUG: whatever
# level a host gives the root logger, those records must never be written.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)

log = logging.getLogger("homecal.oauth")

_G = "https://www.googleapis.com/auth/"
#: scopes Google answers under another name ("email" comes back as userinfo.email)
_ALIASES = {"email": f"{_G}userinfo.email", "profile": f"{_G}userinfo.profile"}
#: seconds to wait for Google's token endpoint
TOKEN_TIMEOUT = 30
#: how long a started flow may wait for its answer (Google's codes live ~10 minutes too)
PENDING_LIFETIME = 600
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class LinkDeclined(UsageError):
    """The user said no on Google's consent screen (error=access_denied)."""


class StateMismatch(UsageError):
    """The answer does not belong to the flow this homecal started (wrong or stale state)."""


class MissingScopes(UsageError):
    """Google granted fewer scopes than the mode needs (a box was unticked)."""


class OAuthFailed(ProviderError):
    """Google's token endpoint refused the code or could not be reached."""


@dataclass(frozen=True)
class PendingAuth:
    """A started flow: what `finish` needs to exchange the code. Kept server side only."""

    state: str
    code_verifier: str = field(repr=False)
    redirect_uri: str
    mode: AccessMode
    scopes: tuple[str, ...]
    client_id: str
    client_secret: str = field(repr=False)
    #: where the client came from (settings.FROM_UI or FROM_FILE): a UI-saved secret is kept
    #: with the account's tokens, a config file's is read from the file each time
    client_source: str
    client_type: str
    auth_uri: str
    token_uri: str
    #: time.monotonic() when the flow started
    started: float

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) - self.started > PENDING_LIFETIME


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _check_endpoint(uri: str, key: str) -> str:
    """Google's endpoints are https; plain http is accepted on loopback only (a test fake)."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        # oauthlib refuses plain http everywhere unless told otherwise. The host is checked
        # above, so this only ever lets a local endpoint through.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        return uri
    raise UsageError(f"[google] {key} must be an https:// URL (plain http only on 127.0.0.1), not {uri!r}")


def require_client(config: Config, store: Store) -> GoogleClient:
    """The OAuth client to link with; UsageError saying where to put one when there is none."""
    client = effective_google_client(config, store)
    if not client.configured:
        missing = "client secret" if client.client_id else "OAuth client"
        raise UsageError(
            f"no Google {missing} is configured: an admin enters the client id and secret under "
            "Settings > Google in the web UI, or sets [google] client_id and client_secret_file "
            "(or $HOMECAL_GOOGLE_CLIENT_SECRET) in the config file; the README explains how to create the client")
    return client


def _flow(pending: PendingAuth) -> Any:
    from google_auth_oauthlib.flow import Flow

    client_config = {pending.client_type: {
        "client_id": pending.client_id, "client_secret": pending.client_secret,
        "auth_uri": pending.auth_uri, "token_uri": pending.token_uri,
        "redirect_uris": [pending.redirect_uri]}}
    return Flow.from_client_config(client_config, scopes=list(pending.scopes), redirect_uri=pending.redirect_uri,
                                   state=pending.state, code_verifier=pending.code_verifier)


def start(config: Config, store: Store, mode: AccessMode | str, redirect_uri: str, *,
          client_type: str = "web") -> tuple[str, PendingAuth]:
    """The URL to send the user to, and the pending flow to keep until Google answers.

    `client_type` is "web" for the web UI's redirect and "installed" for the loopback one;
    Google treats both the same, the library only files the client config under that name.
    """
    mode = AccessMode(mode)
    if mode == AccessMode.NO_ACCESS:
        raise UsageError("a no-access Google account is linked without signing in to Google: "
                         "give its address instead")
    client = require_client(config, store)
    auth_uri = _check_endpoint(config.google.auth_uri, "auth_uri")
    token_uri = _check_endpoint(config.google.token_uri, "token_uri")
    pending = PendingAuth(
        state=secrets.token_urlsafe(32),
        # RFC 7636: 43-128 characters of [A-Za-z0-9-._~]; token_urlsafe(64) gives 86 of them.
        code_verifier=secrets.token_urlsafe(64),
        redirect_uri=redirect_uri, mode=mode, scopes=access.scopes("google", mode),
        client_id=client.client_id, client_secret=client.client_secret, client_source=client.source,
        client_type=client_type, auth_uri=auth_uri, token_uri=token_uri, started=time.monotonic())
    # access_type=offline + prompt=consent: Google sends a refresh token only on consent, and a
    # user who linked before would otherwise get none. include_granted_scopes=false: never
    # widen this account's grant with scopes given to the same client earlier.
    url, _state = _flow(pending).authorization_url(access_type="offline", prompt="consent",
                                                   include_granted_scopes="false")
    return url, pending


def answer_params(answer: str) -> dict[str, str]:
    """The query of a redirect URL (or a bare query string) as a flat dict."""
    query = urlsplit(answer).query if "://" in answer or answer.startswith("/") else answer.lstrip("?")
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


def code_from_answer(pending: PendingAuth, params: dict[str, str]) -> str:
    """The code from Google's redirect parameters, after checking the state and any error."""
    if not secrets.compare_digest(params.get("state", ""), pending.state):
        raise StateMismatch("this answer from Google does not belong to the linking homecal started "
                            "(it is stale or was opened twice): start linking again")
    error = params.get("error", "")
    if error == "access_denied":
        raise LinkDeclined("you declined access on Google's consent screen, so nothing was linked")
    if error:
        raise OAuthFailed(f"Google refused the request ({error[:60]}): check the OAuth client in Settings > Google "
                          "and its redirect URIs, then link again")
    code = params.get("code", "")
    if not code:
        raise UsageError("Google's answer carries no code: start linking again")
    return code


def _granted(token: dict, requested: tuple[str, ...]) -> list[str]:
    raw = token.get("scope")
    if raw is None:
        return list(requested)  # RFC 6749 5.1: no scope in the answer means exactly as requested
    return raw.split() if isinstance(raw, str) else list(raw)


def _short(scope: str) -> str:
    return scope.removeprefix(_G)


def check_scopes(requested: tuple[str, ...], granted: list[str]) -> None:
    """MissingScopes naming each requested scope Google did not grant (aliases count)."""
    have = set(granted)
    missing = [s for s in requested if s not in have and _ALIASES.get(s) not in have]
    if not missing:
        return
    got = ", ".join(_short(s) for s in granted) or "nothing"
    tick = " and ".join(f"'{access.SCOPE_MEANINGS.get(s, _short(s))}'" for s in missing)
    raise MissingScopes(f"Google granted only {got}: tick {tick} on the consent screen and link again "
                        "(nothing was stored)")


def _exchange(pending: PendingAuth, code: str) -> dict:
    import requests
    from oauthlib.oauth2.rfc6749 import errors as oauth_errors

    flow = _flow(pending)
    try:
        try:
            return dict(flow.fetch_token(code=code, timeout=TOKEN_TIMEOUT))
        except Warning as changed:
            # oauthlib raises a bare Warning carrying the token when the granted scopes differ
            # from the requested ones (Google renames "email"; a user may untick a box).
            # homecal checks the scopes itself, with a better message.
            token = getattr(changed, "token", None)
            if token is None:
                raise
            return dict(token)
    except oauth_errors.InvalidGrantError:
        raise OAuthFailed("Google did not accept the sign-in code (it expired or was used already): "
                          "start linking again") from None
    except oauth_errors.InvalidClientError:
        raise OAuthFailed("Google did not accept homecal's OAuth client: check the client id and secret "
                          "in Settings > Google (or the config file)") from None
    except oauth_errors.OAuth2Error as err:
        raise OAuthFailed(f"Google's token endpoint refused the sign-in ({err.error or 'no reason given'}): "
                          "start linking again") from None
    except requests.Timeout:
        raise OAuthFailed(f"Google's token endpoint did not answer within {TOKEN_TIMEOUT} s: try again") from None
    except requests.RequestException:
        host = urlsplit(pending.token_uri).hostname
        raise OAuthFailed(f"cannot reach Google's token endpoint ({host}): check this server's "
                          "network connection and try again") from None
    except ValueError:
        raise OAuthFailed("Google's token endpoint answered with something that is not a token: "
                          "try again") from None


def finish(pending: PendingAuth, answer: str | Mapping[str, str], *, now: datetime | None = None) -> dict:
    """Exchange Google's answer for the account's secret dict.

    `answer` is a bare code, the full redirect URL, or the redirect's parameters (the loopback
    receiver's). Raises LinkDeclined, StateMismatch, MissingScopes (nothing to store),
    OAuthFailed, UsageError.
    """
    if pending.expired():
        raise UsageError("this linking was started more than 10 minutes ago: start it again")
    if isinstance(answer, Mapping):
        code = code_from_answer(pending, dict(answer))
    else:
        answer = (answer or "").strip()
        if "code=" in answer or "error=" in answer or "state=" in answer:
            code = code_from_answer(pending, answer_params(answer))
        elif answer:
            code = answer
        else:
            raise UsageError("Google's answer carries no code: start linking again")
    token = _exchange(pending, code)
    if not token.get("access_token"):
        raise OAuthFailed("Google's token endpoint sent no access token: try again")
    granted = _granted(token, pending.scopes)
    check_scopes(pending.scopes, granted)
    if not token.get("refresh_token"):
        raise OAuthFailed("Google sent no refresh token, so homecal could not stay linked: remove homecal "
                          "under https://myaccount.google.com/permissions and link again")
    moment = now or datetime.now(timezone.utc)
    expiry = None
    if token.get("expires_at"):
        expiry = _utc_iso(datetime.fromtimestamp(float(token["expires_at"]), timezone.utc))
    elif token.get("expires_in"):
        expiry = _utc_iso(datetime.fromtimestamp(moment.timestamp() + float(token["expires_in"]), timezone.utc))
    linked = _utc_iso(moment)
    log.info("Google granted %s for a %s link", ", ".join(_short(s) for s in granted), pending.mode)
    return {
        "email": "",
        "token": token["access_token"],
        "refresh_token": token["refresh_token"],
        "expiry": expiry,
        "scopes": granted,
        "client_id": pending.client_id,
        # A config file's secret stays in the file (it may be rotated there); a UI-saved one is
        # kept with the tokens, so they outlive a later change of the client in Settings.
        "client_secret": pending.client_secret if pending.client_source == FROM_UI else "",
        "linked_at": linked,
        "refreshed_at": linked,
    }


def no_access_secret(email: str) -> dict:
    """The secret of a no-access Google account: its address and no tokens at all."""
    email = (email or "").strip()
    if "@" not in email or len(email) > 254 or any(ch.isspace() for ch in email):
        raise UsageError("give the Google account's address, e.g. ann@gmail.com")
    return {"email": email, "token": "", "refresh_token": "", "expiry": None, "scopes": [], "client_id": "",
            "client_secret": "", "linked_at": None, "refreshed_at": None}

