"""The one place homecal reads and writes iCalendar (RFC 5545).

Three jobs:

- `instances_from_ical`: one calendar object (a CalDAV resource, or one UID cut out of a
  feed) -> the `Instance`s it has inside the sync window. Recurrence (RRULE, RDATE, EXDATE,
  RECURRENCE-ID overrides, DST) is expanded by `recurring_ical_events`; this module adds what
  homecal needs on top: stable keys, the owner's zone for all-day and floating times, a cap
  on runaway rules, and one error type (`MalformedEvent`) for anything it cannot understand.
- `split_feed`: an ICS feed -> one VCALENDAR text per UID, so a feed can be handled object
  by object like a CalDAV collection.
- `draft_to_ical`: a `Draft` -> the VCALENDAR homecal writes into a target calendar.

Decisions worth knowing before changing anything here:

- Keys are ``"{uid}|{rid}"``; rid is "" for a non-recurring event, else the occurrence's
  ORIGINAL start (its RECURRENCE-ID, also after a move): timed -> UTC ``YYYYMMDDTHHMMSSZ``,
  all-day -> ``YYYYMMDD``, floating -> ``YYYYMMDDTHHMMSS``. The same occurrence keeps its key
  across cycles, windows and moves.
- Cancelled occurrences (an override with STATUS:CANCELLED, or a cancelled event) are
  returned with ``status="cancelled"``, not dropped: the engine then knows the occurrence
  still exists but must never block time for it (`Provider.busy` and the sync planner skip
  that status), the same way Google reports cancelled instances.
- A TZID that is neither defined by a VTIMEZONE nor a known IANA/Windows zone name is read as
  UTC with a warning. icalendar would otherwise silently turn it into a floating time.
- Event text (SUMMARY, DESCRIPTION, LOCATION) is private: it is never put in an exception
  message or a log line.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

import icalendar
import recurring_ical_events
import x_wr_timezone
from icalendar.timezone import tzp

from daemon.errors import HomecalError
from daemon.models import Draft, Instance, Window, to_utc
from daemon.providers.base import MARKER

log = logging.getLogger("homecal.ical")

PRODID = "-//homecal//homecal//EN"

#: dateutil walks every occurrence from DTSTART up to the window; past this many steps before
#: the window a rule (e.g. FREQ=MINUTELY started years ago) is refused rather than left to
#: hang the sync cycle (~0.5 s of work at this size).
_STEP_BUDGET = 200_000
#: Properties whose breakage makes the object's times unknowable.
_TIME_PROPS = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "EXDATE", "RDATE", "RRULE")
#: Properties that may carry a TZID naming a zone icalendar cannot resolve.
_ZONED_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")
#: Calendar objects that are legitimately not events: nothing to sync, not an error.
_NOT_EVENTS = {"VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY"}
#: Rough occurrences per day of each FREQ, to size expansion chunks and the step guard.
_PER_DAY = {"SECONDLY": 86400.0, "MINUTELY": 1440.0, "HOURLY": 24.0, "DAILY": 1.0,
            "WEEKLY": 1 / 7, "MONTHLY": 1 / 28, "YEARLY": 1 / 365}
#: The most days each month can have (February in a leap year).
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
#: BY* parts that multiply occurrences for FREQ=DAILY and coarser (for finer FREQs they filter).
_EXPANDING_PARTS = ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")


class MalformedEvent(HomecalError):
    """One calendar object cannot be understood; the message says what, never its content."""


# --------------------------------------------------------------------------- reading


def instances_from_ical(data: str | bytes, item_id: str, window: Window, tz: tzinfo, *,
                        details: bool = True, owner_emails: Collection[str] = (),
                        max_instances: int = 10000) -> list[Instance]:
    """Every occurrence of one calendar object that overlaps `window`.

    `data` is one VCALENDAR: a master event, its overrides (same UID, with RECURRENCE-ID)
    and the VTIMEZONEs they use. All-day and floating times are placed in `tz`, the owner's
    zone. `details=False` (free-busy mode) never reads SUMMARY, DESCRIPTION or LOCATION.
    At most `max_instances` occurrences are returned (the earliest). Raises MalformedEvent
    for anything that cannot be understood; a calendar of only tasks or journals gives [].
    """
    try:
        return _instances(data, item_id, window, tz, details, owner_emails, max_instances)
    except MalformedEvent:
        raise
    except Exception as err:
        # Whatever else odd input provokes in icalendar, x-wr-timezone or dateutil must cost
        # this one object (the provider skips it), never the whole calendar's sync.
        raise MalformedEvent(f"calendar object cannot be read ({type(err).__name__})") from err


def _instances(data: str | bytes, item_id: str, window: Window, tz: tzinfo, details: bool,
               owner_emails: Collection[str], max_instances: int) -> list[Instance]:
    """instances_from_ical without its last-resort error wrapping."""
    cal = _parse_calendar(data)
    events = [c for c in cal.subcomponents if c.name == "VEVENT"]
    if not events:
        if any(c.name in _NOT_EVENTS for c in cal.subcomponents):
            return []
        raise MalformedEvent("calendar object holds no VEVENT")
    for event in events:
        _check_event(event)  # before X-WR-TIMEZONE, which would trip over a broken DTSTART
    cal = _with_standard_zones(cal)
    events = [c for c in cal.subcomponents if c.name == "VEVENT"]
    series: dict[str, _Series] = {}
    # Masters first: a THISANDFUTURE override's shift is keyed against its master's DTSTART.
    for event in sorted(events, key=lambda e: "RECURRENCE-ID" in e):
        _pin_unknown_zones(event)
        series.setdefault(str(event["UID"]), _Series()).add(event)
    owners = {_address(e) for e in owner_emails}
    reader = _Reader(item_id, window, tz, details, owners, series)
    out: list[Instance] = []
    seen: set[str] = set()
    for chunk in _chunks(cal, events, window, max_instances):
        for component in chunk:
            instance = reader.instance(component)
            # Chunks overlap at their borders, and one occurrence must be one key.
            if instance is not None and instance.key not in seen:
                seen.add(instance.key)
                out.append(instance)
        if len(out) >= max_instances:
            break
    out.sort(key=lambda i: (to_utc(i.start, tz), i.key))
    if len(out) >= max_instances:
        log.warning("calendar object %s: expansion capped at %d occurrences", item_id, max_instances)
        del out[max_instances:]
    return out


def _parse_calendar(data: str | bytes) -> icalendar.Calendar:
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception as err:  # icalendar raises ValueError, IndexError, UnicodeError... on junk
        # The original message may quote a content line (private text): name the type only.
        raise MalformedEvent(f"not iCalendar data ({type(err).__name__} while parsing)") from err
    if cal.name != "VCALENDAR":
        raise MalformedEvent(f"expected a VCALENDAR, found a {cal.name}")
    return cal


def _with_standard_zones(cal: icalendar.Calendar) -> icalendar.Calendar:
    """Apply a Google-style X-WR-TIMEZONE: UTC and floating times are meant in that zone.

    Done here, with the name resolved by icalendar (IANA or Windows names), and the property
    removed afterwards: recurring_ical_events would otherwise apply it again with plain
    zoneinfo and crash the whole object on a name zoneinfo does not know.
    """
    name = cal.get("X-WR-TIMEZONE")
    if name is None:
        return cal
    del cal["X-WR-TIMEZONE"]
    zone = tzp.timezone(str(name).strip())
    if zone is None:
        log.warning("unknown X-WR-TIMEZONE %r ignored: floating times are read in the owner's zone", str(name))
        return cal
    return x_wr_timezone.to_standard(cal, timezone=zone)


def _check_event(event: icalendar.Event) -> None:
    """Refuse a VEVENT whose identity or times cannot be known."""
    # icalendar 7 parses leniently: a broken value becomes vBroken and is listed in .errors.
    broken = sorted({name for name, _ in getattr(event, "errors", ()) if name in _TIME_PROPS})
    if broken:
        raise MalformedEvent(f"VEVENT has an invalid {', '.join(broken)}")
    if not str(event.get("UID", "")).strip():
        raise MalformedEvent("VEVENT has no UID")
    if "DTSTART" not in event:
        raise MalformedEvent("VEVENT has no DTSTART")
    start = event["DTSTART"].dt
    if "DTEND" in event:
        end = event["DTEND"].dt
        if isinstance(start, datetime) != isinstance(end, datetime):
            raise MalformedEvent("VEVENT mixes DATE and DATE-TIME in DTSTART and DTEND")
        # The library would silently swap the two; a reversed event is a broken one.
        if to_utc(end, UTC) < to_utc(start, UTC):
            raise MalformedEvent("VEVENT has DTEND before DTSTART")
    elif "DURATION" in event and event["DURATION"].dt < timedelta(0):
        raise MalformedEvent("VEVENT has a negative DURATION")


def _pin_unknown_zones(event: icalendar.Event) -> None:
    """Read times whose TZID nobody can resolve as UTC, loudly.

    icalendar resolves a TZID through the object's VTIMEZONEs, zoneinfo and the Windows zone
    names; when all fail it returns a naive datetime, i.e. a floating time, which would move
    with the owner's zone. UTC is at least a fixed instant, and the warning says why.
    """
    for name in _ZONED_PROPS:
        values = event.get(name)
        for prop in values if isinstance(values, list) else [values]:
            tzid = prop.params.get("TZID") if prop is not None else None
            if not tzid:
                continue
            for value in getattr(prop, "dts", [prop]):
                if isinstance(value.dt, datetime) and value.dt.tzinfo is None:
                    log.warning("unknown TZID %r in %s: read as UTC", str(tzid), name)
                    value.dt = value.dt.replace(tzinfo=UTC)


@dataclass
class _Series:
    """What the source says about one UID, needed to name its occurrences."""

    master_start: date | None = None
    recurring: bool = False
    #: RANGE=THISANDFUTURE overrides: their RECURRENCE-ID (as key text) -> how far they move
    #: every later occurrence; needed to recover those occurrences' original starts.
    moves: dict[str, timedelta] = field(default_factory=dict)

    def add(self, event: icalendar.Event) -> None:
        rid = event.get("RECURRENCE-ID")
        if rid is None:
            self.master_start = event["DTSTART"].dt
            self.recurring = self.recurring or "RRULE" in event or "RDATE" in event
            return
        self.recurring = True
        if str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            self.moves[_rid_text(rid.dt, self.master_start)] = _diff(event["DTSTART"].dt, rid.dt)


def _chunks(cal: icalendar.Calendar, events: list[icalendar.Event], window: Window,
            max_instances: int) -> Iterator[list[icalendar.Event]]:
    """Occurrence components near the window, in time-ordered chunks.

    One chunk covers the whole window, except for rules so dense that it would build millions
    of occurrences before the cap could apply: those are walked in chunks first sized to hold
    about a quarter of the cap each, and the caller stops pulling once it has enough.
    """
    # The library compares floating and all-day times as if they were UTC; zone offsets reach
    # +-14 h, so for those ask for a day more on each side and filter exactly in the caller.
    aware = all(isinstance(e["DTSTART"].dt, datetime) and e["DTSTART"].dt.tzinfo for e in events)
    slack = timedelta(0) if aware else timedelta(days=1)
    lo, hi = window.start - slack, window.end + slack
    rate = sum(_rate_per_day(event, lo, hi) for event in events)
    span, start = hi - lo, lo
    if rate * (span / timedelta(days=1)) > max_instances:
        span = max(timedelta(days=max_instances / 4 / rate), timedelta(minutes=1))
        # Nothing occurs before the first DTSTART (an override's DTSTART is where it moved
        # to); starting there keeps the chunks walking dense time, where the cap is reached.
        start = max(lo, min(to_utc(e["DTSTART"].dt, UTC) for e in events) - slack)
    try:
        query = recurring_ical_events.of(cal)
        while start < hi:
            stop = min(start + span, hi)
            chunk = query.between(start, stop)
            yield chunk
            if len(chunk) < max_instances / 8:
                span *= 2  # the estimate was too dense (BY* filters thin the rule out): speed up
            start = stop
    except MalformedEvent:
        raise
    except Exception as err:  # the library raises its own, dateutil's and plain ValueErrors
        raise MalformedEvent(f"recurrence cannot be expanded ({type(err).__name__})") from err


def _rate_per_day(event: icalendar.Event, window_start: datetime, window_end: datetime) -> float:
    """Estimated occurrences per day of the event's rules; refuses rules that would hang.

    dateutil expands from DTSTART on every query and loops forever or for seconds on some
    rules, so those are refused up front: INTERVAL=0 (an endless loop), a rule no date can
    match (it searches until year 9999), and a dense rule that began so long before the window
    that walking its history (or, for a filtered one, also the window) would cost more than
    `_STEP_BUDGET` steps.
    """
    rules = event.get("RRULE")
    total = 0.0
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        freq = str(rule.get("FREQ", ["DAILY"])[0]).upper()
        interval = int(rule.get("INTERVAL", [1])[0])
        if interval < 1:
            raise MalformedEvent("RRULE has an INTERVAL below 1")
        if not _can_occur(rule):
            raise MalformedEvent("RRULE can never occur (BYMONTHDAY beyond every BYMONTH)")
        rate = _PER_DAY.get(freq, 1.0) / interval
        if rate <= 1.0:
            for part in _EXPANDING_PARTS:
                rate *= max(len(rule.get(part, [])), 1)
        first = to_utc(event["DTSTART"].dt, UTC)
        # A finer-than-daily rule with BY* filters (FREQ=SECONDLY;BYMONTH=12) is still walked
        # step by step, matches or not, so its whole span counts, not just its history.
        filtered = rate > 1.0 and any(part.startswith("BY") for part in rule)
        until = window_end if filtered else window_start
        steps = max((until - first) / timedelta(days=1), 0.0) * rate
        if "COUNT" in rule:
            steps = min(steps, float(rule["COUNT"][0]))
        if steps > _STEP_BUDGET:
            raise MalformedEvent(f"RRULE FREQ={freq} would need {int(steps)} expansion steps "
                                 f"(limit {_STEP_BUDGET}); too dense to expand")
        total += rate
    return total


def _can_occur(rule: icalendar.vRecur) -> bool:
    """False for day-of-month filters no month allows, e.g. BYMONTH=2;BYMONTHDAY=30."""
    days = [abs(int(d)) for d in rule.get("BYMONTHDAY", [])]
    months = [int(m) for m in rule.get("BYMONTH", [])] or list(range(1, 13))
    return not days or any(d <= _MONTH_DAYS.get(m, 31) for d in days for m in months)


@dataclass
class _Reader:
    """Turns occurrence components into Instances for one call of instances_from_ical."""

    item_id: str
    window: Window
    tz: tzinfo
    details: bool
    owners: set[str]
    series: dict[str, _Series]

    def instance(self, component: icalendar.Event) -> Instance | None:
        """The Instance for one occurrence, or None when it lies outside the window."""
        start, end = component["DTSTART"].dt, component["DTEND"].dt
        all_day = not isinstance(start, datetime)
        if all_day and isinstance(end, datetime):
            # DTSTART;VALUE=DATE with a DURATION in hours: round the end up to a whole day.
            end = end.date() + timedelta(days=1) if end.time() != time(0) else end.date()
        if not self._in_window(start, end):
            return None
        uid = str(component["UID"])
        rid = self._rid(uid, component, start)
        return Instance(
            key=f"{uid}|{rid}", item_id=self.item_id, uid=uid, start=start, end=end, all_day=all_day,
            recurrence_id=rid or None,
            transparent=str(component.get("TRANSP", "OPAQUE")).strip().upper() == "TRANSPARENT",
            status=_status(component), declined=self._declined(component),
            summary=self._text(component, "SUMMARY"), description=self._text(component, "DESCRIPTION"),
            location=self._text(component, "LOCATION"),
            partner_key=_marker(component),
        )

    def _text(self, component: icalendar.Event, name: str) -> str | None:
        # Free-busy mode: the text is never read, so it cannot leak into the mirror.
        if not self.details or name not in component:
            return None
        value = component[name]
        return str(value[0] if isinstance(value, list) else value)  # a repeated property: the first

    def _in_window(self, start: date, end: date) -> bool:
        s, e = to_utc(start, self.tz), to_utc(end, self.tz)
        if s == e:  # zero-length: a point in time belongs to [start, end) when it is in it
            return self.window.start <= s < self.window.end
        return self.window.overlaps(s, e)

    def _rid(self, uid: str, component: icalendar.Event, start: date) -> str:
        info = self.series[uid]
        if not info.recurring:
            return ""
        # recurring_ical_events stamps every occurrence with a RECURRENCE-ID: an override's
        # own, or for a generated occurrence its start (which is its original start).
        prop = component["RECURRENCE-ID"]
        rid = _rid_text(prop.dt, info.master_start)
        move = info.moves.get(rid)
        if move is not None:
            # A RANGE=THISANDFUTURE override lends its RECURRENCE-ID to every later occurrence;
            # the original start of each is its start minus the shift the override made.
            rid = _rid_text(start - move, info.master_start)
        return rid

    def _declined(self, component: icalendar.Event) -> bool:
        if not self.owners:
            return False
        attendees = component.get("ATTENDEE")
        for attendee in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
            address = _address(str(attendee))
            partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
            if address in self.owners and partstat == "DECLINED":
                return True
        return False


def _address(address: str) -> str:
    """An e-mail address as compared: no mailto: scheme, lower case (as servers treat them)."""
    return re.sub(r"(?i)^mailto:", "", address.strip()).strip().lower()


def _rid_text(value: date, master_start: date | None) -> str:
    """The key form of an original start; see the module docstring."""
    if isinstance(value, datetime):
        if isinstance(master_start, datetime) and master_start.tzinfo is not None and value.tzinfo is None:
            # A floating RECURRENCE-ID in a zoned series means the series' zone.
            value = value.replace(tzinfo=master_start.tzinfo)
        elif master_start is not None and not isinstance(master_start, datetime):
            value = value.date()  # an all-day series: only the day identifies the occurrence
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    if value.tzinfo is None:
        return value.strftime("%Y%m%dT%H%M%S")
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _diff(later: date, earlier: date) -> timedelta:
    """later - earlier, for values that may differ in zone-awareness."""
    if isinstance(later, datetime) != isinstance(earlier, datetime):
        return timedelta(0)
    if isinstance(later, datetime) and (later.tzinfo is None) != (earlier.tzinfo is None):
        return to_utc(later, UTC) - to_utc(earlier, UTC)
    return later - earlier


def _status(component: icalendar.Event) -> Literal["confirmed", "tentative", "cancelled"]:
    status = str(component.get("STATUS", "")).strip().upper()
    return "cancelled" if status == "CANCELLED" else "tentative" if status == "TENTATIVE" else "confirmed"


def _marker(component: icalendar.Event) -> str | None:
    value = component.get(MARKER)
    if value is None:
        return None
    if isinstance(value, icalendar.vText):
        return str(value)
    # icalendar keeps unknown X- properties raw; RFC 5545 3.8.8.2 makes their default type
    # TEXT, which is what draft_to_ical writes, so undo TEXT escaping here.
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), str(value))


# --------------------------------------------------------------------------- feeds


_TZID_PARAM = re.compile(r';TZID=("[^"]*"|[^;:]*)', re.IGNORECASE)
#: Calendar-level properties carried into every split object.
_CALENDAR_PROPS = ("VERSION", "PRODID", "CALSCALE", "X-WR-TIMEZONE")


def split_feed(data: str | bytes) -> dict[str, str]:
    """An ICS feed -> {uid: a VCALENDAR with that UID's VEVENTs and the VTIMEZONEs they use}.

    Works on the text, not a parsed tree: a 10,000-event feed splits in a fraction of a
    second, and each event keeps exactly the bytes the feed had (a bad event then fails alone
    in instances_from_ical instead of failing the whole feed). Raises MalformedEvent if the
    data is not a complete VCALENDAR: a truncated download must never look like a feed whose
    events were deleted.
    """
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    header: dict[str, str] = {}
    zones: dict[str, str] = {}
    events: dict[str, list[str]] = {}
    event_zones: dict[str, set[str]] = {}
    for block in _top_components(_content_lines(text.lstrip("\ufeff")), header):
        kind = _name(block[0][len("BEGIN:"):])
        if kind == "VTIMEZONE":
            tzid = next((_value(line) for line in block if _name(line) == "TZID"), None)
            if tzid:
                zones[tzid.strip()] = "\r\n".join(block)
        elif kind == "VEVENT":
            uid = _event_uid(block)
            events.setdefault(uid, []).append("\r\n".join(block))
            event_zones.setdefault(uid, set()).update(
                m.strip('"').strip() for line in block for m in _TZID_PARAM.findall(_split(line)[0]))
    head = [header.get("VERSION", "VERSION:2.0"), header.get("PRODID", f"PRODID:{PRODID}")]
    head += [header[name] for name in _CALENDAR_PROPS[2:] if name in header]
    return {uid: "\r\n".join(["BEGIN:VCALENDAR", *head,
                              *(zones[z] for z in sorted(event_zones[uid]) if z in zones),
                              *blocks, "END:VCALENDAR"]) + "\r\n"
            for uid, blocks in events.items()}


def _content_lines(text: str) -> list[str]:
    """Logical content lines, each still folded as in the source (RFC 5545 3.1)."""
    lines: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += "\r\n" + line
        elif line.strip():
            lines.append(line)
    return lines


def _top_components(lines: list[str], header: dict[str, str]) -> Iterator[list[str]]:
    """The components directly inside the VCALENDAR(s), each as its list of lines.

    Calendar-level properties are collected into `header` (name -> line). Several
    concatenated VCALENDARs, which some feed generators emit, are read as one.
    """
    depth, block, seen_calendar = 0, [], False
    for line in lines:
        name = _name(line)
        if name == "BEGIN":
            depth += 1
            if depth == 1:
                if _name(line[len("BEGIN:"):]) != "VCALENDAR":
                    raise MalformedEvent("not a VCALENDAR")
                seen_calendar = True
                continue
        elif depth == 0:
            raise MalformedEvent("content outside a VCALENDAR")
        if depth == 1:
            if name == "END":
                depth = 0
            elif name in _CALENDAR_PROPS:
                header.setdefault(name, line)
            continue
        block.append(line)
        if name == "END":
            depth -= 1
            if depth == 1:
                yield block
                block = []
    if depth or not seen_calendar:
        raise MalformedEvent("feed is truncated: a component is not closed" if depth else "not a VCALENDAR")


def _event_uid(block: list[str]) -> str:
    """The VEVENT's UID; a UID-less event gets a synthetic one, written into the block.

    RFC 5545 requires UID but some feed generators omit it. The synthetic UID hashes the
    DTSTART and SUMMARY lines, so the same event gets the same UID (and so the same keys and
    clones) on every fetch; two UID-less events with identical start and title collapse into
    one, which is what they look like anyway.
    """
    top = _own_lines(block)
    for line in top:
        if _name(line) == "UID" and _value(line).strip():
            return _value(line).strip()
    seed = "\n".join(_unfold(line) for line in top if _name(line) in ("DTSTART", "SUMMARY"))
    uid = "homecal-nouid-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    block.insert(1, f"UID:{uid}")
    return uid


def _own_lines(block: list[str]) -> list[str]:
    """The component's own property lines, without those of nested VALARMs."""
    depth, out = 0, []
    for line in block:
        name = _name(line)
        depth += name == "BEGIN"
        if depth == 1 and name not in ("BEGIN", "END"):
            out.append(line)
        depth -= name == "END"
    return out


def _name(line: str) -> str:
    return re.split(r"[;:]", line, maxsplit=1)[0].strip().upper()


def _unfold(line: str) -> str:
    return re.sub(r"\r\n[ \t]", "", line)


def _value(line: str) -> str:
    return _split(line)[1]


def _split(line: str) -> tuple[str, str]:
    """(name and parameters, value): split at the first ':' outside a quoted parameter."""
    line, quoted = _unfold(line), False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:i], line[i + 1:]
    return line, ""


# --------------------------------------------------------------------------- writing


def draft_to_ical(draft: Draft, uid: str, key: str, *, tz: tzinfo | None = None) -> str:
    """The VCALENDAR homecal writes for `draft` into a target calendar.

    Timed drafts keep their zone (TZID plus a generated VTIMEZONE; UTC as ...Z); naive
    (floating) times are written in `tz` when given, else left floating. All-day drafts are
    DATE values with an exclusive DTEND. The event carries `key` as X-HOMECAL-KEY (the loop
    guard), SEQUENCE:0 on every mirror write (bumping it is how sync tools end up playing
    ping-pong) and never ATTENDEE or ORGANIZER (a clone must not invite anyone). Only a
    booking's draft carries an organizer, attendees and a sequence.
    """
    start, end = _draft_value(draft.start, draft.all_day, tz), _draft_value(draft.end, draft.all_day, tz)
    if draft.all_day and end <= start:
        end = start + timedelta(days=1)  # an all-day event covers at least its day
    if to_utc(end, UTC) < to_utc(start, UTC):
        raise ValueError("draft ends before it starts")
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime.now(UTC).replace(microsecond=0))
    event.add("DTSTART", start)
    event.add("DTEND", end)
    event.add("SUMMARY", draft.summary)
    for name, value in (("DESCRIPTION", draft.description), ("LOCATION", draft.location)):
        if value:
            event.add(name, value)
    event.add("TRANSP", "TRANSPARENT" if draft.transparent else "OPAQUE")
    if draft.private:
        event.add("CLASS", "PRIVATE")
    event.add("SEQUENCE", draft.sequence)
    if draft.organizer:
        event.add("ORGANIZER", _cal_address(*draft.organizer))
        for name, email in draft.attendees:
            event.add("ATTENDEE", _cal_address(name, email, attendee=True))
    # As TEXT, explicitly: icalendar writes unknown X- properties raw, which breaks on ';' or
    # a newline in the key. A booking is no copy but a meeting of its own: unmarked, it shows
    # in the calendar view, blocks time in the feed and may be a rule's source like any event
    # (the gate knows it through the bookings table; its href comes from `key` all the same).
    if draft.kind != "booking":
        event.add(MARKER, icalendar.vText(key))
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add_component(event)
    return with_zones(cal, start.year)


def with_zones(cal: icalendar.Calendar, year: int) -> str:
    """`cal` as text with a VTIMEZONE for every TZID it uses (covering `year` onwards).

    The VTIMEZONEs go before the event, as RFC 5545 clients expect. Splicing cached text in
    rather than calling add_missing_timezones(): building and serialising a VTIMEZONE from
    zoneinfo took ~1.8 ms per zoned object, most of a copy's client-side time.
    """
    text = cal.to_ical().decode("utf-8")
    zones = "".join(_vtimezone(tzid, year) for tzid in sorted(cal.get_missing_tzids()))
    return text.replace("BEGIN:VEVENT\r\n", zones + "BEGIN:VEVENT\r\n", 1) if zones else text


def _cal_address(name: str, email: str, *, attendee: bool = False) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = name
    if attendee:
        address.params.update({"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
                               "RSVP": "TRUE"})
    return address


@functools.lru_cache(maxsize=64)
def _vtimezone(tzid: str, year: int) -> str:
    """The VTIMEZONE text for `tzid`, covering the year before `year` to 2038 or later.

    homecal writes single instances inside its window, so a compact zone (a dozen transitions
    instead of the default 68 years of them) is all a client needs; the smaller object is also
    cheaper for the server to parse on every PUT.
    """
    try:
        zone = icalendar.Timezone.from_tzid(
            tzid, first_date=date(year - 1, 1, 1), last_date=date(max(2038, year + 5), 1, 1))
    except ValueError:
        return ""  # not a zone zoneinfo knows; _draft_value only lets named zones through
    return zone.to_ical().decode("utf-8")


def _draft_value(value: date, all_day: bool, tz: tzinfo | None) -> date:
    """A draft time as it should be written: a DATE, an IANA-zoned, UTC or floating datetime."""
    if all_day:
        return value.date() if isinstance(value, datetime) else value
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        if tz is None:
            return value
        value = value.replace(tzinfo=tz)
    # Only a named zone can be written as TZID with a VTIMEZONE; fixed offsets and zones from
    # foreign VTIMEZONEs become UTC, which every calendar reads the same way.
    if _zone_name(value.tzinfo) in (None, "UTC", "Etc/UTC"):
        return value.astimezone(UTC)
    return value


def _zone_name(zone: tzinfo | None) -> str | None:
    # zoneinfo names itself `key`, pytz `zone`
    name: Any = getattr(zone, "key", None) or getattr(zone, "zone", None)
    return name if isinstance(name, str) and tzp.timezone(name) is not None else None
