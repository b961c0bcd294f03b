"""The recorders fix glibc's malloc thresholds before recording (pmws/heap.py)."""

from __future__ import annotations

import platform
from typing import Any

import pytest

from pmws import heap
from pmws.cli import base
from pmws.config import Config


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_steady_heap_applies_on_glibc() -> None:
    assert heap.steady_heap() is True


def test_steady_heap_does_nothing_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.steady_heap() is False


def test_a_recorder_fixes_the_heap_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(heap, "steady_heap", lambda: calls.append("heap") or True)

    async def start(config: Config, view: Any) -> str:
        calls.append("start")
        return "done"

    assert base.record(Config(), simulate=False, live=False, start=start) == "done"
    assert calls == ["heap", "start"]
