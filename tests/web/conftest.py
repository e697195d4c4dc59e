"""Fixtures for the web UI tests, in the style of the Flask tutorial.

`app` is the real application over the real store from tests/conftest.py, with CSRF on;
`auth` logs in and out the way a browser does: it loads the form page first and posts the
CSRF token it finds there.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from daemon.store import users
from daemon.store.users import User
from webui import create_app

ADMIN_NAME = "admin"
ADMIN_PASSWORD = "correct horse battery"


class _TokenFinder(HTMLParser):
    """Collects the value of every <input name="csrf_token"> on a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name") == "csrf_token" and values.get("value"):
            self.tokens.append(values["value"] or "")


def csrf_tokens(html: str) -> list[str]:
    finder = _TokenFinder()
    finder.feed(html)
    return finder.tokens


class AuthActions:
    """Log in, log out and fetch CSRF tokens like a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def csrf_token(self, path: str = "/login", **kwargs: object) -> str:
        """GET `path` and return the CSRF token of the first form on it."""
        page = self._client.get(path, **kwargs)
        tokens = csrf_tokens(page.get_data(as_text=True))
        assert tokens, f"no CSRF token on {path} (status {page.status_code})"
        return tokens[0]

    def login(self, username: str = ADMIN_NAME, password: str = ADMIN_PASSWORD,
              path: str = "/login", **kwargs: object) -> TestResponse:
        token = self.csrf_token(path, **kwargs)
        return self._client.post(
            path, data={"csrf_token": token, "username": username, "password": password}, **kwargs
        )

    def logout(self) -> TestResponse:
        token = self.csrf_token("/")  # the log-out button sits in the nav of every page
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def app(config, store) -> Flask:
    return create_app(config, store, testing=True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def admin(store) -> User:
    return users.create(store, ADMIN_NAME, ADMIN_PASSWORD, is_admin=True)


@pytest.fixture
def admin_password() -> str:
    return ADMIN_PASSWORD


@pytest.fixture
def make_auth():
    """AuthActions for a client of another app (e.g. one built with a different config)."""
    return AuthActions
