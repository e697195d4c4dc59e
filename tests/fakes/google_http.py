"""The Google fake's HTTP side: WSGI entry, routing, auth, faults, recording.

`FakeCore` owns the State, the knobs tests turn (faults, quota, per-user limit, consent
behaviour) and the request log. Every API call, whether a plain request or a batch member,
goes through `api_call`: scripted fault -> access token (401) -> quota -> per-user limit ->
random fault -> the method -> a fault "after the write" if one was drawn. Batch envelopes are
taken apart in google_batch, the OAuth endpoints live in google_oauth.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes import google_batch, google_calendars, google_events, google_oauth
from tests.fakes.google_errors import ApiError
from tests.fakes.google_events import Caller, Query
from tests.fakes.google_state import State

Response = tuple[int, dict[str, str], bytes]

#: the faults `fault_rate` draws from: (status, reason)
RANDOM_FAULTS = ((403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, "rateLimitExceeded"),
                 (500, "backendError"), (503, "backendError"))


@dataclass
class RequestRecord:
    """One request the fake answered (a batch member is its own record)."""

    method: str
    path: str  # percent-decoded: /calendars/ann@example.com/events
    query: dict  # name -> value, or a list of values when the name repeats
    batch_member: bool
    status: int = 0
    body: dict | None = None  # the JSON body sent, if any
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names, Authorization left out


@dataclass
class ScriptedFault:
    status: int
    reason: str
    count: int
    method: str | None
    path_contains: str | None
    after_write: bool


def _json(status: int, body: dict, extra: dict[str, str] | None = None) -> Response:
    headers = {"Content-Type": "application/json; charset=UTF-8", **(extra or {})}
    if status == 204:
        return status, headers, b""
    return status, headers, json.dumps(body).encode()


def parse_query(text: str) -> Query:
    q: Query = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        q.setdefault(name, []).append(value)
    return q


class FakeCore:
    """State plus behaviour knobs plus the request log; see google_api.GoogleFake for the API."""

    def __init__(self) -> None:
        self.state = State()
        self.requests: list[RequestRecord] = []
        self.http_requests = 0
        self.api_calls = 0
        self.token_requests = 0
        self.fault_rate = 0.0
        self.quota_exceeded = False
        self.per_user_limit: int | None = None
        self._rng = random.Random()
        self._scripted: list[ScriptedFault] = []
        self._calls_by_user: dict[str, deque[float]] = {}
        # OAuth knobs (google_oauth reads them)
        self.client_id = "homecal-test-client.apps.googleusercontent.com"
        self.client_secret = "fake-client-secret"
        self.login_as: str | None = None
        self.deny_next = False
        self.grant_only: list[str] | None = None
        self.allowed_redirects: list[str] = []
        self.access_token_lifetime = 3599

    @property
    def empty_pages(self) -> bool:
        return self.state.empty_pages

    @empty_pages.setter
    def empty_pages(self, value: bool) -> None:
        self.state.empty_pages = value

    # ---- faults --------------------------------------------------------------------------
    def seed(self, n: int) -> None:
        self._rng.seed(n)

    def fail_next(self, status: int, reason: str, count: int = 1, method: str | None = None,
                  path_contains: str | None = None, after_write: bool = False) -> None:
        with self.state.lock:
            self._scripted.append(ScriptedFault(status, reason, count, method.upper() if method else None,
                                                path_contains, after_write))

    def take_scripted(self, method: str, path: str, envelope: bool = False) -> ScriptedFault | None:
        """The first scripted fault matching this call, used up by one. Batch envelopes and the
        token endpoint only match faults whose path_contains names them."""
        for fault in self._scripted:
            if fault.method and fault.method != method:
                continue
            if fault.path_contains is None and envelope:
                continue
            if fault.path_contains is not None and fault.path_contains not in path \
                    and fault.path_contains not in unquote(path):
                continue
            fault.count -= 1
            if fault.count <= 0:
                self._scripted.remove(fault)
            return fault
        return None

    def reset_counts(self) -> None:
        with self.state.lock:
            self.requests.clear()
            self.http_requests = self.api_calls = self.token_requests = 0

    # ---- WSGI ----------------------------------------------------------------------------
    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        parts = urlsplit(raw)
        path, query = parts.path, parse_query(parts.query or environ.get("QUERY_STRING", ""))
        method = environ["REQUEST_METHOD"].upper()
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self.state.lock:
            self.http_requests += 1
            if path.startswith("/o/oauth2/auth"):
                status, out_headers, out = self._record(google_oauth.consent(self, query), method, path, query)
            elif path in ("/token", "/revoke"):
                self.token_requests += path == "/token"
                status, out_headers, out = self._record(
                    google_oauth.token_endpoint(self, path, method, headers, body, query), method, path, {})
            elif path.rstrip("/") in ("/batch/calendar/v3", "/batch"):
                status, out_headers, out = google_batch.handle(self, method, path, query, headers, body)
            else:
                status, out_headers, out = self.api_call(method, path, query, headers, body, batch_member=False)
        reason = _REASON_PHRASES.get(status, "Status")
        out_headers = {**out_headers, "Content-Length": str(len(out))}
        start_response(f"{status} {reason}", list(out_headers.items()))
        return [out]

    def _record(self, response: Response, method: str, path: str, query: Query) -> Response:
        self.requests.append(RequestRecord(method, path, _flat(query), False, response[0]))
        return response

    # ---- one API call --------------------------------------------------------------------
    def api_call(self, method: str, path: str, query: Query, headers: dict[str, str], body: bytes,
                 batch_member: bool) -> Response:
        """Run one Calendar API call (a plain request or a batch member) and log it."""
        with self.state.lock:
            self.api_calls += 1
            record = RequestRecord(method, unquote(path), _flat(query), batch_member,
                                   headers={k: v for k, v in headers.items() if k != "authorization"})
            self.requests.append(record)
            try:
                record.body = json.loads(body) if body.strip() else None
            except ValueError:
                record.body = None
            try:
                status, payload = self._call(method, path, query, headers, record.body, body)
                response = _json(status, payload, {"ETag": payload["etag"]} if "etag" in payload else None)
            except ApiError as err:
                response = err.response()
            record.status = response[0]
            return response

    def _call(self, method: str, path: str, query: Query, headers: dict[str, str], body: dict | None,
              raw_body: bytes) -> tuple[int, dict]:
        route = _route(method, path)
        write = route[0] in ("insert", "patch", "update", "delete")
        scripted = self.take_scripted(method, path)
        if scripted and not scripted.after_write:
            raise ApiError(scripted.status, scripted.reason)
        caller = self._authenticate(headers)
        if self.quota_exceeded:
            raise ApiError(403, "quotaExceeded")
        self._count_user_call(caller.email)
        after: ApiError | None = ApiError(scripted.status, scripted.reason) if scripted else None
        if self.fault_rate and self._rng.random() < self.fault_rate:
            status, reason = self._rng.choice(RANDOM_FAULTS)
            # half of the server errors on writes strike after the write was applied
            if write and status >= 500 and self._rng.random() < 0.5:
                after = ApiError(status, reason)
            else:
                raise ApiError(status, reason)
        if raw_body.strip() and body is None:
            raise ApiError(400, "parseError", "Parse Error")
        result = self._dispatch(route, caller, query, headers, body or {})
        if after is not None:
            raise after
        return result

    def _authenticate(self, headers: dict[str, str]) -> Caller:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise ApiError(401, "required", "Login Required.")
        token = self.state.access_tokens.get(auth[7:].strip())
        if token is None or not token.valid or token.expires_at <= time.time() or token.email not in self.state.users:
            raise ApiError(401, "authError")
        return Caller(token.email, token.scopes)

    def _count_user_call(self, email: str) -> None:
        if self.per_user_limit is None:
            return
        window = self._calls_by_user.setdefault(email, deque())
        t = time.monotonic()
        while window and window[0] <= t - 60:
            window.popleft()
        window.append(t)
        if len(window) > self.per_user_limit:
            raise ApiError(403, "userRateLimitExceeded")

    def _dispatch(self, route: tuple, caller: Caller, q: Query, headers: dict[str, str], body: dict) -> tuple[int, dict]:
        st, ev, cals = self.state, google_events, google_calendars
        name, args = route[0], route[1:]
        if_match = headers.get("if-match")
        if name == "calendarList":
            return cals.calendar_list(st, caller, q)
        if name == "calendarListGet":
            return cals.calendar_list_get(st, caller, *args)
        if name == "calendarsGet":
            return cals.calendars_get(st, caller, *args)
        if name == "list":
            return ev.events_list(st, caller, args[0], q)
        if name == "insert":
            return ev.events_insert(st, caller, args[0], q, body)
        if name == "get":
            return ev.events_get(st, caller, *args)
        if name in ("patch", "update"):
            return ev.events_patch(st, caller, *args, q, body, if_match, replace=name == "update")
        if name == "delete":
            return ev.events_delete(st, caller, *args, if_match)
        if name == "instances":
            return ev.events_instances(st, caller, *args, q)
        if name == "freeBusy":
            return cals.free_busy(st, caller, body)
        raise ApiError(404, "notFound")


def _route(method: str, path: str) -> tuple:
    """(method name, path arguments...) of a Calendar API path; 404 when there is none."""
    path = path.removeprefix("/calendar/v3")
    segs = [unquote(s) for s in path.strip("/").split("/")]
    n = len(segs)
    if segs[:3] == ["users", "me", "calendarList"] and method == "GET":
        if n == 3:
            return ("calendarList",)
        if n == 4:
            return ("calendarListGet", segs[3])
    if segs == ["freeBusy"] and method == "POST":
        return ("freeBusy",)
    if n >= 2 and segs[0] == "calendars":
        if n == 2 and method == "GET":
            return ("calendarsGet", segs[1])
        if n == 3 and segs[2] == "events":
            if method == "GET":
                return ("list", segs[1])
            if method == "POST":
                return ("insert", segs[1])
        if n == 4 and segs[2] == "events":
            name = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method)
            if name:
                return (name, segs[1], segs[3])
        if n == 5 and segs[2] == "events" and segs[4] == "instances" and method == "GET":
            return ("instances", segs[1], segs[3])
    raise ApiError(404, "notFound")


def _flat(q: Query) -> dict:
    return {k: v[0] if len(v) == 1 else list(v) for k, v in q.items()}


_REASON_PHRASES = {200: "OK", 204: "No Content", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
                   403: "Forbidden", 404: "Not Found", 409: "Conflict", 410: "Gone",
                   412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error",
                   503: "Service Unavailable"}


def reason_phrase(status: int) -> str:
    return _REASON_PHRASES.get(status, "Status")
