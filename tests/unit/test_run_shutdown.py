"""`run.shutdown_timeout_seconds` bounds how long stopping waits for a websocket link that does not stop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pmws.config import load_config
from pmws.run import Recorder
from tests.conftest import TIME_FACTOR


def test_shutdown_cancels_a_link_that_outlives_the_timeout(tmp_path: Path) -> None:
    config = load_config(
        overrides={
            "run.output_dir": str(tmp_path / "raw"),
            "run.manifest_dir": str(tmp_path / "manifests"),
            "run.shutdown_timeout_seconds": 0.2,
        }
    )

    async def main() -> None:
        recorder = Recorder(config, stop=asyncio.Event(), session_id="S")
        pool = recorder.pool
        stubborn = asyncio.create_task(asyncio.sleep(3600))  # a link that never notices `stop`
        link: Any = SimpleNamespace(
            stop=asyncio.Event(), reconnects=2, stale_events=0, pong_timeouts=0, connect_failures=0
        )
        pool.links, pool.tasks = [link], {0: stubborn}
        # scaled for slow machines, yet below the default of 8 s, which must not fit
        await asyncio.wait_for(pool.shutdown(), timeout=min(4 * TIME_FACTOR, 7))
        assert link.stop.is_set() and stubborn.cancelled()
        assert pool.links == [None] and pool.retired["reconnects"] == 2
        assert pool.totals()["reconnects"] == 2  # a retired link's counters stay in the totals

    asyncio.run(main())
