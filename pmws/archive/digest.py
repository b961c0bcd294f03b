"""Digests of archive bytes (sha256, md5 for remotes that only offer it, size) and the one archive scan."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmws.archive.reader import READ_CHUNK, iter_gzip_rows
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
    not_json: int = 0  # lines that are not a JSON object
    payload_checked: int = 0  # `ws_frame` envelopes whose payload_sha256 was recomputed
    payload_mismatches: int = 0
    error: str | None = None  # why the gzip stream could not be read to its end (corrupt or cut), else None


def scan_archive(
    path: Path, *, with_md5: bool = False, on_row: Callable[[dict[str, Any]], None] | None = None
) -> ArchiveScan:
    """Read an archive once: digest its bytes, check its gzip stream, lines and envelope payload hashes.

    `on_row` sees every JSON-object line except `ws_frame` envelopes whose payload hash does not match.
    The one scan behind `pmws gate` and `pmws verify`. ArchiveUnreadable if the file cannot be read at all.
    """
    hasher = Hasher(with_md5=with_md5)
    lines = not_json = checked = mismatches = 0
    error = None
    try:
        for row in iter_gzip_rows(path, on_chunk=hasher):
            lines += 1
            if row is None:
                not_json += 1
                continue
            if row.get("record_type") == "ws_frame":
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
    return ArchiveScan(hasher.digests(), lines, not_json, checked, mismatches, error)
