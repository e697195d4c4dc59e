"""Talking to Microsoft Graph: one session, the mailbox's concurrency cap, retries, errors.

Graph has no official synchronous Python client worth its weight here (the SDK is async and
generated), so requests are plain `requests` calls against `[microsoft] graph_endpoint`;
tests point that at the local fake and nothing else changes.

What this module adds (provider-facts §2.2, §2.5):

- `Prefer: IdType="ImmutableId"` on every request (ids survive moves) and
  `outlook.timezone="UTC"` (times are converted here, never guessed), plus text bodies.
- At most `[microsoft] requests_in_flight` (4) requests in flight per mailbox, across every
  provider object and thread of the process: Outlook refuses the fifth with 429
  MailboxConcurrency.
- 429 and 503 (and other 5xx and network errors) retried after `Retry-After` when it is
  given, else with exponential backoff and full jitter; a wait longer than the cap turns into
  `RateLimited`, so the account rests instead of a thread sleeping for minutes.
- 401: the access token is refreshed once (msal, through the token source); a second 401, or a
  refresh msal refuses, is `AuthError` (needs re-link), never "no events".
- JSON batches of at most 20 requests; members answered 429/503 are sent again after the
  longest Retry-After among them.
- Errors translated into daemon.errors; no token or event text reaches a message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import requests

from daemon.errors import AuthError, HomecalError, NotFound, PreconditionFailed, ProviderError, RateLimited

log = logging.getLogger("homecal.microsoft")

PREFER = 'IdType="ImmutableId", outlook.timezone="UTC", outlook.body-content-type="text"'
#: requests per JSON batch (Graph's limit)
BATCH_SIZE = 20
#: retry schedule (seconds): base * 2**attempt, capped, with full jitter; tests shrink `base`
RETRY = {"base": 1.0, "cap": 32.0, "attempts": 6, "max_wait": 120.0}
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
TIMEOUT = 30.0


class Gone(ProviderError):
    """410: a delta token the server no longer knows; the caller starts a fresh round."""


class Forbidden(ProviderError):
    """403: the account's permissions (or the calendar's) do not allow the call."""


class TokenSource(Protocol):
    def token(self, *, force_refresh: bool = False) -> str: ...


_slots_lock = threading.Lock()
_slots: dict[str, threading.BoundedSemaphore] = {}


def mailbox_slots(mailbox: str, size: int) -> threading.BoundedSemaphore:
    """The process-wide in-flight limit of one mailbox (every provider of it shares it)."""
    with _slots_lock:
        sem = _slots.get(mailbox)
        if sem is None or getattr(sem, "_homecal_size", None) != size:
            sem = threading.BoundedSemaphore(size)
            sem._homecal_size = size  # type: ignore[attr-defined]
            _slots[mailbox] = sem
        return sem


def _error_code(body: Any) -> tuple[str, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("code") or ""), str(err.get("message") or "")
    return "", ""


def translate(status: int, body: Any, what: str) -> HomecalError:
    """An HTTP error answer -> the error tree. `what` names the call, never event content."""
    code, _message = _error_code(body)
    text = f"Microsoft Graph answered {status} {code}".rstrip() + f" to {what}"
    if status == 401:
        return AuthError("Microsoft refused homecal's access token (401): link the account again")
    if status == 403:
        return Forbidden(f"{text}: the account's permissions do not allow it")
    if status == 404:
        return NotFound(f"{what}: not found at Microsoft")
    if status == 410:
        return Gone(text)
    if status == 412:
        return PreconditionFailed(f"{what}: the event changed at Microsoft since it was read")
    if status == 429:
        return RateLimited(f"{text}: too many requests", retry_after=None)
    return ProviderError(text)


def retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def backoff(attempt: int) -> float:
    """Full jitter: a random wait up to base * 2**attempt (capped), so clients spread out."""
    return random.uniform(0, min(RETRY["cap"], RETRY["base"] * (2 ** attempt)))


class GraphClient:
    """Requests to Graph for one mailbox."""

    def __init__(self, endpoint: str, tokens: TokenSource, *, mailbox: str, in_flight: int = 4,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep):
        self.endpoint = endpoint.rstrip("/")
        self.tokens = tokens
        self.slots = mailbox_slots(f"{self.endpoint}|{mailbox}", in_flight)
        self.session = session or requests.Session()
        self.sleep = sleep
        #: HTTP requests sent (a batch is one)
        self.requests = 0

    def url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.endpoint}/{path_or_url.lstrip('/')}"

    def _send(self, method: str, url: str, *, params: dict | None, json: Any, headers: dict | None,
              force_refresh: bool) -> requests.Response:
        token = self.tokens.token(force_refresh=force_refresh)
        head = {"Authorization": f"Bearer {token}", "Prefer": PREFER, "Accept": "application/json"}
        head.update(headers or {})
        with self.slots:
            self.requests += 1
            return self.session.request(method, url, params=params, json=json, headers=head, timeout=TIMEOUT)

    def call(self, method: str, path_or_url: str, what: str, *, params: dict | None = None, json: Any = None,
             headers: dict | None = None) -> Any:
        """One request with retries; its decoded JSON ({} when empty) or the error tree."""
        url = self.url(path_or_url)
        refreshed = False
        attempt = 0
        while True:
            last = attempt + 1 >= RETRY["attempts"]
            try:
                resp = self._send(method, url, params=params, json=json, headers=headers, force_refresh=refreshed)
            except requests.RequestException as err:
                if last:
                    raise ProviderError(f"cannot reach Microsoft Graph for {what} ({type(err).__name__})") from None
                delay, why = backoff(attempt), f"network error ({type(err).__name__})"
            else:
                if resp.status_code < 300:
                    return _json(resp, what)
                body = _json(resp, what, strict=False)
                if resp.status_code == 401 and not refreshed:
                    refreshed = True  # the token may have expired early: refresh once, then trust the 401
                    continue
                if resp.status_code not in _RETRY_STATUS or last:
                    err = translate(resp.status_code, body, what)
                    if isinstance(err, RateLimited):
                        err.retry_after = retry_after(resp.headers)
                    raise err
                delay = self._wait(resp.status_code, resp.headers, attempt, what)
                why = f"{resp.status_code} {_error_code(body)[0] or 'error'}"
            log.info("Microsoft Graph %s: %s; retrying in %.1f s", what, why, delay)
            self.sleep(delay)
            attempt += 1

    @staticmethod
    def _wait(status: int, headers: Any, attempt: int, what: str) -> float:
        asked = retry_after(headers)
        if asked is None:
            return backoff(attempt)
        if asked > RETRY["max_wait"]:
            raise RateLimited(f"Microsoft Graph asks homecal to wait {asked:.0f} s before {what}", retry_after=asked)
        # a little jitter on top, so the mailbox's waiting requests do not return together
        return asked + random.uniform(0, min(1.0, asked / 4 + 0.05))

    def pages(self, first: str, what: str, *, params: dict | None = None, headers: dict | None = None):
        """Follow @odata.nextLink from `first`; yields each page."""
        url: str | None = first
        while url:
            page = self.call("GET", url, what, params=params, headers=headers)
            params = None  # the next link carries every parameter already
            yield page
            url = page.get("@odata.nextLink")

    def batch(self, members: Sequence[dict], what: str) -> list[tuple[int, Any, dict]]:
        """Run requests ({method, url, body}) in JSON batches of 20; per request (status, body, headers).

        Members answered 429 / 5xx go again after the longest Retry-After among them; a member
        that keeps failing keeps its last answer. A refused login is raised.
        """
        results: list[tuple[int, Any, dict] | None] = [None] * len(members)
        pending = list(range(len(members)))
        for attempt in range(RETRY["attempts"]):
            retry: list[int] = []
            waits: list[float] = []
            for first in range(0, len(pending), BATCH_SIZE):
                chunk = pending[first:first + BATCH_SIZE]
                body = {"requests": [{"id": str(i), "method": members[i]["method"], "url": members[i]["url"],
                                      "headers": {"Content-Type": "application/json", "Prefer": PREFER},
                                      **({"body": members[i]["body"]} if "body" in members[i] else {})}
                                     for i in chunk]}
                answer = self.call("POST", "$batch", what, json=body)
                for resp in answer.get("responses") or ():
                    i = int(resp.get("id", -1))
                    if i not in chunk:
                        continue
                    status, headers = int(resp.get("status") or 0), resp.get("headers") or {}
                    results[i] = (status, resp.get("body"), headers)
                    if status == 401:
                        raise AuthError("Microsoft refused homecal's access token (401): link the account again")
                    if status in _RETRY_STATUS:
                        retry.append(i)
                        asked = retry_after(headers)
                        waits.append(asked if asked is not None else backoff(attempt))
                for i in chunk:
                    if results[i] is None:
                        results[i] = (0, {"error": {"code": "NoAnswer"}}, {})
                        retry.append(i)
            if not retry or attempt + 1 == RETRY["attempts"]:
                break
            delay = max(waits, default=backoff(attempt))
            if delay > RETRY["max_wait"]:
                break
            log.info("Microsoft Graph %s: %d batch members throttled; retrying in %.1f s", what, len(retry), delay)
            self.sleep(delay)
            pending = sorted(set(retry))
        return [r if r is not None else (0, None, {}) for r in results]

    def close(self) -> None:
        self.session.close()


def _json(resp: requests.Response, what: str, *, strict: bool = True) -> Any:
    if not resp.content:
        return {}
    try:
        return resp.json()
    except ValueError:
        if strict:
            raise ProviderError(f"Microsoft Graph sent an answer that is not JSON to {what}") from None
        return {}
