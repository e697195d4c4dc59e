"""Booking links in the admin UI: list, create, edit, remove; the bookings taken and the mail outbox.

(Being built for issue #5.)
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("links", __name__, url_prefix="/links")
