"""Linking Microsoft 365 and Outlook.com accounts: list first, then store (issue #7).

The web UI (webui/accounts_microsoft.py) and `homecal account add microsoft` (the device-code
flow, daemon/cli_microsoft.py) both get a fresh secret from daemon.oauth_microsoft and hand it
here. `link_microsoft` lists the calendars and reads the mailbox's address (GET /me) with it
first, and only then writes account and calendars in one transaction: a sign-in that cannot
list anything keeps nothing. `relink_microsoft` puts a new sign-in into an existing account, but
only for the same person (the msal account's home_account_id, else the address), so the
calendars, rules and copies that belong to the first person stay with them.

A no-access account asks Microsoft nothing: its secret is only the address the user typed,
and its one calendar is named after it.
"""

from __future__ import annotations

from functools import partial
from zoneinfo import ZoneInfo

from daemon.config import Config
from daemon.errors import AuthError, HomecalError, ProviderError, RateLimited, UsageError
from daemon.linking import _zone, link_signed_in, swap_secret
from daemon.models import AccessMode, CalendarInfo
from daemon.store import accounts
from daemon.store.accounts import Account, Calendar
from daemon.store.db import Store

#: the remote id of a no-access account's one calendar (nothing is ever read from it)
NO_ACCESS_CALENDAR = "calendar"


def no_access_secret(email: str) -> dict:
    """The secret of a no-access Microsoft account: the address the user typed, nothing else."""
    from daemon.oauth_microsoft import no_access_secret as make

    return make(email)


def microsoft_calendars(config: Config, secret: dict, mode: AccessMode | str,
                        tz: ZoneInfo) -> tuple[list[CalendarInfo], dict]:
    """The calendars a fresh sign-in can list, and the secret completed with address and name.

    No-access: one calendar named after the typed address, nothing asked of Microsoft.
    Otherwise GET /me/calendars and GET /me; a token msal refreshed on the way is kept in the
    returned secret (on_token), so the first sync does not redeem the refresh token again.
    """
    secret = dict(secret)
    mode = AccessMode(mode)
    if mode == AccessMode.NO_ACCESS:
        email = no_access_secret(secret.get("email", ""))["email"]
        return [CalendarInfo(remote_id=NO_ACCESS_CALENDAR, name=email, writable=False)], {"email": email}
    from daemon.providers.microsoft import microsoft_provider

    provider = microsoft_provider(config, secret, mode, tz, on_token=secret.update)
    try:
        infos = provider.list_calendars()
        me = provider.me()
    finally:
        provider.close()
    secret["email"] = (me.get("email") or secret.get("email") or secret.get("username") or "").strip()
    secret["name"] = (me.get("name") or secret.get("name") or "").strip()
    return infos, secret


def link_microsoft(store: Store, config: Config, user_id: int, name: str, mode: AccessMode | str,
                   secret: dict) -> tuple[Account, list[Calendar]]:
    """Store a Microsoft account whose fresh secret lists its calendars; on any failure nothing is kept."""
    return link_signed_in(store, user_id, "microsoft", name, mode, secret, partial(microsoft_calendars, config))


def _other_person(old: dict, new: dict) -> bool:
    """Whether `new` signs in someone else than `old`: msal's home account id, else the address."""
    before, after = old.get("home_account_id") or "", new.get("home_account_id") or ""
    if before and after:
        return before != after
    before, after = (old.get("email") or "").lower(), (new.get("email") or "").lower()
    return bool(before and after and before != after)


def _refuse(account: Account, old: dict, new: dict) -> UsageError:
    was = old.get("email") or old.get("username") or "another Microsoft account"
    now = new.get("email") or new.get("username") or "another Microsoft account"
    return UsageError(f"you signed in to Microsoft as {now}, but {account.name} is {was}: "
                      f"sign in again as {was}, or add {now} as a new account (nothing was changed)")


def relink_microsoft(store: Store, config: Config, account: Account, secret: dict) -> list[Calendar]:
    """Replace a Microsoft account's sign-in with a new one of the same person.

    The new sign-in lists the calendars first; the account, its calendars (new ones are added),
    its rules and its mirror stay. Another person is refused in plain words naming both
    addresses. The account is healthy again afterwards (status ok, failures cleared).
    """
    if account.kind != "microsoft":
        raise UsageError(f"a {account.kind} account is not re-linked through Microsoft")
    if account.mode == AccessMode.NO_ACCESS:
        raise UsageError("a no-access Microsoft account has no sign-in to renew")
    old = accounts.secret(store, account.id)
    # When both sides carry msal's home account id the person is known before anything is
    # asked of the new person's mailbox.
    if old.get("home_account_id") and secret.get("home_account_id") and _other_person(old, secret):
        raise _refuse(account, old, secret)
    infos, secret = microsoft_calendars(config, secret, account.mode, _zone(store, account.user_id))
    if _other_person(old, secret):
        raise _refuse(account, old, secret)
    return swap_secret(store, account, secret, infos)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def explain_microsoft(err: HomecalError) -> str:
    """A failed Microsoft link in plain words: what went wrong and what to do about it.

    The messages of oauth_microsoft and the Microsoft provider are plain words without tokens
    already; this adds what to do where they leave it out.
    """
    detail = str(err).strip()
    if isinstance(err, AuthError):
        said = _sentence(detail) if detail else "Microsoft refused homecal's sign-in."
        if "link" not in detail.lower() and "sign in" not in detail.lower():
            said += " Link the account again."
        return said
    if isinstance(err, RateLimited):
        return "Microsoft asks homecal to slow down: try again in a few minutes."
    if isinstance(err, ProviderError):
        if "microsoft" in detail.lower():
            return _sentence(detail)
        return f"Microsoft Graph did not answer as expected: try again later. ({detail})"
    return _sentence(detail)
