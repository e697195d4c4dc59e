"""Free/busy feeds: the owner's page (/feeds) and the public, token-protected ICS (/feeds/<token>.ics).

Endpoint names other areas link to: feeds.index.
"""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("feeds", __name__, url_prefix="/feeds")


@bp.route("/")
def index() -> str:
    abort(404)  # being built (issue #4)
