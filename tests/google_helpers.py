"""Google accounts in a test store, backed by the fake Google API (tests/fakes/google_api.py).

Linking here skips the consent screen (the fake issues tokens directly; the OAuth flows have
their own tests) but stores exactly what linking stores, and builds providers through
`make_provider`, the path the daemon takes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon import access
from daemon.config import Config, with_overrides
from daemon.models import AccessMode
from daemon.providers import google_http
from daemon.store import accounts
from daemon.store.accounts import Account
from daemon.store.db import Store
from tests.sync_helpers import save_linked


def google_config(config: Config, fake, **extra) -> Config:
    """`config` pointed at the fake: API, consent and token endpoints, its client."""
    return with_overrides(config, google={
        "client_id": fake.client_id, "client_secret": fake.client_secret, "api_endpoint": fake.url,
        "auth_uri": fake.auth_uri, "token_uri": fake.token_uri, "requests_per_minute": 100_000} | extra)


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def link_google(store: Store, config: Config, fake, user_id: int, email: str, *,
                mode: AccessMode = AccessMode.READ_WRITE, name: str | None = None) -> Account:
    """A Google account of `email` (a user of the fake) with its calendars listed."""
    tokens = fake.issue_tokens(email, list(access.scopes("google", mode)))
    secret = {"email": email, "token": tokens["token"], "refresh_token": tokens["refresh_token"],
              "expiry": tokens.get("expiry"), "scopes": list(access.scopes("google", mode)),
              "client_id": fake.client_id, "client_secret": "", "linked_at": now_text(),
              "refreshed_at": now_text()}
    return save_linked(store, config, user_id, "google", name or f"G {email}", mode, secret)


def calendar_of(store: Store, account: Account, remote_id: str):
    return next(c for c in accounts.calendars(store, account.id) if c.remote_id == remote_id)


@pytest.fixture
def fast_retries(monkeypatch):
    """Backoff in milliseconds instead of seconds: the schedule's shape is what is tested."""
    monkeypatch.setitem(google_http.RETRY, "base", 0.002)
    monkeypatch.setitem(google_http.RETRY, "cap", 0.02)
    monkeypatch.setitem(google_http.RETRY, "attempts", 8)


def instances(fake, email: str, calendar_id: str, master_id: str) -> list[dict]:
    """The occurrences of a series as Google's API lists them (what a user's app would see)."""
    import google.oauth2.credentials
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    token = fake.issue_tokens(email, ["https://www.googleapis.com/auth/calendar.events"])["token"]
    http = google_auth_httplib2.AuthorizedHttp(google.oauth2.credentials.Credentials(token), http=httplib2.Http())
    api = build("calendar", "v3", http=http, client_options={"api_endpoint": fake.url}, static_discovery=True,
                cache_discovery=False)
    return api.events().instances(calendarId=calendar_id, eventId=master_id, maxResults=2500).execute()["items"]


def stored_secret(linked: datetime, *, email: str = "ann@example.com", **extra: object) -> dict:
    """A read-write Google account's sealed secret as linking stores it, linked at `linked`.

    The token values are markers, so tests can show they never reach a page, a log or a mail.
    """
    stamp = linked.isoformat().replace("+00:00", "Z")
    return {"email": email, "token": "ya29.ACCESS-MARKER", "refresh_token": "1//REFRESH-MARKER",
            "expiry": None, "scopes": list(access.scopes("google", AccessMode.READ_WRITE)),
            "client_id": "x.apps.googleusercontent.com", "client_secret": "CLIENT-SECRET-MARKER",
            "linked_at": stamp, "refreshed_at": stamp} | extra
