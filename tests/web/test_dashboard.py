"""The dashboard: every account and rule at a glance, driven by real syncs over local calendars
and by the states the store records; plus daemon.overview as plain data.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from daemon import overview as ov
from daemon.config import Config, with_overrides
from daemon.models import AccessMode, CalendarInfo, EventRef
from daemon.providers.local import LocalProvider
from daemon.store import accounts, users
from daemon.store import rules as rules_repo
from daemon.sync.cycle import SYNC_LOCK, run_sync
from daemon.sync.options import RuleOptions

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def config(data_dir) -> Config:
    # A small deletion guard, so a real sync pauses a rule with a handful of events.
    return with_overrides(Config(), storage={"data_dir": str(data_dir)}, sync={"max_deletions": 2})


@pytest.fixture
def logged_in(admin, auth, store) -> users.User:
    store.db.execute("UPDATE users SET timezone = 'Europe/Berlin' WHERE id = ?", [admin.id])
    auth.login()
    return users.get(store, admin.id)


def text(response) -> str:
    return response.get_data(as_text=True)


def section(page: str, element_id: str) -> str:
    """The HTML of the element with `element_id` up to the next row or article."""
    start = page.index(f'id="{element_id}"')
    end = min([i for i in (page.find("<tr id=", start + 1), page.find("<article", start + 1)) if i > 0] + [len(page)])
    return page[start:end]


def local_account(store, user_id: int, name: str) -> tuple[accounts.Account, accounts.Calendar]:
    account = accounts.add(store, user_id, "local", name, AccessMode.READ_WRITE, {})
    [cal] = accounts.save_calendars(store, account.id, [CalendarInfo("local", name)])
    return account, cal


def put_event(store, account: accounts.Account, uid: str, start: datetime) -> None:
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
           f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
           f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\nSUMMARY:Secret meeting {uid}\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    LocalProvider(store=store, account_id=account.id, name=account.name, mode=AccessMode.READ_WRITE,
                  tz=timezone.utc).put_ics("local", uid, ics)


def delete_event(store, account: accounts.Account, uid: str) -> None:
    LocalProvider(store=store, account_id=account.id, name=account.name, mode=AccessMode.READ_WRITE,
                  tz=timezone.utc).delete(EventRef("local", uid))


@pytest.fixture
def synced_rule(store, config, logged_in):
    """Two local calendars and a busy rule from one into the other, synced for real: 3 copies."""
    personal, source = local_account(store, logged_in.id, "personal")
    _, target = local_account(store, logged_in.id, "work")
    start = (datetime.now(timezone.utc) + timedelta(days=2)).replace(hour=9, minute=30, second=0, microsecond=0)
    starts = {f"e{i}": start + timedelta(days=i) for i in range(3)}
    for uid, at in starts.items():
        put_event(store, personal, uid, at)
    rule = rules_repo.add(store, logged_in.id, [source.id], target.id, RuleOptions.from_dict({"style": "busy"}),
                          "personal into work")
    [report] = run_sync(store, config)
    assert (report.status, report.created) == ("ok", 3)
    return personal, rule, starts


# ------------------------------------------------------------------------------ empty states


def test_a_new_user_is_told_what_to_do_first(client, logged_in) -> None:
    page = text(client.get("/"))
    assert "No calendar accounts yet" in page and 'href="/accounts/add"' in page
    assert "Sync now" not in page


def test_with_accounts_but_no_rules_the_next_step_is_a_rule(client, store, logged_in) -> None:
    local_account(store, logged_in.id, "home")
    page = text(client.get("/"))
    assert "No sync rules yet" in page and "Create your first rule" in page and 'href="/rules/"' in page
    assert "No calendar accounts yet" not in page


# ------------------------------------------------------------------------------ accounts


def test_each_account_state_in_words_with_the_relink_button(client, store, logged_in) -> None:
    fine, _ = local_account(store, logged_in.id, "fine")
    accounts.record_success(store, fine.id)
    locked, _ = local_account(store, logged_in.id, "locked")
    accounts.record_failure(store, locked.id, "CalDAV login refused for me@dav.example.org: check the password",
                            status="needs-relink")
    flaky, _ = local_account(store, logged_in.id, "flaky")
    later = (datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat()
    accounts.record_failure(store, flaky.id, "cannot reach CalDAV server dav.example.org (listing of x): "
                            "ConnectionError", backoff_until=later)
    fresh, _ = local_account(store, logged_in.id, "fresh")
    page = text(client.get("/"))

    row = section(page, f"account-{fine.id}")
    assert "Healthy" in row and "just now" in row and "relink" not in row
    row = section(page, f"account-{locked.id}")
    assert "Needs re-link" in row and "The server refused the login: re-link the account" in row
    assert f'href="/accounts/{locked.id}/relink"' in row and "me@dav.example.org" in row  # the detail, folded
    row = section(page, f"account-{flaky.id}")
    assert "Failing, retrying later" in row and "could not reach the server" in row and "in 10 minutes" in row
    assert f"/accounts/{flaky.id}/relink" not in row
    assert "Not synced yet" in section(page, f"account-{fresh.id}")
    assert "2 things need your attention" in page


# ------------------------------------------------------------------------------ rules


def test_a_synced_rule_shows_its_run_and_the_sync_now_button(client, synced_rule) -> None:
    _, rule, _ = synced_rule
    page = text(client.get("/"))
    card = section(page, f"rule-{rule.id}")
    assert "personal into work" in card and "Healthy" in card
    assert "personal (personal)" in card and "work (work)" in card and "busy blocks" in card
    assert "3 created, 0 updated, 0 deleted" in card
    assert re.search(r"Copies in the target</dt><dd>3<", card)
    assert "just now" in card and "in 2 minutes" in card  # last success, next run (interval 120 s)
    assert "Secret meeting" not in page  # event details never reach the dashboard
    assert 'action="/rules/sync"' in page
    assert re.search(r'<form method="post" action="/rules/sync"[^>]*>\s*<input id="sync-now-csrf" '
                     r'name="csrf_token" type="hidden" value="[^"]+">', page)
    assert "Everything is in order." in page


def test_a_rule_paused_by_the_deletion_guard_lists_the_deletions_and_asks_to_confirm(
        client, store, config, synced_rule) -> None:
    personal, rule, starts = synced_rule
    for uid in starts:
        delete_event(store, personal, uid)
    [report] = run_sync(store, config)
    assert report.status == "paused"  # 3 deletions > max_deletions 2: the guard, for real
    page = text(client.get("/"))
    card = section(page, f"rule-{rule.id}")
    assert "Paused: confirm deletions" in card and "Paused by the deletion guard" in card
    assert "would delete 3" in card and "After you confirm" in card
    for at in starts.values():
        local = at.astimezone(BERLIN)  # in the user's zone, not UTC
        assert f"{local:%a} {local.day} {local:%b %Y, %H:%M} (Europe/Berlin)" in card
    assert card.count("Source event gone or no longer matches the rule") == 3
    assert card.count("<td>personal (personal)</td>") == 3
    assert re.search(rf'<form method="post" action="/rules/{rule.id}/confirm-deletions"[^>]*>\s*'
                     r'<input id="confirm-csrf-\d+" name="csrf_token" type="hidden" value="[^"]+">\s*'
                     r'<button type="submit"[^>]*>Confirm: delete 3 events</button>', card)
    assert "homecal rule confirm-deletions" not in page  # the CLI hint is not the web's words
    assert "1 thing needs your attention" in page


def test_a_running_sync_shows(client, synced_rule) -> None:
    _, rule, _ = synced_rule
    with SYNC_LOCK:
        page = text(client.get("/"))
    assert "A sync is running now." in page and "Syncing now" in section(page, f"rule-{rule.id}")
    assert "A sync is running now." not in text(client.get("/"))


def test_a_rule_error_in_plain_words(client, store, synced_rule) -> None:
    _, rule, _ = synced_rule
    rules_repo.record_run(store, rule.id, state="error",
                          error="not synced, nothing deleted: source 1: account personal needs re-linking")
    card = section(text(client.get("/")), f"rule-{rule.id}")
    assert "Error" in card
    assert "Not synced, and nothing was deleted. The server refused the login" in card
    assert "Technical detail" in card and "source 1: account personal needs re-linking" in card


def test_another_users_accounts_and_rules_stay_off_the_dashboard(client, auth, store, synced_rule) -> None:
    users.create(store, "bob", "bob password 12")
    auth.logout()
    auth.login("bob", "bob password 12")
    page = text(client.get("/"))
    assert "personal into work" not in page and "personal (personal)" not in page
    assert "No calendar accounts yet" in page


# ------------------------------------------------------------------------------ the plain data


def test_times_relative_and_in_the_users_zone() -> None:
    now = datetime(2026, 3, 29, 12, 0, tzinfo=timezone.utc)
    assert ov.relative(now - timedelta(seconds=10), now) == "just now"
    assert ov.relative(now - timedelta(minutes=3), now) == "3 minutes ago"
    assert ov.relative(now + timedelta(minutes=1), now) == "in 1 minute"
    assert ov.relative(now - timedelta(hours=5), now) == "5 hours ago"
    assert ov.relative(now + timedelta(days=3), now) == "in 3 days"
    w = ov.when("2026-03-29T01:30:00+00:00", now, BERLIN)  # the night the clocks go forward
    assert w is not None and w.local == "Sun 29 Mar 2026, 03:30 (Europe/Berlin)"
    assert w.relative == "10 hours ago" and w.iso == "2026-03-29T01:30:00+00:00"
    assert ov.when(None, now, BERLIN) is None


def test_plain_error_keeps_unknown_messages_readable() -> None:
    assert ov.plain_error(None) is None
    assert ov.plain_error("something odd happened") == "Something odd happened."
    assert ov.plain_error("paused: the plan would delete 30 events (more than 20); confirm with "
                              "`homecal rule confirm-deletions 4`").startswith("Paused: this rule would delete 30")


def test_user_overview_without_flask(store) -> None:
    me = users.create(store, "me", "a long password 1")
    other = users.create(store, "other", "a long password 2")
    mine, _ = local_account(store, me.id, "mine")
    local_account(store, other.id, "theirs")
    accounts.record_failure(store, mine.id, "CalDAV login refused for x@y", status="needs-relink")
    overview = ov.user_overview(store, me.id, datetime.now(timezone.utc))
    assert [(a.name, a.state, a.calendars) for a in overview.accounts] == [("mine", "needs-relink", 1)]
    assert overview.rules == [] and overview.attention == 1 and not overview.syncing
