"""Sync end to end on a real Radicale, through the real command line.

Every point of the sync issue that a user would notice on a CalDAV server: recurring
series with EXDATE, a moved and a cancelled instance, weekly 09:00 New York across the
March DST change, all-day and multi-day events, a malformed object skipped, a quiet cycle
costing one request per source and no write, a rejected sync token recovered by a diff,
an ICS feed as a source, and a two-way pair that stays stable.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import caldav
import pytest

from daemon.cli import main
from daemon.config import load_config
from daemon.ical import instances_from_ical
from daemon.models import Window
from daemon.store import open_store

pytestmark = pytest.mark.slow

NY = ZoneInfo("America/New_York")
TODAY = datetime.now(timezone.utc).date()


def vcal(body: str) -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//test//EN\r\n{body}END:VCALENDAR\r\n"


def vevent(uid: str, lines: str, summary: str = "Meeting") -> str:
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{summary}\r\n{lines}END:VEVENT\r\n"


def d(day: date) -> str:
    return day.strftime("%Y%m%d")


@pytest.fixture
def env(radicale, tmp_path, capsys):
    """homecal initialised, a Radicale user with calendars `src` and `dst`, and helpers."""
    user = radicale.new_user("sync")
    urls = {name: radicale.make_calendar(user, name) for name in ("src", "dst")}
    cfg = tmp_path / "config.toml"
    # New York's longest stretch without a DST change is ~238 days: a 260-day window and a
    # 36-week series cross one whatever day the test runs.
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[sync]\nwindow_future_days = 260\n'
                   'max_deletions = 50\n')
    pw = tmp_path / "pw"
    pw.write_text(radicale.password(user) + "\n")
    admin_pw = tmp_path / "admin"
    admin_pw.write_text("correct horse battery\n")

    def homecal(*args: str) -> tuple[int, str]:
        code = main(["--config", str(cfg), *args])
        out = capsys.readouterr()
        return code, out.out + out.err

    assert homecal("init", "--admin-user", "admin", "--admin-password-file", str(admin_pw))[0] == 0

    class Env:
        pass

    e = Env()
    e.user, e.urls, e.cfg, e.pw, e.homecal, e.radicale = user, urls, str(cfg), str(pw), homecal, radicale
    e.put = lambda cal, name, text: radicale.put(user, urls[cal] + name, text)
    e.delete = lambda cal, name: radicale.delete(user, urls[cal] + name)
    return e


def target_instances(env, cal="dst"):
    client = caldav.DAVClient(env.urls[cal], username=env.user, password=env.radicale.password(env.user))
    calendar = client.calendar(url=env.urls[cal])
    window = Window.around(datetime.now(timezone.utc), 1, 260)
    out = []
    for obj in calendar.objects(load_objects=True):
        if obj.data:  # the listing also names objects deleted since
            out += instances_from_ical(obj.data, str(obj.url), window, NY)
    return out


def link(env, url=None, name="dav"):
    code, out = env.homecal("account", "add", "caldav", "--name", name, "--url", url or env.radicale.url,
                            "--username", env.user, "--password-file", env.pw)
    assert code == 0, out
    return out


def test_recurring_series_all_day_and_dst_arrive_exactly(env):
    first_monday = TODAY + timedelta(days=(7 - TODAY.weekday()) % 7 or 7)
    series_start = datetime.combine(first_monday, datetime.min.time()).replace(hour=9)
    skipped = first_monday + timedelta(weeks=1)
    moved = first_monday + timedelta(weeks=2)
    cancelled = first_monday + timedelta(weeks=3)
    weekly = vevent("weekly", (
        f"DTSTART;TZID=America/New_York:{series_start:%Y%m%dT%H%M%S}\r\n"
        f"DTEND;TZID=America/New_York:{series_start + timedelta(hours=1):%Y%m%dT%H%M%S}\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=36\r\n"
        f"EXDATE;TZID=America/New_York:{d(skipped)}T090000\r\n"), "Standup")
    moved_override = vevent("weekly", (
        f"RECURRENCE-ID;TZID=America/New_York:{d(moved)}T090000\r\n"
        f"DTSTART;TZID=America/New_York:{d(moved)}T140000\r\nDTEND;TZID=America/New_York:{d(moved)}T150000\r\n"),
        "Standup (moved)")
    cancelled_override = vevent("weekly", (
        f"RECURRENCE-ID;TZID=America/New_York:{d(cancelled)}T090000\r\nSTATUS:CANCELLED\r\n"
        f"DTSTART;TZID=America/New_York:{d(cancelled)}T090000\r\nDTEND;TZID=America/New_York:{d(cancelled)}T100000\r\n"),
        "Standup")
    env.put("src", "weekly.ics", vcal(weekly + moved_override + cancelled_override))
    trip = TODAY + timedelta(days=10)
    env.put("src", "trip.ics", vcal(vevent("trip", f"DTSTART;VALUE=DATE:{d(trip)}\r\n"
                                                   f"DTEND;VALUE=DATE:{d(trip + timedelta(days=3))}\r\n", "Trip")))
    env.put("src", "nodtend.ics", vcal(vevent("nodtend", f"DTSTART:{d(TODAY + timedelta(days=2))}T150000Z\r\n"
                                                         "DURATION:PT45M\r\n", "Call")))
    env.put("src", "utf8.ics", vcal(vevent("utf8", f"DTSTART:{d(TODAY + timedelta(days=3))}T150000Z\r\n"
                                                   f"DTEND:{d(TODAY + timedelta(days=3))}T160000Z\r\n",
                                           "Réunion à Zürich — 東京")))
    # Radicale refuses unparsable objects, so the malformed one is valid syntax, invalid meaning.
    env.put("src", "bad.ics", vcal(vevent("bad", f"DTSTART:{d(TODAY + timedelta(days=4))}T150000Z\r\n"
                                                 f"DTEND:{d(TODAY + timedelta(days=4))}T140000Z\r\n", "Broken")))
    link(env)
    code, out = env.homecal("rule", "add", "--from", "dav/src", "--to", "dav/dst", "--style", "clone", "--all-day", "all")
    assert code == 0, out
    code, out = env.homecal("sync")
    assert code == 0, out

    got = target_instances(env)
    standups = sorted((i for i in got if i.summary.startswith("Standup")), key=lambda i: i.start)
    local = [i.start.astimezone(NY) for i in standups]
    assert len(standups) == 36 - 2  # one EXDATE, one cancelled; the moved one is there once
    assert all(t.hour == 9 for t in local if t.date() != moved), local  # 09:00 New York, DST or not
    assert {i.start.astimezone(timezone.utc).hour for i in standups if i.start.astimezone(NY).date() != moved} == {13, 14}
    assert [t.hour for t in local if t.date() == moved] == [14]
    assert skipped not in [t.date() for t in local] and cancelled not in [t.date() for t in local]
    [trip_copy] = [i for i in got if i.summary == "Trip"]
    assert trip_copy.all_day and (trip_copy.start, trip_copy.end) == (trip, trip + timedelta(days=3))
    [call] = [i for i in got if i.summary == "Call"]
    assert call.end - call.start == timedelta(minutes=45)
    assert any(i.summary == "Réunion à Zürich — 東京" for i in got)
    assert not any(i.summary == "Broken" for i in got)  # skipped, and the rest synced on
    assert all(i.partner_key for i in got)


def test_quiet_cycle_costs_one_request_per_source_and_no_write(env, counting_proxy):
    env.put("src", "a.ics", vcal(vevent("a", f"DTSTART:{d(TODAY + timedelta(days=2))}T150000Z\r\n"
                                             f"DTEND:{d(TODAY + timedelta(days=2))}T160000Z\r\n")))
    proxy = counting_proxy(env.radicale.url)
    link(env, url=proxy.base_url + "/")
    env.homecal("rule", "add", "--from", "dav/src", "--to", "dav/dst", "--style", "busy")
    assert env.homecal("sync")[0] == 0
    proxy.reset_count()
    code, out = env.homecal("sync")
    assert code == 0 and "unchanged" in out
    methods = [r.method for r in proxy.requests]
    assert methods == ["REPORT"], methods  # one sync-collection REPORT, nothing written


def test_changes_deletes_and_a_rejected_token_never_duplicate_or_wipe(env):
    for i in range(3):
        env.put("src", f"e{i}.ics", vcal(vevent(f"e{i}", f"DTSTART:{d(TODAY + timedelta(days=2 + i))}T150000Z\r\n"
                                                         f"DTEND:{d(TODAY + timedelta(days=2 + i))}T160000Z\r\n",
                                                f"Event {i}")))
    link(env)
    env.homecal("rule", "add", "--from", "dav/src", "--to", "dav/dst", "--style", "clone")
    env.homecal("sync")
    env.put("src", "e0.ics", vcal(vevent("e0", f"DTSTART:{d(TODAY + timedelta(days=2))}T170000Z\r\n"
                                               f"DTEND:{d(TODAY + timedelta(days=2))}T180000Z\r\n", "Event 0 moved")))
    env.delete("src", "e2.ics")
    code, out = env.homecal("sync")
    assert "create 0, update 1, delete 1" in out, out
    assert sorted(i.summary for i in target_instances(env)) == ["Event 0 moved", "Event 1"]
    # The server forgets our token: the next cycle lists everything and diffs.
    store = open_store(load_config(env.cfg), env={})
    store.db.execute("UPDATE calendars SET cursor = 'sync:http://radicale.org/ns/sync/bogus'")
    store.close()
    env.put("src", "e3.ics", vcal(vevent("e3", f"DTSTART:{d(TODAY + timedelta(days=6))}T150000Z\r\n"
                                               f"DTEND:{d(TODAY + timedelta(days=6))}T160000Z\r\n", "Event 3")))
    code, out = env.homecal("sync")
    assert code == 0 and "create 1, update 0, delete 0" in out, out
    assert sorted(i.summary for i in target_instances(env)) == ["Event 0 moved", "Event 1", "Event 3"]


def test_ics_feed_source_into_caldav(env, feed_server):
    feed_server.set_body(vcal(vevent("f1", f"DTSTART:{d(TODAY + timedelta(days=2))}T150000Z\r\n"
                                         f"DTEND:{d(TODAY + timedelta(days=2))}T160000Z\r\n", "From the feed")))
    code, out = env.homecal("account", "add", "ics", "--name", "feed", "--url", feed_server.url())
    assert code == 0, out
    link(env)
    env.homecal("rule", "add", "--from", "feed/" + json.loads(env.homecal("calendars", "--json")[1])[0]["name"],
                "--to", "dav/dst", "--style", "busy")
    code, out = env.homecal("sync")
    assert code == 0 and "create 1" in out, out
    assert [i.summary for i in target_instances(env)] == ["Busy"]
    code, out = env.homecal("sync")
    assert "unchanged" in out  # the feed answered 304 or the same body


def test_two_way_caldav_pair_is_stable(env):
    env.put("src", "a.ics", vcal(vevent("a", f"DTSTART:{d(TODAY + timedelta(days=2))}T150000Z\r\n"
                                             f"DTEND:{d(TODAY + timedelta(days=2))}T160000Z\r\n", "From src")))
    env.put("dst", "b.ics", vcal(vevent("b", f"DTSTART:{d(TODAY + timedelta(days=3))}T150000Z\r\n"
                                             f"DTEND:{d(TODAY + timedelta(days=3))}T160000Z\r\n", "From dst")))
    link(env)
    env.homecal("rule", "add", "--from", "dav/src", "--to", "dav/dst", "--style", "clone")
    env.homecal("rule", "add", "--from", "dav/dst", "--to", "dav/src", "--style", "clone")
    for _ in range(3):
        assert env.homecal("sync")[0] == 0
    for cal in ("src", "dst"):
        assert sorted(i.summary for i in target_instances(env, cal)) == ["From dst", "From src"]
    code, out = env.homecal("sync")
    assert out.count("unchanged") == 2, out
