"""The CalDAV quiet-cycle probe: "did anything change?" in one request, standard library only.

Most sync cycles find nothing new. Asking costs one small request (the sync-collection REPORT
with the saved token, or a Depth-0 getctag PROPFIND), but doing it through the caldav library
means importing it, niquests and lxml first: about 150 ms of a ~0.4 s `homecal sync`, more than
the request itself. So the question is asked here with http.client and ElementTree, and the
caldav library is loaded only when the answer is "yes", or is anything but a plain "no".

A probe answers with the server's current token when it is sure nothing changed, and None in
every other case (changes listed, a redirect, an auth challenge, an unexpected status or body):
the caller then takes the full path, which handles all of those. Two kinds of failure are raised
for the caller to translate instead, because asking again at once would be wrong: OSError (the
network; socket.timeout included) and ServerRefused (429 or 5xx: the server is overloaded or
broken, and it may have said when to come back).
"""

from __future__ import annotations

import base64
import http.client
import os
from urllib.parse import urlsplit
from xml.etree import ElementTree
from html import escape  # xml.sax.saxutils would pull in urllib.request (~3 ms)

_D = "{DAV:}"
_CS = "{http://calendarserver.org/ns/}"

_SYNC_BODY = ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
              "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
              "<D:prop><D:getetag/></D:prop></D:sync-collection>")
_CTAG_BODY = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" '
              'xmlns:CS="http://calendarserver.org/ns/"><D:prop><CS:getctag/></D:prop></D:propfind>')


class ServerRefused(Exception):
    """The server answered 429 or 5xx."""

    def __init__(self, status: int, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class Probe:
    """Probes for one account: its login (sent pre-emptively as Basic) and timeout."""

    def __init__(self, username: str, password: str, timeout: float) -> None:
        self._auth = ("Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
                      if username or password else None)
        self.timeout = timeout

    def usable_for(self, url: str) -> bool:
        """False when a proxy from the environment applies: the full path honours it, this does not."""
        scheme = urlsplit(url).scheme
        return not any(os.environ.get(f"{name}_proxy") or os.environ.get(f"{name.upper()}_PROXY")
                       for name in (scheme, "all"))

    def unchanged_since_token(self, collection: str, token: str) -> str | None:
        """RFC 6578: the new sync token if the collection has no changes since `token`."""
        root = self._request(collection, "REPORT", _SYNC_BODY.format(token=escape(token)), depth="0")
        if root is None or root.find(f"{_D}response") is not None:
            return None
        new = root.findtext(f"{_D}sync-token")
        return new.strip() if new and new.strip() else None

    def unchanged_since_ctag(self, collection: str, ctag: str) -> str | None:
        """getctag: `ctag` again if the collection still has it."""
        root = self._request(collection, "PROPFIND", _CTAG_BODY, depth="0")
        if root is None:
            return None
        for propstat in root.iter(f"{_D}propstat"):
            if " 200 " not in f"{propstat.findtext(f'{_D}status') or ''} ":
                continue
            current = propstat.findtext(f"{_D}prop/{_CS}getctag")
            if current is not None and current.strip() == ctag:
                return ctag
        return None

    def _request(self, url: str, method: str, body: str, *, depth: str) -> ElementTree.Element | None:
        parts = urlsplit(url)
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(parts.hostname or "", parts.port, timeout=self.timeout)
        headers = {"Content-Type": "application/xml; charset=utf-8", "Depth": depth,
                   "User-Agent": "homecal"}
        if self._auth:
            headers["Authorization"] = self._auth
        try:
            conn.request(method, parts.path or "/", body=body.encode("utf-8"), headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 429 or resp.status >= 500:
                raise ServerRefused(resp.status, resp.getheader("Retry-After"))
            if resp.status != 207:
                return None
        finally:
            conn.close()
        try:
            root = ElementTree.fromstring(data)
        except ElementTree.ParseError:
            return None
        return root if root.tag == f"{_D}multistatus" else None
