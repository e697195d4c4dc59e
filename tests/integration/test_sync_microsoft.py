"""Sync rules with Microsoft calendars on either side, against the fake Graph API, the fake
Google API and a real Radicale.

What a user would notice: an Outlook series (DST, a moved and a cancelled occurrence)
arriving exactly in Google; CalDAV events arriving in Outlook as busy blocks that carry
homecal's marks, invite nobody and follow changes; a two-way Outlook pair that settles, even
when Graph's change feed hides every mark; a lost delta token, a change outside the window
and replays that duplicate and delete nothing; a clone deleted by hand; a big first sync sent
in batches; a revoked sign-in that pauses the account, deletes nothing and mails the admin;
and a sync that converges, with no duplicates, while a tenth of Graph's answers are faults.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.booking import outbox_job
from daemon.config import with_overrides
from daemon.models import Style
from daemon.providers import microsoft_events as me
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from tests.google_helpers import calendar_of, fast_retries, google_config, link_google  # noqa: F401
from tests.graph_helpers import fast_graph_retries, graph_config, link_microsoft  # noqa: F401
from tests.sync_helpers import BERLIN, TODAY, at, dav_instances, google_live, make_owner, run, sync_env

pytestmark = pytest.mark.slow

ANN = "ann@contoso.com"
GANN = "ann@example.com"


@pytest.fixture
def env(store, config, graph_fake, ms_login, google_fake, radicale, smtp_sink, fast_retries,  # noqa: F811
        fast_graph_retries):  # noqa: F811
    """An owner with a Microsoft account (calendars A, B), a Google account (G) and CalDAV (src, dst)."""
    graph_fake.directory.add_user(ANN, timezone="W. Europe Standard Time")
    graph_fake.mailbox(ANN)
    cal_a = graph_fake.add_calendar(ANN, "A")
    cal_b = graph_fake.add_calendar(ANN, "B")
    google_fake.add_user(GANN)
    cal_g = google_fake.add_calendar(GANN, summary="G")
    cfg = graph_config(google_config(config, google_fake), graph_fake, ms_login)
    cfg = with_overrides(cfg, smtp=smtp_sink.config_smtp(), server={"public_url": "https://cal.example.org"})
    owner = make_owner(store)
    users.set_email(store, owner.id, "owner@example.org")
    m = link_microsoft(store, cfg, graph_fake, ms_login, owner.id, ANN, name="outlook")
    g = link_google(store, cfg, google_fake, owner.id, GANN, name="google")
    e = sync_env(store, cfg, owner, radicale, "msync")
    e.fake, e.gfake, e.smtp, e.microsoft = graph_fake, google_fake, smtp_sink, m
    e.m_cal = {"A": calendar_of(store, m, cal_a), "B": calendar_of(store, m, cal_b)}
    e.m_remote = {"A": cal_a, "B": cal_b}
    e.g_cal, e.g_remote = calendar_of(store, g, cal_g), cal_g
    return e


def live(env, name: str) -> list[dict]:
    """What the user sees in an Outlook calendar: its singles and series masters."""
    return env.fake.events(ANN, env.m_remote[name])


def glive(env) -> list[dict]:
    return google_live(env.gfake, env.g_remote)


def add(env, name: str, summary: str, start: datetime, end: datetime, **fields) -> dict:
    return env.fake.add_event(ANN, env.m_remote[name], subject=summary, start=start, end=end, **fields)


def writes(env) -> list:
    return [r for r in env.fake.requests if r.method in ("POST", "PATCH", "DELETE")
            and not r.path.endswith("/getSchedule")]


def test_outlook_series_arrives_in_google_exactly(env):
    # weekly 09:00 Berlin for a year: whatever today is, it crosses a DST change
    first = TODAY + timedelta(days=1)
    series = add(env, "A", "Weekly", {"dateTime": f"{first}T09:00:00", "timeZone": "W. Europe Standard Time"},
                 {"dateTime": f"{first}T10:00:00", "timeZone": "W. Europe Standard Time"},
                 recurrence={"pattern": {"type": "weekly", "interval": 1,
                                         "daysOfWeek": [first.strftime("%A").lower()]},
                             "range": {"type": "numbered", "startDate": str(first), "numberOfOccurrences": 52}})
    add(env, "A", "Lunch", at(3, 11), at(3, 12))
    env.rule(env.m_cal["A"], env.g_cal)
    (report,) = run(env)
    assert report.status == "ok", report.message
    got = glive(env)
    weekly = [e for e in got if e["summary"] == "Weekly"]
    assert len(weekly) in (13, 14)  # the window's ~90 days
    hours = {datetime.fromisoformat(e["start"]["dateTime"].replace("Z", "+00:00")).astimezone(BERLIN).hour
             for e in weekly}
    assert hours == {9}
    assert [e["summary"] for e in got if e["summary"] != "Weekly"] == ["Lunch"]
    assert all(not e.get("attendees") for e in got)

    # cancel the second occurrence, move the third: the copies follow
    def original(n: int) -> datetime:
        return datetime.combine(first + timedelta(weeks=n), datetime.min.time(), BERLIN).replace(hour=9)
    env.fake.cancel_occurrence(ANN, series["id"], original(1))
    env.fake.move_occurrence(ANN, series["id"], original(2), original(2) + timedelta(hours=5),
                             original(2) + timedelta(hours=6))
    (report,) = run(env)
    assert (report.created, report.deleted, report.updated) == (0, 1, 1), report.counts()
    got = glive(env)
    assert len([e for e in got if e["summary"] == "Weekly"]) == len(weekly) - 1
    (report,) = run(env)
    assert report.status == "unchanged"


def test_caldav_events_become_marked_busy_blocks_in_outlook(env):
    env.put_dav("a", at(2, 9), at(2, 10), "Doctor")
    env.put_dav("b", at(4, 9), at(4, 10), "Bank")
    env.rule(env.dav_cal["src"], env.m_cal["B"], Style.BUSY)
    (report,) = run(env)
    assert report.created == 2, report.message
    blocks = live(env, "B")
    assert sorted(e["subject"] for e in blocks) == ["Busy", "Busy"]
    for e in blocks:
        assert e["transactionId"].startswith("homecal-") and not e["attendees"]
        props = {p["id"]: p["value"] for p in e["singleValueExtendedProperties"]}
        assert props[me.KIND_PROP] == "1/busy" and props[me.KEY_PROP] == e["transactionId"][len("homecal-"):]
    assert env.fake.invitations == []

    env.put_dav("a", at(2, 13), at(2, 14), "Doctor")
    env.delete_dav("b")
    (report,) = run(env)
    assert (report.updated, report.deleted) == (1, 1), report.counts()
    (block,) = live(env, "B")
    assert datetime.fromisoformat(block["start"]["dateTime"]).hour in (13, at(2, 13).astimezone(BERLIN).hour)
    # the user's own event in that calendar is never touched
    add(env, "B", "Mine", at(5, 9), at(5, 10))
    run(env)
    assert "Mine" in [e["subject"] for e in live(env, "B")]


@pytest.mark.parametrize("marks_hidden", [False, True], ids=["marks-in-feed", "marks-hidden"])
def test_two_way_outlook_pair_settles(env, marks_hidden):
    # Graph's delta may leave transactionId out and never returns extended properties: the
    # mapping table alone must keep the pair from copying its own copies
    env.fake.hide_transaction_id = marks_hidden
    add(env, "A", "From A", at(2, 15), at(2, 16))
    add(env, "B", "From B", at(3, 15), at(3, 16))
    env.rule(env.m_cal["A"], env.m_cal["B"])
    env.rule(env.m_cal["B"], env.m_cal["A"])
    run(env, rounds=3)
    for name in ("A", "B"):
        assert sorted(e["subject"] for e in live(env, name)) == ["From A", "From B"]
    # hours later the targets are listed again to find clones deleted by hand: none was
    env.clock["now"] += timedelta(hours=7)
    run(env)
    env.fake.requests.clear()
    reports = run(env)
    assert [r.status for r in reports] == ["unchanged", "unchanged"]
    assert writes(env) == []
    # the copies were recognised as present, not taken for ones deleted by hand...
    assert {m.state for r in reports for m in rules_repo.mappings(env.store, r.rule_id)} == {"synced"}
    # ...so an edit at the source updates its copy rather than making a second one
    (src,) = [e for e in live(env, "A") if e["subject"] == "From A"]
    env.fake.update_event(ANN, src["id"], subject="From A, edited")
    run(env, rounds=2)
    for name in ("A", "B"):
        assert sorted(e["subject"] for e in live(env, name)) == ["From A, edited", "From B"]


def test_a_lost_delta_token_duplicates_and_deletes_nothing(env):
    for d in range(1, 6):
        add(env, "A", f"e{d}", at(d, 9), at(d, 10))
    rid = env.rule(env.m_cal["A"], env.m_cal["B"])
    run(env)
    env.fake.expire_delta_tokens()
    env.fake.requests.clear()
    (report,) = run(env)
    assert report.status in ("ok", "unchanged") and (report.created, report.deleted) == (0, 0)
    assert len(rules_repo.mappings(env.store, rid)) == 5 and len(live(env, "B")) == 5
    assert 410 in [r.status for r in env.fake.requests]


def test_changes_outside_the_window_and_replays_delete_no_clone(env):
    env.fake.replay = True
    far = add(env, "A", "Far away", at(200, 9), at(200, 10))
    first = TODAY + timedelta(days=1)
    series = add(env, "A", "Daily", at(1, 7), at(1, 8), recurrence={
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": str(first), "numberOfOccurrences": 150}})
    env.rule(env.m_cal["A"], env.dav_cal["dst"])
    run(env)
    before = len(dav_instances(env, "dst"))
    assert before > 80
    env.fake.update_event(ANN, far["id"], subject="Far away, edited")
    env.fake.move_occurrence(ANN, series["id"], at(140, 7), at(140, 9), at(140, 10))
    (report,) = run(env)
    assert report.deleted == 0 and report.status in ("ok", "unchanged"), report.counts()
    assert len(dav_instances(env, "dst")) == before


def test_clone_deleted_by_hand_is_not_resurrected_until_its_source_changes(env):
    src = add(env, "A", "Plan", at(2, 9), at(2, 10))
    env.rule(env.m_cal["A"], env.m_cal["B"])
    run(env)
    (clone,) = live(env, "B")
    env.fake.delete_event(ANN, clone["id"])
    env.clock["now"] += timedelta(hours=7)  # the target's next reconciling listing
    (report,) = run(env)
    assert live(env, "B") == [] and report.created == 0
    assert [m.state for m in rules_repo.mappings(env.store, report.rule_id)] == ["tombstone"]
    env.fake.update_event(ANN, src["id"], subject="Plan v2")
    run(env)
    (again,) = live(env, "B")
    assert again["subject"] == "Plan v2" and again["id"] != clone["id"]


def test_big_first_sync_goes_out_in_json_batches(env):
    for i in range(90):
        env.put_dav(f"e{i}", at(1 + i % 60, 6 + i % 12), at(1 + i % 60, 7 + i % 12), f"e{i}")
    env.rule(env.dav_cal["src"], env.m_cal["B"], Style.BUSY)
    env.fake.requests.clear()
    (report,) = run(env)
    assert report.created == 90, report.message
    envelopes = [r for r in env.fake.requests if r.path.rstrip("/") == "/$batch" and not r.in_batch]
    members = [r for r in env.fake.requests if r.in_batch]
    assert len(envelopes) == 5 and len(members) == 90
    assert len(live(env, "B")) == 90
    assert max(env.fake.peak_in_flight.values()) <= 4


def test_revoked_sign_in_pauses_the_account_deletes_nothing_and_mails_the_admin(env):
    add(env, "A", "x", at(2, 9), at(2, 10))
    rid = env.rule(env.m_cal["A"], env.dav_cal["dst"])
    run(env)
    assert len(dav_instances(env, "dst")) == 1
    env.fake.directory.revoke(ANN)
    env.fake.directory.expire_access_tokens()
    (report,) = run(env)
    assert report.status == "error"
    account = accounts.get(env.store, env.microsoft.id)
    assert account.status == "needs-relink" and "link" in (account.last_error or "").lower()
    assert len(dav_instances(env, "dst")) == 1 and len(rules_repo.mappings(env.store, rid)) == 1
    run(env)  # seen again: no second mail
    outbox_job.deliver_due(env.cfg, env.store, now=datetime.now(UTC) + timedelta(hours=1))
    (mail,) = env.smtp.received
    assert mail.message["Subject"] == "homecal: Microsoft 365 account outlook needs re-linking"
    text = mail.message.get_body(("plain",)).get_content()
    assert "rt-" not in text and "at-" not in text
    assert f"https://cal.example.org/accounts/{env.microsoft.id}/relink/microsoft" in text


def test_a_refreshed_sign_in_is_kept_sealed(env):
    before = accounts.secret(env.store, env.microsoft.id)
    env.fake.directory.expire_access_tokens()
    env.rule(env.m_cal["A"], env.m_cal["B"])
    (report,) = run(env)
    assert report.status == "ok", report.message
    after = accounts.secret(env.store, env.microsoft.id)
    assert after["token_cache"] != before["token_cache"] and after["refreshed_at"] >= before["refreshed_at"]
    # Entra rotated the refresh token: the next cycle works only with the saved cache
    env.fake.directory.expire_access_tokens()
    add(env, "A", "later", at(2, 9), at(2, 10))
    (report,) = run(env)
    assert report.status == "ok" and report.created == 1, report.message
    raw = env.store.path.read_bytes() if hasattr(env.store, "path") else b""
    assert b"RefreshToken" not in raw and b"rt-" not in raw


def test_sync_converges_without_duplicates_under_ten_percent_faults(env):
    for i in range(40):
        add(env, "A", f"e{i}", at(1 + i % 30, 8 + i % 10), at(1 + i % 30, 9 + i % 10))
        env.put_dav(f"d{i}", at(1 + i % 30, 18), at(1 + i % 30, 19), f"dav {i}")
    env.rule(env.m_cal["A"], env.m_cal["B"])
    env.rule(env.dav_cal["src"], env.m_cal["B"], Style.BUSY)
    env.rule(env.m_cal["A"], env.g_cal, Style.BUSY)
    env.fake.fault_rate(0.1, statuses=(429, 503), seed=7)
    for round_ in range(12):
        if round_ in (2, 4):
            victim = sorted(live(env, "A"), key=lambda e: e["subject"])[round_]
            env.fake.update_event(ANN, victim["id"], subject=victim["subject"] + " edited")
        env.store.db.execute("UPDATE accounts SET backoff_until = NULL")
        reports = run(env)
        if round_ >= 5 and all(r.status in ("ok", "unchanged") for r in reports):
            break
    assert any(r.status in (429, 503) for r in env.fake.requests)
    env.fake.fault_rate(0)
    env.store.db.execute("UPDATE accounts SET backoff_until = NULL")
    run(env, rounds=2)
    blocks = live(env, "B")
    keys = [e["transactionId"] for e in blocks]
    assert len(keys) == len(set(keys)) == 80  # 40 clones + 40 busy blocks, no duplicates
    clones = sorted(e["subject"] for e in blocks if e["subject"] != "Busy")
    assert len(clones) == 40 and sum(s.endswith(" edited") for s in clones) == 2
    assert len(glive(env)) == 40
    assert sorted(e["subject"] for e in live(env, "A"))[:2] != ["Busy", "Busy"]  # nothing came back
