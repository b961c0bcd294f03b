"""SIGINT/SIGTERM → a clean stop of the running command, not a KeyboardInterrupt mid-write."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[list[str]]:
    """While active, SIGINT and SIGTERM set `stop`; yields the names of the signals received."""
    loop = asyncio.get_running_loop()
    received: list[str] = []
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):

        def handler(sig: signal.Signals = sig) -> None:
            received.append(sig.name)
            stop.set()

        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests): the caller's stop event still works
    try:
        yield received
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
