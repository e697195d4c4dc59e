"""Real test servers on loopback: Radicale (CalDAV), a static ICS feed, a counting proxy, SMTP.

Everything here listens on 127.0.0.1 and a free port, and is stopped by its fixture.

- `RadicaleServer`: a real Radicale subprocess with a throwaway storage folder, optionally
  with htpasswd logins (for the 401 path). The session-scoped `radicale` fixture shares one
  server; each test takes fresh users (`radicale.new_user()`) so tests never see each
  other's calendars and the collections stay small (Radicale slows as they grow).
- `FeedServer`: a threaded http.server serving one settable body, with ETag/If-None-Match and
  Last-Modified/If-Modified-Since (304), configurable failures and delays, and a request log.
- `CountingProxy`: a reverse proxy in front of any HTTP server that logs every request and
  can inject error answers (429, 503, ...) or delays. Used to count how many HTTP requests
  a provider call costs and to test error translation against a real backend.
- `SmtpSink`: a real aiosmtpd SMTP server that keeps every message it accepts, parsed; it can
  require a log-in, speak STARTTLS or implicit TLS, answer with a temporary error, and be
  stopped and started again on the same port (a mail server that is down for a while).

Fixtures: `radicale` (session), `feed_server`, `counting_proxy` (a factory), `smtp_sink`. The
functions are named `*_fixture` (the fixture names are set in the decorator), so a module or conftest
registers them by importing them without shadowing its own parameters:
`from tests.servers import counting_proxy_fixture, feed_server_fixture, radicale_fixture  # noqa: F401`.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import http.client
import itertools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from daemon.mail import SmtpSettings
from tests.conftest import free_port
from tests.fakes.loopback import LoopbackServer

__all__ = ["CountingProxy", "FeedServer", "RadicaleServer", "RecordedRequest", "ReceivedMail", "SmtpSink",
           "counting_proxy_fixture", "feed_server_fixture", "radicale_fixture", "self_signed_tls",
           "smtp_sink_fixture", "wait_for_port"]

#: every method a CalDAV client may send (http.server dispatches on "do_<METHOD>")
_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "REPORT",
            "MKCALENDAR", "MKCOL", "MOVE", "COPY")
#: headers that describe one hop only; a proxy must not pass them on
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "content-length"}


def wait_for_port(host: str, port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts TCP connections on host:port (or fail loudly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server process exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.03)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout} s")


@dataclass
class RecordedRequest:
    """One request a test server saw."""

    method: str
    path: str
    headers: dict[str, str]


# --------------------------------------------------------------------------------------------
# Radicale
# --------------------------------------------------------------------------------------------


class RadicaleServer:
    """A Radicale subprocess on 127.0.0.1 with its own storage folder.

    `users=None` runs with `--auth-type none` (any login works, calendars live under
    /<user>/); a mapping runs htpasswd auth with plain-text passwords, so wrong passwords
    get 401.
    """

    def __init__(self, folder: Path | str | None = None, *, users: Mapping[str, str] | None = None):
        self._own_folder = folder is None
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="radicale-"))
        self.users = dict(users) if users is not None else None
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._counter = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server root, e.g. http://127.0.0.1:PORT/ (what a user would type)."""
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [sys.executable, "-m", "radicale", "--config", "",
               "--server-hosts", f"127.0.0.1:{self.port}",
               "--rights-type", "owner_only",
               "--storage-filesystem-folder", str(self.folder / "storage"),
               "--logging-level", "error",
               # Radicale delays every 401 by ~1 s against password guessing; tests see many.
               "--auth-delay", "0"]
        if self.users is None:
            cmd += ["--auth-type", "none"]
        else:
            htpasswd = self.folder / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            cmd += ["--auth-type", "htpasswd", "--auth-htpasswd-filename", str(htpasswd),
                    "--auth-htpasswd-encryption", "plain"]
        # stdout/stderr go to a file: a full pipe nobody reads would block the server.
        self._log = open(self.folder / "radicale.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------------------------

    def new_user(self, prefix: str = "u") -> str:
        """A user name no other test on this server has used (so: empty calendars)."""
        return f"{prefix}{os.getpid()}x{next(self._counter)}"

    def password(self, user: str) -> str:
        return (self.users or {}).get(user, "x")

    def session(self, user: str) -> requests.Session:
        s = requests.Session()
        s.auth = (user, self.password(user))
        return s

    def calendar_url(self, user: str, cal_id: str) -> str:
        return f"{self.url}{user}/{cal_id}/"

    def make_calendar(self, user: str, cal_id: str, *, name: str | None = None,
                      components: tuple[str, ...] | None = None, color: str | None = None) -> str:
        """Create /<user>/<cal_id>/ with the caldav library; returns the calendar URL."""
        import caldav

        # auth_type="basic": without it the first request goes unauthenticated and Radicale
        # delays its 401 answer by about a second.
        with caldav.DAVClient(url=self.url, username=user, password=self.password(user),
                              auth_type="basic", enable_rfc6764=False) as client:
            cal = client.principal().make_calendar(
                name=name or cal_id, cal_id=cal_id,
                supported_calendar_component_set=list(components) if components else None)
            if color:
                client.proppatch(str(cal.url), _proppatch_color(color))
            return str(cal.url)

    def put(self, user: str, url: str, ics: str) -> str | None:
        """PUT an object as the backend's own client would; returns its ETag."""
        with self.session(user) as s:
            r = s.put(url, data=ics.encode(), headers={"Content-Type": "text/calendar; charset=utf-8"})
            r.raise_for_status()
            return r.headers.get("ETag")

    def delete(self, user: str, url: str) -> None:
        with self.session(user) as s:
            r = s.delete(url)
            if r.status_code not in (200, 204, 404):
                r.raise_for_status()


def _proppatch_color(color: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<D:propertyupdate xmlns:D="DAV:" xmlns:I="http://apple.com/ns/ical/">'
            f'<D:set><D:prop><I:calendar-color>{color}</I:calendar-color></D:prop></D:set>'
            '</D:propertyupdate>')


# --------------------------------------------------------------------------------------------
# Shared http.server plumbing
# --------------------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # a test server stopped mid-request must not hang the suite on joins
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        # Clients that time out on purpose (slow-response tests) reset connections; that is
        # expected, not worth a traceback on stderr.
        pass


class _ThreadedServer(LoopbackServer):
    """An http.server on 127.0.0.1 and a free port (the lifecycle: tests.fakes.loopback)."""

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        #: set before start() to serve https (see `self_signed_tls`)
        self.tls_context: ssl.SSLContext | None = None
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls_context else 'http'}://127.0.0.1:{self.port}"

    def _make_server(self) -> _QuietServer:
        handler = type("Handler", (self.handler_class,), {"owner": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        if self.tls_context is not None:
            httpd.socket = self.tls_context.wrap_socket(httpd.socket, server_side=True)
        return httpd

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def reset_count(self) -> None:
        with self.lock:
            self.requests.clear()

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests.append(RecordedRequest(handler.command, handler.path, dict(handler.headers)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    owner: _ThreadedServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read `owner.requests`, not stderr

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status != 304 and status >= 200:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and status != 304:
            self.wfile.write(body)


# --------------------------------------------------------------------------------------------
# ICS feed server
# --------------------------------------------------------------------------------------------


@dataclass
class _Fault:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1  # None: until cleared


class _FeedHandler(_Handler):
    owner: FeedServer

    def do_GET(self) -> None:
        self.owner.record(self)
        self.read_body()
        srv = self.owner
        if srv.delay:
            time.sleep(srv.delay)
        fault = srv.take_fault()
        if fault is not None:
            self.answer(fault.status, fault.body, fault.headers)
            return
        if urlsplit(self.path).path != srv.path:
            self.answer(404, b"not found")
            return
        with srv.lock:
            body, etag, modified = srv.body, srv.etag, srv.last_modified
        headers = {"Content-Type": srv.content_type}
        if etag:
            headers["ETag"] = etag
        if modified:
            headers["Last-Modified"] = email.utils.format_datetime(modified, usegmt=True)
        if self._not_modified(etag, modified):
            self.answer(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
            return
        if srv.chunked:
            self._send_chunked(body, headers)
        else:
            self.answer(200, body, headers)

    do_HEAD = do_GET

    def _not_modified(self, etag: str | None, modified: datetime | None) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            return etag is not None and etag in [t.strip() for t in inm.split(",")]
        ims = self.headers.get("If-Modified-Since")
        if ims and modified:
            try:
                return modified.replace(microsecond=0) <= email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def _send_chunked(self, body: bytes, headers: Mapping[str, str]) -> None:
        # No Content-Length: the client cannot know the size up front and must cap it itself.
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(body), 65536):
            chunk = body[i:i + 65536]
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class FeedServer(_ThreadedServer):
    """Serves one ICS body at `path`, like a published calendar feed.

    `set_body()` changes the body; by default the ETag is a hash of the body and
    Last-Modified the time it was set, so a conditional GET of an unchanged feed gets 304.
    Turn either validator off (`send_etag`, `send_last_modified`) to simulate feeds that
    send none. `fail(status, ...)` answers the next request(s) with an error; `delay`
    sleeps before every answer.
    """

    handler_class = _FeedHandler

    def __init__(self, path: str = "/calendar.ics") -> None:
        super().__init__()
        self.path = path
        self.body = b""
        self.etag: str | None = None
        self.last_modified: datetime | None = None
        self.send_etag = True
        self.send_last_modified = True
        self.content_type = "text/calendar; charset=utf-8"
        self.chunked = False
        self.delay = 0.0
        self._faults: list[_Fault] = []

    def url(self, *, query: str = "", scheme: str | None = None) -> str:
        scheme = scheme or ("https" if self.tls_context else "http")
        return f"{scheme}://127.0.0.1:{self.port}{self.path}" + (f"?{query}" if query else "")

    def set_body(self, body: str | bytes, *, etag: str | None = None,
                 last_modified: datetime | None = None) -> None:
        raw = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.body = raw
            self.etag = (etag or f'"{hashlib.sha256(raw).hexdigest()[:16]}"') if self.send_etag else None
            self.last_modified = (last_modified or datetime.now(UTC)) if self.send_last_modified else None

    def fail(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
             times: int | None = 1) -> None:
        with self.lock:
            self._faults.append(_Fault(status, body, dict(headers or {}), times))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def take_fault(self) -> _Fault | None:
        with self.lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(0)
            return fault


# --------------------------------------------------------------------------------------------
# Counting / fault-injecting reverse proxy
# --------------------------------------------------------------------------------------------


class _ProxyHandler(_Handler):
    owner: CountingProxy

    def _forward(self) -> None:
        srv = self.owner
        srv.record(self)
        body = self.read_body()
        if srv.delay:
            time.sleep(srv.delay)
        fault = srv.take_fault(self.command)
        if fault is not None:
            self.answer(fault.status, fault.body, fault.headers)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = srv.target_netloc
        conn = http.client.HTTPConnection(srv.target_host, srv.target_port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in out.items():
            self.send_header(k, v)
        if resp.status != 304 and resp.status >= 200:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)


for _method in _METHODS:  # http.server dispatches on do_<METHOD>; the proxy forwards them all
    setattr(_ProxyHandler, f"do_{_method}", _ProxyHandler._forward)


@dataclass
class _ProxyFault(_Fault):
    methods: frozenset[str] | None = None


class CountingProxy(_ThreadedServer):
    """A reverse proxy to `target` (e.g. a RadicaleServer) that logs every request.

    `base_url` replaces the target's scheme://host:port; paths stay the same, so the
    target's own (path-only) hrefs keep working through it. `fail(...)` answers the next
    matching request(s) itself instead of forwarding.
    """

    handler_class = _ProxyHandler

    def __init__(self, target: str) -> None:
        super().__init__()
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 80
        self.target_netloc = parts.netloc
        self.delay = 0.0
        self._faults: list[_ProxyFault] = []

    def url_for(self, target_url: str) -> str:
        """The proxied twin of a URL on the target."""
        parts = urlsplit(target_url)
        return f"{self.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    def fail(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
             times: int | None = 1, methods: tuple[str, ...] | None = None) -> None:
        with self.lock:
            self._faults.append(_ProxyFault(status, body, dict(headers or {}), times,
                                            frozenset(methods) if methods else None))

    def take_fault(self, method: str) -> _ProxyFault | None:
        with self.lock:
            for i, fault in enumerate(self._faults):
                if fault.methods is not None and method not in fault.methods:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.pop(i)
                return fault
            return None

    def methods(self) -> list[str]:
        with self.lock:
            return [r.method for r in self.requests]


@dataclass
class ReceivedMail:
    """One message an SmtpSink accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage


class SmtpSink:
    """A real aiosmtpd server on 127.0.0.1 that keeps every message it accepts.

    `login=(user, password)` makes it accept that log-in (over plain connections too, unless
    `auth_require_tls`); `echo_password` makes a failed log-in answer with the password it
    was sent, as a careless server might. `starttls` / `implicit_tls` take a server context.
    Set `refuse` to an SMTP reply (e.g. "451 4.3.0 try again later") to answer every message
    with it. `stop()` and `start()` take the server down and bring it back on the same port.
    """

    def __init__(self, *, login: tuple[str, str] | None = None, starttls: ssl.SSLContext | None = None,
                 implicit_tls: ssl.SSLContext | None = None, auth_require_tls: bool = False,
                 echo_password: bool = False) -> None:
        self.received: list[ReceivedMail] = []
        self.login = login
        self.echo_password = echo_password
        self.refuse: str | None = None
        self.port = free_port()
        self._kwargs: dict[str, object] = {"auth_require_tls": auth_require_tls}
        if login:
            self._kwargs["authenticator"] = self._authenticate
        if starttls:
            self._kwargs["tls_context"] = starttls
        self._implicit_tls = implicit_tls
        self._cond = threading.Condition()
        self.controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
        assert isinstance(auth_data, LoginPassword)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        if (user, password) == self.login:
            return AuthResult(success=True)
        if self.echo_password:
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 wrong password {password}")
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        if self.refuse:
            return self.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._cond:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            self._cond.notify_all()
        return "250 OK"

    def settings(self, **changes: object) -> SmtpSettings:
        """SmtpSettings that reach this server (plain SMTP, sender homecal@example.org)."""
        base = SmtpSettings(host="127.0.0.1", port=self.port, security="none", from_address="homecal@example.org",
                            timeout=5)
        return replace(base, **changes)

    def config_smtp(self, from_address: str = "homecal@example.org") -> dict[str, object]:
        """The `[smtp]` section that reaches this server: `with_overrides(config, smtp=sink.config_smtp())`."""
        return {"host": "127.0.0.1", "port": self.port, "starttls": False, "from_address": from_address}

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least `count` messages arrived (AssertionError after `timeout`)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} mail(s) within {timeout} s, got {len(self.received)}")
            return list(self.received)

    def start(self) -> SmtpSink:
        # A stopped aiosmtpd Controller cannot start again (its loop is closed): a new one.
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, ssl_context=self._implicit_tls,
                                     **self._kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the certificate file a client must trust.

    Clients built on requests trust it with REQUESTS_CA_BUNDLE=<that file>.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homecal test server")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert_path


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="radicale")
def radicale_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """One Radicale for the whole session (startup costs ~0.3 s); tests use fresh users."""
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="feed_server")
def feed_server_fixture() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture(name="counting_proxy")
def counting_proxy_fixture() -> Iterator[Callable[[str], CountingProxy]]:
    """A factory: `counting_proxy(target_url)` starts a proxy, stopped after the test."""
    started: list[CountingProxy] = []

    def make(target: str) -> CountingProxy:
        proxy = CountingProxy(target).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture(name="smtp_sink")
def smtp_sink_fixture() -> Iterator[SmtpSink]:
    """A plain SMTP server without log-in; `smtp_sink.settings()` / `.config_smtp()` reach it."""
    with SmtpSink() as sink:
        yield sink
