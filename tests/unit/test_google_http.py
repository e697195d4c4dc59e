"""The Google HTTP layer without a server: the per-user rate limit, backoff, error translation."""

from __future__ import annotations

import json

from daemon.errors import AuthError, NotFound, PreconditionFailed, ProviderError, RateLimited
from daemon.providers import google_http as gh


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_token_bucket_keeps_every_minute_below_googles_600_calls():
    clock = FakeClock()
    bucket = gh.TokenBucket(500, clock=clock, sleep=clock.sleep)
    stamps = []
    for i in range(3000):
        bucket.take(50 if i % 100 == 0 else 1)  # batches spend one token per member
        stamps.append((clock.now, 50 if i % 100 == 0 else 1))
    # a sliding 60 s window over every call made
    worst = 0
    j = 0
    total = 0
    for t, n in stamps:
        total += n
        while stamps[j][0] <= t - 60:
            total -= stamps[j][1]
            j += 1
        worst = max(worst, total)
    assert worst <= 550 < 600
    # and it does not crawl: 3,000 + 30 x 49 calls at 500 a minute take about 9 minutes
    assert 8 * 60 < clock.now < 10 * 60


def test_token_bucket_lets_a_short_burst_through_without_waiting():
    clock = FakeClock()
    bucket = gh.TokenBucket(500, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        bucket.take()
    assert clock.slept == 0


def _body(status: int, reason: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": "m",
                                 "errors": [{"domain": "usageLimits", "reason": reason, "message": "m"}]}}).encode()


def test_translation_of_googles_answers():
    assert isinstance(gh.translate(401, _body(401, "authError"), "x"), AuthError)
    quota = gh.translate(403, _body(403, "quotaExceeded"), "x")
    assert isinstance(quota, RateLimited) and quota.retry_after == gh.QUOTA_COOL_DOWN
    assert isinstance(gh.translate(403, _body(403, "userRateLimitExceeded"), "x"), RateLimited)
    forbidden = gh.translate(403, _body(403, "forbidden"), "x")
    assert isinstance(forbidden, gh.Forbidden) and forbidden.reason == "forbidden"
    assert isinstance(gh.translate(404, _body(404, "notFound"), "x"), NotFound)
    assert isinstance(gh.translate(409, _body(409, "duplicate"), "x"), gh.Conflict)
    assert isinstance(gh.translate(410, _body(410, "fullSyncRequired"), "x"), gh.Gone)
    assert isinstance(gh.translate(412, _body(412, "conditionNotMet"), "x"), PreconditionFailed)
    assert isinstance(gh.translate(502, b"<html>bad gateway</html>", "x"), ProviderError)


def test_what_is_retried():
    assert gh.retriable(403, _body(403, "rateLimitExceeded"))
    assert gh.retriable(403, _body(403, "userRateLimitExceeded"))
    assert gh.retriable(429, _body(429, "rateLimitExceeded"))
    assert gh.retriable(500, b"") and gh.retriable(503, b"")
    assert not gh.retriable(403, _body(403, "quotaExceeded"))  # an hour-scale lockout: no hammering
    assert not gh.retriable(409, _body(409, "duplicate")) and not gh.retriable(400, b"")


def test_backoff_grows_exponentially_with_full_jitter():
    waits = [max(gh.backoff(attempt) for _ in range(200)) for attempt in range(7)]
    assert waits[0] <= gh.RETRY["base"] and waits[3] <= 8 * gh.RETRY["base"]
    assert waits[3] > 2 * gh.RETRY["base"]  # grows
    assert max(waits) <= gh.RETRY["cap"]
    assert min(gh.backoff(2) for _ in range(200)) < 0.5  # jitter reaches down to ~0


def test_batch_uri_follows_the_endpoint():
    assert gh.batch_uri("") == "https://www.googleapis.com/batch/calendar/v3"
    assert gh.batch_uri("http://127.0.0.1:9/") == "http://127.0.0.1:9/batch/calendar/v3"
