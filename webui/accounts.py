"""Accounts (/accounts): link CalDAV, ICS and local accounts with their access mode; per-calendar flags.

Endpoint names other areas link to: accounts.index, accounts.relink.
"""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.route("/")
def index() -> str:
    abort(404)  # being built (issue #4)


@bp.route("/<int:account_id>/relink")
def relink(account_id: int) -> str:
    abort(404)  # being built (issue #4)
