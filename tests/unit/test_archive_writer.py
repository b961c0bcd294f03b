"""The async writer: bounded memory (backpressure), periodic sync flush, errors surfaced to the receiver."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
import tracemalloc
from pathlib import Path

import pytest

from pmws.archive.digest import Hasher, local_digests
from pmws.archive.reader import iter_gzip_lines, iter_gzip_rows
from pmws.archive.writer import ArchiveWriter, GzipJsonlFile, LatencyStats
from pmws.errors import ArchiveError
from tests.conftest import TIME_FACTOR


class SlowFile(GzipJsonlFile):
    """A disk that takes 50 ms per batch."""

    def write_lines(self, lines: list[bytes], *, sync_flush: bool) -> None:
        time.sleep(0.05)
        super().write_lines(lines, sync_flush=sync_flush)


class FullDisk(GzipJsonlFile):
    def write_lines(self, lines: list[bytes], *, sync_flush: bool) -> None:
        raise ArchiveError(f"{self.path}: write failed (No space left on device)")


def test_a_slow_disk_blocks_the_receiver_instead_of_growing_memory(tmp_path: Path) -> None:
    async def main() -> tuple[int, list[bytes]]:
        writer = ArchiveWriter(
            SlowFile(tmp_path / "a.jsonl.gz"), flush_interval=0.01, max_buffered_bytes=300_000
        )
        peak = 0
        line = b"x" * 999 + b"\n"
        for _ in range(3000):  # 3 MB through a 300 kB bound
            writer.append(line)
            peak = max(peak, writer.buffered_bytes)
            await writer.wait_for_room()
        summary = await writer.close()
        return peak, list(iter_gzip_lines(summary.path))

    peak, lines = asyncio.run(main())
    assert peak <= 300_000 + 1000
    assert len(lines) == 3000


def test_lines_become_readable_within_the_flush_interval(tmp_path: Path) -> None:
    async def main() -> int:
        writer = ArchiveWriter(
            GzipJsonlFile(tmp_path / "b.jsonl.gz", open_path=tmp_path / ".b.open"), flush_interval=0.1
        )
        writer.append(b'{"n":1}\n')
        await asyncio.sleep(0.3 * TIME_FACTOR)
        from pmws.archive.reader import salvage_lines

        readable, _, _ = salvage_lines(tmp_path / ".b.open")
        await writer.close()
        return len(readable)

    assert asyncio.run(main()) == 1


def test_a_write_error_reaches_the_receiver(tmp_path: Path) -> None:
    async def main() -> None:
        writer = ArchiveWriter(FullDisk(tmp_path / "c.jsonl.gz"), flush_interval=0.01)
        writer.append(b"x\n")
        await asyncio.sleep(0.1 * TIME_FACTOR)
        try:
            with pytest.raises(ArchiveError, match="No space left"):
                writer.append(b"y\n")
            with pytest.raises(ArchiveError, match="No space left"):
                await writer.close()
        finally:
            writer.file.abandon()

    asyncio.run(main())


def test_never_overwrites_an_existing_archive(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl.gz").write_bytes(b"precious")
    with pytest.raises(ArchiveError, match="refusing to overwrite"):
        GzipJsonlFile(tmp_path / "d.jsonl.gz")
    assert (tmp_path / "d.jsonl.gz").read_bytes() == b"precious"


def test_one_read_digests_the_whole_file_even_past_a_corrupt_spot(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    pads = (hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(100_000))
    lines = [b'{"n":%d,"pad":"%s"}' % (i, pad) for i, pad in enumerate(pads)]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * (1 << 20)  # several read chunks
    spot = len(data) // 3
    data[spot : spot + 4096] = bytes(4096)  # early damage: the chunks after it must still be digested
    path.write_bytes(bytes(data))
    hasher = Hasher(with_md5=True)
    with pytest.raises(ArchiveError, match="corrupt gzip"):
        for _ in iter_gzip_rows(path, on_chunk=hasher):
            pass
    assert hasher.digests() == local_digests(path)  # every byte seen, though decoding stopped early


def test_latency_samples_cost_fixed_memory_and_percentiles_cover_the_most_recent() -> None:
    """A long run must not grow: the samples live in a ring allocated once, not one object per sample."""
    stats = LatencyStats(max_samples=10_000)
    assert stats.percentile(0.5) is None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for batch in range(30):
            stats.add([batch + i / 1_000 for i in range(1_000)])  # 30 000 samples through a ring of 10 000
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, grown  # a deque of floats: ~320 kB for 10 000 kept samples
    assert len(stats.samples_ms) == 10_000
    assert stats.percentile(0.0) == 20.0 and stats.percentile(0.99) == 29.9  # only the last 10 000
