"""Configuration: one TOML file -> frozen dataclasses.

The schema below is the single source of truth for every key: its type, default and one
line of documentation. `load_config` reads a file (or none, for the built-in defaults),
checks every key and collects *every* problem before raising one `ConfigError` whose lines
each name the file (or environment variable) and the key.

Secrets never sit in the TOML itself: a `*_file` key names a file holding the secret, or an
environment variable (named in the schema) carries it. The resolved secret lands in a field
that is not a TOML key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import platformdirs

from daemon.errors import ConfigError, Problem

ENV_CONFIG = "HOMECAL_CONFIG"
APP_NAME = "homecal"


def default_config_path() -> Path:
    """Where homecal looks for its config when neither --config nor $HOMECAL_CONFIG is given.

    Under systemd with ConfigurationDirectory= that is $CONFIGURATION_DIRECTORY/config.toml
    (/etc/homecal/config.toml); otherwise the user's config directory.
    """
    conf = os.environ.get("CONFIGURATION_DIRECTORY")
    if conf:
        return Path(conf.split(":")[0]) / "config.toml"
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    """Data directory when `[storage] data_dir` is not set.

    Under systemd with StateDirectory= the unit exports $STATE_DIRECTORY, which wins so the
    service needs no config file at all.
    """
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path(platformdirs.user_data_dir(APP_NAME))


def _key(doc: str, *, check=None, secret_env: str | None = None, secret_for: str | None = None):
    """Field metadata: `doc` is the one-line documentation; `check(value) -> error or None`.

    `secret_for` marks a resolved-secret field (not a TOML key) filled from the `*_file` key
    it names, or from `secret_env`.
    """
    return {"doc": doc, "check": check, "secret_env": secret_env, "secret_for": secret_for}


def _port(v: int) -> str | None:
    return None if 1 <= v <= 65535 else "must be between 1 and 65535"


def _positive(v: int) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: int) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _at_least(n: int):
    return lambda v: None if v >= n else f"must be at least {n}"


def _url(v: str) -> str | None:
    if not v:
        return None
    u = urlparse(v)
    if u.scheme not in ("http", "https") or not u.netloc:
        return "must be an http:// or https:// URL, e.g. https://cal.example.org"
    return None


def _https_url(v: str) -> str | None:
    u = urlparse(v)
    if u.scheme != "https" or not u.netloc:
        return "must be an https:// URL, e.g. https://login.microsoftonline.com/common"
    return None


def _between(lo: int, hi: int):
    def check(v: int) -> str | None:
        return None if lo <= v <= hi else f"must be between {lo} and {hi}"
    return check


def _level(v: str) -> str | None:
    ok = ("debug", "info", "warning", "error")
    return None if v.lower() in ok else f"must be one of {', '.join(ok)}"


def _email(v: str) -> str | None:
    if not v:
        return None
    return None if "@" in v and " " not in v.strip() else "must be an e-mail address like homecal@example.org"


@dataclass(frozen=True)
class ServerConfig:
    host: str = field(default="127.0.0.1", metadata=_key(
        "Address the web UI binds to. Keep 127.0.0.1 unless a reverse proxy or LAN needs it."))
    port: int = field(default=8400, metadata=_key("TCP port of the web UI.", check=_port))
    public_url: str = field(default="", metadata=_key(
        "URL users and visitors reach homecal at (OAuth redirects, booking and feed links). "
        "Empty means http://HOST:PORT.", check=_url))

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = field(default="", metadata=_key(
        "Directory holding homecal.sqlite3 and the key file. Empty means the user's data "
        "directory (~/.local/share/homecal), or $STATE_DIRECTORY under systemd."))
    key_file: str = field(default="", metadata=_key(
        "Master key file (created 0600 by `homecal init`). Empty means DATA_DIR/homecal.key. "
        "$HOMECAL_KEY or the systemd credential `homecal.key` override it."))

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    @property
    def db_path(self) -> Path:
        return self.data_path / "homecal.sqlite3"

    @property
    def key_path(self) -> Path:
        return Path(self.key_file).expanduser() if self.key_file else self.data_path / "homecal.key"


@dataclass(frozen=True)
class SyncConfig:
    interval_seconds: int = field(default=120, metadata=_key(
        "How often each sync rule runs, in seconds.", check=_at_least(30)))
    window_past_days: int = field(default=1, metadata=_key(
        "How many days back the rolling sync window reaches.", check=_non_negative))
    window_future_days: int = field(default=90, metadata=_key(
        "How many days ahead the rolling sync window reaches.", check=_positive))
    max_deletions: int = field(default=20, metadata=_key(
        "A sync plan deleting more than this many events pauses the rule until "
        "`homecal rule confirm-deletions`.", check=_non_negative))


@dataclass(frozen=True)
class SmtpConfig:
    host: str = field(default="", metadata=_key("SMTP server for invites and alerts. Empty disables mail."))
    port: int = field(default=587, metadata=_key("SMTP port.", check=_port))
    starttls: bool = field(default=True, metadata=_key("Upgrade the connection with STARTTLS."))
    username: str = field(default="", metadata=_key("SMTP login name; empty for no login."))
    password_file: str = field(default="", metadata=_key(
        "File holding the SMTP password. $HOMECAL_SMTP_PASSWORD may carry it instead."))
    from_address: str = field(default="", metadata=_key(
        "Sender and iMIP ORGANIZER address, e.g. homecal@example.org.", check=_email))
    password: str = field(default="", repr=False, metadata=_key(
        "resolved secret", secret_env="HOMECAL_SMTP_PASSWORD", secret_for="password_file"))


@dataclass(frozen=True)
class GoogleConfig:
    client_id: str = field(default="", metadata=_key("OAuth client id of your own Google Cloud project."))
    client_secret_file: str = field(default="", metadata=_key(
        "File holding that client's secret. $HOMECAL_GOOGLE_CLIENT_SECRET may carry it instead."))
    api_endpoint: str = field(default="", metadata=_key(
        "Calendar API endpoint. Empty means Google's; tests point it at a local fake.", check=_url))
    auth_uri: str = field(default="https://accounts.google.com/o/oauth2/auth", metadata=_key(
        "OAuth authorization endpoint (Google's; tests point it at a local fake).", check=_url))
    token_uri: str = field(default="https://oauth2.googleapis.com/token", metadata=_key(
        "OAuth token endpoint (Google's; tests point it at a local fake).", check=_url))
    requests_per_minute: int = field(default=500, metadata=_key(
        "Most Calendar API calls homecal makes per linked Google account per minute "
        "(Google allows 600 per user; batch members count one each).", check=_positive))
    testing_client: bool = field(default=False, metadata=_key(
        "Your OAuth client is still in Testing: Google expires its refresh tokens after 7 days, so "
        "homecal warns before that. Publish the client to production instead (see the README)."))
    client_secret: str = field(default="", repr=False, metadata=_key(
        "resolved secret", secret_env="HOMECAL_GOOGLE_CLIENT_SECRET", secret_for="client_secret_file"))


@dataclass(frozen=True)
class MicrosoftConfig:
    client_id: str = field(default="", metadata=_key("Application (client) id of your Entra app registration."))
    client_secret_file: str = field(default="", metadata=_key(
        "File holding the client secret (confidential clients only). "
        "$HOMECAL_MICROSOFT_CLIENT_SECRET may carry it instead."))
    authority: str = field(default="https://login.microsoftonline.com/common", metadata=_key(
        "Sign-in authority: .../common (work, school and personal accounts), .../organizations, "
        ".../consumers or .../<tenant id>; national clouds change the host.", check=_https_url))
    graph_endpoint: str = field(default="https://graph.microsoft.com/v1.0", metadata=_key(
        "Microsoft Graph endpoint (national clouds change it; tests point it at a local fake).", check=_url))
    login_endpoint: str = field(default="", metadata=_key(
        "Where the sign-in requests for `authority` really go, e.g. http://127.0.0.1:9000. Empty "
        "(the default) sends them to the authority itself; tests point it at a local fake.", check=_url))
    requests_in_flight: int = field(default=4, metadata=_key(
        "Most Graph requests homecal has in flight per mailbox at once (Outlook allows 4).",
        check=_between(1, 4)))
    client_secret: str = field(default="", repr=False, metadata=_key(
        "resolved secret", secret_env="HOMECAL_MICROSOFT_CLIENT_SECRET", secret_for="client_secret_file"))


@dataclass(frozen=True)
class LoggingConfig:
    level: str = field(default="info", metadata=_key(
        "Least severe level logged to stderr: debug, info, warning or error.", check=_level))


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    google: GoogleConfig = field(default_factory=GoogleConfig)
    microsoft: MicrosoftConfig = field(default_factory=MicrosoftConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    #: the file this config came from, or None for built-in defaults
    source: Path | None = None


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in fields(Config) if f.name != "source"}  # type: ignore[misc]


def toml_keys(section_cls: type) -> list[Any]:
    """The fields of a section that are TOML keys (resolved secrets are not)."""
    return [f for f in fields(section_cls) if not f.metadata.get("secret_for")]


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}


def _type_ok(value: Any, typ: type) -> bool:
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def _resolve_path(raw: str, base: Path | None) -> str:
    """Relative paths in a config file are relative to that file, as users expect."""
    if not raw:
        return raw
    p = Path(raw).expanduser()
    if not p.is_absolute() and base is not None:
        p = base.parent / p
    return str(p)


def _read_secret_file(path: str, source: str, key: str, problems: list[Problem]) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        problems.append(Problem(source, key, f"cannot read secret file {path}: {err.strerror or err}"))
        return ""
    if not value:
        problems.append(Problem(source, key, f"secret file {path} is empty"))
    return value


def locate_config(cli_path: str | None) -> tuple[Path | None, bool]:
    """Pick the config file: --config, then $HOMECAL_CONFIG, then the default path.

    Returns (path, explicit). An explicit path that does not exist is an error; a missing
    default path means "run on built-in defaults".
    """
    if cli_path:
        return Path(cli_path).expanduser(), True
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser(), True
    default = default_config_path()
    return (default if default.exists() else None), False


def load_config(cli_path: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Load and check the configuration. Raises ConfigError listing every problem."""
    env = dict(os.environ) if env is None else env
    path, explicit = locate_config(cli_path)
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    source = str(path) if path else "(built-in defaults)"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            hint = "" if not explicit else " (given by --config or $HOMECAL_CONFIG)"
            raise ConfigError([Problem(source, "", f"file not found{hint}")]) from None
        except OSError as err:
            raise ConfigError([Problem(source, "", f"cannot read: {err.strerror or err}")]) from None
        except UnicodeDecodeError:
            raise ConfigError([Problem(source, "", "is not UTF-8 text")]) from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError([Problem(source, "", f"is not valid TOML: {err}")]) from None

    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SECTIONS:
            problems.append(Problem(source, f"[{name}]", f"unknown section (known: {', '.join(SECTIONS)})"))
        elif not isinstance(value, dict):
            problems.append(Problem(source, name, "must be a [section] table"))

    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            sections[name] = cls()
            continue
        known = {f.name: f for f in toml_keys(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            where = f"[{name}] {key}"
            if key not in known:
                secret_hint = ""
                for f in fields(cls):
                    if f.name == key and f.metadata.get("secret_for"):
                        secret_hint = (f"; secrets never go in the file itself: use "
                                       f"{f.metadata['secret_for']} or ${f.metadata['secret_env']}")
                problems.append(Problem(source, where, f"unknown key{secret_hint}"))
                continue
            f = known[key]
            typ = type(f.default)
            if not _type_ok(value, typ):
                problems.append(Problem(source, where, f"must be {_TYPE_NAMES[typ]}, not {value!r}"))
                continue
            check = f.metadata.get("check")
            err = check(value) if check else None
            if err:
                problems.append(Problem(source, where, f"{err} (got {value!r})"))
                continue
            if key.endswith(("_file", "_dir")):
                value = _resolve_path(value, path)
            values[key] = value
        # Resolved secrets: the *_file key wins over the environment variable.
        for f in fields(cls):
            file_key = f.metadata.get("secret_for")
            if not file_key:
                continue
            if values.get(file_key):
                values[f.name] = _read_secret_file(values[file_key], source, f"[{name}] {file_key}", problems)
            elif env.get(f.metadata["secret_env"]):
                values[f.name] = env[f.metadata["secret_env"]].strip()
        sections[name] = cls(**values)

    if problems:
        raise ConfigError(problems)
    return Config(**sections, source=path)


def with_overrides(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `config` with some keys replaced, e.g. with_overrides(c, server={"port": 0})."""
    changed = {name: replace(getattr(config, name), **vals) for name, vals in sections.items()}
    return replace(config, **changed)
