"""Crash points fire exactly where and when asked, and never otherwise."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import clean_env

SCRIPT = "from daemon.faults import crash_point\nfor i in range(5):\n    print(i, flush=True)\n    crash_point('p')\n"


def run(spec):
    env = clean_env(**({"HOMECAL_CRASH_AT": spec} if spec else {}))
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)


def test_crash_on_the_kth_hit():
    p = run("p:3")
    assert p.returncode == 137 and p.stdout.split() == ["0", "1", "2"]


def test_no_crash_when_unset_or_elsewhere():
    assert run(None).returncode == 0
    assert run("other:1").returncode == 0
