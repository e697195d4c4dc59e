"""Free/busy feeds: the owner's page (/feeds) and the public, token-protected ICS (/feeds/<token>.ics).

The feed is a bearer URL that calendar clients poll without logging in. It says only when
its owner is busy: one "Busy" event per merged stretch of time, built from the mirror's
plain columns (nothing sealed is ever opened for it). UIDs are hashes, never source UIDs.
An unknown or revoked token gets the same plain 404 as any missing page.

Endpoint names other areas link to: feeds.index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from daemon.models import Window
from daemon.store import accounts, mirror, settings, users
from daemon.store import feeds as feed_tokens
from daemon.store.mirror import BusyRow
from webui.security import public
from webui.state import get_config, get_store

bp = Blueprint("feeds", __name__, url_prefix="/feeds")

PRODID = "-//homecal//free-busy feed//EN"
CALENDAR_NAME = "Busy times (homecal)"
#: how often clients are asked to poll (RFC 7986 REFRESH-INTERVAL and its older cousin)
REFRESH = "PT15M"


class FeedActionForm(FlaskForm):
    """No fields: the create/regenerate and revoke buttons post only their CSRF token."""


# -- the ICS -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BusyBlock:
    """One merged busy stretch: UTC datetimes, or local dates (end exclusive) when all-day."""

    start: datetime | date
    end: datetime | date


def _all_day_dates(row: BusyRow, tz: tzinfo) -> tuple[date, date]:
    """The local dates of an all-day row. Its UTC times are the midnights of the zone it was
    synced in; taking the nearest local midnight survives a later change of zone."""
    first = (row.start_utc.astimezone(tz) + timedelta(hours=12)).date()
    end = (row.end_utc.astimezone(tz) + timedelta(hours=12)).date()
    return first, max(end, first + timedelta(days=1))


def _merge(spans: Iterable[tuple]) -> list[tuple]:
    """Overlapping or touching [start, end) spans joined into one."""
    out: list[list] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def busy_blocks(rows: list[BusyRow], tz: tzinfo) -> list[BusyBlock]:
    """Timed rows merged in UTC, all-day rows merged as dates; all-day blocks first.

    Merging says no more than "busy" and hides how many meetings fill a stretch.
    """
    days = _merge(_all_day_dates(r, tz) for r in rows if r.all_day)
    timed = _merge((r.start_utc.astimezone(timezone.utc), r.end_utc.astimezone(timezone.utc))
                   for r in rows if not r.all_day and r.end_utc > r.start_utc)
    return [BusyBlock(s, e) for s, e in days] + [BusyBlock(s, e) for s, e in timed]


def _ical_value(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def render_ics(blocks: list[BusyBlock], *, uid_secret: str, stamp: datetime) -> str:
    """A complete VCALENDAR of busy-only VEVENTs (RFC 5545, CRLF line ends).

    `uid_secret` keys the UID hashes, so UIDs stay stable between polls but say nothing
    about the events behind them. `stamp` is the DTSTAMP of every event: fixed for a day so
    an unchanged feed keeps its ETag.
    """
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{CALENDAR_NAME}", f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}",
             f"X-PUBLISHED-TTL:{REFRESH}"]
    dtstamp = _ical_value(stamp)
    for block in blocks:
        start, end = _ical_value(block.start), _ical_value(block.end)
        uid = hashlib.sha256(f"{uid_secret}|{start}|{end}".encode()).hexdigest()[:32]
        date_param = "" if isinstance(block.start, datetime) else ";VALUE=DATE"
        lines += ["BEGIN:VEVENT", f"UID:{uid}@homecal", f"DTSTAMP:{dtstamp}", f"DTSTART{date_param}:{start}",
                  f"DTEND{date_param}:{end}", "SUMMARY:Busy", "TRANSP:OPAQUE", "CLASS:PRIVATE", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def feed_body(user_id: int, token: str, now: datetime) -> str:
    """The feed of `user_id`: busy time from every calendar they have, inside the sync window."""
    store, config = get_store(), get_config()
    window = Window.around(now, config.sync.window_past_days, config.sync.window_future_days)
    calendar_ids = [c.id for c in accounts.calendars(store, user_id=user_id)]
    rows = mirror.busy_between(store, calendar_ids, window.start, window.end)
    tz = _zone(users.get(store, user_id).timezone)
    stamp = datetime.combine(now.astimezone(timezone.utc).date(), time(0), timezone.utc)
    # Keyed by the token's digest: a new token also renews every UID.
    secret = hashlib.sha256(f"homecal-feed-uid|{token}".encode()).hexdigest()
    return render_ics(busy_blocks(rows, tz), uid_secret=secret, stamp=stamp)


@bp.route("/<token>.ics")
@public
def feed(token: str) -> Response:
    """The public feed. Clients that send back the ETag get a 304 while nothing changed."""
    user_id = feed_tokens.user_for(get_store(), token)
    if user_id is None:
        abort(404)
    body = feed_body(user_id, token, datetime.now(timezone.utc))
    etag = hashlib.sha256(body.encode()).hexdigest()[:32]
    headers = {"ETag": f'"{etag}"', "X-Robots-Tag": "noindex, nofollow"}
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="text/calendar", headers=headers)


# -- the owner's page ----------------------------------------------------------------------

def feed_url(token: str) -> str:
    """The address to give out: under the public URL an admin set (Settings or config file),
    else under the address this browser used."""
    path = url_for("feeds.feed", token=token)[len(request.script_root):]
    base = settings.configured_public_url(get_config(), get_store()) or request.url_root
    return base.rstrip("/") + path


@bp.route("/")
def index() -> str:
    token = feed_tokens.token(get_store(), g.user.id)
    sync = get_config().sync
    return render_template("feeds/index.html", url=feed_url(token) if token else None,
                           regenerate_form=FeedActionForm(), revoke_form=FeedActionForm(),
                           past_days=sync.window_past_days, future_days=sync.window_future_days)


@bp.route("/regenerate", methods=["POST"])
def regenerate() -> Response:
    form = FeedActionForm()
    if form.validate_on_submit():
        had_one = feed_tokens.token(get_store(), g.user.id) is not None
        feed_tokens.regenerate(get_store(), g.user.id)
        flash("Your new feed URL is ready. The old one no longer works." if had_one
              else "Your feed URL is ready.", "success")
    return redirect(url_for("feeds.index"))


@bp.route("/revoke", methods=["POST"])
def revoke() -> Response:
    form = FeedActionForm()
    if form.validate_on_submit():
        feed_tokens.revoke(get_store(), g.user.id)
        flash("Your feed URL is revoked: calendar apps can no longer read it.", "success")
    return redirect(url_for("feeds.index"))
