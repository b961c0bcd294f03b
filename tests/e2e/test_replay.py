"""`pmws replay`: record the simulator with `pmws run`, replay the archives, record the replay again.

The proof of issue 13 §3: the second recording holds the same market-data payloads per token as the first
(as multisets: two TCP connections may interleave tokens differently), and every book hash the first
recording verified verifies in the second, with the metadata the replay's Gamma and /books gave it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pmws.archive.reader import iter_gzip_lines
from pmws.book import BookState
from pmws.config import load_config
from pmws.envelope import payload_of
from pmws.protocol import MARKET_DATA_EVENTS, classify_text, iter_events
from pmws.replay.load import build_replay
from pmws.replay.server import Replay
from pmws.run import RunOutcome, run_recorder
from pmws.sim import Faults, SimConfig
from pmws.tracker import BookTracker
from tests.conftest import TIME_FACTOR
from tests.e2e.test_run import frames as sorted_frames
from tests.e2e.test_run import record, run_config, ws_lines

FIRST, SECOND = Path("rec1"), Path("rec2")
#: Long windows only, so no window ends between the two recordings (the recorder drops ended ones).
WINDOWS = ["1h", "4h"]


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(rate_per_second=150.0, trade_every=4, faults=Faults())


def recorder_sections(root: Path) -> dict[str, dict[str, Any]]:
    return {
        "run": {"output_dir": str(root), "manifest_dir": f"{root}-manifests", "rotate_interval_seconds": 1},
        "discovery": {"windows": WINDOWS},
        "metrics": {"enabled": False},
    }


class Endpoints:
    """What `write_config` reads from a simulator handle, here pointing at a replay."""

    def __init__(self, replay: Replay) -> None:
        self.gamma_url, self.clob_url, self.ws_url = replay.gamma_url, replay.clob_url, replay.ws_url


async def record_replay(replay: Replay, config_path: Path) -> RunOutcome:
    """`pmws run` against a started replay until every frame the replay sent has been archived, and one
    REST checkpoint has been taken after the end (the books then carry the tick size and min order size
    the offline check needs; at `--speed max` the whole replay can fit between two checkpoints)."""
    stop = asyncio.Event()
    config = load_config(config_path, env={})
    recorders: list[Any] = []

    async def stop_when_played() -> None:
        await asyncio.wait_for(replay.finished.wait(), 60 * TIME_FACTOR)
        while any(c.queue for c in replay.conns):  # flushed to the sockets
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5 * TIME_FACTOR)  # received and archived
        checkpoints = recorders[0].counters()["rest_checkpoints_ok"]
        deadline = time.monotonic() + 10 * TIME_FACTOR
        while recorders[0].counters()["rest_checkpoints_ok"] == checkpoints and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.create_task(stop_when_played())
    outcome = await run_recorder(config, stop=stop, on_ready=lambda recorder, _: recorders.append(recorder))
    await watcher
    return outcome


def market_payloads(root: Path) -> Counter[tuple[str, bytes]]:
    """(token, frame bytes) for every market-data frame, once per token it names."""
    found: Counter[tuple[str, bytes]] = Counter()
    for row in sorted_frames(ws_lines(root)):
        payload = payload_of(row)
        classified = classify_text(payload)
        if classified.is_market_data or set(classified.event_types) & MARKET_DATA_EVENTS:
            found.update((token, payload) for token in classified.asset_ids)
    return found


class VerifiedHashes(BookTracker):
    """A tracker that also remembers which (token, hash) it verified on arrival."""

    verified_hashes: set[tuple[str, str]]

    def _verify(self, book: BookState, expected: Any) -> None:
        before = self.counters.verified
        super()._verify(book, expected)
        if self.counters.verified > before:
            self.verified_hashes.add((book.asset_id, str(expected)))


def verified_hashes(root: Path) -> set[tuple[str, str]]:
    """Book hashes that verify when the recording's frames go through the tracker in order, with
    `min_order_size`/`neg_risk` from its own REST checkpoints (PROTOCOL.md §5.3)."""
    tracker = VerifiedHashes()
    tracker.verified_hashes = set()
    for path in sorted((root / "rest_checkpoints").rglob("*.jsonl.gz")):
        for line in iter_gzip_lines(path):
            for summary in orjson.loads(line).get("response", {}).get("raw_response_json") or []:
                tracker.set_metadata(summary["asset_id"], summary["min_order_size"], summary["neg_risk"])
    for row in sorted_frames(ws_lines(root)):
        for event in iter_events(row["json"]):
            tracker.observe(event)
    return tracker.verified_hashes


@pytest.mark.parametrize("speed", ["max", "3"])  # as fast as the recorder reads; 3x the recorded pace
def test_a_replayed_recording_records_the_same_payloads_and_verifies_the_same_hashes(
    tmp_path: Path, sim: Any, speed: str
) -> None:
    first, _ = record(run_config(tmp_path, sim, **recorder_sections(FIRST)), 3, sim=sim)
    assert first.error is None
    sim.stop()  # nothing below may reach the simulator

    async def main() -> RunOutcome:
        replay = build_replay([FIRST], speed=speed)
        await replay.start()
        try:
            path = run_config(tmp_path, Endpoints(replay), **recorder_sections(SECOND))
            return await record_replay(replay, path)
        finally:
            await replay.stop()

    second = asyncio.run(main())
    assert second.error is None
    before, after = market_payloads(FIRST), market_payloads(SECOND)
    assert len(before) > 50, "the first recording is too small to prove anything"
    assert after == before
    hashes = verified_hashes(FIRST)
    assert len(hashes) > 50
    assert hashes <= verified_hashes(SECOND)
    assert second.counters["book_hash_verified"] >= first.counters["book_hash_verified"]
    assert second.counters["book_hash_mismatched"] == first.counters["book_hash_mismatched"] == 0
