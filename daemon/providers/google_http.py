"""Talking to the Google Calendar API: the client, retries, the per-user rate limit, batches.

Everything goes through google-api-python-client and google-auth, built with the Calendar v3
discovery document the library ships (no network for it) and, for tests, only the endpoint
changed (`[google] api_endpoint`; the batch URI follows it, since the library keeps Google's
there). Token refresh is the library's: an expired access token is refreshed through
`[google] token_uri` before or after a 401.

What this module adds (provider-facts §1.7):

- Retries with exponential backoff and full jitter on 403 rateLimitExceeded /
  userRateLimitExceeded, 429, 5xx and network errors. The library's own retry is not used:
  its sleeps cannot be bounded or observed by tests.
- 403 quotaExceeded is not retried: the account cools down for an hour (`RateLimited`).
- A token bucket per Google user below Google's 600 calls per minute; a batch member counts
  one call, like Google counts it.
- Errors translated into daemon.errors; `invalid_grant` on refresh is `AuthError` (needs
  re-link), never "no events". No token, code or event text ever reaches a message.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.errors import AuthError, HomecalError, NotFound, PreconditionFailed, ProviderError, RateLimited

log = logging.getLogger("homecal.google")

GOOGLE_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
GOOGLE_BATCH_URI = "https://www.googleapis.com/batch/calendar/v3"
#: members per batch request; Google takes up to 1000, but large batches are slow to answer
#: and one failure-prone request: 50 keeps each well under the HTTP timeout
BATCH_SIZE = 50
#: retry schedule (seconds): base * 2**attempt, capped, with full jitter; tests shrink `base`
RETRY = {"base": 1.0, "cap": 32.0, "attempts": 6}
#: how long an account rests after 403 quotaExceeded (Google's lockouts are hour-scale)
QUOTA_COOL_DOWN = 3600.0
_RETRY_403 = {"rateLimitExceeded", "userRateLimitExceeded"}


class Conflict(ProviderError):
    """409: the id exists (live or deleted): the caller turns an insert into an update."""


class Gone(ProviderError):
    """410: a sync token expired, or the event was already deleted."""


class Forbidden(ProviderError):
    """403 that is not a rate limit: no permission, or a write to a deleted event."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class TokenBucket:
    """At most `capacity + per_minute` calls in any 60 s (capacity = per_minute / 10)."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    tokens: float = field(init=False)
    stamp: float = field(init=False)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.capacity = max(1.0, self.per_minute / 10)
        self.tokens = self.capacity
        self.stamp = self.clock()

    def take(self, n: int = 1) -> None:
        """Wait until `n` calls may be made, then spend them (n may exceed the capacity)."""
        rate = self.per_minute / 60.0
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
            self.tokens -= n
            wait = -self.tokens / rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)


_BUCKETS: dict[str, TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket_for(user: str, per_minute: int) -> TokenBucket:
    """The process-wide bucket of one Google user (two homecal accounts of one user share it)."""
    with _BUCKETS_LOCK:
        b = _BUCKETS.get(user)
        if b is None or b.per_minute != per_minute:
            b = _BUCKETS[user] = TokenBucket(per_minute)
        return b


def build_service(api_endpoint: str, credentials: Any, timeout: float = 30):
    """The Calendar v3 client over an authorized HTTP connection (discovery doc from the wheel)."""
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
    options = {"api_endpoint": api_endpoint} if api_endpoint else None
    return build("calendar", "v3", http=http, client_options=options, static_discovery=True,
                 cache_discovery=False)


def batch_uri(api_endpoint: str) -> str:
    """The batch endpoint belonging to `api_endpoint` (the library would keep Google's)."""
    if not api_endpoint:
        return GOOGLE_BATCH_URI
    return api_endpoint.rstrip("/") + "/batch/calendar/v3"


def _reason(content: bytes | str | None) -> tuple[str, str]:
    """(reason, message) from a Google error body; ("", "") if there is none."""
    try:
        data = json.loads(content or b"{}")
    except (ValueError, TypeError):
        return "", ""
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return (str(err), "") if isinstance(err, str) else ("", "")
    details = err.get("errors") or [{}]
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    return str(first.get("reason") or err.get("status") or ""), str(err.get("message") or "")[:200]


def translate(status: int, content: bytes | str | None, what: str) -> HomecalError:
    """An HTTP error answer -> the error tree. `what` names the call, never event content."""
    reason, message = _reason(content)
    text = f"Google answered {status} {reason or ''} to {what}".rstrip()
    if status == 401:
        return AuthError("Google refused homecal's permission (401): the account needs re-linking")
    if status == 403 and reason == "quotaExceeded":
        return RateLimited("Google's calendar usage limit is exceeded; homecal rests this account for an hour",
                           retry_after=QUOTA_COOL_DOWN)
    if status == 403 and reason in _RETRY_403 or status == 429:
        return RateLimited(f"{text}: too many requests", retry_after=None)
    if status == 403:
        return Forbidden(f"{text}" + (f": {message}" if reason == "insufficientPermissions" else ""), reason)
    if status == 404:
        return NotFound(f"{what}: not found at Google")
    if status == 409:
        return Conflict(text)
    if status == 410:
        return Gone(text)
    if status == 412:
        return PreconditionFailed(f"{what}: the event changed at Google since it was read")
    return ProviderError(text)


def retriable(status: int, content: bytes | str | None) -> bool:
    if status >= 500 or status == 429:
        return True
    return status == 403 and _reason(content)[0] in _RETRY_403


def backoff(attempt: int) -> float:
    """Full jitter: a random wait up to base * 2**attempt (capped), so clients spread out."""
    return random.uniform(0, min(RETRY["cap"], RETRY["base"] * (2 ** attempt)))


class Caller:
    """Executes requests for one account: rate limit, retries, refresh bookkeeping, errors."""

    def __init__(self, service, credentials, bucket: TokenBucket, endpoint: str, *,
                 on_token: Callable[[Any], None] | None = None, sleep: Callable[[float], None] = time.sleep):
        self.service = service
        self.credentials = credentials
        self.bucket = bucket
        self.batch_uri = batch_uri(endpoint)
        self.on_token = on_token
        self.sleep = sleep
        self._token = getattr(credentials, "token", None)
        #: outer HTTP requests and API calls made (a batch is one request, many calls)
        self.requests = 0
        self.calls = 0

    def _noticed_refresh(self) -> None:
        token = getattr(self.credentials, "token", None)
        if token and token != self._token:
            self._token = token
            if self.on_token is not None:
                self.on_token(self.credentials)

    def execute(self, request, what: str, headers: dict[str, str] | None = None) -> Any:
        """Run one request with retries; returns the decoded answer or raises the error tree."""
        if headers:
            request.headers.update(headers)
        return self._retrying(lambda: request.execute(num_retries=0), 1, what)

    def _retrying(self, send: Callable[[], Any], calls: int, what: str) -> Any:
        """`send()` (one HTTP request carrying `calls` API calls) under the rate limit, retried
        with backoff on what Google asks to retry; its answer, or the error tree."""
        from googleapiclient.errors import HttpError

        for attempt in range(RETRY["attempts"]):
            self.bucket.take(calls)
            self.requests += 1
            self.calls += calls
            last = attempt + 1 == RETRY["attempts"]
            try:
                result = send()
                self._noticed_refresh()
                return result
            except HttpError as err:
                self._noticed_refresh()
                status = int(err.resp.status)
                if last or not retriable(status, err.content):
                    raise translate(status, err.content, what) from None
                why = f"{status} {_reason(err.content)[0] or 'error'}"
            except Exception as err:  # noqa: BLE001 - refresh and network errors are sorted here
                mapped = _transport_error(err, what)
                if mapped is not None or last:
                    raise (mapped or ProviderError(f"cannot reach Google for {what} ({type(err).__name__})")) \
                        from None
                why = f"network error ({type(err).__name__})"
            delay = backoff(attempt)
            log.info("Google %s: %s; retrying in %.1f s", what, why, delay)
            self.sleep(delay)
        raise ProviderError(f"Google kept failing {what}")  # pragma: no cover - the loop returns or raises

    def batch(self, requests: Sequence[Any], what: str) -> list[Any]:
        """Run requests as batches of BATCH_SIZE; returns per request the answer or a HomecalError.

        Members that fail with a retriable error are sent again (in a later batch) with backoff.
        A refused login or the quota aborts the whole call (raised).
        """
        results: list[Any] = [None] * len(requests)
        todo = list(range(len(requests)))
        attempt = 0
        while todo:
            retry: list[int] = []
            for start in range(0, len(todo), BATCH_SIZE):
                chunk = todo[start:start + BATCH_SIZE]
                answers = self._one_batch([requests[i] for i in chunk], what)
                for i, (status, answer, content) in zip(chunk, answers, strict=True):
                    if status is None:
                        results[i] = answer
                    elif retriable(status, content) and attempt + 1 < RETRY["attempts"]:
                        retry.append(i)
                    else:
                        err = translate(status, content, what)
                        if isinstance(err, AuthError) or (isinstance(err, RateLimited) and err.retry_after):
                            raise err
                        results[i] = err
            if retry:
                delay = backoff(attempt)
                log.info("Google batch %s: %d member(s) asked to retry; retrying in %.1f s", what, len(retry), delay)
                self.sleep(delay)
            todo, attempt = retry, attempt + 1
        return results

    def _one_batch(self, requests: list[Any], what: str) -> list[tuple[int | None, Any, Any]]:
        """One batch HTTP request (itself retried like any request); (status|None, answer, body)."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import BatchHttpRequest

        def send() -> list[tuple[int | None, Any, Any]]:
            out: list[tuple[int | None, Any, Any]] = [(0, None, None)] * len(requests)

            def done(request_id: str, response: Any, exception: Exception | None) -> None:
                i = int(request_id)
                if exception is None:
                    out[i] = (None, response, None)
                elif isinstance(exception, HttpError):
                    out[i] = (int(exception.resp.status), None, exception.content)
                else:
                    out[i] = (500, None, None)

            batch = BatchHttpRequest(callback=done, batch_uri=self.batch_uri)
            for i, request in enumerate(requests):
                batch.add(request, request_id=str(i))
            batch.execute(http=self.service._http)
            return out

        return self._retrying(send, len(requests), what)


def _transport_error(err: Exception, what: str) -> HomecalError | None:
    """A refresh failure or a non-HTTP error -> the error tree; None when it is worth a retry."""
    from google.auth.exceptions import RefreshError, TransportError

    if isinstance(err, RefreshError):
        text = str(err.args[0] if err.args else "")
        if "invalid_grant" in text or "invalid_client" in text or "unauthorized_client" in text:
            return AuthError("Google refused to renew homecal's permission (the grant was revoked or has "
                             "expired): the account needs re-linking")
        if getattr(err, "retryable", False):
            return None
        return ProviderError(f"Google's token endpoint failed for {what}")
    if isinstance(err, (TransportError, OSError, TimeoutError)):
        return None
    import httplib2

    if isinstance(err, httplib2.HttpLib2Error):
        return None
    if isinstance(err, HomecalError):
        return err
    return ProviderError(f"{what} failed ({type(err).__name__})")
