"""The people and tokens the Microsoft fakes share: who exists, what each token may do.

The fake sign-in service (ms_login) issues tokens here; the fake Graph API (graph_api)
checks every bearer token here. Revoking a user (a password change, an admin's "revoke
sessions") kills their refresh and access tokens at once, as Entra does, so the fakes agree
on it without talking to each other.

Scopes are kept short ("Calendars.ReadWrite"): the "https://graph.microsoft.com/" prefix
MSAL may send is dropped, and the reserved OIDC scopes are not Graph permissions.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

#: the tenant every personal Microsoft account (outlook.com, hotmail.com) belongs to
PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
GRAPH_PREFIX = "https://graph.microsoft.com/"
#: scopes that are about the sign-in itself, not Graph permissions
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


class TokenRefused(Exception):
    """A token that is unknown, expired or revoked; `code` is what Entra would say."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass
class MsUser:
    email: str
    name: str
    oid: str
    tid: str
    personal: bool
    #: the mailbox's zone, as Outlook names it (a Windows zone name)
    timezone: str = "UTC"

    @property
    def home_account_id(self) -> str:
        return f"{self.oid}.{self.tid}"


@dataclass
class _Grant:
    user: MsUser
    scopes: frozenset[str]
    client_id: str
    expires: float
    generation: int = 0


def short_scopes(scopes: str | list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """Graph permissions named in `scopes` (a space-separated string or a list), prefix dropped."""
    items = scopes.split() if isinstance(scopes, str) else list(scopes)
    out = set()
    for s in items:
        s = s.removeprefix(GRAPH_PREFIX)
        if s and s not in OIDC_SCOPES:
            out.add(s)
    return frozenset(out)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@dataclass
class Directory:
    """Users, access tokens and refresh tokens of one fake Microsoft identity platform."""

    #: lifetime of an access token in seconds (tests shorten it to force refreshes)
    access_ttl: float = 3600.0
    users: dict[str, MsUser] = field(default_factory=dict)
    _access: dict[str, _Grant] = field(default_factory=dict)
    _refresh: dict[str, _Grant] = field(default_factory=dict)
    #: per user: bumped by `revoke`, so every earlier token stops working
    _generation: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, email: str, *, name: str | None = None, personal: bool = False,
                 tenant: str | None = None, timezone: str = "UTC") -> MsUser:
        user = MsUser(email=email, name=name or email.split("@")[0].title(), oid=str(uuid.uuid4()),
                      tid=PERSONAL_TENANT if personal else (tenant or str(uuid.uuid5(uuid.NAMESPACE_DNS, email.split("@")[-1]))),
                      personal=personal, timezone=timezone)
        with self._lock:
            self.users[email.lower()] = user
            self._generation.setdefault(email.lower(), 0)
        return user

    def user(self, email: str) -> MsUser:
        return self.users[email.lower()]

    def issue(self, user: MsUser, scopes, client_id: str, *, nonce: str | None = None) -> dict:
        """A token response as Entra's token endpoint gives it (access, refresh, id token, client_info)."""
        granted = short_scopes(scopes)
        with self._lock:
            gen = self._generation[user.email.lower()]
            access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(32)
            self._access[access] = _Grant(user, granted, client_id, time.time() + self.access_ttl, gen)
            self._refresh[refresh] = _Grant(user, granted, client_id, time.time() + 90 * 86400, gen)
        now = int(time.time())
        claims = {"aud": client_id, "iss": f"https://login.microsoftonline.com/{user.tid}/v2.0",
                  "iat": now, "nbf": now, "exp": now + 3600, "oid": user.oid, "sub": user.oid, "tid": user.tid,
                  "name": user.name, "preferred_username": user.email, "ver": "2.0"}
        if nonce:
            claims["nonce"] = nonce
        id_token = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])
        scope_text = " ".join(sorted(GRAPH_PREFIX + s for s in granted) + ["openid", "profile", "offline_access"])
        return {"token_type": "Bearer", "scope": scope_text, "expires_in": int(self.access_ttl),
                "ext_expires_in": int(self.access_ttl), "access_token": access, "refresh_token": refresh,
                "id_token": id_token, "client_info": _b64({"uid": user.oid, "utid": user.tid})}

    def redeem_refresh(self, refresh_token: str, scopes, client_id: str) -> dict:
        """New tokens for a refresh token (which is used up: Entra rotates them)."""
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None:
                raise TokenRefused("invalid_grant", "AADSTS70000: the provided refresh token is unknown.")
            if grant.generation != self._generation[grant.user.email.lower()]:
                raise TokenRefused("invalid_grant", "AADSTS50173: the provided grant has expired due to it "
                                                    "being revoked; a fresh auth token is needed.")
            if grant.expires < time.time():
                raise TokenRefused("invalid_grant", "AADSTS700082: the refresh token has expired due to inactivity.")
            if grant.client_id != client_id:
                raise TokenRefused("invalid_grant", "AADSTS70000: the refresh token was issued to another client.")
            wanted = short_scopes(scopes) or grant.scopes
            if not wanted <= grant.scopes:
                raise TokenRefused("invalid_grant", "AADSTS65001: the user has not consented to these scopes.")
            del self._refresh[refresh_token]
        return self.issue(grant.user, grant.scopes, client_id)

    def check_access(self, token: str) -> tuple[MsUser, frozenset[str]]:
        """Whose a bearer token is and what it may do; TokenRefused when it is no good."""
        with self._lock:
            grant = self._access.get(token)
            if grant is None:
                raise TokenRefused("InvalidAuthenticationToken", "Access token is empty or unknown.")
            if grant.generation != self._generation[grant.user.email.lower()]:
                raise TokenRefused("InvalidAuthenticationToken", "Access token has been revoked.")
            if grant.expires < time.time():
                raise TokenRefused("InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
            return grant.user, grant.scopes

    def revoke(self, email: str) -> None:
        """Every token of the user stops working (password change, revoked sessions)."""
        with self._lock:
            self._generation[email.lower()] += 1

    def expire_access_tokens(self) -> None:
        """Every access token expires now (refresh tokens still work)."""
        with self._lock:
            for grant in self._access.values():
                grant.expires = 0.0


@pytest.fixture
def ms_directory() -> Directory:
    """A fresh fake identity platform; the Graph and sign-in fakes of a test share it."""
    return Directory()
