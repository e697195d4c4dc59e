"""Security headers on every kind of response, and the redirect-target check."""

from __future__ import annotations

import pytest

from webui.security import CONTENT_SECURITY_POLICY, safe_next

EXPECTED = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def test_the_policy_is_the_documented_one() -> None:
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("path", ["/", "/login", "/healthz", "/static/style.css", "/no-such-page"])
def test_every_response_carries_the_security_headers(client, path) -> None:
    response = client.get(path)
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, f"{name} on {path}"


@pytest.mark.usefixtures("admin")
def test_private_pages_are_never_cached(client, auth) -> None:
    auth.login()
    assert client.get("/").headers["Cache-Control"] == "no-store"
    assert client.get("/login").headers["Cache-Control"] == "no-store"


def test_static_files_may_be_cached(client) -> None:
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


@pytest.mark.usefixtures("admin")
def test_templates_have_no_inline_script_or_style(client, auth) -> None:
    # The CSP forbids them; a browser would silently drop them.
    auth.login()
    for path in ("/", "/login", "/no-such-page"):
        html = client.get(path).get_data(as_text=True).lower()
        assert "<script" not in html and "<style" not in html and " style=" not in html, path


@pytest.mark.parametrize("target,expected", [
    ("/", "/"),
    ("/calendar?week=3", "/calendar?week=3"),
    (None, None),
    ("", None),
    ("//evil.example/x", None),
    ("/\\evil.example", None),
    ("https://evil.example/", None),
    ("relative/path", None),
    ("/ok\nSet-Cookie: x", None),
])
def test_safe_next(target, expected) -> None:
    assert safe_next(target) == expected
