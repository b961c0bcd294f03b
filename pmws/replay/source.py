"""Archive records in receive order: a k-way merge of gzip JSONL files by receive time.

The one boundary the replay reads through (`archive_files`, `iter_records`), small on purpose: it can be
switched to `pmws.read` once that reader exists. Each file is already in receive order (one writer appends
as it receives), so merging the files by each record's time gives one stream; memory holds one pending
record per file, whatever the archive's size.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from zlib_ng import zlib_ng as zlib

from pmws.archive.reader import ZLIB_ERROR, iter_gzip_lines
from pmws.errors import ArchiveError, ConfigError
from pmws.markets import parse_time

SUFFIX = ".jsonl.gz"
PEEK_BYTES = 64 * 1024


class Record(NamedTuple):
    """One archived line: when it was received (epoch ns), its `record_type`, the parsed row."""

    received_ns: int
    record_type: str
    row: dict[str, Any]


def archive_files(inputs: Sequence[Path]) -> list[Path]:
    """Every closed archive under the given files and directories (hidden `.open` files are skipped).

    ConfigError (exit 2) for a path that does not exist, is not an archive, or holds no archive."""
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            inside = sorted(p for p in path.rglob(f"*{SUFFIX}") if not p.name.startswith("."))
            if not inside:
                raise ConfigError(f"{path}: no {SUFFIX} archive in this directory")
            found += inside
        elif path.is_file() and path.name.endswith(SUFFIX):
            found.append(path)
        elif path.exists():
            raise ConfigError(f"{path}: not a {SUFFIX} archive or a directory of them")
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return list(dict.fromkeys(found))


def record_time_ns(row: dict[str, Any]) -> int | None:
    """When a record happened: a frame's receive time, a lifecycle record's time, a checkpoint's answer."""
    stamp = row.get("received_at_ns", row.get("at_ns"))
    if type(stamp) is int:
        return stamp
    text = row.get("completed_at_utc") or row.get("requested_at_utc")
    if isinstance(text, str):
        try:
            moment = parse_time(text)
        except ValueError:
            return None
        return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    return None


def file_records(path: Path, *, on_problem: Callable[[str], None]) -> Iterator[Record]:
    """The records of one file in file order; a damaged line or file is reported and skipped."""
    try:
        for number, line in enumerate(iter_gzip_lines(path), 1):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                on_problem(f"{path}: line {number} is not JSON; skipped")
                continue
            at = record_time_ns(row) if type(row) is dict else None
            if at is None:
                on_problem(f"{path}: line {number} has no record time; skipped")
                continue
            yield Record(at, str(row.get("record_type", "")), row)
    except ArchiveError as exc:
        on_problem(f"{exc}; the rest of this file is skipped")


def iter_records(
    files: Iterable[Path], *, on_problem: Callable[[str], None], end_ns: int | None = None
) -> Iterator[Record]:
    """Records of every file merged by receive time (ties keep file order), up to `end_ns` inclusive.

    A file is opened only when the merge reaches its first record's time, so a day of hourly files holds
    one or two of them open at a time (each open file holds a read chunk and its decompressed lines)."""
    waiting = deque(sorted((first_record_ns(path), order, path) for order, path in enumerate(files)))
    heap: list[_Entry] = []
    tiebreak = itertools.count()

    def push(stream: Iterator[Record], order: int) -> None:
        record = next(stream, None)
        if record is not None:
            heapq.heappush(heap, (record.received_ns, order, next(tiebreak), record, stream))

    while waiting or heap:
        while waiting and (not heap or waiting[0][0] <= heap[0][0]):
            _, order, path = waiting.popleft()
            push(file_records(path, on_problem=on_problem), order)
        if not heap:
            continue
        received_ns, order, _, record, stream = heapq.heappop(heap)
        if end_ns is not None and received_ns > end_ns:
            return
        yield record
        push(stream, order)


_Entry = tuple[int, int, int, Record, Iterator[Record]]  # (time, file order, tiebreak, record, its file)


def first_record_ns(path: Path) -> int:
    """The receive time of a file's first record, read from its first 64 kB; -1 when it cannot be read
    there (the file is then opened first, and its problem reported when it is read)."""
    try:
        with open(path, "rb") as fh:
            head = zlib.decompressobj(47).decompress(fh.read(PEEK_BYTES))
        row = orjson.loads(head.split(b"\n", 1)[0])
    except (OSError, ZLIB_ERROR, orjson.JSONDecodeError):
        return -1
    at = record_time_ns(row) if type(row) is dict else None
    return -1 if at is None else at


_TRACKED = b'"tokens_tracked":'
_AFTER_TRACKED = b',"opcode":'
_FRAME_HEAD = b'{"record_type":"ws_frame"'
_CHECKPOINT_HEAD = b'{"record_type":"rest_checkpoint"'


class Metadata(NamedTuple):
    """What an archive says about its tokens: envelope `tokens_tracked` entries and REST summaries."""

    tracked: list[dict[str, Any]]
    summaries: list[dict[str, Any]]


def scan_metadata(files: Iterable[Path], *, on_problem: Callable[[str], None]) -> Metadata:
    """One cheap pass for token metadata, before the replay starts (Gamma must list every token).

    Frames are not parsed: the `tokens_tracked` slice of each envelope is cut out by position (the
    envelope's fixed layout, `pmws.envelope._FRAME`) and parsed once per distinct value."""
    slices: set[bytes] = set()
    summaries: list[dict[str, Any]] = []
    for path in files:
        try:
            for line in iter_gzip_lines(path):
                if line.startswith(_FRAME_HEAD):
                    start = line.find(_TRACKED)
                    stop = line.find(_AFTER_TRACKED, start)
                    if start >= 0 and stop > start:
                        slices.add(line[start + len(_TRACKED) : stop])
                elif line.startswith(_CHECKPOINT_HEAD):
                    summaries += _summaries(line)
        except ArchiveError as exc:
            on_problem(f"{exc}; the rest of this file is skipped")
    tracked: list[dict[str, Any]] = []
    for piece in slices:
        try:
            value = orjson.loads(piece)
        except orjson.JSONDecodeError:
            continue
        tracked += [t for t in value if isinstance(t, dict)] if isinstance(value, list) else []
    return Metadata(tracked, summaries)


def _summaries(line: bytes) -> list[dict[str, Any]]:
    """The book summaries a REST checkpoint line holds (none if it failed or is damaged)."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return []
    books = (row.get("response") or {}).get("raw_response_json") if isinstance(row, dict) else None
    return [b for b in books if isinstance(b, dict)] if isinstance(books, list) else []
