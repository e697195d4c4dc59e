"""Every calendar's mirror is kept current for the calendar view, not only the rules' sources
(SyncEngine.refresh_calendars, run by the daemon's cycle and the web UI's "Sync now")."""

from __future__ import annotations

from daemon.models import Style
from daemon.store import accounts as accounts_repo
from daemon.store import mirror
from daemon.store import rules as rules_repo
from daemon.sync.cycle import engine_for, run_sync
from daemon.sync.options import RuleOptions
from tests.unit.test_preview import put, soon


def titles(env, cal: str) -> list[str | None]:
    return sorted(i.summary for i in mirror.instances(env.store, env.cals[cal].id))


def test_a_calendar_no_rule_reads_is_mirrored(env):
    put(env, "C", "solo", soon(1), "Only here")
    engine = engine_for(env.store, env.config)
    assert engine.run() == []
    assert titles(env, "C") == []
    assert engine.refresh_calendars() == 0
    assert titles(env, "C") == ["Only here"]


def test_copies_just_written_are_in_the_targets_mirror_after_a_refreshing_sync(env):
    put(env, "A", "standup", soon(1), "Standup")
    rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id, RuleOptions(style=Style.CLONE))
    [report] = run_sync(env.store, env.config, refresh=True)
    assert report.created == 1
    [copy] = mirror.instances(env.store, env.cals["B"].id)
    assert copy.summary == "Standup" and copy.partner_key  # known as homecal's copy, hidden by default


def test_a_source_that_comes_back_empty_is_not_wiped_by_the_refresh(env):
    put(env, "A", "standup", soon(1), "Standup")
    rule = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id, RuleOptions())
    engine = engine_for(env.store, env.config)
    engine.run()
    env.store.db.execute("UPDATE local_events SET deleted = 1 WHERE calendar_id = ?", [env.cals["A"].id])
    accounts_repo.set_cursor(env.store, env.cals["A"].id, None, "", full=False)  # force a full listing
    assert engine.refresh_calendars() == 1  # refused: an empty source is a fault
    assert titles(env, "A") == ["Standup"]
    assert rules_repo.mappings(env.store, rule.id)[0].state == "synced"


def test_a_change_found_by_the_refresh_is_applied_by_the_rules_next_run(env):
    rule = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id, RuleOptions())
    engine = engine_for(env.store, env.config)
    engine.run()
    put(env, "A", "late", soon(2), "Late")
    engine.refresh_calendars()
    report = engine.run([rule.id])[0]
    assert (report.status, report.created) == ("ok", 1)
