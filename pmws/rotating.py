"""Hourly (configurable) rotating archives with hidden `.open` names, per-file manifests and salvage.

A period's file is chosen by each line's receive time, so a file holds exactly its period. Closing happens
in the background: flush, fsync, rename, then the manifest. Files left `.open` by a killed process are
salvaged on start: cut to their last complete line, written under their final name, manifest `recovered`;
the orphan's bytes are kept (renamed `….open.salvaged`), never appended to and never deleted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pmws import __version__
from pmws.archive import ArchiveWriter, FileSummary, GzipJsonlFile, LatencyStats, salvage_lines
from pmws.config import Archive
from pmws.envelope import utc_text
from pmws.errors import ArchiveError
from pmws.manifest import write_manifest
from pmws.rotation import ArchiveName, archive_name, final_name_of_open, manifest_path_for, period_start


@dataclass
class Period:
    """One archive file being written and what it holds so far."""

    name: ArchiveName
    writer: ArchiveWriter
    counters_at_open: dict[str, int]
    first_ns: int | None = None
    last_ns: int | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    frames: int = 0
    events: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    start_ns: int = 0  # the period's bounds, [start_ns, end_ns)
    end_ns: int = 0


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
        self.closed_files: list[dict[str, Any]] = []
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
        if current is not None and current.start_ns <= now_ns < current.end_ns:  # per line: two compares
            return False
        start = period_start(now_ns / 1e9, self.interval)
        if current is not None and current.name.start == start:
            return False
        old = self.current
        name = archive_name(self.root, self.kind, self.session_id, start, self.interval)
        writer = ArchiveWriter(
            GzipJsonlFile(name.final, open_path=name.open, compresslevel=self.settings.compresslevel),
            flush_interval=self.settings.flush_interval_seconds,
            max_buffered_bytes=self.settings.max_buffered_bytes,
            latency=self.latency,
        )
        self.current = Period(
            name, writer, self.counters(), start_ns=start * 10**9, end_ns=(start + self.interval) * 10**9
        )
        if old is not None:
            task = asyncio.create_task(self._close(old, rotated_to=name.final.name))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if self.on_open is not None:
            self.on_open(self)
        return True

    async def wait_for_room(self) -> None:
        if self.current is not None:
            await self.current.writer.wait_for_room()

    async def close(self) -> None:
        """Close the current file and wait for every background close."""
        period, self.current = self.current, None
        if period is not None:
            await self._close(period, rotated_to=None)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self.errors:
            raise ArchiveError(self.errors[0])

    async def _close(self, period: Period, *, rotated_to: str | None) -> None:
        try:
            summary = await period.writer.close()
            manifest = self._manifest(period, summary, rotated_to=rotated_to)
            write_manifest(manifest_path_for(self.manifest_dir, summary.path), manifest)
            self.closed_files.append(manifest)
        except ArchiveError as exc:
            self.errors.append(str(exc))

    def _manifest(self, period: Period, summary: FileSummary, *, rotated_to: str | None) -> dict[str, Any]:
        now = self.counters()
        deltas = {k: v - period.counters_at_open.get(k, 0) for k, v in now.items()}
        return file_manifest(
            kind=self.kind,
            summary=summary,
            root=self.root,
            session_id=self.session_id,
            shard=self.shard,
            period_start=period.name.start,
            interval=self.interval,
            first_ns=period.first_ns,
            last_ns=period.last_ns,
            first_sequence=period.first_sequence,
            last_sequence=period.last_sequence,
            frames=period.frames,
            events=dict(period.events),
            records=dict(period.records),
            counters=deltas,
            recovered=False,
            extra={"rotated_to": rotated_to, **(self.at_close() if self.at_close else {})},
        )


def file_manifest(
    *,
    kind: str,
    summary: FileSummary,
    root: Path,
    session_id: str | None,
    shard: str | None,
    period_start: int | None,
    interval: int | None,
    first_ns: int | None,
    last_ns: int | None,
    first_sequence: int | None,
    last_sequence: int | None,
    frames: int,
    events: dict[str, int],
    records: dict[str, int],
    counters: dict[str, int],
    recovered: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of one closed archive file."""
    return {
        "manifest_version": 1,
        "generator": f"pmws {__version__}",
        "kind": kind,
        "file": summary.path.name,
        "path": str(summary.path),
        "relative_path": os.path.relpath(summary.path, root),
        "bytes": summary.bytes,
        "sha256": summary.sha256,
        "lines": summary.lines,
        "uncompressed_bytes": summary.uncompressed_bytes,
        "session_id": session_id,
        "shard": shard,
        "period_start_utc": utc_text(period_start * 1_000_000_000) if period_start is not None else None,
        "period_seconds": interval,
        "first_received_at_utc": utc_text(first_ns) if first_ns else None,
        "last_received_at_utc": utc_text(last_ns) if last_ns else None,
        "first_global_message_sequence": first_sequence,
        "last_global_message_sequence": last_sequence,
        "frames": frames,
        "events_by_type": events,
        "records_by_type": records,
        "counters": counters,
        "recovered": recovered,
        "closed_at_utc": utc_text(time.time_ns()),
        **(extra or {}),
    }


def find_open_files(root: Path) -> list[Path]:
    """Every hidden `.open` archive under root (left by a killed run)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob(".*.open") if p.is_file())


def salvage(open_path: Path, *, root: Path, manifest_dir: Path, settings: Archive) -> dict[str, Any]:
    """Recover an orphaned `.open` file under its final name with a `recovered` manifest."""
    final = final_name_of_open(open_path)
    if final.exists():
        raise ArchiveError(f"{open_path}: cannot salvage, {final.name} already exists")
    lines, orphan_bytes, problem = salvage_lines(open_path)
    kind = final.relative_to(root).parts[0] if final.is_relative_to(root) else "unknown"
    facts = _facts_of_lines(lines)
    writer = GzipJsonlFile(
        final, open_path=final.with_name(f".{final.name}.salvage"), compresslevel=settings.compresslevel
    )
    if lines:
        writer.write_lines(lines, sync_flush=False)
    summary = writer.close()
    kept = open_path.with_name(open_path.name + ".salvaged")
    os.replace(open_path, kept)
    manifest = file_manifest(
        kind=kind,
        summary=summary,
        root=root,
        session_id=facts["session_id"],
        shard=None,
        period_start=None,
        interval=None,
        first_ns=facts["first_ns"],
        last_ns=facts["last_ns"],
        first_sequence=facts["first_sequence"],
        last_sequence=facts["last_sequence"],
        frames=facts["frames"],
        events=facts["events"],
        records=facts["records"],
        counters={},
        recovered=True,
        extra={"salvage": {"orphan": str(kept), "orphan_bytes": orphan_bytes, "stopped_because": problem}},
    )
    write_manifest(manifest_path_for(manifest_dir, final), manifest)
    return manifest


def _facts_of_lines(lines: list[bytes]) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "session_id": None,
        "first_ns": None,
        "last_ns": None,
        "first_sequence": None,
        "last_sequence": None,
        "frames": 0,
        "events": Counter(),
        "records": Counter(),
    }
    for line in lines:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            facts["records"]["unparseable"] += 1
            continue
        if not isinstance(row, dict):
            continue
        facts["records"][str(row.get("record_type"))] += 1
        facts["session_id"] = facts["session_id"] or row.get("session_id")
        ns = row.get("received_at_ns") or row.get("at_ns")
        if isinstance(ns, int):
            facts["first_ns"] = facts["first_ns"] or ns
            facts["last_ns"] = ns
        seq = row.get("global_message_sequence")
        if row.get("record_type") == "ws_frame" and isinstance(seq, int):
            facts["frames"] += 1
            facts["first_sequence"] = facts["first_sequence"] or seq
            facts["last_sequence"] = seq
            for event in row.get("classified_event_types") or []:
                facts["events"][event] += 1
    facts["events"] = dict(facts["events"])
    facts["records"] = dict(facts["records"])
    return facts
