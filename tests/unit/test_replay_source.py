"""The replay's archive source (`pmws.read` underneath): receive order across hourly files, bounded memory."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from pmws.envelope import ConnectionContext, TrackedToken, build_envelope
from pmws.read.sources import ArchiveFile
from pmws.replay.source import open_replay_archives, replay_records, scan_metadata
from pmws.rotation import archive_name

FILES, LINES, PAD = 30, 1500, "x" * 400  # ~0.6 MB of lines per file, ~18 MB in all
HOUR = 3600
START = 1_796_090_400  # 2026-12-01T01:00:00Z


def write_hours(root: Path) -> list[Path]:
    """FILES hourly files of one session, LINES records each, one after the other in time, as `pmws run`
    names them."""
    paths = []
    for hour in range(FILES):
        name = archive_name(root, "ws_raw", "20261201T010000Z-aaaaaa", START + hour * HOUR, HOUR)
        name.final.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(name.final, "wb", compresslevel=1) as fh:
            for i in range(LINES):
                at = (START + hour * HOUR) * 1_000_000_000 + i * 1000
                fh.write(orjson.dumps({"record_type": "lifecycle", "at_ns": at, "pad": PAD}) + b"\n")
        paths.append(name.final)
    return paths


def test_a_long_archive_is_read_in_order_holding_few_files_open(tmp_path: Path) -> None:
    write_hours(tmp_path / "rec")
    problems: list[str] = []
    tracemalloc.start()
    try:
        count, last = 0, -1
        for record in replay_records(open_replay_archives([tmp_path / "rec"]), on_problem=problems.append):
            assert record.received_ns > last
            count, last = count + 1, record.received_ns
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == FILES * LINES
    assert peak < 6_000_000, f"{peak / 1e6:.1f} MB held: every file was opened at once"
    assert len(problems) == FILES and all("no manifest" in text for text in problems)  # named, still read


def test_metadata_comes_from_a_manifest_that_lists_the_tokens_without_reading_the_file() -> None:
    """A remote archive is streamed once: a ws_raw file whose manifest lists the period's tokens is not read
    for Gamma's catalog; one without (a salvaged file, an older archive) and REST files still are."""
    up = {
        "market_slug": "btc-updown-5m-1",
        "condition_id": "C",
        "token_id": "U",
        "outcome": "Up",
        "end_time_utc": "E",
    }
    down = {**up, "token_id": "D", "outcome": "Down"}
    frame = build_envelope(
        b'{"event_type":"book","asset_id":"D","market":"C","bids":[],"asks":[],"hash":"h","timestamp":"1"}',
        binary=False,
        context=ConnectionContext("S", 1, "ws://x", (TrackedToken(**down),)),
        received_ns=1,
        message_sequence=1,
        global_sequence=1,
    )[0]
    summary = {"asset_id": "U", "min_order_size": "5", "neg_risk": False}
    checkpoint = orjson.dumps(
        {"record_type": "rest_checkpoint", "response": {"raw_response_json": [summary]}}
    )
    contents = {"listed": [b"never read"], "older": [frame], "rest": [checkpoint + b"\n"]}
    files = [
        ArchiveFile("listed", "ws_raw", "S", 0, 1, {"tokens_tracked": [up, down]}),
        ArchiveFile("older", "ws_raw", "S", 3600, 1, {"counters": {}}),
        ArchiveFile("rest", "rest_checkpoints", "S", 0, 1, {"tokens_tracked": []}),
    ]
    read: list[str] = []

    def lines(item: ArchiveFile, on_chunk: Any) -> Iterator[bytes]:
        read.append(item.path)
        yield from contents[item.path]

    metadata = scan_metadata(files, lines=lines)
    assert read == ["older", "rest"]
    assert sorted(t["token_id"] for t in metadata.tracked) == ["D", "D", "U"]
    assert metadata.summaries == [summary]
