"""The calendar view through real HTTP requests: the right events, at the right local times,
in the right place, for the right user only, reading only the visible days from the store.

Events reach the mirror the way the engine puts them there (mirror.apply_changes, after
daemon.ical expanded the iCalendar text where it matters); one test syncs a real Radicale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from daemon.ical import instances_from_ical
from daemon.models import AccessMode, CalendarInfo, ChangeSet, Instance, Item, Window
from daemon.store import accounts, mirror, users
from daemon.store.db import Store

BERLIN = ZoneInfo("Europe/Berlin")
PASSWORD = "a long enough password"


# -- helpers -------------------------------------------------------------------------------

def make_user(store: Store, name: str, tz: str = "Europe/Berlin") -> users.User:
    user = users.create(store, name, PASSWORD)
    store.db["users"].update(user.id, {"timezone": tz})
    return users.get(store, user.id)


def add_calendar(store: Store, user_id: int, name: str = "Work", *, mode: AccessMode = AccessMode.READ_WRITE,
                 color: str | None = None, account_name: str | None = None) -> int:
    account = accounts.add(store, user_id, "local", account_name or name, mode, {})
    [cal] = accounts.save_calendars(store, account.id, [CalendarInfo("local", name, color)])
    return cal.id


def put(store: Store, calendar_id: int, *instances: Instance, tz=BERLIN, details: bool = True) -> None:
    """Put instances into the mirror as the engine does after reading a calendar."""
    items = [Item(i.item_id, "etag-" + i.key, [i]) for i in instances]
    mirror.apply_changes(store, calendar_id, ChangeSet(items, [], None, full=False), tz, details=details)


def inst(key: str, start, end, summary: str | None = "Meeting", **kw) -> Instance:
    return Instance(key=key, item_id=kw.pop("item_id", key), uid=key, start=start, end=end, summary=summary,
                    all_day=not isinstance(start, datetime), **kw)


def at(y: int, m: int, d: int, hour: int, minute: int = 0, tz=BERLIN) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=tz)


@dataclass
class Link:
    classes: set[str]
    href: str
    title: str
    region: str
    name: str = ""

    @property
    def clean_name(self) -> str:
        return " ".join(self.name.split())


class EventLinks(HTMLParser):
    """Every event link on a page with its accessible name (aria-hidden text left out) and
    where it sits: "allday", "day1".."day7" (grid columns), "cell1".. (month) or a date (agenda)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[Link] = []
        self.region = ""
        self._days = self._cells = 0
        self._current: Link | None = None
        self._depth = self._hidden_at = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        if self._current is not None:
            self._depth += 1
            if a.get("aria-hidden") == "true" and not self._hidden_at:
                self._hidden_at = self._depth
            return
        if tag == "div" and "cal-allday" in classes:
            self.region = "allday"
        elif tag == "div" and "cal-day" in classes:
            self._days += 1
            self.region = f"day{self._days}"
        elif tag == "td":
            self._cells += 1
            self.region = f"cell{self._cells}"
        elif tag == "section" and a.get("aria-labelledby", "").startswith("day-"):
            self.region = a["aria-labelledby"][4:]
        elif tag == "a" and "ev" in classes:
            self._current = Link(classes, a.get("href", ""), a.get("title", ""), self.region)
            self._depth = self._hidden_at = 0

    def handle_endtag(self, tag: str) -> None:
        if self._current is None:
            return
        if self._depth == 0:
            self.links.append(self._current)
            self._current = None
            return
        if self._hidden_at == self._depth:
            self._hidden_at = 0
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._hidden_at:
            self._current.name += data


def event_links(client, url: str) -> list[Link]:
    response = client.get(url)
    assert response.status_code == 200, url
    parser = EventLinks()
    parser.feed(response.get_data(as_text=True))
    return parser.links


def named(links: list[Link], title: str) -> list[Link]:
    return [link for link in links if link.clean_name.startswith(title + ",")]


@pytest.fixture
def berlin_user(store, auth):
    user = make_user(store, "ana")
    auth.login("ana", PASSWORD)
    return user


# -- what the views show -------------------------------------------------------------------

def test_week_shows_a_dst_week_at_the_right_local_times(client, store, berlin_user) -> None:
    cal = add_calendar(store, berlin_user.id)
    # A daily 09:00 Berlin series across the change to winter time on Sunday 25 October.
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:standup\r\n"
           "DTSTAMP:20260101T000000Z\r\nSUMMARY:Standup\r\nDTSTART;TZID=Europe/Berlin:20261022T090000\r\n"
           "DTEND;TZID=Europe/Berlin:20261022T093000\r\nRRULE:FREQ=DAILY;COUNT=6\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    window = Window(datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc))
    instances = instances_from_ical(ics, "standup.ics", window, BERLIN)
    mirror.apply_changes(store, cal, ChangeSet([Item("standup.ics", "1", instances)], [], None, full=False), BERLIN)
    utc_hours = {i.start_utc.hour for i in mirror.busy_between(store, [cal], window.start, window.end)}
    assert utc_hours == {7, 8}  # 09:00 in summer time, then 09:00 in winter time

    first = named(event_links(client, "/calendar/?view=week&date=2026-10-22"), "Standup")
    assert [link.region for link in first] == ["day4", "day5", "day6", "day7"]
    second = named(event_links(client, "/calendar/?view=week&date=2026-10-26"), "Standup")
    assert [link.region for link in second] == ["day1", "day2"]
    for link in first + second:
        assert {"slot-r37", "slot-s2", "lane-1-0"} <= link.classes
        assert "09:00–09:30, Work" in link.clean_name


def test_an_event_crossing_midnight_shows_on_both_days(client, store, berlin_user) -> None:
    cal = add_calendar(store, berlin_user.id)
    put(store, cal, inst("night", at(2026, 11, 25, 22), at(2026, 11, 26, 2), "Night shift"))
    links = named(event_links(client, "/calendar/?view=week&date=2026-11-23"), "Night shift")
    assert [(link.region, "slot-r89" in link.classes, "slot-r1" in link.classes) for link in links] == [
        ("day3", True, False), ("day4", False, True)]
    assert all({"slot-s8"} <= link.classes for link in links)
    assert links[0].clean_name == "Night shift, Wed 25 Nov 22:00 – Thu 26 Nov 02:00, Work"
    agenda = named(event_links(client, "/calendar/?view=agenda&date=2026-11-23"), "Night shift")
    assert [link.region for link in agenda] == ["2026-11-25", "2026-11-26"]


def test_an_all_day_multi_day_event_spans_its_days(client, store, berlin_user) -> None:
    cal = add_calendar(store, berlin_user.id)
    put(store, cal, inst("trip", date(2026, 11, 24), date(2026, 11, 27), "Trip to Lyon"))
    [banner] = named(event_links(client, "/calendar/?view=week&date=2026-11-23"), "Trip to Lyon")
    assert banner.region == "allday" and {"bcol-2", "bspan-3"} <= banner.classes
    assert banner.clean_name == "Trip to Lyon, Tue 24 Nov – Thu 26 Nov, all day, Work"
    # The month grid starts on Monday 26 October: 24-26 November are cells 30-32.
    month = named(event_links(client, "/calendar/?view=month&date=2026-11-01"), "Trip to Lyon")
    assert [link.region for link in month] == ["cell30", "cell31", "cell32"]
    page = client.get("/calendar/?view=agenda&date=2026-11-23").get_data(as_text=True)
    assert "all day (day 2 of 3)" in page


def test_overlapping_events_sit_side_by_side(client, store, berlin_user) -> None:
    home, work = add_calendar(store, berlin_user.id, "Home"), add_calendar(store, berlin_user.id, "Office")
    put(store, home, inst("a", at(2026, 11, 23, 9), at(2026, 11, 23, 10), "Dentist"))
    put(store, work, inst("b", at(2026, 11, 23, 9, 30), at(2026, 11, 23, 11), "Review"))
    links = event_links(client, "/calendar/?view=day&date=2026-11-23")
    [dentist], [review] = named(links, "Dentist"), named(links, "Review")
    assert {"lane-2-0", f"cal-{home}", "slot-r37", "slot-s4"} <= dentist.classes
    assert {"lane-2-1", f"cal-{work}", "slot-r39", "slot-s6"} <= review.classes
    assert review.clean_name == "Review, Mon 23 Nov, 09:30–11:00, Office"


def test_free_busy_accounts_show_busy_blocks_only(client, store, berlin_user) -> None:
    cal = add_calendar(store, berlin_user.id, "Partner", mode=AccessMode.FREE_BUSY)
    put(store, cal, inst("x", at(2026, 11, 24, 14), at(2026, 11, 24, 15), "Job interview", location="Room 4",
                         description="Bring the CV"), details=False)
    # Even a title that reached the mirror by mistake is never shown for such an account.
    put(store, cal, inst("y", at(2026, 11, 25, 14), at(2026, 11, 25, 15), "Leaked title"))
    page = client.get("/calendar/?view=week&date=2026-11-23").get_data(as_text=True)
    links = event_links(client, "/calendar/?view=week&date=2026-11-23")
    assert [link.clean_name for link in links] == ["Busy, Tue 24 Nov, 14:00–15:00, Partner",
                                                   "Busy, Wed 25 Nov, 14:00–15:00, Partner"]
    assert all("ev-busy" in link.classes for link in links)
    assert "free/busy only" in page
    for secret in ("Job interview", "Leaked title", "Room 4", "Bring the CV"):
        assert secret not in page
    details = client.get(links[1].href).get_data(as_text=True)
    assert "Leaked title" not in details and "only knows when you are busy" in details


def test_clones_are_hidden_until_asked_for(client, store, berlin_user) -> None:
    source, target = add_calendar(store, berlin_user.id, "Home"), add_calendar(store, berlin_user.id, "Office")
    put(store, source, inst("own", at(2026, 11, 23, 9), at(2026, 11, 23, 10), "Own event"))
    # One copy carries homecal's marker; the other is known only from the rule's mapping row.
    put(store, target, inst("c1", at(2026, 11, 23, 12), at(2026, 11, 23, 13), "Marked copy", partner_key="k1"),
        inst("c2", at(2026, 11, 24, 12), at(2026, 11, 24, 13), "Mapped copy", item_id="/office/c2.ics"))
    rule_id = store.db["rules"].insert({"user_id": berlin_user.id, "name": "r", "options": "{}",
                                        "target_calendar_id": target}).last_pk
    store.db["mappings"].insert({"rule_id": rule_id, "source_calendar_id": source, "source_key": "s",
                                 "target_calendar_id": target, "idem_key": "k2", "target_id": "/office/c2.ics",
                                 "state": "synced"})

    url = "/calendar/?view=week&date=2026-11-23"
    page = client.get(url).get_data(as_text=True)
    assert [link.clean_name.split(",")[0] for link in event_links(client, url)] == ["Own event"]
    assert "Show copies made by homecal (2 hidden)" in page and "Marked copy" not in page

    shown = event_links(client, url + "&clones=1")
    copies = [link for link in shown if "ev-clone" in link.classes]
    assert sorted(link.clean_name.split(",")[0] for link in copies) == ["Mapped copy", "Marked copy"]
    assert all(link.clean_name.endswith("copy made by homecal") for link in copies)
    page = client.get(url + "&clones=1").get_data(as_text=True)
    assert "Hide copies made by homecal" in page
    # The toggle survives navigation: every link of the page keeps it.
    assert "date=2026-11-30&amp;clones=1" in page and "view=month&amp;date=2026-11-23&amp;clones=1" in page


def test_event_details_work_without_javascript(client, store, berlin_user) -> None:
    cal = add_calendar(store, berlin_user.id)
    put(store, cal, inst("e", at(2026, 11, 23, 9), at(2026, 11, 23, 10), "<script>alert(1)</script> Plan",
                         location="Room <b>4</b>", description="Line one\nLine two"))
    [link] = event_links(client, "/calendar/?view=month&date=2026-11-23")
    page = client.get(link.href).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Plan" in page and "<script>alert" not in page
    assert "Room &lt;b&gt;4&lt;/b&gt;" in page and "Line one\nLine two" in page
    assert "Mon 23 Nov, 09:00–10:00" in page
    assert 'href="/calendar/?view=month&amp;date=2026-11-23"' in page  # back to where the user was


def test_a_bad_date_re_renders_with_a_message_and_keeps_what_was_typed(client, store, berlin_user) -> None:
    response = client.get("/calendar/?view=month&date=2026-02-30")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter a date as year-month-day, for example 2026-11-23." in page
    # Shown as text: a date input would blank a value it cannot read.
    assert re.search(r'<input[^>]*type="text" value="2026-02-30"', page) and 'aria-invalid="true"' in page
    today = datetime.now(BERLIN).date()
    assert f"<h1 class=\"cal-title\">{today:%B %Y}</h1>" in page  # shows this month instead


def test_every_action_is_a_plain_link(client, store, berlin_user) -> None:
    page = client.get("/calendar/?view=week&date=2026-11-25&clones=1").get_data(as_text=True)
    today = datetime.now(BERLIN).date()
    for key, href in (("p", "/calendar/?view=week&amp;date=2026-11-18&amp;clones=1"),
                      ("n", "/calendar/?view=week&amp;date=2026-12-02&amp;clones=1"),
                      ("t", f"/calendar/?view=week&amp;date={today.isoformat()}&amp;clones=1"),
                      ("d", "/calendar/?view=day&amp;date=2026-11-25&amp;clones=1"),
                      ("m", "/calendar/?view=month&amp;date=2026-11-25&amp;clones=1"),
                      ("a", "/calendar/?view=agenda&amp;date=2026-11-25&amp;clones=1")):
        assert f'href="{href}"' in page and f'data-key="{key}"' in page
    # The CSP allows no inline styles or scripts: positions and colours are classes.
    assert "style=" not in page and "<script>" not in page
    assert 'src="/static/calendar.js"' in page and 'href="/calendar/colors.css"' in page


def test_colours_come_from_a_per_user_stylesheet(client, store, berlin_user) -> None:
    red = add_calendar(store, berlin_user.id, "Red", color="#FF0000FF")
    odd = add_calendar(store, berlin_user.id, "Odd", color="red;} body {display:none")
    response = client.get("/calendar/colors.css")
    css = response.get_data(as_text=True)
    assert response.mimetype == "text/css"
    assert f".cal-{red} {{ --cal-bg: #ff0000; --cal-fg: #000000; }}" in css
    assert f".cal-{odd} {{ --cal-bg: #" in css and "display" not in css


def test_the_legend_names_every_calendar(client, store, berlin_user) -> None:
    page = client.get("/calendar/").get_data(as_text=True)
    assert "link an account" in page
    add_calendar(store, berlin_user.id, "Family", account_name="Fastmail")
    add_calendar(store, berlin_user.id, "Partner", mode=AccessMode.FREE_BUSY)
    page = client.get("/calendar/").get_data(as_text=True)
    assert "Family <span class=\"muted\">(Fastmail)</span>" in page
    assert "Partner <span class=\"muted\">(free/busy only)</span>" in page


# -- whose events, and how many are read ---------------------------------------------------

def test_a_second_user_sees_nothing_of_the_first(client, store, auth) -> None:
    first = make_user(store, "ana")
    cal = add_calendar(store, first.id, "Private")
    put(store, cal, inst("p", at(2026, 11, 23, 9), at(2026, 11, 23, 10), "Ana's appointment"))
    [entry_id] = [r[0] for r in store.db.execute("SELECT id FROM instances")]
    make_user(store, "bob")
    auth.login("bob", PASSWORD)
    for view in ("day", "week", "month", "agenda"):
        page = client.get(f"/calendar/?view={view}&date=2026-11-23&clones=1").get_data(as_text=True)
        assert "Ana's appointment" not in page and "Private" not in page
    assert f".cal-{cal} " not in client.get("/calendar/colors.css").get_data(as_text=True)
    assert client.get(f"/calendar/event/{entry_id}").status_code == 404
    assert client.get(f"/calendar/event/{entry_id}?view=week&date=2026-11-23&clones=1").status_code == 404
    auth.logout()
    auth.login("ana", PASSWORD)
    assert client.get(f"/calendar/event/{entry_id}").status_code == 200


def test_only_the_visible_days_are_read(client, store, berlin_user, monkeypatch) -> None:
    cal = add_calendar(store, berlin_user.id)
    start = at(2026, 9, 1, 0)
    # 600 events, one every four hours for 100 days.
    put(store, cal, *(inst(f"e{n}", start + timedelta(hours=4 * n), start + timedelta(hours=4 * n, minutes=30),
                           f"Event {n}") for n in range(600)))
    opened: list[object] = []
    real_unseal = store.unseal

    def counting_unseal(table, column, row, blob):
        if table == "instances":
            opened.append(row)
        return real_unseal(table, column, row, blob)

    monkeypatch.setattr(store, "unseal", counting_unseal)
    links = event_links(client, "/calendar/?view=week&date=2026-10-14")
    assert len(links) == 42 and len(opened) == 42  # six a day, seven days: nothing else unsealed
    opened.clear()
    assert len(event_links(client, "/calendar/?view=day&date=2026-10-14")) == 6 and len(opened) == 6


def test_range_reads_include_events_that_started_before(store) -> None:
    user = make_user(store, "ana")
    cal = add_calendar(store, user.id)
    put(store, cal, inst("before", at(2026, 11, 22, 20), at(2026, 11, 23, 1), "From the night before"),
        inst("ended", at(2026, 11, 22, 22), at(2026, 11, 23, 0), "Ends at the start"),
        inst("long", at(2026, 11, 20, 9), at(2026, 12, 2, 9), "Covers the range"),
        inst("after", at(2026, 11, 30, 0), at(2026, 11, 30, 1), "Starts at the end"))
    found = mirror.instances_between(store, [cal], at(2026, 11, 23, 0), at(2026, 11, 30, 0))
    assert [e.instance.summary for e in found] == ["Covers the range", "From the night before"]
    assert mirror.instances_between(store, [], at(2026, 11, 23, 0), at(2026, 11, 30, 0)) == []


# -- a real calendar server ----------------------------------------------------------------

@pytest.mark.slow
def test_a_free_busy_caldav_account_synced_from_radicale(client, store, config, berlin_user, radicale) -> None:
    from daemon.providers import make_provider
    from daemon.store import rules
    from daemon.sync.cycle import run_sync
    from daemon.sync.options import RuleOptions

    dav_user = radicale.new_user("view")
    url = radicale.make_calendar(dav_user, "work", name="Employer", color="#FF8800")
    day = datetime.now(BERLIN).date() + timedelta(days=2)
    radicale.put(dav_user, url + "review.ics", (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:review\r\n"
        f"DTSTAMP:20260101T000000Z\r\nSUMMARY:Salary review\r\nDTSTART;TZID=Europe/Berlin:{day:%Y%m%d}T150000\r\n"
        f"DTEND;TZID=Europe/Berlin:{day:%Y%m%d}T160000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
    account = accounts.add(store, berlin_user.id, "caldav", "Employer", AccessMode.FREE_BUSY,
                           {"url": radicale.url, "username": dav_user, "password": radicale.password(dav_user)})
    provider = make_provider(store, config, account, BERLIN)
    [source] = accounts.save_calendars(store, account.id, provider.list_calendars())
    provider.close()
    target = add_calendar(store, berlin_user.id, "Home")
    rules.add(store, berlin_user.id, [source.id], target, RuleOptions.from_dict({"style": "busy"}))
    [report] = run_sync(store, config)
    assert report.status == "ok" and report.created == 1, report
    # The engine re-reads a target every 6 hours; make it due now so the copy reaches the mirror.
    store.db.execute("UPDATE calendars SET last_full_at = NULL WHERE id = ?", [target])
    run_sync(store, config)

    url = f"/calendar/?view=week&date={day.isoformat()}"
    links = event_links(client, url)
    assert [link.clean_name for link in links] == [f"Busy, {day:%a} {day.day} {day:%b}, 15:00–16:00, Employer"]
    assert {"slot-r61", "slot-s4", f"cal-{source.id}"} <= links[0].classes
    with_copies = event_links(client, url + "&clones=1")
    assert len(with_copies) == 2 and any("ev-clone" in link.classes and link.clean_name.endswith(
        "Home, copy made by homecal") for link in with_copies)
    assert "Salary review" not in client.get(url + "&clones=1").get_data(as_text=True)
    assert f".cal-{source.id} {{ --cal-bg: #ff8800;" in client.get("/calendar/colors.css").get_data(as_text=True)


def test_all_day_events_keep_their_dates_after_the_user_changes_zone(client, store, berlin_user) -> None:
    cal = add_calendar(store, berlin_user.id)
    # Synced while the user was in Tokyo: the row's UTC times are Tokyo midnights, so by
    # UTC it overlaps Berlin's 23 November. Its dates decide, not its UTC times.
    put(store, cal, inst("trip", date(2026, 11, 24), date(2026, 11, 26), "Trip"), tz=ZoneInfo("Asia/Tokyo"))
    [banner] = named(event_links(client, "/calendar/?view=week&date=2026-11-23"), "Trip")
    assert {"bcol-2", "bspan-2"} <= banner.classes
    assert named(event_links(client, "/calendar/?view=day&date=2026-11-23"), "Trip") == []
    assert len(named(event_links(client, "/calendar/?view=day&date=2026-11-25"), "Trip")) == 1
