"""The shared recorder shell: supervision ends on stop, deadline or error; serve stops what it started."""

from __future__ import annotations

import asyncio
import time

import pytest

from pmws.config import load_config
from pmws.errors import ArchiveError, FeedError
from pmws.feed import Link
from pmws.health import LinkView
from pmws.pool import LinkPool
from pmws.protocol import Classified
from pmws.recorder import NoView, Shell, supervise
from pmws.stats import FeedStats
from tests.conftest import TIME_FACTOR


class Quiet:
    """A frame handler for a pool that never connects."""

    def on_envelope(
        self, line: bytes, classified: Classified, received_ns: int, global_sequence: int
    ) -> None:
        pass

    def on_lifecycle(self, event: str, link: Link, details: dict[str, object]) -> None:
        pass

    def on_handed_over(self) -> None:
        pass

    async def wait_for_room(self) -> None:
        pass

    def has_room(self) -> bool:
        return True

    def quiet_ok(self, link: Link, now: float) -> bool:
        return False


def shell(stop: asyncio.Event) -> Shell:
    pool = LinkPool(
        url="ws://127.0.0.1:9",
        settings=load_config().websocket,
        handler=Quiet(),
        session_id="S",
        stop_timeout=1,
    )
    return Shell(pool, stats=FeedStats(), stop=stop, session_id="S")


async def forever() -> None:
    await asyncio.sleep(3600)


async def fails(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


def test_a_failed_loop_is_returned_and_the_others_stopped() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        sh = shell(stop)
        refreshed: list[None] = []

        class Counting(NoView):
            def refresh(self) -> None:
                refreshed.append(None)

        error = await asyncio.wait_for(
            sh.serve([forever(), fails(FeedError("gone"))], Counting()), timeout=5 * TIME_FACTOR
        )
        assert isinstance(error, FeedError) and str(error) == "gone"
        assert stop.is_set() and refreshed

    asyncio.run(main())


def test_a_bug_in_a_loop_is_raised_not_hidden() -> None:
    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            await shell(asyncio.Event()).serve([fails(ZeroDivisionError())], NoView())

    asyncio.run(main())


def test_the_deadline_ends_a_run_without_error() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        error = await shell(stop).serve([forever()], NoView(), deadline=time.monotonic() + 0.3)
        assert error is None and stop.is_set()

    asyncio.run(main())


def test_a_reported_error_ends_supervision() -> None:
    async def main() -> None:
        task = asyncio.create_task(forever())
        error = await supervise(
            lambda: [task],
            asyncio.Event(),
            refresh=lambda: None,
            errors=lambda: ArchiveError("disk"),
            deadline=None,
        )
        task.cancel()
        assert isinstance(error, ArchiveError)

    asyncio.run(main())


def test_stop_ends_supervision_and_the_snapshot_reads_the_shell() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        sh = shell(stop)
        sh.rest.ok, sh.rest.failed = 3, 1
        asyncio.get_running_loop().call_later(0.2, stop.set)
        assert await sh.serve([forever()], NoView()) is None
        snap = sh.snapshot("pmws sample S", [])
        assert (snap.title, snap.rest_ok, snap.rest_failed, snap.links, snap.extra) == (
            "pmws sample S",
            3,
            1,
            [],
            {},
        )

    asyncio.run(main())


def test_pool_views_read_each_live_link() -> None:
    async def main() -> None:
        pool = shell(asyncio.Event()).pool
        link = pool.start(1, ())
        link.reconnects = 2
        assert pool.views(now=0.0) == [LinkView(1, link.state.value, 0, 2, 0, 0, fresh=False)]
        assert pool.links[0] is None and pool.totals()["reconnects"] == 2
        await pool.shutdown()
        assert pool.live() == [] and pool.totals()["reconnects"] >= 2

    asyncio.run(main())
