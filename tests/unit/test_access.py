"""daemon.access: the one table of access modes and provider scopes the UI shows and OAuth will request."""

from __future__ import annotations

import pytest

from daemon import access
from daemon.errors import UsageError
from daemon.models import AccessMode

G = "https://www.googleapis.com/auth/"
RW, FB, NA = AccessMode.READ_WRITE, AccessMode.FREE_BUSY, AccessMode.NO_ACCESS


def test_google_and_microsoft_scopes_are_exactly_the_least_privilege_sets() -> None:
    assert access.scopes("google", RW) == (f"{G}calendar.events", f"{G}calendar.calendarlist.readonly",
                                           "openid", "email")
    assert access.scopes("google", FB) == (f"{G}calendar.events.freebusy", f"{G}calendar.calendarlist.readonly")
    assert access.scopes("microsoft", RW) == ("Calendars.ReadWrite", "User.Read")
    assert access.scopes("microsoft", FB) == ("Calendars.ReadBasic", "User.Read")
    # free-busy never asks for a scope that can read or write event details
    assert f"{G}calendar.events" not in access.scopes("google", FB)
    assert "Calendars.ReadWrite" not in access.scopes("microsoft", FB)


@pytest.mark.parametrize("kind", ["google", "microsoft"])
def test_no_access_requests_nothing(kind: str) -> None:
    assert access.scopes(kind, NA) == ()
    assert access.scopes(kind, "no-access") == ()  # the stored string works too


@pytest.mark.parametrize("kind", ["caldav", "ics", "local"])
def test_kinds_without_oauth_have_no_scopes_but_an_honest_note(kind: str) -> None:
    for info in access.describe_all(kind):
        assert info.scopes == ()
        assert info.scope_note
    assert "full access" not in access.describe("ics", RW).scope_note
    note = access.describe("caldav", FB).scope_note
    assert "same access you have" in note and "access gate" in note


def test_every_requested_scope_is_explained() -> None:
    for kind in ("google", "microsoft"):
        for info in access.describe_all(kind):
            for scope in info.scopes:
                assert access.SCOPE_MEANINGS.get(scope), scope


def test_free_busy_says_titles_are_never_seen_and_nothing_is_written() -> None:
    info = access.describe("caldav", FB)
    sees = " ".join(info.sees)
    assert "start, end and busy status" in sees and "Never titles" in sees
    assert any("Never write" in line for line in info.does)


def test_read_write_promises_to_leave_foreign_events_alone() -> None:
    does = " ".join(access.describe("google", RW).does)
    assert "clones and busy blocks" in does
    assert "Never edit or delete events it did not create" in does and "extended permission" in does


def test_modes_that_make_no_sense_are_not_offered() -> None:
    assert access.modes_for("ics") == (RW, FB)  # a feed cannot be written, and no-access would read nothing
    assert access.modes_for("local") == (RW,)
    assert access.modes_for("caldav") == (RW, FB, NA)
    with pytest.raises(UsageError):
        access.describe("ics", NA)


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(UsageError):
        access.scopes("myspace", RW)
    with pytest.raises(UsageError):
        access.describe("myspace", RW)
    with pytest.raises(ValueError):
        access.scopes("google", "root")


def test_a_feed_is_never_called_read_write() -> None:
    assert access.mode_label("ics", RW) == "Full details (read only)"
    assert access.describe("ics", RW).label == "Full details (read only)"
    assert access.mode_label("caldav", RW) == "Read and write"
    assert access.mode_label("google", "free-busy") == "Free/busy only"
