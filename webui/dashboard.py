"""The home page ("/"): a welcome and, for now, the empty state of the account list.

Later issues fill it with accounts, rules and sync status.
"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("dashboard", __name__)


@bp.route("/")
def index() -> str:
    return render_template("index.html")
