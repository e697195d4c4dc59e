"""Global settings changed in the web UI, layered over the config file.

The config file (`[smtp]`, `[server] public_url`, `[google] client_id`) gives the defaults;
values an admin saves in the web UI are kept in `meta` and win. Only values that differ from
the config file are stored, so a later edit of the file still takes effect for everything not
overridden. The SMTP password and the Google client secret are sealed like every other
secret. `*_sources` say where each value comes from, for the settings page.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from daemon.config import Config
from daemon.errors import UsageError
from daemon.mail import SECURITY_CHOICES, Security, SmtpSettings, validate_address
from daemon.store.db import Store

SMTP_KEY = "settings_smtp"
SMTP_PASSWORD_KEY = "settings_smtp_password"
PUBLIC_URL_KEY = "settings_public_url"
GOOGLE_CLIENT_ID_KEY = "settings_google_client_id"
GOOGLE_CLIENT_SECRET_KEY = "settings_google_client_secret"

#: the SMTP fields the web UI can override (the password is handled apart: it is sealed)
SMTP_FIELDS = ("host", "port", "security", "username", "from_address")

# Where a value comes from, as shown on the settings page.
FROM_UI = "saved in homecal"
FROM_FILE = "config file"
FROM_ENV = "$HOMECAL_SMTP_PASSWORD"
FROM_DEFAULT = "default"

_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
MAX_URL = 300


def _delete_meta(store: Store, key: str) -> None:
    store.db.execute("DELETE FROM meta WHERE key = ?", [key])


# -- SMTP ----------------------------------------------------------------------------------


def _config_security(config: Config) -> Security:
    # The config file has only `starttls = true|false`. Without STARTTLS, port 465 means
    # implicit TLS by long convention (RFC 8314); any other port means no encryption.
    if config.smtp.starttls:
        return "starttls"
    return "tls" if config.smtp.port == 465 else "none"


def config_smtp(config: Config) -> SmtpSettings:
    """The SMTP settings the config file alone gives."""
    c = config.smtp
    return SmtpSettings(host=c.host, port=c.port, security=_config_security(config), username=c.username,
                        password=c.password, from_address=c.from_address)


def _overrides(store: Store) -> dict[str, Any]:
    raw = store.meta_get(SMTP_KEY)
    data = json.loads(raw) if raw else {}
    return {k: v for k, v in data.items() if k in SMTP_FIELDS}


def effective_smtp(config: Config, store: Store) -> SmtpSettings:
    """The SMTP settings in force: the config file's, overridden by what the web UI saved."""
    settings = replace(config_smtp(config), **_overrides(store))
    stored_password = store.meta_get_secret(SMTP_PASSWORD_KEY)
    if stored_password:
        settings = replace(settings, password=stored_password)
    return settings


def smtp_sources(config: Config, store: Store) -> dict[str, str]:
    """For each SMTP field and "password": saved in homecal, config file, environment or default."""
    overrides = _overrides(store)
    from_file = config_smtp(config)
    builtin = SmtpSettings()
    out: dict[str, str] = {}
    for name in SMTP_FIELDS:
        if name in overrides:
            out[name] = FROM_UI
        elif getattr(from_file, name) != getattr(builtin, name):
            out[name] = FROM_FILE
        else:
            out[name] = FROM_DEFAULT
    if store.meta_get_secret(SMTP_PASSWORD_KEY):
        out["password"] = FROM_UI
    elif config.smtp.password_file:
        out["password"] = FROM_FILE
    elif config.smtp.password:
        out["password"] = FROM_ENV
    else:
        out["password"] = FROM_DEFAULT
    return out


def smtp_overridden(store: Store) -> bool:
    """Has the web UI saved anything about SMTP?"""
    return bool(_overrides(store)) or store.meta_get_secret(SMTP_PASSWORD_KEY) is not None


def check_smtp(values: dict[str, Any]) -> dict[str, str]:
    """Problems with SMTP values, by field name (empty when all is well)."""
    problems: dict[str, str] = {}
    host = values.get("host", "")
    if host and not _valid_host(host):
        problems["host"] = "Enter a server name like smtp.example.org, or an IP address."
    port = values.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems["port"] = "The port must be a number between 1 and 65535."
    if values.get("security") not in SECURITY_CHOICES:
        problems["security"] = "Choose STARTTLS, TLS or none."
    username = values.get("username", "")
    if len(username) > 254 or any(ord(ch) < 32 for ch in username):
        problems["username"] = "The user name must be at most 254 characters, on one line."
    sender = values.get("from_address", "")
    if sender:
        try:
            validate_address(sender)
        except UsageError:
            problems["from_address"] = "Enter an e-mail address like homecal@example.org."
    return problems


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return bool(_HOST_RE.match(host))


def save_smtp(config: Config, store: Store, values: dict[str, Any], *, password: str | None = None,
              clear_password: bool = False) -> SmtpSettings:
    """Store the SMTP values that differ from the config file; drop the others.

    `password`: a new password to seal; None or "" keeps the stored one. `clear_password`
    removes the stored password (the config file's applies again, if it has one).
    """
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items() if k in SMTP_FIELDS}
    base = config_smtp(config)
    problems = check_smtp({name: getattr(base, name) for name in SMTP_FIELDS} | values)
    if problems:
        raise UsageError(" ".join(problems.values()))
    changed = {k: v for k, v in values.items() if getattr(base, k) != v}
    with store.atomic():
        store.meta_set(SMTP_KEY, json.dumps(changed, sort_keys=True))
        if clear_password:
            _delete_meta(store, SMTP_PASSWORD_KEY)
        elif password:
            store.meta_set_secret(SMTP_PASSWORD_KEY, password)
    return effective_smtp(config, store)


def reset_smtp(store: Store) -> None:
    """Forget everything the web UI saved about SMTP, password included."""
    with store.atomic():
        _delete_meta(store, SMTP_KEY)
        _delete_meta(store, SMTP_PASSWORD_KEY)


# -- public URL ----------------------------------------------------------------------------


def validate_public_url(url: str) -> str:
    """An http(s) URL with a host, an optional port and an optional plain path prefix.

    Refused: user names or passwords in the URL, queries, fragments, backslashes, control
    characters, percent-escapes and "." or ".." segments, which would make booking and feed
    links point somewhere other than they seem. Returned without a trailing slash.
    """
    url = (url or "").strip()
    if not url:
        raise UsageError("enter a URL like https://cal.example.org")
    if len(url) > MAX_URL:
        raise UsageError(f"the URL must be at most {MAX_URL} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url) or "\\" in url or "%" in url:
        raise UsageError("the URL must not contain spaces, backslashes or %-escapes")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UsageError("the URL must start with https:// (or http://) and name a host")
    if "@" in parts.netloc:
        raise UsageError("the URL must not contain a user name or password")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UsageError("the URL must not have a ?query or #fragment")
    try:
        port = parts.port
    except ValueError:
        raise UsageError("the port in the URL must be a number between 1 and 65535") from None
    host = parts.hostname or ""
    if not _valid_host(host):
        raise UsageError(f"{host!r} is not a valid host name")
    segments = parts.path.split("/")
    inner = segments[1:-1] if parts.path.endswith("/") else segments[1:]
    if parts.path and (not parts.path.startswith("/") or any(not _PATH_SEGMENT_RE.match(s) or s in (".", "..")
                                                             for s in inner)):
        raise UsageError("the path must be a plain prefix like /homecal (letters, digits, . _ ~ -)")
    netloc = host.lower() if ":" not in host else f"[{host.lower()}]"
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def configured_public_url(config: Config, store: Store) -> str:
    """The public URL an admin set (web UI first, then config file), or "" when nobody did.

    For code that has a better fallback than http://HOST:PORT, e.g. a web page building a
    link from the URL the browser used."""
    return (store.meta_get(PUBLIC_URL_KEY) or config.server.public_url).rstrip("/")


def effective_public_url(config: Config, store: Store) -> str:
    """Where users and visitors reach homecal, without a trailing slash (mail, alerts)."""
    return configured_public_url(config, store) or config.server.base_url


def public_url_source(config: Config, store: Store) -> str:
    if store.meta_get(PUBLIC_URL_KEY):
        return FROM_UI
    return FROM_FILE if config.server.public_url else FROM_DEFAULT


def save_public_url(store: Store, url: str | None) -> None:
    """Save a validated URL, or with None or "" fall back to the config file."""
    if url and url.strip():
        store.meta_set(PUBLIC_URL_KEY, validate_public_url(url))
    else:
        _delete_meta(store, PUBLIC_URL_KEY)


# -- Google OAuth client -------------------------------------------------------------------

#: a client id or secret is one printable token; Google's are far shorter than this
MAX_GOOGLE_VALUE = 512


@dataclass(frozen=True)
class GoogleClient:
    """The OAuth client homecal links Google accounts with, and where it comes from."""

    client_id: str
    client_secret: str = field(repr=False)
    #: FROM_UI, FROM_FILE, or FROM_DEFAULT when no client is configured at all
    source: str

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


def effective_google_client(config: Config, store: Store) -> GoogleClient:
    """The client saved in the web UI if there is one, else the config file's.

    A UI-saved client always carries its own secret (save_google_client insists), so the two
    sources are never mixed: a secret is only ever sent along with the id it belongs to.
    """
    ui_id = store.meta_get(GOOGLE_CLIENT_ID_KEY)
    if ui_id:
        return GoogleClient(ui_id, store.meta_get_secret(GOOGLE_CLIENT_SECRET_KEY) or "", FROM_UI)
    if config.google.client_id or config.google.client_secret:
        return GoogleClient(config.google.client_id, config.google.client_secret, FROM_FILE)
    return GoogleClient("", "", FROM_DEFAULT)


def google_client_saved(store: Store) -> bool:
    """Has the web UI saved a Google client (which then overrides the config file's)?"""
    return bool(store.meta_get(GOOGLE_CLIENT_ID_KEY))


def _check_google_value(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise UsageError(f"enter the {what}")
    if len(value) > MAX_GOOGLE_VALUE or any(ord(ch) <= 32 or ord(ch) == 127 for ch in value):
        raise UsageError(f"the {what} is one word of at most {MAX_GOOGLE_VALUE} characters, without spaces")
    return value


def check_google_client_id(value: str) -> str:
    """The cleaned client id, or UsageError (the web form shows the message next to the field)."""
    return _check_google_value(value, "client id")


def check_google_client_secret(value: str) -> str:
    return _check_google_value(value, "client secret")


def save_google_client(store: Store, client_id: str, client_secret: str | None) -> GoogleClient:
    """Save a client id (plain) and its secret (sealed) made in Google Cloud for this homecal.

    `client_secret` None or "" keeps the saved secret, which is allowed only while the id
    stays the same: a new client always comes with its own secret.
    """
    client_id = check_google_client_id(client_id)
    same_client = store.meta_get(GOOGLE_CLIENT_ID_KEY) == client_id
    if client_secret:
        client_secret = check_google_client_secret(client_secret)
    elif not (same_client and store.meta_get_secret(GOOGLE_CLIENT_SECRET_KEY)):
        raise UsageError("enter the client secret that belongs to this client id")
    with store.atomic():
        store.meta_set(GOOGLE_CLIENT_ID_KEY, client_id)
        if client_secret:
            store.meta_set_secret(GOOGLE_CLIENT_SECRET_KEY, client_secret)
    return GoogleClient(client_id, store.meta_get_secret(GOOGLE_CLIENT_SECRET_KEY) or "", FROM_UI)


def reset_google_client(store: Store) -> None:
    """Forget the client saved in the web UI; the config file's (if any) applies again.

    Accounts linked with the forgotten client keep working: their secret carries the client
    id and secret their tokens belong to.
    """
    with store.atomic():
        _delete_meta(store, GOOGLE_CLIENT_ID_KEY)
        _delete_meta(store, GOOGLE_CLIENT_SECRET_KEY)
