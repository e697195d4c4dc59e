"""One calendar view (/calendar): day, week, month and agenda of every calendar the user has.

Every page is a plain GET with its state in the URL (`?view=week&date=2026-11-23&clones=1`),
so views are bookmarkable and every action is a link. Only the visible days are read from
the mirror, and only those rows are unsealed. Copies homecal wrote are hidden unless asked
for; free-busy accounts show "Busy" blocks only, since homecal knows nothing else of them.

Endpoint names other areas link to: calendar_view.index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, abort, g, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import ValidationError

from daemon.models import AccessMode
from daemon.store import accounts, mirror
from webui import calendar_colors
from webui import calendar_grid as grid
from webui import calendar_layout as layout
from webui.state import get_store

bp = Blueprint("calendar_view", __name__, url_prefix="/calendar")

#: all-day rows hold the UTC midnights of the zone they were synced in; a day either side
#: still finds them if the user has changed zone since
ALL_DAY_MARGIN = timedelta(days=1)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError("Enter a date as year-month-day, for example 2026-11-23.") from None


class DateForm(FlaskForm):
    """"Go to date": a GET form, so it changes nothing and needs no CSRF token."""

    class Meta:
        csrf = False

    date = StringField("Go to date", render_kw={"type": "date", "placeholder": "YYYY-MM-DD"})

    def validate_date(self, field: StringField) -> None:
        if field.data:
            _parse_date(field.data)


@dataclass(frozen=True)
class CalendarInfo:
    """What the view needs of one of the user's calendars."""

    id: int
    name: str
    account_name: str
    busy_only: bool


def user_zone() -> tzinfo:
    try:
        return ZoneInfo(g.user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _calendars(user_id: int) -> dict[int, CalendarInfo]:
    store = get_store()
    accs = {a.id: a for a in accounts.all_accounts(store, user_id)}
    out = {}
    for cal in accounts.calendars(store, user_id=user_id):
        acc = accs[cal.account_id]
        out[cal.id] = CalendarInfo(cal.id, cal.name, acc.name, acc.mode == AccessMode.FREE_BUSY)
    return out


def _event(entry: mirror.MirrorEntry, cal: CalendarInfo, tz: tzinfo) -> layout.Event:
    return layout.make_event(entry.id, entry.calendar_id, cal.name, entry.instance, tz,
                             clone=entry.clone, busy_only=cal.busy_only)


@dataclass(frozen=True)
class Place:
    """Where the user is: view, anchor date and the clones toggle; builds every link."""

    view: str
    anchor: date
    clones: bool

    def url(self, **changes: object) -> str:
        view = changes.get("view", self.view)
        anchor = changes.get("anchor", self.anchor)
        clones = changes.get("clones", self.clones)
        return url_for("calendar_view.index", view=view, date=anchor.isoformat(), clones=1 if clones else None)

    def event_url(self, event_id: int) -> str:
        return url_for("calendar_view.event", entry_id=event_id, view=self.view, date=self.anchor.isoformat(),
                       clones=1 if self.clones else None)


def _place(today: date) -> tuple[Place, DateForm]:
    """The view, date and toggle from the query string; a bad date is reported by the form."""
    form = DateForm(formdata=request.args)
    view = request.args.get("view", layout.DEFAULT_VIEW)
    if view not in layout.VIEWS:
        view = layout.DEFAULT_VIEW
    anchor = today
    if form.date.data:
        if form.validate():
            anchor = _parse_date(form.date.data)
        else:
            # A date input would blank a value it cannot read; a text input shows what was typed.
            form.date.render_kw = {**(form.date.render_kw or {}), "type": "text"}
    return Place(view, anchor, request.args.get("clones") == "1"), form


def _title(span: layout.Span) -> str:
    if span.view == "day":
        return f"{span.anchor:%A} {span.anchor.day} {span.anchor:%B %Y}"
    if span.view == "month":
        return f"{span.anchor:%B %Y}"
    first, last = span.first, span.last
    if first.year != last.year:
        return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"
    if first.month != last.month:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} – {last.day} {last:%b %Y}"


@bp.route("/")
def index() -> str:
    tz = user_zone()
    today = datetime.now(tz).date()
    place, form = _place(today)
    span = layout.span_for(place.view, place.anchor)
    cals = _calendars(g.user.id)
    start, end = span.utc_bounds(tz)
    store = get_store()
    entries = mirror.instances_between(store, list(cals), start, end, clones=place.clones,
                                       all_day_margin=ALL_DAY_MARGIN)
    # Cancelled occurrences of a series stay in the mirror (the sync needs them) but did not happen.
    events = [ev for ev in (_event(e, cals[e.calendar_id], tz) for e in entries if e.instance.status != "cancelled")
              if ev.first_day <= span.last and ev.last_day >= span.first]
    hidden_clones = 0 if place.clones else mirror.count_clones_between(store, list(cals), start, end)
    context: dict[str, object] = {"span": span, "place": place, "form": form, "today": today, "events": events,
                                  "calendars": list(cals.values()), "hidden_clones": hidden_clones,
                                  "title": _title(span), "layout": layout}
    if place.view in ("day", "week"):
        context["banners"] = grid.banners(events, span)
        context["columns"] = [(day, grid.lay_out_day(events, day)) for day in span.days]
        context["hours"] = grid.hour_labels()
    elif place.view == "month":
        context["weeks"] = layout.weeks(layout.day_lists(events, span, limit=layout.MONTH_CELL_LIMIT,
                                                         timed_on_every_day=False))
    else:
        context["days"] = [d for d in layout.day_lists(events, span) if d.items]
    return render_template("calendar/index.html", **context)


@bp.route("/colors.css")
def colors() -> Response:
    """The user's calendar colours as CSS custom properties, one class per calendar."""
    cals = accounts.calendars(get_store(), user_id=g.user.id)
    css = calendar_colors.stylesheet((c.id, c.color) for c in cals)
    return Response(css, mimetype="text/css")


@bp.route("/event/<int:entry_id>")
def event(entry_id: int) -> str:
    """One event's details (title, time, calendar, location, description when known)."""
    tz = user_zone()
    cals = _calendars(g.user.id)
    found = mirror.entry(get_store(), entry_id, list(cals))
    if found is None:
        abort(404)
    cal = cals[found.calendar_id]
    ev = _event(found, cal, tz)
    place, _ = _place(datetime.now(tz).date())
    inst = found.instance
    details = not cal.busy_only
    return render_template("calendar/event.html", event=ev, calendar=cal, place=place,
                           location=(inst.location or "").strip() if details else "",
                           description=(inst.description or "").strip() if details else "",
                           transparent=inst.transparent, declined=inst.declined,
                           cancelled=inst.status == "cancelled")
