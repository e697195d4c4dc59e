"""What `homecal status` and `homecal doctor` report, as plain data.

Kept apart from the CLI so the web dashboard can show the same facts. Google accounts carry
their token's age and any warning that Google is about to stop the link (daemon.token_health).
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from daemon import __version__
from daemon.config import Config
from daemon.errors import HomecalError
from daemon.runtime import is_loopback
from daemon.store import Store, open_store
from daemon.store import accounts as accounts_repo
from daemon.store import rules as rules_repo
from daemon.store import users
from daemon.store.db import utcnow
from daemon.store.migrations import MIGRATIONS
from daemon.overview import account_token
from daemon.token_health import TokenHealth

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


#: the account state `homecal status` shows, from the stored status
STATE_WORDS = {"ok": "ok", "needs-relink": "needs re-link"}


def account_state(status: str | None) -> str:
    """ok, needs re-link or error: what the user has to know about an account."""
    return STATE_WORDS.get(status or "ok", "error")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def token_dict(health: TokenHealth) -> dict:
    """A token's health as JSON-ready data (times in UTC ISO)."""
    return {"age_days": health.age_days, "linked_at": _iso(health.linked_at),
            "last_refresh_at": _iso(health.last_refresh_at), "warning": health.warning,
            "expires_at": _iso(health.expires_at)}


def _token(store: Store, config: Config, account_id: int, now: datetime) -> dict | None:
    """The token health of an OAuth account (None for other kinds and accounts without a token)."""
    health = account_token(store, accounts_repo.get(store, account_id), now,
                           testing_client=config.google.testing_client)
    return token_dict(health) if health else None


def status(config: Config, *, now: datetime | None = None) -> dict:
    """Everything `homecal status` shows. Opens the store read-mostly (no creation).

    Each account has `state` (ok / needs re-link / error) and, for Google, `token`: age in
    days, when it was linked and last refreshed, a warning or None, predicted end or None.
    """
    now = now or datetime.now(timezone.utc)
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
             "state": account_state(r["status"]), "last_success_at": r["last_success_at"],
             "last_error": r["last_error"], "backoff_until": r["backoff_until"],
             "token": _token(store, config, r["id"], now)}
            for r in db["accounts"].rows_where(order_by="id")
        ]
        out["rules"] = [
            {"id": r.id, "state": r.state, "style": str(r.options.style), "sources": list(r.source_ids),
             "target": r.target_calendar_id, "last_success_at": r.last_success_at, "last_error": r.last_error,
             "next_run_at": r.next_run_at, "counts": {k: v for k, v in r.last_counts.items() if k != "signature"},
             "pending_deletions": len(r.pending_deletions)}
            for r in rules_repo.all_rules(store)
        ]
        out["booking_links"] = db.execute("SELECT count(*) FROM booking_links").fetchone()[0]
        out["upcoming_bookings"] = db.execute("SELECT count(*) FROM bookings WHERE status = 'confirmed' "
                                              "AND end_utc > ?", [utcnow()]).fetchone()[0]
        mail = dict(db.execute("SELECT status, count(*) FROM outbox WHERE status != 'sent' GROUP BY status").fetchall())
        out["mail_outbox"] = {"waiting": mail.get("pending", 0) + mail.get("sending", 0),
                              "given_up": mail.get("failed", 0)}
    finally:
        store.close()
    return out


def account_lines(account: dict) -> list[str]:
    """One account of `status()` as the lines `homecal status` prints (without --json)."""
    a = account
    lines = [f"  {a['name']:<20} {a['kind']:<8} {a['mode']:<10} {a['state']:<14} "
             f"last success {a['last_success_at'] or 'never'}"]
    if a["last_error"]:
        lines.append(f"      last error: {a['last_error']}"
                     + (f" (retry after {a['backoff_until']})" if a["backoff_until"] else ""))
    if a["state"] == "needs re-link":
        lines.append("      nothing was deleted; syncing of this account is paused until it is re-linked "
                     "(web UI: Accounts > Re-link)")
    token = a.get("token")
    if token:
        age = token["age_days"]
        when = "unknown" if age is None else ("today" if age == 0 else f"{age} day{'' if age == 1 else 's'} ago")
        lines.append(f"      token: linked {when}, last refreshed {token['last_refresh_at'] or 'never'}")
        if token["warning"]:
            lines.append(f"      warning: {token['warning']}")
    return lines


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


def doctor(config: Config, *, now: datetime | None = None) -> list[Check]:
    """Every check `homecal doctor` runs, in order. Any "fail" means homecal cannot work.

    `now` (default: the clock) is when token warnings are judged."""
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
        now = now or datetime.now(timezone.utc)
        for row in store.db["accounts"].rows_where(order_by="id"):
            level = "ok" if row["status"] == "ok" else "fail"
            detail = f"{row['kind']}, {row['mode']}, {row['status']}"
            token = _token(store, config, row["id"], now)
            if token and token["warning"]:
                level = "warn" if level == "ok" else level
                detail += f"; {token['warning']}"
            checks.append(Check(f"account {row['name']}", level, detail))
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
