"""The replay's archive source (`pmws.read` underneath): receive order across hourly files, bounded memory."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import orjson

from pmws.replay.source import open_replay_archives, replay_records
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
