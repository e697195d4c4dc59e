"""The one error handler: friendly pages, right statuses, nothing internal leaked."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from daemon.errors import StoreError, UsageError
from webui.security import public

MARKER = "SECRET-MARKER"


def _add_route(app: Flask, path: str, exc: Exception) -> None:
    def view() -> str:
        raise exc

    app.add_url_rule(path, path.strip("/"), public(view))


def test_crash_gives_a_plain_500_without_the_exception_text(app, client, caplog) -> None:
    _add_route(app, "/boom", RuntimeError(MARKER))
    with caplog.at_level(logging.ERROR, logger="homecal.web"):
        response = client.get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert MARKER not in html
    assert "Traceback" not in html and "RuntimeError" not in html
    assert response.headers["Content-Security-Policy"]
    assert MARKER in caplog.text  # the operator still finds it in the log


def test_server_side_homecal_errors_hide_their_text(app, client) -> None:
    _add_route(app, "/store-broken", StoreError(f"cannot open /var/lib/homecal/{MARKER}.sqlite3"))
    response = client.get("/store-broken")
    assert response.status_code == 500
    assert MARKER not in response.get_data(as_text=True)


def test_user_errors_show_their_message_and_status(app, client) -> None:
    _add_route(app, "/bad-input", UsageError("the start date must be before the end date"))
    response = client.get("/bad-input")
    assert response.status_code == 400
    assert "the start date must be before the end date" in response.get_data(as_text=True)


def test_unknown_page_is_a_friendly_404(client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is no page at this address." in response.get_data(as_text=True)


@pytest.mark.usefixtures("admin")
def test_wrong_method_is_405_with_allow_header(client) -> None:
    response = client.delete("/login")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


@pytest.mark.usefixtures("admin")
def test_oversized_body_is_refused(client, auth) -> None:
    token = auth.csrf_token()
    response = client.post("/login", data={"csrf_token": token, "username": "x" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    assert "1 MB" in response.get_data(as_text=True)
