"""The dry-run preview of a rule (daemon/sync/preview.py and SyncEngine.preview).

The formatting is pure and tested directly; the preview itself runs the real engine over
local calendars in a real store, and proves it writes nothing but the mirror refresh.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from daemon.models import AccessMode, Draft, EventRef, Style
from daemon.providers.local import LocalProvider
from daemon.store import rules as rules_repo
from daemon.sync import preview
from daemon.sync.cycle import engine_for
from daemon.sync.engine import RuleReport
from daemon.sync.options import RuleOptions
from daemon.sync.plan import Create, Delete, Mapping, Plan

NY = ZoneInfo("America/New_York")
UTC = timezone.utc


# -- pure parts -------------------------------------------------------------------------------

def test_a_timed_event_is_shown_in_the_users_zone():
    start = datetime(2026, 7, 6, 13, 0, tzinfo=UTC)  # 09:00 in New York (EDT)
    assert preview.format_span(start, start + timedelta(hours=1), NY) == "Mon 06 Jul 2026, 09:00–10:00"


def test_an_event_over_midnight_names_both_days():
    start = datetime(2026, 7, 6, 23, 30, tzinfo=NY)
    text = preview.format_span(start, start + timedelta(hours=2), NY)
    assert text == "Mon 06 Jul 2026, 23:30 – Tue 07 Jul 2026, 01:30"


def test_all_day_spans_use_their_exclusive_end():
    assert preview.format_span(date(2026, 7, 6), date(2026, 7, 7), NY) == "Mon 06 Jul 2026, all day"
    assert preview.format_span(date(2026, 7, 6), date(2026, 7, 9), NY) == "Mon 06 Jul – Wed 08 Jul 2026, all day"


def test_stored_timestamps_are_shown_in_the_users_zone():
    assert preview.format_stamp("2026-01-15T14:00:00+00:00", NY) == "15 Jan 2026, 09:00"
    assert preview.format_stamp(None, NY) == "never"


def _mapping(i: int, start: str) -> Mapping:
    return Mapping(i, 7, f"k{i}", 0, f"idem{i}", f"t{i}", None, "h", "synced", start)


def test_describe_sorts_counts_and_caps_rows(monkeypatch):
    monkeypatch.setattr(preview, "MAX_ROWS", 2)
    start = datetime(2026, 7, 6, 13, 0, tzinfo=UTC)
    creates = [Create(7, f"k{i}", 0, f"key{i}", Draft("busy", "Busy", start + timedelta(days=i),
                                                        start + timedelta(days=i, hours=1)),
                      (start + timedelta(days=i)).isoformat()) for i in (2, 0, 1)]
    plan = Plan(actions=[*creates, Delete(_mapping(9, start.isoformat()), "source event gone")],
                skipped=[(7, "a", "declined"), (7, "b", "declined"), (7, "c", "tentative")])
    result = preview.describe(RuleReport(1, "dry-run", plan=plan), NY)
    assert result.ok and result.counts == {"created": 3, "updated": 0, "deleted": 1}
    assert [r.when for r in result.created] == ["Mon 06 Jul 2026, 09:00–10:00", "Tue 07 Jul 2026, 09:00–10:00"]
    assert result.deleted[0].title == preview.UNKNOWN_TITLE and result.deleted[0].note == "source event gone"
    assert result.skipped == {"declined": 2, "tentative": 1}


def test_an_unreadable_source_is_named_in_plain_words():
    report = RuleReport(0, "error", message="not synced, nothing deleted: source 7: connection refused")
    result = preview.describe(report, NY, labels={7: "Work / Team"})
    assert not result.ok
    assert result.error == "Work / Team could not be read: Connection refused."
    # the wording of known failures is the dashboard's (daemon.overview.plain_error)
    report.message = "not synced, nothing deleted: source 7: cannot fetch the feed at example.org"
    assert preview.describe(report, NY, labels={7: "Feed / Holidays"}).error == (
        "Feed / Holidays could not be read: homecal could not reach the server: it may be down, "
        "or its address changed.")


# -- the engine's preview, on a real store -----------------------------------------------------


def put(env, cal: str, uid: str, start: datetime, summary: str = "Meeting") -> None:
    end = start + timedelta(hours=1)
    text = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
            f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    local(env, cal).put_ics("local", uid, text)


def local(env, cal: str) -> LocalProvider:
    c = env.cals[cal]
    return LocalProvider(store=env.store, account_id=c.account_id, name=cal, mode=AccessMode.READ_WRITE, tz=UTC)


def soon(days: int, hour: int = 15) -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, hour, tzinfo=UTC) + timedelta(days=days)


def table_counts(store) -> dict[str, int]:
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("rules", "rule_sources", "mappings", "local_events")}


def clone_rule(env, **opts) -> RuleOptions:
    return RuleOptions.from_dict({"style": "clone", **opts})


def test_a_preview_of_an_unsaved_rule_lists_creates_and_writes_no_rule_and_no_event(env):
    put(env, "A", "standup", soon(1), "Standup")
    put(env, "A", "lunch", soon(2), "Lunch")
    before = table_counts(env.store)
    rule = preview.draft_rule(env.owner.id, [env.cals["A"].id], env.cals["B"].id,
                              clone_rule(env, title_template="A: {title}", title_exclude="lunch"))
    result = preview.run_preview(env.store, env.config, rule, UTC)
    assert result.ok and result.counts["created"] == 1
    assert [r.title for r in result.created] == ["A: Standup"]
    assert result.skipped == {"title matches the exclude pattern": 1}
    assert table_counts(env.store) == before  # no rule, no mapping, nothing in the target


def test_a_preview_of_an_edit_shows_the_existing_copies_as_updates_and_deletions(env):
    put(env, "A", "standup", soon(1), "Standup")
    put(env, "A", "lunch", soon(2), "Lunch")
    saved = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id,
                           RuleOptions(style=Style.CLONE))
    assert engine_for(env.store, env.config).run([saved.id])[0].created == 2
    before = table_counts(env.store)
    edited = preview.draft_rule(env.owner.id, list(saved.source_ids), saved.target_calendar_id,
                                clone_rule(env, title_template="[{title}]", title_exclude="lunch"), saved=saved)
    result = preview.run_preview(env.store, env.config, edited, UTC)
    assert result.counts == {"created": 0, "updated": 1, "deleted": 1}
    assert result.updated[0].title == "[Standup]"
    assert result.deleted[0].title == "Lunch"  # named from the source event, still in the mirror
    assert table_counts(env.store) == before
    assert rules_repo.get(env.store, saved.id).options == RuleOptions(style=Style.CLONE)


@pytest.mark.parametrize("how", ["preview", "dry-run"])
def test_a_change_seen_by_a_dry_run_is_still_synced_by_the_next_real_run(env, how):
    # A dry run folds source changes into the mirror; the saved rule must still plan them.
    saved = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id, RuleOptions())
    put(env, "A", "first", soon(1))
    engine = engine_for(env.store, env.config)
    assert engine.run([saved.id])[0].created == 1
    put(env, "A", "second", soon(2))
    if how == "preview":
        rule = preview.draft_rule(env.owner.id, [env.cals["A"].id], env.cals["B"].id, RuleOptions())
        assert preview.run_preview(env.store, env.config, rule, UTC).counts["created"] == 2
    else:
        assert engine.run([saved.id], dry_run=True)[0].created == 1
    report = engine.run([saved.id])[0]
    assert (report.status, report.created) == ("ok", 1)


def test_a_paused_rules_pending_deletions_are_listed_with_their_titles(env):
    put(env, "A", "standup", soon(1), "Standup")
    saved = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id,
                           RuleOptions(style=Style.CLONE))
    engine_for(env.store, env.config).run([saved.id])
    m = rules_repo.mappings(env.store, saved.id)[0]
    rules_repo.pause_for_deletions(env.store, saved.id, [{"mapping": m.id, "reason": "source event gone"}], 0)
    rows = preview.pending_deletions(env.store, rules_repo.get(env.store, saved.id), NY)
    assert [(r.title, r.note) for r in rows] == [("Standup", "source event gone")]
    assert rows[0].when.endswith("–" + f"{soon(1, 16).astimezone(NY):%H:%M}")


def test_a_copy_whose_source_is_gone_is_named_as_the_target_shows_it(env):
    put(env, "A", "lunch", soon(2), "Lunch")
    saved = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id,
                           clone_rule(env, title_template="[{title}]"))
    engine_for(env.store, env.config).run([saved.id])
    local(env, "A").delete(EventRef("local", "lunch"))
    # the target is due for a listing (as every 6 hours), so its copies are in the mirror
    env.store.db.execute("UPDATE calendars SET last_full_at = NULL WHERE id = ?", [env.cals["B"].id])
    result = preview.run_preview(env.store, env.config, saved, NY)
    assert result.counts["deleted"] == 1
    assert (result.deleted[0].title, result.deleted[0].when) == (
        "[Lunch]", preview.format_span(soon(2), soon(2, 16), NY))


def test_a_change_read_by_one_rule_is_still_synced_by_another_rule_of_the_same_source(env):
    # `homecal sync --rule 1` (or a one-rule "Sync now") refreshes the shared source's mirror;
    # rule 2 must not take its next cycle for a quiet one.
    first = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["B"].id, RuleOptions())
    second = rules_repo.add(env.store, env.owner.id, [env.cals["A"].id], env.cals["C"].id, RuleOptions())
    engine = engine_for(env.store, env.config)
    assert [r.created for r in engine.run()] == [0, 0]
    put(env, "A", "new", soon(1))
    assert engine.run([first.id])[0].created == 1
    assert engine.run([first.id])[0].status == "unchanged"
    report = engine.run([second.id])[0]
    assert (report.status, report.created) == ("ok", 1)
