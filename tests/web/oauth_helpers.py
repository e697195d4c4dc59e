"""Steps the web tests of Google's and Microsoft's sign-in pages share (tests/web/test_accounts_google.py,
test_accounts_microsoft.py): start linking by posting the form with its CSRF token, follow the
provider's redirect back to homecal's callback, read the mode radios and a URL's query.

What happens at the provider (its consent or sign-in page) stays in each test file: the fakes differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class _Radios(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") == "mode":
            self.values.append(a.get("value") or "")


def mode_radios(page: str) -> list[str]:
    """The values of the page's access-mode radio buttons, in order."""
    radios = _Radios()
    radios.feed(page)
    return radios.values


@dataclass(frozen=True)
class LinkPages:
    """One provider's link form and callback, as a browser uses them."""

    kind: str

    def start(self, client: FlaskClient, auth, **form: str) -> TestResponse:
        """Post the form ("Work", read and write unless `form` says otherwise); the answer sends the
        browser to the provider."""
        path = f"/accounts/{self.kind}/new"
        token = auth.csrf_token(path)
        return client.post(path, data={"csrf_token": token, "name": "Work", "mode": "read-write", "email": "",
                                       **form})

    def back_at_homecal(self, client: FlaskClient, redirect_to: str) -> TestResponse:
        """Follow the provider's redirect to homecal's callback (the test client only takes the path)."""
        parts = urlsplit(redirect_to)
        assert parts.path == f"/accounts/{self.kind}/callback"
        return client.get(f"{parts.path}?{parts.query}")


def clock_moves_on(monkeypatch, seconds: float) -> None:
    """Let the pending-flow store (webui.oauth_pending) see its clock `seconds` later than it is."""
    import time
    from types import SimpleNamespace

    from webui import oauth_pending

    monkeypatch.setattr(oauth_pending, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + seconds))
