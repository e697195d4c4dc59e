"""Sync rules with Google calendars on either side, against the fake Google API and a real Radicale.

What a user would notice: a Google series (DST, a moved and a cancelled occurrence) arriving
exactly in CalDAV; CalDAV events arriving in Google as busy blocks that carry homecal's
marker, invite nobody and follow changes; a two-way Google pair that settles; a rejected sync
token that duplicates and deletes nothing; a clone deleted by hand; a big first sync sent
in batches; a revoked grant that pauses the account and deletes nothing; and a sync that
converges, with no duplicates, while a tenth of Google's answers are faults.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.models import Style
from daemon.store import accounts
from daemon.store import rules as rules_repo
from tests.google_helpers import calendar_of, fast_retries, google_config, instances, link_google  # noqa: F401
from tests.sync_helpers import BERLIN, TODAY, at, dav_instances, google_live, make_owner, run, sync_env

pytestmark = pytest.mark.slow

ANN = "ann@example.com"


def gtime(moment: datetime) -> dict:
    return {"dateTime": moment.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}


@pytest.fixture
def env(store, config, google_fake, radicale, fast_retries):  # noqa: F811
    """An owner with a Google account (calendars Primary, A, B) and a CalDAV account (src, dst)."""
    google_fake.add_user(ANN)
    cal_a = google_fake.add_calendar(ANN, summary="A", time_zone="Europe/Berlin")
    cal_b = google_fake.add_calendar(ANN, summary="B")
    cfg = google_config(config, google_fake)
    owner = make_owner(store)
    g = link_google(store, cfg, google_fake, owner.id, ANN, name="google")
    e = sync_env(store, cfg, owner, radicale, "gsync")
    e.fake, e.google = google_fake, g
    e.g_cal = {"A": calendar_of(store, g, cal_a), "B": calendar_of(store, g, cal_b)}
    e.g_remote = {"A": cal_a, "B": cal_b}
    return e


def live(env, name: str) -> list[dict]:
    return google_live(env.fake, env.g_remote[name])


def test_google_series_arrives_in_caldav_exactly(env):
    # weekly 09:00 Berlin for a year: whatever today is, it crosses a DST change
    start = datetime.combine(TODAY + timedelta(days=1), datetime.min.time(), BERLIN).replace(hour=9)
    master = env.fake.put_event(env.g_remote["A"], {
        "summary": "Weekly", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=52"],
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Berlin"}})
    env.fake.put_event(env.g_remote["A"], {"summary": "Lunch", "start": gtime(at(3, 11)), "end": gtime(at(3, 12))})
    env.rule(env.g_cal["A"], env.dav_cal["dst"])
    (report,) = run(env)
    assert report.status == "ok", report.message
    got = dav_instances(env, "dst")
    weekly = [i for i in got if i.summary == "Weekly"]
    assert len(weekly) == 13  # ~90 days: 12 or 13 weeks
    assert {i.start.astimezone(BERLIN).hour for i in weekly} == {9}
    assert [i.summary for i in got if i.summary != "Weekly"] == ["Lunch"]

    # cancel the second occurrence, move the third: the copies follow
    occ = sorted(instances(env.fake, ANN, env.g_remote["A"], master["id"]), key=lambda o: o["start"]["dateTime"])
    env.fake.delete_event(env.g_remote["A"], occ[1]["id"])
    moved = dict(occ[2], summary="Weekly moved")
    moved["start"] = {"dateTime": (start + timedelta(days=14, hours=5)).isoformat(), "timeZone": "Europe/Berlin"}
    moved["end"] = {"dateTime": (start + timedelta(days=14, hours=6)).isoformat(), "timeZone": "Europe/Berlin"}
    env.fake.put_event(env.g_remote["A"], moved)
    (report,) = run(env)
    assert (report.created, report.deleted) == (0, 1) and report.updated == 1, report.counts()
    got = dav_instances(env, "dst")
    assert len([i for i in got if i.summary == "Weekly"]) == 11
    (m,) = [i for i in got if i.summary == "Weekly moved"]
    assert m.start.astimezone(BERLIN).hour == 14
    (report,) = run(env)
    assert report.status == "unchanged"


def test_caldav_events_become_marked_busy_blocks_in_google(env):
    env.put_dav("a", at(2, 9), at(2, 10), "Doctor")
    env.put_dav("b", at(4, 9), at(4, 10), "Bank")
    env.rule(env.dav_cal["src"], env.g_cal["B"], Style.BUSY)
    env.fake.reset_counts()
    (report,) = run(env)
    assert report.created == 2, report.message
    blocks = live(env, "B")
    assert sorted(e["summary"] for e in blocks) == ["Busy", "Busy"]
    assert all(e["extendedProperties"]["private"]["homecal.kind"] == "busy" for e in blocks)
    assert all(not e.get("attendees") for e in blocks)
    writes = [r for r in env.fake.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")
              and "/events" in r.path]
    assert writes and all(r.query.get("sendUpdates") == "none" for r in writes)

    # a moved source moves its block; a deleted one deletes it
    env.put_dav("a", at(2, 13), at(2, 14), "Doctor")
    env.delete_dav("b")
    (report,) = run(env)
    assert (report.updated, report.deleted) == (1, 1), report.counts()
    (block,) = live(env, "B")
    assert block["start"]["dateTime"].startswith(at(2, 13).strftime("%Y-%m-%dT")) or "13:00" in str(block["start"])
    # the user's own event in that calendar is never touched
    env.fake.put_event(env.g_remote["B"], {"summary": "Mine", "start": gtime(at(5, 9)), "end": gtime(at(5, 10))})
    run(env)
    assert "Mine" in [e["summary"] for e in live(env, "B")]


def test_two_way_google_pair_settles(env):
    env.fake.put_event(env.g_remote["A"], {"summary": "From A", "start": gtime(at(2, 15)), "end": gtime(at(2, 16))})
    env.fake.put_event(env.g_remote["B"], {"summary": "From B", "start": gtime(at(3, 15)), "end": gtime(at(3, 16))})
    env.rule(env.g_cal["A"], env.g_cal["B"])
    env.rule(env.g_cal["B"], env.g_cal["A"])
    run(env, rounds=3)
    for name in ("A", "B"):
        assert sorted(e["summary"] for e in live(env, name)) == ["From A", "From B"]
    env.fake.reset_counts()
    reports = run(env)
    assert [r.status for r in reports] == ["unchanged", "unchanged"]
    assert not [r for r in env.fake.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]


def test_rejected_sync_token_duplicates_and_deletes_nothing(env):
    for d in range(1, 6):
        env.fake.put_event(env.g_remote["A"], {"summary": f"e{d}", "start": gtime(at(d, 9)), "end": gtime(at(d, 10))})
    rid = env.rule(env.g_cal["A"], env.g_cal["B"])
    run(env)
    before = len(rules_repo.mappings(env.store, rid))
    env.fake.invalidate_sync_tokens()
    env.fake.reset_counts()
    (report,) = run(env)
    assert report.status in ("ok", "unchanged") and (report.created, report.deleted) == (0, 0)
    assert len(rules_repo.mappings(env.store, rid)) == before == 5
    assert len(live(env, "B")) == 5
    assert [r.status for r in env.fake.requests if "syncToken" in r.query] == [410]


def test_clone_deleted_by_hand_is_not_resurrected_until_its_source_changes(env):
    src = env.fake.put_event(env.g_remote["A"], {"summary": "Plan", "start": gtime(at(2, 9)), "end": gtime(at(2, 10))})
    env.rule(env.g_cal["A"], env.g_cal["B"])
    run(env)
    (clone,) = live(env, "B")
    env.fake.delete_event(env.g_remote["B"], clone["id"])
    # the deletion is noticed at the target's next reconciling listing (every 6 hours)
    env.clock["now"] += timedelta(hours=7)
    (report,) = run(env)
    assert live(env, "B") == [] and report.created == 0
    assert [m.state for m in rules_repo.mappings(env.store, report.rule_id)] == ["tombstone"]
    env.fake.put_event(env.g_remote["A"], dict(src, summary="Plan v2"))
    run(env)
    (again,) = live(env, "B")
    assert again["summary"] == "Plan v2" and again["id"] != clone["id"]  # a new generation's id


def test_big_first_sync_goes_out_in_batches(env):
    for i in range(240):
        env.fake.put_event(env.g_remote["A"], {"summary": f"e{i}", "start": gtime(at(1 + i % 80, 6 + i % 12)),
                                               "end": gtime(at(1 + i % 80, 7 + i % 12))})
    env.rule(env.g_cal["A"], env.g_cal["B"], Style.BUSY)
    env.fake.reset_counts()
    (report,) = run(env)
    assert report.created == 240, report.message
    batches = [r for r in env.fake.requests if r.path.endswith("/batch/calendar/v3") and not r.batch_member]
    members = [r for r in env.fake.requests if r.batch_member]
    assert len(batches) == 5 and len(members) == 240
    assert len(live(env, "B")) == 240


def test_revoked_grant_pauses_the_account_and_deletes_nothing(env):
    env.fake.put_event(env.g_remote["A"], {"summary": "x", "start": gtime(at(2, 9)), "end": gtime(at(2, 10))})
    rid = env.rule(env.g_cal["A"], env.dav_cal["dst"])
    run(env)
    assert len(dav_instances(env, "dst")) == 1
    env.fake.revoke(ANN)
    env.fake.expire_access_tokens()
    (report,) = run(env)
    assert report.status == "error"
    assert accounts.get(env.store, env.google.id).status == "needs-relink"
    assert len(dav_instances(env, "dst")) == 1 and len(rules_repo.mappings(env.store, rid)) == 1


def test_refreshed_access_token_is_kept(env):
    before = accounts.secret(env.store, env.google.id)
    env.fake.expire_access_tokens()
    env.rule(env.g_cal["A"], env.g_cal["B"])
    (report,) = run(env)
    assert report.status == "ok", report.message
    after = accounts.secret(env.store, env.google.id)
    assert after["token"] != before["token"] and after["refresh_token"] == before["refresh_token"]
    assert after["refreshed_at"] >= before["refreshed_at"]


def test_quota_exceeded_rests_the_account_and_deletes_nothing(env):
    env.fake.put_event(env.g_remote["A"], {"summary": "x", "start": gtime(at(2, 9)), "end": gtime(at(2, 10))})
    env.rule(env.g_cal["A"], env.g_cal["B"])
    run(env)
    env.fake.quota_exceeded = True
    env.fake.put_event(env.g_remote["A"], {"summary": "y", "start": gtime(at(3, 9)), "end": gtime(at(3, 10))})
    (report,) = run(env)
    assert report.status == "error"
    acc = accounts.get(env.store, env.google.id)
    assert acc.backoff_until and acc.backoff_until >= (datetime.now(UTC) + timedelta(minutes=55)).isoformat()
    env.fake.quota_exceeded = False
    assert len(live(env, "B")) == 1


def test_sync_converges_without_duplicates_under_ten_percent_faults(env):
    for i in range(60):
        env.fake.put_event(env.g_remote["A"], {"summary": f"e{i}", "start": gtime(at(1 + i % 30, 8 + i % 10)),
                                               "end": gtime(at(1 + i % 30, 9 + i % 10))})
        env.put_dav(f"d{i}", at(1 + i % 30, 18), at(1 + i % 30, 19), f"dav {i}")
    env.rule(env.g_cal["A"], env.g_cal["B"])
    env.rule(env.dav_cal["src"], env.g_cal["B"], Style.BUSY)
    env.rule(env.g_cal["A"], env.dav_cal["dst"], Style.BUSY)
    env.fake.seed(11)
    env.fake.fault_rate = 0.1
    for round_ in range(12):
        # some change each round while faults keep coming
        if round_ in (2, 4):
            victim = live(env, "A")[round_]
            env.fake.put_event(env.g_remote["A"], dict(victim, summary=victim["summary"] + " edited"))
        # the engine backs an account off after an error; faults are the point here, not the wait
        env.store.db.execute("UPDATE accounts SET backoff_until = NULL")
        reports = run(env)
        if round_ >= 5 and all(r.status in ("ok", "unchanged") for r in reports):
            break
    assert env.fake.requests and any(r.status >= 500 or r.status in (403, 429) for r in env.fake.requests)
    env.fake.fault_rate = 0
    env.store.db.execute("UPDATE accounts SET backoff_until = NULL")
    run(env, rounds=2)
    blocks = live(env, "B")
    keys = [e["extendedProperties"]["private"]["homecal.key"] for e in blocks]
    assert len(keys) == len(set(keys)) == 120  # 60 clones + 60 busy blocks, no duplicates
    summaries = sorted(e["summary"] for e in blocks if e["extendedProperties"]["private"]["homecal.kind"] == "clone")
    assert len(summaries) == 60 and sum(s.endswith(" edited") for s in summaries) == 2
    assert len(dav_instances(env, "dst")) == 60
    env.fake.reset_counts()
    assert all(r.status == "unchanged" for r in run(env))
    assert not [r for r in env.fake.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]
