"""The sync engine: refresh mirrors, plan each rule, guard the plan, apply it through the gate.

One cycle:
1. Each source calendar of the rules due is refreshed once: `changes` with its saved cursor
   (a full listing when the window rolled, the cursor was rejected, or an ETag
   reconciliation is due), folded into the sealed mirror in one transaction; the cursor is
   saved last. A target is listed too when its reconciliation is due, to notice clones
   deleted by hand.
2. A rule is planned only when something it depends on changed: no change on the servers
   means one small request per source calendar and no write anywhere.
3. Guards before writes: a rule whose source could not be read is skipped (nothing
   deleted); a plan deleting more than `max_deletions` pauses the rule until confirmed.
4. Each write: the mapping row is written as the intent first, then the provider is called
   with the deterministic key, then the row records the result. A crash anywhere is
   repaired by the next cycle without a duplicate.

Failures are per account: an auth failure marks the account "needs re-link"; other
failures back that account off exponentially while the others sync on.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.config import Config
from daemon.errors import AccessDenied, AuthError, HomecalError, InvalidCursor, NotFound, PreconditionFailed, RateLimited
from daemon.faults import crash_point
from daemon.models import AccessMode, EventRef, Window
from daemon.providers.base import Provider
from daemon.store import accounts as accounts_repo
from daemon.store import mirror
from daemon.store import rules as rules_repo
from daemon.store import users
from daemon.store.accounts import Account, Calendar
from daemon.store.db import Store
from daemon.sync.gate import Gate
from daemon.sync.plan import Create, Delete, Forget, Plan, RuleView, Tombstone, Update, plan_rule

log = logging.getLogger("homecal.sync")

RECONCILE_EVERY = timedelta(hours=6)
MAX_BACKOFF = timedelta(hours=1)

ProviderFactory = Callable[[Account, tzinfo], Provider]


@dataclass
class RuleReport:
    rule_id: int
    status: str  # ok | unchanged | paused | error | skipped | dry-run
    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    message: str = ""
    plan: Plan | None = None

    def counts(self) -> dict:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted, "failed": self.failed}


@dataclass
class _CalendarState:
    ok: bool
    changed: bool = False
    refreshed_at: str | None = None
    error: str = ""


@dataclass
class _Cycle:
    window: Window
    providers: dict[int, Provider] = field(default_factory=dict)
    calendars: dict[int, _CalendarState] = field(default_factory=dict)
    failed_accounts: dict[int, str] = field(default_factory=dict)
    #: accounts that answered this cycle (only these are marked healthy)
    answered_accounts: set[int] = field(default_factory=set)


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


class SyncEngine:
    def __init__(self, store: Store, config: Config, provider_for: ProviderFactory,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.store = store
        self.config = config
        self.provider_for = provider_for
        self.now = now

    # -- the cycle -------------------------------------------------------------------------
    def run(self, rule_ids: list[int] | None = None, *, dry_run: bool = False,
            should_stop: Callable[[], bool] = lambda: False) -> list[RuleReport]:
        """Run the given rules (default: all active ones) once. Never raises for one rule's failure.

        `should_stop` is checked between rules, so a daemon shutting down is not held up.
        """
        now = self.now()
        window = Window.around(now, self.config.sync.window_past_days, self.config.sync.window_future_days)
        cycle = _Cycle(window)
        all_rules = rules_repo.all_rules(self.store)
        chosen = [r for r in all_rules if rule_ids is None or r.id in rule_ids]
        reports: list[RuleReport] = []
        try:
            for rule in chosen:
                if should_stop():
                    break
                if rule.state == "paused-deletions" and not dry_run:
                    reports.append(RuleReport(rule.id, "paused", message=rule.last_error or "paused"))
                    continue
                reports.append(self._run_rule(rule, cycle, dry_run=dry_run))
        finally:
            for provider in cycle.providers.values():
                provider.close()
        for acc_id in cycle.answered_accounts - set(cycle.failed_accounts):
            accounts_repo.record_success(self.store, acc_id)
        self._replan_others(cycle, ran=set() if dry_run else {r.rule_id for r in reports})
        return reports

    def preview(self, rule) -> RuleReport:
        """A dry run of one rule that need not be saved (the web form's "Preview").

        `rule` is anything shaped like `rules_repo.Rule`; an unsaved rule has id 0 (no
        mappings: everything is a create), an edit of a saved rule keeps its id, so its
        existing copies show as updates and deletions. Nothing is written but the mirror
        refresh (and the account's health if a read fails, as any read would record).
        """
        now = self.now()
        cycle = _Cycle(Window.around(now, self.config.sync.window_past_days, self.config.sync.window_future_days))
        try:
            return self._run_rule(rule, cycle, dry_run=True)
        finally:
            for provider in cycle.providers.values():
                provider.close()
            self._replan_others(cycle, ran=set())

    def refresh_calendars(self, user_id: int | None = None, *, calendar_ids: Iterable[int] | None = None,
                          should_stop: Callable[[], bool] = lambda: False) -> int:
        """Bring the mirror of every calendar up to date (of one user, or of all), rule or no rule.

        The calendar view and the free/busy feed show what the mirror holds, and rules refresh
        only their sources (targets every 6 hours): without this, a calendar no rule reads would
        never appear, and copies homecal just wrote would show hours late. Costs one incremental
        request per calendar when nothing changed. A rule's source keeps the empty-source guard;
        a change found here reaches the rules reading that calendar on their next run.
        `calendar_ids` limits it to those calendars (a booking's live re-check of its conflict
        calendars). Returns how many calendars could not be refreshed.
        """
        only = set(calendar_ids) if calendar_ids is not None else None
        cycle = _Cycle(Window.around(self.now(), self.config.sync.window_past_days,
                                     self.config.sync.window_future_days))
        sources = {cid for r in rules_repo.all_rules(self.store) for cid in r.source_ids}
        owners = {a.id: a.user_id for a in accounts_repo.all_accounts(self.store, user_id)}
        failed = 0
        try:
            for cal in accounts_repo.calendars(self.store, user_id=user_id):
                if should_stop():
                    break
                if only is not None and cal.id not in only:
                    continue
                state = self._refresh(cycle, cal, self._tz_for(owners[cal.account_id]),
                                      allow_empty=cal.id not in sources, reconcile=False)
                failed += not state.ok
        finally:
            for provider in cycle.providers.values():
                provider.close()
        for acc_id in cycle.answered_accounts - set(cycle.failed_accounts):
            accounts_repo.record_success(self.store, acc_id)
        self._replan_others(cycle, ran=set())
        return failed

    def _replan_others(self, cycle: _Cycle, ran: set[int]) -> None:
        """Source changes folded into the mirror by this run must still reach every saved rule
        that reads those calendars and did not apply them now: rules left out by `sync --rule`
        or a one-rule "Sync now", and every rule after a dry run or preview. Their next real
        run must plan, not see a quiet cycle and miss the change; forgetting their signature
        is what forces that."""
        changed = [cid for cid, s in cycle.calendars.items() if s.changed]
        if not changed:
            return
        marks = ",".join("?" * len(changed))
        skip = sorted(ran)
        self.store.db.execute(
            "UPDATE rules SET last_counts = json_remove(last_counts, '$.signature') WHERE last_counts IS NOT NULL "
            f"AND id IN (SELECT rule_id FROM rule_sources WHERE calendar_id IN ({marks}))"
            + (f" AND id NOT IN ({','.join('?' * len(skip))})" if skip else ""), [*changed, *skip])

    def _stamp(self) -> str:
        """Timestamps the engine compares later come from its own clock, never the wall's."""
        return self.now().astimezone(timezone.utc).isoformat(timespec="seconds")

    def _tz_for(self, user_id: int) -> tzinfo:
        return _zone(users.get(self.store, user_id).timezone)

    def _provider(self, cycle: _Cycle, account: Account, tz: tzinfo) -> Provider:
        if account.id not in cycle.providers:
            cycle.providers[account.id] = self.provider_for(account, tz)
        return cycle.providers[account.id]

    # -- refreshing the mirror ---------------------------------------------------------
    def _refresh(self, cycle: _Cycle, cal: Calendar, tz: tzinfo, *, allow_empty: bool, reconcile: bool) -> _CalendarState:
        if cal.id in cycle.calendars:
            return cycle.calendars[cal.id]
        account = accounts_repo.get(self.store, cal.account_id)
        state = self._refresh_calendar(cycle, account, cal, tz, allow_empty=allow_empty, reconcile=reconcile)
        cycle.calendars[cal.id] = state
        return state

    def _refresh_calendar(self, cycle: _Cycle, account: Account, cal: Calendar, tz: tzinfo, *,
                          allow_empty: bool, reconcile: bool) -> _CalendarState:
        if account.id in cycle.failed_accounts:
            return _CalendarState(False, error=cycle.failed_accounts[account.id])
        if account.status == "needs-relink":
            return _CalendarState(False, error=f"account {account.name} needs re-linking")
        if account.backoff_until and account.backoff_until > self.now().isoformat():
            return _CalendarState(False, error=f"account {account.name} is backing off after errors until "
                                               f"{account.backoff_until}")
        if account.mode == AccessMode.NO_ACCESS and account.kind != "local":
            # nothing is read from a no-access provider account: it has no events to offer
            return _CalendarState(True, changed=False, refreshed_at=self._stamp())
        window_start = cycle.window.start.isoformat()
        same_window = cal.cursor_window == window_start
        cursor = cal.cursor if same_window else None
        due = reconcile or cal.last_full_at is None or \
            cal.last_full_at < (self.now() - RECONCILE_EVERY).isoformat()
        if due:
            cursor = None
        # Within the same window unchanged objects need no new download or expansion.
        known = mirror.known_etags(self.store, cal.id) if same_window and cursor is None else None
        try:
            provider = self._provider(cycle, account, tz)
            try:
                changes = provider.changes(cal.remote_id, cursor, cycle.window, known)
            except InvalidCursor:
                log.info("calendar %s: sync token rejected; full listing and diff (nothing is wiped)", cal.id)
                changes = provider.changes(cal.remote_id, None, cycle.window, mirror.known_etags(self.store, cal.id))
            for skipped in changes.skipped:
                log.warning("calendar %s: skipped an object the server sent that could not be read (%s)",
                            cal.id, hashlib.sha256(skipped.encode()).hexdigest()[:12])
            counts = mirror.apply_changes(self.store, cal.id, changes, tz, allow_empty=allow_empty,
                                          details=account.mode == AccessMode.READ_WRITE)
            accounts_repo.set_cursor(self.store, cal.id, changes.cursor, window_start, full=changes.full,
                                     at=self._stamp())
            changed = bool(counts["upserted"] or counts["removed"])
            cycle.answered_accounts.add(account.id)
            return _CalendarState(True, changed=changed, refreshed_at=self._stamp())
        except HomecalError as err:
            self._account_failed(cycle, account, err)
            return _CalendarState(False, error=str(err))

    def _account_failed(self, cycle: _Cycle, account: Account, err: HomecalError) -> None:
        msg = str(err)
        cycle.failed_accounts[account.id] = msg
        if isinstance(err, AuthError):
            accounts_repo.record_failure(self.store, account.id, msg, status="needs-relink")
            log.error("account %s needs re-linking: %s", account.name, msg)
            from daemon import alerts  # lazily: mail/outbox imports stay off the quiet sync path
            alerts.account_needs_relink(self.store, self.config, account, msg, self.now())
            return
        base = float(self.config.sync.interval_seconds)
        if isinstance(err, RateLimited) and err.retry_after:
            delay = max(err.retry_after, base)
        else:
            delay = min(base * (2 ** min(account.failures, 10)), MAX_BACKOFF.total_seconds())
            delay *= random.uniform(0.8, 1.2)  # jitter: many accounts failing together do not retry together
        until = (self.now() + timedelta(seconds=delay)).isoformat()
        accounts_repo.record_failure(self.store, account.id, msg, backoff_until=until)
        log.warning("account %s failed (%s); retrying after %s", account.name, msg, until)

    # -- one rule ------------------------------------------------------------------------
    def _run_rule(self, rule, cycle: _Cycle, *, dry_run: bool) -> RuleReport:
        tz = self._tz_for(rule.user_id)
        try:
            target = accounts_repo.calendar(self.store, rule.target_calendar_id)
            sources = [accounts_repo.calendar(self.store, cid) for cid in rule.source_ids]
        except NotFound as err:
            return self._finish(rule, RuleReport(rule.id, "error", message=str(err)), dry_run)
        allow_empty = rule.deletions_confirmed
        states = {c.id: self._refresh(cycle, c, tz, allow_empty=allow_empty, reconcile=False) for c in sources}
        failed = {cid: s.error for cid, s in states.items() if not s.ok}
        if failed:
            msg = "; ".join(f"source {cid}: {e}" for cid, e in failed.items())
            return self._finish(rule, RuleReport(rule.id, "error", message=f"not synced, nothing deleted: {msg}"),
                                dry_run)
        target_account = accounts_repo.get(self.store, target.account_id)
        target_due = target.last_full_at is None or target.last_full_at < (self.now() - RECONCILE_EVERY).isoformat()
        target_state = cycle.calendars.get(target.id)
        if target_state is None and target_due and target_account.mode == AccessMode.READ_WRITE:
            target_state = self._refresh(cycle, target, tz, allow_empty=True, reconcile=True)
        reconciled = target_state is not None and target_state.ok

        signature = self._signature(rule, cycle.window)
        # The quiet-cycle test is two indexed queries, never a load of every mapping row,
        # so its cost does not grow with the calendar.
        unchanged = (not any(s.changed for s in states.values())
                     and rule.last_counts.get("signature") == signature and rule.last_success_at
                     and not rule.deletions_confirmed
                     and not rules_repo.has_pending(self.store, rule.id)
                     # a target listing made after a clone was written, without the clone:
                     # deleted by hand
                     and not (reconciled and rules_repo.clone_missing(self.store, rule.id, target.id,
                                                                      target_state.refreshed_at)))
        if unchanged and not dry_run:
            return RuleReport(rule.id, "unchanged")
        mappings = rules_repo.mappings(self.store, rule.id)
        target_keys = mirror.partner_keys(self.store, target.id) if reconciled else None

        view = RuleView(rule.id, rule.options, target.id, {c.id: c.name for c in sources})
        source_instances = {}
        for cal in sources:
            # Events homecal wrote are recognised by their marker and by the mapping table
            # (some providers hide markers from change feeds).
            own = rules_repo.partner_item_ids(self.store, cal.id)
            insts = mirror.instances(self.store, cal.id, cycle.window)
            for inst in insts:
                if inst.item_id in own and inst.partner_key is None:
                    inst.partner_key = "mapped"
            source_instances[cal.id] = insts
        plan = plan_rule(
            view, source_instances, mappings, cycle.window, tz,
            target_partner_keys=target_keys,
            target_refreshed_at=target_state.refreshed_at if reconciled else None,
        )
        report = RuleReport(rule.id, "dry-run" if dry_run else "ok", plan=plan)
        if dry_run:
            report.created, report.updated, report.deleted = (len(plan.of(Create)), len(plan.of(Update)),
                                                              len(plan.of(Delete)))
            return report
        limit = self.config.sync.max_deletions
        if len(plan.deletions) > limit and not rule.deletions_confirmed:
            pending = [{"mapping": d.mapping.id, "source_calendar": d.mapping.source_calendar_id,
                        "source_key": d.mapping.source_key, "reason": d.reason} for d in plan.deletions]
            rules_repo.pause_for_deletions(self.store, rule.id, pending, limit)
            log.warning("rule %s paused: it would delete %d events (limit %d)", rule.id, len(pending), limit)
            return RuleReport(rule.id, "paused", message=f"would delete {len(pending)} events; confirm first",
                              plan=plan)
        try:
            gate = Gate(self.store, self._provider(cycle, target_account, tz), target_account, target)
            self._apply(rule.id, target, gate, plan, report, cycle.window)
        except (AuthError, RateLimited) as err:
            self._account_failed(cycle, target_account, err)
            report.status, report.message = "error", f"target: {err}"
        except AccessDenied as err:
            report.status, report.message = "error", str(err)
        if report.failed and report.status == "ok":
            report.status = "error"
        if rule.deletions_confirmed:
            rules_repo.clear_confirmation(self.store, rule.id)
        counts = report.counts() | {"signature": signature}
        return self._finish(rule, report, dry_run, counts=counts)

    def _signature(self, rule, window: Window) -> str:
        """What a plan depends on besides the mirror: options, sources, target, window."""
        text = f"{rule.options.to_json()}|{rule.source_ids}|{rule.target_calendar_id}|{window.start.isoformat()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _finish(self, rule, report: RuleReport, dry_run: bool, counts: dict | None = None) -> RuleReport:
        if not dry_run:
            next_run = (self.now() + timedelta(seconds=self.config.sync.interval_seconds)).isoformat()
            state = "active" if report.status in ("ok", "unchanged") else ("error" if report.status == "error" else None)
            rules_repo.record_run(self.store, rule.id, error=report.message if report.status == "error" else None,
                                  counts=counts, state=state, next_run_at=next_run)
        return report

    # -- applying ----------------------------------------------------------------------
    def _apply(self, rule_id: int, target: Calendar, gate: Gate, plan: Plan, report: RuleReport,
               window: Window) -> None:
        db = self.store.db
        first_error = ""
        creates = plan.of(Create)
        batched = gate.provider.batch_size > 1 and len(creates) > 1
        if batched:
            first_error = self._create_batched(rule_id, target, gate, creates, report)
        for action in plan.actions:
            try:
                if isinstance(action, Create):
                    if batched:
                        continue
                    self._create(rule_id, target, gate, action)
                    report.created += 1
                elif isinstance(action, Update):
                    m = action.mapping
                    ref = EventRef(target.remote_id, m.target_id or "", m.target_etag)
                    try:
                        new = gate.update(ref, action.draft, m.idem_key)
                    except PreconditionFailed:
                        # our clone was edited by hand; the source is the truth for clones
                        new = gate.update(EventRef(ref.calendar_id, ref.id, None), action.draft, m.idem_key)
                    except NotFound:
                        db.execute("UPDATE mappings SET state = 'tombstone', content_hash = ?, updated_at = ? "
                                   "WHERE id = ?", [action.draft.content_hash(), self._stamp(), m.id])
                        continue
                    db.execute("UPDATE mappings SET target_id = ?, target_etag = ?, content_hash = ?, start_utc = ?, "
                               "updated_at = ? WHERE id = ?",
                               [new.id, new.etag, action.draft.content_hash(), action.start_utc, self._stamp(), m.id])
                    report.updated += 1
                elif isinstance(action, Delete):
                    self._delete(target, gate, action, window)
                    report.deleted += 1
                elif isinstance(action, Forget):
                    db.execute("DELETE FROM mappings WHERE id = ?", [action.mapping.id])
                elif isinstance(action, Tombstone):
                    db.execute("UPDATE mappings SET state = 'tombstone', content_hash = ?, updated_at = ? WHERE id = ?",
                               [action.draft_hash, self._stamp(), action.mapping.id])
            except (AuthError, RateLimited, AccessDenied):
                raise
            except HomecalError as err:
                report.failed += 1
                first_error = first_error or str(err)
                log.warning("rule %s: a write failed: %s", rule_id, err)
        if report.failed:
            report.message = f"{report.failed} write(s) failed, retried next cycle; first: {first_error}"

    def _create_batched(self, rule_id: int, target: Calendar, gate: Gate, creates: list[Create],
                        report: RuleReport) -> str:
        """Creates through the provider's batch endpoint; returns the first error's text.

        The same three steps as `_create`, a chunk at a time: the chunk's intent rows are
        committed in one transaction, then the provider writes them with their keys, then
        the results are recorded in one transaction. A create that failed keeps its
        pending-create row and is finished next cycle under the same key.
        """
        first_error = ""
        step = gate.provider.batch_size * 10
        for start in range(0, len(creates), step):
            chunk = creates[start:start + step]
            with self.store.atomic():
                ids = [self._intent(rule_id, target, action) for action in chunk]
            crash_point("sync-before-create")
            results = gate.create_many([(a.draft, a.idem_key) for a in chunk])
            crash_point("sync-after-create")
            with self.store.atomic() as db:
                for action, mapping_id, result in zip(chunk, ids, results, strict=True):
                    if isinstance(result, HomecalError):
                        report.failed += 1
                        first_error = first_error or str(result)
                        continue
                    db.execute("UPDATE mappings SET state = 'synced', target_id = ?, target_etag = ?, "
                               "content_hash = ?, updated_at = ? WHERE id = ?",
                               [result.id, result.etag, action.draft.content_hash(), self._stamp(), mapping_id])
                    report.created += 1
        if first_error:
            log.warning("rule %s: %d batched write(s) failed: %s", rule_id, report.failed, first_error)
        return first_error

    def _intent(self, rule_id: int, target: Calendar, action: Create) -> int:
        """The create's intent row (pending-create with its key): new, or the tombstone's reused."""
        db = self.store.db
        now = self._stamp()
        if action.mapping_id is None:
            cur = db.execute(
                "INSERT INTO mappings (rule_id, source_calendar_id, source_key, target_calendar_id, generation, "
                "idem_key, state, start_utc, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending-create', ?, ?) RETURNING id",
                [rule_id, action.source_calendar_id, action.source_key, target.id, action.generation,
                 action.idem_key, action.start_utc, now])
            return cur.fetchone()[0]
        db.execute("UPDATE mappings SET state = 'pending-create', generation = ?, idem_key = ?, updated_at = ? "
                   "WHERE id = ?", [action.generation, action.idem_key, now, action.mapping_id])
        return action.mapping_id

    def _create(self, rule_id: int, target: Calendar, gate: Gate, action: Create) -> None:
        # 1. the intent row, committed before the provider hears of it
        mapping_id = self._intent(rule_id, target, action)
        crash_point("sync-before-create")
        # 2. the write, with the deterministic key
        ref = gate.create(action.draft, action.idem_key)
        crash_point("sync-after-create")
        # 3. the result
        self.store.db.execute("UPDATE mappings SET state = 'synced', target_id = ?, target_etag = ?, "
                              "content_hash = ?, updated_at = ? WHERE id = ?",
                              [ref.id, ref.etag, action.draft.content_hash(), self._stamp(), mapping_id])

    def _delete(self, target: Calendar, gate: Gate, action: Delete, window: Window) -> None:
        db = self.store.db
        m = action.mapping
        db.execute("UPDATE mappings SET state = 'pending-delete', updated_at = ? WHERE id = ?", [self._stamp(), m.id])
        ref = EventRef(target.remote_id, m.target_id, m.target_etag) if m.target_id else None
        if ref is None:
            # a create that crashed before its result was recorded may still have landed
            ref = gate.provider.ref_for_key(target.remote_id, m.idem_key, window)
            if ref is not None:
                db.execute("UPDATE mappings SET target_id = ? WHERE id = ?", [ref.id, m.id])
        if ref is not None:
            gate.delete(ref)
        crash_point("sync-after-delete")
        db.execute("DELETE FROM mappings WHERE id = ?", [m.id])
