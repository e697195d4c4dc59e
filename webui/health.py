"""/healthz: a public liveness and database check for monitors and systemd.

It says only whether homecal answers and the database opens: no counts, paths or names.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

import daemon
from webui.security import public
from webui.state import get_store

bp = Blueprint("health", __name__)
log = logging.getLogger("homecal.web")


@bp.route("/healthz")
@public
def healthz() -> tuple[Response, int]:
    try:
        get_store().db.execute("SELECT 1").fetchone()
    except Exception as err:  # noqa: BLE001 - any failure means "not healthy"
        log.warning("health check: database failed: %s", err)
        # The class name is enough to tell "closed" from "locked" without leaking paths.
        body = {"status": "error", "version": daemon.__version__, "database": f"error: {type(err).__name__}"}
        return jsonify(body), 503
    return jsonify({"status": "ok", "version": daemon.__version__, "database": "ok"}), 200
