"""What the reader yields: `Record`s in receive order, `gap` records, and a `ReadReport` of what it met."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pmws.envelope import utc_text

GAP = "gap"


@dataclass(slots=True, eq=False)  # identity: the replica merge finds held records by `is`
class Record:
    """One archived line (or a gap the reader found), with its receive time and where it came from.

    `row` is the line as parsed JSON (for a gap: `gap_row`'s fields). `seen_by` lists the sessions that
    recorded this frame: two when two replicas of a shard both received it, one when only one did.
    """

    received_ns: int
    record_type: str  # ws_frame, lifecycle, rest_checkpoint, divergence, gap
    row: dict[str, Any]
    source: str  # the archive file (or `remote:path`) the line came from
    seen_by: tuple[str, ...] = ()

    @property
    def session_id(self) -> str | None:
        value = self.row.get("session_id")
        return value if isinstance(value, str) else None


def gap_row(
    start_ns: int, end_ns: int, cause: str, *, session_id: str | None = None, **details: Any
) -> dict[str, Any]:
    """A gap: nothing (or nothing trustworthy) was recorded from start to end, and why."""
    return {
        "record_type": GAP,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "start_utc": utc_text(start_ns),
        "end_utc": utc_text(end_ns),
        "cause": cause,
        "session_id": session_id,
        **details,
    }


def gap_record(row: dict[str, Any], source: str) -> Record:
    return Record(int(row["end_ns"]), GAP, row, source)


def utc_to_ns(text: Any) -> int | None:
    """`2026-11-24T01:50:00.123456Z` → epoch ns, or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    whole = int(moment.timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1000


def received_ns_of(row: dict[str, Any]) -> int | None:
    """When a line was received or written: frames, lifecycle/divergence records, REST checkpoints."""
    value = row.get("received_at_ns")
    if type(value) is int:
        return value
    value = row.get("at_ns")
    if type(value) is int:
        return value
    return utc_to_ns(row.get("completed_at_utc") or row.get("requested_at_utc") or row.get("received_at_utc"))


@dataclass
class FileProblem:
    """Something wrong with one input: named, with the reason; `skipped` when none of it could be read."""

    path: str
    reason: str
    skipped: bool = False
    lines_skipped: int = 0

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.path}: {self.reason} (file skipped)"
        what = f" ({self.lines_skipped} line(s) skipped)" if self.lines_skipped else ""
        return f"{self.path}: {self.reason}{what}"


@dataclass
class ReadReport:
    """Counts of one read, filled while iterating; `problems` names every damaged or doubtful input."""

    files: int = 0  # archives found
    files_read: int = 0  # opened (some may have problems)
    bytes_read: int = 0  # compressed bytes read so far
    lines: int = 0
    records: int = 0  # yielded after filters, gaps included
    frames: int = 0  # ws_frame lines read (before dedup and filters)
    duplicates: int = 0  # frames two replicas both recorded, yielded once
    gaps: int = 0
    lines_skipped: int = 0  # not JSON, not an object, or no time
    problems: list[FileProblem] = field(default_factory=list)

    @property
    def skipped_anything(self) -> bool:
        return bool(self.problems)

    def summary(self) -> str:
        text = (
            f"{self.files_read}/{self.files} files, {self.lines} lines, {self.frames} frames, "
            f"{self.duplicates} replica duplicates, {self.gaps} gaps"
        )
        if self.problems:
            skipped = sum(1 for p in self.problems if p.skipped)
            text += (
                f"; {len(self.problems)} problem(s): {skipped} file(s) skipped, "
                f"{self.lines_skipped} line(s) skipped"
            )
        return text
