"""Booking links in the admin UI (/links): list, create, edit, enable, new secret URL, remove;
the bookings taken through them, which the host can cancel; and the mail outbox.

Endpoint names other areas link to: links.index, links.bookings, links.outbox. Every id in a
URL (link, booking, outbox entry) is looked up with the current user's id, so another
user's id is a 404 and changes nothing; the calendar choices are only the user's own.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone, tzinfo

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from daemon.booking import outbox_job, service
from daemon.booking.link_settings import LinkSettingsError
from daemon.errors import HomecalError, NotFound, UsageError
from daemon.store import booking_links, outbox
from daemon.store.booking_links import BookingLink
from daemon.store.settings import effective_smtp
from webui.forms import as_sentence
from webui.links_forms import ButtonForm, CalendarChoice, LinkForm, delivery_words, user_calendars
from webui.state import get_config, get_store

bp = Blueprint("links", __name__, url_prefix="/links")

KIND_WORDS = {"invite": "Invitation", "update": "Updated invitation", "cancel": "Cancellation",
              "confirmation": "Confirmation", "notice": "Notice to you"}
STATUS_WORDS = {"pending": "Waiting to be sent", "sending": "Being sent", "sent": "Sent",
                "failed": "Gave up after several tries"}


# -- helpers ---------------------------------------------------------------------------------

def _own_link(link_id: int) -> BookingLink:
    """The current user's link, or 404: someone else's link looks exactly like a missing one."""
    try:
        return booking_links.get(get_store(), link_id, user_id=g.user.id)
    except NotFound:
        abort(404, "There is no booking link at this address.")


def _stamp(value: datetime | str | None, tz: tzinfo) -> str:
    """A stored time in the host's zone, in words; "" for none."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(tz).strftime("%a %d %b %Y, %H:%M")


def _when(booking: service.Booking, tz: tzinfo) -> str:
    start, end = booking.start.astimezone(tz), booking.end.astimezone(tz)
    last = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %d %b %Y, %H:%M}"
    return f"{start:%a %d %b %Y, %H:%M}–{last}"


def _durations(minutes: tuple[int, ...]) -> str:
    words = [f"{m}" for m in minutes]
    return (", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]) + " minutes"


def _target_words(target_id: int | None, cals: dict[int, CalendarChoice]) -> str:
    if target_id is None:
        return "homecal's own Bookings calendar (bookings are emailed invitations)"
    cal = cals.get(target_id)
    return f"{cal.label} ({delivery_words(cal)})" if cal else "a calendar that was removed"


def _smtp_ready() -> bool:
    return effective_smtp(get_config(), get_store()).configured


# -- the links -------------------------------------------------------------------------------

@bp.route("/")
def index() -> str:
    store, config = get_store(), get_config()
    cals = {c.id: c for c in user_calendars(store, g.user.id)}
    upcoming = Counter(b.link_id for b in service.bookings_for_user(store, g.user.id)
                       if b.status == "confirmed")
    links = [{"link": link, "url": service.public_url(config, store, link),
              "durations": _durations(link.settings.durations),
              "target": _target_words(link.settings.target_calendar_id, cals),
              "upcoming": upcoming[link.id]} for link in booking_links.for_user(store, g.user.id)]
    return render_template("links/index.html", links=links, button=ButtonForm(formdata=None),
                           smtp_ready=_smtp_ready())


def _form_page(form: LinkForm, link: BookingLink | None, status: int = 200) -> tuple[str, int]:
    form.pad_questions()
    url = service.public_url(get_config(), get_store(), link) if link else ""
    return render_template("links/form.html", form=form, link=link, url=url,
                           conference={k: form.conference_allowed(k) for k in ("google_meet", "teams")},
                           zone=g.user.timezone), status


@bp.route("/new", methods=["GET", "POST"])
def new() -> tuple[str, int] | Response:
    store = get_store()
    cals = user_calendars(store, g.user.id)
    if request.method == "GET":
        form = LinkForm(formdata=None, data=LinkForm.new_data(store, g.user.id, cals))
        form.set_choices(cals)
        return _form_page(form, None)
    form = LinkForm()
    form.set_choices(cals)
    if not form.validate():
        return _form_page(form, None, 400)
    try:
        link = booking_links.create(store, g.user.id, form.settings, slug=form.slug_value,
                                    private=form.access.data == "private")
    except LinkSettingsError as err:  # the slug is taken
        form.route_problems(err.problems)
        return _form_page(form, None, 400)
    except UsageError as err:  # too many links
        form.form_errors.append(as_sentence(str(err)))
        return _form_page(form, None, 400)
    flash(f"Booking link saved: {link.title}. Share {service.public_url(get_config(), store, link)}", "success")
    return redirect(url_for("links.index"))


@bp.route("/<int:link_id>/edit", methods=["GET", "POST"])
def edit(link_id: int) -> tuple[str, int] | Response:
    link = _own_link(link_id)
    store = get_store()
    cals = user_calendars(store, g.user.id)
    if request.method == "GET":
        form = LinkForm(formdata=None, data=LinkForm.data_from(link.settings, slug="" if link.private else link.url_key,
                                                               private=link.private))
        form.set_choices(cals)
        return _form_page(form, link)
    form = LinkForm()
    form.set_choices(cals)
    form.access.data = "private" if link.private else "public"  # a saved link keeps its kind
    if not form.validate():
        return _form_page(form, link, 400)
    try:
        link = booking_links.update(store, link.id, g.user.id, form.settings, slug=form.slug_value)
    except LinkSettingsError as err:
        form.route_problems(err.problems)
        return _form_page(form, link, 400)
    flash(f"Booking link updated: {link.title}. Bookings already taken keep their times.", "success")
    return redirect(url_for("links.index"))


@bp.route("/<int:link_id>/enabled", methods=["POST"])
def set_enabled(link_id: int) -> Response:
    link = _own_link(link_id)
    wanted = request.form.get("enabled")
    if not ButtonForm().validate() or wanted not in ("0", "1"):
        abort(400)
    booking_links.update(get_store(), link.id, g.user.id, link.settings, enabled=wanted == "1")
    flash(f"{link.title} is on: visitors can book it." if wanted == "1" else
          f"{link.title} is off: its page says it is not taking bookings. Bookings already taken stay.", "success")
    return redirect(url_for("links.index"))


@bp.route("/<int:link_id>/new-secret", methods=["POST"])
def new_secret(link_id: int) -> Response:
    link = _own_link(link_id)
    if not ButtonForm().validate():
        abort(400)
    try:
        link = booking_links.new_secret(get_store(), link.id, g.user.id)
    except UsageError as err:
        flash(as_sentence(str(err)), "error")
        return redirect(url_for("links.index"))
    flash(f"{link.title} has a new secret URL: {service.public_url(get_config(), get_store(), link)} "
          "The old one no longer works.", "success")
    return redirect(url_for("links.index"))


@bp.route("/<int:link_id>/remove", methods=["GET", "POST"])
def remove(link_id: int) -> str | Response:
    link = _own_link(link_id)
    store = get_store()
    upcoming = [b for b in service.bookings_for_user(store, g.user.id)
                if b.link_id == link.id and b.status == "confirmed"]
    form = ButtonForm()
    error = ""
    if form.validate_on_submit():
        try:
            booking_links.remove(store, link.id, g.user.id)
        except UsageError as err:
            error = as_sentence(str(err))
        else:
            flash(f"Booking link removed: {link.title}. Its address no longer works.", "success")
            return redirect(url_for("links.index"))
    elif request.method == "POST":
        abort(400)
    return render_template("links/remove.html", link=link, form=form, upcoming=len(upcoming), error=error,
                           url=service.public_url(get_config(), store, link))


# -- bookings --------------------------------------------------------------------------------

def _booking_row(booking: service.Booking, links: dict[int, BookingLink], cals: dict[int, CalendarChoice],
                 tz: tzinfo, now: datetime) -> dict:
    link = links.get(booking.link_id)
    labels = {q.id: q.label for q in link.settings.questions} if link else {}
    answers = [(labels.get(qid, "A question since removed"), text)
               for qid, text in booking.visitor.answers.items() if text]
    cal = cals.get(booking.target_calendar_id) if booking.target_calendar_id else None
    where = cal.label if cal else "a calendar since removed"
    if booking.delivery == "event":
        delivery = f"Event in {where}; the calendar service invited the visitor"
    else:
        delivery = f"Emailed invitation; kept in {where}"
    if booking.status == "cancelled":
        by = {"host": " by you", "visitor": " by the visitor"}.get(booking.cancelled_by or "", "")
        at = f", {_stamp(booking.cancelled_at, tz)}" if booking.cancelled_at else ""
        status = f"Cancelled{by}{at}"
    else:
        status = "Done" if booking.end <= now else "Confirmed"
    return {"b": booking, "when": _when(booking, tz), "link_title": link.title if link else booking.title,
            "answers": answers, "delivery": delivery, "status": status,
            "cancellable": booking.status == "confirmed" and booking.end > now}


@bp.route("/bookings")
def bookings() -> str:
    store = get_store()
    show_all = request.args.get("show") == "all"
    now = datetime.now(timezone.utc)
    tz = service.host_zone(store, g.user.id)
    found = service.bookings_for_user(store, g.user.id, upcoming_only=not show_all, now=now)
    if not show_all:
        found = [b for b in found if b.status == "confirmed" and b.end > now]
    links = {link.id: link for link in booking_links.for_user(store, g.user.id)}
    cals = {c.id: c for c in user_calendars(store, g.user.id)}
    rows = [_booking_row(b, links, cals, tz, now) for b in found]
    return render_template("links/bookings.html", rows=rows, show_all=show_all, zone=str(tz))


def _own_booking(booking_id: int) -> service.Booking:
    for booking in service.bookings_for_user(get_store(), g.user.id, upcoming_only=False):
        if booking.id == booking_id:
            return booking
    abort(404, "There is no booking at this address.")


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
def cancel_booking(booking_id: int) -> str | Response:
    booking = _own_booking(booking_id)
    store = get_store()
    form = ButtonForm()
    if request.method == "POST":
        if not form.validate():
            abort(400)
        try:
            booking = service.cancel_by_host(get_config(), store, booking.id, g.user.id)
        except NotFound:
            abort(404)
        except HomecalError as err:
            flash(f"The booking was not cancelled: {as_sentence(str(err))}", "error")
            return redirect(url_for("links.bookings"))
        how = ("The event was removed from your calendar" if booking.delivery == "event"
               else "A cancellation goes out by email")
        flash(f"Booking cancelled: {booking.visitor.name}, "
              f"{_when(booking, service.host_zone(store, g.user.id))}. {how}; {booking.visitor.email} is told.",
              "success")
        return redirect(url_for("links.bookings"))
    now = datetime.now(timezone.utc)
    links = {link.id: link for link in booking_links.for_user(store, g.user.id)}
    cals = {c.id: c for c in user_calendars(store, g.user.id)}
    row = _booking_row(booking, links, cals, service.host_zone(store, g.user.id), now)
    return render_template("links/cancel.html", r=row, form=form)


# -- the mail outbox ---------------------------------------------------------------------------

@bp.route("/outbox", endpoint="outbox")
def outbox_page() -> str:
    store = get_store()
    tz = service.host_zone(store, g.user.id)
    rows = [{"e": e, "kind": KIND_WORDS.get(e.kind, e.kind), "status": STATUS_WORDS.get(e.status, e.status),
             "created": _stamp(e.created_at, tz), "sent": _stamp(e.sent_at, tz),
             "next": _stamp(e.next_attempt_at, tz) if e.status in ("pending", "failed") else "",
             "retry": e.status in ("pending", "failed")}
            for e in outbox.for_user(store, g.user.id)]
    return render_template("links/outbox.html", rows=rows, button=ButtonForm(formdata=None),
                           smtp_ready=_smtp_ready(), zone=str(tz))


@bp.route("/outbox/<int:entry_id>/retry", methods=["POST"])
def retry(entry_id: int) -> Response:
    store = get_store()
    try:
        outbox.get(store, entry_id, g.user.id)
    except NotFound:
        abort(404, "There is no mail at this address.")
    if not ButtonForm().validate():
        abort(400)
    try:
        outbox.retry_now(store, entry_id, g.user.id)
    except NotFound:
        abort(404)
    except UsageError as err:
        flash(as_sentence(str(err)), "info")
        return redirect(url_for("links.outbox"))
    outbox_job.kick(get_config(), store)  # now, not at the scheduler's next run
    flash("The mail is being sent again now." if _smtp_ready() else
          "The mail is queued, but mail is not set up yet: it goes out once an SMTP server is configured.",
          "success")
    return redirect(url_for("links.outbox"))
