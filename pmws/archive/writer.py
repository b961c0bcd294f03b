"""Writing gzip JSONL archives: off the event loop, flushed often, closed atomically.

Writing: lines are buffered on the event loop and handed in batches to one worker thread that
compresses (zlib-ng, which releases the GIL) and writes. Every `flush_interval_seconds` the deflate
stream gets a Z_SYNC_FLUSH, so a killed process leaves a file readable up to its last complete line. A file is
written under its hidden `.open` name (if given), then flushed, fsynced and renamed on close. The
buffer is bounded: when the writer falls behind, `wait_for_room()` blocks the receiver (TCP then
pushes back) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from zlib_ng import zlib_ng as zlib  # zlib's API and gzip format, ~2x faster both ways

from pmws.errors import ArchiveError

#: Hand a batch to the compressor thread once this much is buffered (besides the periodic sync flush):
#: ~400 envelopes per hand-off, so the executor round trip costs little per frame.
WAKE_BYTES = 1024 * 1024


@dataclass
class FileSummary:
    """What a closed archive holds, as its manifest records it."""

    path: Path
    bytes: int
    sha256: str
    lines: int
    uncompressed_bytes: int


class GzipJsonlFile:
    """A gzip member written incrementally; every method may run in a worker thread."""

    def __init__(self, final_path: Path, *, open_path: Path | None = None, compresslevel: int = 7):
        self.final_path = final_path
        self.path = open_path or final_path
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            final_path.parent.mkdir(parents=True, exist_ok=True)
            if final_path.exists():
                raise ArchiveError(f"{final_path}: already exists; refusing to overwrite an archive")
            self._fh = open(self.path, "xb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot create archive ({exc.strerror or exc})") from exc
        self._deflate = zlib.compressobj(compresslevel, zlib.DEFLATED, 31)
        self._sha = hashlib.sha256()
        self.bytes = 0
        self.lines = 0
        self.uncompressed_bytes = 0
        self.closed = False

    def write_lines(self, lines: list[bytes], *, sync_flush: bool) -> None:
        """Compress and write lines; with sync_flush, make them readable on disk now."""
        data = b"".join(lines)
        chunk = self._deflate.compress(data)
        if sync_flush:
            chunk += self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self._write(chunk)
        if sync_flush:
            self._flush_os()
        self.lines += len(lines)
        self.uncompressed_bytes += len(data)

    def close(self) -> FileSummary:
        """Finish the gzip member, fsync, and rename the `.open` file to its final name."""
        if self.closed:
            raise ArchiveError(f"{self.path}: closed twice")
        self._write(self._deflate.flush(zlib.Z_FINISH))
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            if self.path != self.final_path:
                os.replace(self.path, self.final_path)
            fsync_dir(self.final_path.parent)
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot close archive ({exc.strerror or exc})") from exc
        self.closed = True
        return FileSummary(
            self.final_path, self.bytes, self._sha.hexdigest(), self.lines, self.uncompressed_bytes
        )

    def abandon(self) -> None:
        """Close the handle without finishing (after a write error); the file stays for salvage."""
        try:
            self._fh.close()
        except OSError:
            pass
        self.closed = True

    def _write(self, chunk: bytes) -> None:
        if not chunk:
            return
        try:
            self._fh.write(chunk)
        except OSError as exc:
            raise ArchiveError(f"{self.path}: write failed ({exc.strerror or exc})") from exc
        self._sha.update(chunk)
        self.bytes += len(chunk)

    def _flush_os(self) -> None:
        try:
            self._fh.flush()
        except OSError as exc:
            raise ArchiveError(f"{self.path}: write failed ({exc.strerror or exc})") from exc


def fsync_dir(directory: Path) -> None:
    """Persist a rename (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class LatencyStats:
    """Frame-to-disk latency: receive time → the sync flush that made the frame readable on disk.

    Every `every`-th frame is sampled; the most recent `max_samples` are kept in a ring of C doubles allocated
    once, so this costs the same memory from the first frame on (a deque of float objects grew for minutes
    and scattered long-lived objects over the heap, which kept the process's RSS climbing).
    """

    every: int = 8
    max_samples: int = 100_000
    _ring: array[float] = field(init=False, repr=False)
    _added: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._ring = array("d", bytes(8 * self.max_samples))

    def add(self, latencies_ms: list[float]) -> None:
        ring, size, added = self._ring, self.max_samples, self._added
        for value in latencies_ms:
            ring[added % size] = value
            added += 1
        self._added = added

    @property
    def samples_ms(self) -> array[float]:
        """The kept samples, in no particular order once the ring has wrapped."""
        return self._ring[: min(self._added, self.max_samples)]

    def percentile(self, q: float) -> float | None:
        samples = self.samples_ms
        if not samples:
            return None
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ArchiveWriter:
    """Async front of one GzipJsonlFile: bounded buffer, batched writes, periodic sync flush."""

    def __init__(
        self,
        file: GzipJsonlFile,
        *,
        flush_interval: float = 1.0,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        executor: ThreadPoolExecutor | None = None,
        latency: LatencyStats | None = None,
    ):
        self.file = file
        self.flush_interval = flush_interval
        self.max_buffered_bytes = max_buffered_bytes
        self.latency = latency
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmws-gzip")
        self._buffer: list[bytes] = []
        self._buffer_bytes = 0
        self._unsynced_ns: list[int] = []  # sampled receive times not yet made readable on disk
        self._in_flight_bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._error: BaseException | None = None
        self._closing = False
        self._last_sync = time.monotonic()
        self._pump_task = asyncio.create_task(self._pump(), name=f"pmws-writer:{file.final_path.name}")
        self.lines_appended = 0

    @property
    def buffered_bytes(self) -> int:
        return self._buffer_bytes + self._in_flight_bytes

    def append(self, line: bytes, received_ns: int | None = None) -> None:
        """Queue one complete line. Raises the writer's error if writing has failed."""
        if self._error is not None:
            raise ArchiveError(str(self._error))
        if self._closing:
            raise ArchiveError(f"{self.file.path}: append after close")
        self._buffer.append(line)
        self._buffer_bytes += len(line)
        self.lines_appended += 1
        if self.latency is not None and self.lines_appended % self.latency.every == 0:
            self._unsynced_ns.append(received_ns or time.time_ns())
        if self._buffer_bytes >= WAKE_BYTES:
            self._wake.set()
        if self.buffered_bytes >= self.max_buffered_bytes:
            self._room.clear()

    def has_room(self) -> bool:
        """True when `wait_for_room` would return at once (no error, buffer under its bound)."""
        return self._error is None and self._room.is_set()

    async def wait_for_room(self) -> None:
        """Block while the buffer is over its bound (backpressure to the receiver)."""
        while not self._room.is_set():
            if self._error is not None:
                raise ArchiveError(str(self._error))
            await self._room.wait()
        if self._error is not None:
            raise ArchiveError(str(self._error))

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._until_sync())
            except TimeoutError:
                pass
            self._wake.clear()
            if self._closing and not self._buffer:
                return
            sync = time.monotonic() - self._last_sync >= self.flush_interval
            if not self._buffer and not sync:
                continue
            batch = self._take()
            waiting = self._unsynced_ns if sync else []
            if sync:
                self._unsynced_ns = []
            try:
                await loop.run_in_executor(
                    self._executor, partial(self.file.write_lines, batch, sync_flush=sync)
                )
            except BaseException as exc:  # noqa: BLE001 - surfaced to the receiver via append()
                self._error = exc
                self._room.set()
                return
            finally:
                self._in_flight_bytes = 0
            if sync:
                self._last_sync = time.monotonic()
                if self.latency is not None and waiting:
                    now = time.time_ns()
                    self.latency.add([(now - ns) / 1e6 for ns in waiting])
            if self.buffered_bytes < self.max_buffered_bytes:
                self._room.set()

    def _until_sync(self) -> float:
        return max(0.001, self.flush_interval - (time.monotonic() - self._last_sync))

    def _take(self) -> list[bytes]:
        batch = self._buffer
        self._in_flight_bytes = self._buffer_bytes
        self._buffer, self._buffer_bytes = [], 0
        return batch

    async def close(self) -> FileSummary:
        """Write what is buffered, finish the gzip member, rename. Raises ArchiveError on failure."""
        self._closing = True
        self._wake.set()
        await self._pump_task
        loop = asyncio.get_running_loop()
        try:
            if self._error is not None:
                raise ArchiveError(str(self._error))
            if self._buffer:
                batch = self._take()
                await loop.run_in_executor(
                    self._executor, partial(self.file.write_lines, batch, sync_flush=True)
                )
            return await loop.run_in_executor(self._executor, self.file.close)
        except ArchiveError:
            self.file.abandon()
            raise
        finally:
            if self._own_executor:
                self._executor.shutdown(wait=False)
