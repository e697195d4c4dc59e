"""What the command-line linking tests of Google and Microsoft share (tests/integration/
test_google_linking.py, test_microsoft_linking.py): a config file as `homecal init` leaves it,
and `homecal ...` as its own process, read until it waits for the provider.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from daemon.cli import main
from tests.conftest import clean_env

ADMIN_PASSWORD = "correct horse battery"


def initialised_config(tmp_path: Path, data_dir: Path, provider_toml: str) -> str:
    """A config file with the data dir and `provider_toml` (the provider's section), after `homecal init`
    with an admin. Returns its path."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndata_dir = "{data_dir}"\n{provider_toml}')
    pw = tmp_path / "pw"
    pw.write_text(ADMIN_PASSWORD + "\n")
    assert main(["--config", str(path), "init", "--admin-user", "admin", "--admin-password-file", str(pw)]) == 0
    return str(path)


@contextlib.contextmanager
def homecal_process(cfg: str, args: list[str], until: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`homecal ARGS` as its own process, its output read up to the line with `until`; killed if still
    running at the end. Yields the process and what it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", cfg, *args],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = ""
        while until not in printed:
            line = proc.stdout.readline()
            assert line, f"homecal exited early: {proc.stderr.read()}"
            printed += line
        yield proc, printed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
