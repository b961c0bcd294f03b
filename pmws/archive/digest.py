"""Digests of archive bytes: sha256 (and md5 for remotes that only offer it) and size, in one read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pmws.archive.reader import READ_CHUNK
from pmws.errors import ArchiveError


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
