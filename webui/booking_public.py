"""The visitor's side of booking links: /book/<key> and the /booking/<token> management pages.

No log-in anywhere here (every view is @public): the link key and the booking token in the
URL are what let a visitor in, so an unknown one is a plain 404 that says nothing more, and
every page is sent with Referrer-Policy: no-referrer so the secret never leaks to the sites
a page links to (a video call, say). Pages are standalone (templates/booking/base.html), not
the admin shell. Times are shown in the visitor's zone (`tz`), picked by booking.js or by hand.

Input is parsed by webui/booking_forms.py; the booking rules live in daemon/booking/service.py.
Nothing a visitor sends can change anything on a GET (mail scanners open every link).

The URLs are a promise to users (they are in e-mails), keep them exactly:
    /book/<key>                          the free times, a week at a time (?duration, tz, from)
    /book/<key>/<start>                  the form for one slot (start: UTC "YYYYMMDDTHHMMZ"); POST books
    /booking/<token>                     the visitor's booking: confirmation and links to manage it
    /booking/<token>/invite.ics          the .ics download
    /booking/<token>/cancel              GET asks, POST cancels
    /booking/<token>/reschedule          the free times for moving it
    /booking/<token>/reschedule/<start>  GET asks, POST moves
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from daemon.booking import service
from daemon.booking.availability import bookable_range
from daemon.booking.service import Booking, BookingUnavailable, SlotTaken, VisitorError
from daemon.errors import NotFound, UsageError
from daemon.store import booking_links, users
from daemon.store.booking_links import BookingLink
from webui import booking_forms as bf
from webui.errors import CSRF_MESSAGE, handle_error
from webui.page_cache import PageCache
from webui.security import public
from webui.state import get_config, get_store

log = logging.getLogger("homecal.web.booking")

bp = Blueprint("booking", __name__)

UTC = timezone.utc
TAKEN_MESSAGE = "That time was just taken. Here are the times still free."
GONE_MESSAGE = "That time is not available any more. Here are the times still free."
UNAVAILABLE_MESSAGE = ("Times are temporarily unavailable: a calendar could not be checked. "
                       "Please try again in a few minutes.")
_PROBLEM_TITLES = {400: "Bad request", 404: "Page not found", 405: "Not allowed here", 409: "Not possible",
                   413: "Too large", 429: "Too many attempts"}


@bp.after_request
def _private_headers(response: Response) -> Response:
    # Link keys of private links and booking tokens are secrets in the URL: no Referer to
    # the outside (e.g. the video link), no search engine indexing, no caching (security.py).
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.errorhandler(HTTPException)
def _problem_page(err: HTTPException) -> Response:
    """4xx on these pages in the visitors' own layout (no admin shell); 5xx as everywhere."""
    status = err.code or 500
    if status >= 500:
        return handle_error(err)
    back = None
    if isinstance(err, CSRFError):
        # Opening the same address again gives a fresh form (and a fresh token).
        title, message, back = "The form expired", CSRF_MESSAGE, request.path
    else:
        title = _PROBLEM_TITLES.get(status, err.name)
        custom = err.description if err.description != type(err).description else None
        message = custom or {404: "There is no page at this address."}.get(
            status, "The request could not be understood. Please go back and try again.")
    headers = [(k, v) for k, v in err.get_headers() if k.lower() != "content-type"]
    return _problem(status, title, message, back=back, headers=headers)


def _problem(status: int, title: str, message: str, *, back: str | None = None,
             headers: list[tuple[str, str]] | None = None) -> Response:
    body = render_template("booking/problem.html", status=status, title=title, message=message, back=back)
    return Response(body, status=status, mimetype="text/html", headers=headers)


# -- lookups -------------------------------------------------------------------------------

def _link_or_404(key: str) -> BookingLink:
    link = booking_links.by_url_key(get_store(), key) if bf.valid_key(key) else None
    if link is None or not link.enabled:
        abort(404)
    return link


def _booking_or_404(token: str) -> Booking:
    booking = service.booking_by_token(get_store(), token) if bf.valid_token(token) else None
    if booking is None:
        abort(404)
    return booking


def _host(link_or_booking: BookingLink | Booking) -> tuple[str, str]:
    """(host name, host zone name)."""
    user_id = link_or_booking.user_id
    return users.get(get_store(), user_id).username, str(service.host_zone(get_store(), user_id))


def _link_of(booking: Booking) -> BookingLink | None:
    try:
        return booking_links.get(get_store(), booking.link_id)
    except NotFound:
        return None


def _client() -> str:
    return request.remote_addr or "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


# -- the slot picker (shared by booking and rescheduling) ----------------------------------

def _picker(link: BookingLink, choice: bf.Choice, *, from_text: str | None, page_url: Callable[..., str],
            slot_url: Callable[[datetime], str], host_zone: str, message: str | None = None,
            status: int = 200, exclude_booking: int | None = None, **context: object) -> Response:
    """The week of free slots from `from_text` (a date in the visitor's zone), with paging
    inside the link's bookable range. BookingUnavailable -> the page says so, 503, no slots."""
    config, store = get_config(), get_store()
    first, last = bookable_range(link.settings, ZoneInfo(host_zone), _now())
    tz = choice.zone
    notices = list(choice.notices)
    days: list[bf.Day] = []
    prev_from = next_from = next_free = None
    unavailable = False
    week_label = week_from = ""
    if first < last:
        first_day, last_day = first.astimezone(tz).date(), (last - timedelta(seconds=1)).astimezone(tz).date()
        day = bf.parse_day(from_text)
        if from_text and day is None:
            notices.append("That week is not a date like 2026-11-23; showing the first week.")
        day = max(day or first_day, first_day)
        if day > last_day:  # past the window: its last page, as paging would reach it
            day = first_day + timedelta(days=7 * ((last_day - first_day).days // 7))
        week_start, week_end = bf.week_bounds(day, tz)
        week_from = day.isoformat()
        week_label = bf.week_label(day)
        if day > first_day:
            prev_from = max(first_day, day - timedelta(days=7))
        if day + timedelta(days=7) <= last_day:
            next_from = day + timedelta(days=7)
        try:
            # exclude_booking: a booking being moved does not block the times around itself
            slots = service.offered_slots(config, store, link, duration=choice.duration, start=max(week_start, first),
                                          end=min(week_end, last), exclude_booking=exclude_booking)
            if not slots and next_from is not None:
                later = service.offered_slots(config, store, link, duration=choice.duration, start=week_end,
                                              end=last, exclude_booking=exclude_booking)
                next_free = later[0].start.astimezone(tz).date() if later else None
        except BookingUnavailable:
            unavailable, slots = True, []
        days = bf.by_day(slots, tz)
    if unavailable:
        status = 503
    host_name, _ = _host(link)
    return Response(render_template(
        "booking/slots.html", link=link, host_name=host_name, host_zone=host_zone, choice=choice,
        notices=notices, message=message, days=days, unavailable=unavailable, nothing_at_all=first >= last,
        week_label=week_label, week_from=week_from, prev_from=prev_from, next_from=next_from, next_free=next_free,
        page_url=page_url, slot_url=slot_url, zones=bf.zone_names(), location=_location_label(link),
        format_start=bf.format_start, **context), status=status, mimetype="text/html")


def _location_label(link: BookingLink) -> str:
    loc = link.settings.location
    return {"address": f"In person: {loc.value}", "phone": "Phone call", "video": "Video call",
            "jitsi": "Video call (Jitsi); the link comes with your confirmation",
            "google_meet": "Video call (Google Meet); the link comes with your confirmation",
            "teams": "Video call (Microsoft Teams)"}.get(loc.kind, "")


def _offered(link: BookingLink, duration: int, start: datetime, *, exclude_booking: int | None = None) -> bool:
    """Whether `start` is a free slot right now (raises BookingUnavailable)."""
    slots = service.offered_slots(get_config(), get_store(), link, duration=duration, start=start,
                                  end=start + timedelta(minutes=duration), exclude_booking=exclude_booking)
    return any(s.start == start for s in slots)


def _book_picker(link: BookingLink, choice: bf.Choice, host_zone: str, *, from_text: str | None = None,
                 message: str | None = None, status: int = 200) -> Response:
    key = link.url_key
    return _picker(
        link, choice, from_text=from_text, host_zone=host_zone, message=message, status=status,
        page_url=lambda **kw: url_for("booking.slots", key=key, **{**choice.query(), **kw}),
        slot_url=lambda start: url_for("booking.slot", key=key, start=bf.format_start(start), **choice.query()),
        form_action=url_for("booking.slots", key=key), hidden={"duration": choice.duration},
        durations=link.settings.durations, heading=link.title, rescheduling=None)


# -- /book/<key> ---------------------------------------------------------------------------

@bp.route("/book/<key>")
@public
def slots(key: str) -> Response:
    link = _link_or_404(key)
    # The page strangers load in bursts: reuse the rendering while nothing it shows changed.
    cache: PageCache = current_app.extensions.setdefault("homecal_booking_pages", PageCache())
    version = (key, tuple(sorted(request.args.items(multi=True))),
               service.availability_version(get_store(), link, _now()))
    # A page showing this visitor's flashed message is theirs alone: never cached or served.
    personal = "_flashes" in session
    body = None if personal else cache.get(version)
    if body is not None:
        return Response(body, mimetype="text/html")
    host_zone = _host(link)[1]
    choice = bf.choose(link, request.args, default_zone=host_zone)
    response = _book_picker(link, choice, host_zone, from_text=request.args.get("from"))
    if response.status_code == 200 and not personal:
        cache.put(version, response.get_data())
    return response


@bp.route("/book/<key>/<start>", methods=["GET", "POST"])
@public
def slot(key: str, start: str) -> Response:
    link = _link_or_404(key)
    _, host_zone = _host(link)
    values = request.form if request.method == "POST" else request.args
    choice = bf.choose(link, values, default_zone=host_zone)
    at = bf.parse_start(start)
    back = url_for("booking.slots", key=key, tz=choice.zone_name)
    if at is None:
        return _problem(400, "Not a valid time", "The address does not name a time that can be booked. "
                        "Please pick a time from the list.", back=back)
    # Never book another length than the one asked for: a wrong or (on POST) missing
    # duration is refused, not replaced by the default.
    if choice.bad_duration or (request.method == "POST" and not (values.get("duration") or "").strip()):
        offered = ", ".join(str(d) for d in link.settings.durations)
        return _problem(400, "Not a valid meeting length", f"This link offers meetings of {offered} minutes. "
                        "Please pick a time from the list.", back=back)
    if request.method == "GET":
        try:
            if not _offered(link, choice.duration, at):
                return _book_picker(link, choice, host_zone, from_text=_week_of(at, choice), message=GONE_MESSAGE,
                                    status=409)
        except BookingUnavailable:
            return _book_picker(link, choice, host_zone)  # says "temporarily unavailable", 503
        form = bf.booking_form(link, formdata=None, data={"duration": choice.duration, "tz": choice.zone_name})
        return _form_page(link, form, at, choice, host_zone)

    if (request.content_length or 0) > bf.MAX_FORM_BYTES:
        abort(413)
    form = bf.booking_form(link)
    form.duration.data, form.tz.data = str(choice.duration), choice.zone_name
    if not form.validate_on_submit():
        return _form_page(link, form, at, choice, host_zone, status=400,
                          error="Please correct the fields marked below.")
    if form.website.data:
        log.info("booking form: honeypot filled, nothing booked")
        return _form_page(link, form, at, choice, host_zone, status=400,
                          error="Your booking was not sent. If you filled in the field “Leave this field "
                                "empty”, clear it and try again.")
    limits = bf.BookingLimits.of_app()
    wait = limits.retry_after(_client(), form.email.data)
    if wait:
        minutes = max(1, (wait + 59) // 60)
        return _form_page(link, form, at, choice, host_zone, status=429, headers=[("Retry-After", str(wait))],
                          error=f"Too many bookings in a short time. Please try again in {minutes} "
                                f"minute{'s' if minutes != 1 else ''}.")
    try:
        visitor = service.validate_visitor(link, name=form.name.data.strip(), email=form.email.data,
                                           timezone=choice.zone_name, answers=bf.answers(form, link))
        limits.record(_client(), form.email.data)
        result = service.book(get_config(), get_store(), link, duration=choice.duration, start=at, visitor=visitor)
    except VisitorError as err:
        unplaced = bf.show_problems(form, err.problems)
        return _form_page(link, form, at, choice, host_zone, status=400,
                          error=" ".join(unplaced) or "Please correct the fields marked below.")
    except SlotTaken:
        return _book_picker(link, choice, host_zone, from_text=_week_of(at, choice), message=TAKEN_MESSAGE,
                            status=409)
    except BookingUnavailable:
        return _form_page(link, form, at, choice, host_zone, status=503, error=UNAVAILABLE_MESSAGE)
    except UsageError as err:
        return _form_page(link, form, at, choice, host_zone, status=400, error=_sentence(str(err)))
    return redirect(url_for("booking.manage", token=result.token), code=303)


def _week_of(at: datetime, choice: bf.Choice) -> str:
    return at.astimezone(choice.zone).date().isoformat()


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _form_page(link: BookingLink, form: bf.BaseBookingForm, at: datetime, choice: bf.Choice, host_zone: str, *,
               status: int = 200, error: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    end = at + timedelta(minutes=choice.duration)
    host_name, _ = _host(link)
    body = render_template(
        "booking/form.html", link=link, host_name=host_name, form=form, questions=bf.question_fields(form, link),
        visitor_when=bf.when(at, end, choice.zone_name),
        host_when=bf.when(at, end, host_zone) if host_zone != choice.zone_name else None,
        choice=choice, error=error, location=_location_label(link),
        back=url_for("booking.slots", key=link.url_key, **choice.query(**{"from": _week_of(at, choice)})),
        zone_given=choice.zone_given)
    return Response(body, status=status, mimetype="text/html", headers=headers)


# -- /booking/<token> ----------------------------------------------------------------------

def _booking_context(booking: Booking) -> dict[str, object]:
    host_name, host_zone = _host(booking)
    visitor_zone = booking.visitor.timezone if booking.visitor.timezone in bf.zone_names() else host_zone
    link = _link_of(booking)
    over = booking.end <= _now()
    return {"booking": booking, "host_name": host_name, "link": link,
            "visitor_when": bf.when(booking.start, booking.end, visitor_zone),
            "host_when": bf.when(booking.start, booking.end, host_zone) if host_zone != visitor_zone else None,
            "visitor_zone": visitor_zone, "host_zone": host_zone, "over": over,
            "active": booking.status == "confirmed" and not over,
            "confirmation_message": link.settings.confirmation_message if link else ""}


@bp.route("/booking/<token>")
@public
def manage(token: str) -> str:
    booking = _booking_or_404(token)
    return render_template("booking/booking.html", token=token, **_booking_context(booking))


@bp.route("/booking/<token>/invite.ics")
@public
def invite(token: str) -> Response:
    booking = _booking_or_404(token)
    return Response(service.booking_ics(get_store(), booking, get_config()), mimetype="text/calendar",
                    headers={"Content-Disposition": 'attachment; filename="booking.ics"'})


@bp.route("/booking/<token>/cancel", methods=["GET", "POST"])
@public
def cancel(token: str) -> Response | str:
    booking = _booking_or_404(token)
    form = bf.ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        if booking.status == "confirmed":
            try:
                service.cancel_by_token(get_config(), get_store(), token)
            except NotFound:
                abort(404)
            except UsageError as err:
                return Response(render_template("booking/cancel.html", token=token, form=form,
                                                error=_sentence(str(err)), **_booking_context(booking)),
                                status=409)
            flash("Your booking is cancelled. The host has been told.", "success")
        return redirect(url_for("booking.manage", token=token), code=303)
    return render_template("booking/cancel.html", token=token, form=form, error=None, **_booking_context(booking))


def _movable(token: str) -> tuple[Booking, BookingLink, str | None]:
    """The booking, its link, and why it cannot be moved (None when it can)."""
    booking = _booking_or_404(token)
    link = _link_of(booking)
    reason = None
    if booking.status != "confirmed":
        reason = "This booking is cancelled, so it cannot be moved."
    elif booking.end <= _now():
        reason = "This booking is over, so it cannot be moved."
    elif link is None or not link.enabled or booking.duration not in link.settings.durations:
        reason = "This booking cannot be moved online any more. You can cancel it and book again."
    return booking, link, reason  # type: ignore[return-value]


def _move_picker(token: str, booking: Booking, link: BookingLink, *, message: str | None = None,
                 status: int = 200, from_text: str | None = None) -> Response:
    host_zone = _host(booking)[1]
    default_zone = booking.visitor.timezone if booking.visitor.timezone in bf.zone_names() else host_zone
    choice = bf.choose(link, request.args, default_zone=default_zone, fixed_duration=booking.duration)
    return _picker(
        link, choice, from_text=from_text or request.args.get("from"), host_zone=host_zone, message=message,
        status=status, exclude_booking=booking.id, page_url=lambda **kw: url_for("booking.reschedule", token=token, **{"tz": choice.zone_name, **kw}),
        slot_url=lambda start: url_for("booking.reschedule_slot", token=token, start=bf.format_start(start),
                                       tz=choice.zone_name),
        form_action=url_for("booking.reschedule", token=token), hidden={}, durations=(booking.duration,),
        heading=f"Move your booking: {booking.title}", rescheduling=_booking_context(booking), token=token)


@bp.route("/booking/<token>/reschedule")
@public
def reschedule(token: str) -> Response:
    booking, link, reason = _movable(token)
    if reason:
        return _problem(409, "Cannot move this booking", reason, back=url_for("booking.manage", token=token))
    return _move_picker(token, booking, link)


@bp.route("/booking/<token>/reschedule/<start>", methods=["GET", "POST"])
@public
def reschedule_slot(token: str, start: str) -> Response | str:
    booking, link, reason = _movable(token)
    back = url_for("booking.manage", token=token)
    if reason:
        return _problem(409, "Cannot move this booking", reason, back=back)
    at = bf.parse_start(start)
    if at is None:
        return _problem(400, "Not a valid time", "The address does not name a time. Please pick a time from "
                        "the list.", back=url_for("booking.reschedule", token=token))
    host_zone = _host(booking)[1]
    visitor_zone = booking.visitor.timezone if booking.visitor.timezone in bf.zone_names() else host_zone
    choice = bf.choose(link, request.args, default_zone=visitor_zone, fixed_duration=booking.duration)
    form = bf.ActionForm()
    if request.method == "GET":
        try:
            if not _offered(link, booking.duration, at, exclude_booking=booking.id):
                return _move_picker(token, booking, link, message=GONE_MESSAGE, status=409,
                                    from_text=_week_of(at, choice))
        except BookingUnavailable:
            return _move_picker(token, booking, link)
    elif form.validate_on_submit():
        limits = bf.BookingLimits.of_app()
        if limits.retry_after(_client()):
            abort(429)
        limits.record(_client())
        try:
            moved = service.reschedule(get_config(), get_store(), token, start=at)
        except SlotTaken:
            return _move_picker(token, booking, link, message=TAKEN_MESSAGE, status=409,
                                from_text=_week_of(at, choice))
        except BookingUnavailable:
            return _move_picker(token, booking, link)
        except NotFound:
            abort(404)
        except UsageError as err:
            return _problem(409, "Cannot move this booking", _sentence(str(err)), back=back)
        flash(f"Your booking is moved to {bf.when(moved.start, moved.end, visitor_zone).text} "
              f"({visitor_zone}).", "success")
        return redirect(back, code=303)
    end = at + timedelta(minutes=booking.duration)
    return render_template("booking/reschedule.html", token=token, form=form,
                           new_when=bf.when(at, end, choice.zone_name),
                           new_host_when=bf.when(at, end, host_zone) if host_zone != choice.zone_name else None,
                           **_booking_context(booking))
