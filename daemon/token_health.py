"""How healthy an account's OAuth refresh token is, and when it is likely to stop working.

Pure: the clock and the config value are passed in, nothing is read or written. Status, the
dashboard and the re-link alert show the result; the sync engine does not depend on it
(an expired token shows itself as an AuthError whatever this module predicts).

Google's documented reasons a refresh token stops working that homecal can see coming
(../shared/docs/provider-facts.md section 1.8):

- an OAuth client whose consent screen is External and in "Testing" gets refresh tokens
  that expire 7 days after consent (unless it asks only for name, e-mail and profile);
- a refresh token unused for 6 months is dropped.

Google also keeps at most 100 refresh tokens per Google account and client, silently
dropping the oldest; homecal cannot see that coming, so the README explains it instead.

Microsoft (provider-facts §2.6): a refresh token lives 90 days and replaces itself with a
fresh one on every use, so only a link left unused for 90 days runs out by age (a password
change or an admin revoking sessions ends it sooner, which shows as a refused sign-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

#: Google: refresh tokens of a client in "Testing" expire this long after consent
TESTING_LIFETIME = timedelta(days=7)
#: warn from this age on for a client in "Testing" (two days before the end)
TESTING_WARN_AFTER = timedelta(days=5)
#: Google drops a refresh token unused for six months; homecal counts 182 days
UNUSED_LIFETIME = timedelta(days=182)
#: warn when the token has not been used for this long (about five months)
UNUSED_WARN_AFTER = timedelta(days=150)
#: scopes that keep a Testing client's refresh token alive past 7 days (Google's exception)
_PROFILE_ONLY = frozenset({"openid", "email", "profile",
                           "https://www.googleapis.com/auth/userinfo.email",
                           "https://www.googleapis.com/auth/userinfo.profile"})

#: Microsoft: a refresh token unused for this long has expired
MS_UNUSED_LIFETIME = timedelta(days=90)
#: warn when a Microsoft link has not been used for this long
MS_UNUSED_WARN_AFTER = timedelta(days=75)

GUIDE = "README, section \"Linking Google Calendar\""
_SETTING = "[google] testing_client"


@dataclass(frozen=True)
class TokenHealth:
    """What is known about one account's refresh token.

    `expires_at` is when the token is predicted to stop working (a client in Testing, or a
    token left unused), else None: a token in regular use by a published client has no
    known end. `warning` is plain words saying what to do, or None.
    """

    age_days: int | None
    linked_at: datetime | None
    last_refresh_at: datetime | None
    warning: str | None
    expires_at: datetime | None


NO_TOKEN = TokenHealth(None, None, None, None, None)


def _parse(value: object) -> datetime | None:
    """An ISO time from the sealed secret, aware in UTC; None for anything unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def format_moment(moment: datetime, tz: tzinfo = timezone.utc) -> str:
    """"Sat 28 Nov 2026, 10:00 (Europe/Berlin)": how a warning names a moment."""
    local = moment.astimezone(tz)
    zone = getattr(tz, "key", None) or local.tzname() or "UTC"
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} ({zone})"


def token_health(kind: str, secret: dict, now: datetime, *, testing_client: bool,
                 tz: tzinfo = timezone.utc) -> TokenHealth:
    """The health of the refresh token in an account's sealed `secret` at `now`.

    `testing_client` is `[google] testing_client`: the user says their OAuth client is still
    in Testing. `tz` is only for the dates inside the warning text. Accounts without a
    refresh token (no-access Google accounts, CalDAV, feeds, local calendars) get NO_TOKEN.
    """
    if not secret.get("refresh_token") and not (kind == "microsoft" and secret.get("token_cache")):
        return NO_TOKEN
    linked = _parse(secret.get("linked_at"))
    refreshed = _parse(secret.get("refreshed_at")) or linked
    age = max(0, (now - linked).days) if linked else None
    if kind == "microsoft":
        # each use renews the token: only a link left unused runs out by age
        return _unused(age, linked, refreshed, now, tz, who="Microsoft ends", span="90 days",
                       lifetime=MS_UNUSED_LIFETIME, warn_after=MS_UNUSED_WARN_AFTER)
    if kind != "google":
        return TokenHealth(age, linked, refreshed, None, None)

    scopes = secret.get("scopes") or []
    if testing_client and linked and not set(scopes) <= _PROFILE_ONLY:
        ends = linked + TESTING_LIFETIME
        warning = None
        if now >= ends:
            warning = (f"Google has probably stopped this link already: your OAuth client is in Testing, and "
                       f"Google ends such links 7 days after linking ({format_moment(ends, tz)}). Publish the "
                       f"client to production ({GUIDE}), set {_SETTING} = false, then re-link this account.")
        elif now >= linked + TESTING_WARN_AFTER:
            warning = (f"Google will stop this link on {format_moment(ends, tz)}: publish your OAuth client to "
                       f"production ({GUIDE}), set {_SETTING} = false and re-link this account.")
        return TokenHealth(age, linked, refreshed, warning, ends)

    return _unused(age, linked, refreshed, now, tz, who="Google drops", span="6 months",
                   lifetime=UNUSED_LIFETIME, warn_after=UNUSED_WARN_AFTER)


def _unused(age: int | None, linked: datetime | None, refreshed: datetime | None, now: datetime, tz: tzinfo, *,
            who: str, span: str, lifetime: timedelta, warn_after: timedelta) -> TokenHealth:
    """A link that runs out when left unused for `lifetime` (`who` ends it; `span` says how long)."""
    if not refreshed or now - refreshed < warn_after:
        return TokenHealth(age, linked, refreshed, None, None)
    ends = refreshed + lifetime
    if now >= ends:
        warning = (f"This link has not been used since {format_moment(refreshed, tz)}, and {who} a link left "
                   f"unused for {span}: it has probably stopped working. Re-link this account.")
    else:
        warning = (f"This link has not been used since {format_moment(refreshed, tz)}. {who} a link left unused "
                   f"for {span}, so it will stop working around {format_moment(ends, tz)}: let homecal sync this "
                   "account (is the daemon running?), or re-link it.")
    return TokenHealth(age, linked, refreshed, warning, ends)
