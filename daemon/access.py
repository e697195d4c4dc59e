"""What each access mode lets homecal see and do, per provider kind, and the exact scopes it asks for.

This table is the single source: the web UI shows it before an account is linked, and the
Google and Microsoft linking code takes its OAuth scopes from `scopes(kind, mode)`, so what a
user is told and what homecal requests cannot drift apart. Least privilege: free-busy asks for
the smallest scopes that still give busy times, no-access asks for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.errors import UsageError
from daemon.models import AccessMode

_G = "https://www.googleapis.com/auth/"

#: (kind, mode) -> the OAuth scopes homecal requests, in the order it requests them
_SCOPES: dict[tuple[str, AccessMode], tuple[str, ...]] = {
    ("google", AccessMode.READ_WRITE): (f"{_G}calendar.events", f"{_G}calendar.calendarlist.readonly",
                                        "openid", "email"),
    ("google", AccessMode.FREE_BUSY): (f"{_G}calendar.events.freebusy", f"{_G}calendar.calendarlist.readonly"),
    ("google", AccessMode.NO_ACCESS): (),
    ("microsoft", AccessMode.READ_WRITE): ("Calendars.ReadWrite", "User.Read"),
    ("microsoft", AccessMode.FREE_BUSY): ("Calendars.ReadBasic", "User.Read"),
    ("microsoft", AccessMode.NO_ACCESS): (),
}

#: what each scope lets an app do, in the provider's own words (Google's discovery document,
#: Microsoft's permission reference), so users can compare with the consent screen
SCOPE_MEANINGS: dict[str, str] = {
    f"{_G}calendar.events": "View and edit events on all your calendars",
    f"{_G}calendar.events.freebusy": "See the availability on Google calendars you have access to",
    f"{_G}calendar.calendarlist.readonly": "See the list of Google calendars you're subscribed to",
    "openid": "Associate you with your personal info on Google",
    "email": "See your primary Google Account email address",
    "Calendars.ReadWrite": "Read and write your calendars",
    "Calendars.ReadBasic": "Read events in your calendars, without their body, attachments or extensions",
    "User.Read": "Sign you in and read your profile",
}

KIND_LABELS: dict[str, str] = {
    "caldav": "CalDAV", "ics": "ICS feed", "local": "Local calendar", "google": "Google",
    "microsoft": "Microsoft 365",
}
#: kinds this version can link; the others are shown as "coming" (none left since issue #7)
LINKABLE = ("caldav", "ics", "local", "google", "microsoft")
COMING: tuple[str, ...] = ()

MODE_LABELS: dict[AccessMode, str] = {
    AccessMode.READ_WRITE: "Read and write",
    AccessMode.FREE_BUSY: "Free/busy only",
    AccessMode.NO_ACCESS: "No access",
}

#: the honest note for kinds without scopes: what the credential really grants
_NO_SCOPE_NOTES: dict[str, str] = {
    "caldav": ("CalDAV has no scopes: the password gives homecal the same access you have, to read and write "
               "every calendar of the account. homecal restricts itself through its access gate: it reads and "
               "keeps only what the mode allows, and every write passes one check that refuses writes to "
               "free-busy and no-access accounts and to events homecal did not create. Use an app-specific "
               "password, so you can revoke it on its own at any time."),
    "ics": "A feed has no scopes: anyone with its URL can read it. homecal only ever reads it.",
    "local": "A local calendar lives in homecal's own database: there is no provider and nothing to grant.",
}


@dataclass(frozen=True)
class ModeInfo:
    """One access mode of one provider kind, as shown before linking."""

    kind: str
    mode: AccessMode
    label: str
    sees: tuple[str, ...]
    does: tuple[str, ...]
    scopes: tuple[str, ...]
    #: for kinds without OAuth scopes: what the credential really grants (else "")
    scope_note: str


def mode_label(kind: str, mode: AccessMode | str) -> str:
    """The mode's name for this kind: a feed "linked read-write" is only ever read, so say so."""
    mode = AccessMode(mode)
    if kind == "ics" and mode == AccessMode.READ_WRITE:
        return "Full details (read only)"
    return MODE_LABELS[mode]


def scopes(kind: str, mode: AccessMode | str) -> tuple[str, ...]:
    """The exact provider scopes homecal requests for `kind` linked in `mode` (empty: none)."""
    mode = AccessMode(mode)
    if kind in _NO_SCOPE_NOTES:
        return ()
    try:
        return _SCOPES[(kind, mode)]
    except KeyError:
        raise UsageError(f"unknown account kind {kind!r}") from None


def modes_for(kind: str) -> tuple[AccessMode, ...]:
    """The modes that mean something for `kind`: a feed cannot be written, a local calendar is homecal's own."""
    if kind == "local":
        return (AccessMode.READ_WRITE,)
    if kind == "ics":
        return (AccessMode.READ_WRITE, AccessMode.FREE_BUSY)
    return tuple(AccessMode)


def _sees(kind: str, mode: AccessMode) -> tuple[str, ...]:
    if kind == "local":
        return ("The events you and homecal put into this calendar.",)
    if mode == AccessMode.READ_WRITE:
        what = "the feed's events" if kind == "ics" else "every event in this account's calendars"
        return (f"All details of {what}: title, time, place, description, and whether you declined.",
                "Details are stored sealed (encrypted) in homecal's database.")
    if mode == AccessMode.FREE_BUSY:
        return ("Only the start, end and busy status of each event.",
                "Never titles, places, descriptions or attendees: they are not read, so they cannot be stored.")
    first = ("The names of the account's calendars, once, to check the login." if kind in ("caldav",)
             else "Nothing from the account's calendars.")
    return (first, "No events. Your availability comes from homecal's working hours and the bookings it made.")


def _does(kind: str, mode: AccessMode) -> tuple[str, ...]:
    if kind == "ics":
        return ("Nothing: a feed can only be read. Use it as the source of a rule.",)
    if kind == "local":
        return ("Keep clones, busy blocks and bookings in homecal itself.",)
    if mode == AccessMode.READ_WRITE:
        return ("Write clones and busy blocks into calendars of this account that a rule targets, "
                "and bookings from your booking links.",
                "Never edit or delete events it did not create, unless you grant a calendar extended permission.")
    return ("Never write to this account. Bookings are sent as email invitations instead.",)


def describe(kind: str, mode: AccessMode | str) -> ModeInfo:
    """Everything the UI shows about linking `kind` in `mode`."""
    mode = AccessMode(mode)
    if kind not in KIND_LABELS:
        raise UsageError(f"unknown account kind {kind!r}")
    if mode not in modes_for(kind):
        raise UsageError(f"a {KIND_LABELS[kind]} cannot be linked {mode}")
    return ModeInfo(kind=kind, mode=mode, label=mode_label(kind, mode), sees=_sees(kind, mode), does=_does(kind, mode),
                    scopes=scopes(kind, mode), scope_note=_NO_SCOPE_NOTES.get(kind, ""))


def describe_all(kind: str) -> list[ModeInfo]:
    return [describe(kind, m) for m in modes_for(kind)]
