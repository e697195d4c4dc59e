"""Token health: when homecal warns that Google is about to stop an account's link, and what
it tells the user to do. The clock is passed in; nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from daemon.token_health import NO_TOKEN, token_health

LINKED = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SCOPES = ["https://www.googleapis.com/auth/calendar.events",
          "https://www.googleapis.com/auth/calendar.calendarlist.readonly", "openid", "email"]


def secret(linked: datetime = LINKED, refreshed: datetime | None = None, **extra: object) -> dict:
    return {"email": "ann@example.com", "token": "ya29.secret-access", "refresh_token": "1//secret-refresh",
            "expiry": None, "scopes": SCOPES, "client_id": "x.apps.googleusercontent.com", "client_secret": "",
            "linked_at": linked.isoformat().replace("+00:00", "Z"),
            "refreshed_at": (refreshed or linked).isoformat().replace("+00:00", "Z")} | extra


def test_a_published_client_in_regular_use_has_an_age_and_no_warning() -> None:
    now = LINKED + timedelta(days=30, hours=5)
    health = token_health("google", secret(refreshed=now - timedelta(minutes=20)), now, testing_client=False)
    assert health.age_days == 30
    assert health.linked_at == LINKED
    assert health.last_refresh_at == now - timedelta(minutes=20)
    assert health.warning is None and health.expires_at is None


def test_a_testing_client_is_quiet_for_five_days_then_names_the_day_google_stops_the_link() -> None:
    s = secret()
    early = token_health("google", s, LINKED + timedelta(days=4, hours=23), testing_client=True)
    assert early.warning is None
    assert early.expires_at == LINKED + timedelta(days=7)

    warned = token_health("google", s, LINKED + timedelta(days=5), testing_client=True)
    assert warned.warning is not None
    assert "Google will stop this link on Sat 28 Nov 2026, 09:00 (UTC)" in warned.warning
    assert "publish your OAuth client to production" in warned.warning
    assert "Linking Google Calendar" in warned.warning and "re-link" in warned.warning
    assert "testing_client = false" in warned.warning


def test_a_testing_client_past_seven_days_says_the_link_has_probably_stopped() -> None:
    health = token_health("google", secret(), LINKED + timedelta(days=7, minutes=1), testing_client=True)
    assert health.warning is not None
    assert health.warning.startswith("Google has probably stopped this link already")
    assert "Publish the client to production" in health.warning


def test_the_warning_names_the_moment_in_the_users_zone() -> None:
    health = token_health("google", secret(), LINKED + timedelta(days=6), testing_client=True,
                          tz=ZoneInfo("Europe/Berlin"))
    assert "Sat 28 Nov 2026, 10:00 (Europe/Berlin)" in (health.warning or "")


def test_profile_only_scopes_are_the_exception_to_the_seven_days() -> None:
    health = token_health("google", secret(scopes=["openid", "email"]), LINKED + timedelta(days=6),
                          testing_client=True)
    assert health.warning is None and health.expires_at is None


def test_a_link_unused_for_five_months_warns_before_google_drops_it_at_six() -> None:
    last_used = LINKED + timedelta(days=3)
    s = secret(refreshed=last_used)
    assert token_health("google", s, last_used + timedelta(days=149), testing_client=False).warning is None

    soon = token_health("google", s, last_used + timedelta(days=151), testing_client=False)
    assert soon.expires_at == last_used + timedelta(days=182)
    assert "has not been used since Tue 24 Nov 2026" in (soon.warning or "")
    assert "unused for 6 months" in (soon.warning or "") and "will stop working around" in (soon.warning or "")

    gone = token_health("google", s, last_used + timedelta(days=200), testing_client=False)
    assert "probably stopped working" in (gone.warning or "") and "Re-link" in (gone.warning or "")


def test_other_kinds_get_their_age_but_never_a_google_warning() -> None:
    now = LINKED + timedelta(days=300)
    health = token_health("caldav", secret(), now, testing_client=True)
    assert health.age_days == 300
    assert health.warning is None and health.expires_at is None


def ms_secret(linked: datetime = LINKED, refreshed: datetime | None = None) -> dict:
    return {"email": "ann@contoso.com", "home_account_id": "oid.tid", "token_cache": '{"RefreshToken": {}}',
            "linked_at": linked.isoformat().replace("+00:00", "Z"),
            "refreshed_at": (refreshed or linked).isoformat().replace("+00:00", "Z")}


def test_a_microsoft_link_in_use_renews_itself_and_never_warns() -> None:
    # each use replaces the refresh token: a year-old link synced an hour ago is fine
    now = LINKED + timedelta(days=365)
    health = token_health("microsoft", ms_secret(refreshed=now - timedelta(hours=1)), now, testing_client=True)
    assert health.age_days == 365
    assert health.warning is None and health.expires_at is None


def test_a_microsoft_link_left_unused_is_warned_of_before_its_90_days_run_out() -> None:
    s = ms_secret()
    assert token_health("microsoft", s, LINKED + timedelta(days=60), testing_client=False).warning is None
    soon = token_health("microsoft", s, LINKED + timedelta(days=80), testing_client=False)
    assert soon.expires_at == LINKED + timedelta(days=90)
    assert "unused for 90 days" in (soon.warning or "") and "will stop working around" in (soon.warning or "")
    gone = token_health("microsoft", s, LINKED + timedelta(days=91), testing_client=False)
    assert "probably stopped working" in (gone.warning or "") and "Re-link" in (gone.warning or "")


def test_a_no_access_microsoft_account_has_no_token() -> None:
    assert token_health("microsoft", {"email": "ann@contoso.com"}, LINKED, testing_client=False) == NO_TOKEN


def test_accounts_without_a_refresh_token_have_no_token_to_judge() -> None:
    no_access = {"email": "ann@example.com", "token": "", "refresh_token": ""}
    assert token_health("google", no_access, LINKED, testing_client=True) == NO_TOKEN
    assert token_health("caldav", {"url": "https://dav.example", "password": "pw"}, LINKED,
                        testing_client=False) == NO_TOKEN


def test_unreadable_times_do_not_break_the_display() -> None:
    health = token_health("google", secret() | {"linked_at": "yesterday", "refreshed_at": None},
                          LINKED, testing_client=True)
    assert health.age_days is None and health.linked_at is None and health.warning is None


def test_the_warning_never_carries_the_tokens() -> None:
    health = token_health("google", secret(), LINKED + timedelta(days=6), testing_client=True)
    assert "secret" not in repr(health)
