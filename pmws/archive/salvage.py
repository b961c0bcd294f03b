"""Recovery at start: salvage `.open` orphans a kill left behind, and repair closed files without a manifest.

Files left `.open` by a killed process are salvaged on start, only once their writer is provably gone (its
session lock is free, see `pmws.lock`): streamed, cut to their last complete line, written under their
final name, manifest `recovered`; the orphan's bytes are kept (renamed `….open.salvaged`), never appended
to and never deleted. Each salvage step can be cut by a kill and is finished on the next start. Closed
archives left without a manifest (a kill between close and manifest, a full manifest disk) are read
strictly (`pmws.archive.digest.scan_archive`) and get a `repaired` manifest.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmws.archive.digest import scan_archive
from pmws.archive.files import closed_archives, read_file_manifest, write_file_manifest
from pmws.archive.reader import SalvageReader, json_object
from pmws.archive.writer import FileSummary, GzipJsonlFile, fsync_dir
from pmws.config import Archive
from pmws.errors import ArchiveError
from pmws.lock import recovery_lock, remove_stale_session_lock, session_gone
from pmws.manifest import Counts, FileManifest, file_manifest
from pmws.rotation import final_name_of_open, manifest_path_for, session_of_name


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

    salvaged: list[FileManifest] = field(default_factory=list)
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
) -> FileManifest:
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
        _rename(temp, final)
        summary = dataclasses.replace(summary, path=final)
        step("renamed")
    if manifest_path.exists():
        manifest = read_file_manifest(manifest_path)
    else:
        manifest = _salvage_manifest(summary, facts, root=root, kept=kept, reader=reader)
        write_file_manifest(manifest_path, manifest)
    step("manifest")
    _rename(open_path, kept)
    step("kept")
    return manifest


def _rename(source: Path, target: Path) -> None:
    """Rename within a directory, durably (the directory is fsynced)."""
    try:
        os.replace(source, target)
    except OSError as exc:
        raise ArchiveError(f"{source}: cannot rename to {target.name} ({exc.strerror or exc})") from exc
    fsync_dir(target.parent)


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
) -> FileManifest:
    salvage_facts = {
        "orphan": str(kept),
        "orphan_bytes": reader.orphan_bytes,
        "stopped_because": reader.problem,
    }
    return facts.manifest(summary, root=root, recovered=True, extra={"salvage": salvage_facts})


def read_strict(path: Path, *, require_json: bool = True) -> tuple[FileSummary, LineFacts]:
    """Read a closed archive to its end (`scan_archive`): complete gzip, every line a JSON object (unless
    not `require_json`, for a salvaged copy that keeps every complete line); else ArchiveError."""
    facts = LineFacts()
    scan = scan_archive(path, check_payloads=False, on_row=facts.add_row)
    if scan.first_not_json is not None and require_json:
        raise ArchiveError(f"{path}: line {scan.first_not_json} is not a JSON object")
    if scan.error is not None:
        raise ArchiveError(scan.error)
    if scan.not_json:
        facts.records["unparseable"] += scan.not_json
    digests = scan.digests
    return FileSummary(path, digests.bytes, digests.sha256, scan.lines, scan.uncompressed_bytes), facts


@dataclass
class RepairResult:
    """What `repair_manifests` did."""

    repaired: list[FileManifest] = field(default_factory=list)
    live: list[Path] = field(default_factory=list)  # its session is live: its writer will write it
    problems: list[str] = field(default_factory=list)  # failed the strict read: left untouched


def missing_manifests(root: Path, manifest_dir: Path) -> list[Path]:
    """Closed archives (`*.jsonl.gz`, not hidden) under root with no manifest in manifest_dir."""
    if not root.is_dir():
        return []
    return [p for p, _ in closed_archives(root) if not manifest_path_for(manifest_dir, p).exists()]


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
        write_file_manifest(manifest_path, manifest)
        result.repaired.append(manifest)


@dataclass
class LineFacts(Counts):
    """What a manifest says about lines, gathered one line at a time (salvage and repair)."""

    session_id: str | None = None
    shard: str | None = None

    def add(self, line: bytes) -> bool:
        """Count one line; False if it is not a JSON object."""
        row = json_object(line)
        if row is None:
            self.records["unparseable"] += 1
            return False
        self.add_row(row)
        return True

    def add_row(self, row: dict[str, Any]) -> None:
        """Count one JSON-object line."""
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

    def manifest(
        self, summary: FileSummary, *, root: Path, recovered: bool, extra: dict[str, Any]
    ) -> FileManifest:
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
            lines=self,
            counters={},
            recovered=recovered,
            closed_ns=time.time_ns(),
            extra=extra,
        )
