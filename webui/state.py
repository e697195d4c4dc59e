"""The per-app state the web UI shares between requests: config, store and login throttle.

It lives on `app.extensions["homecal"]` so blueprints never import a global; tests build as
many independent apps as they like.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from daemon.config import Config
from daemon.store import Store
from webui.throttle import LoginThrottle

EXTENSION_KEY = "homecal"


@dataclass
class WebState:
    """What every view may need; one instance per Flask app."""

    config: Config
    store: Store
    throttle: LoginThrottle


def install(app: Flask, state: WebState) -> None:
    app.extensions[EXTENSION_KEY] = state


def web_state(app: Flask | None = None) -> WebState:
    """The state of `app`, or of the app handling the current request."""
    target = app if app is not None else current_app
    return target.extensions[EXTENSION_KEY]


def get_store() -> Store:
    return web_state().store


def get_config() -> Config:
    return web_state().config
