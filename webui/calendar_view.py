"""One calendar view (/calendar): day, week, month and agenda of every calendar the user has.

Endpoint names other areas link to: calendar_view.index.
"""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("calendar_view", __name__, url_prefix="/calendar")


@bp.route("/")
def index() -> str:
    abort(404)  # being built (issue #4)
