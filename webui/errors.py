"""The one error handler: every failure becomes a short, plain page with the right status.

What a visitor may read depends on whose fault it is. 4xx messages are written for users
(werkzeug's texts, our own `abort` texts, `UsageError` messages) and are shown. For 5xx the
text is logged, never shown: exception messages carry paths, SQL and sometimes secrets.
"""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from daemon.errors import HomecalError

log = logging.getLogger("homecal.web")

CSRF_MESSAGE = "The form expired, please reload and try again."
SERVER_ERROR_MESSAGE = "Something went wrong on our side. The problem has been logged; please try again later."

#: friendlier titles and texts than werkzeug's defaults for the statuses people actually meet
_TEXTS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood. Please go back and try again."),
    403: ("Not allowed", "You are not allowed to do this."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed here", "This page cannot be used that way."),
    413: ("Too large", "What you sent is larger than homecal accepts (1 MB)."),
    429: ("Too many attempts", "Too many requests. Please wait a few minutes and try again."),
    500: ("Something went wrong", SERVER_ERROR_MESSAGE),
    502: ("Calendar service failed", "A calendar service did not answer as expected. Please try again later."),
    503: ("Unavailable", "homecal cannot answer right now. Please try again later."),
}


def _page(status: int, title: str, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    try:
        body = render_template("error.html", status=status, title=title, message=message)
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        log.exception("rendering the error page failed")
        body = f"{status} {title}\n{message}\n"
        return Response(body, status=status, mimetype="text/plain", headers=headers)
    return Response(body, status=status, mimetype="text/html", headers=headers)


def handle_error(err: Exception) -> Response:
    """Flask error handler for Exception, so HTTPException and HomecalError land here too."""
    if isinstance(err, CSRFError):
        log.info("rejected a form without a valid CSRF token: %s", err.description)
        return _page(400, "The form expired", CSRF_MESSAGE)
    if isinstance(err, HTTPException):
        status = err.code or 500
        title, default = _TEXTS.get(status, (err.name, err.description or ""))
        # Our own abort()/raise texts are meant for users; werkzeug's defaults are too wordy.
        custom = err.description if err.description != type(err).description else None
        message = (custom or default) if status < 500 else default
        if status >= 500:
            log.error("HTTP %s: %s", status, err.description)
        # Keep headers that matter to clients (Allow for 405, Retry-After for 429).
        headers = [(k, v) for k, v in err.get_headers() if k.lower() != "content-type"]
        return _page(status, title, message, headers)
    if isinstance(err, HomecalError):
        status = err.http_status
        if status < 500:
            title = _TEXTS.get(status, ("Cannot do that", ""))[0]
            return _page(status, title, str(err))
        log.error("%s: %s", type(err).__name__, err, exc_info=err)
        title, message = _TEXTS.get(status, _TEXTS[500])
        return _page(status, title, message)
    log.exception("unhandled error in a web request", exc_info=err)
    return _page(500, *_TEXTS[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(Exception, handle_error)
