"""Config: discovery order, defaults, every problem reported with file and key, secrets."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from daemon.config import SECTIONS, Config, load_config, toml_keys
from daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_anywhere_means_builtin_defaults():
    config = load_config(None)
    assert config.source is None
    assert config.server.host == "127.0.0.1" and config.server.port == 8400
    assert config.server.base_url == "http://127.0.0.1:8400"
    assert config.storage.db_path.name == "homecal.sqlite3"


def test_discovery_order_cli_then_env_then_default(tmp_path, monkeypatch):
    default = tmp_path / "xdg-config" / "homecal" / "config.toml"
    default.parent.mkdir(parents=True)
    write(default, "[server]\nport = 1001\n")
    env_file = write(tmp_path / "env.toml", "[server]\nport = 1002\n")
    cli_file = write(tmp_path / "cli.toml", "[server]\nport = 1003\n")
    assert load_config(None).server.port == 1001
    monkeypatch.setenv("HOMECAL_CONFIG", str(env_file))
    assert load_config(None).server.port == 1002
    assert load_config(str(cli_file)).server.port == 1003


def test_every_problem_is_listed_with_file_and_key(tmp_path):
    bad = write(tmp_path / "bad.toml", """
[server]
port = "eighty"
hots = "0.0.0.0"
public_url = "ftp://x"
[sync]
interval_seconds = 5
[smtp]
password = "hunter2"
[nonsense]
""")
    with pytest.raises(ConfigError) as exc:
        load_config(str(bad))
    text = str(exc.value)
    assert len(exc.value.problems) == 6
    for key in ("[server] port", "[server] hots", "[server] public_url", "[sync] interval_seconds",
                "[smtp] password", "[nonsense]"):
        assert f"{bad}: {key}" in text, key
    assert "must be an integer" in text
    assert "password_file or $HOMECAL_SMTP_PASSWORD" in text
    assert "hunter2" not in text  # a misplaced secret is not echoed back


def test_invalid_toml_names_the_file_and_line(tmp_path):
    bad = write(tmp_path / "broken.toml", "[server]\nport = \n")
    with pytest.raises(ConfigError) as exc:
        load_config(str(bad))
    assert str(bad) in str(exc.value) and "not valid TOML" in str(exc.value) and "line 2" in str(exc.value)


def test_explicit_missing_or_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path))  # a directory


def test_bool_is_not_an_integer(tmp_path):
    with pytest.raises(ConfigError, match=r"\[server\] port: must be an integer, not True"):
        load_config(str(write(tmp_path / "c.toml", "[server]\nport = true\n")))


def test_secret_from_file_wins_over_environment(tmp_path, monkeypatch):
    secret = write(tmp_path / "smtp.pw", "from-file\n")
    monkeypatch.setenv("HOMECAL_SMTP_PASSWORD", "from-env")
    c = load_config(str(write(tmp_path / "c.toml", f'[smtp]\npassword_file = "{secret.name}"\n')))
    assert c.smtp.password == "from-file"  # and the relative path resolved against the config file
    c = load_config(str(write(tmp_path / "d.toml", "[smtp]\nhost = \"mail\"\n")))
    assert c.smtp.password == "from-env"
    assert "from-env" not in repr(c)  # secrets stay out of reprs and so out of logs


def test_unreadable_secret_file_is_reported(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(str(write(tmp_path / "c.toml", '[google]\nclient_secret_file = "/nonexistent/secret"\n')))
    assert "[google] client_secret_file" in str(exc.value) and "/nonexistent/secret" in str(exc.value)


def test_state_directory_from_systemd_is_the_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert load_config(None).storage.data_path == tmp_path / "state"


def _example_keys() -> dict[str, dict]:
    """config.example.toml with its commented `#key = value` lines switched on."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = re.sub(r"^#(\w+ = )", r"\1", text, flags=re.M)
    return tomllib.loads(text)


def test_every_config_key_is_documented_in_the_example_with_its_default():
    example = _example_keys()
    assert set(example) == set(SECTIONS)
    defaults = Config()
    for section, cls in SECTIONS.items():
        documented = example[section]
        keys = {f.name for f in toml_keys(cls)}
        assert set(documented) == keys, f"[{section}] example and schema differ"
        for f in toml_keys(cls):
            assert documented[f.name] == getattr(getattr(defaults, section), f.name), f"[{section}] {f.name}"


def test_the_example_file_loads_as_a_config(tmp_path):
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = re.sub(r"^#(\w+ = )", r"\1", text, flags=re.M)
    c = load_config(str(write(tmp_path / "example.toml", text)))
    assert c.server.port == 8400


def test_every_key_has_documentation_in_the_schema():
    for cls in SECTIONS.values():
        for f in fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"


def test_systemd_configuration_directory_is_the_default_config_location(monkeypatch, tmp_path):
    (tmp_path / "etc").mkdir()
    write(tmp_path / "etc" / "config.toml", "[server]\nport = 9999\n")
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    assert load_config(None).server.port == 9999


def test_microsoft_keys_name_the_file_and_key_and_say_what_is_wanted(tmp_path):
    bad = write(tmp_path / "ms.toml", """
[microsoft]
authority = "http://login.microsoftonline.com/common"
graph_endpoint = "graph.microsoft.com"
requests_in_flight = 9
""")
    with pytest.raises(ConfigError) as exc:
        load_config(str(bad))
    text = str(exc.value)
    assert len(exc.value.problems) == 3
    assert f"{bad}: [microsoft] authority: must be an https:// URL" in text  # msal refuses any other
    assert f"{bad}: [microsoft] graph_endpoint: must be an http:// or https:// URL" in text
    assert f"{bad}: [microsoft] requests_in_flight: must be between 1 and 4" in text
    good = load_config(str(write(tmp_path / "ok.toml", '[microsoft]\nauthority = '
                                 '"https://login.microsoftonline.us/contoso.onmicrosoft.com"\nrequests_in_flight = 2\n')))
    assert good.microsoft.requests_in_flight == 2 and good.microsoft.login_endpoint == ""
