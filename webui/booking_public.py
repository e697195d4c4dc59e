"""The visitor's side of booking links: /book/<key> and the /booking/<token> management pages.

(Being built for issue #5.)
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("booking", __name__)
