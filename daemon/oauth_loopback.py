"""The loopback receiver for headless Google linking (`homecal account add google`).

Google sends the browser back to `http://127.0.0.1:PORT/?code=...&state=...` (provider-facts
§1.8: the loopback redirect of installed apps; the copy-and-paste flow is gone). On a server
without a browser the user opens an SSH tunnel from their laptop to this port, so the
laptop's browser reaches this receiver. It is a tiny http.server bound to 127.0.0.1 only, that
waits for ONE redirect whose state matches the flow it belongs to, answers the browser with a
short page, and hands the parameters back. Anything else (a wrong state, a stray request) gets
a plain refusal and the wait goes on. The request line carries the code, so nothing is logged.
"""

from __future__ import annotations

import html
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from daemon.errors import HomecalError, UsageError

#: the default port; a "Web application" OAuth client needs http://127.0.0.1:8765/ registered
DEFAULT_PORT = 8765
#: how long `homecal account add google` waits for the browser by default (seconds)
DEFAULT_TIMEOUT = 600
HOST = "127.0.0.1"


class LoopbackTimeout(HomecalError):
    """Nobody came back from Google in time."""


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>homecal</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def _page(title: str, text: str) -> bytes:
    return _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()


def _respond(params: dict[str, str], expected_state: str) -> tuple[int, bytes, bool]:
    """(status, page, accepted) for one request to the receiver."""
    if "state" not in params and "code" not in params and "error" not in params:
        return 404, _page("Nothing here", "homecal waits for Google's answer at this address, nothing else."), False
    if not secrets.compare_digest(params.get("state", ""), expected_state):
        return 400, _page("Not this linking", "This answer does not belong to the linking homecal is waiting for. "
                                              "Open the address homecal printed last, or run the command again."), False
    if params.get("error") == "access_denied":
        return 200, _page("Nothing was linked", "You declined access. You can close this tab."), True
    if params.get("error"):
        return 200, _page("Google refused", "Google refused the request; the terminal says more. "
                                            "You can close this tab."), True
    return 200, _page("homecal received Google's answer", "You can close this tab and go back to the terminal."), True


def _make_server(port: int) -> Any:
    """An HTTPServer on HOST:port whose `answer` is set by the first accepted redirect.

    http.server is imported here, not at module level: every `homecal` command imports the CLI
    parser, which needs this module's defaults only.
    """
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        #: a browser that connects and sends nothing must not hold the receiver forever
        timeout = 15

        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}
            status, body, accepted = _respond(params, self.server.expected_state)  # type: ignore[attr-defined]
            if accepted:
                self.server.answer = params  # type: ignore[attr-defined]
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            # The address holds the code: the page must not pass it on.
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            # The request line carries the code and state: never write it anywhere.
            return

    class Server(HTTPServer):
        expected_state = ""
        answer: dict[str, str] | None = None

    return Server((HOST, port), Handler)


class LoopbackReceiver:
    """`with LoopbackReceiver(port) as r:` ... `r.wait(state, timeout)` -> the redirect's parameters."""

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        try:
            self._server = _make_server(port)
        except OSError as err:
            raise UsageError(f"cannot listen on {HOST}:{port} ({err.strerror or err}): choose another port "
                             "with --port (0 picks a free one), and use that port in the ssh -L line") from None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def redirect_uri(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def wait(self, state: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
        """Serve requests until the redirect carrying `state` arrives; LoopbackTimeout after `timeout` s."""
        self._server.expected_state = state
        self._server.answer = None
        deadline = time.monotonic() + timeout
        while self._server.answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                minutes = f"{timeout / 60:g} minutes" if timeout >= 60 else f"{timeout:g} seconds"
                raise LoopbackTimeout(f"no answer from Google within {minutes}: nothing was linked; "
                                      "run the command again")
            self._server.timeout = left
            self._server.handle_request()
        return self._server.answer

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
