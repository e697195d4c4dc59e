"""Calendar providers behind one contract (base.Provider), and the one way to build one."""

from __future__ import annotations

from datetime import tzinfo

from daemon.config import Config
from daemon.errors import UsageError
from daemon.providers.base import Provider
from daemon.store import accounts as accounts_repo
from daemon.store.accounts import Account
from daemon.store.db import Store


def make_provider(store: Store, config: Config, account: Account, tz: tzinfo) -> Provider:
    """The provider for `account`, with its sealed credentials opened just for this use."""
    secret = accounts_repo.secret(store, account.id)
    if account.kind == "caldav":
        from daemon.providers.caldav import CalDAVProvider

        return CalDAVProvider(url=secret["url"], username=secret.get("username", ""),
                              password=secret.get("password", ""), mode=account.mode, tz=tz,
                              owner_emails=secret.get("emails", ()))
    if account.kind == "ics":
        from daemon.providers.ics_feed import ICSFeedProvider

        return ICSFeedProvider(url=secret["url"], mode=account.mode, tz=tz)
    if account.kind == "local":
        from daemon.providers.local import LocalProvider

        return LocalProvider(store=store, account_id=account.id, name=account.name, mode=account.mode, tz=tz)

    def keep(updates: dict) -> None:
        # The sign-in library refreshed (Google) or rotated (Microsoft's msal cache) the
        # tokens: keep them sealed, so the next cycle need not (and, for Microsoft, can).
        accounts_repo.set_secret(store, account.id, accounts_repo.secret(store, account.id) | updates)

    if account.kind == "google":
        from daemon.providers.google import google_provider

        return google_provider(config, secret, account.mode, tz, on_token=keep)
    if account.kind == "microsoft":
        from daemon.providers.microsoft import microsoft_provider

        return microsoft_provider(config, secret, account.mode, tz, on_token=keep)
    raise UsageError(f"{account.kind} accounts are not supported by this version of homecal yet")
