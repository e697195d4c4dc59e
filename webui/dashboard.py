"""The dashboard ("/"): every account and rule of the user at a glance.

Healthy, syncing, paused by the deletion guard (with what would be deleted and a confirm
button), needs re-link (with the button), last success, last error in plain words, next run;
for Google accounts the token's age and a warning when Google is about to stop the link.
The facts come from daemon.overview.user_overview, which is plain data and tested without Flask;
this module only adds "is a sync running now" and lays them out.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, g, render_template

from daemon import access
from daemon.overview import user_overview
from daemon.sync.cycle import SYNC_LOCK
from webui.accounts_forms import ButtonForm
from webui.state import get_config, get_store

bp = Blueprint("dashboard", __name__)

#: pending deletions listed per paused rule; the rest is summed up ("and 12 more")
MAX_PENDING_SHOWN = 50


@bp.route("/")
def index() -> str:
    overview = user_overview(get_store(), g.user.id, datetime.now(timezone.utc),
                             syncing=SYNC_LOCK.locked(), testing_client=get_config().google.testing_client)
    return render_template("index.html", overview=overview, button_form=ButtonForm(),
                           kind_labels=access.KIND_LABELS,
                           mode_label=access.mode_label,
                           max_pending=MAX_PENDING_SHOWN)
