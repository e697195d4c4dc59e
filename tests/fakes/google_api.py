"""A stateful fake of the Google Calendar API v3 and Google's OAuth endpoints, over real HTTP.

Production code reaches it exactly as it reaches Google, through google-api-python-client
(`build(..., client_options={"api_endpoint": fake.url})`, so paths arrive without the
`/calendar/v3` prefix; batches at `fake.batch_uri`), google-auth (`token_uri=fake.token_uri`)
and google-auth-oauthlib (`auth_uri`/`token_uri` from the fake). Behaviour follows
docs/provider-facts.md §1: sync tokens and 410, nextSyncToken only on the last page, deleted
ids reserved (409 / 410 / 403), If-Match 412, extendedProperties merge on patch, recurring
expansion per zone, freeBusy limits, scopes and the availability view, Google-shaped errors,
scripted and random faults.

Module map: google_state (memory and writes), google_events (API methods), google_time
(recurrence, times), google_http (routing, auth, faults, log), google_batch, google_oauth,
google_errors. This module holds the public `GoogleFake` and the `google_fake` fixture.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.fakes.google_errors import ApiError
from tests.fakes.google_http import FakeCore, RequestRecord
from tests.fakes.google_oauth import normalise_scopes
from tests.fakes.google_state import is_deleted
from tests.fakes.loopback import WsgiLoopback

__all__ = ["GoogleFake", "RequestRecord", "google_fake"]


class GoogleFake(FakeCore, WsgiLoopback):
    """Google Calendar + OAuth on 127.0.0.1. Knobs (plain attributes): `empty_pages`,
    `fault_rate` (with `seed(n)`), `quota_exceeded`, `per_user_limit`, `login_as`,
    `deny_next`, `grant_only`, `allowed_redirects`. Log: `requests`, `http_requests`,
    `api_calls`, `token_requests`, `reset_counts()`."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""

    # ---- lifecycle (tests.fakes.loopback) ---------------------------------------------------
    def _started(self, base_url: str) -> None:
        self.url = base_url + "/"

    @property
    def auth_uri(self) -> str:
        return self.url + "o/oauth2/auth"

    @property
    def token_uri(self) -> str:
        return self.url + "token"

    @property
    def revoke_uri(self) -> str:
        return self.url + "revoke"

    @property
    def batch_uri(self) -> str:
        return self.url + "batch/calendar/v3"

    # ---- users, calendars, tokens --------------------------------------------------------
    def add_user(self, email: str, time_zone: str = "Europe/Berlin") -> str:
        """A Google account with its primary calendar (id == e-mail); returns that id."""
        with self.state.lock:
            return self.state.add_user(email, time_zone)

    def add_calendar(self, email: str, summary: str = "Work", access_role: str = "owner",
                     time_zone: str = "Europe/Berlin", color: str = "#9fc6e7",
                     calendar_id: str | None = None) -> str:
        """A calendar in `email`'s calendar list. Passing an existing `calendar_id` shares that
        calendar with this user in `access_role` (e.g. someone else's calendar as reader)."""
        with self.state.lock:
            self.state.add_user(email, time_zone)
            return self.state.add_calendar(email, summary, access_role, time_zone, color, calendar_id)

    def issue_tokens(self, email: str, scopes: list[str] | tuple[str, ...]) -> dict:
        """Tokens as if `email` had consented (short scope names allowed): token, refresh_token, expiry."""
        with self.state.lock:
            self.state.add_user(email, "Europe/Berlin")
            granted = normalise_scopes(list(scopes))
            token = self.state.issue_access_token(email, granted, self.client_id, self.access_token_lifetime)
            refresh = self.state.issue_refresh_token(email, granted, self.client_id)
            expiry = datetime.fromtimestamp(time.time() + self.access_token_lifetime, UTC)
        return {"token": token, "refresh_token": refresh, "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "scopes": list(granted)}

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens still work)."""
        with self.state.lock:
            for token in self.state.access_tokens.values():
                token.valid = False

    def revoke(self, email: str) -> None:
        """The user revoked access: refresh -> 400 invalid_grant, access tokens -> 401."""
        with self.state.lock:
            for grant in self.state.refresh_grants.values():
                if grant.email == email:
                    grant.revoked = True
            for token in self.state.access_tokens.values():
                if token.email == email:
                    token.valid = False

    def invalidate_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Sync tokens handed out so far (for one calendar or all) answer 410 fullSyncRequired."""
        with self.state.lock:
            for token, (cal_id, _) in list(self.state.sync_tokens.items()):
                if calendar_id is None or cal_id == calendar_id:
                    del self.state.sync_tokens[token]

    # ---- events as the user edits them in Google -----------------------------------------
    def put_event(self, calendar_id: str, body: dict) -> dict:
        """Create (new or no id; any id shape) or wholly replace an event, as the user would in
        Google's UI. Bumps etag/updated and the sync sequence. Returns the stored event."""
        with self.state.lock:
            return self.state.put(self.state.calendars[calendar_id], body)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete as the user would (kept as cancelled; an instance id makes a cancelled exception)."""
        with self.state.lock:
            cal = self.state.calendars[calendar_id]
            try:
                self.state.delete(cal, event_id)
            except ApiError as err:
                if err.status == 404:
                    raise KeyError(event_id) from None
                if err.status != 410:  # deleting twice by hand is a no-op
                    raise

    def events(self, calendar_id: str, include_deleted: bool = False) -> list[dict]:
        """The stored events (masters and exceptions, not expanded), copies."""
        with self.state.lock:
            return [copy.deepcopy(e) for e in self.state.calendars[calendar_id].events.values()
                    if include_deleted or not is_deleted(e)]

    def event(self, calendar_id: str, event_id: str) -> dict | None:
        """One stored event (deleted ones too) or None."""
        with self.state.lock:
            found = self.state.calendars[calendar_id].events.get(event_id)
            return copy.deepcopy(found) if found is not None else None


@pytest.fixture(name="google_fake")
def google_fake_fixture() -> Iterator[GoogleFake]:
    """A started GoogleFake, stopped after the test."""
    with GoogleFake() as fake:
        yield fake


#: the same fixture under its own name, for `from tests.fakes.google_api import google_fake`
google_fake = google_fake_fixture
