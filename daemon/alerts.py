"""Mail the people who can act when an account stops working: the admins and the owner.

`account_needs_relink` is called by the sync engine when an AuthError turns an account into
"needs re-link" (a Google token expired or was revoked, a CalDAV password changed). With
SMTP set up it queues one mail per recipient through the durable outbox (kind "notice"),
which the outbox job sends like any booking mail; without SMTP it queues nothing and logs
that once.

Once per failure, not once per sync: a meta row per account remembers the failure it was
sent for, named by what ends a failure (the account's last success and, for OAuth, when it
was last linked; re-linking records a success). A second call for the same failure, from
the same cycle or a later one, sends nothing; the next failure after a re-link sends again.

The mail holds the account's name, kind and owner, what happened and the re-link address;
never a token, a password or the provider's raw answer (the engine's message carries no
secret, and is still shortened and flattened before it goes in).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone, tzinfo
from email.message import EmailMessage
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon import access
from daemon.config import Config
from daemon.errors import UsageError
from daemon.store import Store, outbox, users
from daemon.store import accounts as accounts_repo
from daemon.store.accounts import Account
from daemon.store.settings import effective_public_url, effective_smtp
from daemon.token_health import token_health

log = logging.getLogger("homecal.alerts")

#: the outbox kind of alert mail (the outbox page calls it "Notice to you")
KIND = "notice"
#: the most of the engine's message a mail carries
MAX_DETAIL = 300
_META = "alert_relink:{}"


def relink_url(config: Config, store: Store, account: Account) -> str:
    """Where the mail sends the reader: the account's re-link page (login first if needed).

    Google's and Microsoft's pages (webui/accounts_google.py, accounts_microsoft.py) ask for
    consent again; the others ask for a new password or address."""
    path = f"/accounts/{account.id}/relink" + (f"/{account.kind}" if account.kind in ("google", "microsoft") else "")
    return effective_public_url(config, store) + path


def _failure_key(store: Store, account_id: int) -> str | None:
    """Names the current failure: it changes with every success or re-link (None: account gone).

    The creation time is in it so that an account removed and re-added under a reused id
    is a new account.
    """
    row = store.db.execute("SELECT created_at, last_success_at FROM accounts WHERE id = ?",
                           [account_id]).fetchone()
    if row is None:
        return None
    linked = accounts_repo.secret(store, account_id).get("linked_at") or ""
    return f"{row[0] or ''}|{row[1] or ''}|{linked}"


def _recipients(store: Store, owner_id: int) -> list[tuple[int, str]]:
    """(user id, address) of every admin with an e-mail address and of the owner; each address once."""
    out: dict[str, tuple[int, str]] = {}
    for user in users.all_users(store):
        if user.is_admin or user.id == owner_id:
            address = (users.email(store, user.id) or "").strip()
            if address:
                out.setdefault(address.lower(), (user.id, address))
    return list(out.values())


def _body(config: Config, store: Store, account: Account, owner: str, message: str, now: datetime) -> str:
    kind = access.KIND_LABELS.get(account.kind, account.kind)
    if account.kind in ("google", "microsoft"):
        happened = (f"{kind} refused the permission homecal had stored for this account: the token expired "
                    "or was revoked.")
    else:
        happened = "The server refused homecal's login for this account (a changed or revoked password?)."
    detail = " ".join(message.split())
    if len(detail) > MAX_DETAIL:
        detail = detail[:MAX_DETAIL - 1] + "…"
    lines = [
        f'homecal could not sync the {kind} account "{account.name}" (user {owner}).',
        "",
        happened,
        "",
        "Nothing was deleted: the account's calendars and the copies homecal made stay as they are.",
        "Syncing of this account is paused until it is re-linked. Re-link it here:",
        "",
        f"  {relink_url(config, store, account)}",
        "",
        f"What homecal noted: {detail}",
    ]
    secret = accounts_repo.secret(store, account.id)
    try:
        tz: tzinfo = ZoneInfo(users.get(store, account.user_id).timezone or "UTC")
    except ZoneInfoNotFoundError:
        tz = timezone.utc
    hint = token_health(account.kind, secret, now, testing_client=config.google.testing_client, tz=tz).warning
    if hint:
        lines += ["", hint]
    lines += ["", "homecal sends this mail once, when the account stops working. The dashboard and "
                  "`homecal status` show the state of every account."]
    return "\n".join(lines) + "\n"


def account_needs_relink(store: Store, config: Config, account: Account, message: str,
                         now: datetime | None = None) -> int:
    """Queue the "needs re-linking" mail for `account`, once per failure. Returns how many mails
    were queued (0: already sent for this failure, no SMTP, or nobody with an address).

    Never raises: an alert that cannot be queued is logged, and the sync goes on.
    """
    now = now or datetime.now(timezone.utc)
    try:
        return _queue(store, config, account, message, now)
    except Exception as err:  # noqa: BLE001 - the sync must not fail because an alert did
        log.error("could not queue the re-link alert for account %s: %s", account.name, type(err).__name__)
        return 0


def _queue(store: Store, config: Config, account: Account, message: str, now: datetime) -> int:
    meta_key = _META.format(account.id)
    with store.atomic():  # IMMEDIATE: two callers cannot both see "not sent yet"
        failure = _failure_key(store, account.id)
        if failure is None or store.meta_get(meta_key) == failure:
            return 0
        store.meta_set(meta_key, failure)
        if not effective_smtp(config, store).configured:
            log.info("account %s needs re-linking; no alert mail is sent because no SMTP server is configured "
                     "(Settings > Mail)", account.name)
            return 0
        recipients = _recipients(store, account.user_id)
        if not recipients:
            log.info("account %s needs re-linking; no alert mail is sent because no admin and not its owner "
                     "has an e-mail address (Settings > Profile)", account.name)
            return 0
        owner = users.get(store, account.user_id).username
        kind = access.KIND_LABELS.get(account.kind, account.kind)
        body = _body(config, store, account, owner, message, now)
        queued = 0
        for user_id, address in recipients:
            mail = EmailMessage()
            mail["To"] = address
            mail["Subject"] = f"homecal: {kind} account {account.name} needs re-linking"
            mail.set_content(body)
            try:
                outbox.enqueue(store, user_id=user_id, booking_id=None, kind=KIND, recipient=address,
                               message=mail, now=now)
            except UsageError:  # an address the outbox refuses: the others still get theirs
                log.warning("account %s: a recipient's e-mail address was refused; the alert skips it",
                            account.name)
                continue
            queued += 1
    log.info("account %s needs re-linking: alert queued for %d recipient(s)", account.name, queued)
    return queued
