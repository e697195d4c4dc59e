"""Linking accounts: the one path `homecal account add` and the web UI share.

An account is kept only if it works: for a CalDAV server or a feed the credentials are tried
first (the provider lists the calendars), and only then are the account and its calendars
written, in one transaction. A wrong password or an unreachable server leaves nothing behind,
not even after a crash half-way. Re-linking works the same way: new credentials are tried
before they replace the old ones.

Google accounts come with tokens from daemon.oauth_google (or, in no-access mode, only the
address the user typed): `link_google` lists the calendars with those tokens first, takes the
account's e-mail from the primary calendar, and only then stores account and calendars in one
transaction. `relink_google` swaps in new tokens for the same Google account, keeping the
account, its calendars and its rules. Microsoft accounts work the same way in
daemon.linking_microsoft; `link` and `explain` dispatch to it. Both providers share this
module's shape: `link_signed_in` (name check, list with the new tokens, then store account and
calendars together) and `swap_secret` (new credentials in, success recorded, calendars saved).

The CalDAV presets (iCloud, Fastmail, Nextcloud) live here too, with the hint each provider
needs (iCloud refuses the Apple ID password: it takes an app-specific one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.config import Config
from daemon.errors import AuthError, HomecalError, NotFound, ProviderError, RateLimited, UsageError
from daemon.models import AccessMode, CalendarInfo
from daemon.providers.base import Provider
from daemon.store import accounts
from daemon.store import users
from daemon.store.accounts import Account, Calendar
from daemon.store.db import Store

#: kinds whose credentials are tried over the network before anything is stored
_REMOTE_KINDS = ("caldav", "ics")
FEED_SCHEMES = ("https", "http", "webcal", "webcals")


@dataclass(frozen=True)
class Preset:
    """A CalDAV provider people use, with what they need to know to link it."""

    key: str
    label: str
    #: the server URL; "" when the user must give it ("{host}" marks where their host goes)
    url: str
    url_hint: str
    username_hint: str
    password_hint: str


PRESETS: dict[str, Preset] = {p.key: p for p in (
    Preset("icloud", "iCloud", "https://caldav.icloud.com/",
           "Leave empty: homecal uses https://caldav.icloud.com/.",
           "Your Apple ID email address.",
           "An app-specific password, not your Apple ID password: create one at appleid.apple.com, "
           "Sign-In and Security, App-Specific Passwords (two-factor authentication must be on)."),
    Preset("fastmail", "Fastmail", "https://caldav.fastmail.com/",
           "Leave empty: homecal uses https://caldav.fastmail.com/.",
           "Your Fastmail email address.",
           "An app password with CalDAV access: create one in Fastmail under Settings, Privacy & Security, "
           "App passwords."),
    Preset("nextcloud", "Nextcloud", "https://{host}/remote.php/dav/",
           "Your Nextcloud address, e.g. cloud.example.org: homecal adds /remote.php/dav/.",
           "Your Nextcloud user name.",
           "An app password: create one in Nextcloud under Settings, Security, Devices & sessions."),
    Preset("other", "Other CalDAV server", "",
           "The server's CalDAV address (e.g. https://dav.example.org/), or one calendar's own address.",
           "Your user name on that server.",
           "Your password on that server; an app-specific password if the server offers one."),
)}


def caldav_url(preset: str, url: str) -> str:
    """The server URL for `preset` when `url` is left empty, or `url` completed for it."""
    p = PRESETS.get(preset) or PRESETS["other"]
    url = (url or "").strip()
    if not url:
        if p.url and "{host}" not in p.url:
            return p.url
        raise UsageError(f"enter your {p.label} address" if p.key == "nextcloud" else "enter the server's address")
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError("the server address must be an https:// (or http://) URL")
    if p.key == "nextcloud" and "/remote.php/" not in parts.path:
        url = url.rstrip("/") + "/remote.php/dav/"
    return url


def caldav_secret(url: str, username: str, password: str, emails: list[str] | None = None) -> dict:
    return {"url": url, "username": username, "password": password, "emails": list(emails or [])}


def ics_secret(url: str) -> dict:
    """A feed's secret (its URL often carries a token); refuses what is not a feed URL."""
    url = (url or "").strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme not in FEED_SCHEMES or not urlsplit(url).hostname:
        raise UsageError("a feed URL starts with https:// or webcal:// (or http://)")
    return {"url": url}


def _zone(store: Store, user_id: int) -> ZoneInfo:
    try:
        return ZoneInfo(users.get(store, user_id).timezone or "UTC")
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def add_with_calendars(store: Store, user_id: int, kind: str, name: str, mode: AccessMode, secret: dict,
                   infos: list[CalendarInfo]) -> tuple[Account, list[Calendar]]:
    """Store a new account and the calendars its credentials listed, in one transaction."""
    with store.atomic():
        account = accounts.add(store, user_id, kind, name, mode, secret)
        cals = accounts.save_calendars(store, account.id, infos)
    return account, cals


def swap_secret(store: Store, account: Account, secret: dict, infos: list[CalendarInfo]) -> list[Calendar]:
    """Put re-linked credentials (shown to list `infos`) into the account, in one transaction.

    The account is healthy again afterwards: status ok, failures and backoff cleared.
    """
    with store.atomic():
        accounts.set_secret(store, account.id, secret)
        accounts.record_success(store, account.id)
        return accounts.save_calendars(store, account.id, infos)


#: lists the calendars fresh sign-in tokens can see: (secret, mode, zone) -> (calendars, the secret
#: completed with what was learnt, e.g. the address)
SignInListing = Callable[[dict, AccessMode, ZoneInfo], tuple[list[CalendarInfo], dict]]


def link_signed_in(store: Store, user_id: int, kind: str, name: str, mode: AccessMode | str, secret: dict,
                   list_calendars: SignInListing) -> tuple[Account, list[Calendar]]:
    """Store an account of a provider with a sign-in (Google, Microsoft) once its tokens list its calendars.

    Name problems are found before the provider is asked anything; nothing is kept when the
    listing fails; account and calendars are written together.
    """
    mode = AccessMode(mode)
    name = accounts.check_new_name(store, user_id, name)
    infos, secret = list_calendars(secret, mode, _zone(store, user_id))
    return add_with_calendars(store, user_id, kind, name, mode, secret, infos)


def _remote_provider(kind: str, mode: AccessMode, secret: dict, tz: ZoneInfo) -> Provider:
    """A provider over credentials that are not stored (yet): how they are tried first."""
    if kind == "caldav":
        from daemon.providers.caldav import CalDAVProvider

        return CalDAVProvider(url=secret["url"], username=secret.get("username", ""),
                              password=secret.get("password", ""), mode=mode, tz=tz,
                              owner_emails=secret.get("emails", ()))
    from daemon.providers.ics_feed import ICSFeedProvider

    return ICSFeedProvider(url=secret["url"], mode=mode, tz=tz)


def try_credentials(kind: str, mode: AccessMode, secret: dict, tz: ZoneInfo) -> list[CalendarInfo]:
    """List the calendars with these credentials; raises the provider's error if they fail."""
    provider = _remote_provider(kind, mode, secret, tz)
    try:
        return provider.list_calendars()
    finally:
        provider.close()


def link(store: Store, config: Config, user_id: int, kind: str, name: str, mode: AccessMode,
         secret: dict) -> tuple[Account, list[Calendar]]:
    """Create an account that works, with its calendars; on any failure nothing is kept."""
    if kind == "google":
        return link_google(store, config, user_id, name, mode, secret)
    if kind == "microsoft":
        from daemon.linking_microsoft import link_microsoft

        return link_microsoft(store, config, user_id, name, mode, secret)
    infos: list[CalendarInfo] | None = None
    if kind in _REMOTE_KINDS:
        # Name problems are found before the (possibly slow) call to the server.
        name = accounts.check_new_name(store, user_id, name)
        infos = try_credentials(kind, mode, secret, _zone(store, user_id))
    with store.atomic():
        account = accounts.add(store, user_id, kind, name, mode, secret)
        if infos is None:
            infos = _list_stored(store, config, account)  # local: no network, safe inside the transaction
        cals = accounts.save_calendars(store, account.id, infos)
    return account, cals


def _list_stored(store: Store, config: Config, account: Account) -> list[CalendarInfo]:
    from daemon.providers import make_provider

    provider = make_provider(store, config, account, _zone(store, account.user_id))
    try:
        return provider.list_calendars()
    finally:
        provider.close()


def relink(store: Store, config: Config, account: Account, secret: dict) -> list[Calendar]:
    """Replace the account's credentials with `secret` once they are shown to work.

    The account is healthy again afterwards: status ok, failures and backoff cleared.
    """
    if account.kind not in _REMOTE_KINDS:
        raise UsageError(f"a {account.kind} account has nothing to re-link")
    infos = try_credentials(account.kind, account.mode, secret, _zone(store, account.user_id))
    return swap_secret(store, account, secret, infos)


def refresh(store: Store, config: Config, account: Account) -> list[Calendar]:
    """Ask the provider for the account's calendars again (new ones are added, known ones renamed).

    A refused login marks the account as needing a re-link, as a sync would.
    """
    if account.kind in ("google", "microsoft") and account.mode == AccessMode.NO_ACCESS:
        return accounts.calendars(store, account.id)  # nothing is ever asked of Google or Microsoft
    try:
        infos = _list_stored(store, config, account)
    except AuthError as err:
        accounts.record_failure(store, account.id, str(err), status="needs-relink")
        raise
    return accounts.save_calendars(store, account.id, infos)


# -- Google ----------------------------------------------------------------------------------


def google_calendars(config: Config, secret: dict, mode: AccessMode, tz: ZoneInfo) -> tuple[list[CalendarInfo], dict]:
    """The calendars fresh Google tokens can list, and the secret completed with the e-mail.

    No-access accounts are never asked anything: their one calendar is the primary one, named
    after the address the user gave. Otherwise the e-mail is the primary calendar's id (what
    Google's calendarList marks `primary`), and a token the library refreshed on the way is kept.
    """
    secret = dict(secret)
    mode = AccessMode(mode)
    if mode == AccessMode.NO_ACCESS:
        email = (secret.get("email") or "").strip()
        if not email:
            raise UsageError("a no-access Google account needs its address")
        return [CalendarInfo(remote_id="primary", name=email, writable=False)], secret
    from daemon.providers.google import google_provider

    provider = google_provider(config, secret, mode, tz, on_token=secret.update)
    try:
        infos = provider.list_calendars()
        email = provider.email
    finally:
        provider.close()
    secret["email"] = email or secret.get("email") or ""
    return infos, secret


def link_google(store: Store, config: Config, user_id: int, name: str, mode: AccessMode | str,
                secret: dict) -> tuple[Account, list[Calendar]]:
    """Store a Google account whose tokens (from oauth_google.finish) list its calendars.

    Nothing is kept when the listing fails; account and calendars are written together.
    """
    return link_signed_in(store, user_id, "google", name, mode, secret, partial(google_calendars, config))


def relink_google(store: Store, config: Config, account: Account, secret: dict) -> list[Calendar]:
    """Replace a Google account's tokens with new ones for the same Google account.

    The new tokens list the calendars first; the account, its calendars (new ones are added),
    its rules and its mirror stay. Signing in as another Google account is refused: the stored
    calendars and rules belong to the first one. The account is healthy again afterwards.
    """
    if account.kind != "google":
        raise UsageError(f"a {account.kind} account is not re-linked through Google")
    if account.mode == AccessMode.NO_ACCESS:
        raise UsageError("a no-access Google account has no sign-in to renew")
    old = accounts.secret(store, account.id)
    infos, secret = google_calendars(config, secret, account.mode, _zone(store, account.user_id))
    before, after = (old.get("email") or "").lower(), (secret.get("email") or "").lower()
    if before and after and before != after:
        raise UsageError(f"you signed in to Google as {secret['email']}, but {account.name} is {old['email']}: "
                         f"link again as {old['email']}, or add {secret['email']} as a new account")
    return swap_secret(store, account, secret, infos)


def removal_blockers(store: Store, account_id: int) -> list[int]:
    """Ids of the rules that use the account's calendars (accounts.remove refuses while there are any)."""
    return sorted({r[0] for r in store.db.execute(
        "SELECT r.id FROM rules r JOIN calendars c ON c.id = r.target_calendar_id WHERE c.account_id = ? "
        "UNION SELECT s.rule_id FROM rule_sources s JOIN calendars c ON c.id = s.calendar_id "
        "WHERE c.account_id = ?", [account_id, account_id])})


def explain(err: HomecalError, kind: str, preset: str | None = None) -> str:
    """A failed link in plain words: what went wrong and what to do about it."""
    detail = str(err)
    if kind == "google":
        return _explain_google(err)
    if kind == "microsoft":
        from daemon.linking_microsoft import explain_microsoft

        return explain_microsoft(err)
    if isinstance(err, AuthError):
        if kind == "ics":
            return f"The feed refused access: check the URL (private feeds carry a secret in it). ({detail})"
        hint = PRESETS[preset].password_hint if preset in PRESETS and preset != "other" else \
            "iCloud needs an app-specific password."
        return f"The server refused the login: check the user name and password. {hint}"
    if isinstance(err, RateLimited):
        return f"The server asks homecal to slow down: try again in a few minutes. ({detail})"
    if isinstance(err, NotFound):
        return f"Nothing was found at that address: check the URL. ({detail})"
    if isinstance(err, ProviderError):
        lowered = detail.lower()
        if "cannot reach" in lowered or "cannot fetch" in lowered:
            return f"homecal could not reach the server: check the address and that the server is up. ({detail})"
        if "did not answer within" in lowered:
            return f"The server did not answer in time: try again later. ({detail})"
        return f"The server answered in a way homecal did not expect: check the address. ({detail})"
    return detail[:1].upper() + detail[1:]


def _explain_google(err: HomecalError) -> str:
    """A failed Google link in plain words (oauth_google's own messages already are)."""
    detail = str(err)
    if isinstance(err, AuthError):
        return ("Google refused homecal's tokens: link the account again. If it keeps happening, check that "
                "the OAuth client is published (Testing clients lose their tokens after 7 days).")
    if isinstance(err, RateLimited):
        return "Google asks homecal to slow down: try again in a few minutes."
    if isinstance(err, ProviderError) and detail.startswith(("Google", "cannot reach Google")):
        return detail[:1].upper() + detail[1:]
    if isinstance(err, ProviderError):
        return f"Google's Calendar API did not answer as expected: try again later. ({detail})"
    return detail[:1].upper() + detail[1:]
