"""One lifecycle for every test server on loopback: listen on 127.0.0.1 and a free port, serve
from a daemon thread, stop cleanly, usable as a context manager.

- `LoopbackServer`: the lifecycle around any socketserver (`_make_server()` says which). The
  http.server-based FeedServer and CountingProxy (tests/servers.py) build on it.
- `WsgiLoopback`: a LoopbackServer for the subclass's `wsgi` app, served by werkzeug (threaded)
  without an access log. The Google, Graph and Microsoft sign-in fakes build on it.

A subclass learns its address in `_started(base_url)` (``http://127.0.0.1:<port>``, no slash)
and names its own public attributes (`url`, `endpoint`, ...) from it.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any, Self

from werkzeug.serving import WSGIRequestHandler, make_server

__all__ = ["LoopbackServer", "QuietHandler", "WsgiLoopback"]


class LoopbackServer:
    """Serves the socketserver from `_make_server()` on a daemon thread until `stop()`."""

    # Class-level defaults, not __init__: the fakes mix this in next to their own core classes,
    # whose __init__ does not chain to super().
    _server: socketserver.BaseServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> socketserver.BaseServer:
        """A server bound (and listening) on 127.0.0.1 and port 0."""
        raise NotImplementedError

    def _started(self, base_url: str) -> None:
        """Hook: the server now listens at `base_url`; set the public addresses from it."""

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    def start(self) -> Self:
        self._server = self._make_server()
        self._started(f"http://127.0.0.1:{self.port}")
        # A short poll interval so stop() returns at once; daemon so a forgotten stop never hangs exit.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class QuietHandler(WSGIRequestHandler):
    """No access log: the fakes' URLs carry authorization codes, delta tokens and event ids."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


class WsgiLoopback(LoopbackServer):
    """A LoopbackServer for the subclass's WSGI app (`wsgi`), one thread per request."""

    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        raise NotImplementedError

    def _make_server(self) -> socketserver.BaseServer:
        return make_server("127.0.0.1", 0, self.wsgi, threaded=True, request_handler=QuietHandler)
