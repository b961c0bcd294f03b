"""Shared fixtures: isolate every test from the user's environment and current directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

#: Captured Polymarket payloads the tests read (copies, with their sources in SOURCES.md there).
EXAMPLES = Path(__file__).resolve().parent / "fixtures"

#: Multiply timeouts by this on slow machines (PMWS_TEST_TIME_FACTOR=3).
TIME_FACTOR = float(os.environ.get("PMWS_TEST_TIME_FACTOR", "1"))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory with no PMWS_* variables from the user's shell."""
    for name in list(os.environ):
        if name.startswith("PMWS_") and name != "PMWS_TEST_TIME_FACTOR":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def example(name: str) -> object:
    return json.loads((EXAMPLES / name).read_text())


def example_bytes(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits pmws's HTTP retry loop (`pmws.retry`) asked for, recorded instead of slept."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("pmws.retry.asyncio.sleep", sleep)
    return waits


def no_traceback(result: Any) -> bool:
    """A CliRunner result ended through the CLI's own exit, not an exception that escaped it.

    The runner never prints a traceback (an escaped exception only lands in `result.exception`), so
    `"Traceback" not in result.output` cannot fail there; this can.
    """
    return result.exception is None or isinstance(result.exception, SystemExit)
