"""Taking, moving and cancelling bookings, per access mode of the target account.

The one entry point the web UI uses for bookings. What a booking becomes depends on where
it goes:
- a read-write calendar (CalDAV, Google, Microsoft, local): an event in that calendar with
  the visitor as attendee, written through the access gate (the provider sends its own
  invitation); the visitor gets a plain confirmation mail with the manage links.
- otherwise (free-busy or no-access account, or no target chosen): no provider write; the
  booking becomes a busy event in homecal's own "Bookings" calendar of the host, and an
  iMIP REQUEST goes by mail to the visitor and to the host.

No double booking: after a live re-check of the conflict calendars, the slot is taken
inside one `BEGIN IMMEDIATE` transaction that re-reads the host's bookings, so of any number
of visitors racing for one slot exactly one gets it (and a partial unique index stands
behind that). Availability fails closed: a conflict calendar that cannot be read makes the
link say "temporarily unavailable" instead of offering times that may be taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from daemon.errors import HomecalError, UsageError

MAX_NAME = 100
MAX_ANSWER = 2000


class BookingUnavailable(HomecalError):
    """Times cannot be offered or taken right now (a conflict calendar cannot be read)."""

    http_status = 503


class SlotTaken(HomecalError):
    """Someone else took the slot (or it stopped being free) a moment ago."""

    http_status = 409


class VisitorError(UsageError):
    """The visitor's form is wrong; `problems` maps field names (name, email, timezone,
    or a question id) to a message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class Visitor:
    name: str
    email: str
    timezone: str  # IANA zone the visitor chose or their browser reported
    answers: dict[str, str] = field(default_factory=dict)  # question id -> answer


@dataclass(frozen=True)
class Booking:
    id: int
    link_id: int
    user_id: int
    uid: str
    sequence: int
    status: str  # confirmed | cancelled
    start: datetime  # aware UTC
    end: datetime
    delivery: str  # event | invite
    target_calendar_id: int | None
    title: str  # the link's title when booked
    location: str  # the location text as the visitor sees it ("" for none)
    visitor: Visitor
    created_at: str
    cancelled_at: str | None
    cancelled_by: str | None  # visitor | host

    @property
    def duration(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass(frozen=True)
class BookingResult:
    booking: Booking
    token: str  # the secret of the visitor's /booking/<token> links
