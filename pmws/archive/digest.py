"""Digests of archive bytes (sha256, md5 for remotes that only offer it, size) and the one archive scan."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmws.archive.reader import READ_CHUNK, iter_gzip_lines, json_object
from pmws.envelope import payload_matches
from pmws.errors import ArchiveError, ArchiveUnreadable


def file_digest(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file's exact bytes."""
    digests = local_digests(path, with_md5=False)
    return digests.sha256, digests.bytes


@dataclass(frozen=True)
class Digests:
    sha256: str
    md5: str | None
    bytes: int


class Hasher:
    """sha256 (and optionally md5) and size of a byte stream, fed chunk by chunk."""

    def __init__(self, *, with_md5: bool) -> None:
        self.sha = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if with_md5 else None
        self.size = 0

    def __call__(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        self.size += len(chunk)

    def digests(self) -> Digests:
        return Digests(self.sha.hexdigest(), self.md5.hexdigest() if self.md5 else None, self.size)


def local_digests(path: Path, *, with_md5: bool = True) -> Digests:
    """sha256, md5 and size of a local file in one read."""
    hasher = Hasher(with_md5=with_md5)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                hasher(chunk)
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return hasher.digests()


@dataclass
class ArchiveScan:
    """One strict read of a gzip JSONL archive: its digests and what its lines hold."""

    digests: Digests
    lines: int = 0
    uncompressed_bytes: int = 0
    not_json: int = 0  # lines that are not a JSON object
    first_not_json: int | None = None  # the line number of the first of them
    payload_checked: int = 0  # `ws_frame` envelopes whose payload_sha256 was recomputed
    payload_mismatches: int = 0
    error: str | None = None  # why the gzip stream could not be read to its end (corrupt or cut), else None


def scan_archive(
    path: Path,
    *,
    with_md5: bool = False,
    check_payloads: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> ArchiveScan:
    """Read an archive once: digest its bytes, check its gzip stream, lines and envelope payload hashes.

    `on_row` sees every JSON-object line except (when `check_payloads`) `ws_frame` envelopes whose payload
    hash does not match. The one scan behind `pmws gate`, `pmws verify` and manifest repair.
    ArchiveUnreadable if the file cannot be read at all.
    """
    hasher = Hasher(with_md5=with_md5)
    lines = uncompressed = not_json = checked = mismatches = 0
    first_not_json = error = None
    try:
        for line in iter_gzip_lines(path, on_chunk=hasher):
            lines += 1
            uncompressed += len(line) + 1
            row = json_object(line)
            if row is None:
                not_json += 1
                first_not_json = first_not_json or lines
                continue
            if check_payloads and row.get("record_type") == "ws_frame":
                checked += 1
                if not payload_matches(row):
                    mismatches += 1
                    continue
            if on_row is not None:
                on_row(row)
    except ArchiveUnreadable:
        raise
    except ArchiveError as exc:
        error = str(exc)
    return ArchiveScan(
        hasher.digests(), lines, uncompressed, not_json, first_not_json, checked, mismatches, error
    )


@dataclass
class ManifestCheck:
    """An archive re-read against what its manifest promises (sha256, bytes, lines)."""

    path: Path
    scan: ArchiveScan | None  # None when the file is missing or cannot be read
    exists: bool = True
    error: str | None = None  # missing, unreadable, or why its gzip stream stopped
    sha256_matches: bool = False
    bytes_match: bool = False
    lines_match: bool = False
    promised_bytes: int | None = None
    promised_lines: int | None = None

    def problems(self) -> list[str]:
        """What is wrong, one phrase each (empty when the archive matches its manifest and reads clean)."""
        if self.scan is None:
            return [self.error or "cannot be read"]
        scan, problems = self.scan, []
        if not self.bytes_match:
            problems.append(f"bytes {scan.digests.bytes} != manifest {self.promised_bytes}")
        if not self.sha256_matches:
            problems.append("sha256 differs from the manifest")
        if scan.error is not None:
            return [*problems, scan.error.removeprefix(f"{self.path}: ")]
        if scan.not_json:
            problems.append(f"{scan.not_json} lines are not JSON objects")
        if scan.payload_mismatches:
            problems.append(f"{scan.payload_mismatches} envelopes whose payload_sha256 does not match")
        if self.promised_lines is not None and not self.lines_match:
            problems.append(f"lines {scan.lines} != manifest {self.promised_lines}")
        return problems


def check_against_manifest(
    path: Path,
    *,
    sha256: str | None,
    size: int | None,
    lines: int | None,
    with_md5: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> ManifestCheck:
    """Re-read one archive (`scan_archive`) against its manifest's sha256, bytes and lines: the one check
    behind `pmws gate` (a sample's outputs) and `pmws verify` (rotated files)."""
    if not path.is_file():
        return ManifestCheck(path, None, False, "file is missing", promised_bytes=size, promised_lines=lines)
    try:
        scan = scan_archive(path, with_md5=with_md5, on_row=on_row)
    except ArchiveUnreadable as exc:
        return ManifestCheck(path, None, True, str(exc), promised_bytes=size, promised_lines=lines)
    return ManifestCheck(
        path,
        scan,
        True,
        scan.error,
        sha256_matches=scan.digests.sha256 == sha256,
        bytes_match=scan.digests.bytes == size,
        lines_match=scan.error is None and scan.lines == lines,
        promised_lines=lines,
        promised_bytes=size,
    )
