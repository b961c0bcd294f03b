"""The recorder shell `sample` and `run` share: links, the REST checkpoint loop, supervision, the snapshot.

The two commands differ only in the policy they pass in: `sample` records fixed markets until a deadline
into one archive pair; `run` rediscovers markets, rotates files and verifies books until stopped. Both see
the person watching through a view the CLI builds (`live.console_view`): the library never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol

import httpx

from pmws.config import Config
from pmws.envelope import TrackedToken
from pmws.errors import PmwsError
from pmws.health import RestTotals, Snapshot
from pmws.pool import LinkPool
from pmws.rest import checkpoint_loop
from pmws.stats import FeedStats


class View(Protocol):
    def refresh(self) -> None: ...


#: Builds the view of a recorder from its snapshot function and refresh interval (the CLI's choice).
ViewFactory = Callable[[Callable[[], Snapshot], float], AbstractContextManager[View]]


class NoView:
    """The view when nobody watches (library callers, tests)."""

    def __init__(self, snapshot: Callable[[], Snapshot] | None = None, interval: float = 0.0):
        pass

    def __enter__(self) -> NoView:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def refresh(self) -> None:
        return None


class Shell:
    """What every recorder owns: its link pool, feed stats, REST totals and stop event."""

    def __init__(self, pool: LinkPool, *, stats: FeedStats, stop: asyncio.Event, session_id: str):
        self.pool = pool
        self.stats = stats
        self.stop = stop
        self.session_id = session_id
        self.rest = RestTotals()
        self.started = time.monotonic()

    def snapshot(
        self,
        title: str,
        tokens: Sequence[TrackedToken],
        extra: dict[str, Any] | None = None,
        token_states: dict[str, str] | None = None,
    ) -> Snapshot:
        return Snapshot(
            title,
            tokens,
            self.stats,
            self.pool.views(),
            self.rest.ok,
            self.rest.failed,
            time.monotonic() - self.started,
            extra or {},
            token_states or {},
        )

    def rest_loop(
        self,
        client: httpx.AsyncClient,
        config: Config,
        tokens: Callable[[], list[str]],
        *,
        interval: float,
        write: Callable[[dict[str, Any]], None],
        on_books: Callable[[list[dict[str, Any]]], Coroutine[Any, Any, None]] | None = None,
    ) -> Coroutine[Any, Any, None]:
        """The REST checkpoint loop (rest.checkpoint_loop) counting into this shell's totals."""
        return checkpoint_loop(
            client,
            config.endpoints.clob_url,
            tokens,
            self.rest,
            settings=config.rest,
            interval=interval,
            session_id=self.session_id,
            stop=self.stop,
            write=write,
            on_books=on_books,
        )

    async def serve(
        self,
        loops: Iterable[Coroutine[Any, Any, None]],
        view: View,
        *,
        deadline: float | None = None,
        errors: Callable[[], PmwsError | None] = lambda: None,
    ) -> PmwsError | None:
        """Run the loops until stop, the deadline or an error; then stop them and every link."""
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            return await supervise(
                lambda: [*tasks, *self.pool.tasks.values()],
                self.stop,
                refresh=view.refresh,
                errors=errors,
                deadline=deadline,
            )
        finally:
            self.stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pool.shutdown()


async def supervise(
    tasks: Callable[[], Iterable[asyncio.Task[None]]],
    stop: asyncio.Event,
    *,
    refresh: Callable[[], None],
    errors: Callable[[], PmwsError | None],
    deadline: float | None,
) -> PmwsError | None:
    """Until stop or the (monotonic) deadline: refresh the view; a failed task or an error ends it.

    A PmwsError is returned (the caller still closes what it recorded); anything else is a bug and raised.
    """
    while not stop.is_set():
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return None
        refresh()
        for task in list(tasks()):
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if isinstance(exc, PmwsError):
                    return exc
                raise exc  # type: ignore[misc]
        error = errors()
        if error is not None:
            return error
        wait = 0.25 if deadline is None else min(0.25, max(0.0, deadline - now))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
    return None
