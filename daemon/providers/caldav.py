"""CalDAV provider (RFC 4791 / RFC 6578): iCloud, Fastmail, Nextcloud, Radicale, ...

Built on the `caldav` library for the session, authentication, discovery (principal ->
calendar-home-set, including iCloud's partition hosts) and the sync-collection REPORT. The
requests whose exact headers matter (PUT with If-None-Match / If-Match, DELETE) and the
multistatus parsing are done here, so every status code is seen and translated at this
boundary into daemon.errors.

Conventions (see the contract in daemon.providers.base):

- Calendar ids and item ids are **absolute URLs**, normalized by `_norm` (lower-case scheme
  and host, no default port, path re-quoted the same way whoever wrote it). create/update/
  delete take exactly what `changes` reports, so the engine can compare them as strings.
- Cursors: ``sync:<token>`` (RFC 6578 sync-collection) or ``ctag:<getctag>`` (servers
  without sync-collection; ``ctag:`` alone when the server has no ctag either, meaning
  "always list"). The mode is picked on the first full listing and travels in the cursor.
- A no-change incremental call costs one request (the sync REPORT). Objects are downloaded
  with calendar-multiget, 100 per request, and only when their etag differs from `known`.
- Credentials are sent pre-emptively as Basic (what iCloud and nearly every server take),
  which saves the 401 round trip on every new session; a server that challenges with
  Digest only is retried once with the library's negotiation.
- Event text is private: it never appears in a log line or an exception message.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit
from html import escape  # xml.sax.saxutils would pull in urllib.request (~3 ms)

from daemon.errors import (
    AccessDenied,
    AuthError,
    HomecalError,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
    ProviderError,
    RateLimited,
)
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
from daemon.providers.dav_probe import Probe, ServerRefused

if TYPE_CHECKING:
    import caldav
    from caldav.response import DAVResponse

# The caldav library (with niquests and lxml) and icalendar are imported where they are used,
# not here: a quiet cycle needs neither (see dav_probe), and importing them is most of what a
# no-change `homecal sync` would otherwise cost.

log = logging.getLogger("homecal.caldav")

T = TypeVar("T")

SYNC_PREFIX = "sync:"
CTAG_PREFIX = "ctag:"
#: hrefs per calendar-multiget REPORT: big enough to be cheap, small enough for any server
MULTIGET_BATCH = 100
#: attempts at create-or-overwrite when the object keeps changing under us
_CREATE_ATTEMPTS = 3

_D = "{DAV:}"
_C = "{urn:ietf:params:xml:ns:caldav}"
_CS = "{http://calendarserver.org/ns/}"
_ICAL = "{http://apple.com/ns/ical/}"
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/" ' \
      'xmlns:I="http://apple.com/ns/ical/"'

_CALENDAR_PROPS = f"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind {_NS}><D:prop>
<D:resourcetype/><D:displayname/><I:calendar-color/><C:supported-calendar-component-set/>
<D:current-user-privilege-set/><C:calendar-timezone/>
</D:prop></D:propfind>"""

_LISTING_PROPS = f"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind {_NS}><D:prop><D:resourcetype/><D:getetag/><CS:getctag/></D:prop></D:propfind>"""

_CTAG_PROPS = f"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind {_NS}><D:prop><CS:getctag/></D:prop></D:propfind>"""

_ETAG_PROPS = f"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind {_NS}><D:prop><D:getetag/></D:prop></D:propfind>"""

_WRITE_PRIVILEGES = {f"{_D}write", f"{_D}write-content", f"{_D}all", f"{_D}bind"}
_OK = (200, 201, 204)
_COLOR = re.compile(r"#([0-9A-Fa-f]{6})([0-9A-Fa-f]{2})?")


class _SyncUnsupported(Exception):
    """sync-collection cannot give a complete listing here: use the ctag/etag mode."""


@dataclass
class _Response:
    """One <D:response> of a multistatus: absolute normalized href, its 2xx props, status."""

    href: str
    props: dict = field(default_factory=dict)  # Clark tag -> lxml element
    status: int | None = None

    def text(self, tag: str) -> str | None:
        el = self.props.get(tag)
        return el.text.strip() if el is not None and el.text and el.text.strip() else None

    @property
    def is_collection(self) -> bool:
        rt = self.props.get(f"{_D}resourcetype")
        return rt is not None and rt.find(f"{_D}collection") is not None

    @property
    def is_calendar(self) -> bool:
        rt = self.props.get(f"{_D}resourcetype")
        return rt is not None and rt.find(f"{_C}calendar") is not None


@dataclass
class _Listing:
    """What the server says exists (full) or changed (incremental), before any download."""

    etags: dict[str, str | None]  # href -> etag
    removed: list[str]
    cursor: str
    full: bool


class CalDAVProvider(Provider):
    """One CalDAV account (a server URL, or one calendar's URL, plus a login)."""

    kind = "caldav"
    can_write = True
    incremental = True

    def __init__(self, *, url: str, username: str, password: str, mode: AccessMode, tz: tzinfo,
                 owner_emails: Collection[str] = (), timeout: float = 30, use_sync_collection: bool = True):
        super().__init__(mode=mode, tz=tz)
        if "://" not in url:
            url = "https://" + url
        self.url = _norm(url)
        self.username = username
        self.host = urlsplit(self.url).hostname or self.url
        self.owner_emails = tuple(owner_emails)
        self.timeout = timeout
        #: False forces the ctag/etag mode (servers without RFC 6578, and its tests)
        self.use_sync_collection = use_sync_collection
        self._preemptive = bool(username or password)
        self._challenge: str | None = None
        self._login = (username, password)
        self._probe = Probe(username, password, timeout)

    @functools.cached_property
    def _client(self) -> caldav.DAVClient:
        import caldav

        username, password = self._login
        client = caldav.DAVClient(
            url=self.url, username=username or None, password=password or None,
            auth_type="basic" if self._preemptive else None, timeout=self.timeout,
            # The engine owns retries and backoff; the library must not sleep in a sync cycle.
            rate_limit_handle=False,
            # No DNS SRV/TXT lookups behind the user's back: the URL is what they gave.
            enable_rfc6764=False)
        client.session.hooks["response"].append(self._remember_challenge)
        return client

    # ------------------------------------------------------------------------ discovery

    def list_calendars(self) -> list[CalendarInfo]:
        return self._guard("calendar discovery", self._discover)

    def _discover(self) -> list[CalendarInfo]:
        # A calendar's own URL is a valid account URL too (e.g. one shared calendar).
        own = self._propfind(self.url, _CALENDAR_PROPS, depth=0, tolerate=True)
        if own and own[0].is_calendar:
            info = self._calendar_info(own[0])
            return [info] if info else []
        home = self._client.principal().calendar_home_set
        home_url = _collection(str(home.url))
        infos = [self._calendar_info(r) for r in self._propfind(home_url, _CALENDAR_PROPS, depth=1)
                 if r.is_calendar and r.href != home_url]
        return [i for i in infos if i is not None]

    def _calendar_info(self, r: _Response) -> CalendarInfo | None:
        components = r.props.get(f"{_C}supported-calendar-component-set")
        if components is not None:
            names = {c.get("name", "").upper() for c in components.iter(f"{_C}comp")}
            if names and "VEVENT" not in names:
                return None  # a task list or journal: nothing homecal can sync
        privileges = r.props.get(f"{_D}current-user-privilege-set")
        writable = True
        if privileges is not None:
            granted = {p.tag for priv in privileges.iter(f"{_D}privilege") for p in priv}
            writable = bool(granted & _WRITE_PRIVILEGES)
        name = r.text(f"{_D}displayname") or unquote(r.href.rstrip("/").rsplit("/", 1)[-1])
        tz_text = r.text(f"{_C}calendar-timezone") or ""
        tz_match = re.search(r"^TZID:(.+?)\s*$", tz_text, re.MULTILINE)
        return CalendarInfo(remote_id=_collection(r.href), name=name,
                            color=_color(r.text(f"{_ICAL}calendar-color")), writable=writable,
                            timezone=tz_match.group(1) if tz_match else None)

    # ------------------------------------------------------------------------ reading

    def changes(self, calendar_id: str, cursor: str | None, window: Window,
                known: Mapping[str, str | None] | None = None) -> ChangeSet:
        cal = _collection(calendar_id)
        return self._guard(f"listing of {cal}", lambda: self._changes(cal, cursor, window, known or {}))

    def _changes(self, cal: str, cursor: str | None, window: Window,
                 known: Mapping[str, str | None]) -> ChangeSet:
        if cursor is None:
            listing = None
            if self.use_sync_collection:
                try:
                    listing = self._sync_listing(cal, None)
                except _SyncUnsupported:
                    log.info("%s: no usable sync-collection, using ctag/etag listings", cal)
            if listing is None:
                listing = self._ctag_listing(cal, None)
        elif cursor.startswith(SYNC_PREFIX) and self.use_sync_collection:
            token = cursor[len(SYNC_PREFIX):]
            quiet = self._quietly(cal, lambda: self._probe.unchanged_since_token(cal, token))
            if quiet is not None and not quiet.startswith("fake-"):
                return ChangeSet(items=[], removed=[], cursor=SYNC_PREFIX + quiet, full=False)
            try:
                listing = self._sync_listing(cal, token)
            except _SyncUnsupported as err:
                raise InvalidCursor(f"{cal}: the server no longer honours its sync token") from err
        elif cursor.startswith(CTAG_PREFIX):
            listing = self._ctag_listing(cal, cursor[len(CTAG_PREFIX):])
        else:
            raise InvalidCursor(f"{cal}: not a CalDAV cursor of this account")
        return self._assemble(cal, listing, window, known)

    def _quietly(self, cal: str, probe: Callable[[], str | None]) -> str | None:
        """Run a dav_probe question: its answer, or None when the full path must decide."""
        if self._challenge is not None or not self._probe.usable_for(cal):
            return None  # negotiated auth or a proxy: only the library does those
        try:
            return probe()
        except ServerRefused as err:
            raise self._status_error(err.status, f"listing of {cal}",
                                     headers={"Retry-After": err.retry_after} if err.retry_after else None) from err
        except TimeoutError as err:  # socket.timeout is TimeoutError since 3.10
            raise ProviderError(f"CalDAV server {self.host} did not answer within {self.timeout:g} s "
                                f"(listing of {cal})") from err
        except OSError as err:
            raise ProviderError(f"cannot reach CalDAV server {self.host} (listing of {cal}): "
                                f"{type(err).__name__}") from err
        except Exception as err:  # http.client protocol errors: let the full path look again
            log.debug("quiet probe of %s failed with %s; taking the full path", cal, type(err).__name__)
            return None

    def _sync_listing(self, cal: str, token: str | None) -> _Listing:
        """RFC 6578: every member (token None) or what changed since `token`."""
        import caldav
        from caldav.lib import error as dav_error

        if token is not None and token.startswith("fake-"):
            # The library's own stand-in token: it would silently list everything.
            raise InvalidCursor(f"{cal}: not a server sync token")
        calendar = caldav.Calendar(client=self._client, url=cal)
        try:
            coll = calendar.get_objects_by_sync_token(sync_token=token, load_objects=False,
                                                      disable_fallback=True)
        except dav_error.DAVError as err:
            status = err.status
            if isinstance(err, dav_error.RateLimitError) or status in (401, 404, 410, 429, 502, 503, 504):
                raise  # not about the token: translated by _guard
            if token is None:
                raise _SyncUnsupported(f"HTTP {status}") from err
            if status is not None and status >= 500:
                raise
            # 403 valid-sync-token, or any other refusal of the token itself
            raise InvalidCursor(f"{cal}: the server rejected the sync token (HTTP {status})") from err
        new_token = coll.sync_token
        if not new_token or str(new_token).startswith("fake-"):
            if token is None:
                raise _SyncUnsupported("no sync token")
            raise InvalidCursor(f"{cal}: the server answered without a sync token")
        if coll.truncated and token is None:
            # An incomplete first listing would make the engine take the rest as deleted.
            raise _SyncUnsupported("truncated")
        deleted = {_norm(str(u)) for u in coll.deleted_urls}
        etags: dict[str, str | None] = {}
        for obj in coll.objects:
            href = _norm(str(obj.url))
            if href in deleted or href.endswith("/"):
                continue
            etags[href] = obj.props.get(f"{_D}getetag")
        return _Listing(etags, sorted(deleted), SYNC_PREFIX + str(new_token), full=token is None)

    def _ctag_listing(self, cal: str, ctag: str | None) -> _Listing:
        """getctag probe, then a Depth-1 PROPFIND of every member's etag when it moved."""
        if ctag:
            if self._quietly(cal, lambda: self._probe.unchanged_since_ctag(cal, ctag)) == ctag:
                return _Listing({}, [], CTAG_PREFIX + ctag, full=False)
            probe = self._propfind(cal, _CTAG_PROPS, depth=0)
            current = probe[0].text(f"{_CS}getctag") if probe else None
            if current == ctag:
                return _Listing({}, [], CTAG_PREFIX + ctag, full=False)
        new_ctag = ""
        etags: dict[str, str | None] = {}
        for r in self._propfind(cal, _LISTING_PROPS, depth=1):
            if r.href.rstrip("/") == cal.rstrip("/"):
                # Read in the same answer as the etags, so a change made meanwhile moves
                # the ctag again and is seen next time.
                new_ctag = r.text(f"{_CS}getctag") or ""
            elif not r.is_collection and (r.status is None or 200 <= r.status < 300):
                etags[r.href] = r.text(f"{_D}getetag")
        return _Listing(etags, [], CTAG_PREFIX + new_ctag, full=True)

    def _assemble(self, cal: str, listing: _Listing, window: Window,
                  known: Mapping[str, str | None]) -> ChangeSet:
        unchanged = [h for h, e in listing.etags.items() if e is not None and known.get(h) == e]
        skip = set(unchanged)
        wanted = [h for h in listing.etags if h not in skip]
        found, gone = self._multiget(cal, wanted)
        if found:  # parsing needs icalendar; a quiet answer should not pay for importing it
            from daemon.ical import MalformedEvent, instances_from_ical
        items: list[Item] = []
        removed = list(listing.removed)
        skipped: list[str] = []
        details = self.mode == AccessMode.READ_WRITE
        for href in wanted:
            if href in gone:
                # deleted between the listing and the download; a full listing just omits it
                if not listing.full:
                    removed.append(href)
                continue
            if href not in found:
                log.warning("%s: the server did not send object %s; left as it was", cal, href)
                skipped.append(href)
                continue
            etag, data = found[href]
            try:
                instances = instances_from_ical(data, href, window, self.tz, details=details,
                                                owner_emails=self.owner_emails)
            except MalformedEvent as err:
                # MalformedEvent messages never quote event text, so this line is safe to log.
                log.warning("%s: skipped unreadable object %s: %s", cal, href, err)
                skipped.append(href)
                continue
            items.append(Item(id=href, etag=etag or listing.etags[href], instances=instances))
        return ChangeSet(items=items, removed=removed, cursor=listing.cursor, full=listing.full,
                         unchanged=unchanged, skipped=skipped)

    def _multiget(self, cal: str, hrefs: list[str]) -> tuple[dict[str, tuple[str | None, str]], set[str]]:
        """calendar-multiget: {href: (etag, data)} for what came back, and the hrefs now 404."""
        found: dict[str, tuple[str | None, str]] = {}
        gone: set[str] = set()
        for i in range(0, len(hrefs), MULTIGET_BATCH):
            batch = hrefs[i:i + MULTIGET_BATCH]
            body = (f'<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget {_NS}>'
                    f"<D:prop><D:getetag/><C:calendar-data/></D:prop>"
                    + "".join(f"<D:href>{escape(urlsplit(h).path)}</D:href>" for h in batch)
                    + "</C:calendar-multiget>")
            for r in self._multistatus(cal, "REPORT", body, depth=None):
                data = r.text(f"{_C}calendar-data")
                if data is not None:
                    found[r.href] = (r.text(f"{_D}getetag"), data)
                elif r.status in (404, 410):
                    gone.add(r.href)
        return found, gone

    # ------------------------------------------------------------------------ writing

    def create(self, calendar_id: str, draft: Draft, key: str) -> EventRef:
        from daemon.ical import draft_to_ical

        cal = _collection(calendar_id)
        uid = f"homecal-{key}"
        body = draft_to_ical(draft, uid, key, tz=self.tz)
        href = cal + quote(uid, safe="") + ".ics"
        return self._guard(f"create in {cal}", lambda: self._create(cal, href, uid, body), write=True)

    def _create(self, cal: str, href: str, uid: str, body: str) -> EventRef:
        # Never If-Match: * (Radicale takes it literally, iCloud inverts it): overwrite only
        # with the etag just read, and start over if the object moves meanwhile.
        for _ in range(_CREATE_ATTEMPTS):
            status, headers = self._put(href, body, {"If-None-Match": "*"})
            if status in _OK:
                return EventRef(cal, href, self._etag_after_put(href, headers))
            if status == 412:  # already there: a retried or crashed earlier create
                etag = self._etag_of(href)
            elif status == 409:  # the UID lives at another href (moved by a client?)
                href, etag = self._find_uid(cal, uid) or (href, None)
            else:
                raise self._status_error(status, f"create of {href}", headers=headers, write=True)
            if etag is None:
                continue  # gone again before we could overwrite it
            status, headers = self._put(href, body, {"If-Match": etag})
            if status in _OK:
                return EventRef(cal, href, self._etag_after_put(href, headers))
            if status not in (404, 412):
                raise self._status_error(status, f"overwrite of {href}", headers=headers, write=True)
        raise PreconditionFailed(f"{href} kept changing while homecal wrote it; retried {_CREATE_ATTEMPTS} times")

    def update(self, ref: EventRef, draft: Draft, key: str) -> EventRef:
        from daemon.ical import draft_to_ical

        href = _norm(ref.id)
        body = draft_to_ical(draft, f"homecal-{key}", key, tz=self.tz)
        return self._guard(f"update of {href}", lambda: self._update(ref, href, body), write=True)

    def _update(self, ref: EventRef, href: str, body: str) -> EventRef:
        status, headers = self._put(href, body, {"If-Match": ref.etag} if ref.etag else {})
        if status in _OK:
            return EventRef(ref.calendar_id, href, self._etag_after_put(href, headers))
        if status == 412 and self._etag_of(href) is None:
            # If-Match on a missing object is a 412 too (RFC 9110); say what really happened.
            raise NotFound(f"{href} is gone")
        raise self._status_error(status, f"update of {href}", headers=headers, write=True)

    def delete(self, ref: EventRef, *, notify: bool = False) -> None:
        href = _norm(ref.id)
        self._guard(f"delete of {href}", lambda: self._delete(href), write=True)

    def _delete(self, href: str) -> None:
        resp = self._client.request(href, "DELETE", "")
        if resp.status in _OK or resp.status in (404, 410):
            return
        raise self._status_error(resp.status, f"delete of {href}", headers=resp.headers, write=True)

    def _put(self, href: str, body: str, headers: Mapping[str, str]) -> tuple[int, Mapping[str, str]]:
        """PUT our own text as it is (no SEQUENCE bump, no library rewriting)."""
        from caldav.lib import error as dav_error

        try:
            resp = self._client.request(href, "PUT", body, {"Content-Type": "text/calendar; charset=utf-8",
                                                             **headers})
        except dav_error.AuthorizationError as err:
            # Cyrus refuses a duplicate UID with 403 no-uid-conflict: a conflict, not a permission.
            if err.status == 403 and set(err.preconditions) & dav_error.UID_CONFLICT_PRECONDITIONS:
                return 409, {}
            raise
        if resp.status == 403 and set(dav_error.parse_preconditions(resp._raw)) & dav_error.UID_CONFLICT_PRECONDITIONS:
            return 409, resp.headers
        return resp.status, resp.headers

    def _etag_after_put(self, href: str, headers: Mapping[str, str]) -> str | None:
        # A server that changed what we sent must not return a strong ETag (RFC 4791 5.3.4);
        # then (or when it sends none) read the etag the object really has.
        etag = headers.get("ETag") if headers else None
        if etag and not etag.startswith("W/"):
            return etag
        return self._etag_of(href)

    def _etag_of(self, href: str) -> str | None:
        """The current etag of one object, None if it does not exist."""
        resp = self._client.request(href, "PROPFIND", _ETAG_PROPS, {"Depth": "0"})
        if resp.status in (404, 410):
            return None
        rs = self._check_multistatus(resp, href, f"etag of {href}")
        return rs[0].text(f"{_D}getetag") if rs else None

    def _find_uid(self, cal: str, uid: str) -> tuple[str, str | None] | None:
        """The href (and etag) of the object with this UID, via calendar-query."""
        body = (f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query {_NS}>'
                "<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name=\"VCALENDAR\">"
                "<C:comp-filter name=\"VEVENT\"><C:prop-filter name=\"UID\">"
                f'<C:text-match collation="i;octet">{escape(uid)}</C:text-match>'
                "</C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")
        for r in self._multistatus(cal, "REPORT", body, depth=1):
            if r.href != cal and not r.href.endswith("/"):
                return r.href, r.text(f"{_D}getetag")
        return None

    # ------------------------------------------------------------------------ HTTP plumbing

    def _propfind(self, url: str, body: str, *, depth: int, tolerate: bool = False) -> list[_Response]:
        """PROPFIND; with `tolerate`, a "not here" answer yields [] (used for probing)."""
        if tolerate:
            resp = self._client.request(url, "PROPFIND", body, {"Depth": str(depth)})
            if resp.status in (400, 403, 404, 405, 409, 501):
                return []
            return self._check_multistatus(resp, url, "PROPFIND")
        return self._multistatus(url, "PROPFIND", body, depth=depth)

    def _multistatus(self, url: str, method: str, body: str, *, depth: int | None) -> list[_Response]:
        headers = {"Depth": str(depth)} if depth is not None else {}
        resp = self._client.request(url, method, body, headers)
        return self._check_multistatus(resp, url, f"{method} {url}")

    def _check_multistatus(self, resp: DAVResponse, url: str, what: str) -> list[_Response]:
        if resp.status != 207:
            raise self._status_error(resp.status, what, headers=resp.headers)
        tree = resp.tree
        if tree is None or tree.tag != f"{_D}multistatus":
            raise ProviderError(f"CalDAV {what} on {self.host}: the answer is not a multistatus")
        return _parse_multistatus(tree, url)

    def _remember_challenge(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Session hook: keep the last 401 challenge, to tell Digest-only servers apart."""
        if getattr(response, "status_code", None) == 401:
            self._challenge = response.headers.get("WWW-Authenticate")
        return response

    def _fall_back_to_negotiation(self) -> bool:
        """After a 401 to pre-emptive Basic: retry with negotiation if Basic was not offered."""
        challenge = (self._challenge or "").lower()
        if not self._preemptive or not challenge or "basic" in challenge:
            return False
        log.info("%s does not take Basic auth; negotiating (%s)", self.host, challenge.split()[0])
        self._preemptive = False
        self._client.auth = None
        self._client.auth_type = None
        return True

    def _guard(self, what: str, fn: Callable[[], T], *, write: bool = False) -> T:
        """Run `fn`, translating every library, HTTP and network failure into daemon.errors."""
        for attempt in (1, 2):
            try:
                return fn()
            except HomecalError:
                raise
            except Exception as err:
                from caldav.lib import error as dav_error

                if (isinstance(err, dav_error.AuthorizationError) and err.status == 401 and attempt == 1
                        and self._fall_back_to_negotiation()):
                    continue
                raise self._translate(err, what, write) from err
        raise AssertionError("unreachable")

    def _translate(self, err: Exception, what: str, write: bool) -> HomecalError:
        from caldav.lib import error as dav_error
        from caldav.lib.http_sync import requests as _http

        if isinstance(err, dav_error.RateLimitError):
            return RateLimited(f"CalDAV server {self.host} asks homecal to slow down ({what})",
                               retry_after=err.retry_after_seconds)
        if isinstance(err, dav_error.NotFoundError) and err.status is None:
            return NotFound(f"CalDAV {what}: not found on {self.host}")
        if isinstance(err, dav_error.DAVError) and err.status is not None:
            return self._status_error(err.status, what, write=write)
        if isinstance(err, _http.exceptions.Timeout):
            return ProviderError(f"CalDAV server {self.host} did not answer within {self.timeout:g} s ({what})")
        if isinstance(err, (_http.exceptions.RequestException, OSError)):
            return ProviderError(f"cannot reach CalDAV server {self.host} ({what}): {type(err).__name__}")
        # The message may quote the server's answer (event text): name the type only.
        log.debug("CalDAV %s on %s failed with %s", what, self.host, type(err).__name__)
        return ProviderError(f"CalDAV {what} on {self.host} failed: unexpected answer ({type(err).__name__})")

    def _status_error(self, status: int, what: str, *, headers: Mapping[str, str] | None = None,
                      write: bool = False) -> HomecalError:
        if status == 401:
            return AuthError(f"CalDAV login refused for {self.username}@{self.host}: check the password "
                             "(iCloud needs an app-specific password)")
        if status == 403:
            if write:
                return AccessDenied(f"CalDAV server {self.host} refused the {what}: "
                                    f"the calendar is read-only for {self.username}")
            return ProviderError(f"CalDAV server {self.host} refused the {what} (HTTP 403)")
        if status in (404, 410):
            return NotFound(f"CalDAV {what}: not found on {self.host}")
        if status == 412:
            return PreconditionFailed(f"CalDAV {what}: the object changed meanwhile")
        if status in (429, 503):
            raw = (headers or {}).get("Retry-After")
            return RateLimited(f"CalDAV server {self.host} asks homecal to slow down ({what}, HTTP {status})",
                               retry_after=_retry_after(raw))
        return ProviderError(f"CalDAV {what} failed on {self.host}: HTTP {status}")

    def close(self) -> None:
        if "_client" in self.__dict__:  # never built when every question was a quiet probe
            self._client.close()


# ---------------------------------------------------------------------------- helpers


def _norm(url: str) -> str:
    """The one spelling of a URL used for ids: lower-case scheme/host, no default port,
    no credentials, query or fragment, and the path re-quoted (%40 and @ are the same)."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "https").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    path = quote(unquote(parts.path or "/"), safe="/@:!$&'()*+,;=~-._")
    return urlunsplit((scheme, netloc, path, "", ""))


def _collection(url: str) -> str:
    """A collection URL, normalized and with its trailing slash."""
    url = _norm(url)
    return url if url.endswith("/") else url + "/"


def _color(value: str | None) -> str | None:
    """Apple's calendar-color (#RRGGBB or #RRGGBBAA) as #RRGGBB; anything else as unknown."""
    m = _COLOR.fullmatch(value.strip()) if value else None
    return f"#{m.group(1).upper()}" if m else None


def _status_code(text: str | None) -> int | None:
    """'HTTP/1.1 404 Not Found' -> 404."""
    parts = (text or "").split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def _retry_after(raw: str | None) -> float | None:
    from caldav.lib import error as dav_error

    return dav_error.parse_retry_after(raw) if raw else None


def _parse_multistatus(tree: Any, base: str) -> list[_Response]:
    out: list[_Response] = []
    for resp in tree.iterchildren(f"{_D}response"):
        href = resp.findtext(f"{_D}href")
        if not href or not href.strip():
            continue
        r = _Response(_norm(urljoin(base, href.strip())), status=_status_code(resp.findtext(f"{_D}status")))
        for propstat in resp.iterchildren(f"{_D}propstat"):
            code = _status_code(propstat.findtext(f"{_D}status"))
            prop = propstat.find(f"{_D}prop")
            if prop is not None and (code is None or 200 <= code < 300):
                r.props.update({p.tag: p for p in prop})
        out.append(r)
    return out
