"""The replay's archive source: receive order across files, in bounded memory."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import orjson

from pmws.replay.source import iter_records

FILES, LINES, PAD = 30, 1500, "x" * 400  # ~0.6 MB of lines per file, ~18 MB in all


def write_hours(root: Path) -> list[Path]:
    """FILES consecutive files of LINES records each, one after the other in time (like hourly files)."""
    paths = []
    for hour in range(FILES):
        path = root / f"polymarket_ws_raw_s_{hour:02d}.jsonl.gz"
        with gzip.open(path, "wb", compresslevel=1) as fh:
            for i in range(LINES):
                at = (hour * LINES + i) * 1000
                fh.write(orjson.dumps({"record_type": "lifecycle", "at_ns": at, "pad": PAD}) + b"\n")
        paths.append(path)
    return paths


def test_a_long_archive_is_merged_in_order_holding_few_files_open(tmp_path: Path) -> None:
    paths = write_hours(tmp_path)
    tracemalloc.start()
    try:
        count, last = 0, -1
        for record in iter_records(reversed(paths), on_problem=lambda text: None):
            assert record.received_ns > last
            count, last = count + 1, record.received_ns
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == FILES * LINES
    assert peak < 6_000_000, f"{peak / 1e6:.1f} MB held: every file was opened at once"
