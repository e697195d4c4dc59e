"""Headless Microsoft linking: `homecal account add microsoft` and `homecal account relink NAME`.

A server has no browser, and Microsoft's device-code flow needs none on it: homecal prints
Microsoft's own instruction ("To sign in, use a web browser to open the page
https://microsoft.com/devicelogin and enter the code ..."), the user does that on any device,
and homecal waits for the answer (daemon.oauth_microsoft.finish_device). Only then are the
calendars listed and the account stored (daemon.linking_microsoft), so Ctrl-C, a timeout or a
refused sign-in leaves nothing behind. No tunnel is needed, unlike Google's loopback redirect.
"""

from __future__ import annotations

import argparse

from daemon.config import Config
from daemon.errors import UsageError
from daemon.models import AccessMode
from daemon.store import accounts as accounts_repo
from daemon.store.accounts import Account
from daemon.store.db import Store

#: the README section that explains the app registration a client id comes from
GUIDE = "the README's \"Linking Microsoft 365 or Outlook.com\""


def require_client(config: Config) -> None:
    """UsageError saying where a client id goes, before anything is printed or asked."""
    if not config.microsoft.client_id:
        raise UsageError("no Microsoft app is configured: register one in the Entra admin center and set "
                         f"[microsoft] client_id in the config file ({GUIDE} explains how)")


def _sign_in(config: Config, mode: AccessMode, heading: str, timeout: float | None) -> dict:
    """Run the device-code flow, printing Microsoft's instruction and the permissions asked; the secret."""
    require_client(config)  # before anything is printed or msal is loaded
    from daemon import access, oauth_microsoft

    flow = oauth_microsoft.start_device(config, mode)
    asked = "\n".join(f"    - {s}: {access.SCOPE_MEANINGS.get(s, s)}" for s in access.scopes("microsoft", mode))
    if timeout:
        wait = f"{timeout / 60:g} minutes" if timeout >= 60 else f"{timeout:g} seconds"
    else:
        wait = "as long as the code is valid"
    print(f"{heading}\n"
          f"{flow['message']}\n"
          "Any browser will do (a phone, a laptop): this server needs none.\n"
          f"Microsoft asks you to allow exactly this (plus staying signed in):\n{asked}\n"
          f"homecal waits {wait} (Ctrl-C stops it; nothing is kept until the calendars are listed).\n\n"
          "Waiting for Microsoft...", flush=True)
    return oauth_microsoft.finish_device(config, flow, timeout=timeout)


def add_microsoft(args: argparse.Namespace, config: Config, store: Store, owner_id: int, owner_name: str,
                  mode: AccessMode) -> tuple[Account, list[accounts_repo.Calendar]]:
    """`homecal account add microsoft`: a no-access address, or a device-code sign-in; then linking."""
    from daemon import linking_microsoft

    name = accounts_repo.check_new_name(store, owner_id, args.name)
    if mode == AccessMode.NO_ACCESS:
        if not args.email:
            raise UsageError("a no-access Microsoft account needs --email ADDRESS: homecal asks Microsoft "
                             "nothing, so it cannot find the address itself")
        return linking_microsoft.link_microsoft(store, config, owner_id, name, mode,
                                                linking_microsoft.no_access_secret(args.email[0]))
    secret = _sign_in(config, mode, f"Linking a Microsoft account as {name!r} ({mode}) for {owner_name}.",
                      args.timeout)
    account, cals = linking_microsoft.link_microsoft(store, config, owner_id, name, mode, secret)
    email = accounts_repo.secret(store, account.id).get("email") or "an unknown address"
    print(f"Microsoft linked {email}.")
    return account, cals


def relink_microsoft(args: argparse.Namespace, config: Config, store: Store, account: Account) -> int:
    """`homecal account relink NAME` for a Microsoft account: a new device-code sign-in, same person."""
    from daemon import linking_microsoft

    if account.mode == AccessMode.NO_ACCESS:
        raise UsageError("a no-access Microsoft account has no sign-in to renew")
    secret = _sign_in(config, account.mode, f"Re-linking the Microsoft account {account.name!r} ({account.mode}).",
                      args.timeout)
    cals = linking_microsoft.relink_microsoft(store, config, account, secret)
    print(f"Microsoft account {account.name} re-linked; {len(cals)} calendar(s), rules and copies kept.")
    return 0
