"""Checks across every area of the UI at once, driven by the URL map, so a route added later is
covered without touching this file: CSRF on every POST, another user's ids answered with 404
everywhere, and the basics of accessible markup on every page a user with data can open.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask import Flask

from daemon.models import AccessMode, CalendarInfo, ChangeSet, Instance, Item, Style
from daemon.booking import service
from daemon.booking.link_settings import WEEKDAYS, LinkSettings
from daemon.store import accounts, booking_links, feeds, mirror, users
from daemon.store import rules as rules_repo
from daemon.sync.options import RuleOptions
from tests.web.test_crawl import PUBLIC_ALLOWLIST, _url

OWNER, INTRUDER, PASSWORD = "alice", "mallory", "correct horse battery"


@pytest.fixture
def world(store, config):
    """alice owns two local calendars with events, a rule, a feed, a booking link with a
    booking and its mail; mallory owns nothing."""
    alice = users.create(store, OWNER, PASSWORD, is_admin=True)
    users.create(store, INTRUDER, PASSWORD)
    cals = []
    for name in ("Work", "Home"):
        acc = accounts.add(store, alice.id, "local", name, AccessMode.READ_WRITE, {})
        cals.append(accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0])
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    event = Instance(key="e1|", item_id="e1", uid="e1", start=start, end=start + timedelta(hours=1),
                     summary="Alice's secret meeting")
    mirror.apply_changes(store, cals[0].id, ChangeSet([Item("e1", "x", [event])], [], "seq:1", full=True), UTC)
    rule = rules_repo.add(store, alice.id, [cals[0].id], cals[1].id, RuleOptions(style=Style.CLONE))
    feeds.regenerate(store, alice.id)
    link = booking_links.create(store, alice.id, LinkSettings(
        title="Chat", min_notice=0, weekly_hours={d: (("00:00", "24:00"),) for d in WEEKDAYS},
        target_calendar_id=cals[1].id), slug="chat")
    slot = service.offered_slots(config, store, link, duration=30)[0]
    visitor = service.validate_visitor(link, name="V", email="v@example.org", timezone="UTC", answers={})
    booked = service.book(config, store, link, duration=30, start=slot.start, visitor=visitor)
    instance_ids = [r[0] for r in store.db.execute("SELECT id FROM instances")]
    ids = {"account": [c.account_id for c in cals], "calendar": [c.id for c in cals], "rule": [rule.id],
           "instance": instance_ids, "user": [alice.id], "link": [link.id], "booking": [booked.booking.id],
           "entry": [r[0] for r in store.db.execute("SELECT id FROM outbox")]}
    # the visitor's pages: the link's key, the booking's token, a free slot's start
    ids["public"] = {"key": link.url_key, "token": booked.token,
                     "start": service.offered_slots(config, store, link, duration=30)[0].start}
    return alice, ids


def _int_routes(app: Flask):
    for rule in app.url_map.iter_rules():
        ints = [a for a in rule.arguments if type(rule._converters[a]).__name__ == "IntegerConverter"]  # noqa: SLF001
        if ints and rule.endpoint not in PUBLIC_ALLOWLIST:
            yield rule, ints


def _snapshot(store) -> dict:
    tables = ("users", "accounts", "calendars", "rules", "rule_sources", "mappings", "instances", "local_events",
              "booking_links", "bookings", "outbox")
    return {t: store.db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}


def test_every_post_without_a_csrf_token_is_refused(app: Flask, client, auth, world) -> None:
    auth.login(OWNER, PASSWORD)
    posts = [(rule.endpoint, _url(rule)) for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())]
    assert len(posts) >= 20  # every area has its forms; the crawl must be seeing them
    for endpoint, url in posts:
        response = client.post(url, data={})
        assert response.status_code == 400, f"POST {url} ({endpoint}) without a token: {response.status_code}"


def test_another_users_ids_answer_404_in_every_url_and_change_nothing(app: Flask, client, auth, store,
                                                                      world) -> None:
    _, ids = world
    every_id = sorted({i for name, values in ids.items() if name != "public" for i in values})
    before = _snapshot(store)
    auth.login(INTRUDER, PASSWORD)
    token = auth.csrf_token("/settings/")
    tried = 0
    for rule, ints in _int_routes(app):
        for value in every_id:
            url = rule.build({**{a: value for a in ints},
                              **{a: "x" for a in rule.arguments if a not in ints}}, append_unknown=False)[1]
            for method in ("GET", "POST"):
                if method not in (rule.methods or ()):
                    continue
                response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
                tried += 1
                assert response.status_code in (403, 404), f"{method} {url} as {INTRUDER}: {response.status_code}"
                assert b"secret meeting" not in response.data
    assert tried >= 30
    assert _snapshot(store) == before


class _Page(HTMLParser):
    """Collects what the accessibility checks need from one page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.headings: list[int] = []
        self.labelled: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.images_without_alt = 0
        self._label_depth = 0
        self._button: list[str] | None = None
        self.empty_buttons = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[a["id"]] += 1
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "label":
            self._label_depth += 1
            if a.get("for"):
                self.labelled.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit", "button") \
                and "hidden" not in a:  # e.g. the user name a password manager needs beside a new password
            self.controls.append({**a, "_in_label": "1" if self._label_depth else ""})
        if tag == "img" and "alt" not in a:
            self.images_without_alt += 1
        if tag == "button":
            self._button = [a.get("aria-label") or ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1
        if tag == "button" and self._button is not None:
            self.empty_buttons += not "".join(self._button).strip()
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)


def _pages(app: Flask, ids: dict) -> list[str]:
    """Every GET page of the owner: routes without arguments, and those with their real ids."""
    from webui.booking_forms import format_start

    public = ids["public"]
    by_name = {"account_id": ids["account"][0], "calendar_id": ids["calendar"][0], "rule_id": ids["rule"][0],
               "event_id": ids["instance"][0], "entry_id": ids["entry"][0], "instance_id": ids["instance"][0],
               "user_id": ids["user"][0], "link_id": ids["link"][0], "booking_id": ids["booking"][0],
               "key": public["key"], "token": public["token"], "start": format_start(public["start"])}
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in ("static", "health.healthz", "feeds.feed",
                                                                   "calendar_view.colors", "auth.login",
                                                                   "auth.setup",
                                                                   # Google's and Microsoft's redirects
                                                                   # back, not pages: without a pending
                                                                   # state each is a 400
                                                                   "accounts_google.callback",
                                                                   "accounts_microsoft.callback"):
            continue
        if any(a not in by_name for a in rule.arguments):
            raise AssertionError(f"teach this test the argument(s) of {rule.rule}")
        urls.append(rule.build({a: by_name[a] for a in rule.arguments}, append_unknown=False)[1])
    return urls


def test_every_page_has_labelled_controls_ordered_headings_and_unique_ids(app: Flask, client, auth,
                                                                         world) -> None:
    _, ids = world
    auth.login(OWNER, PASSWORD)
    checked = 0
    for url in _pages(app, ids):
        response = client.get(url, follow_redirects=True)
        if not response.mimetype == "text/html":
            continue
        assert response.status_code == 200, f"GET {url}: {response.status_code}"
        page = _Page()
        page.feed(response.get_data(as_text=True))
        where = f"GET {url}"
        assert page.headings.count(1) == 1, f"{where}: {page.headings.count(1)} h1"
        for before, after in zip(page.headings, page.headings[1:], strict=False):
            assert after <= before + 1, f"{where}: heading level jumps from h{before} to h{after}"
        duplicated = [i for i, n in page.ids.items() if n > 1]
        assert not duplicated, f"{where}: duplicate ids {duplicated}"
        for control in page.controls:
            named = (control.get("id") in page.labelled or control["_in_label"] or control.get("aria-label")
                     or control.get("aria-labelledby"))
            assert named, f"{where}: a {control.get('name')!r} control has no label"
        assert page.images_without_alt == 0, f"{where}: an image without alt"
        assert page.empty_buttons == 0, f"{where}: a button without text"
        checked += 1
    assert checked >= 15
