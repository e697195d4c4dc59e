"""Settings (/settings): SMTP and its test mail, public URL, time zone, working hours, password, users.

Endpoint names other areas link to: settings.index, settings.users (admin only).
"""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.route("/")
def index() -> str:
    abort(404)  # being built (issue #4)


@bp.route("/users")
def users() -> str:
    abort(404)  # being built (issue #4)
