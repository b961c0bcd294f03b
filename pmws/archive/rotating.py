"""Hourly (configurable) rotating archives with hidden `.open` names and per-file manifests.

A period's file is chosen by each line's receive time, so a file holds exactly its period. Closing happens
in the background: flush, fsync, rename, then the manifest (`pmws.manifest.FileManifest`). What a kill
leaves behind (`.open` orphans, closed files without a manifest) is recovered by `pmws.archive.salvage`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmws.archive.files import write_file_manifest
from pmws.archive.writer import ArchiveWriter, FileSummary, GzipJsonlFile, LatencyStats
from pmws.config import Archive
from pmws.errors import ArchiveError, PmwsError
from pmws.manifest import Counts, FileManifest, file_manifest
from pmws.rotation import ArchiveName, archive_name, manifest_path_for, period_start


@dataclass(kw_only=True)
class Period(Counts):
    """One archive file being written and what it holds so far (its line counts: `Counts`)."""

    name: ArchiveName
    writer: ArchiveWriter
    counters_at_open: dict[str, int]
    start_ns: int = 0  # the period's bounds, [start_ns, end_ns)
    end_ns: int = 0
    # taken when the period ends, not when its close finishes: the next file's frames are not counted here
    counters_at_close: dict[str, int] | None = None
    facts_at_close: dict[str, Any] = field(default_factory=dict)


class RotatingArchive:
    """One stream (ws_raw or rest_checkpoints) split into period files, each with its manifest."""

    def __init__(
        self,
        kind: str,
        *,
        root: Path,
        manifest_dir: Path,
        session_id: str,
        interval: int,
        settings: Archive,
        counters: Callable[[], dict[str, int]],
        on_open: Callable[[RotatingArchive], None] | None = None,
        shard: str | None = None,
        latency: LatencyStats | None = None,
        at_close: Callable[[], dict[str, Any]] | None = None,
    ):
        self.kind = kind
        self.root = root
        self.manifest_dir = manifest_dir
        self.session_id = session_id
        self.interval = interval
        self.settings = settings
        self.counters = counters
        self.on_open = on_open
        self.shard = shard
        self.latency = latency
        self.at_close = at_close  # state worth keeping as it stood when the file closed (not a delta)
        self.current: Period | None = None
        self.closed_files: list[FileManifest] = []
        self.errors: list[str] = []
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def current_open_path(self) -> Path | None:
        return self.current.name.open if self.current else None

    def append(
        self,
        line: bytes,
        received_ns: int,
        *,
        sequence: int | None = None,
        events: tuple[str, ...] = (),
        record_type: str = "ws_frame",
    ) -> None:
        """Write a line into the file of its period (rolling over first if the period ended)."""
        self.roll_if_due(received_ns)
        period = self.current
        assert period is not None
        period.writer.append(line, received_ns)
        if period.first_ns is None:
            period.first_ns = received_ns
        period.last_ns = received_ns
        period.records[record_type] += 1
        if sequence is not None:
            period.frames += 1
            if period.first_sequence is None:
                period.first_sequence = sequence
            period.last_sequence = sequence
            for event in events:
                period.events[event] += 1

    def roll_if_due(self, now_ns: int | None = None) -> bool:
        """Open the next period's file if the current one has ended (or none is open)."""
        if self.errors:
            raise ArchiveError(self.errors[0])
        now_ns = time.time_ns() if now_ns is None else now_ns
        current = self.current
        # A time before the open period's start (the wall clock stepped back, NTP) stays in the open
        # period: an earlier period is never reopened, and rotation never stops the recorder.
        if current is not None and now_ns < current.end_ns:  # per line: one compare
            return False
        start = period_start(now_ns / 1e9, self.interval)
        old = self.current
        counters = self.counters()
        if old is not None:
            self._end(old, counters)
        name = self._free_name(start)
        writer = ArchiveWriter(
            GzipJsonlFile(name.final, open_path=name.open, compresslevel=self.settings.compresslevel),
            flush_interval=self.settings.flush_interval_seconds,
            max_buffered_bytes=self.settings.max_buffered_bytes,
            latency=self.latency,
        )
        self.current = Period(
            name=name,
            writer=writer,
            counters_at_open=counters,
            start_ns=start * 10**9,
            end_ns=(start + self.interval) * 10**9,
        )
        if old is not None:
            task = asyncio.create_task(self._close(old, rotated_to=name.final.name))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if self.on_open is not None:
            self.on_open(self)
        return True

    def _free_name(self, start: int) -> ArchiveName:
        """The period's name, or `…-<n>.jsonl.gz` when that one is taken (never overwrite, never fail)."""
        attempt = 0
        while True:
            name = archive_name(self.root, self.kind, self.session_id, start, self.interval, attempt=attempt)
            taken = (name.final, name.open, manifest_path_for(self.manifest_dir, name.final))
            if not any(p.exists() for p in taken):
                return name
            attempt += 1

    async def wait_for_room(self) -> None:
        if self.current is not None:
            await self.current.writer.wait_for_room()

    async def close(self) -> None:
        """Close the current file and wait for every background close.

        The current file is closed even when taking the counters fails (they hand queued frames over, which a
        failed earlier close refuses): what its writer holds still reaches the disk, under its final name.
        """
        counters: dict[str, int] | None = None
        if self.current is not None:
            try:
                counters = self.counters()  # queued frames go to the current file, still open
            except PmwsError as exc:
                if str(exc) not in self.errors:
                    self.errors.append(str(exc))
        period, self.current = self.current, None
        if period is not None:
            self._end(period, counters if counters is not None else dict(period.counters_at_open))
            await self._close(period, rotated_to=None)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self.errors:
            raise ArchiveError(self.errors[0])

    def _end(self, period: Period, counters: dict[str, int]) -> None:
        """Freeze what the period's manifest says of the recorder, at the moment the period ends."""
        period.counters_at_close = counters
        period.facts_at_close = self.at_close() if self.at_close else {}

    async def _close(self, period: Period, *, rotated_to: str | None) -> None:
        try:
            summary = await period.writer.close()
            manifest = self._manifest(period, summary, rotated_to=rotated_to)
            write_file_manifest(manifest_path_for(self.manifest_dir, summary.path), manifest)
            self.closed_files.append(manifest)
        except ArchiveError as exc:
            self.errors.append(str(exc))

    def _manifest(self, period: Period, summary: FileSummary, *, rotated_to: str | None) -> FileManifest:
        now = period.counters_at_close if period.counters_at_close is not None else self.counters()
        deltas = {k: v - period.counters_at_open.get(k, 0) for k, v in now.items()}
        return file_manifest(
            kind=self.kind,
            summary=summary,
            root=self.root,
            session_id=self.session_id,
            shard=self.shard,
            period_start=period.name.start,
            interval=self.interval,
            lines=period,
            counters=deltas,
            recovered=False,
            closed_ns=time.time_ns(),
            extra={"rotated_to": rotated_to, **period.facts_at_close},
        )
