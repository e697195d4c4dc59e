"""Sync rules (/rules): create and edit with every option, dry-run preview, confirm deletions, sync now.

Endpoint names other areas link to: rules.index, rules.detail, rules.confirm_deletions (POST),
rules.sync_now (POST).
"""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("rules", __name__, url_prefix="/rules")


@bp.route("/")
def index() -> str:
    abort(404)  # being built (issue #4)


@bp.route("/<int:rule_id>")
def detail(rule_id: int) -> str:
    abort(404)  # being built (issue #4)


@bp.route("/<int:rule_id>/confirm-deletions", methods=["POST"])
def confirm_deletions(rule_id: int) -> str:
    abort(404)  # being built (issue #4)


@bp.route("/sync", methods=["POST"])
def sync_now() -> str:
    abort(404)  # being built (issue #4)
