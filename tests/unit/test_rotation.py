"""Archive naming and salvage of cut gzip files."""

from __future__ import annotations

import zlib
from pathlib import Path

from pmws.archive.reader import iter_gzip_lines, salvage_lines
from pmws.archive.writer import GzipJsonlFile
from pmws.rotation import archive_name, final_name_of_open, period_start


def test_hourly_names_and_partitions() -> None:
    start = period_start(1_790_000_123.5, 3600)
    assert start == 1_789_999_200
    name = archive_name(Path("root"), "ws_raw", "S", start, 3600)
    assert name.final == Path("root/ws_raw/date=2026-09-21/hour=14/polymarket_ws_raw_S_20260921T14.jsonl.gz")
    assert name.open.name == ".polymarket_ws_raw_S_20260921T14.jsonl.gz.open"
    assert final_name_of_open(name.open) == name.final


def test_sub_hour_periods_carry_seconds() -> None:
    name = archive_name(Path("r"), "rest_checkpoints", "S", 1_790_000_005, 5)
    assert name.final.name == "polymarket_rest_checkpoints_S_20260921T141325.jsonl.gz"


def test_a_killed_writer_leaves_everything_before_its_last_sync_flush(tmp_path: Path) -> None:
    final = tmp_path / "a.jsonl.gz"
    writer = GzipJsonlFile(final, open_path=tmp_path / ".a.jsonl.gz.open")
    writer.write_lines([b'{"n":1}\n', b'{"n":2}\n'], sync_flush=True)
    writer.write_lines([b'{"n":3}\n'], sync_flush=False)  # never flushed: lost with the process
    writer.abandon()  # as if killed: no gzip trailer
    lines, _, problem = salvage_lines(tmp_path / ".a.jsonl.gz.open")
    assert lines == [b'{"n":1}\n', b'{"n":2}\n']
    assert problem and "cut" in problem


def test_salvage_stops_at_corruption_but_keeps_the_prefix(tmp_path: Path) -> None:
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    good = deflate.compress(b'{"n":1}\n{"n":2}\n') + deflate.flush(zlib.Z_SYNC_FLUSH)
    path = tmp_path / ".x.open"
    path.write_bytes(good + b"\xff" * 64)
    lines, _, problem = salvage_lines(path)
    assert lines == [b'{"n":1}\n', b'{"n":2}\n'] and problem


def test_closed_file_reads_back_strictly(tmp_path: Path) -> None:
    writer = GzipJsonlFile(tmp_path / "b.jsonl.gz", open_path=tmp_path / ".b.open")
    writer.write_lines([b"x\n", b"y\n"], sync_flush=True)
    summary = writer.close()
    assert not (tmp_path / ".b.open").exists()
    assert list(iter_gzip_lines(summary.path)) == [b"x", b"y"] and summary.lines == 2
