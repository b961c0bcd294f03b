"""Reading gzip JSONL archives back: strictly (every line, or an error) or salvaging a cut file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import orjson
from zlib_ng import zlib_ng as zlib  # zlib's API and gzip format, ~2x faster both ways

from pmws.errors import ArchiveError, ArchiveUnreadable

#: zlib_ng.error (its stub declares an instance, not a class)
ZLIB_ERROR = cast(type[Exception], zlib.error)
READ_CHUNK = 1 << 20


def iter_gzip_lines(path: Path, *, on_chunk: Callable[[bytes], None] | None = None) -> Iterator[bytes]:
    """Every line of a gzip JSONL file (without newline). ArchiveError if the gzip is corrupt or cut.

    `on_chunk` sees every byte of the file, as read (e.g. a `Hasher`), even past a corrupt spot, so one
    read both checks the stream and digests the file.
    """
    decomp = zlib.decompressobj(47)
    pending = b""
    try:
        with open(path, "rb") as fh:
            try:
                while chunk := fh.read(READ_CHUNK):
                    if on_chunk is not None:
                        on_chunk(chunk)
                    data = decomp.decompress(chunk)
                    while decomp.eof and decomp.unused_data:
                        rest = decomp.unused_data
                        decomp = zlib.decompressobj(47)
                        data += decomp.decompress(rest)
                    pending += data
                    *complete, pending = pending.split(b"\n")
                    yield from complete
            except ZLIB_ERROR as exc:
                while on_chunk is not None and (chunk := fh.read(READ_CHUNK)):
                    on_chunk(chunk)
                raise ArchiveError(f"{path}: corrupt gzip ({exc})") from exc
    except OSError as exc:
        raise ArchiveUnreadable(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not decomp.eof:
        raise ArchiveError(f"{path}: gzip stream is truncated (no end-of-stream marker)")
    if pending:
        yield pending


def iter_gzip_rows(
    path: Path, *, on_chunk: Callable[[bytes], None] | None = None
) -> Iterator[dict[str, Any] | None]:
    """Each line of a gzip JSONL file as a JSON object, or None where the line is not one."""
    for line in iter_gzip_lines(path, on_chunk=on_chunk):
        yield json_object(line)


def json_object(line: bytes) -> dict[str, Any] | None:
    """A line as a JSON object, or None when it is not one (not JSON, or another JSON value)."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


SALVAGE_PIECE = 256 * 1024  # most uncompressed bytes held at once while salvaging


class SalvageReader:
    """Streams every complete line readable from a possibly cut or damaged gzip file, bounded memory.

    Iterate for blocks of complete lines (each ending in a newline); afterwards `orphan_bytes` is the
    file's size and `problem` why reading stopped early (None if the stream ended cleanly). Never more
    than a read chunk plus `SALVAGE_PIECE` of decompressed bytes in memory, whatever the file's size.
    """

    def __init__(self, path: Path):
        self.path = path
        self.orphan_bytes = 0
        self.problem: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        decomp = zlib.decompressobj(47)
        pending = b""
        try:
            with open(self.path, "rb") as fh:
                while not decomp.eof and (chunk := fh.read(64 * 1024)):
                    self.orphan_bytes += len(chunk)
                    for data in self._pieces(decomp, chunk):
                        pending += data
                        cut = pending.rfind(b"\n")
                        if cut >= 0:
                            yield pending[: cut + 1]
                            pending = pending[cut + 1 :]
                    if self.problem is not None:
                        break
                self.orphan_bytes += sum(len(c) for c in iter(partial(fh.read, READ_CHUNK), b""))
        except OSError as exc:
            raise ArchiveUnreadable(f"{self.path}: cannot read ({exc.strerror or exc})") from exc
        if self.problem is None and not decomp.eof:
            self.problem = "gzip stream cut (process killed before close)"

    def _pieces(self, decomp: Any, chunk: bytes) -> Iterator[bytes]:
        """Decompressed bytes of one read chunk, at most SALVAGE_PIECE at a time; stops at damage."""
        data = chunk
        while data and not decomp.eof:
            before = decomp.copy()
            try:
                yield decomp.decompress(data, SALVAGE_PIECE)
            except ZLIB_ERROR as exc:
                yield _decompress_until_error(before, data[:SALVAGE_PIECE])  # every byte before damage
                self.problem = f"corrupt gzip ({exc})"
                return
            data = decomp.unconsumed_tail


def salvage_lines(path: Path) -> tuple[list[bytes], int, str | None]:
    """Every complete line of a possibly cut gzip file, in memory (small files and tests only).

    Returns (lines, bytes of the file, why reading stopped early or None).
    """
    reader = SalvageReader(path)
    lines = [line for block in reader for line in block.splitlines(keepends=True)]
    return lines, reader.orphan_bytes, reader.problem


def _decompress_until_error(decomp: Any, chunk: bytes) -> bytes:
    """Feed a damaged chunk byte by byte and return what decompressed before the error."""
    out = bytearray()
    for i in range(len(chunk)):
        try:
            out += decomp.decompress(chunk[i : i + 1])
        except ZLIB_ERROR:
            break
    return bytes(out)
