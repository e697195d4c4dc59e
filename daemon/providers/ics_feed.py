"""Read-only provider for a published iCalendar feed (an .ics URL, webcal:// included).

A feed is one calendar ("feed") fetched whole with a conditional GET. Each UID in it is one
item (id = the UID, etag = sha256 of that UID's VCALENDAR text as split by
daemon.ical.split_feed), so the engine can diff feed objects like CalDAV ones and `known`
spares re-expanding unchanged events.

The cursor is an opaque JSON string holding the server's ETag, its Last-Modified and a
sha256 of the body: a 304, or a 200 with the same body, is "no change" (full=False, nothing
in it). Anything else is a full listing.

Safety rules, because an empty or partial result would make the engine delete clones:
an HTTP error, a timeout, a body over `max_bytes` or a body that is not iCalendar is a
ProviderError, never an empty calendar. The URL often carries a secret token, so messages
and logs name only its host, and the calendar id is the constant "feed".
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from urllib.parse import urlsplit

import requests

from daemon.errors import (
    AccessDenied,
    AuthError,
    InvalidCursor,
    NotFound,
    ProviderError,
    RateLimited,
)
from daemon.ical import MalformedEvent, instances_from_ical, split_feed
from daemon.models import (
    AccessMode,
    CalendarInfo,
    ChangeSet,
    Draft,
    EventRef,
    Item,
    Window,
)
from daemon.providers.base import Provider

log = logging.getLogger("homecal.ics")

REMOTE_ID = "feed"
_CHUNK = 64 * 1024
_CALNAME = re.compile(r"^X-WR-CALNAME[^:]*:(.*)$", re.IGNORECASE | re.MULTILINE)


class ICSFeedProvider(Provider):
    """One published calendar feed, read with conditional GETs."""

    kind = "ics"
    can_write = False
    incremental = False

    def __init__(self, *, url: str, mode: AccessMode, tz: tzinfo, timeout: float = 30,
                 max_bytes: int = 20_000_000):
        super().__init__(mode=mode, tz=tz)
        self.url = _http_url(url)
        self.host = urlsplit(self.url).hostname or "?"
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": "homecal (calendar feed reader)",
                                      "Accept": "text/calendar, */*;q=0.5"})

    # ------------------------------------------------------------------------ reading

    def list_calendars(self) -> list[CalendarInfo]:
        body, _ = self._fetch({})
        if body is None:  # cannot happen without validators; be explicit anyway
            raise ProviderError(f"ICS feed at {self.host} answered 304 to an unconditional request")
        self._parse(body)  # a URL that is not a feed must fail when it is linked, not later
        return [CalendarInfo(remote_id=REMOTE_ID, name=_calendar_name(body) or self.host, writable=False)]

    def changes(self, calendar_id: str, cursor: str | None, window: Window,
                known: Mapping[str, str | None] | None = None) -> ChangeSet:
        if calendar_id != REMOTE_ID:
            raise NotFound(f"ICS feed at {self.host} has only the calendar {REMOTE_ID!r}")
        state = _read_cursor(cursor)
        conditional = {}
        if state.get("etag"):
            conditional["If-None-Match"] = state["etag"]
        if state.get("modified"):
            conditional["If-Modified-Since"] = state["modified"]
        body, validators = self._fetch(conditional)
        if body is None:  # 304
            if cursor is None:
                raise ProviderError(f"ICS feed at {self.host} answered 304 to an unconditional request")
            return ChangeSet(items=[], removed=[], cursor=cursor, full=False)
        digest = hashlib.sha256(body).hexdigest()
        new_cursor = json.dumps({**validators, "sha256": digest}, sort_keys=True)
        if cursor is not None and state.get("sha256") == digest:
            # Many feed servers send no validators but the same bytes: still no change.
            return ChangeSet(items=[], removed=[], cursor=new_cursor, full=False)
        return self._listing(self._parse(body), new_cursor, window, known or {})

    def _listing(self, objects: dict[str, str], cursor: str, window: Window,
                 known: Mapping[str, str | None]) -> ChangeSet:
        items: list[Item] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        details = self.mode == AccessMode.READ_WRITE
        for uid, text in objects.items():
            etag = hashlib.sha256(text.encode()).hexdigest()
            if known.get(uid) == etag:
                unchanged.append(uid)
                continue
            try:
                instances = instances_from_ical(text, uid, window, self.tz, details=details)
            except MalformedEvent as err:
                # MalformedEvent messages never quote event text; the UID is only hashed,
                # since feed UIDs sometimes embed titles.
                log.warning("ICS feed at %s: skipped an unreadable event (uid sha %s): %s", self.host,
                            hashlib.sha256(uid.encode()).hexdigest()[:12], err)
                skipped.append(uid)
                continue
            items.append(Item(id=uid, etag=etag, instances=instances))
        return ChangeSet(items=items, removed=[], cursor=cursor, full=True, unchanged=unchanged, skipped=skipped)

    def _parse(self, body: bytes) -> dict[str, str]:
        try:
            return split_feed(body)
        except MalformedEvent as err:
            raise ProviderError(f"ICS feed at {self.host} is not a complete iCalendar file ({err})") from err

    # ------------------------------------------------------------------------ HTTP

    def _fetch(self, conditional: Mapping[str, str]) -> tuple[bytes | None, dict[str, str]]:
        """GET the feed: (body or None on 304, the validators to send next time)."""
        try:
            with self._session.get(self.url, headers=dict(conditional), timeout=self.timeout,
                                   stream=True) as resp:
                self._check_status(resp)
                validators = {k: v for k, v in (("etag", resp.headers.get("ETag")),
                                                ("modified", resp.headers.get("Last-Modified"))) if v}
                if resp.status_code == 304:
                    return None, validators
                return self._read_body(resp), validators
        except requests.exceptions.Timeout as err:
            raise ProviderError(f"ICS feed at {self.host} did not answer within {self.timeout:g} s") from err
        except requests.exceptions.RequestException as err:
            raise ProviderError(f"cannot fetch the ICS feed at {self.host}: {type(err).__name__}") from err

    def _check_status(self, resp: requests.Response) -> None:
        status = resp.status_code
        if status in (200, 203, 304):
            return
        if status in (401, 403):
            raise AuthError(f"ICS feed at {self.host} refused access (HTTP {status}): "
                            "the link may have been revoked; re-link it with its current URL")
        if status in (429, 503):
            raise RateLimited(f"ICS feed at {self.host} asks homecal to slow down (HTTP {status})",
                              retry_after=_retry_after(resp.headers.get("Retry-After")))
        raise ProviderError(f"ICS feed at {self.host} answered HTTP {status}")

    def _read_body(self, resp: requests.Response) -> bytes:
        """The whole body, refusing more than max_bytes and a transfer slower than timeout."""
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise ProviderError(self._too_big())
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        # decode_content: the limit applies to the decompressed size (no gzip bombs)
        for chunk in resp.iter_content(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise ProviderError(self._too_big())
            if time.monotonic() > deadline:
                raise ProviderError(f"ICS feed at {self.host} took longer than {self.timeout:g} s to download")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self) -> str:
        return f"ICS feed at {self.host} is larger than {self.max_bytes:,} bytes; refusing it"

    # ------------------------------------------------------------------------ writing

    def create(self, calendar_id: str, draft: Draft, key: str) -> EventRef:
        raise AccessDenied("ICS feeds are read-only")

    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        raise AccessDenied("ICS feeds are read-only")

    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        raise AccessDenied("ICS feeds are read-only")

    def close(self) -> None:
        self._session.close()


def _http_url(url: str) -> str:
    """webcal:// is a feed over https:// (the scheme only tells the OS which app to open)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if scheme.lower() in ("webcal", "webcals"):
        return "https://" + rest
    if not sep or scheme.lower() not in ("http", "https"):
        raise ProviderError("an ICS feed URL must start with https://, http:// or webcal://")
    return url


def _read_cursor(cursor: str | None) -> dict[str, str]:
    if cursor is None:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise InvalidCursor("not an ICS feed cursor")
    return {k: v for k, v in state.items() if isinstance(v, str)}


def _calendar_name(body: bytes) -> str | None:
    # Only the calendar's own properties, before the first component.
    head = body.split(b"BEGIN:V", 2)
    text = b"BEGIN:V".join(head[:2]).decode("utf-8", errors="replace") if len(head) > 1 else ""
    text = re.sub(r"\r?\n[ \t]", "", text)  # unfold (RFC 5545 3.1)
    m = _CALNAME.search(text)
    if not m:
        return None
    name = m.group(1).strip().replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
    return name or None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
