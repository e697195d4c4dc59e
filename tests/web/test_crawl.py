"""Every route of the app, discovered from the URL map, is closed to anonymous visitors
unless it is on the public allowlist. New blueprints are covered without touching this file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.routing import Rule

from webui.security import is_public_endpoint

#: the only endpoints reachable without logging in; widen it deliberately, never by accident
PUBLIC_ALLOWLIST = {
    "auth.login", "auth.setup", "health.healthz", "static",
    # calendar apps poll the free/busy feed without a session; the long secret token in its
    # URL is the credential (unknown or revoked: 404), tests/web/test_feeds.py
    "feeds.feed",
    # the visitor's booking pages: the link key (a slug, or a private link's secret) and the
    # booking token in the URL are the credential (unknown: 404), tests/web/test_booking_public.py
    "booking.slots", "booking.slot", "booking.manage", "booking.invite", "booking.cancel",
    "booking.reschedule", "booking.reschedule_slot",
}

_DUMMY_BY_CONVERTER = {
    "IntegerConverter": 1,
    "FloatConverter": 1.5,
    "UUIDConverter": uuid.UUID("00000000-0000-4000-8000-000000000001"),
    "PathConverter": "dummy/path",
    "UnicodeConverter": "dummy",
}


def _dummy(rule: Rule, argument: str) -> object:
    converter = rule._converters[argument]  # noqa: SLF001 - the only way to see a rule's types
    name = type(converter).__name__
    if name == "AnyConverter":
        return sorted(converter.items)[0]
    return _DUMMY_BY_CONVERTER.get(name, "dummy")


def _url(rule: Rule) -> str:
    values = {arg: _dummy(rule, arg) for arg in rule.arguments}
    built = rule.build(values, append_unknown=False)
    assert built is not None, f"cannot build a URL for {rule.rule}"
    return built[1]


def _requests(app: Flask) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule and every method it allows."""
    for rule in app.url_map.iter_rules():
        url = _url(rule)
        for method in sorted(rule.methods or ()):
            yield rule.endpoint, method, url


def _is_sent_to_login(status: int, location: str | None, allowed_targets: set[str]) -> bool:
    if status in (401, 403):
        return True
    return status in (302, 303, 307) and urlsplit(location or "").path in allowed_targets


def test_the_public_endpoints_are_exactly_the_allowlist(app: Flask) -> None:
    public = {rule.endpoint for rule in app.url_map.iter_rules() if is_public_endpoint(app, rule.endpoint)}
    assert public == PUBLIC_ALLOWLIST


def test_the_crawl_sees_every_area(app: Flask) -> None:
    # Guards the crawler itself: if it found no routes, the tests below would pass vacuously.
    endpoints = {endpoint for endpoint, _, _ in _requests(app)}
    assert {"dashboard.index", "auth.logout", "auth.login", "health.healthz"} <= endpoints


@pytest.mark.usefixtures("admin")
def test_every_private_route_sends_anonymous_visitors_to_log_in(app: Flask, client) -> None:
    checked = 0
    for endpoint, method, url in _requests(app):
        if endpoint in PUBLIC_ALLOWLIST:
            continue
        response = client.open(url, method=method)
        assert _is_sent_to_login(response.status_code, response.location, {"/login"}), (
            f"{method} {url} ({endpoint}) answered {response.status_code} to an anonymous visitor"
        )
        checked += 1
    assert checked > 0


def test_before_setup_private_routes_send_local_visitors_to_setup(app: Flask, client) -> None:
    for endpoint, method, url in _requests(app):
        if endpoint in PUBLIC_ALLOWLIST:
            continue
        response = client.open(url, method=method)
        assert _is_sent_to_login(response.status_code, response.location, {"/setup"}), (
            f"{method} {url} ({endpoint}) answered {response.status_code} before setup"
        )


def test_before_setup_private_routes_stay_closed_to_remote_visitors(app: Flask, client) -> None:
    remote = {"REMOTE_ADDR": "192.0.2.5"}
    for endpoint, method, url in _requests(app):
        if endpoint in PUBLIC_ALLOWLIST:
            continue
        response = client.open(url, method=method, environ_overrides=remote)
        assert _is_sent_to_login(response.status_code, response.location, {"/login"}), (
            f"{method} {url} ({endpoint}) answered {response.status_code} to a remote visitor before setup"
        )


@pytest.mark.usefixtures("admin")
def test_public_routes_answer_anonymous_visitors_without_server_errors(app: Flask, client) -> None:
    for endpoint, method, url in _requests(app):
        if endpoint not in PUBLIC_ALLOWLIST:
            continue
        response = client.open(url, method=method)
        assert response.status_code < 500, f"{method} {url} ({endpoint}) answered {response.status_code}"


@pytest.mark.usefixtures("admin")
def test_every_page_without_arguments_renders_for_a_logged_in_user(app: Flask, client, auth) -> None:
    auth.login()
    for rule in app.url_map.iter_rules():
        if rule.arguments or "GET" not in (rule.methods or ()):
            continue
        response = client.get(_url(rule))
        assert response.status_code < 500, f"GET {rule.rule} answered {response.status_code}"
