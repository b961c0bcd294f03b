"""What the replay reads: archives through `pmws.read`, checked first, with problems reported as they come.

`pmws.read` does the reading (receive order across files and sessions, two replicas of a shard merged into
one stream, damaged files named and skipped); this module adds what the replay needs on top: its error
contract for bad inputs (exit 2 before anything is served; an rclone remote that cannot be listed is a
named problem, as for `pmws books`, and an error only when nothing else is left to replay), the stream of
frames and lifecycle records without the reader's `gap` records, each new problem handed to a callback as
soon as the reader names it, and one cheap metadata pass before the replay starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from pmws.errors import ArchiveError, ConfigError
from pmws.read import GAP, ArchiveFile, Filters, Reader, Record, open_archives
from pmws.read.files import LineSource, local_lines
from pmws.read.remote import is_remote
from pmws.read.sources import ARCHIVE_SUFFIX

if TYPE_CHECKING:  # the CLI builds it: the replay itself never runs rclone but through pmws.read
    from pmws.transfer.rclone import Rclone

CANNOT_LIST = "cannot list the remote"  # pmws.read's words for a remote rclone could not list


def check_inputs(inputs: Sequence[Path | str]) -> None:
    """ConfigError (exit 2) for a local path that does not exist, is not an archive, or holds no closed
    archive (hidden `.open` files are being written or wait for salvage: they do not count). rclone
    remotes (`REMOTE:PATH`) are checked once listed (`check_remotes`)."""
    for source in inputs:
        if is_remote(source):
            continue
        path = Path(source)
        if path.is_dir():
            if not any(not p.name.startswith(".") for p in path.rglob(f"*{ARCHIVE_SUFFIX}")):
                raise ConfigError(f"{path}: no {ARCHIVE_SUFFIX} archive in this directory")
        elif path.is_file():
            if not path.name.endswith(ARCHIVE_SUFFIX):
                raise ConfigError(f"{path}: not a {ARCHIVE_SUFFIX} archive or a directory of them")
        else:
            raise ConfigError(f"{path}: no such file or directory")


def check_remotes(reader: Reader, remotes: Sequence[str]) -> None:
    """ConfigError (exit 2) for a listed remote without a closed archive, as for a local directory; a
    remote that could not be listed stays a problem of the reader's (named when the replay starts), and is
    ArchiveError (exit 1, one line) only when nothing else is left to replay."""
    unlisted = {p.path for p in reader.report.problems if p.reason.startswith(CANNOT_LIST)}
    for remote in remotes:
        prefix = remote if remote.endswith((":", "/")) else f"{remote}/"  # what its files' paths start with
        listed = [f for f in reader.files if f.path == remote or f.path.startswith(prefix)]
        if remote not in unlisted and not listed:
            raise ConfigError(f"{remote}: no {ARCHIVE_SUFFIX} archive under this remote path")
    if not reader.files:
        named = "; ".join(f"{p.path}: {p.reason}" for p in reader.report.problems)
        raise ArchiveError(f"nothing to replay: {named or 'no archive'}")


def open_replay_archives(
    inputs: Sequence[Path | str],
    *,
    end_ns: int | None = None,
    manifest_dirs: Sequence[Path] = (),
    rclone: Rclone | None = None,
) -> Reader:
    """A `pmws.read` reader over checked inputs (local, or rclone remotes read with `rclone`), up to
    `end_ns` inclusive.

    No start filter: records before `--start` rebuild the books, so the reader reads them all."""
    check_inputs(inputs)
    filters = Filters(end_ns=None if end_ns is None else end_ns + 1)  # the reader's end is exclusive
    reader = open_archives(inputs, filters=filters, manifest_dirs=manifest_dirs, rclone=rclone)
    check_remotes(reader, [str(s) for s in inputs if is_remote(s)])
    return reader


def replay_records(reader: Reader, *, on_problem: Callable[[str], None]) -> Iterator[Record]:
    """The reader's records in receive order, without its `gap` records (nothing to send, and a gap's
    time is its end, not a receive time); each problem the reader names goes to `on_problem` once."""
    problems = reader.report.problems
    told = 0

    def tell() -> int:
        for problem in problems[told:]:
            on_problem(str(problem))
        return len(problems)

    told = tell()
    for record in reader:
        if len(problems) > told:
            told = tell()
        if record.record_type != GAP:
            yield record
    tell()


_TRACKED = b'"tokens_tracked":'
_AFTER_TRACKED = b',"opcode":'
_FRAME_HEAD = b'{"record_type":"ws_frame"'
_CHECKPOINT_HEAD = b'{"record_type":"rest_checkpoint"'


class Metadata(NamedTuple):
    """What an archive says about its tokens: envelope `tokens_tracked` entries and REST summaries."""

    tracked: list[dict[str, Any]]
    summaries: list[dict[str, Any]]


def scan_metadata(files: Iterable[ArchiveFile], *, lines: LineSource = local_lines) -> Metadata:
    """One cheap pass for token metadata, before the replay starts (Gamma must list every token).

    A ws_raw file whose manifest lists the tokens tracked in its period (`pmws run` writes them) is not
    read: a remote archive is then streamed once, by the replay. Otherwise frames are not parsed: the
    `tokens_tracked` slice of each envelope is cut out by position (the envelope's fixed layout,
    `pmws.envelope._FRAME`) and parsed once per distinct value. A damaged file gives what it can; the
    reader names it when the replay reaches it."""
    slices: set[bytes] = set()
    summaries: list[dict[str, Any]] = []
    tracked: list[dict[str, Any]] = []  # from manifests, then from the envelopes' slices
    for item in files:
        from_manifest = (item.manifest or {}).get("tokens_tracked") if item.kind == "ws_raw" else None
        if isinstance(from_manifest, list):
            tracked += [t for t in from_manifest if isinstance(t, dict)]
            continue
        try:
            for line in lines(item, _ignore):
                if line.startswith(_FRAME_HEAD):
                    start = line.find(_TRACKED)
                    stop = line.find(_AFTER_TRACKED, start)
                    if start >= 0 and stop > start:
                        slices.add(line[start + len(_TRACKED) : stop])
                elif line.startswith(_CHECKPOINT_HEAD):
                    summaries += _summaries(line)
        except ArchiveError:
            continue
    for piece in slices:
        try:
            value = orjson.loads(piece)
        except orjson.JSONDecodeError:
            continue
        tracked += [t for t in value if isinstance(t, dict)] if isinstance(value, list) else []
    return Metadata(tracked, summaries)


def _ignore(chunk: bytes) -> None:
    """The line source's per-chunk callback: nothing to count here."""


def _summaries(line: bytes) -> list[dict[str, Any]]:
    """The book summaries a REST checkpoint line holds (none if it failed or is damaged)."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return []
    books = (row.get("response") or {}).get("raw_response_json") if isinstance(row, dict) else None
    return [b for b in books if isinstance(b, dict)] if isinstance(books, list) else []
