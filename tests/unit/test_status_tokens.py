"""`homecal status` and `homecal doctor` on Google and Microsoft accounts: each account's state
(ok, needs re-link, error), its token's age and any warning that the provider is about to stop
the link, with no token ever in the output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from daemon.config import with_overrides
from daemon.health import account_lines, doctor, status
from daemon.models import AccessMode
from daemon.store import accounts, users
from tests.google_helpers import stored_secret

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def google_secret(linked: datetime) -> dict:
    return stored_secret(linked)


def _setup(store) -> dict[str, int]:
    ann = users.create(store, "ann", "correct horse battery", is_admin=True)
    ids = {}
    ids["work"] = accounts.add(store, ann.id, "google", "work", AccessMode.READ_WRITE,
                               google_secret(NOW - timedelta(days=6))).id
    ids["home"] = accounts.add(store, ann.id, "google", "home", AccessMode.READ_WRITE,
                               google_secret(NOW - timedelta(days=40))).id
    ids["boss"] = accounts.add(store, ann.id, "google", "boss", AccessMode.NO_ACCESS,
                               {"email": "boss@example.com", "token": "", "refresh_token": ""}).id
    ids["dav"] = accounts.add(store, ann.id, "caldav", "dav", AccessMode.READ_WRITE,
                              {"url": "https://dav.example/", "username": "ann", "password": "pw"}).id
    accounts.record_failure(store, ids["home"], "Google refused the stored permission (token expired or revoked)",
                            status="needs-relink")
    accounts.record_failure(store, ids["dav"], "cannot reach dav.example", backoff_until="2026-11-27T13:00:00")
    return ids


def test_status_lists_each_google_account_with_state_token_age_and_warning(store, config) -> None:
    _setup(store)
    info = status(with_overrides(config, google={"testing_client": True}), now=NOW)
    by_name = {a["name"]: a for a in info["accounts"]}

    work = by_name["work"]
    assert work["state"] == "ok"
    assert work["token"]["age_days"] == 6
    assert work["token"]["linked_at"] == "2026-11-21T12:00:00Z"
    assert work["token"]["expires_at"] == "2026-11-28T12:00:00Z"
    assert "Google will stop this link on Sat 28 Nov 2026" in work["token"]["warning"]

    home = by_name["home"]
    assert home["state"] == "needs re-link"
    assert home["token"]["age_days"] == 40
    assert "probably stopped this link already" in home["token"]["warning"]

    assert by_name["boss"]["token"] is None  # no-access: no OAuth, no token
    assert by_name["dav"]["state"] == "error" and by_name["dav"]["token"] is None


def test_a_published_client_shows_the_age_without_a_warning(store, config) -> None:
    _setup(store)
    work = {a["name"]: a for a in status(config, now=NOW)["accounts"]}["work"]
    assert work["token"]["age_days"] == 6 and work["token"]["warning"] is None


def test_status_text_and_json_never_carry_a_token(store, config) -> None:
    _setup(store)
    info = status(with_overrides(config, google={"testing_client": True}), now=NOW)
    text = json.dumps(info) + "\n".join(line for a in info["accounts"] for line in account_lines(a))
    for marker in ("ACCESS-MARKER", "REFRESH-MARKER", "CLIENT-SECRET-MARKER"):
        assert marker not in text


def test_the_printed_lines_say_what_happened_and_what_to_do(store, config) -> None:
    _setup(store)
    info = status(with_overrides(config, google={"testing_client": True}), now=NOW)
    by_name = {a["name"]: a for a in info["accounts"]}

    home = "\n".join(account_lines(by_name["home"]))
    assert "needs re-link" in home.splitlines()[0]
    assert "nothing was deleted" in home and "paused" in home
    assert "token: linked 40 days ago" in home
    assert "warning: Google has probably stopped this link" in home

    work = account_lines(by_name["work"])
    assert work[0].split()[:2] == ["work", "google"] and " ok " in work[0]
    assert any(line.strip().startswith("warning: Google will stop this link") for line in work)
    dav = "\n".join(account_lines(by_name["dav"]))
    assert "last error: cannot reach dav.example (retry after 2026-11-27T13:00:00)" in dav
    assert "token" not in dav


def test_doctor_warns_about_a_google_link_about_to_stop(store, config) -> None:
    _setup(store)
    checks = {c.name: c for c in doctor(with_overrides(config, google={"testing_client": True}), now=NOW)}
    assert checks["account work"].level == "warn"
    assert "Google will stop this link on Sat 28 Nov 2026" in checks["account work"].detail
    assert checks["account home"].level == "fail"
    assert checks["account dav"].level == "fail"


def ms_secret(linked: datetime, refreshed: datetime) -> dict:
    def z(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")
    return {"email": "ann@contoso.com", "home_account_id": "oid.tid", "client_id": "app",
            "token_cache": '{"RefreshToken": {"x": {"secret": "MS-REFRESH-MARKER"}}}',
            "linked_at": z(linked), "refreshed_at": z(refreshed)}


def test_status_shows_microsoft_links_their_age_the_unused_warning_and_no_token(store, config) -> None:
    ann = users.create(store, "ann", "correct horse battery", is_admin=True)
    busy = accounts.add(store, ann.id, "microsoft", "outlook", AccessMode.READ_WRITE,
                        ms_secret(NOW - timedelta(days=200), NOW - timedelta(hours=1))).id
    accounts.add(store, ann.id, "microsoft", "idle", AccessMode.FREE_BUSY,
                 ms_secret(NOW - timedelta(days=100), NOW - timedelta(days=80)))
    accounts.record_failure(store, busy, "Microsoft refused homecal's sign-in (invalid_grant, AADSTS50173): "
                                         "link the account again", status="needs-relink")
    info = status(config, now=NOW)
    by_name = {a["name"]: a for a in info["accounts"]}
    assert by_name["outlook"]["state"] == "needs re-link" and by_name["outlook"]["token"]["age_days"] == 200
    assert by_name["outlook"]["token"]["warning"] is None  # in use until it was refused
    assert "Microsoft ends a link left unused for 90 days" in by_name["idle"]["token"]["warning"]
    lines = "\n".join(account_lines(by_name["outlook"]))
    assert "needs re-link" in lines and "nothing was deleted" in lines
    assert "MS-REFRESH-MARKER" not in json.dumps(info) + lines
    checks = {c.name: c for c in doctor(config, now=NOW)}
    assert checks["account idle"].level == "warn" and checks["account outlook"].level == "fail"
