"""The rules pages, driven through real HTTP requests to the app over a real store.

Local calendars (kept in homecal's own store) make most tests quick; the busy-rule walk
runs on a real Radicale server, and its result is read back through the CalDAV provider.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from daemon.config import with_overrides
from daemon.models import AccessMode, CalendarInfo, EventRef, Style, Window
from daemon.providers import make_provider
from daemon.providers.local import LocalProvider
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.sync.options import RuleOptions, WorkingHours
from tests.conftest import free_port
from webui import create_app

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
PASSWORD = "correct horse battery"


# -- helpers ----------------------------------------------------------------------------------

def local_calendar(store, user, name: str, mode: AccessMode = AccessMode.READ_WRITE):
    acc = accounts.add(store, user.id, "local", name, mode, {})
    return accounts.save_calendars(store, acc.id, [CalendarInfo("local", name)])[0]


def local(store, cal) -> LocalProvider:
    name = accounts.get(store, cal.account_id).name
    return LocalProvider(store=store, account_id=cal.account_id, name=name, mode=AccessMode.READ_WRITE, tz=UTC)


def ics(uid: str, start: datetime, summary: str, extra: str = "", hours: int = 1) -> str:
    end = start + timedelta(hours=hours)
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
            f"SUMMARY:{summary}\r\nLOCATION:Room 4\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")


def put(store, cal, uid: str, start: datetime, summary: str, extra: str = "") -> None:
    local(store, cal).put_ics("local", uid, ics(uid, start, summary, extra))


def next_weekday(hour: int, days_ahead: int = 1) -> datetime:
    """A UTC time `days_ahead` or more days from now that falls on a Monday to Thursday."""
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    while day.weekday() > 3:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def target_events(store, cal) -> list:
    window = Window.around(datetime.now(UTC), 1, 90)
    return [i for item in local(store, cal).changes("local", None, window).items for i in item.instances]


def form(token: str, sources, target, **over) -> dict:
    """The new-rule form as a browser posts it with the defaults left alone."""
    data = {"csrf_token": token, "sources": [str(s) for s in sources], "target": str(target), "name": "",
            "style": "busy", "skip_declined": "y", "skip_free": "y", "tentative": "busy", "all_day": "busy-only",
            "wh_days": ["0", "1", "2", "3", "4"], "wh_start": "09:00", "wh_end": "17:00", "title_include": "",
            "title_exclude": "", "title_template": "", "copy_description": "y", "copy_location": "y",
            "private": "y", "action": "preview"}
    for key, value in over.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def rule_count(store) -> int:
    return store.db.execute("SELECT count(*) FROM rules").fetchone()[0]


@pytest.fixture
def owner(admin, auth, store):
    """The logged-in admin, in New York time, with local calendars A and B."""
    store.db.execute("UPDATE users SET timezone = 'America/New_York' WHERE id = ?", [admin.id])
    auth.login()
    owner = users.get(store, admin.id)
    return type("Owner", (), {"user": owner, "A": local_calendar(store, owner, "A"),
                              "B": local_calendar(store, owner, "B")})


def add_rule(store, owner, **opts):
    return rules_repo.add(store, owner.user.id, [owner.A.id], owner.B.id, RuleOptions.from_dict(opts))


# -- listing and the form ---------------------------------------------------------------------

def test_the_form_offers_only_the_users_calendars_and_writable_targets(client, auth, store, owner):
    readonly = local_calendar(store, owner.user, "Shared", AccessMode.FREE_BUSY)
    other = users.create(store, "bob", PASSWORD)
    local_calendar(store, other, "BobsCal")
    page = text(client.get("/rules/new"))
    assert "A / A" in page and "Shared / Shared" in page
    assert "BobsCal" not in page
    # the free-busy calendar may be a source but never a target
    target_select = page[page.index('name="target"'):page.index("</select>", page.index('name="target"'))]
    assert f'value="{owner.B.id}"' in target_select and f'value="{readonly.id}"' not in target_select


def test_the_list_shows_each_rule_with_its_calendars_style_and_state(client, store, owner):
    add_rule(store, owner, style="clone")
    page = text(client.get("/rules/"))
    assert "A → B" in page and "A / A" in page and "B / B" in page
    assert "Clones" in page and "Active" in page and "never" in page


# -- preview, save and sync -------------------------------------------------------------------

@pytest.mark.slow
def test_a_busy_rule_is_previewed_saved_and_synced_on_radicale(client, auth, store, config, radicale, admin):
    store.db.execute("UPDATE users SET timezone = 'America/New_York' WHERE id = ?", [admin.id])
    auth.login()
    ruser = radicale.new_user("web")
    urls = {slug: radicale.make_calendar(ruser, slug, name=slug.title()) for slug in ("work", "home")}
    acc = accounts.add(store, admin.id, "caldav", "dav", AccessMode.READ_WRITE,
                       {"url": radicale.url, "username": ruser, "password": radicale.password(ruser), "emails": []})
    provider = make_provider(store, config, acc, UTC)
    cals = {c.name: c for c in accounts.save_calendars(store, acc.id, provider.list_calendars())}
    start = next_weekday(14)
    radicale.put(ruser, urls["work"] + "review.ics", ics("review", start, "Salary review"))
    radicale.put(ruser, urls["work"] + "free.ics", ics("free", start + timedelta(days=1), "Focus", "TRANSP:TRANSPARENT\r\n"))

    def home_events() -> list:
        changes = provider.changes(cals["Home"].remote_id, None, Window.around(datetime.now(UTC), 1, 90))
        return [i for item in changes.items for i in item.instances]

    token = auth.csrf_token("/rules/new")
    data = form(token, [cals["Work"].id], cals["Home"].id)
    page = client.post("/rules/new", data=data)
    body = text(page)
    assert page.status_code == 200
    assert "Would be created (1)" in body
    assert f"{start.astimezone(NY):%a %d %b %Y, %H:%M}" in body  # in the user's zone
    assert "Busy" in body and "Salary review" not in body  # a busy block has no details
    assert "1 event: shown as free" in body
    assert home_events() == [] and rule_count(store) == 0  # the preview wrote nothing

    saved = client.post("/rules/new", data=data | {"action": "save"})
    assert saved.status_code == 302
    rule = rules_repo.all_rules(store, admin.id)[0]
    synced = client.post("/rules/sync", data={"csrf_token": token, "next": "/rules/"}, follow_redirects=True)
    assert "Work → Home: 1 created." in text(synced)
    events = home_events()
    assert [(e.summary, e.start) for e in events] == [("Busy", start)]
    assert rules_repo.get(store, rule.id).last_counts["created"] == 1
    provider.close()


def test_a_clone_rule_preview_shows_titles_as_written_and_save_keeps_every_option(client, auth, store, owner):
    put(store, owner.A, "standup", next_weekday(14), "Standup")
    put(store, owner.A, "lunch", next_weekday(16), "Lunch")
    token = auth.csrf_token("/rules/new")
    data = form(token, [owner.A.id], owner.B.id, style="clone", name="Team copy",
                title_template="{calendar}: {title}", title_include="standup|review", copy_location=None,
                private=None, skip_declined=None, tentative="skip", all_day="skip", working_hours="y",
                wh_days=["0", "1", "2", "3"], wh_start="08:00", wh_end="18:30")
    body = text(client.post("/rules/new", data=data))
    assert "Would be created (1)" in body and "A: Standup" in body
    assert "A: Lunch" not in body and "1 event: title does not match the include pattern" in body
    assert target_events(store, owner.B) == []

    assert client.post("/rules/new", data=data | {"action": "save"}).status_code == 302
    rule = rules_repo.all_rules(store, owner.user.id)[0]
    assert rule.name == "Team copy"
    assert rule.options == RuleOptions(
        style=Style.CLONE, skip_declined=False, skip_free=True, tentative="skip", all_day="skip",
        working_hours=WorkingHours(days=(0, 1, 2, 3), start="08:00", end="18:30"), title_include="standup|review",
        title_template="{calendar}: {title}", copy_description=True, copy_location=False, private=False)
    detail = text(client.get(f"/rules/{rule.id}"))
    assert "Locations are not copied" in detail and "Mon, Tue, Wed, Thu 08:00–18:30" in detail


def test_editing_previews_updates_then_saves_the_new_options(client, auth, store, owner):
    put(store, owner.A, "standup", next_weekday(14), "Standup")
    rule = add_rule(store, owner, style="clone")
    token = auth.csrf_token("/rules/")
    assert "1 created" in text(client.post("/rules/sync", data={"csrf_token": token}, follow_redirects=True))

    edit_page = text(client.get(f"/rules/{rule.id}/edit"))
    assert '<input checked id="style-1" name="style" type="radio" value="clone">' in edit_page  # filled in
    data = form(token, [], 0, style="clone", title_template="[{title}]", name="Renamed")
    data.pop("sources"), data.pop("target")
    body = text(client.post(f"/rules/{rule.id}/edit", data=data))
    assert "Would be updated (1)" in body and "[Standup]" in body
    assert [e.summary for e in target_events(store, owner.B)] == ["Standup"]  # not yet

    assert client.post(f"/rules/{rule.id}/edit", data=data | {"action": "save"}).status_code == 302
    saved = rules_repo.get(store, rule.id)
    assert (saved.name, saved.options.title_template) == ("Renamed", "[{title}]")
    client.post("/rules/sync", data={"csrf_token": token, "rule_id": str(rule.id)})
    assert [e.summary for e in target_events(store, owner.B)] == ["[Standup]"]


@pytest.mark.parametrize("copies", ["delete", "keep"])
def test_removing_a_rule_deletes_or_keeps_its_copies(client, auth, store, owner, copies):
    put(store, owner.A, "standup", next_weekday(14), "Standup")
    rule = add_rule(store, owner)
    token = auth.csrf_token("/rules/")
    client.post("/rules/sync", data={"csrf_token": token})
    assert len(target_events(store, owner.B)) == 1
    confirm = text(client.get(f"/rules/{rule.id}/remove"))
    assert "It has 1 copy there now." in confirm
    done = client.post(f"/rules/{rule.id}/remove", data={"csrf_token": token, "copies": copies},
                       follow_redirects=True)
    assert "Rule removed" in text(done)
    assert rules_repo.all_rules(store, owner.user.id) == []
    assert len(target_events(store, owner.B)) == (0 if copies == "delete" else 1)


def test_confirming_deletions_unpauses_a_paused_rule(client, auth, store, config, admin, make_auth):
    app = create_app(with_overrides(config, sync={"max_deletions": 1}), store, testing=True)
    client = app.test_client()
    make_auth(client).login()
    owner = type("O", (), {"user": admin, "A": local_calendar(store, admin, "A"), "B": local_calendar(store, admin, "B")})
    for i, title in enumerate(("One", "Two", "Three")):
        put(store, owner.A, f"e{i}", next_weekday(14 + i), title)
    rule = add_rule(store, owner)
    token = make_auth(client).csrf_token("/rules/")
    client.post("/rules/sync", data={"csrf_token": token})
    for i in (0, 1):
        local(store, owner.A).delete(EventRef("local", f"e{i}"))

    paused = text(client.post("/rules/sync", data={"csrf_token": token}, follow_redirects=True))
    assert "A → B is paused" in paused
    assert len(target_events(store, owner.B)) == 3  # nothing deleted
    detail = text(client.get(f"/rules/{rule.id}"))
    assert "Paused: waiting for your confirmation" in detail and "Would be deleted" in detail
    assert f"{next_weekday(14).astimezone(UTC):%d %b %Y, %H:%M}" in detail  # when each one is
    assert detail.count("source event gone or no longer matches the rule") == 2

    confirmed = client.post(f"/rules/{rule.id}/confirm-deletions",
                            data={"csrf_token": token, "next": f"/rules/{rule.id}"})
    assert confirmed.status_code == 302 and confirmed.location.endswith(f"/rules/{rule.id}")
    assert rules_repo.get(store, rule.id).state == "active"
    synced = text(client.post("/rules/sync", data={"csrf_token": token}, follow_redirects=True))
    assert "A → B: 2 deleted." in synced
    assert [e.summary for e in target_events(store, owner.B)] == ["Busy"]


def test_a_preview_says_plainly_when_a_source_cannot_be_read(client, auth, store, owner):
    feed = accounts.add(store, owner.user.id, "ics", "Feed", AccessMode.READ_WRITE,
                        {"url": f"http://127.0.0.1:{free_port()}/closed.ics"})
    cal = accounts.save_calendars(store, feed.id, [CalendarInfo("feed", "Holidays", writable=False)])[0]
    body = text(client.post("/rules/new", data=form(auth.csrf_token("/rules/new"), [cal.id], owner.B.id)))
    assert "The preview could not run, and nothing was written: Feed / Holidays could not be read" in body
    assert rule_count(store) == 0


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"sources": None}, "Choose at least one calendar to copy from."),
    ({"target": "SAME"}, "A calendar cannot sync into itself"),
    ({"target": ""}, "Choose the calendar the events go into."),
    ({"title_include": "(unclosed"}, "The pattern is not a valid regular expression"),
    ({"title_template": "{who}"}, "The title may use {title} and {calendar}, not {who}."),
    ({"working_hours": "y", "wh_start": "18:00", "wh_end": "09:00"}, "Working hours must end after they start."),
    ({"working_hours": "y", "wh_start": "25:00"}, "Enter a time like 09:00."),
    ({"working_hours": "y", "wh_days": None}, "Choose at least one working day."),
])
@pytest.mark.parametrize("action", ["preview", "save"])
def test_bad_input_re_renders_with_a_message_and_keeps_what_was_typed(client, auth, store, owner, change, message,
                                                                    action):
    change = {k: (str(owner.A.id) if v == "SAME" else v) for k, v in change.items()}
    data = form(auth.csrf_token("/rules/new"), [owner.A.id], owner.B.id, name="My label",
                title_exclude="keep me", action=action) | change
    response = client.post("/rules/new", data=data)
    body = text(response)
    assert response.status_code == 400
    assert message in body
    assert 'value="My label"' in body and 'value="keep me"' in body
    for key in ("title_include", "title_template"):
        if key in change:
            assert f'value="{change[key]}"' in body
    assert rule_count(store) == 0 and "Preview</h2>" not in body


def test_the_edit_form_re_renders_bad_input_too(client, auth, store, owner):
    rule = add_rule(store, owner, title_exclude="secret")
    data = form(auth.csrf_token(f"/rules/{rule.id}/edit"), [], 0, title_exclude="([bad", action="save")
    response = client.post(f"/rules/{rule.id}/edit", data=data)
    assert response.status_code == 400 and 'value="([bad"' in text(response)
    assert rules_repo.get(store, rule.id).options.title_exclude == "secret"


# -- CSRF and other users ---------------------------------------------------------------------

def test_posts_without_a_csrf_token_are_refused(client, store, owner):
    rule = add_rule(store, owner)
    rules_repo.pause_for_deletions(store, rule.id, [], 0)
    for url, data in [("/rules/new", form("", [owner.A.id], owner.B.id, action="save")),
                      (f"/rules/{rule.id}/edit", form("", [], 0, action="save", title_exclude="x")),
                      (f"/rules/{rule.id}/remove", {"copies": "keep"}),
                      (f"/rules/{rule.id}/confirm-deletions", {}),
                      ("/rules/sync", {})]:
        data.pop("csrf_token", None)
        assert client.post(url, data=data).status_code == 400, url
    assert [r.id for r in rules_repo.all_rules(store)] == [rule.id]
    assert rules_repo.get(store, rule.id).state == "paused-deletions"
    assert rules_repo.get(store, rule.id).options.title_exclude == ""


def test_another_user_gets_404_for_every_rule_url_and_cannot_use_foreign_calendars(client, auth, store, owner):
    rule = add_rule(store, owner)
    rules_repo.pause_for_deletions(store, rule.id, [], 0)
    eve = users.create(store, "eve", PASSWORD)
    eves = local_calendar(store, eve, "Eve")
    auth.logout()
    auth.login("eve", PASSWORD)
    for url in (f"/rules/{rule.id}", f"/rules/{rule.id}/edit", f"/rules/{rule.id}/remove"):
        assert client.get(url).status_code == 404, url
    token = auth.csrf_token("/rules/")
    posts = [(f"/rules/{rule.id}/edit", form(token, [], 0, action="save", title_exclude="x")),
             (f"/rules/{rule.id}/remove", {"csrf_token": token, "copies": "delete"}),
             (f"/rules/{rule.id}/confirm-deletions", {"csrf_token": token}),
             ("/rules/sync", {"csrf_token": token, "rule_id": str(rule.id)})]
    for url, data in posts:
        assert client.post(url, data=data).status_code == 404, url
    assert "A → B" not in text(client.get("/rules/"))
    # the first user's calendars, posted by id, are refused as source and as target
    for data in (form(token, [owner.A.id], eves.id, action="save"), form(token, [eves.id], owner.B.id, action="save")):
        body = text(client.post("/rules/new", data=data))
        assert "Choose among your own calendars." in body or "Choose one of your calendars" in body
    assert rules_repo.get(store, rule.id).state == "paused-deletions"
    assert [r.id for r in rules_repo.all_rules(store)] == [rule.id]


def test_sync_now_goes_back_only_to_a_safe_next(client, auth, store, owner):
    token = auth.csrf_token("/rules/")
    add_rule(store, owner)
    assert client.post("/rules/sync", data={"csrf_token": token, "next": "https://evil.example/"}).location == "/rules/"
    assert client.post("/rules/sync", data={"csrf_token": token, "next": "/calendar/"}).location == "/calendar/"


def test_a_source_that_came_back_empty_can_be_confirmed_from_the_rule_page(client, auth, store, owner):
    rule = add_rule(store, owner)
    rules_repo.record_run(store, rule.id, state="error", error=(
        f"not synced, nothing deleted: source {owner.A.id}: the calendar returned no events at all although "
        "homecal knew 4; treated as a fault, nothing deleted (confirm with `homecal rule confirm-deletions`)"))
    detail = text(client.get(f"/rules/{rule.id}"))
    assert "A source calendar came back empty" in detail
    assert "A / A could not be read: A calendar came back empty although it had events" in detail
    token = auth.csrf_token(f"/rules/{rule.id}")
    client.post(f"/rules/{rule.id}/confirm-deletions", data={"csrf_token": token})
    confirmed = rules_repo.get(store, rule.id)
    assert confirmed.deletions_confirmed and confirmed.last_error is None
