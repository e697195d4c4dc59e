"""The README promises a two-command quick start; CI must run exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_is_exactly_two_commands_run_then_test():
    commands = quick_start_commands()
    assert len(commands) == 2
    run, test = commands
    assert "homecal run" in run and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert quick_start_commands()[1] in ci.splitlines()


def test_the_google_guide_lists_exactly_the_scopes_homecal_requests():
    from daemon import access

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = text.split("## Linking Google Calendar", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\s*\| (read-write|free-busy|no-access) \| (.+?) \|$", guide, re.MULTILINE))
    assert set(rows) == {"read-write", "free-busy", "no-access"}
    for mode, cell in rows.items():
        assert tuple(re.findall(r"`([^`]+)`", cell)) == access.scopes("google", mode), mode
    assert "/accounts/google/callback" in guide and "ssh -L 8765:127.0.0.1:8765" in guide
