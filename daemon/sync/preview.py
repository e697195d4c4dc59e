"""Dry-run previews of a rule, saved or not, described in plain words for people.

`run_preview` asks the engine for a dry run of a rule-like object (the web form's unsaved
rule, or an edit of a saved one) and turns its plan into rows a page can list: when (in the
user's time zone), the title as it would be written, and why. `pending_deletions` does the
same for what a paused rule is waiting to delete. Only `run_preview` and `pending_deletions`
touch the store; the rest is pure and takes the zone as an argument.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.config import Config
from daemon.errors import HomecalError
from daemon.models import Draft, Instance, Window
from daemon.store import mirror
from daemon.store import rules as rules_repo
from daemon.store.db import Store
from daemon.store.rules import Rule
from daemon.sync.engine import RuleReport
from daemon.sync.options import RuleOptions
from daemon.sync.plan import Create, Delete, Mapping, Update

#: rows listed per kind; the counts stay exact beyond it (a first sync can create thousands)
MAX_ROWS = 200
#: how long a preview waits for a running sync before saying so
LOCK_WAIT_SECONDS = 30.0
UNKNOWN_TITLE = "(title not known)"


@dataclass(frozen=True)
class Row:
    """One event a plan would write: `when` in the user's zone, `title` as written."""

    sort_key: str
    when: str
    title: str
    note: str = ""


@dataclass(frozen=True)
class Known:
    """Mirror instances that name the events a deletion would remove."""

    clones: dict[str, Instance] = field(default_factory=dict)  # idem key -> copy in the target
    sources: dict[tuple[int, str], Instance] = field(default_factory=dict)  # (calendar, key) -> source


@dataclass
class Preview:
    ok: bool
    error: str = ""
    created: list[Row] = field(default_factory=list)
    updated: list[Row] = field(default_factory=list)
    deleted: list[Row] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "deleted": 0})
    #: reason -> how many source events the rule leaves out for it
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def draft_rule(user_id: int, source_ids: list[int], target_id: int, options: RuleOptions,
               saved: Rule | None = None) -> Rule:
    """The rule the form describes, not stored. An edit keeps the saved rule's id and state,
    so the preview sees its mappings (existing copies) and its confirmed deletions."""
    return Rule(id=saved.id if saved else 0, user_id=user_id, name=saved.name if saved else "", options=options,
                source_ids=tuple(source_ids), target_calendar_id=target_id,
                state=saved.state if saved else "active",
                deletions_confirmed=saved.deletions_confirmed if saved else False,
                pending_deletions=[], last_run_at=None, last_success_at=None, last_error=None, last_counts={},
                next_run_at=None)


# -- pure formatting -------------------------------------------------------------------------

def _local(value: datetime, tz: tzinfo) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(tz)


def format_span(start: datetime | date, end: datetime | date, tz: tzinfo) -> str:
    """`Mon 15 Jun 2026, 09:00–10:00` in `tz`; all-day spans as dates (their end is exclusive)."""
    if not isinstance(start, datetime):
        last = (end - timedelta(days=1)) if isinstance(end, date) and not isinstance(end, datetime) else start
        if last <= start:
            return f"{start:%a %d %b %Y}, all day"
        return f"{start:%a %d %b} – {last:%a %d %b %Y}, all day"
    s = _local(start, tz)
    e = _local(end, tz) if isinstance(end, datetime) else s
    if e.date() == s.date():
        return f"{s:%a %d %b %Y}, {s:%H:%M}–{e:%H:%M}"
    return f"{s:%a %d %b %Y}, {s:%H:%M} – {e:%a %d %b %Y}, {e:%H:%M}"


def format_stamp(iso: str | None, tz: tzinfo) -> str:
    """A stored UTC timestamp (ISO text) in the user's zone, or "never"."""
    if not iso:
        return "never"
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return f"{value.astimezone(tz):%d %b %Y, %H:%M}"


def _draft_row(draft: Draft, start_utc: str, tz: tzinfo) -> Row:
    return Row(start_utc, format_span(draft.start, draft.end, tz), draft.summary or "Busy")


def _deleted_row(m: Mapping, reason: str, known: Known, tz: tzinfo) -> Row:
    # The copy as the target last listed it names it best; else the source event it was
    # made from (still there when it merely stopped matching the rule); else only its time.
    inst = known.clones.get(m.idem_key) or known.sources.get((m.source_calendar_id, m.source_key))
    if inst is not None:
        return Row(m.start_utc or "", format_span(inst.start, inst.end, tz), inst.summary or "Busy", reason)
    when = format_stamp(m.start_utc, tz) if m.start_utc else "time not known"
    return Row(m.start_utc or "", when, UNKNOWN_TITLE, reason)


def describe(report: RuleReport, tz: tzinfo, known: Known | None = None,
             labels: dict[int, str] | None = None) -> Preview:
    """A dry-run report as a Preview. `known` names what deletions would remove; `labels`
    (calendar id -> "account / calendar") turns the engine's "source 3" into words."""
    if report.status == "error" or report.plan is None:
        return Preview(ok=False, error=plain_error(report.message or "the preview could not run", labels or {}))
    plan, known = report.plan, known or Known()
    preview = Preview(ok=True)
    creates = [_draft_row(a.draft, a.start_utc, tz) for a in plan.of(Create)]
    updates = [_draft_row(a.draft, a.start_utc, tz) for a in plan.of(Update)]
    deletes = [_deleted_row(a.mapping, a.reason, known, tz) for a in plan.of(Delete)]
    for name, rows in (("created", creates), ("updated", updates), ("deleted", deletes)):
        rows.sort(key=lambda r: r.sort_key)
        preview.counts[name] = len(rows)
        setattr(preview, name, rows[:MAX_ROWS])
    preview.skipped = dict(Counter(reason for _, _, reason in plan.skipped).most_common())
    return preview


_SOURCE_RE = re.compile(r"(?:^|; )source (\d+): ")
_NOT_SYNCED = "not synced, nothing deleted: "


def plain_error(message: str, labels: dict[int, str]) -> str:
    """The engine's error text in plain words, each unreadable source named.

    The wording comes from `daemon.overview.plain_error`, so the rules pages say what the
    dashboard says; this adds which calendar ("source 3" in the engine's text) failed.
    """
    from daemon.overview import plain_error as plain

    parts = _SOURCE_RE.split(message.removeprefix(_NOT_SYNCED))
    if len(parts) < 3:
        return plain(message) or ""
    sentences = [f"{labels.get(int(cid), f'Calendar {cid}')} could not be read: {plain(err) or ''}"
                 for cid, err in zip(parts[1::2], parts[2::2], strict=True)]
    return " ".join(sentences)


# -- with the store ----------------------------------------------------------------------------

def _known(store: Store, target_id: int, mappings: list[Mapping]) -> Known:
    """What the mirror knows about the copies in `mappings` (only read when there are some)."""
    if not mappings:
        return Known()
    keys = {m.idem_key for m in mappings}
    clones = {i.partner_key: i for i in mirror.instances(store, target_id) if i.partner_key in keys}
    sources: dict[tuple[int, str], Instance] = {}
    for cal_id in {m.source_calendar_id for m in mappings if m.idem_key not in clones}:
        wanted = {m.source_key for m in mappings if m.source_calendar_id == cal_id}
        sources.update({(cal_id, i.key): i for i in mirror.instances(store, cal_id) if i.key in wanted})
    return Known(clones, sources)


class SyncBusy(HomecalError):
    """A sync is running and did not finish within LOCK_WAIT_SECONDS."""

    http_status = 503


@contextmanager
def exclusive_sync(wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the process's sync lock (`cycle.SYNC_LOCK`), waiting at most `wait` seconds for a
    running sync; a web request should say "try again" rather than hang behind a long cycle."""
    from daemon.sync.cycle import SYNC_LOCK  # the wiring imports every provider: load on use

    if not SYNC_LOCK.acquire(timeout=wait):
        raise SyncBusy("a sync is running right now; try again in a moment")
    try:
        yield
    finally:
        SYNC_LOCK.release()


def run_preview(store: Store, config: Config, rule: Rule, tz: tzinfo,
                labels: dict[int, str] | None = None) -> Preview:
    """Dry-run `rule` (see `draft_rule`) under the process's sync lock and describe it.

    Writes nothing but the mirror refresh: no rule row, no mapping, nothing in the target.
    Raises SyncBusy when a sync holds the lock for too long.
    """
    from daemon.sync.cycle import engine_for

    with exclusive_sync():
        report = engine_for(store, config).preview(rule)
    deletes = [a.mapping for a in report.plan.of(Delete)] if report.plan else []
    return describe(report, tz, _known(store, rule.target_calendar_id, deletes), labels)


def pending_deletions(store: Store, rule: Rule, tz: tzinfo) -> list[Row]:
    """What a rule paused by the deletion guard is waiting to delete, as rows."""
    by_id = {m.id: m for m in rules_repo.mappings(store, rule.id)}
    entries = [(by_id.get(p.get("mapping")), p.get("reason", "")) for p in rule.pending_deletions]
    known = _known(store, rule.target_calendar_id, [m for m, _ in entries if m is not None])
    rows = []
    for m, reason in entries:
        if m is None:
            rows.append(Row("", "already gone", UNKNOWN_TITLE, reason))
        else:
            rows.append(_deleted_row(m, reason, known, tz))
    return sorted(rows, key=lambda r: r.sort_key)


def rule_window(config: Config, now: datetime | None = None) -> Window:
    """The window a preview covers (for the page's "between ... and ..." line)."""
    now = now or datetime.now(timezone.utc)
    return Window.around(now, config.sync.window_past_days, config.sync.window_future_days)


__all__ = ["MAX_ROWS", "Known", "Preview", "Row", "SyncBusy", "describe", "exclusive_sync", "draft_rule", "format_span", "format_stamp",
           "pending_deletions", "plain_error", "rule_window", "run_preview", "zone"]
