"""Sync rules, their source calendars, and the mapping rows the engine keeps per rule."""

from __future__ import annotations

import json
from dataclasses import dataclass

from daemon.errors import NotFound, UsageError
from daemon.store.db import Store, utcnow
from daemon.sync.options import RuleOptions
from daemon.sync.plan import Mapping


@dataclass(frozen=True)
class Rule:
    id: int
    user_id: int
    name: str
    options: RuleOptions
    source_ids: tuple[int, ...]
    target_calendar_id: int
    state: str  # active | paused-deletions | error
    deletions_confirmed: bool
    pending_deletions: list[dict]
    last_run_at: str | None
    last_success_at: str | None
    last_error: str | None
    last_counts: dict
    next_run_at: str | None


def _rule(store: Store, row: dict) -> Rule:
    sources = tuple(r[0] for r in store.db.execute(
        "SELECT calendar_id FROM rule_sources WHERE rule_id = ? ORDER BY calendar_id", [row["id"]]))
    return Rule(row["id"], row["user_id"], row["name"] or f"rule {row['id']}", RuleOptions.from_json(row["options"]),
                sources, row["target_calendar_id"], row["state"] or "active", bool(row["deletions_confirmed"]),
                json.loads(row["pending_deletions"] or "[]"), row["last_run_at"], row["last_success_at"],
                row["last_error"], json.loads(row["last_counts"] or "{}"), row["next_run_at"])


def add(store: Store, user_id: int, source_ids: list[int], target_id: int, options: RuleOptions,
        name: str = "") -> Rule:
    """Create a rule. Refuses a calendar as its own target and duplicate sources."""
    if not source_ids:
        raise UsageError("a rule needs at least one source calendar (--from)")
    if target_id in source_ids:
        raise UsageError("a calendar cannot sync into itself: the target is also a source")
    if len(set(source_ids)) != len(source_ids):
        raise UsageError("the same source calendar is named twice")
    with store.atomic() as db:
        cur = db.execute("INSERT INTO rules (user_id, name, style, options, target_calendar_id, state, created_at) "
                         "VALUES (?, ?, ?, ?, ?, 'active', ?) RETURNING id",
                         [user_id, name, str(options.style), options.to_json(), target_id, utcnow()])
        rid = cur.fetchone()[0]
        for sid in source_ids:
            db.execute("INSERT INTO rule_sources (rule_id, calendar_id) VALUES (?, ?)", [rid, sid])
    return get(store, rid)


def get(store: Store, rule_id: int, user_id: int | None = None) -> Rule:
    sql, args = "SELECT * FROM rules WHERE id = ?", [rule_id]
    if user_id is not None:
        sql, args = sql + " AND user_id = ?", args + [user_id]
    rows = list(store.db.query(sql, args))
    if not rows:
        raise NotFound(f"no rule {rule_id}; see `homecal rule list`")
    return _rule(store, rows[0])


def all_rules(store: Store, user_id: int | None = None) -> list[Rule]:
    if user_id is None:
        rows = store.db.query("SELECT * FROM rules ORDER BY id")
    else:
        rows = store.db.query("SELECT * FROM rules WHERE user_id = ? ORDER BY id", [user_id])
    return [_rule(store, r) for r in rows]


def update_options(store: Store, rule_id: int, options: RuleOptions) -> None:
    store.db.execute("UPDATE rules SET options = ?, style = ? WHERE id = ?",
                     [options.to_json(), str(options.style), rule_id])


def rename(store: Store, rule_id: int, name: str) -> None:
    """Give a rule a label of its own ("" falls back to "rule N")."""
    store.db.execute("UPDATE rules SET name = ? WHERE id = ?", [name, rule_id])


def remove(store: Store, rule_id: int) -> None:
    with store.atomic() as db:
        db.execute("DELETE FROM mappings WHERE rule_id = ?", [rule_id])
        db.execute("DELETE FROM rule_sources WHERE rule_id = ?", [rule_id])
        db.execute("DELETE FROM rules WHERE id = ?", [rule_id])


def record_run(store: Store, rule_id: int, *, error: str | None, counts: dict | None = None,
               state: str | None = None, next_run_at: str | None = None) -> None:
    now = utcnow()
    sets = ["last_run_at = ?", "last_error = ?"]
    args: list = [now, error[:500] if error else None]
    if error is None:
        sets.append("last_success_at = ?")
        args.append(now)
    if counts is not None:
        sets.append("last_counts = ?")
        args.append(json.dumps(counts))
    if state is not None:
        sets.append("state = ?")
        args.append(state)
    if next_run_at is not None:
        sets.append("next_run_at = ?")
        args.append(next_run_at)
    store.db.execute(f"UPDATE rules SET {', '.join(sets)} WHERE id = ?", args + [rule_id])


def pause_for_deletions(store: Store, rule_id: int, pending: list[dict], threshold: int) -> None:
    store.db.execute(
        "UPDATE rules SET state = 'paused-deletions', pending_deletions = ?, deletions_confirmed = 0, "
        "last_run_at = ?, last_error = ? WHERE id = ?",
        [json.dumps(pending), utcnow(),
         f"paused: the plan would delete {len(pending)} events (more than {threshold}); "
         f"confirm with `homecal rule confirm-deletions {rule_id}`", rule_id])


def confirm_deletions(store: Store, rule_id: int) -> Rule:
    rule = get(store, rule_id)
    if rule.state != "paused-deletions" and not rule.last_error:
        raise UsageError(f"rule {rule_id} is not waiting for a confirmation")
    store.db.execute("UPDATE rules SET state = 'active', deletions_confirmed = 1, last_error = NULL WHERE id = ?",
                     [rule_id])
    return get(store, rule_id)


def clear_confirmation(store: Store, rule_id: int) -> None:
    store.db.execute("UPDATE rules SET deletions_confirmed = 0, pending_deletions = NULL WHERE id = ?", [rule_id])


# -- mappings ----------------------------------------------------------------------------

def mappings(store: Store, rule_id: int) -> list[Mapping]:
    return [Mapping(r["id"], r["source_calendar_id"], r["source_key"], r["generation"], r["idem_key"],
                    r["target_id"], r["target_etag"], r["content_hash"], r["state"], r["start_utc"], r["updated_at"])
            for r in store.db.query("SELECT * FROM mappings WHERE rule_id = ? ORDER BY id", [rule_id])]


def has_pending(store: Store, rule_id: int) -> bool:
    """Is any write of this rule unfinished (pending create or delete)?"""
    return store.db.execute("SELECT 1 FROM mappings WHERE rule_id = ? AND state IN ('pending-create', "
                            "'pending-delete') LIMIT 1", [rule_id]).fetchone() is not None


def clone_missing(store: Store, rule_id: int, target_calendar_id: int, listed_at: str) -> bool:
    """Is a clone written before the target's listing at `listed_at` absent from that listing?"""
    return store.db.execute(
        "SELECT 1 FROM mappings m WHERE m.rule_id = ? AND m.state = 'synced' AND coalesce(m.updated_at, '') < ? "
        "AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.calendar_id = ? AND i.partner_key = m.idem_key) "
        "AND NOT EXISTS (SELECT 1 FROM items i WHERE i.calendar_id = ? AND i.item_id = m.target_id) LIMIT 1",
        [rule_id, listed_at, target_calendar_id, target_calendar_id]).fetchone() is not None


def partner_item_ids(store: Store, calendar_id: int) -> set[str]:
    """Ids of events homecal wrote into this calendar (the mapping side of the loop guard)."""
    return {r[0] for r in store.db.execute(
        "SELECT target_id FROM mappings WHERE target_calendar_id = ? AND target_id IS NOT NULL", [calendar_id])}
