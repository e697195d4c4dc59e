"""What the sync tests of every provider share: times, a CalDAV side, the engine, linked accounts.

- `at`, `NOW`, `TODAY`, `BERLIN`: test times relative to today (UTC), the owner's zone.
- `vcal`: a one-event iCalendar body, as a CalDAV client would PUT it.
- `sync_env`: an owner's CalDAV account on the shared Radicale (calendars src, dst), a
  SyncEngine with a settable clock and `env.rule(src, dst, style, **options)`; the test's
  fixture adds its provider's accounts and calendars as attributes.
- `run`, `dav_instances`, `google_live`: run the engine; what a calendar holds afterwards.
- `save_linked`: store a linked account and list its calendars through `make_provider`, the
  path the daemon takes (tests/google_helpers.py and tests/graph_helpers.py use it).
- `closing_factory`: the provider tests' `make_provider` fixture body (providers closed after).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from daemon import linking
from daemon.config import Config
from daemon.ical import instances_from_ical
from daemon.models import AccessMode, Style, Window
from daemon.providers import make_provider
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.store.accounts import Account
from daemon.store.db import Store
from daemon.store.users import User
from daemon.sync.engine import SyncEngine
from daemon.sync.options import RuleOptions

__all__ = ["BERLIN", "NOW", "TODAY", "SyncEnv", "at", "closing_factory", "dav_instances", "google_live",
           "make_owner", "run", "save_linked", "sync_env", "vcal"]

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.now(UTC).replace(microsecond=0)
TODAY: date = NOW.date()


def at(days: int, hour: int, minute: int = 0) -> datetime:
    """`days` from today at hour:minute UTC."""
    return datetime.combine(TODAY + timedelta(days=days), datetime.min.time(), UTC).replace(hour=hour, minute=minute)


def vcal(uid: str, start: datetime, end: datetime, summary: str) -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
            f"DTEND:{end:%Y%m%dT%H%M%SZ}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def save_linked(store: Store, config: Config, user_id: int, kind: str, name: str, mode: AccessMode,
                secret: dict) -> Account:
    """Store an account as linking does and list its calendars (the provider built by `make_provider`)."""
    account = accounts.add(store, user_id, kind, name, mode, secret)
    provider = make_provider(store, config, account, UTC)
    try:
        accounts.save_calendars(store, account.id, provider.list_calendars())
    finally:
        provider.close()
    return accounts.get(store, account.id)


P = TypeVar("P")


def closing_factory(build: Callable[[AccessMode], P]) -> Iterator[Callable[[AccessMode], P]]:
    """Yields `make(mode)`, which builds a provider with `build` and keeps it; every one made is
    closed afterwards. A `make_provider` fixture is `yield from closing_factory(...)`."""
    made: list[Any] = []

    def make(mode: AccessMode) -> P:
        provider = build(mode)
        made.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in made:
            provider.close()


def make_owner(store: Store) -> User:
    """The admin who owns every account of a sync test; lives in Berlin."""
    owner = users.create(store, "owner", "correct horse battery", is_admin=True)
    users.set_timezone(store, owner.id, "Europe/Berlin")
    return owner


class SyncEnv:
    """A sync test's world; the fixture that builds it adds its provider's pieces as attributes."""

    store: Store
    cfg: Config
    owner: User
    radicale: Any
    dav_user: str
    dav_urls: dict[str, str]
    dav_cal: dict[str, Any]
    clock: dict[str, datetime]
    engine: SyncEngine

    def rule(self, src: Any, dst: Any, style: Style = Style.CLONE, **opts: Any) -> int:
        """A rule copying `src` into `dst`; returns its id."""
        return rules_repo.add(self.store, self.owner.id, [src.id], dst.id, RuleOptions(style=style, **opts)).id

    def put_dav(self, uid: str, start: datetime, end: datetime, summary: str) -> None:
        """Write one event (`<uid>.ics`) into the CalDAV calendar src, as a CalDAV client would."""
        self.radicale.put(self.dav_user, self.dav_urls["src"] + f"{uid}.ics", vcal(uid, start, end, summary))

    def delete_dav(self, uid: str) -> None:
        """Delete `<uid>.ics` from the CalDAV calendar src."""
        self.radicale.delete(self.dav_user, self.dav_urls["src"] + f"{uid}.ics")


def sync_env(store: Store, cfg: Config, owner: User, radicale: Any, dav_prefix: str) -> SyncEnv:
    """`owner`'s CalDAV account (calendars src and dst, a fresh Radicale user) and the engine."""
    e = SyncEnv()
    e.store, e.cfg, e.owner, e.radicale = store, cfg, owner, radicale
    e.dav_user = radicale.new_user(dav_prefix)
    e.dav_urls = {n: radicale.make_calendar(e.dav_user, n) for n in ("src", "dst")}
    dav, _ = linking.link(store, cfg, owner.id, "caldav", "dav", AccessMode.READ_WRITE,
                          linking.caldav_secret(radicale.url, e.dav_user, radicale.password(e.dav_user)))
    e.dav_cal = {n: next(c for c in accounts.calendars(store, dav.id) if c.remote_id.rstrip("/").endswith(n))
                 for n in ("src", "dst")}
    e.clock = {"now": datetime.now(UTC)}
    # the engine reads the time from env.clock, so a test can move it (reconciling listings, backoff)
    e.engine = SyncEngine(store, cfg, lambda account, tz: make_provider(store, cfg, account, tz),
                          now=lambda: e.clock["now"])
    return e


def run(env: SyncEnv, rounds: int = 1) -> list:
    """`rounds` engine runs; the last one's reports."""
    reports: list = []
    for _ in range(rounds):
        reports = env.engine.run()
    return reports


def dav_instances(env: SyncEnv, name: str) -> list:
    """The event instances in CalDAV calendar `name` within the sync window, as a CalDAV client reads them."""
    import caldav

    client = caldav.DAVClient(env.dav_urls[name], username=env.dav_user,
                              password=env.radicale.password(env.dav_user))
    window = Window.around(NOW, 1, 90)
    out = []
    for obj in client.calendar(url=env.dav_urls[name]).objects(load_objects=True):
        if obj.data:
            out += instances_from_ical(obj.data, str(obj.url), window, BERLIN)
    return out


def google_live(fake: Any, calendar_id: str) -> list[dict]:
    """What the user sees in a calendar of the Google fake: its events that are not cancelled."""
    return [e for e in fake.events(calendar_id) if e.get("status") != "cancelled"]
