"""A stateful fake of Microsoft Graph's calendar API (v1.0), over real HTTP on 127.0.0.1.

Production code reaches it as it reaches Graph, with `requests`: `[microsoft] graph_endpoint
= fake.endpoint` (= fake.url + "/v1.0"). Behaviour follows docs/provider-facts.md §2:
calendarView delta (window fixed per token, nextLink or deltaLink never both, @removed for
deletions and for changes outside the window, replays, 410 + Location), transactionId
dedupe, all-day validation, MailboxConcurrency 429 + Retry-After, getSchedule limits and the
personal-account refusal, Calendars.ReadBasic hiding body and extended properties, If-Match
412, JSON $batch of at most 20, scripted and random faults.

Module map: graph_state (memory and writes), graph_events (instances, ids, rendering),
graph_time (zones, recurrence), graph_delta (calendarView, delta), graph_schedule,
graph_routes (paths and handlers), graph_http (WSGI, auth, Prefer, faults, concurrency,
log, $batch), graph_errors. This module holds the public `GraphFake` and the `graph_fake`
fixture. Tokens come from the shared Directory (tests/fakes/ms_directory.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.fakes.graph_delta import window_instances
from tests.fakes.graph_errors import GraphError
from tests.fakes.graph_events import occurrence_id, render
from tests.fakes.graph_http import GraphCore, RequestRecord
from tests.fakes.graph_state import Mailbox
from tests.fakes.graph_time import graph_stamp
from tests.fakes.loopback import WsgiLoopback
from tests.fakes.ms_directory import Directory

__all__ = ["GraphFake", "RequestRecord", "graph_fake"]

DEFAULT_SCOPES = ("Calendars.ReadWrite", "User.Read")


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _value(dt: datetime | dict) -> dict:
    """A datetime (naive = UTC) or a Graph dateTimeTimeZone dict, as Graph JSON."""
    if isinstance(dt, dict):
        return dt
    return {"dateTime": graph_stamp(_aware(dt).astimezone(UTC).replace(tzinfo=None)), "timeZone": "UTC"}


class GraphFake(GraphCore, WsgiLoopback):
    """Graph on 127.0.0.1. Knobs (plain attributes): `max_concurrent` (4), `slow` (seconds each
    answer waits, holding its slot), `replay`, `hide_transaction_id`. Faults: `fail_next`,
    `fault_rate`. Log: `requests`, `peak_in_flight`, `invitations`, `cancellations`."""

    def __init__(self, directory: Directory) -> None:
        super().__init__(directory)
        self.url = ""

    # ---- lifecycle (tests.fakes.loopback) ---------------------------------------------------
    def _started(self, base_url: str) -> None:
        self.url = base_url
        self.endpoint = self.url + "/v1.0"

    @property
    def invitations(self) -> list[dict]:
        """Meeting requests Exchange would mail: {mailbox, event_id, kind, subject, attendees}."""
        return self.state.invitations

    @property
    def cancellations(self) -> list[dict]:
        """Cancellations Exchange would mail when a meeting with attendees is deleted."""
        return self.state.cancellations

    # ---- tokens ----------------------------------------------------------------------------
    def token_for(self, email: str, scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES) -> str:
        """An access token for a directory user, without the sign-in fake (client "test-client")."""
        return self.directory.issue(self.directory.user(email), list(scopes), "test-client")["access_token"]

    # ---- mailboxes and calendars -----------------------------------------------------------
    def mailbox(self, email: str) -> Mailbox:
        """The mailbox of a directory user (made on first use, with a default "Calendar")."""
        with self.state.lock:
            return self.state.mailbox(self.directory.user(email))

    def add_calendar(self, email: str, name: str, can_edit: bool = True) -> str:
        with self.state.lock:
            return self.state.add_calendar(self.mailbox(email), name, can_edit).id

    def default_calendar(self, email: str) -> str:
        return self.mailbox(email).default_id

    def expire_delta_tokens(self, calendar_id: str | None = None) -> None:
        """Delta and next links handed out so far (one calendar or all) answer 410 SyncStateNotFound."""
        with self.state.lock:
            for mb in self.state.mailboxes.values():
                for cal in mb.calendars.values():
                    if calendar_id is None or cal.id == calendar_id:
                        cal.generation += 1

    # ---- events as the user edits them in Outlook ------------------------------------------
    def add_event(self, email: str, calendar_id: str | None = None, **fields) -> dict:
        """Create as POST would (same validation, dedupe by transactionId); `start`/`end` may be
        datetimes (naive = UTC). Returns the stored event (a copy). Works on read-only calendars."""
        for name in ("start", "end"):
            if name in fields:
                fields[name] = _value(fields[name])
        with self.state.lock:
            mb = self.mailbox(email)
            cal = self.state.calendar(mb, calendar_id)
            editable, cal.can_edit = cal.can_edit, True
            try:
                event, _ = self.state.create(mb, cal, fields)
            finally:
                cal.can_edit = editable
            return self._public(event)

    def update_event(self, email: str, event_id: str, **fields) -> dict:
        """PATCH as the user would in Outlook (an occurrence id makes an exception; read-only
        calendars too). Returns the event as stored (an occurrence: as Graph shows it)."""
        for name in ("start", "end"):
            if name in fields:
                fields[name] = _value(fields[name])
        with self.state.lock:
            return self._public(self.state.update(self.mailbox(email), event_id, fields, None, owner=True))

    def delete_event(self, email: str, event_id: str) -> None:
        """Delete a single or a series, or cancel an occurrence (KeyError when unknown)."""
        with self.state.lock:
            try:
                self.state.delete(self.mailbox(email), event_id, owner=True)
            except GraphError as err:
                raise KeyError(event_id) from err

    def move_occurrence(self, email: str, master_id: str, original_start: datetime, start: datetime,
                        end: datetime) -> dict:
        """Move one occurrence of a series (it becomes an exception); returns it."""
        return self.update_event(email, occurrence_id(master_id, _aware(original_start)), start=start, end=end)

    def cancel_occurrence(self, email: str, master_id: str, original_start: datetime) -> None:
        self.delete_event(email, occurrence_id(master_id, _aware(original_start)))

    def occurrence_id(self, master_id: str, original_start: datetime) -> str:
        """The id Graph gives the occurrence of `master_id` originally at `original_start`."""
        return occurrence_id(master_id, _aware(original_start))

    def events(self, email: str, calendar_id: str | None = None) -> list[dict]:
        """Stored singles and series masters (with transactionId and extended properties)."""
        with self.state.lock:
            cal = self.state.calendar(self.mailbox(email), calendar_id)
            return [self._public(e) for e in cal.events.values()]

    def event(self, email: str, event_id: str) -> dict | None:
        """One event as Graph would return it with all extended properties (UTC), or None."""
        with self.state.lock:
            try:
                cal, stored, original = self.state.find(self.mailbox(email), event_id)
                return render(self.state.current(cal, stored, original), expand_props="*")
            except GraphError:
                return None

    def instances(self, email: str, calendar_id: str | None, start: datetime, end: datetime) -> list[dict]:
        """What calendarView returns for [start, end) (UTC times), sorted by start."""
        with self.state.lock:
            cal = self.state.calendar(self.mailbox(email), calendar_id)
            return [render(e) for e in window_instances(cal, _aware(start), _aware(end))]

    @staticmethod
    def _public(event: dict) -> dict:
        out = render(event, expand_props="*")
        out.setdefault("singleValueExtendedProperties", [])
        out["start"], out["end"] = copy.deepcopy(event["start"]), copy.deepcopy(event["end"])  # as written
        return out


@pytest.fixture(name="graph_fake")
def graph_fake_fixture(ms_directory: Directory) -> Iterator[GraphFake]:
    """A started GraphFake sharing the test's Directory, stopped after the test."""
    with GraphFake(ms_directory) as fake:
        yield fake


#: the same fixture under its own name, for `from tests.fakes.graph_api import graph_fake`
graph_fake = graph_fake_fixture
