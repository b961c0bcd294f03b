"""`pmws replay`: record the simulator with `pmws run`, replay the archives, record the replay again.

The proof of issue 13 §3: the second recording holds the same market-data payloads per token as the first
(as multisets: two TCP connections may interleave tokens differently), and every book hash the first
recording verified verifies in the second, with the metadata the replay's Gamma and /books gave it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pmws.archive.reader import iter_gzip_lines
from pmws.book import BookState
from pmws.config import load_config
from pmws.envelope import payload_of
from pmws.markets import filter_live, iso, parse_time
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


async def record_replay(
    replay: Replay, config_path: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> RunOutcome:
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
    outcome = await run_recorder(
        config, stop=stop, on_ready=lambda recorder, _: recorders.append(recorder), clock=clock
    )
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

    def _verify(self, book: BookState, expected: Any, **options: Any) -> str:
        before = self.counters.verified
        status = super()._verify(book, expected, **options)
        if self.counters.verified > before:
            self.verified_hashes.add((book.asset_id, str(expected)))
        return status


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


def test_old_windows_replayed_with_shift_to_are_recorded_by_pmws_run(tmp_path: Path, sim: Any) -> None:
    """`--shift-to`: a recorder whose clock is 5 h on (every recorded 1h/4h window has ended by then)
    records the replay all the same, frames unchanged, the tokens' end times moved by the shift."""
    first, _ = record(run_config(tmp_path, sim, **recorder_sections(FIRST)), 3, sim=sim)
    assert first.error is None
    sim.stop()
    later = timedelta(hours=5)

    def clock() -> datetime:
        return datetime.now(UTC) + later

    async def main() -> tuple[RunOutcome, list[Any], list[Any], int]:
        replay = build_replay([FIRST], speed="max", shift_to=iso(clock()))
        await replay.start()
        try:
            path = run_config(tmp_path, Endpoints(replay), **recorder_sections(SECOND))
            outcome = await record_replay(replay, path, clock=clock)
            archived = filter_live(replay.catalog.gamma_markets(), clock()).markets  # as recorded: all ended
            moved = filter_live(replay.catalog.gamma_markets(shift_ns=replay.shift_ns), clock()).markets
            return outcome, archived, moved, replay.shift_ns
        finally:
            await replay.stop()

    second, archived, moved, shift_ns = asyncio.run(main())
    assert second.error is None
    assert archived == [] and len(moved) == len(replay_markets(FIRST)) > 0
    assert abs(shift_ns / 1e9 - later.total_seconds()) < 60
    before, after = market_payloads(FIRST), market_payloads(SECOND)
    assert len(before) > 50 and after == before
    first_ends, second_ends = end_times(FIRST), end_times(SECOND)
    assert set(first_ends) == set(second_ends)
    for token, end in first_ends.items():
        assert parse_time(second_ends[token]) - parse_time(end) == timedelta(microseconds=shift_ns // 1000)


def tracked(root: Path) -> list[dict[str, Any]]:
    """Every `tokens_tracked` entry of the recording's envelopes."""
    return [t for r in ws_lines(root) for t in r.get("tokens_tracked") or []]


def replay_markets(root: Path) -> set[str]:
    return {t["market_slug"] for t in tracked(root)}


def end_times(root: Path) -> dict[str, str]:
    """token → the end time the recording's envelopes give it."""
    return {t["token_id"]: t["end_time_utc"] for t in tracked(root)}
