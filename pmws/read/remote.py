"""Archives on an rclone remote (`remote:bucket/path`), listed with `rclone lsjson -R` and read streamed
through `rclone cat`: a bounded queue between rclone's stdout and the reader, so a file is never downloaded
whole and memory does not grow with its size. rclone is found and run as `pmws upload` runs it
(transfer/rclone.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from zlib_ng import zlib_ng as zlib

from pmws.archive.reader import ZLIB_ERROR
from pmws.errors import ArchiveError, PmwsError
from pmws.read.files import local_lines
from pmws.read.sources import ARCHIVE_SUFFIX, MANIFEST_SUFFIX, ArchiveFile, kind_of_name, period_start_of_name
from pmws.rotation import OPEN_SUFFIX, session_of_name
from pmws.transfer.rclone import Rclone, join_remote, split_remote

QUEUE_CHUNKS = 8  # chunks of rclone's stdout (1 MiB each) waiting for the reader at most
_END = object()


def is_remote(source: str | Path) -> bool:
    """`name:path` or `:backend:path` (rclone), not a local path that exists."""
    text = str(source)
    head = text.split("/", 1)[0]
    return ":" in head and not Path(text).exists()


def list_remote(
    rclone: Rclone, remote: str, manifests: dict[str, dict[str, Any]] | None = None
) -> tuple[list[ArchiveFile], list[str]]:
    """Archives under a remote path, and `.open` files left out. Their manifests: the ones found under the
    remote path, else in `manifests` (local, by file name).

    UploadError when rclone cannot list it (unknown remote, refused login, unreachable).
    """
    args = ["lsjson", "-R", "--files-only", "--no-mimetype", "--no-modtime", remote]
    done = rclone.run(args)
    try:
        rows = orjson.loads(done.stdout or b"[]")
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"rclone lsjson returned something that is not JSON for {remote}") from exc
    entries = [(str(r.get("Path")), int(r.get("Size", 0))) for r in rows if isinstance(r, dict)]
    base, name = split_remote(remote)
    if name.endswith(ARCHIVE_SUFFIX) and [path for path, _ in entries] == [name]:
        remote = base  # a file: rclone lists it by its name, relative to its directory
    manifests = dict(manifests or {})
    for path, _ in entries:
        if path.endswith(MANIFEST_SUFFIX):
            chunks: list[bytes] = []
            rclone.cat_remote(join_remote(remote, path), chunks.append)
            try:
                data = orjson.loads(b"".join(chunks))
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and isinstance(data.get("file"), str):
                manifests[data["file"]] = data
    files, open_files = [], []
    for path, size in sorted(entries):
        name = path.rsplit("/", 1)[-1]
        if name.endswith(OPEN_SUFFIX):
            open_files.append(join_remote(remote, path))
        elif name.endswith(ARCHIVE_SUFFIX):
            session = session_of_name(name)
            full = join_remote(remote, path)
            files.append(
                ArchiveFile(
                    full, kind_of_name(name), session, period_start_of_name(name), size, manifests.get(name)
                )
            )
    return files, open_files


class RemoteLines:
    """The reader's line source: local files as usual, remote ones streamed through `rclone cat`."""

    def __init__(self, rclone: Rclone) -> None:
        self.rclone = rclone

    def __call__(self, item: ArchiveFile, on_chunk: Callable[[bytes], None]) -> Iterator[bytes]:
        if not is_remote(item.path):
            return local_lines(item, on_chunk)
        return gzip_lines(self._chunks(item.path), item.path, on_chunk)

    def _chunks(self, remote_path: str) -> Iterator[bytes]:
        """rclone's stdout, chunk by chunk, from a thread through a bounded queue."""
        chunks: queue.Queue[object] = queue.Queue(maxsize=QUEUE_CHUNKS)
        stop = threading.Event()

        def sink(chunk: bytes) -> None:
            if stop.is_set():
                raise ArchiveError("reader stopped")  # ends rclone (killed by run_rclone) when abandoned
            chunks.put(chunk)

        def produce() -> None:
            try:
                self.rclone.cat_remote(remote_path, sink)
                chunks.put(_END)
            except PmwsError as exc:
                chunks.put(exc)

        thread = threading.Thread(target=produce, name="rclone-cat", daemon=True)
        thread.start()
        try:
            while (item := chunks.get()) is not _END:
                if isinstance(item, PmwsError):
                    if stop.is_set():
                        return
                    raise ArchiveError(f"cannot read ({item})") from item
                assert isinstance(item, bytes)
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting for room
                try:
                    chunks.get(timeout=0.1)
                except queue.Empty:
                    pass


def gzip_lines(chunks: Iterator[bytes], name: str, on_chunk: Callable[[bytes], None]) -> Iterator[bytes]:
    """Lines of a gzip JSONL byte stream (concatenated members allowed); ArchiveError if corrupt or cut."""
    decomp = zlib.decompressobj(47)
    pending = b""
    for chunk in chunks:
        on_chunk(chunk)
        try:
            data = decomp.decompress(chunk)
            while decomp.eof and decomp.unused_data:
                rest = decomp.unused_data
                decomp = zlib.decompressobj(47)
                data += decomp.decompress(rest)
        except ZLIB_ERROR as exc:
            raise ArchiveError(f"{name}: corrupt gzip ({exc})") from exc
        pending += data
        *complete, pending = pending.split(b"\n")
        yield from complete
    if not decomp.eof:
        raise ArchiveError(f"{name}: gzip stream is truncated (no end-of-stream marker)")
    if pending:
        yield pending
