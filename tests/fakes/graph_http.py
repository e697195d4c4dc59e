"""The fake Graph API's HTTP side: WSGI entry, auth, Prefer, faults, concurrency, log, $batch.

Every call, a plain request or a $batch member, runs through `GraphCore.call`: bearer token
(401) -> scripted fault -> random fault -> the handler (graph_routes). A plain request (or
a whole batch) first takes one of the mailbox's `max_concurrent` slots: one more in flight
answers 429 ApplicationThrottled with Retry-After: 1 (Outlook's MailboxConcurrency limit),
and `slow` holds every request in its slot so tests can provoke that. The state lock is NOT
held while a request sleeps, so concurrent requests really overlap.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes import graph_routes
from tests.fakes.graph_errors import GraphError, Response, reason_phrase
from tests.fakes.graph_state import Mailbox, State
from tests.fakes.ms_directory import Directory, MsUser, TokenRefused

MAX_BATCH = 20
_PREF = re.compile(r'\s*([^=,;\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,;]*))?\s*((?:;[^,]*)?)')


@dataclass
class RequestRecord:
    """One request the fake answered (a $batch member is its own record, in_batch True)."""

    method: str
    path: str  # below /v1.0, percent-decoded: /me/calendars/AAMk.../events
    query: dict  # name -> value (a list when the name repeats)
    headers: dict[str, str]  # lower-case names, Authorization left out
    status: int = 0
    in_batch: bool = False
    body: dict | None = None


@dataclass
class ScriptedFault:
    status: int
    count: int
    retry_after: str | None
    code: str | None
    path_contains: str | None


def parse_prefer(value: str) -> dict[str, str]:
    """Preferences of Prefer header(s): `IdType="ImmutableId", outlook.timezone="UTC"` (several
    headers arrive joined by commas); names lower-cased, quotes removed."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        m = _PREF.match(value, pos)
        if not m or m.end() == pos:
            pos += 1
            continue
        name, raw = m.group(1), (m.group(2) or "").strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1].replace('\\"', '"')
        out[name.lower()] = raw
        pos = m.end()
        while pos < len(value) and value[pos] in ", ":
            pos += 1
    return out


def flat(query: dict[str, list[str]]) -> dict:
    return {k: v[0] if len(v) == 1 else list(v) for k, v in query.items()}


@dataclass
class Ctx:
    """One call as the handlers see it."""

    core: GraphCore
    user: MsUser
    scopes: frozenset[str]
    mailbox: Mailbox
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict | None
    prefs: dict[str, str] = field(default_factory=dict)
    in_batch: bool = False

    def q1(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def flat_query(self) -> dict:
        return flat(self.query)

    def timezone(self) -> str:
        return self.prefs.get("outlook.timezone") or "UTC"

    def max_page_size(self) -> int | None:
        try:
            return max(1, int(self.prefs["odata.maxpagesize"]))
        except (KeyError, ValueError):
            return None

    @property
    def basic(self) -> bool:
        """Only Calendars.ReadBasic: no body, no extended properties."""
        return not any(s.startswith(("Calendars.Read.", "Calendars.ReadWrite")) or s == "Calendars.Read"
                       for s in self.scopes)


class GraphCore:
    """State, knobs and the request log; see graph_api.GraphFake for the public API."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.state = State()
        self.endpoint = ""
        self.requests: list[RequestRecord] = []
        self.max_concurrent = 4
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self.slow = 0.0
        self.replay = False
        self.hide_transaction_id = False
        self.rounds: dict = {}  # skiptoken -> graph_delta.Round
        self.last_sent: dict = {}  # calendar id -> last delta entry sent (for replays)
        self._scripted: list[ScriptedFault] = []
        self._rate = 0.0
        self._rate_statuses: tuple[int, ...] = (429, 503)
        self._rate_retry_after: str | None = "0"
        self._rng = random.Random(0)
        self._flight_lock = threading.Lock()

    # ---- faults --------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 429, retry_after: str | None = "2", code: str | None = None,
                  path_contains: str | None = None) -> None:
        """The next `n` calls (whose path contains `path_contains`, if given) answer `status`.
        A $batch envelope is hit only when path_contains names "$batch"; its members are calls."""
        with self.state.lock:
            self._scripted.append(ScriptedFault(status, n, retry_after, code, path_contains))

    def fault_rate(self, rate: float, statuses: tuple[int, ...] = (429, 503), seed: int = 0,
                   retry_after: str | None = "0") -> None:
        """Each call (envelopes and members too) fails with probability `rate`, drawn from a
        generator seeded with `seed`: the same calls in the same order fail the same way."""
        with self.state.lock:
            self._rate, self._rate_statuses, self._rate_retry_after = rate, tuple(statuses), retry_after
            self._rng = random.Random(seed)

    def _fault(self, path: str, envelope: bool) -> GraphError | None:
        for fault in self._scripted:
            if fault.path_contains is None and envelope:
                continue
            if fault.path_contains is not None and fault.path_contains not in path:
                continue
            fault.count -= 1
            if fault.count <= 0:
                self._scripted.remove(fault)
            return _fault_error(fault.status, fault.code, fault.retry_after)
        if self._rate and self._rng.random() < self._rate:
            return _fault_error(self._rng.choice(self._rate_statuses), None, self._rate_retry_after)
        return None

    # ---- WSGI ----------------------------------------------------------------------------
    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        parts = urlsplit(raw)
        path = unquote(parts.path)
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(parts.query or environ.get("QUERY_STRING", ""), keep_blank_values=True):
            query.setdefault(name, []).append(value)
        method = environ["REQUEST_METHOD"].upper()
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw_body = environ["wsgi.input"].read(length) if length else b""
        status, out_headers, out = self.serve(method, path, query, headers, raw_body)
        out_headers = {**out_headers, "Content-Length": str(len(out))}
        start_response(f"{status} {reason_phrase(status)}", list(out_headers.items()))
        return [out]

    def serve(self, method: str, path: str, query: dict, headers: dict[str, str], raw_body: bytes) -> Response:
        """One HTTP request: auth, a concurrency slot, the delay, then the call or the batch."""
        if not path.startswith("/v1.0/") and path != "/v1.0":
            return GraphError(404, "BadRequest", "Only /v1.0 is served.").response()
        rel = path[len("/v1.0"):] or "/"
        record = RequestRecord(method, rel, flat(query), _public(headers), in_batch=False, body=_json_or_none(raw_body))
        with self.state.lock:
            self.requests.append(record)
            try:
                user, _ = self._authenticate(headers)
            except GraphError as err:
                record.status = err.status
                return err.response()
        key = user.email.lower()
        with self._flight_lock:
            now = self.in_flight.get(key, 0) + 1
            self.peak_in_flight[key] = max(self.peak_in_flight.get(key, 0), now)
            if now > self.max_concurrent:
                refused = GraphError(429, "ApplicationThrottled", headers={"Retry-After": "1"})
                record.status = 429
                return refused.response()
            self.in_flight[key] = now
        try:
            if self.slow:
                time.sleep(self.slow)
            with self.state.lock:
                if rel.rstrip("/") == "/$batch":
                    response = self._batch(method, headers, raw_body, record)
                else:
                    response = self.call(method, rel, query, headers, raw_body, record)
                record.status = response[0]
                return response
        finally:
            with self._flight_lock:
                self.in_flight[key] -= 1

    def _authenticate(self, headers: dict[str, str]) -> tuple[MsUser, frozenset[str]]:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            return self.directory.check_access(auth[7:].strip())
        except TokenRefused as err:
            raise GraphError(401, "InvalidAuthenticationToken", err.description) from None

    def call(self, method: str, rel: str, query: dict, headers: dict[str, str], raw_body: bytes,
             record: RequestRecord) -> Response:
        """One API call (plain or batch member); the caller holds the state lock."""
        try:
            user, scopes = self._authenticate(headers)
            fault = self._fault(rel, envelope=False)
            if fault is not None:
                raise fault
            body = _json_or_none(raw_body)
            if raw_body.strip() and body is None:
                raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
            ctx = Ctx(self, user, scopes, self.state.mailbox(user), method, rel, query, headers, body,
                      parse_prefer(headers.get("prefer", "")), record.in_batch)
            status, payload, extra = graph_routes.dispatch(ctx)
            out_headers = {"Content-Type": "application/json", **extra}
            if "prefer" in headers:
                out_headers["Preference-Applied"] = headers["prefer"]
            return status, out_headers, (b"" if status == 204 else json.dumps(payload).encode())
        except GraphError as err:
            return err.response()

    # ---- $batch --------------------------------------------------------------------------
    def _batch(self, method: str, headers: dict[str, str], raw_body: bytes, record: RequestRecord) -> Response:
        fault = self._fault("/$batch", envelope=True)
        if fault is not None:
            return fault.response()
        body = _json_or_none(raw_body)
        if method != "POST" or not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return GraphError(400, "BadRequest", "Invalid batch payload.").response()
        members = body["requests"]
        if not members:
            return GraphError(400, "BadRequest", "A batch request needs at least one request.").response()
        if len(members) > MAX_BATCH:
            return GraphError(400, "BadRequest", f"Number of batch request steps exceeds the maximum of {MAX_BATCH}.") \
                .response()
        outer_auth = headers.get("authorization", "")
        responses = []
        for member in members:
            url = str(member.get("url", ""))
            parts = urlsplit(url if url.startswith("/") else "/" + url)
            m_query: dict[str, list[str]] = {}
            for name, value in parse_qsl(parts.query, keep_blank_values=True):
                m_query.setdefault(name, []).append(value)
            m_headers = {str(k).lower(): str(v) for k, v in (member.get("headers") or {}).items()}
            m_body = member.get("body")
            raw = json.dumps(m_body).encode() if m_body is not None else b""
            rel = unquote(parts.path).removeprefix("/v1.0")
            m_record = RequestRecord(str(member.get("method", "GET")).upper(), rel, flat(m_query), dict(m_headers),
                                     in_batch=True, body=m_body if isinstance(m_body, dict) else None)
            self.requests.append(m_record)
            status, out_headers, out = self.call(m_record.method, rel, m_query, {**m_headers, "authorization": outer_auth},
                                                 raw, m_record)
            m_record.status = status
            item = {"id": str(member.get("id")), "status": status,
                    "headers": {k: v for k, v in out_headers.items() if k != "Content-Length"}}
            if out:
                item["body"] = json.loads(out)
            responses.append(item)
        return 200, {"Content-Type": "application/json"}, json.dumps({"responses": responses}).encode()


def _fault_error(status: int, code: str | None, retry_after: str | None) -> GraphError:
    headers = {"Retry-After": retry_after} if retry_after is not None and status in (429, 503) else {}
    return GraphError(status, code, headers=headers)


def _json_or_none(raw: bytes) -> dict | None:
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _public(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "authorization"}
