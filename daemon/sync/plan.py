"""Pure planning: (source instances, mapping rows, rule) -> the actions that make the target right.

Nothing here touches the network or the database, and the clock comes in as an argument,
so every guard can be tested directly. The engine applies the plan.

Decisions encoded here:
- An instance homecal wrote (partner) is never a source: no copy of a copy, no loops.
- A mapping whose source instance slid out of the window's past edge is forgotten, and its
  clone left in place as history; nothing is deleted because time passed.
- A clone the user deleted by hand becomes a tombstone: it is not recreated while the
  source instance stays the same; if the source changes, a new clone (next generation,
  new key) is made, since the user is then shown something new.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from daemon.models import Draft, Instance, Style, Window, to_utc
from daemon.sync.options import RuleOptions


@dataclass(frozen=True)
class Mapping:
    """One row of the mappings table: a source instance and its clone in the target."""

    id: int
    source_calendar_id: int
    source_key: str
    generation: int
    idem_key: str
    target_id: str | None
    target_etag: str | None
    content_hash: str | None
    state: str  # pending-create | synced | pending-delete | tombstone
    start_utc: str | None
    updated_at: str | None = None


@dataclass(frozen=True)
class RuleView:
    id: int
    options: RuleOptions
    target_calendar_id: int
    #: source calendar id -> display name (for the {calendar} template field)
    sources: dict[int, str]


@dataclass(frozen=True)
class Create:
    source_calendar_id: int
    source_key: str
    generation: int
    idem_key: str
    draft: Draft
    start_utc: str
    mapping_id: int | None = None  # set when retrying a pending create or reviving a tombstone


@dataclass(frozen=True)
class Update:
    mapping: Mapping
    draft: Draft
    start_utc: str


@dataclass(frozen=True)
class Delete:
    mapping: Mapping
    reason: str


@dataclass(frozen=True)
class Forget:
    """Drop the mapping row only (the clone stays, or is already gone)."""

    mapping: Mapping
    reason: str


@dataclass(frozen=True)
class Tombstone:
    """The user deleted the clone by hand: remember it and do not recreate it."""

    mapping: Mapping
    draft_hash: str


Action = Create | Update | Delete | Forget | Tombstone


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    #: (source calendar id, instance key, reason) for instances the rule leaves out
    skipped: list[tuple[int, str, str]] = field(default_factory=list)

    def of(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    @property
    def deletions(self) -> list[Delete]:
        return self.of(Delete)

    @property
    def writes(self) -> int:
        return sum(1 for a in self.actions if isinstance(a, (Create, Update, Delete)))


def idem_key(rule_id: int, calendar_id: int, source_key: str, generation: int) -> str:
    """Deterministic idempotency key: base32hex (Google event ids allow only a-v and 0-9)."""
    digest = hashlib.sha256(f"homecal:{rule_id}:{calendar_id}:{source_key}:{generation}".encode()).digest()
    return base64.b32hexencode(digest).decode("ascii").lower().rstrip("=")[:32]


def _as_aware(value: datetime | date, tz: tzinfo) -> datetime | date:
    """Floating times are pinned to the owner's zone so every target shows the same moment."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=tz)
    return value


def _in_working_hours(inst: Instance, opts: RuleOptions, tz: tzinfo) -> bool:
    wh = opts.working_hours
    if wh is None:
        return True
    start_t, end_t = wh.bounds()
    s, e = (x.astimezone(tz) for x in inst.utc_bounds(tz))
    day = s.date()
    while datetime.combine(day, start_t, tz) < e:
        if day.weekday() in wh.days:
            ws, we = datetime.combine(day, start_t, tz), datetime.combine(day, end_t, tz)
            if s < we and e > ws:
                return True
        day += timedelta(days=1)
    return False


def exclusion(inst: Instance, opts: RuleOptions, tz: tzinfo) -> str | None:
    """Why the rule leaves this instance out, or None to sync it."""
    if inst.is_partner:
        return "written by homecal (never copied again)"
    if inst.status == "cancelled":
        return "cancelled"
    if inst.declined and opts.skip_declined:
        return "declined"
    if inst.transparent and opts.skip_free:
        return "shown as free"
    if inst.status == "tentative" and opts.tentative == "skip":
        return "tentative"
    if inst.all_day:
        if opts.all_day == "skip":
            return "all-day"
        if opts.all_day == "busy-only" and inst.transparent:
            return "all-day and free"
    title = inst.summary or ""
    if opts.title_include and not re.search(opts.title_include, title, re.I):
        return "title does not match the include pattern"
    if opts.title_exclude and re.search(opts.title_exclude, title, re.I):
        return "title matches the exclude pattern"
    if not _in_working_hours(inst, opts, tz):
        return "outside working hours"
    return None


def make_draft(inst: Instance, opts: RuleOptions, calendar_name: str, tz: tzinfo) -> Draft:
    """The clone or busy block for one source instance."""
    clone = opts.style == Style.CLONE and inst.summary is not None
    title = inst.summary if inst.summary is not None else "Busy"
    summary = opts.template.replace("{title}", title).replace("{calendar}", calendar_name).strip() or "Busy"
    if not clone and opts.style == Style.CLONE:
        summary = "Busy"  # a free-busy source has no title to clone
    return Draft(
        kind="clone" if clone else "busy",
        summary=summary[:1000],
        start=_as_aware(inst.start, tz),
        end=_as_aware(inst.end, tz),
        all_day=inst.all_day,
        description=(inst.description or None) if clone and opts.copy_description else None,
        location=(inst.location or None) if clone and opts.copy_location else None,
        # a busy block always blocks time; a clone keeps the source's free/busy
        transparent=inst.transparent if clone else False,
        private=opts.private,
    )


def plan_rule(
    rule: RuleView,
    sources: dict[int, list[Instance]],
    mappings: list[Mapping],
    window: Window,
    tz: tzinfo,
    *,
    target_partner_keys: set[str] | None = None,
    target_refreshed_at: str | None = None,
) -> Plan:
    """Compute the actions for one rule.

    `sources` holds the mirror's instances of every source calendar that was read
    successfully this cycle; a calendar that could not be read must not be passed (the
    engine aborts the rule instead), so nothing is ever deleted because of a failed read.
    `target_partner_keys`, when the target calendar was listed this cycle, is the set of
    homecal keys found there: a synced clone missing from it was deleted by the user.
    """
    plan = Plan()
    opts = rule.options
    by_source = {(m.source_calendar_id, m.source_key): m for m in mappings}
    wanted: set[tuple[int, str]] = set()

    for cal_id, instances in sources.items():
        name = rule.sources.get(cal_id, "")
        for inst in instances:
            reason = exclusion(inst, opts, tz)
            if reason:
                plan.skipped.append((cal_id, inst.key, reason))
                continue
            start_utc, end_utc = inst.utc_bounds(tz)
            if not window.overlaps(start_utc, end_utc) and not (start_utc == end_utc and window.start <= start_utc < window.end):
                continue
            wanted.add((cal_id, inst.key))
            draft = make_draft(inst, opts, name, tz)
            h = draft.content_hash()
            m = by_source.get((cal_id, inst.key))
            start_iso = start_utc.isoformat()
            if m is None:
                plan.actions.append(Create(cal_id, inst.key, 0, idem_key(rule.id, cal_id, inst.key, 0), draft, start_iso))
            elif m.state == "pending-create":
                # A create that may or may not have reached the provider: repeat it with the
                # same key, which the provider turns into "overwrite the one that exists".
                plan.actions.append(Create(cal_id, inst.key, m.generation, m.idem_key, draft, start_iso, m.id))
            elif m.state == "pending-delete":
                plan.actions.append(Delete(m, "finishing an interrupted delete"))
            elif m.state == "tombstone":
                if m.content_hash != h:
                    gen = m.generation + 1
                    plan.actions.append(Create(cal_id, inst.key, gen, idem_key(rule.id, cal_id, inst.key, gen),
                                               draft, start_iso, m.id))
                else:
                    plan.skipped.append((cal_id, inst.key, "clone deleted by hand; kept deleted"))
            elif (target_partner_keys is not None and m.idem_key not in target_partner_keys
                  and target_refreshed_at is not None and (m.updated_at or "") < target_refreshed_at):
                plan.actions.append(Tombstone(m, h))
                plan.skipped.append((cal_id, inst.key, "clone deleted by hand; kept deleted"))
            elif m.content_hash != h:
                plan.actions.append(Update(m, draft, start_iso))

    window_start = window.start.isoformat()
    for m in mappings:
        if (m.source_calendar_id, m.source_key) in wanted:
            continue
        if m.source_calendar_id not in sources:
            continue  # that source was not read this cycle: decide nothing about it
        if m.state == "tombstone":
            plan.actions.append(Forget(m, "source gone; tombstone no longer needed"))
        elif m.start_utc is not None and m.start_utc < window_start and m.state == "synced":
            plan.actions.append(Forget(m, "now in the past; the clone stays as history"))
        else:
            plan.actions.append(Delete(m, "source event gone or no longer matches the rule"))
    return plan


__all__ = [
    "Action", "Create", "Delete", "Forget", "Mapping", "Plan", "RuleView", "Tombstone", "Update",
    "exclusion", "idem_key", "make_draft", "plan_rule", "to_utc",
]
