"""The quality gates are what the README says: one test command everywhere, with its coverage floor."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"python -m pytest[^`\n#]*")


def readme_commands() -> set[str]:
    return {found.strip() for found in COMMAND.findall((ROOT / "README.md").read_text())}


def test_the_readme_gives_one_test_command_and_ci_runs_it() -> None:
    commands = readme_commands()
    assert len(commands) == 1, commands
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    ci = lines[lines.index("# The exact test command from the README:") + 1]
    assert {ci} == commands


def test_the_test_command_enforces_a_coverage_floor_measuring_subprocesses() -> None:
    (command,) = readme_commands()
    floor = re.search(r"--cov-fail-under=(\d+)\b", command)
    assert floor and int(floor.group(1)) >= 80 and "--cov=pmws" in command, command
    coverage = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]["run"]
    assert "subprocess" in coverage["patch"]  # the `pmws` processes the end-to-end tests start count too
