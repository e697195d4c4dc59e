"""The `homecal` command line: argparse front door, one function per command.

Every expected failure is a HomecalError; `main` prints it as one actionable line (a
ConfigError as one line per problem) and exits with the error's code, never a traceback.
Passwords are read from a file or a prompt, never from argv (argv is visible in `ps`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from daemon import __version__
from daemon.config import Config, load_config
from daemon.errors import HomecalError, UsageError
from daemon.logs import setup_logging


def read_secret(path: str | None, prompt: str, *, confirm: bool = False) -> str:
    """A secret from a file ("-" for stdin) or, on a terminal, a prompt without echo."""
    if path == "-":
        value = sys.stdin.readline().rstrip("\n")
    elif path:
        try:
            value = Path(path).read_text(encoding="utf-8").rstrip("\n")
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    elif sys.stdin.isatty():
        value = getpass.getpass(prompt)
        if confirm and getpass.getpass("Again: ") != value:
            raise UsageError("the two passwords differ; nothing was changed")
    else:
        raise UsageError("no terminal to prompt on: pass the password in a file (--admin-password-file F, or - for stdin)")
    if not value:
        raise UsageError("the password is empty")
    return value


# -- commands --------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace, config: Config) -> int:
    from daemon.store import open_store
    from daemon.store import users

    existed = config.storage.db_path.exists()
    store = open_store(config, create=True)
    try:
        key = store.key  # type: ignore[attr-defined]
        print(f"{'database ready' if existed else 'created database'}: {config.storage.db_path}")
        print(f"master key: {key.source}" + ("  <- back this file up; the data cannot be opened without it" if key.path else ""))
        name = args.admin_user
        if not name and users.count(store) == 0 and sys.stdin.isatty() and not args.admin_password_file:
            name = input("Admin user name [admin]: ").strip() or "admin"
        if name:
            password = read_secret(args.admin_password_file, f"Password for {name}: ", confirm=True)
            users.create(store, name, password, is_admin=True)
            print(f"created admin user {name}")
        elif users.count(store) == 0:
            print(f"no admin yet: run `homecal init --admin-user NAME`, or start `homecal run` and open "
                  f"{config.server.base_url}/setup in a browser on this machine")
    finally:
        store.close()
    return 0


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from daemon.runtime import Daemon
    from daemon.store import open_store

    store = open_store(config, create=True)
    return Daemon(config, store).run()


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from daemon.health import account_lines, status

    info = status(config)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"homecal {info['version']}")
    print(f"config:   {info['config'] or 'built-in defaults'}")
    print(f"database: {info['database']}")
    if not info["initialised"]:
        print("state:    not initialised; run `homecal init` or `homecal run`")
        return 0
    d = info["daemon"]
    if d["running"]:
        print(f"daemon:   running, pid {d['pid']}, since {d['started_at']}, heartbeat {d['heartbeat_seconds_ago']}s ago, {d['url']}")
    else:
        print("daemon:   not running")
    print(f"key:      {info['key_source']}")
    print(f"schema:   {info['schema']}")
    print(f"users:    {len(info['users'])} (admins: {', '.join(info['admins']) or 'none'})")
    print(f"accounts: {len(info['accounts'])}")
    for a in info["accounts"]:
        for line in account_lines(a):
            print(line)
    print(f"rules:    {len(info['rules'])}")
    for r in info["rules"]:
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items()) or "no run yet"
        print(f"  rule {r['id']:<4} {r['style']:<6} {r['state']:<17} last success {r['last_success_at'] or 'never'}; "
              f"next run {r['next_run_at'] or 'with the next cycle'}; {counts}")
        if r["last_error"]:
            print(f"      last error: {r['last_error']}")
    box = info["mail_outbox"]
    print(f"booking:  {info['booking_links']} link(s), {info['upcoming_bookings']} upcoming booking(s); "
          f"mail outbox: {box['waiting']} waiting, {box['given_up']} given up"
          + (" (see Booking links > Mail outbox)" if box["given_up"] else ""))
    return 0


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    from daemon.health import checks_as_dicts, doctor

    checks = doctor(config)
    if args.json:
        print(json.dumps(checks_as_dicts(checks), indent=2))
    else:
        for c in checks:
            print(f"{c.level.upper():<5} {c.name}: {c.detail}")
    failed = [c for c in checks if c.level == "fail"]
    if not args.json:
        print(f"{len(failed)} problem(s) found" if failed else "all checks passed")
    return 1 if failed else 0


def cmd_rotate_key(args: argparse.Namespace, config: Config) -> int:
    from daemon.health import daemon_state
    from daemon.store import open_store
    from daemon.store.rotate import rotate_key

    store = open_store(config)
    try:
        state = daemon_state(store)
        if state["running"]:
            raise UsageError(f"homecal is running (pid {state['pid']}); stop it first "
                             "(systemctl stop homecal), then rotate the key")
        n = rotate_key(store)
    finally:
        store.close()
    print(f"re-sealed {n} value(s) under a new key; {config.storage.key_path} now holds it. "
          "Replace your backup of the old key file.")
    return 0


# -- parser ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homecal",
        description="Self-hosted calendar sync daemon with a local web UI.",
    )
    parser.add_argument("--version", action="version", version=f"homecal {__version__}")
    parser.add_argument("--config", metavar="FILE",
                        help="config file (default: $HOMECAL_CONFIG, else ~/.config/homecal/config.toml, else built-in defaults)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="create the data directory, key file, database and an admin")
    p.add_argument("--admin-user", metavar="NAME", help="create this admin user")
    p.add_argument("--admin-password-file", metavar="F", help="read the admin password from F ('-' for stdin)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run the daemon: scheduler and web UI (stops on SIGTERM/SIGINT)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="show the daemon, accounts and rules")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("doctor", help="check config, key, database, permissions and accounts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)

    from daemon.cli_sync import register

    register(sub)

    p = sub.add_parser("rotate-key", help="re-seal everything under a new master key (stop the daemon first)")
    p.set_defaults(func=cmd_rotate_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Files we create (database, WAL, key, logs) are private to this user.
    os.umask(0o077)
    try:
        config = load_config(args.config)
        setup_logging(config.logging.level)
        return args.func(args, config)
    except HomecalError as err:
        print(f"homecal: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("homecal: interrupted", file=sys.stderr)
        return 130
