"""What `homecal status` and `homecal doctor` report, as plain data.

Kept apart from the CLI so the web dashboard can show the same facts.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon import __version__
from daemon.config import Config
from daemon.errors import HomecalError
from daemon.runtime import is_loopback
from daemon.store import Store, open_store
from daemon.store import accounts as accounts_repo
from daemon.store import rules as rules_repo
from daemon.store import users
from daemon.store.migrations import MIGRATIONS

HEARTBEAT_STALE_SECONDS = 120


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _age_seconds(iso: str | None) -> float | None:
    if not iso:
        return None
    return (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()


def daemon_state(store: Store) -> dict:
    """Whether a daemon is running on this database, judged by its pid and heartbeat."""
    pid = store.meta_get("daemon_pid")
    beat = _age_seconds(store.meta_get("daemon_heartbeat_at"))
    running = bool(pid) and _pid_alive(int(pid)) and beat is not None and beat < HEARTBEAT_STALE_SECONDS
    return {
        "running": running,
        "pid": int(pid) if pid and running else None,
        "started_at": store.meta_get("daemon_started_at"),
        "heartbeat_seconds_ago": round(beat) if beat is not None else None,
        "url": store.meta_get("daemon_url"),
    }


def status(config: Config) -> dict:
    """Everything `homecal status` shows. Opens the store read-mostly (no creation)."""
    out: dict = {
        "version": __version__,
        "config": str(config.source) if config.source else None,
        "data_dir": str(config.storage.data_path),
        "database": str(config.storage.db_path),
        "initialised": config.storage.db_path.exists(),
    }
    if not out["initialised"]:
        return out
    store = open_store(config)
    try:
        db = store.db
        out["key_source"] = store.key.source  # type: ignore[attr-defined]
        out["schema"] = store.applied_migrations()[-1]
        out["daemon"] = daemon_state(store)
        out["users"] = [u.username for u in users.all_users(store)]
        out["admins"] = [u.username for u in users.all_users(store) if u.is_admin]
        out["accounts"] = [
            {"id": r["id"], "name": r["name"], "kind": r["kind"], "mode": r["mode"], "status": r["status"],
             "last_success_at": r["last_success_at"], "last_error": r["last_error"],
             "backoff_until": r["backoff_until"]}
            for r in db["accounts"].rows_where(order_by="id")
        ]
        out["rules"] = [
            {"id": r.id, "state": r.state, "style": str(r.options.style), "sources": list(r.source_ids),
             "target": r.target_calendar_id, "last_success_at": r.last_success_at, "last_error": r.last_error,
             "next_run_at": r.next_run_at, "counts": {k: v for k, v in r.last_counts.items() if k != "signature"},
             "pending_deletions": len(r.pending_deletions)}
            for r in rules_repo.all_rules(store)
        ]
    finally:
        store.close()
    return out


@dataclass
class Check:
    name: str
    level: str  # ok | warn | fail | info
    detail: str


def _check_dir(path: Path) -> Check:
    if not path.exists():
        return Check("data directory", "warn", f"{path} does not exist yet; `homecal init` creates it")
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.getuid():
        return Check("data directory", "warn", f"{path} is owned by uid {st.st_uid}, not by this user ({os.getuid()})")
    if mode & stat.S_IWOTH or mode & stat.S_IWGRP:
        return Check("data directory", "fail", f"{path} is writable by others (mode {mode:o}); run: chmod 700 {path}")
    if mode & (stat.S_IROTH | stat.S_IRGRP):
        return Check("data directory", "warn", f"{path} is readable by others (mode {mode:o}); run: chmod 700 {path}")
    return Check("data directory", "ok", f"{path} (mode {mode:o})")


def _check_port(config: Config, daemon_running: bool) -> Check:
    host, port = config.server.host, config.server.port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            if daemon_running:
                return Check("web server", "ok", f"homecal is listening on {host}:{port}")
            return Check("web server", "fail", f"cannot bind {host}:{port}: {err.strerror}; another program uses it")
    return Check("web server", "ok", f"{host}:{port} is free for `homecal run`")


def doctor(config: Config) -> list[Check]:
    """Every check `homecal doctor` runs, in order. Any "fail" means homecal cannot work."""
    checks = [Check("config", "ok", str(config.source) if config.source else "built-in defaults (no config file)")]
    checks.append(_check_dir(config.storage.data_path))
    if not is_loopback(config.server.host):
        checks.append(Check("bind address", "warn",
                            f"[server] host = {config.server.host} exposes the UI beyond this machine; use TLS in front"))
    if config.server.public_url and not config.server.public_url.startswith("https://") \
            and not is_loopback(config.server.host):
        checks.append(Check("public url", "warn", "public_url is not https: logins would cross the network in clear"))
    if not config.storage.db_path.exists():
        checks.append(Check("database", "fail", f"no database at {config.storage.db_path}; run `homecal init`"))
        return checks
    try:
        store = open_store(config)
    except HomecalError as err:
        checks.append(Check("key and database", "fail", str(err)))
        return checks
    try:
        checks.append(Check("master key", "ok", f"from {store.key.source}; opens the database"))  # type: ignore[attr-defined]
        result = store.db.execute("PRAGMA quick_check").fetchone()[0]
        checks.append(Check("database integrity", "ok" if result == "ok" else "fail", result))
        mode = store.db.journal_mode
        checks.append(Check("database mode", "ok" if mode == "wal" else "warn", f"journal_mode={mode}"))
        applied = store.applied_migrations()
        checks.append(Check("schema", "ok" if len(applied) == len(MIGRATIONS) else "fail", applied[-1]))
        admins = [u for u in users.all_users(store) if u.is_admin]
        checks.append(Check("admin account", "ok", ", ".join(u.username for u in admins)) if admins else
                      Check("admin account", "warn", "none yet: run `homecal init --admin-user NAME` or open /setup"))
        running = daemon_state(store)["running"]
        checks.append(_check_port(config, running))
        for row in store.db["accounts"].rows_where(order_by="id"):
            level = "ok" if row["status"] == "ok" else "fail"
            checks.append(Check(f"account {row['name']}", level, f"{row['kind']}, {row['mode']}, {row['status']}"))
    finally:
        store.close()
    if config.smtp.host:
        detail = f"{config.smtp.host}:{config.smtp.port} from {config.smtp.from_address or '(no from_address!)'}"
        checks.append(Check("smtp", "ok" if config.smtp.from_address else "fail", detail))
    else:
        checks.append(Check("smtp", "info", "not configured: invites and alerts are not mailed"))
    return checks


def checks_as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]


# -- the dashboard: one user's accounts and rules at a glance ---------------------------------
# Plain data, built without Flask, so it is tested directly; the web page only lays it out.


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
    (re.compile(r"login refused|refused access|needs re-linking"),
     lambda m: "The server refused the login: re-link the account with its current password."),
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
        return sum(a.state in ("needs-relink", "error", "retrying") for a in self.accounts) + \
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


def user_overview(store: Store, user_id: int, now: datetime, *, syncing: bool = False) -> Overview:
    """Every account and rule of one user, with its state in plain words and times in their zone.

    `syncing` says a sync is running now (the web UI passes SYNC_LOCK.locked()).
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
    account_rows = [
        AccountHealth(a.id, a.name, a.kind, str(a.mode), _account_state(a, now), per_account.get(a.id, 0),
                      when(a.last_success_at, now, tz), plain_error(a.last_error) if a.status != "ok" else None,
                      a.last_error if a.status != "ok" else None, when(a.backoff_until, now, tz))
        for a in accs]
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
