"""The sync half of the command line: accounts, calendars, rules and `sync`.

Registered into the main parser by daemon.cli. Every command works on the store directly
(the daemon may be running: SQLite in WAL mode lets both work), and every write to a
calendar goes through the same engine and gate the daemon uses.
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

from daemon.config import Config
from daemon.errors import NotFound, UsageError
from daemon.models import AccessMode, Style
from daemon.oauth_loopback import DEFAULT_PORT, DEFAULT_TIMEOUT
from daemon.store import Store, open_store
from daemon.store import accounts as accounts_repo
from daemon.store import rules as rules_repo
from daemon.store import users
from daemon.sync.options import RuleOptions, parse_working_hours

MODES = [m.value for m in AccessMode]


@contextmanager
def _store(config: Config):
    store = open_store(config)
    try:
        yield store
    finally:
        store.close()


def _owner(store: Store, name: str | None) -> users.User:
    """The user a command acts for: --user, else the only (or first admin) user."""
    everyone = users.all_users(store)
    if name:
        for u in everyone:
            if u.username == name:
                return u
        raise NotFound(f"no user {name!r}")
    if not everyone:
        raise UsageError("no user yet: run `homecal init --admin-user NAME` first")
    admins = [u for u in everyone if u.is_admin]
    return (admins or everyone)[0]


def _provider(store: Store, config: Config, account: accounts_repo.Account):
    from daemon.providers import make_provider

    tz = ZoneInfo(users.get(store, account.user_id).timezone or "UTC")
    return make_provider(store, config, account, tz)


# -- accounts --------------------------------------------------------------------------

def cmd_account_add(args: argparse.Namespace, config: Config) -> int:
    from daemon.cli import read_secret

    mode = AccessMode(args.mode)
    if args.kind == "google":
        args.timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        return _add_google(args, config, mode)
    if args.kind == "microsoft":
        return _add_microsoft(args, config, mode)
    secret: dict = {}
    if args.kind == "caldav":
        if not (args.url and args.username):
            raise UsageError("account add caldav needs --url and --username (and --password-file or a prompt)")
        password = read_secret(args.password_file, f"Password for {args.username}: ")
        secret = {"url": args.url, "username": args.username, "password": password, "emails": args.email or []}
    elif args.kind == "ics":
        if not args.url:
            raise UsageError("account add ics needs --url")
        secret = {"url": args.url}  # feeds are read-only by nature; the gate refuses writes whatever the mode
    from daemon import linking

    with _store(config) as store:
        owner = _owner(store, args.user)
        # The credentials are tried before anything is stored: a link that does not work is
        # not kept (shared with the web UI).
        account, cals = linking.link(store, config, owner.id, args.kind, args.name, mode, secret)
    _print_added(account, cals)
    return 0


def _print_added(account: accounts_repo.Account, cals: list[accounts_repo.Calendar]) -> None:
    print(f"added {account.kind} account {account.name} (id {account.id}, {account.mode}) "
          f"with {len(cals)} calendar(s):")
    for c in cals:
        print(f"  {c.id:>4}  {account.name}/{c.name}{'' if c.writable else '  (read-only)'}")


def _add_microsoft(args: argparse.Namespace, config: Config, mode: AccessMode) -> int:
    """Headless Microsoft linking with the device code (daemon/cli_microsoft.py)."""
    from daemon import cli_microsoft

    with _store(config) as store:
        owner = _owner(store, args.user)
        account, cals = cli_microsoft.add_microsoft(args, config, store, owner.id, owner.username, mode)
    _print_added(account, cals)
    return 0


def _tunnel_host() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (DynamicUser=, containers)
        user = "you"
    return f"{user}@{socket.getfqdn() or socket.gethostname()}"


def _add_google(args: argparse.Namespace, config: Config, mode: AccessMode) -> int:
    """Headless Google linking: loopback redirect, reached from the user's laptop through SSH.

    Nothing is stored until Google's tokens have listed the calendars (linking.link_google).
    """
    from daemon import linking, oauth_google

    with _store(config) as store:
        owner = _owner(store, args.user)
        name = accounts_repo.check_new_name(store, owner.id, args.name)
        if mode == AccessMode.NO_ACCESS:
            if not args.email:
                raise UsageError("a no-access Google account needs --email ADDRESS: homecal asks Google nothing, "
                                 "so it cannot find the address itself")
            account, cals = linking.link_google(store, config, owner.id, name, mode,
                                                oauth_google.no_access_secret(args.email[0]))
            _print_added(account, cals)
            return 0
        secret = _google_consent(config, store, mode, f"Linking a Google account as {name!r} ({mode}) for "
                                 f"{owner.username}.", args.port, args.timeout)
        account, cals = linking.link_google(store, config, owner.id, name, mode, secret)
        email = accounts_repo.secret(store, account.id).get("email") or "an unknown address"
    print(f"Google linked {email}.")
    _print_added(account, cals)
    return 0


def _google_consent(config: Config, store, mode: AccessMode, heading: str, port: int, timeout: float) -> dict:
    """Run Google's consent through a loopback redirect, printing the exact steps; the new secret."""
    from daemon import access, oauth_google
    from daemon.oauth_loopback import LoopbackReceiver

    oauth_google.require_client(config, store)  # before a port is taken and instructions printed
    with LoopbackReceiver(port) as receiver:
        url, pending = oauth_google.start(config, store, mode, receiver.redirect_uri, client_type="installed")
        port = receiver.port
        wait = f"{timeout / 60:g} minutes" if timeout >= 60 else f"{timeout:g} seconds"
        scopes = "\n".join(f"       - {access.SCOPE_MEANINGS.get(s, s)}" for s in pending.scopes)
        print(f"{heading}\n"
              f"homecal waits for Google's answer at {receiver.redirect_uri} on this machine "
              f"(for up to {wait}).\n\n"
              "1. If your browser runs on another computer (a server has none), open a tunnel from that\n"
              "   computer first, with the user and host name you reach this server with, and keep it open:\n"
              f"       ssh -L {port}:127.0.0.1:{port} {_tunnel_host()}\n"
              "2. Open this address in that browser, sign in to Google and allow access:\n"
              f"       {url}\n"
              f"   Google asks you to allow exactly this:\n{scopes}\n"
              "   Leave every box ticked: homecal refuses a link with less.\n"
              "3. The browser then says \"homecal received Google's answer\"; come back here.\n\n"
              "Waiting for Google...", flush=True)
        params = receiver.wait(pending.state, timeout)
    return oauth_google.finish(pending, params)


def cmd_account_relink(args: argparse.Namespace, config: Config) -> int:
    """Renew a Google or Microsoft account's permission headless (after "needs re-link"); rules and copies stay."""
    from daemon import linking

    with _store(config) as store:
        account = accounts_repo.find(store, args.name)
        if account.kind == "microsoft":
            from daemon import cli_microsoft

            return cli_microsoft.relink_microsoft(args, config, store, account)
        args.timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        if account.kind != "google":
            raise UsageError(f"{account.name} is a {account.kind} account: re-link it in the web UI "
                             "(Accounts), where its new password is tried before it is kept")
        if account.mode == AccessMode.NO_ACCESS:
            raise UsageError("a no-access Google account has no sign-in to renew")
        secret = _google_consent(config, store, account.mode, f"Re-linking the Google account {account.name!r} "
                                 f"({account.mode}).", args.port, args.timeout)
        cals = linking.relink_google(store, config, account, secret)
    print(f"Google account {account.name} re-linked; {len(cals)} calendar(s), rules and copies kept.")
    return 0


def cmd_account_list(args: argparse.Namespace, config: Config) -> int:
    with _store(config) as store:
        accs = accounts_repo.all_accounts(store)
        owners = {u.id: u.username for u in users.all_users(store)}
    if args.json:
        print(json.dumps([{"id": a.id, "name": a.name, "kind": a.kind, "mode": str(a.mode), "status": a.status,
                           "owner": owners.get(a.user_id), "last_success_at": a.last_success_at,
                           "last_error": a.last_error, "backoff_until": a.backoff_until} for a in accs], indent=2))
        return 0
    if not accs:
        print("no accounts yet: homecal account add caldav|ics|local ...")
    for a in accs:
        line = f"{a.id:>4}  {a.name:<20} {a.kind:<9} {a.mode:<10} {a.status}"
        if a.last_error:
            line += f"  last error: {a.last_error}"
        print(line)
    return 0


def cmd_account_remove(args: argparse.Namespace, config: Config) -> int:
    with _store(config) as store:
        account = accounts_repo.find(store, args.name)
        accounts_repo.remove(store, account.id)
    print(f"removed account {account.name}")
    return 0


# -- calendars -------------------------------------------------------------------------

def cmd_calendars(args: argparse.Namespace, config: Config) -> int:
    with _store(config) as store:
        accs = {a.id: a for a in accounts_repo.all_accounts(store)}
        if args.refresh:
            from daemon import linking

            for a in accs.values():
                # linking.refresh asks nothing of a no-access account and marks a refused login
                linking.refresh(store, config, a)
        cals = accounts_repo.calendars(store)
    rows = [{"id": c.id, "account": accs[c.account_id].name, "name": c.name, "kind": accs[c.account_id].kind,
             "mode": str(accs[c.account_id].mode), "writable": c.writable and accs[c.account_id].mode == AccessMode.READ_WRITE,
             "last_refresh_at": c.last_refresh_at} for c in cals]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no calendars yet: add an account first")
    for r in rows:
        print(f"{r['id']:>4}  {r['account']}/{r['name']:<30} {r['kind']:<7} {r['mode']:<10} "
              f"{'writable' if r['writable'] else 'read-only'}")
    return 0


# -- rules -----------------------------------------------------------------------------

def _options_from_args(args: argparse.Namespace) -> RuleOptions:
    raw: dict = {"style": args.style, "skip_declined": not args.keep_declined, "skip_free": not args.keep_free,
                 "tentative": args.tentative, "all_day": args.all_day, "title_include": args.include or "",
                 "title_exclude": args.exclude or "", "title_template": args.title or "",
                 "copy_description": not args.no_description, "copy_location": not args.no_location,
                 "private": not args.public}
    if args.working_hours:
        raw["working_hours"] = parse_working_hours(args.working_hours)
    return RuleOptions.from_dict(raw)


def cmd_rule_add(args: argparse.Namespace, config: Config) -> int:
    options = _options_from_args(args)
    with _store(config) as store:
        owner = _owner(store, args.user)
        sources = [accounts_repo.find_calendar(store, ref, owner.id) for ref in args.sources]
        target = accounts_repo.find_calendar(store, args.target, owner.id)
        target_account = accounts_repo.get(store, target.account_id)
        if target_account.mode != AccessMode.READ_WRITE or not target.writable:
            raise UsageError(f"calendar {target.name} cannot be written ({target_account.mode}"
                             f"{', read-only' if not target.writable else ''}); choose a read-write calendar as --to")
        rule = rules_repo.add(store, owner.id, [s.id for s in sources], target.id, options, args.name or "")
    print(f"added rule {rule.id}: {', '.join(s.name for s in sources)} -> {target.name} as {options.style}; "
          "it runs with the next sync (or now: homecal sync --rule {0})".format(rule.id))
    return 0


def cmd_rule_list(args: argparse.Namespace, config: Config) -> int:
    with _store(config) as store:
        rules = rules_repo.all_rules(store)
        names = {c.id: c.name for c in accounts_repo.calendars(store)}
    if args.json:
        print(json.dumps([{"id": r.id, "name": r.name, "sources": list(r.source_ids), "target": r.target_calendar_id,
                           "style": str(r.options.style), "state": r.state, "last_run_at": r.last_run_at,
                           "last_success_at": r.last_success_at, "last_error": r.last_error,
                           "next_run_at": r.next_run_at,
                           "counts": {k: v for k, v in r.last_counts.items() if k != "signature"},
                           "pending_deletions": len(r.pending_deletions)} for r in rules], indent=2))
        return 0
    if not rules:
        print("no rules yet: homecal rule add --from CAL --to CAL --style busy")
    for r in rules:
        src = ", ".join(names.get(s, str(s)) for s in r.source_ids)
        print(f"{r.id:>4}  {src} -> {names.get(r.target_calendar_id, '?')}  {r.options.style}  {r.state}"
              + (f"  last error: {r.last_error}" if r.last_error else ""))
    return 0


def cmd_rule_remove(args: argparse.Namespace, config: Config) -> int:
    from daemon.sync.cleanup import remove_rule

    with _store(config) as store:
        removed = remove_rule(store, config, int(args.id), delete_events=not args.keep_events)
    print(f"removed rule {args.id}" + (f" and deleted its {removed} event(s)" if removed else ""))
    return 0


def cmd_rule_confirm(args: argparse.Namespace, config: Config) -> int:
    with _store(config) as store:
        rule = rules_repo.confirm_deletions(store, int(args.id))
    print(f"rule {rule.id}: deletions confirmed; the next sync applies them")
    return 0


# -- sync ------------------------------------------------------------------------------

def _fmt(value: datetime | date) -> str:
    return value.isoformat(sep=" ", timespec="minutes") if isinstance(value, datetime) else value.isoformat()


def cmd_sync(args: argparse.Namespace, config: Config) -> int:
    from daemon.sync.cycle import engine_for
    from daemon.sync.plan import Create, Delete, Update

    with _store(config) as store:
        reports = engine_for(store, config).run([args.rule] if args.rule else None, dry_run=args.dry_run)
    if args.rule and not reports:
        raise NotFound(f"no rule {args.rule}; see `homecal rule list`")
    failed = 0
    for r in reports:
        line = f"rule {r.rule_id}: {r.status}"
        if r.status in ("ok", "dry-run"):
            verb = "would " if args.dry_run else ""
            line += f", {verb}create {r.created}, {verb}update {r.updated}, {verb}delete {r.deleted}"
        if r.message:
            line += f" ({r.message})"
        print(line)
        if args.dry_run and r.plan is not None:
            for a in r.plan.actions:
                if isinstance(a, (Create, Update)):
                    kind = "create" if isinstance(a, Create) else "update"
                    print(f"    {kind} {_fmt(a.draft.start)} - {_fmt(a.draft.end)}  {a.draft.summary}")
                elif isinstance(a, Delete):
                    print(f"    delete {a.mapping.source_key} ({a.reason})")
        failed += r.status in ("error", "paused")
    if not reports:
        print("no rules to run: homecal rule add ...")
    return 1 if failed else 0


# -- parser ----------------------------------------------------------------------------

def _port_arg(text: str) -> int:
    """--port: a TCP port, 0 for any free one (argparse turns the error into one usage line)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 1-65535, or 0 for any free one")
    return port


def _seconds_arg(text: str) -> float:
    """--timeout: a positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return seconds


def register(sub: argparse._SubParsersAction) -> None:
    acc = sub.add_parser("account", help="link, list and remove calendar accounts")
    asub = acc.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    p = asub.add_parser("add", help="link an account: caldav, ics, local, google, microsoft")
    p.add_argument("kind", choices=["caldav", "ics", "local", "google", "microsoft"])
    p.add_argument("--name", required=True, help="a short name, e.g. work or icloud")
    p.add_argument("--url", help="CalDAV server or calendar URL; ICS feed URL (https:// or webcal://)")
    p.add_argument("--username", help="CalDAV login (iCloud: your Apple ID email)")
    p.add_argument("--password-file", metavar="F",
                   help="file holding the password ('-' for stdin); iCloud needs an app-specific password")
    p.add_argument("--mode", choices=MODES, default="read-write",
                   help="read-write (default), free-busy (only times are read and kept), no-access")
    p.add_argument("--email", action="append", metavar="ADDR",
                   help="your address on this account, to recognise invitations you declined (repeatable); "
                        "google or microsoft --mode no-access: the account's address")
    p.add_argument("--port", type=_port_arg, default=DEFAULT_PORT, metavar="P",
                   help=f"google: the loopback port Google's answer comes back to (default {DEFAULT_PORT}; "
                        "0 picks a free one)")
    p.add_argument("--timeout", type=_seconds_arg, default=None, metavar="SECONDS",
                   help=f"google: how long to wait for the browser (default {DEFAULT_TIMEOUT}); microsoft: "
                        "how long to wait for the device-code sign-in (default: while the code is valid, 15 minutes)")
    p.add_argument("--user", metavar="NAME", help="owner (default: the admin)")
    p.set_defaults(func=cmd_account_add)
    p = asub.add_parser("relink", help="renew a Google or Microsoft account's permission (after 'needs re-link')")
    p.add_argument("name", help="account name or id")
    p.add_argument("--port", type=_port_arg, default=DEFAULT_PORT, metavar="P",
                   help=f"the loopback port Google's answer comes back to (default {DEFAULT_PORT})")
    p.add_argument("--timeout", type=_seconds_arg, default=None, metavar="SECONDS",
                   help=f"how long to wait for the browser (Google, default {DEFAULT_TIMEOUT}) or the "
                        "device-code sign-in (Microsoft, default: while the code is valid)")
    p.set_defaults(func=cmd_account_relink)
    p = asub.add_parser("list", help="list accounts and their health")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_account_list)
    p = asub.add_parser("remove", help="remove an account (its rules first)")
    p.add_argument("name", help="account name or id")
    p.set_defaults(func=cmd_account_remove)

    p = sub.add_parser("calendars", help="list every calendar homecal knows, with ids for rules")
    p.add_argument("--json", action="store_true")
    p.add_argument("--refresh", action="store_true", help="ask the providers for new calendars first")
    p.set_defaults(func=cmd_calendars)

    rule = sub.add_parser("rule", help="sync rules: from source calendars into a target")
    rsub = rule.add_subparsers(dest="rule_command", metavar="ACTION", required=True)
    p = rsub.add_parser("add", help="add a rule (calendars by id, ACCOUNT/NAME, or unique name)")
    p.add_argument("--from", dest="sources", action="append", required=True, metavar="CAL")
    p.add_argument("--to", dest="target", required=True, metavar="CAL")
    p.add_argument("--style", choices=[s.value for s in Style], required=True,
                   help="busy: a 'Busy' block without details; clone: a copy without attendees")
    p.add_argument("--name", help="a label for the rule")
    p.add_argument("--keep-declined", action="store_true", help="also sync events you declined")
    p.add_argument("--keep-free", action="store_true", help="also sync events shown as free")
    p.add_argument("--tentative", choices=["busy", "skip"], default="busy")
    p.add_argument("--all-day", choices=["skip", "busy-only", "all"], default="busy-only")
    p.add_argument("--working-hours", metavar="'mon-fri 09:00-17:00'", help="only events overlapping these hours")
    p.add_argument("--include", metavar="REGEX", help="only events whose title matches")
    p.add_argument("--exclude", metavar="REGEX", help="leave out events whose title matches")
    p.add_argument("--title", metavar="TEMPLATE", help="title of the copies: {title} and {calendar} are filled in")
    p.add_argument("--no-description", action="store_true", help="clones: leave out the description")
    p.add_argument("--no-location", action="store_true", help="clones: leave out the location")
    p.add_argument("--public", action="store_true", help="do not mark copies private")
    p.add_argument("--user", metavar="NAME", help="owner (default: the admin)")
    p.set_defaults(func=cmd_rule_add)
    p = rsub.add_parser("list", help="list rules with their last run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rule_list)
    p = rsub.add_parser("remove", help="remove a rule and delete the events it made")
    p.add_argument("id")
    p.add_argument("--keep-events", action="store_true", help="leave the copies in the target calendar")
    p.set_defaults(func=cmd_rule_remove)
    p = rsub.add_parser("confirm-deletions", help="let a paused rule apply its large deletion")
    p.add_argument("id")
    p.set_defaults(func=cmd_rule_confirm)

    p = sub.add_parser("sync", help="run the sync rules now")
    p.add_argument("--rule", type=int, metavar="ID", help="only this rule")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.set_defaults(func=cmd_sync)


__all__ = ["register"]
