"""Manifests, typed: `FileManifest` (one rotated archive file) and `SampleManifest` (one `pmws sample`). Pure.

Each has one writer (`to_json`, then `canonical_json`) and one reader (`from_json`); the disk side (atomic
write, read, where an output is) is `pmws.archive.files`. The JSON keeps the keys pmws has always written,
so every manifest on disk reads back: a file without `manifest_version` is version 1, unknown keys are kept
(`extra`) and written back unchanged, and a reader refuses only a version newer than it knows.

    FileManifest   {manifest_version, generator, kind, file, path, relative_path, bytes, sha256, lines,
                    uncompressed_bytes, session_id, shard, period_start_utc, period_seconds,
                    first/last_received_at_utc, first/last_global_message_sequence, frames, events_by_type,
                    records_by_type, counters, recovered, closed_at_utc} + extra (rotated_to, salvage, …)
    SampleManifest {manifest_version, session_id, selection, outputs: [OutputRecord], report_path, gate}
                    + details (checkpoint, counts, connections, rest, …: what the report shows)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pmws import __version__
from pmws.envelope import utc_text
from pmws.errors import ArchiveError

#: the newest manifest layout this pmws writes and reads (a file without the key is version 1)
MANIFEST_VERSION = 1


class Summary(Protocol):
    """What a writer knows of a closed file (`pmws.archive.writer.FileSummary`)."""

    @property
    def path(self) -> Path: ...
    @property
    def bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def lines(self) -> int: ...
    @property
    def uncompressed_bytes(self) -> int: ...


class LineCounts(Protocol):
    """What a file's lines hold, as its writer (`archive.rotating.Period`) or a re-read counted them."""

    @property
    def first_ns(self) -> int | None: ...
    @property
    def last_ns(self) -> int | None: ...
    @property
    def first_sequence(self) -> int | None: ...
    @property
    def last_sequence(self) -> int | None: ...
    @property
    def frames(self) -> int: ...
    @property
    def events(self) -> Mapping[str, int]: ...
    @property
    def records(self) -> Mapping[str, int]: ...


@dataclass
class Counts:
    """LineCounts as plain values (a re-read's tally, or a test's)."""

    first_ns: int | None = None
    last_ns: int | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    frames: int = 0
    events: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)


def canonical_json(data: Any) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _version(data: dict[str, Any], source: str) -> int:
    version = data.get("manifest_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError(f"{source}: manifest_version {version!r} is not a version number")
    if version > MANIFEST_VERSION:
        raise ArchiveError(
            f"{source}: manifest_version {version} is newer than this pmws reads ({MANIFEST_VERSION})"
        )
    return version


def _of(data: dict[str, Any], key: str, kind: type) -> Any:
    """`data[key]` if it has the expected type (a bool is not an int here), else None."""
    value = data.get(key)
    if isinstance(value, bool) and kind is not bool:
        return None
    return value if isinstance(value, kind) else None


def _counts(data: dict[str, Any], key: str) -> dict[str, int]:
    value = data.get(key)
    return dict(value) if isinstance(value, dict) else {}


# --- one rotated archive file --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileManifest:
    """The manifest of one closed archive file (`<manifest_dir>/<file>.manifest.json`)."""

    kind: str
    file: str
    path: str
    relative_path: str
    bytes: int
    sha256: str
    lines: int | None = None
    uncompressed_bytes: int | None = None
    session_id: str | None = None
    shard: str | None = None
    period_start_utc: str | None = None
    period_seconds: int | None = None
    first_received_at_utc: str | None = None
    last_received_at_utc: str | None = None
    first_global_message_sequence: int | None = None
    last_global_message_sequence: int | None = None
    frames: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    records_by_type: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    recovered: bool = False
    closed_at_utc: str | None = None
    generator: str = f"pmws {__version__}"
    manifest_version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # rotated_to, salvage, repaired, state at close…

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "manifest") -> FileManifest:
        """Read any file manifest pmws wrote; ArchiveError (naming `source`) without sha256 and bytes."""
        version = _version(data, source)
        sha, size = _of(data, "sha256", str), _of(data, "bytes", int)
        if sha is None or size is None:
            raise ArchiveError(f"{source} has no sha256/bytes")
        known = {f.name for f in dataclasses.fields(cls)}
        name = str(data.get("file") or "")
        return cls(
            kind=str(data.get("kind") or "unknown"),
            file=name,
            path=str(data.get("path") or ""),
            relative_path=str(data.get("relative_path") or name),
            bytes=size,
            sha256=sha,
            lines=_of(data, "lines", int),
            uncompressed_bytes=_of(data, "uncompressed_bytes", int),
            session_id=_of(data, "session_id", str),
            shard=_of(data, "shard", str),
            period_start_utc=_of(data, "period_start_utc", str),
            period_seconds=_of(data, "period_seconds", int),
            first_received_at_utc=_of(data, "first_received_at_utc", str),
            last_received_at_utc=_of(data, "last_received_at_utc", str),
            first_global_message_sequence=_of(data, "first_global_message_sequence", int),
            last_global_message_sequence=_of(data, "last_global_message_sequence", int),
            frames=_of(data, "frames", int) or 0,
            events_by_type=_counts(data, "events_by_type"),
            records_by_type=_counts(data, "records_by_type"),
            counters=_counts(data, "counters"),
            recovered=data.get("recovered") is True,
            closed_at_utc=_of(data, "closed_at_utc", str),
            generator=str(data.get("generator") or ""),
            manifest_version=version,
            extra={k: v for k, v in data.items() if k not in known},
        )


def file_manifest(
    *,
    kind: str,
    summary: Summary,
    root: Path,
    session_id: str | None,
    shard: str | None,
    period_start: int | None,
    interval: int | None,
    lines: LineCounts,
    counters: dict[str, int],
    recovered: bool,
    closed_ns: int,
    extra: dict[str, Any] | None = None,
) -> FileManifest:
    """The manifest of one closed archive file, from what its writer (or a re-read) counted."""
    return FileManifest(
        kind=kind,
        file=summary.path.name,
        path=str(summary.path),
        relative_path=os.path.relpath(summary.path, root),
        bytes=summary.bytes,
        sha256=summary.sha256,
        lines=summary.lines,
        uncompressed_bytes=summary.uncompressed_bytes,
        session_id=session_id,
        shard=shard,
        period_start_utc=utc_text(period_start * 1_000_000_000) if period_start is not None else None,
        period_seconds=interval,
        first_received_at_utc=utc_text(lines.first_ns) if lines.first_ns else None,
        last_received_at_utc=utc_text(lines.last_ns) if lines.last_ns else None,
        first_global_message_sequence=lines.first_sequence,
        last_global_message_sequence=lines.last_sequence,
        frames=lines.frames,
        events_by_type=dict(lines.events),
        records_by_type=dict(lines.records),
        counters=counters,
        recovered=recovered,
        closed_at_utc=utc_text(closed_ns),
        extra=dict(extra or {}),
    )


# --- one `pmws sample` ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputRecord:
    """A sample manifest's entry for one output file: where it is (as written, and from the manifest)."""

    kind: str
    path: str
    path_from_manifest: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    lines: int | None = None
    uncompressed_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, summary: Summary, *, kind: str, path_from_manifest: str) -> OutputRecord:
        return cls(
            kind=kind,
            path=str(summary.path),
            path_from_manifest=path_from_manifest,
            bytes=summary.bytes,
            sha256=summary.sha256,
            lines=summary.lines,
            uncompressed_bytes=summary.uncompressed_bytes,
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            kind=str(data.get("kind", "?")),
            path=str(data.get("path", "")),
            path_from_manifest=_of(data, "path_from_manifest", str),
            bytes=_of(data, "bytes", int),
            sha256=_of(data, "sha256", str),
            lines=_of(data, "lines", int),
            uncompressed_bytes=_of(data, "uncompressed_bytes", int),
            extra={k: v for k, v in data.items() if k not in known},
        )


#: keys a SampleManifest holds as fields; every other key is a detail, kept as written
_SAMPLE_FIELDS = ("manifest_version", "session_id", "selection", "outputs", "report_path", "gate")


@dataclass(frozen=True)
class SampleManifest:
    """The manifest of one `pmws sample`: what was selected, its outputs, and (once gated) the verdict."""

    session_id: str | None
    outputs: list[OutputRecord]
    selection: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    gate: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)  # checkpoint, counts, connections, rest, …
    manifest_version: int = MANIFEST_VERSION

    @property
    def markets(self) -> list[dict[str, Any]]:
        """The selected markets (as discovery wrote them)."""
        markets = self.selection.get("markets")
        return [m for m in markets if isinstance(m, dict)] if isinstance(markets, list) else []

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.details,
            "manifest_version": self.manifest_version,
            "session_id": self.session_id,
            "selection": self.selection,
            "outputs": [o.to_json() for o in self.outputs],
            "report_path": self.report_path,
        }
        if self.gate is not None:
            data["gate"] = self.gate
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "manifest") -> SampleManifest:
        """Read any sample manifest pmws wrote (entries of `outputs` that are not objects are dropped)."""
        outputs = data.get("outputs")
        selection, gate = data.get("selection"), data.get("gate")
        return cls(
            session_id=_of(data, "session_id", str),
            outputs=[OutputRecord.from_json(o) for o in outputs if isinstance(o, dict)]
            if isinstance(outputs, list)
            else [],
            selection=selection if isinstance(selection, dict) else {},
            report_path=_of(data, "report_path", str) or None,
            gate=gate if isinstance(gate, dict) else None,
            details={k: v for k, v in data.items() if k not in _SAMPLE_FIELDS},
            manifest_version=_version(data, source),
        )
