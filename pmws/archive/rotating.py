"""Hourly (configurable) rotating archives with hidden `.open` names, per-file manifests and salvage.

A period's file is chosen by each line's receive time, so a file holds exactly its period. Closing happens
in the background: flush, fsync, rename, then the manifest. Files left `.open` by a killed process are
salvaged on start, only once their writer is provably gone (its session lock is free, see `pmws.lock`):
streamed, cut to their last complete line, written under their final name, manifest `recovered`; the
orphan's bytes are kept (renamed `….open.salvaged`), never appended to and never deleted. Each salvage step
can be cut by a kill and is finished on the next start. Closed archives left without a manifest (a kill
between close and manifest, a full manifest disk) are read strictly and get a `repaired` manifest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pmws import __version__
from pmws.archive.digest import Hasher
from pmws.archive.reader import SalvageReader, iter_gzip_lines
from pmws.archive.writer import ArchiveWriter, FileSummary, GzipJsonlFile, LatencyStats, fsync_dir
from pmws.config import Archive
from pmws.envelope import utc_text
from pmws.errors import ArchiveError
from pmws.lock import recovery_lock, remove_stale_session_lock, session_gone
from pmws.manifest import read_manifest, write_manifest
from pmws.rotation import (
    ArchiveName,
    archive_name,
    final_name_of_open,
    manifest_path_for,
    period_start,
    session_of_name,
)


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
            name, writer, counters, start_ns=start * 10**9, end_ns=(start + self.interval) * 10**9
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
        """Close the current file and wait for every background close."""
        period, self.current = self.current, None
        if period is not None:
            self._end(period, self.counters())
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
            write_manifest(manifest_path_for(self.manifest_dir, summary.path), manifest)
            self.closed_files.append(manifest)
        except ArchiveError as exc:
            self.errors.append(str(exc))

    def _manifest(self, period: Period, summary: FileSummary, *, rotated_to: str | None) -> dict[str, Any]:
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
            first_ns=period.first_ns,
            last_ns=period.last_ns,
            first_sequence=period.first_sequence,
            last_sequence=period.last_sequence,
            frames=period.frames,
            events=dict(period.events),
            records=dict(period.records),
            counters=deltas,
            recovered=False,
            extra={"rotated_to": rotated_to, **period.facts_at_close},
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
    """Every hidden `.open` archive under root (left by a killed run, or being written right now)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob(".*.open") if p.is_file())


#: the steps of one salvage, in order; a kill after any of them is finished by the next start
SALVAGE_STEPS = ("written", "renamed", "manifest", "kept")


@dataclass
class SalvageResult:
    """What one start did with the `.open` files under its root."""

    salvaged: list[dict[str, Any]] = field(default_factory=list)
    live: list[Path] = field(default_factory=list)  # a live writer holds the session: left alone
    problems: list[str] = field(default_factory=list)  # could not be salvaged: left untouched


def salvage_orphans(
    root: Path,
    *,
    manifest_dir: Path,
    settings: Archive,
    on_step: Callable[[str], None] | None = None,
) -> SalvageResult:
    """Salvage every `.open` file under root whose writer is provably gone; leave live ones alone."""
    if not root.exists():
        return SalvageResult()
    with recovery_lock(root):
        return _salvage_orphans(root, manifest_dir=manifest_dir, settings=settings, on_step=on_step)


def _salvage_orphans(
    root: Path,
    *,
    manifest_dir: Path,
    settings: Archive,
    on_step: Callable[[str], None] | None,
) -> SalvageResult:
    result = SalvageResult()
    sessions: set[str] = set()
    for open_path in find_open_files(root):
        session = session_of_name(open_path.name)
        try:  # one unreadable lock file or damaged orphan never stops the others' salvage
            with session_gone(root, session) as gone:
                if not gone:
                    result.live.append(open_path)
                    continue
                if not open_path.exists():  # salvaged by another start meanwhile
                    continue
                result.salvaged.append(
                    salvage(
                        open_path, root=root, manifest_dir=manifest_dir, settings=settings, on_step=on_step
                    )
                )
        except ArchiveError as exc:
            result.problems.append(str(exc))
        if session is not None:
            sessions.add(session)
    for session in sessions:
        remove_stale_session_lock(root, session)
    return result


def salvage(
    open_path: Path,
    *,
    root: Path,
    manifest_dir: Path,
    settings: Archive,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Recover an orphaned `.open` file under its final name with a `recovered` manifest.

    Steps (each redoable): stream the complete lines into a hidden `.salvage` temp and fsync; rename it to
    the final name; write the manifest; rename the orphan to `.open.salvaged`. A start that finds a final
    name next to its `.open` checks it strictly (same lines as the orphan) and finishes the last steps.
    The caller must hold the orphan's session lock (see `salvage_orphans`).
    """
    step = on_step or (lambda _step: None)
    final = final_name_of_open(open_path)
    temp = final.with_name(f".{final.name}.salvage")
    kept = open_path.with_name(open_path.name + ".salvaged")
    manifest_path = manifest_path_for(manifest_dir, final)
    if final.exists():  # an earlier salvage was cut after its rename
        # salvage copies every complete line, JSON or not: check the copy the same way, or it never finishes
        summary, facts = read_strict(final, require_json=False)
        reader = SalvageReader(open_path)
        orphan_lines = sum(block.count(b"\n") for block in reader)
        if orphan_lines != summary.lines:
            raise ArchiveError(
                f"{open_path}: cannot finish salvage, {final.name} holds {summary.lines} lines "
                f"but the orphan has {orphan_lines} complete lines; both left untouched"
            )
    else:
        temp.unlink(missing_ok=True)  # a cut earlier attempt: redo it
        summary, facts, reader = _recover(open_path, temp, settings)
        step("written")
        try:
            os.replace(temp, final)
        except OSError as exc:
            raise ArchiveError(f"{temp}: cannot rename to {final.name} ({exc.strerror or exc})") from exc
        fsync_dir(final.parent)
        summary = dataclasses.replace(summary, path=final)
        step("renamed")
    if manifest_path.exists():
        manifest = read_manifest(manifest_path)
    else:
        manifest = _salvage_manifest(summary, facts, root=root, kept=kept, reader=reader)
        write_manifest(manifest_path, manifest)
    step("manifest")
    try:
        os.replace(open_path, kept)
    except OSError as exc:
        raise ArchiveError(f"{open_path}: cannot rename to {kept.name} ({exc.strerror or exc})") from exc
    fsync_dir(open_path.parent)
    step("kept")
    return manifest


def _recover(open_path: Path, temp: Path, settings: Archive) -> tuple[FileSummary, LineFacts, SalvageReader]:
    """Stream the orphan's complete lines into a new gzip at `temp` (fsynced): bounded memory."""
    reader = SalvageReader(open_path)
    facts = LineFacts()
    writer = GzipJsonlFile(temp, compresslevel=settings.compresslevel)
    try:
        for block in reader:
            lines = block.splitlines(keepends=True)
            for line in lines:
                facts.add(line)
            writer.write_lines(lines, sync_flush=False)
        return writer.close(), facts, reader
    except BaseException:
        writer.abandon()
        raise


def _salvage_manifest(
    summary: FileSummary, facts: LineFacts, *, root: Path, kept: Path, reader: SalvageReader
) -> dict[str, Any]:
    salvage_facts = {
        "orphan": str(kept),
        "orphan_bytes": reader.orphan_bytes,
        "stopped_because": reader.problem,
    }
    return facts.manifest(summary, root=root, recovered=True, extra={"salvage": salvage_facts})


def read_strict(path: Path, *, require_json: bool = True) -> tuple[FileSummary, LineFacts]:
    """Read a closed archive to its end: complete gzip, every line a JSON object (unless not
    `require_json`, for a salvaged copy that keeps every complete line); else ArchiveError."""
    hasher = Hasher(with_md5=False)
    facts = LineFacts()
    lines = uncompressed = 0
    for line in iter_gzip_lines(path, on_chunk=hasher):
        lines += 1
        uncompressed += len(line) + 1
        if not facts.add(line) and require_json:
            raise ArchiveError(f"{path}: line {lines} is not a JSON object")
    digests = hasher.digests()
    return FileSummary(path, digests.bytes, digests.sha256, lines, uncompressed), facts


@dataclass
class RepairResult:
    """What `repair_manifests` did."""

    repaired: list[dict[str, Any]] = field(default_factory=list)
    live: list[Path] = field(default_factory=list)  # its session is live: its writer will write it
    problems: list[str] = field(default_factory=list)  # failed the strict read: left untouched


def missing_manifests(root: Path, manifest_dir: Path) -> list[Path]:
    """Closed archives (`*.jsonl.gz`, not hidden) under root with no manifest in manifest_dir."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*.jsonl.gz")):
        relative = path.relative_to(root).parts
        if any(part.startswith(".") for part in relative) or not path.is_file():
            continue
        if not manifest_path_for(manifest_dir, path).exists():
            found.append(path)
    return found


def repair_manifests(root: Path, manifest_dir: Path) -> RepairResult:
    """Write a `repaired` manifest for each closed archive that has none and whose writer is gone.

    Each is read strictly first (complete gzip, every line a JSON object); one that fails is reported in
    `problems` and left untouched. An archive of a live session is skipped (its writer may be between
    close and manifest).
    """
    result = RepairResult()
    if not root.exists():
        return result
    with recovery_lock(root):
        for path in missing_manifests(root, manifest_dir):
            try:
                _repair_one(path, root, manifest_dir, result)
            except ArchiveError as exc:
                result.problems.append(f"{exc}; no manifest written")
    return result


def _repair_one(path: Path, root: Path, manifest_dir: Path, result: RepairResult) -> None:
    manifest_path = manifest_path_for(manifest_dir, path)
    with session_gone(root, session_of_name(path.name)) as gone:
        if not gone:
            result.live.append(path)
            return
        if manifest_path.exists():
            return
        summary, facts = read_strict(path)
        manifest = facts.manifest(summary, root=root, recovered=False, extra={"repaired": True})
        write_manifest(manifest_path, manifest)
        result.repaired.append(manifest)


class LineFacts:
    """What a manifest says about lines, gathered one line at a time (salvage and repair)."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.shard: str | None = None
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.first_sequence: int | None = None
        self.last_sequence: int | None = None
        self.frames = 0
        self.events: Counter[str] = Counter()
        self.records: Counter[str] = Counter()

    def add(self, line: bytes) -> bool:
        """Count one line; False if it is not a JSON object."""
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.records["unparseable"] += 1
            return False
        if not isinstance(row, dict):
            return False
        self.records[str(row.get("record_type"))] += 1
        self.session_id = self.session_id or row.get("session_id")
        self.shard = self.shard or (row["shard"] if isinstance(row.get("shard"), str) else None)
        ns = row.get("received_at_ns") or row.get("at_ns")
        if isinstance(ns, int):
            self.first_ns = self.first_ns or ns
            self.last_ns = ns
        seq = row.get("global_message_sequence")
        if row.get("record_type") == "ws_frame" and isinstance(seq, int):
            self.frames += 1
            self.first_sequence = self.first_sequence or seq
            self.last_sequence = seq
            for event in row.get("classified_event_types") or []:
                self.events[event] += 1
        return True

    def manifest(
        self, summary: FileSummary, *, root: Path, recovered: bool, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The manifest of a file whose writer is gone, from what its lines say."""
        final = summary.path
        kind = final.relative_to(root).parts[0] if final.is_relative_to(root) else "unknown"
        return file_manifest(
            kind=kind,
            summary=summary,
            root=root,
            session_id=self.session_id or session_of_name(final.name),
            shard=self.shard,
            period_start=None,
            interval=None,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            first_sequence=self.first_sequence,
            last_sequence=self.last_sequence,
            frames=self.frames,
            events=dict(self.events),
            records=dict(self.records),
            counters={},
            recovered=recovered,
            extra=extra,
        )
