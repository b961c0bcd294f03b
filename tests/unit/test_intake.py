"""The Intake: frames stamped and sequenced as read, enveloped and handed over together, in read order.

At a low rate a frame processed on its own costs about three times what it costs among others (issue 14);
the hand-over waits `websocket.handoff_batch_ms`, the receive stamp never does.
"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from pmws.config import Config, Websocket
from pmws.continuous import Recorder
from pmws.envelope import ConnectionContext
from pmws.errors import ArchiveError
from pmws.feed import Intake, Link, Sequencer
from pmws.pool import LinkPool
from pmws.protocol import Classified
from pmws.rotation import manifest_path_for
from tests.conftest import TIME_FACTOR
from tests.unit.test_recorder import Quiet

BOOK = '{"event_type":"book","asset_id":"A","market":"M","bids":[],"asks":[],"hash":"h","timestamp":"1"}'
DELAY = 0.05 * TIME_FACTOR


class Handed(Quiet):
    """A frame handler that keeps what it is handed (and refuses while `refuse` is set)."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.refuse = False

    def on_envelope(
        self, line: bytes, classified: Classified, received_ns: int, global_sequence: int
    ) -> None:
        if self.refuse:
            raise ArchiveError("disk full")
        self.lines.append(orjson.loads(line))


def link(handler: Any, slot: int, intake: Intake) -> Link:
    """A link that never connects, with a context as if subscribed."""
    made = Link(
        slot=slot,
        url="ws://127.0.0.1:9",
        tokens=(),
        settings=Websocket(),
        handler=handler,
        sequencer=Sequencer(),
        session_id="S",
        stop=asyncio.Event(),
        intake=intake,
    )
    made.context = ConnectionContext("S", slot, "ws://127.0.0.1:9", ())
    return made


def add(intake: Intake, to: Link, stamp: int, global_sequence: int, text: bytes | str = BOOK) -> None:
    assert to.context is not None
    intake.add(to, text, stamp, global_sequence, global_sequence, to.context)


def test_frames_keep_their_read_stamps_and_order_and_are_handed_over_together() -> None:
    async def run() -> tuple[int, list[dict[str, Any]], float | None]:
        handler = Handed()
        intake = Intake(handler, delay=DELAY)
        first, second = link(handler, 1, intake), link(handler, 2, intake)
        add(intake, first, 1_000, 1)
        add(intake, second, 2_000, 2, "PONG")
        add(intake, first, 3_000, 3)
        before = len(handler.lines)  # nothing handed over yet
        await asyncio.sleep(DELAY * 4)  # the intake's timer hands them over, nobody asked
        return before, handler.lines, first.last_data_monotonic

    before, lines, last_data = asyncio.run(run())
    assert before == 0
    assert [(r["global_message_sequence"], r["received_at_ns"]) for r in lines] == [
        (1, 1_000),
        (2, 2_000),
        (3, 3_000),
    ]
    assert [r["connection_sequence"] for r in lines] == [1, 2, 1] and lines[1]["frame_shape"] == "control"
    assert last_data is not None


def test_every_link_of_a_pool_shares_the_pool_intake_even_while_it_is_empty() -> None:
    """A flush before a REST comparison or a record must reach the frames of every link (an empty Intake is
    falsy: a link that made its own when handed an empty one kept frames the pool's flush never saw)."""

    async def run() -> tuple[list[bool], int, int]:
        handler = Handed()
        pool = LinkPool(
            url="ws://127.0.0.1:9", settings=Websocket(), handler=handler, session_id="S", stop_timeout=1
        )
        links = [pool.start(slot, ()) for slot in (0, 1)]
        for made in links:
            made.context = ConnectionContext("S", made.slot, made.url, ())
        add(links[0].intake, links[0], 1_000, 1)
        add(links[1].intake, links[1], 2_000, 2)
        queued = len(pool.intake)
        pool.intake.flush()
        for task in pool.tasks.values():
            task.cancel()
        return [made.intake is pool.intake for made in links], queued, len(handler.lines)

    shared, queued, handed = asyncio.run(run())
    assert shared == [True, True] and queued == 2 and handed == 2


def test_a_full_intake_a_flush_or_no_delay_hands_over_at_once() -> None:
    async def run() -> list[int]:
        handler = Handed()
        seen = []
        full = Intake(handler, delay=3600, max_frames=2)
        one = link(handler, 1, full)
        add(full, one, 1, 1)
        seen.append(len(handler.lines))
        add(full, one, 2, 2)  # the second of max_frames: handed over now
        seen.append(len(handler.lines))
        add(full, one, 3, 3)
        full.flush()
        seen.append(len(handler.lines))
        at_once = Intake(handler, delay=0)
        add(at_once, link(handler, 2, at_once), 4, 4)
        seen.append(len(handler.lines))
        return seen

    assert asyncio.run(run()) == [0, 2, 3, 4]


def test_a_refused_frame_stays_queued_and_its_error_is_raised_again() -> None:
    async def run() -> tuple[BaseException | None, int, list[int]]:
        handler = Handed()
        handler.refuse = True
        intake = Intake(handler, delay=DELAY)
        one = link(handler, 1, intake)
        add(intake, one, 1, 1)
        add(intake, one, 2, 2)
        await asyncio.sleep(DELAY * 4)  # the timed hand-over fails: kept for the receive loop to raise
        error, queued = intake.error, len(intake)
        with pytest.raises(ArchiveError):
            intake.flush()
        handler.refuse = False
        intake.flush()
        return error, queued, [r["global_message_sequence"] for r in handler.lines]

    error, queued, handed = asyncio.run(run())
    assert isinstance(error, ArchiveError) and queued == 2 and handed == [1, 2]


def test_a_record_is_written_after_every_frame_read_before_it(tmp_path: Path) -> None:
    """`pmws run`: a lifecycle record never overtakes frames still waiting in the intake."""
    config = Config()
    config.run.output_dir, config.run.manifest_dir = str(tmp_path / "rec"), str(tmp_path / "man")

    async def run() -> None:
        recorder = Recorder(config, stop=asyncio.Event(), session_id="S")
        recorder.ws.roll_if_due()
        one = link(recorder, 1, recorder.pool.intake)
        now = recorder.ws.current.start_ns if recorder.ws.current else 0
        for stamp in (now + 1, now + 2):  # read: stamped and sequenced, still in the intake
            add(recorder.pool.intake, one, stamp, recorder.pool.sequencer.next_message())
        recorder.write_record({"record_type": "lifecycle", "event": "probe"}, now + 3)
        await recorder.ws.close()
        await recorder.rest_archive.close()

    asyncio.run(run())
    (archive,) = (tmp_path / "rec").rglob("*ws_raw*.jsonl.gz")
    records = [orjson.loads(line) for line in gzip.decompress(archive.read_bytes()).splitlines()]
    order = [r.get("global_message_sequence") or r.get("event") for r in records]
    assert order.index(1) < order.index(2) < order.index("probe")
    probe = next(r for r in records if r.get("event") == "probe")
    assert probe["after_global_message_sequence"] == 2


def test_a_failed_timed_hand_over_ends_supervision_of_a_run(tmp_path: Path) -> None:
    """The run's supervision sees a hand-over that failed on the intake's timer (no frame may follow)."""
    config = Config()
    config.run.output_dir, config.run.manifest_dir = str(tmp_path / "rec"), str(tmp_path / "man")

    async def run() -> tuple[object, object]:
        recorder = Recorder(config, stop=asyncio.Event(), session_id="S")
        healthy = recorder.archive_error()
        recorder.pool.intake.error = ArchiveError("disk full")
        return healthy, recorder.archive_error()

    healthy, failed = asyncio.run(run())
    assert healthy is None and isinstance(failed, ArchiveError) and str(failed) == "disk full"


def test_a_rotation_inside_a_hand_over_counts_each_frame_in_the_file_that_holds_it(tmp_path: Path) -> None:
    """Frames of one hand-over on both sides of an hour's end: each manifest counts its own file's frames
    (the counters tallied during the hand-over are settled before the old file's manifest is written)."""
    config = Config()
    config.run.output_dir, config.run.manifest_dir = str(tmp_path / "rec"), str(tmp_path / "man")

    async def run() -> None:
        recorder = Recorder(config, stop=asyncio.Event(), session_id="S")
        recorder.ws.roll_if_due()
        assert recorder.ws.current is not None
        end = recorder.ws.current.end_ns
        one = link(recorder, 1, recorder.pool.intake)
        for stamp in (end - 3, end - 2, end - 1, end + 1, end + 2):  # one hand-over: 3 before, 2 after
            add(recorder.pool.intake, one, stamp, recorder.pool.sequencer.next_message())
        recorder.pool.intake.flush()
        await recorder.ws.close()
        await recorder.rest_archive.close()

    asyncio.run(run())
    manifests = sorted((tmp_path / "man").rglob("*ws_raw*.json"))
    counted = [orjson.loads(m.read_bytes()) for m in manifests]
    assert [(m["frames"], m["counters"]["frames"]) for m in counted] == [(3, 3), (2, 2)]
    newer = max((tmp_path / "rec").rglob("*ws_raw*.jsonl.gz"))
    records = [orjson.loads(line) for line in gzip.decompress(newer.read_bytes()).splitlines()]
    order = [
        r.get("global_message_sequence") or ("after", r["after_global_message_sequence"]) for r in records
    ]
    assert order[-2:] == [4, 5] and set(order[:-2]) == {("after", 3)}  # its first lines come after frame 3


def test_when_the_last_hours_close_failed_shutdown_still_closes_the_current_files(tmp_path: Path) -> None:
    """The previous file's manifest cannot be written (a full or failing disk): the current hour's file,
    healthy, is still closed in full at shutdown (every frame read, its final name), not left `.open`."""
    config = Config()
    config.run.output_dir, config.run.manifest_dir = str(tmp_path / "rec"), str(tmp_path / "man")
    config.run.verify_book_hashes = False

    async def run() -> tuple[list[str], BaseException | None]:
        recorder = Recorder(config, stop=asyncio.Event(), session_id="S")
        recorder.ws.roll_if_due()
        recorder.rest_archive.roll_if_due()
        assert recorder.ws.current is not None
        end, first = recorder.ws.current.end_ns, recorder.ws.current.name.final
        manifest_path_for(Path(config.run.manifest_dir), first).mkdir(parents=True)  # cannot be written
        one = link(recorder, 1, recorder.pool.intake)
        for stamp in (end - 2, end - 1, end + 1, end + 2):  # two in the old hour, two in the new one
            add(recorder.pool.intake, one, stamp, recorder.pool.sequencer.next_message())
        recorder.pool.intake.flush()
        await asyncio.sleep(0.5 * TIME_FACTOR)  # the old file's background close fails meanwhile
        add(recorder.pool.intake, one, end + 3, recorder.pool.sequencer.next_message())  # still queued
        errors: list[str] = []
        for archive in (recorder.ws, recorder.rest_archive):
            try:
                await archive.close()
            except ArchiveError as exc:
                errors.append(str(exc))
        return errors, recorder.pool.intake.error

    errors, _ = asyncio.run(run())
    assert errors  # the failure is still raised at shutdown
    rec = tmp_path / "rec"
    assert sorted(rec.rglob(".*.open")) == []  # nothing left for a salvage to guess at
    manifests = [m for m in (tmp_path / "man").rglob("*ws_raw*.json") if m.is_file()]
    (current,) = [
        p for p in rec.rglob("*ws_raw*.jsonl.gz") if f"{p.name}.manifest.json" in {m.name for m in manifests}
    ]
    assert len(manifests) == 1  # the old hour's could not be written
    records = [orjson.loads(line) for line in gzip.decompress(current.read_bytes()).splitlines()]
    frames = [r for r in records if r.get("record_type") == "ws_frame"]
    assert [r["received_at_ns"] - frames[0]["received_at_ns"] for r in frames] == [0, 1, 2]  # the new hour's


def test_a_burst_of_new_market_events_asks_for_one_discovery_not_one_each(tmp_path: Path) -> None:
    config = Config()
    config.run.output_dir, config.run.manifest_dir = str(tmp_path / "rec"), str(tmp_path / "man")
    config.run.rediscover_interval_seconds = 1.0  # events may not ask for more than one per second then

    async def run() -> int:
        recorder = Recorder(config, stop=asyncio.Event(), session_id="S")
        calls = 0

        async def discover_once(_: Any) -> list[Any]:
            nonlocal calls
            calls += 1
            return []

        async def apply(_: Any) -> None:
            pass

        recorder.discover_once = discover_once  # type: ignore[method-assign]
        recorder.apply = apply  # type: ignore[method-assign]
        loop = asyncio.create_task(recorder.discovery_loop(None))  # type: ignore[arg-type]
        for _ in range(150):  # new_market events, every 10 ms for 1.5 s
            recorder.rediscover_now.set()
            await asyncio.sleep(0.01)
        recorder.stop.set()
        await loop
        return calls

    assert asyncio.run(run()) <= 2
