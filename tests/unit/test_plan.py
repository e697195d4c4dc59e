"""The planner, pure: every filter, guard and decision without a server."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from daemon.models import Instance, Style, Window
from daemon.sync.options import RuleOptions, WorkingHours
from daemon.sync.plan import Create, Delete, Forget, Mapping, RuleView, Tombstone, Update, idem_key, plan_rule

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
WINDOW = Window.around(NOW, 1, 90)
SRC = 1


def inst(key="e1", start=None, hours=1, **kw) -> Instance:
    start = start or datetime(2026, 6, 11, 9, 0, tzinfo=NY)
    return Instance(key=key, item_id=f"{key}.ics", uid=key, start=start, end=start + timedelta(hours=hours),
                    summary=kw.pop("summary", "Dentist"), description=kw.pop("description", "bring card"),
                    location=kw.pop("location", "Main St 1"), **kw)


def rule(**opts) -> RuleView:
    return RuleView(7, RuleOptions(**opts), target_calendar_id=2, sources={SRC: "Work"})


def plan(view, instances, mappings=(), **kw):
    return plan_rule(view, {SRC: instances}, list(mappings), WINDOW, NY, **kw)


def synced(p, state="synced", **kw) -> list[Mapping]:
    """The mapping rows the engine would hold after applying plan `p` successfully."""
    out = []
    for i, a in enumerate(p.of(Create)):
        out.append(Mapping(i + 1, a.source_calendar_id, a.source_key, a.generation, a.idem_key, f"t{i}", "etag",
                           a.draft.content_hash(), state, a.start_utc, kw.get("updated_at", "2026-06-10T00:00:00")))
    return out


def test_new_instance_is_created_then_a_second_cycle_changes_nothing():
    view = rule(style=Style.BUSY)
    first = plan(view, [inst()])
    assert [type(a) for a in first.actions] == [Create]
    second = plan(view, [inst()], synced(first))
    assert second.actions == []


def test_busy_block_carries_no_details_and_blocks_time():
    d = plan(rule(style=Style.BUSY), [inst(transparent=False)]).of(Create)[0].draft
    assert (d.summary, d.description, d.location, d.kind, d.transparent) == ("Busy", None, None, "busy", False)


def test_clone_copies_fields_the_rule_allows_and_fills_the_template():
    view = rule(style=Style.CLONE, title_template="[{calendar}] {title}", copy_description=False)
    d = plan(view, [inst()]).of(Create)[0].draft
    assert d.summary == "[Work] Dentist" and d.description is None and d.location == "Main St 1"
    assert d.kind == "clone" and d.private


def test_clone_of_a_free_busy_source_is_a_busy_block():
    d = plan(rule(style=Style.CLONE), [inst(summary=None, description=None, location=None)]).of(Create)[0].draft
    assert d.summary == "Busy" and d.kind == "busy"


def test_changed_source_updates_the_clone_in_place():
    view = rule(style=Style.CLONE)
    first = plan(view, [inst()])
    moved = inst(start=datetime(2026, 6, 11, 10, 0, tzinfo=NY))
    p = plan(view, [moved], synced(first))
    assert [type(a) for a in p.actions] == [Update]
    assert p.actions[0].mapping.idem_key == first.actions[0].idem_key


def test_same_moment_in_another_zone_is_not_a_change():
    view = rule(style=Style.BUSY)
    first = plan(view, [inst()])
    same = inst(start=datetime(2026, 6, 11, 13, 0, tzinfo=UTC))  # 09:00 New York in summer
    assert plan(view, [same], synced(first)).actions == []


def test_deleted_source_deletes_the_clone():
    view = rule()
    first = plan(view, [inst("a"), inst("b")])
    p = plan(view, [inst("a")], synced(first))
    assert [type(a) for a in p.actions] == [Delete] and p.actions[0].mapping.source_key == "b"


def test_partner_events_are_never_sources():
    p = plan(rule(), [inst(partner_key="abc")])
    assert p.actions == [] and p.skipped[0][2].startswith("written by homecal")


@pytest.mark.parametrize("kw,opts,reason", [
    ({"declined": True}, {}, "declined"),
    ({"transparent": True}, {}, "shown as free"),
    ({"status": "tentative"}, {"tentative": "skip"}, "tentative"),
    ({"status": "cancelled"}, {}, "cancelled"),
    ({"summary": "Lunch"}, {"title_include": "^dent"}, "include"),
    ({"summary": "Private: x"}, {"title_exclude": "private"}, "exclude"),
])
def test_filters_leave_instances_out(kw, opts, reason):
    p = plan(rule(**opts), [inst(**kw)])
    assert p.actions == [] and reason in p.skipped[0][2]


def test_filters_can_be_relaxed():
    p = plan(rule(skip_declined=False, skip_free=False), [inst("a", declined=True), inst("b", transparent=True)])
    assert len(p.of(Create)) == 2
    assert plan(rule(), [inst(status="tentative")]).of(Create)  # tentative counts as busy by default


def test_all_day_choices():
    day = date(2026, 6, 12)
    allday = Instance(key="d", item_id="d", uid="d", start=day, end=day + timedelta(days=2), all_day=True, summary="Trip")
    free_allday = replace(allday, key="f", transparent=True)
    assert len(plan(rule(all_day="all", skip_free=False), [allday, free_allday]).of(Create)) == 2
    assert [a.source_key for a in plan(rule(all_day="busy-only", skip_free=False), [allday, free_allday]).of(Create)] == ["d"]
    assert plan(rule(all_day="skip"), [allday]).actions == []
    d = plan(rule(all_day="all"), [allday]).of(Create)[0].draft
    assert d.all_day and d.start == day and d.end == day + timedelta(days=2)  # multi-day, exclusive end kept


def test_working_hours_in_the_owners_zone():
    wh = WorkingHours(days=(0, 1, 2, 3, 4), start="09:00", end="17:00")
    thursday_morning = inst("in", start=datetime(2026, 6, 11, 10, 0, tzinfo=NY))
    thursday_night = inst("night", start=datetime(2026, 6, 11, 20, 0, tzinfo=NY))
    saturday = inst("sat", start=datetime(2026, 6, 13, 10, 0, tzinfo=NY))
    straddling = inst("edge", start=datetime(2026, 6, 11, 8, 30, tzinfo=NY))  # overlaps 09:00
    p = plan(rule(working_hours=wh), [thursday_morning, thursday_night, saturday, straddling])
    assert sorted(a.source_key for a in p.of(Create)) == ["edge", "in"]


def test_floating_time_is_pinned_to_the_owners_zone():
    floating = inst(start=datetime(2026, 6, 11, 9, 0))
    d = plan(rule(), [floating]).of(Create)[0].draft
    assert d.start.tzinfo is not None and d.start.astimezone(NY).hour == 9


def test_interrupted_create_is_retried_with_the_same_key():
    view = rule()
    first = plan(view, [inst()])
    pending = synced(first, state="pending-create")
    p = plan(view, [inst()], pending)
    assert [type(a) for a in p.actions] == [Create]
    assert p.actions[0].idem_key == first.actions[0].idem_key and p.actions[0].mapping_id == pending[0].id


def test_interrupted_delete_is_finished():
    view = rule()
    first = plan(view, [inst()])
    p = plan(view, [inst()], [replace(m, state="pending-delete") for m in synced(first)])
    assert [type(a) for a in p.actions] == [Delete]


def test_clone_deleted_by_hand_stays_deleted_until_the_source_changes():
    view = rule(style=Style.CLONE)
    first = plan(view, [inst()])
    rows = synced(first, updated_at="2026-06-10T00:00:00")
    # the target was listed after the clone was made, and the clone was not there
    p = plan(view, [inst()], rows, target_partner_keys=set(), target_refreshed_at="2026-06-10T01:00:00")
    assert [type(a) for a in p.actions] == [Tombstone]
    tomb = [replace(rows[0], state="tombstone", content_hash=p.actions[0].draft_hash)]
    assert plan(view, [inst()], tomb).actions == []  # no resurrection loop
    changed = plan(view, [inst(summary="Dentist (moved)")], tomb)
    c = changed.of(Create)[0]
    assert c.generation == 1 and c.idem_key != first.actions[0].idem_key  # a fresh id: deleted ids stay reserved


def test_a_clone_made_after_the_target_listing_is_not_taken_as_deleted():
    view = rule()
    rows = synced(plan(view, [inst()]), updated_at="2026-06-10T02:00:00")
    p = plan(view, [inst()], rows, target_partner_keys=set(), target_refreshed_at="2026-06-10T01:00:00")
    assert p.actions == []


def test_an_unread_source_deletes_nothing():
    view = RuleView(7, RuleOptions(), 2, {1: "a", 3: "b"})
    p1 = plan_rule(view, {1: [inst("x")], 3: [inst("y")]}, [], WINDOW, NY)
    rows = synced(p1)
    p2 = plan_rule(view, {1: [inst("x")]}, rows, WINDOW, NY)  # source 3 failed to read
    assert p2.actions == []


def test_instances_sliding_into_the_past_are_forgotten_not_deleted():
    view = rule()
    past = inst(start=datetime(2026, 6, 1, 9, 0, tzinfo=NY))
    rows = [Mapping(1, SRC, past.key, 0, "k", "t", "e", "h", "synced", "2026-06-01T13:00:00+00:00")]
    p = plan(view, [], rows)
    assert [type(a) for a in p.actions] == [Forget]


def test_idempotency_key_is_deterministic_and_google_safe():
    k = idem_key(7, 1, "uid|20260611T130000Z", 0)
    assert k == idem_key(7, 1, "uid|20260611T130000Z", 0)
    assert k != idem_key(8, 1, "uid|20260611T130000Z", 0) != idem_key(7, 1, "uid|20260611T130000Z", 1)
    assert re.fullmatch(r"[0-9a-v]{32}", k)


def test_rule_options_validation_lists_every_problem():
    from daemon.errors import UsageError

    with pytest.raises(UsageError) as exc:
        RuleOptions.from_dict({"style": "mirror", "all_day": "some", "title_include": "(", "title_template": "{who}",
                               "bogus": 1})
    text = str(exc.value)
    for part in ("style", "all_day", "regular expression", "{who}", "bogus"):
        assert part in text
