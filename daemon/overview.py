"""The dashboard's facts for one user, as plain data: accounts and rules with their health,
what a paused rule would delete, times in the user's zone and relative to now, errors in
plain words, and for OAuth accounts (Google) the token's age and any warning that the
provider is about to stop the link. Tested without Flask; the web UI only renders it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.store import Store, users
from daemon.store import accounts as accounts_repo
from daemon.store import rules as rules_repo
from daemon.token_health import TokenHealth, token_health


@dataclass(frozen=True)
class When:
    """A moment as the user reads it: in their zone, and relative to now."""

    iso: str  # UTC, for <time datetime>
    local: str  # "Tue 3 Mar 2026, 14:05 (Europe/Berlin)"
    relative: str  # "3 minutes ago", "in 2 hours"


def relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    past, span = seconds < 0, abs(seconds)
    if span < 45:
        return "just now" if past else "in a moment"
    for unit, size, limit in (("minute", 60, 90 * 60), ("hour", 3600, 36 * 3600), ("day", 86400, None)):
        if limit is None or span < limit:
            n = max(1, round(span / size))
            text = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"{text} ago" if past else f"in {text}"
    raise AssertionError("unreachable")


def _parse(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # the store writes UTC


def when(iso: str | None, now: datetime, tz: tzinfo) -> When | None:
    """`iso` (as the store keeps times) for display in `tz`; None stays None."""
    if not iso:
        return None
    moment = _parse(iso)
    local = moment.astimezone(tz)
    zone = getattr(tz, "key", None) or local.tzname() or ""
    text = f"{local:%a} {local.day} {local:%b %Y, %H:%M}" + (f" ({zone})" if zone else "")
    return When(moment.astimezone(timezone.utc).isoformat(timespec="seconds"), text, relative(moment, now))


#: the engine's and providers' messages (written for logs and the CLI), in words for the dashboard
_PLAIN: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"paused: the plan would delete (\d+) events"),
     lambda m: f"Paused: this rule would delete {m[1]} events. Check the list and confirm if that is right."),
    (re.compile(r"Google refused"),
     lambda m: "Google refused homecal's stored permission: re-link the account and allow access again."),
    (re.compile(r"Microsoft refused"),
     lambda m: "Microsoft refused homecal's sign-in: re-link the account and sign in again."),
    (re.compile(r"login refused|refused access|needs re-linking"),
     lambda m: "The server refused the login: re-link the account with its current password "
               "(a Google account: allow access again)."),
    (re.compile(r"slow down"), lambda m: "The server asked homecal to slow down; it will try again later."),
    (re.compile(r"backing off after errors"), lambda m: "The account failed recently; homecal will try again later."),
    (re.compile(r"cannot reach|cannot fetch"),
     lambda m: "homecal could not reach the server: it may be down, or its address changed."),
    (re.compile(r"did not answer within|took longer than"),
     lambda m: "The server did not answer in time; homecal will try again."),
    (re.compile(r"returned no events at all"),
     lambda m: "A calendar came back empty although it had events, so nothing was deleted. "
               "If it really was emptied, confirm the deletions."),
    (re.compile(r"not created by homecal"),
     lambda m: "homecal left an event alone that it did not create (the calendar has no extended permission)."),
    (re.compile(r"never writes to it|is read-only"),
     lambda m: "The target calendar cannot be written: choose a calendar of a read-write account."),
    (re.compile(r"not found on|no calendar \d+"),
     lambda m: "A calendar was not found: it may have been deleted or moved."),
]
_NOT_SYNCED = "not synced, nothing deleted: "

#: account kinds linked through OAuth: a refused token means the user must consent again
OAUTH_PROVIDERS = {"google": "Google", "microsoft": "Microsoft"}


def relink_message(kind: str) -> str:
    """What a needs-relink OAuth account shows: what happened, what did not, what is paused."""
    who = OAUTH_PROVIDERS.get(kind, "The provider")
    return (f"Needs re-link: {who} refused the stored permission (token expired or revoked). "
            "Nothing was deleted; syncing of this account is paused.")


def plain_error(message: str | None) -> str | None:
    """A stored error message in plain words (the original stays available as the detail)."""
    if not message:
        return None
    prefix = ""
    if message.startswith(_NOT_SYNCED):
        prefix = "Not synced, and nothing was deleted. "
    for pattern, render in _PLAIN:
        hit = pattern.search(message)
        if hit:
            return prefix + render(hit)
    rest = message.removeprefix(_NOT_SYNCED)
    return prefix + rest[:1].upper() + rest[1:] + ("" if rest.endswith(".") else ".")


@dataclass(frozen=True)
class PendingDeletion:
    calendar: str
    start: When | None
    reason: str


@dataclass(frozen=True)
class AccountHealth:
    id: int
    name: str
    kind: str
    mode: str
    state: str  # healthy | new | needs-relink | retrying | error
    calendars: int
    last_success: When | None
    last_error: str | None  # plain words
    error_detail: str | None  # as stored
    retry_at: When | None
    #: OAuth accounts with a refresh token: its age and any warning (else None)
    token: TokenHealth | None = None

    @property
    def token_warning(self) -> str | None:
        return self.token.warning if self.token else None


@dataclass(frozen=True)
class RuleHealth:
    id: int
    name: str
    style: str
    sources: tuple[str, ...]
    target: str
    state: str  # healthy | new | syncing | paused | error
    last_success: When | None
    last_run: When | None
    next_run: When | None
    last_error: str | None
    error_detail: str | None
    counts: dict
    copies: int
    pending: tuple[PendingDeletion, ...]


@dataclass(frozen=True)
class Overview:
    accounts: list[AccountHealth]
    rules: list[RuleHealth]
    syncing: bool

    @property
    def attention(self) -> int:
        """How many accounts and rules need the user (re-link, confirm, or an error)."""
        return sum(a.state in ("needs-relink", "error", "retrying") or bool(a.token_warning)
                   for a in self.accounts) + \
            sum(r.state in ("paused", "error") for r in self.rules)


def _account_state(acc: accounts_repo.Account, now: datetime) -> str:
    if acc.status == "needs-relink":
        return "needs-relink"
    if acc.backoff_until and _parse(acc.backoff_until) > now:
        return "retrying"
    if acc.status != "ok":
        return "error"
    return "healthy" if acc.last_success_at else "new"


def _rule_state(rule: rules_repo.Rule, syncing: bool) -> str:
    if rule.state == "paused-deletions":
        return "paused"
    if syncing:
        return "syncing"
    if rule.state == "error" or rule.last_error:
        return "error"
    return "healthy" if rule.last_run_at else "new"


def _pending(store: Store, rule: rules_repo.Rule, names: dict[int, str], now: datetime,
             tz: tzinfo) -> tuple[PendingDeletion, ...]:
    if not rule.pending_deletions:
        return ()
    starts = dict(store.db.execute("SELECT id, start_utc FROM mappings WHERE rule_id = ?", [rule.id]).fetchall())
    out = []
    for p in rule.pending_deletions:
        start = starts.get(p.get("mapping"))
        reason = str(p.get("reason") or "no longer in the source")
        out.append(PendingDeletion(names.get(p.get("source_calendar"), "a calendar that was removed"),
                                   when(start, now, tz), reason[:1].upper() + reason[1:]))
    return tuple(sorted(out, key=lambda d: d.start.iso if d.start else ""))


def account_token(store: Store, account: accounts_repo.Account, now: datetime, *, testing_client: bool,
                  tz: tzinfo = timezone.utc) -> TokenHealth | None:
    """The token health of an OAuth account (None for kinds without tokens or without a token)."""
    if account.kind not in OAUTH_PROVIDERS:
        return None
    health = token_health(account.kind, accounts_repo.secret(store, account.id), now,
                          testing_client=testing_client, tz=tz)
    return health if health.linked_at or health.warning else None


def _account_error(acc: accounts_repo.Account, state: str) -> str | None:
    if acc.status == "ok":
        return None
    if state == "needs-relink" and acc.kind in OAUTH_PROVIDERS:
        return relink_message(acc.kind)
    return plain_error(acc.last_error)


def user_overview(store: Store, user_id: int, now: datetime, *, syncing: bool = False,
                  testing_client: bool = False) -> Overview:
    """Every account and rule of one user, with its state in plain words and times in their zone.

    `syncing` says a sync is running now (the web UI passes SYNC_LOCK.locked());
    `testing_client` is `[google] testing_client` (Google's 7-day rule for clients in Testing).
    """
    try:
        tz: tzinfo = ZoneInfo(users.get(store, user_id).timezone or "UTC")
    except ZoneInfoNotFoundError:
        tz = timezone.utc
    accs = accounts_repo.all_accounts(store, user_id)
    cals = accounts_repo.calendars(store, user_id=user_id)
    acc_names = {a.id: a.name for a in accs}
    names = {c.id: f"{c.name} ({acc_names.get(c.account_id, '?')})" for c in cals}
    per_account: dict[int, int] = {}
    for c in cals:
        per_account[c.account_id] = per_account.get(c.account_id, 0) + 1
    account_rows = []
    for a in accs:
        state = _account_state(a, now)
        account_rows.append(AccountHealth(
            a.id, a.name, a.kind, str(a.mode), state, per_account.get(a.id, 0), when(a.last_success_at, now, tz),
            _account_error(a, state), a.last_error if a.status != "ok" else None, when(a.backoff_until, now, tz),
            account_token(store, a, now, testing_client=testing_client, tz=tz)))
    copies = dict(store.db.execute(
        "SELECT m.rule_id, count(*) FROM mappings m JOIN rules r ON r.id = m.rule_id "
        "WHERE r.user_id = ? AND m.state = 'synced' GROUP BY m.rule_id", [user_id]).fetchall())
    rule_rows = []
    for r in rules_repo.all_rules(store, user_id):
        rule_rows.append(RuleHealth(
            r.id, r.name, str(r.options.style), tuple(names.get(s, f"calendar {s}") for s in r.source_ids),
            names.get(r.target_calendar_id, f"calendar {r.target_calendar_id}"), _rule_state(r, syncing),
            when(r.last_success_at, now, tz), when(r.last_run_at, now, tz), when(r.next_run_at, now, tz),
            plain_error(r.last_error), r.last_error,
            {k: v for k, v in r.last_counts.items() if k != "signature"}, copies.get(r.id, 0),
            _pending(store, r, names, now, tz)))
    return Overview(account_rows, rule_rows, syncing)
