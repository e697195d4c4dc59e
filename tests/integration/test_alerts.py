"""The "needs re-linking" alert against a real SMTP server (aiosmtpd on loopback), a real store
and the real outbox job.

What a user notices: when Google refuses an account's stored permission, each admin with an
e-mail address and the account's owner get exactly one mail saying what happened, that
nothing was deleted, and where to re-link; the same failure seen again sends nothing; after a
re-link the next failure mails again; without SMTP nothing is queued and the log says why,
once. No token ever reaches a mail.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from daemon import alerts
from daemon.booking import outbox_job
from daemon.config import Config, with_overrides
from daemon.models import AccessMode
from daemon.store import Store, accounts, outbox, users
from tests.google_helpers import stored_secret
from tests.servers import SmtpSink

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
PUBLIC = "https://cal.example.org"
REFUSED = "Google refused the stored permission (token expired or revoked): invalid_grant"


def google_secret(linked: datetime, **extra: object) -> dict:
    return stored_secret(linked, email="ann@gmail.example", **extra)


@pytest.fixture
def people(store: Store) -> dict[str, users.User]:
    root = users.create(store, "root", "correct horse battery", is_admin=True)
    users.set_email(store, root.id, "root@example.org")
    users.create(store, "quiet", "correct horse battery", is_admin=True)  # an admin without an address
    ann = users.create(store, "ann", "correct horse battery")
    users.set_email(store, ann.id, "ann@example.org")
    bob = users.create(store, "bob", "correct horse battery")
    users.set_email(store, bob.id, "bob@example.org")  # neither admin nor owner: not told
    return {"root": root, "ann": ann, "bob": bob}


@pytest.fixture
def mail_config(config: Config, smtp_sink: SmtpSink) -> Config:
    return with_overrides(config, smtp=smtp_sink.config_smtp(), server={"public_url": PUBLIC})


def refused_google(store: Store, owner_id: int, name: str = "work") -> accounts.Account:
    """A Google account the engine has just marked "needs re-link" (as _account_failed does)."""
    account = accounts.add(store, owner_id, "google", name, AccessMode.READ_WRITE, google_secret(T0 - timedelta(days=3)))
    accounts.record_failure(store, account.id, REFUSED, status="needs-relink")
    return accounts.get(store, account.id)


def test_the_admin_and_the_owner_each_get_one_mail_with_the_relink_address(store, people, mail_config,
                                                                           smtp_sink) -> None:
    account = refused_google(store, people["ann"].id)

    assert alerts.account_needs_relink(store, mail_config, account, REFUSED, T0) == 2
    counts = outbox_job.deliver_due(mail_config, store, now=T0)

    assert counts["sent"] == 2
    got = {tuple(m.rcpt_tos): m.message for m in smtp_sink.received}
    assert sorted(got) == [("ann@example.org",), ("root@example.org",)]
    for message in got.values():
        assert message["Subject"] == "homecal: Google account work needs re-linking"
        assert message["From"] == "homecal@example.org"
        body = message.get_content()
        assert f"  {PUBLIC}/accounts/{account.id}/relink/google" in body.splitlines()
        assert 'could not sync the Google account "work" (user ann)' in body
        assert "token expired or was revoked" in body
        assert "Nothing was deleted" in body and "paused until it is re-linked" in body
        for marker in ("ACCESS-MARKER", "REFRESH-MARKER", "CLIENT-SECRET-MARKER"):
            assert marker not in message.as_string()
    # The mails are in each recipient's own outbox, as notices.
    [root_entry] = outbox.for_user(store, people["root"].id)
    assert root_entry.kind == "notice" and root_entry.status == "sent" and root_entry.booking_id is None
    assert outbox.for_user(store, people["bob"].id) == []


def test_the_same_failure_seen_again_sends_nothing(store, people, mail_config, smtp_sink) -> None:
    account = refused_google(store, people["ann"].id)
    assert alerts.account_needs_relink(store, mail_config, account, REFUSED, T0) == 2
    # The same cycle's other calendar, then the next cycles: the account is still refused.
    assert alerts.account_needs_relink(store, mail_config, account, REFUSED, T0) == 0
    assert alerts.account_needs_relink(store, mail_config, accounts.get(store, account.id), REFUSED,
                                       T0 + timedelta(hours=5)) == 0
    outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(hours=5))
    assert len(smtp_sink.received) == 2
    assert outbox.pending_count(store) == 0


def test_after_a_relink_the_next_failure_mails_again(store, people, mail_config, smtp_sink) -> None:
    account = refused_google(store, people["ann"].id)
    alerts.account_needs_relink(store, mail_config, account, REFUSED, T0)
    outbox_job.deliver_due(mail_config, store, now=T0)

    # Re-linked (new tokens, healthy again), then refused again a week later.
    accounts.set_secret(store, account.id, google_secret(T0 + timedelta(days=1)))
    accounts.record_success(store, account.id)
    accounts.record_failure(store, account.id, REFUSED, status="needs-relink")
    later = T0 + timedelta(days=8)
    assert alerts.account_needs_relink(store, mail_config, accounts.get(store, account.id), REFUSED, later) == 2
    outbox_job.deliver_due(mail_config, store, now=later)
    assert len(smtp_sink.received) == 4


def test_an_owner_who_is_the_admin_gets_one_mail(store, people, mail_config, smtp_sink) -> None:
    account = refused_google(store, people["root"].id, "mine")
    assert alerts.account_needs_relink(store, mail_config, account, REFUSED, T0) == 1
    outbox_job.deliver_due(mail_config, store, now=T0)
    [mail] = smtp_sink.received
    assert mail.rcpt_tos == ["root@example.org"]


def test_without_smtp_nothing_is_queued_and_the_log_says_so_once(store, people, config, caplog) -> None:
    account = refused_google(store, people["ann"].id)
    with caplog.at_level(logging.INFO, logger="homecal"):
        assert alerts.account_needs_relink(store, config, account, REFUSED, T0) == 0
        assert alerts.account_needs_relink(store, config, account, REFUSED, T0) == 0
    assert outbox.pending_count(store) == 0
    said = [r.getMessage() for r in caplog.records if "no SMTP server is configured" in r.getMessage()]
    assert said == ["account work needs re-linking; no alert mail is sent because no SMTP server is configured "
                    "(Settings > Mail)"]


def test_the_noted_error_is_flattened_and_cut_and_a_testing_client_gets_the_hint(store, people, mail_config,
                                                                                smtp_sink) -> None:
    account = refused_google(store, people["ann"].id)
    noisy = "invalid_grant\r\nBcc: everyone@example.org\r\n" + "x" * 1000
    testing = with_overrides(mail_config, google={"testing_client": True})
    alerts.account_needs_relink(store, testing, account, noisy, T0 + timedelta(days=8))
    outbox_job.deliver_due(testing, store, now=T0 + timedelta(days=8))
    assert len(smtp_sink.received) == 2  # no Bcc smuggled in through the message
    body = smtp_sink.received[0].message.get_content()
    noted = next(line for line in body.splitlines() if line.startswith("What homecal noted:"))
    assert "invalid_grant Bcc: everyone@example.org" in noted
    assert len(noted) <= len("What homecal noted: ") + alerts.MAX_DETAIL
    assert "publish the client to production" in body.lower()


def test_a_failing_outbox_never_breaks_the_sync(store, people, mail_config, monkeypatch, caplog) -> None:
    account = refused_google(store, people["ann"].id)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox, "enqueue", broken)
    assert alerts.account_needs_relink(store, mail_config, account, REFUSED, T0) == 0
    assert "could not queue the re-link alert for account work: RuntimeError" in caplog.text
    monkeypatch.undo()
    # Nothing was remembered as sent, so the next sighting of the failure mails.
    assert alerts.account_needs_relink(store, mail_config, account, REFUSED, T0) == 2


def _sync_until_google_refuses(store: Store, config: Config, owner_id: int) -> accounts.Account:
    """A Google account read by two rules; Google refuses its token from the second cycle on.

    Three cycles run: the refusal, then two in which the account stays "needs re-link"."""
    from daemon.errors import AuthError
    from daemon.models import CalendarInfo
    from daemon.providers import make_provider
    from daemon.store import rules as rules_repo
    from daemon.sync.engine import SyncEngine
    from daemon.sync.options import RuleOptions

    google = accounts.add(store, owner_id, "google", "work", AccessMode.READ_WRITE, google_secret(T0))
    [gcal] = accounts.save_calendars(store, google.id, [CalendarInfo("primary", "ann@gmail.example")])
    targets = []
    for name in ("home", "family"):
        local = accounts.add(store, owner_id, "local", name, AccessMode.READ_WRITE, {})
        targets += accounts.save_calendars(store, local.id, [CalendarInfo("local", name)])
    for target in targets:
        rules_repo.add(store, owner_id, [gcal.id], target.id, RuleOptions())

    class Refused:
        def changes(self, *args, **kwargs):
            raise AuthError("Google refused the stored permission (invalid_grant)")

        def close(self) -> None:
            pass

    def provider_for(account, tz):
        return Refused() if account.kind == "google" else make_provider(store, config, account, tz)

    clock = {"now": T0 + timedelta(days=1)}
    engine = SyncEngine(store, config, provider_for, now=lambda: clock["now"])
    for _ in range(3):
        engine.run()
        clock["now"] += timedelta(minutes=2)
    return accounts.get(store, google.id)


def test_a_sync_that_google_refuses_mails_the_admin_once(store, people, mail_config, smtp_sink) -> None:
    account = _sync_until_google_refuses(store, mail_config, people["ann"].id)
    assert account.status == "needs-relink"
    outbox_job.deliver_due(mail_config, store, now=T0 + timedelta(days=1, hours=1))
    assert sorted(tuple(m.rcpt_tos) for m in smtp_sink.received) == [("ann@example.org",), ("root@example.org",)]
    assert all(m.message["Subject"] == "homecal: Google account work needs re-linking" for m in smtp_sink.received)
