"""The engine end to end over local calendars: real store, real gate, real planner.

Local calendars need no server, so these tests pin the engine's guards quickly; the same
behaviour is proven against Radicale in test_sync_caldav.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from daemon.config import with_overrides
from daemon.models import AccessMode, CalendarInfo, Style
from daemon.providers import make_provider
from daemon.providers.local import LocalProvider
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.sync.engine import SyncEngine
from daemon.sync.options import RuleOptions

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
UTC = timezone.utc


class Counting:
    """Wraps a provider and counts the calls the engine makes to it."""

    def __init__(self, inner, calls):
        self.inner, self.calls = inner, calls

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if callable(attr) and name in ("changes", "create", "update", "delete"):
            def counted(*a, **kw):
                self.calls.append(name)
                return attr(*a, **kw)
            return counted
        return attr


@pytest.fixture
def env(store, config):
    """An owner with two local calendars, A and B, and an engine whose clock is fixed."""
    owner = users.create(store, "owner", "correct horse battery", is_admin=True)
    cals = {}
    for name in ("A", "B", "C"):
        acc = accounts.add(store, owner.id, "local", name, AccessMode.READ_WRITE, {})
        cals[name] = accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0]
    calls: list[str] = []
    clock = {"now": NOW}
    cfg = with_overrides(config, sync={"max_deletions": 5})

    def provider_for(account, tz):
        return Counting(make_provider(store, cfg, account, tz), calls)

    engine = SyncEngine(store, cfg, provider_for, now=lambda: clock["now"])
    return type("Env", (), {"store": store, "owner": owner, "cals": cals, "calls": calls, "engine": engine,
                            "clock": clock, "config": cfg})


def local(env, name) -> LocalProvider:
    cal = env.cals[name]
    return LocalProvider(store=env.store, account_id=cal.account_id, name=name, mode=AccessMode.READ_WRITE, tz=UTC)


def put(env, cal, uid, start, hours=1, summary="Meeting", extra=""):
    end = start + timedelta(hours=hours)
    text = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
            f"SUMMARY:{summary}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")
    local(env, cal).put_ics("local", uid, text)


def events(env, cal) -> list:
    from daemon.models import Window

    window = Window.around(env.clock["now"], 1, 90)
    return [i for item in local(env, cal).changes("local", None, window).items for i in item.instances]


def failing_for(account_id, error, fallback):
    """A provider factory whose provider for `account_id` fails every read with `error`."""

    class Failing:
        def changes(self, *a, **kw):
            raise error

        def close(self):
            pass

    return lambda account, tz: Failing() if account.id == account_id else fallback(account, tz)


def add_rule(env, src, dst, **opts):
    return rules_repo.add(env.store, env.owner.id, [env.cals[s].id for s in src], env.cals[dst].id,
                          RuleOptions(**opts))


def at(day, hour):
    return datetime(2026, 6, day, hour, 0, tzinfo=UTC)


def test_initial_copy_then_a_quiet_cycle_writes_nothing(env):
    for i in range(5):
        put(env, "A", f"e{i}", at(11 + i, 9))
    rule = add_rule(env, ["A"], "B", style=Style.BUSY)
    [report] = env.engine.run()
    assert (report.status, report.created) == ("ok", 5)
    assert sorted(e.summary for e in events(env, "B")) == ["Busy"] * 5
    env.calls.clear()
    [report] = env.engine.run()
    assert report.status == "unchanged"
    assert env.calls == ["changes"]  # one small request for the one source, no write
    assert rules_repo.get(env.store, rule.id).last_error is None


def test_source_changes_flow_through_and_are_not_duplicated(env):
    put(env, "A", "e1", at(11, 9), summary="Dentist")
    add_rule(env, ["A"], "B", style=Style.CLONE)
    env.engine.run()
    put(env, "A", "e1", at(11, 10), summary="Dentist (moved)")
    put(env, "A", "e2", at(12, 9), summary="Gym")
    [r] = env.engine.run()
    assert (r.created, r.updated, r.deleted) == (1, 1, 0)
    got = sorted((e.summary, e.start) for e in events(env, "B"))
    assert got == [("Dentist (moved)", at(11, 10)), ("Gym", at(12, 9))]
    local(env, "A").delete(__import__("daemon.models", fromlist=["EventRef"]).EventRef("local", "e2"))
    [r] = env.engine.run()
    assert r.deleted == 1 and [e.summary for e in events(env, "B")] == ["Dentist (moved)"]


def test_two_way_pair_is_stable_and_never_copies_copies(env):
    put(env, "A", "a1", at(11, 9), summary="From A")
    put(env, "B", "b1", at(12, 9), summary="From B")
    add_rule(env, ["A"], "B", style=Style.CLONE)
    add_rule(env, ["B"], "A", style=Style.CLONE)
    for _ in range(3):
        env.engine.run()
    assert sorted(e.summary for e in events(env, "A")) == ["From A", "From B"]
    assert sorted(e.summary for e in events(env, "B")) == ["From A", "From B"]
    env.calls.clear()
    reports = env.engine.run()
    assert {r.status for r in reports} == {"unchanged"}
    assert "create" not in env.calls and "update" not in env.calls


def test_deletion_guard_pauses_until_confirmed(env):
    for i in range(8):
        put(env, "A", f"e{i}", at(11 + i, 9))
    rule = add_rule(env, ["A"], "B")
    env.engine.run()
    from daemon.models import EventRef

    for i in range(7):
        local(env, "A").delete(EventRef("local", f"e{i}"))
    [r] = env.engine.run()
    assert r.status == "paused" and len(events(env, "B")) == 8  # nothing deleted yet
    paused = rules_repo.get(env.store, rule.id)
    assert paused.state == "paused-deletions" and len(paused.pending_deletions) == 7
    assert "confirm-deletions" in paused.last_error
    [r] = env.engine.run()
    assert r.status == "paused"  # stays paused on later cycles
    rules_repo.confirm_deletions(env.store, rule.id)
    [r] = env.engine.run()
    assert (r.status, r.deleted) == ("ok", 7) and len(events(env, "B")) == 1
    assert rules_repo.get(env.store, rule.id).deletions_confirmed is False


def test_an_emptied_source_is_a_fault_not_a_wipe(env):
    for i in range(3):
        put(env, "A", f"e{i}", at(11 + i, 9))
    rule = add_rule(env, ["A"], "B")
    env.engine.run()
    env.store.db.execute("DELETE FROM local_events WHERE calendar_id = ?", [env.cals["A"].id])  # vanished, no trace
    env.clock["now"] = NOW + timedelta(days=1)  # the window rolls: a full listing
    [r] = env.engine.run()
    assert r.status == "error" and "nothing deleted" in r.message
    assert len(events(env, "B")) == 3
    assert "returned no events" in rules_repo.get(env.store, rule.id).last_error


def test_clone_deleted_by_hand_is_not_resurrected(env):
    put(env, "A", "e1", at(11, 9))
    add_rule(env, ["A"], "B", style=Style.CLONE)
    env.engine.run()
    [clone] = events(env, "B")
    from daemon.models import EventRef

    local(env, "B").delete(EventRef("local", clone.item_id))
    env.clock["now"] = NOW + timedelta(hours=7)  # the target's reconciliation is due
    for _ in range(3):
        env.engine.run()
    assert events(env, "B") == []
    put(env, "A", "e1", at(11, 9), summary="Meeting, now with agenda")  # the source changes
    env.engine.run()
    assert [e.summary for e in events(env, "B")] == ["Meeting, now with agenda"]


def test_free_busy_source_keeps_no_details(env, store):
    acc = accounts.add(store, env.owner.id, "local", "fb", AccessMode.FREE_BUSY, {})
    cal = accounts.save_calendars(store, acc.id, [CalendarInfo("local", "fb")])[0]
    LocalProvider(store=store, account_id=acc.id, name="fb", mode=AccessMode.READ_WRITE, tz=UTC).put_ics(
        "local", "s1", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:s1\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20260611T090000Z\r\nDTEND:20260611T100000Z\r\nSUMMARY:Secret project\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n")
    rules_repo.add(store, env.owner.id, [cal.id], env.cals["B"].id, RuleOptions(style=Style.CLONE))
    env.engine.run()
    from daemon.store import mirror

    [inst] = mirror.instances(store, cal.id)
    assert inst.summary is None and inst.description is None
    assert [e.summary for e in events(env, "B")] == ["Busy"]


def test_gate_never_writes_to_a_free_busy_target(env, store):
    acc = accounts.add(store, env.owner.id, "local", "ro", AccessMode.FREE_BUSY, {})
    cal = accounts.save_calendars(store, acc.id, [CalendarInfo("local", "ro")])[0]
    put(env, "A", "e1", at(11, 9))
    rule = rules_repo.add(store, env.owner.id, [env.cals["A"].id], cal.id, RuleOptions())
    [r] = env.engine.run([rule.id])
    assert r.status == "error" and "never writes" in r.message
    assert "create" not in env.calls


def test_one_broken_account_does_not_stop_the_others(env):
    put(env, "A", "e1", at(11, 9))
    put(env, "C", "c1", at(12, 9))
    add_rule(env, ["A"], "B")
    add_rule(env, ["C"], "B")
    broken = env.cals["C"].account_id
    original = env.engine.provider_for

    from daemon.errors import ProviderError

    env.engine.provider_for = failing_for(broken, ProviderError("connection refused by cal.example.org"), original)
    reports = {r.rule_id: r for r in env.engine.run()}
    assert sorted(r.status for r in reports.values()) == ["error", "ok"]
    acc = accounts.get(env.store, broken)
    assert acc.failures == 1 and acc.backoff_until and "connection refused" in acc.last_error
    # while it backs off, it is not asked again
    env.calls.clear()
    env.engine.run()
    assert accounts.get(env.store, broken).failures == 1


def test_auth_failure_marks_needs_relink_and_deletes_nothing(env):
    put(env, "A", "e1", at(11, 9))
    add_rule(env, ["A"], "B")
    env.engine.run()
    original = env.engine.provider_for
    src_account = env.cals["A"].account_id

    from daemon.errors import AuthError

    env.engine.provider_for = failing_for(src_account, AuthError("invalid_grant: token revoked"), original)
    env.clock["now"] = NOW + timedelta(days=1)
    [r] = env.engine.run()
    assert r.status == "error"
    assert accounts.get(env.store, src_account).status == "needs-relink"
    assert len(events(env, "B")) == 1


def test_dry_run_lists_the_plan_and_changes_nothing(env):
    put(env, "A", "e1", at(11, 9), summary="Dentist")
    add_rule(env, ["A"], "B", style=Style.CLONE)
    [r] = env.engine.run(dry_run=True)
    assert r.status == "dry-run" and r.created == 1
    assert r.plan.actions[0].draft.summary == "Dentist"
    assert events(env, "B") == [] and "create" not in env.calls


def test_remove_rule_deletes_its_copies(env):
    from daemon.sync.cleanup import remove_rule

    put(env, "A", "e1", at(11, 9))
    put(env, "B", "mine", at(12, 9), summary="My own event")
    rule = add_rule(env, ["A"], "B")
    env.engine.run()
    assert remove_rule(env.store, env.config, rule.id) == 1
    assert [e.summary for e in events(env, "B")] == ["My own event"]  # the user's own event untouched
