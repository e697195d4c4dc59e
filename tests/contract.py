"""The provider contract, as tests every provider's test module runs against a real backend.

Subclass `ProviderContract` in a test module (its name must start with ``Test``) and supply
these fixtures, each using the backend's own means (not the provider under test):

- ``make_provider``: a callable ``(mode: AccessMode) -> Provider`` for the account that owns
  the calendar; the fixture closes what it made.
- ``calendar_id``: the remote id of an empty calendar of that account, fresh per test.
- ``put_source``: ``(calendar_id, ics_text) -> item_id`` creates or replaces (same UID) a
  source event; returns the id `changes` will report for it.
- ``delete_source``: ``(calendar_id, item_id) -> None``.
- ``put_malformed``: ``(calendar_id, secret) -> item_id`` seeds one object the provider can
  list but not understand, with `secret` somewhere in its text (it must never be logged).
- ``invalid_cursor``: a cursor the backend rejects (``None`` for non-incremental providers).

Which tests apply follows the provider's own `can_write` and `incremental`. Everything here
is backend-neutral: event times are UTC or all-day, keys are base32hex (Google's event-id
alphabet), and changes are judged the way the engine judges them (`Mirror`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.errors import AccessDenied, InvalidCursor, NotFound, PreconditionFailed
from daemon.models import AccessMode, ChangeSet, Draft, EventRef, Instance, Window
from daemon.providers.base import Provider

TZ = ZoneInfo("Europe/Berlin")
#: fixed, so the tests do not depend on today's date
WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


def event_ics(uid: str, start: datetime | date, end: datetime | date, summary: str = "Busy", *,
              description: str | None = None, location: str | None = None, extra: str = "") -> str:
    """A one-event VCALENDAR: UTC times (no VTIMEZONE needed anywhere) or all-day dates."""

    def value(name: str, v: datetime | date) -> str:
        if isinstance(v, datetime):
            return f"{name}:{v.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return f"{name};VALUE=DATE:{v:%Y%m%d}"

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//homecal tests//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20260101T000000Z", value("DTSTART", start), value("DTEND", end),
             f"SUMMARY:{summary}"]
    if description:
        lines.append(f"DESCRIPTION:{description}")
    if location:
        lines.append(f"LOCATION:{location}")
    lines += [line for line in extra.splitlines() if line]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def new_key() -> str:
    """A fresh idempotency key in base32hex (a-v, 0-9), like daemon.sync.plan.idem_key."""
    return uuid.uuid4().hex[:26]


def draft(summary: str = "Clone", day: int = 12, hour: int = 9) -> Draft:
    start = datetime(2026, 3, day, hour, tzinfo=TZ)
    return Draft(kind="clone", summary=summary, start=start, end=start + timedelta(hours=1),
                 description="made by the contract tests", location="Room 1")


@dataclass
class Mirror:
    """The caller's view of a calendar, updated from ChangeSets the way the engine does."""

    etags: dict[str, str | None] = field(default_factory=dict)
    instances: dict[str, list[Instance]] = field(default_factory=dict)
    cursor: str | None = None

    def apply(self, cs: ChangeSet) -> tuple[set[str], set[str]]:
        """Take in one ChangeSet; returns (ids added or changed, ids removed)."""
        upserted = {item.id for item in cs.items}
        assert not upserted & set(cs.unchanged), "an object is both changed and unchanged"
        assert not set(cs.skipped) & set(cs.removed), "a skipped object must never be taken as removed"
        if cs.full:
            present = upserted | set(cs.unchanged) | set(cs.skipped)
            removed = set(self.etags) - present
        else:
            removed = set(cs.removed)
        for item in cs.items:
            self.etags[item.id] = item.etag
            self.instances[item.id] = item.instances
        for item_id in removed:
            self.etags.pop(item_id, None)
            self.instances.pop(item_id, None)
        self.cursor = cs.cursor
        return upserted, removed

    def all_instances(self) -> list[Instance]:
        return [inst for insts in self.instances.values() for inst in insts]


class ProviderContract:
    """Contract tests; a subclass supplies the fixtures listed in the module docstring."""

    # -- helpers --------------------------------------------------------------------------

    @pytest.fixture
    def provider(self, make_provider: Callable[[AccessMode], Provider]) -> Provider:
        return make_provider(AccessMode.READ_WRITE)

    @staticmethod
    def full(provider: Provider, calendar_id: str, mirror: Mirror | None = None) -> Mirror:
        """A full listing into a (new) mirror."""
        mirror = mirror or Mirror()
        cs = provider.changes(calendar_id, None, WINDOW, dict(mirror.etags) or None)
        assert cs.full, "a listing without a cursor is a full listing"
        assert cs.cursor is not None, "a full listing hands out a cursor for the next call"
        mirror.apply(cs)
        return mirror

    @staticmethod
    def step(provider: Provider, calendar_id: str, mirror: Mirror) -> tuple[ChangeSet, set[str], set[str]]:
        """The next call with the saved cursor (and `known`, as the engine passes it)."""
        # Whether the answer is a delta (full=False) or a listing diffed against `known`
        # (CalDAV's ctag mode, ICS feeds) is the provider's business; the effect is the same.
        cs = provider.changes(calendar_id, mirror.cursor, WINDOW, dict(mirror.etags))
        upserted, removed = mirror.apply(cs)
        return cs, upserted, removed

    @staticmethod
    def by_uid(mirror: Mirror, uid: str) -> list[Instance]:
        return [i for i in mirror.all_instances() if i.uid == uid]

    @staticmethod
    def uid() -> str:
        return f"src-{uuid.uuid4().hex[:12]}"

    # -- listing --------------------------------------------------------------------------

    def test_list_calendars_returns_the_calendar(self, provider, calendar_id):
        infos = {c.remote_id: c for c in provider.list_calendars()}
        assert calendar_id in infos
        assert infos[calendar_id].name
        assert infos[calendar_id].writable == provider.can_write

    def test_full_listing_returns_seeded_events_with_their_times(self, provider, calendar_id, put_source):
        timed, allday = self.uid(), self.uid()
        start = datetime(2026, 3, 10, 8, 30, tzinfo=UTC)
        timed_id = put_source(calendar_id, event_ics(timed, start, start + timedelta(minutes=45), "Standup",
                                                     description="notes", location="Room 2"))
        allday_id = put_source(calendar_id, event_ics(allday, date(2026, 3, 20), date(2026, 3, 22), "Trip"))
        outside = put_source(calendar_id, event_ics(self.uid(), datetime(2027, 1, 5, 9, tzinfo=UTC),
                                                    datetime(2027, 1, 5, 10, tzinfo=UTC)))
        mirror = self.full(provider, calendar_id)

        assert {timed_id, allday_id} <= set(mirror.etags)
        (t,) = self.by_uid(mirror, timed)
        assert t.item_id == timed_id and not t.all_day and not t.is_partner
        assert t.utc_bounds(TZ) == (start, start + timedelta(minutes=45))
        assert (t.summary, t.description, t.location) == ("Standup", "notes", "Room 2")
        (a,) = self.by_uid(mirror, allday)
        assert a.all_day and (a.start, a.end) == (date(2026, 3, 20), date(2026, 3, 22))
        # outside the window: still an object (so never taken as deleted), without instances
        assert mirror.instances.get(outside, []) == []

    def test_known_etags_are_reported_unchanged_not_downloaded(self, provider, calendar_id, put_source):
        ids = {put_source(calendar_id, event_ics(self.uid(), datetime(2026, 3, d, 9, tzinfo=UTC),
                                                 datetime(2026, 3, d, 10, tzinfo=UTC))) for d in (3, 4)}
        first = self.full(provider, calendar_id)
        cs = provider.changes(calendar_id, None, WINDOW, dict(first.etags))
        assert cs.full and cs.items == [] and set(cs.unchanged) == ids

    def test_busy_is_computed_from_events(self, provider, calendar_id, put_source):
        start = datetime(2026, 3, 16, 13, tzinfo=UTC)
        put_source(calendar_id, event_ics(self.uid(), start, start + timedelta(hours=2)))
        put_source(calendar_id, event_ics(self.uid(), start, start + timedelta(hours=5), extra="TRANSP:TRANSPARENT"))
        busy = provider.busy([calendar_id], datetime(2026, 3, 16, tzinfo=UTC), datetime(2026, 3, 17, tzinfo=UTC))
        assert [(b.start, b.end) for b in busy] == [(start, start + timedelta(hours=2))]

    # -- change tracking ------------------------------------------------------------------

    def test_no_change_means_nothing_reported(self, provider, calendar_id, put_source):
        put_source(calendar_id, event_ics(self.uid(), datetime(2026, 3, 5, 9, tzinfo=UTC),
                                          datetime(2026, 3, 5, 10, tzinfo=UTC)))
        mirror = self.full(provider, calendar_id)
        for _ in range(2):
            cs, upserted, removed = self.step(provider, calendar_id, mirror)
            assert cs.items == [] and cs.removed == [] and cs.skipped == []
            assert (upserted, removed) == (set(), set())

    def test_add_modify_delete_are_reported_exactly(self, provider, calendar_id, put_source, delete_source):
        a = self.uid()
        a_start = datetime(2026, 3, 5, 9, tzinfo=UTC)
        a_id = put_source(calendar_id, event_ics(a, a_start, a_start + timedelta(hours=1), "A"))
        mirror = self.full(provider, calendar_id)

        b = self.uid()
        b_id = put_source(calendar_id, event_ics(b, datetime(2026, 3, 6, 9, tzinfo=UTC),
                                                 datetime(2026, 3, 6, 10, tzinfo=UTC), "B"))
        _, upserted, removed = self.step(provider, calendar_id, mirror)
        assert (upserted, removed) == ({b_id}, set())
        assert [i.summary for i in self.by_uid(mirror, b)] == ["B"]

        moved = a_start + timedelta(days=1, hours=2)
        assert put_source(calendar_id, event_ics(a, moved, moved + timedelta(hours=1), "A moved")) == a_id
        _, upserted, removed = self.step(provider, calendar_id, mirror)
        assert (upserted, removed) == ({a_id}, set())
        (inst,) = self.by_uid(mirror, a)
        assert inst.summary == "A moved" and inst.utc_bounds(TZ)[0] == moved

        delete_source(calendar_id, b_id)
        _, upserted, removed = self.step(provider, calendar_id, mirror)
        assert (upserted, removed) == (set(), {b_id})
        assert set(mirror.etags) == {a_id}

    def test_invalid_cursor_raises_and_a_full_listing_recovers(self, provider, calendar_id, put_source,
                                                                invalid_cursor):
        if not provider.incremental:
            pytest.skip("not an incremental provider")
        item = put_source(calendar_id, event_ics(self.uid(), datetime(2026, 3, 7, 9, tzinfo=UTC),
                                                 datetime(2026, 3, 7, 10, tzinfo=UTC)))
        with pytest.raises(InvalidCursor):
            provider.changes(calendar_id, invalid_cursor, WINDOW)
        mirror = self.full(provider, calendar_id)
        assert item in mirror.etags

    def test_malformed_object_is_skipped_and_the_rest_returned(self, provider, calendar_id, put_source,
                                                                put_malformed, caplog):
        good = put_source(calendar_id, event_ics(self.uid(), datetime(2026, 3, 9, 9, tzinfo=UTC),
                                                 datetime(2026, 3, 9, 10, tzinfo=UTC)))
        secret = f"PRIVATE-{uuid.uuid4().hex}"
        caplog.set_level(logging.DEBUG)
        bad = put_malformed(calendar_id, secret)
        cs = provider.changes(calendar_id, None, WINDOW)
        assert bad in cs.skipped and bad not in cs.removed
        assert bad not in {i.id for i in cs.items}
        assert good in {i.id for i in cs.items}
        assert secret not in caplog.text, "event text was logged"

    def test_free_busy_mode_reads_no_details(self, make_provider, calendar_id, put_source):
        uid = self.uid()
        start = datetime(2026, 3, 11, 14, tzinfo=UTC)
        put_source(calendar_id, event_ics(uid, start, start + timedelta(hours=1), "Secret meeting",
                                          description="agenda", location="HQ"))
        mirror = self.full(make_provider(AccessMode.FREE_BUSY), calendar_id)
        (inst,) = self.by_uid(mirror, uid)
        assert inst.utc_bounds(TZ) == (start, start + timedelta(hours=1))
        assert (inst.summary, inst.description, inst.location) == (None, None, None)

    # -- writing --------------------------------------------------------------------------

    def _writable(self, provider: Provider) -> None:
        if not provider.can_write:
            pytest.skip("read-only provider")

    def test_read_only_provider_refuses_writes(self, provider, calendar_id):
        if provider.can_write:
            pytest.skip("writable provider")
        with pytest.raises(AccessDenied):
            provider.create(calendar_id, draft(), new_key())
        with pytest.raises(AccessDenied):
            provider.update(EventRef(calendar_id, "x", None), draft(), new_key())
        with pytest.raises(AccessDenied):
            provider.delete(EventRef(calendar_id, "x", None))

    def test_created_event_carries_its_key_as_partner_key(self, provider, calendar_id):
        self._writable(provider)
        key = new_key()
        ref = provider.create(calendar_id, draft("Dentist"), key)
        assert ref.calendar_id == calendar_id and ref.id
        mirror = self.full(provider, calendar_id)
        (inst,) = [i for i in mirror.all_instances() if i.partner_key == key]
        assert inst.is_partner and inst.item_id == ref.id and inst.summary == "Dentist"
        assert inst.utc_bounds(TZ) == (datetime(2026, 3, 12, 8, tzinfo=UTC), datetime(2026, 3, 12, 9, tzinfo=UTC))
        # the etag create returned is the one a listing reports (or reconciliation re-downloads)
        assert ref.etag is None or mirror.etags[ref.id] == ref.etag

    def test_create_twice_with_one_key_makes_one_event(self, provider, calendar_id):
        self._writable(provider)
        key = new_key()
        first = provider.create(calendar_id, draft("First"), key)
        second = provider.create(calendar_id, draft("Second"), key)  # a retried / crashed create
        assert second.id == first.id
        mirror = self.full(provider, calendar_id)
        clones = [i for i in mirror.all_instances() if i.partner_key == key]
        assert len(clones) == 1 and clones[0].summary == "Second"
        assert second.etag is None or mirror.etags[second.id] == second.etag

    def test_update_with_stale_etag_fails_and_fresh_one_works(self, provider, calendar_id):
        self._writable(provider)
        key = new_key()
        ref = provider.create(calendar_id, draft("v1"), key)
        newer = provider.update(ref, draft("v2"), key)
        assert newer.id == ref.id
        if ref.etag is not None:
            assert newer.etag != ref.etag
            with pytest.raises(PreconditionFailed):
                provider.update(ref, draft("v3 from a stale read"), key)
        latest = provider.update(newer, draft("v3", hour=15), key)
        mirror = self.full(provider, calendar_id)
        (inst,) = [i for i in mirror.all_instances() if i.partner_key == key]
        assert inst.summary == "v3" and inst.utc_bounds(TZ)[0] == datetime(2026, 3, 12, 14, tzinfo=UTC)
        assert latest.etag is None or mirror.etags[latest.id] == latest.etag

    def test_update_of_a_deleted_event_fails(self, provider, calendar_id):
        self._writable(provider)
        key = new_key()
        ref = provider.create(calendar_id, draft(), key)
        provider.delete(ref)
        with pytest.raises((NotFound, PreconditionFailed)):
            provider.update(ref, draft("again"), key)

    def test_delete_is_idempotent(self, provider, calendar_id):
        self._writable(provider)
        key = new_key()
        ref = provider.create(calendar_id, draft(), key)
        provider.delete(ref)
        provider.delete(ref)  # already gone: success
        mirror = self.full(provider, calendar_id)
        assert ref.id not in mirror.etags
        assert not [i for i in mirror.all_instances() if i.partner_key == key]

    def test_writes_show_up_in_incremental_listings(self, provider, calendar_id):
        self._writable(provider)
        mirror = self.full(provider, calendar_id)
        key = new_key()
        ref = provider.create(calendar_id, draft(), key)
        _, upserted, removed = self.step(provider, calendar_id, mirror)
        assert (upserted, removed) == ({ref.id}, set())
        provider.delete(ref)
        _, upserted, removed = self.step(provider, calendar_id, mirror)
        assert (upserted, removed) == (set(), {ref.id})
