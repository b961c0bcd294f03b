"""Reading one chain of archive files into `Record`s: damage reported per file, gaps between files.

Nothing here raises for bad input: a file that is not gzip, a cut gzip stream, a line that is not JSON or an
archive without its manifest each become a `FileProblem` in the report, and reading goes on with the next
line or file. What a damaged file could not give, and a period with no file at all, become gap records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from pmws.archive.reader import iter_gzip_lines
from pmws.errors import ArchiveError
from pmws.read.records import FileProblem, ReadReport, Record, gap_record, gap_row, received_ns_of
from pmws.read.sources import ArchiveFile

#: Lines of one archive file (without newline); calls `on_chunk` with each compressed chunk read.
LineSource = Callable[[ArchiveFile, Callable[[bytes], None]], Iterator[bytes]]


def local_lines(item: ArchiveFile, on_chunk: Callable[[bytes], None]) -> Iterator[bytes]:
    return iter_gzip_lines(Path(item.path), on_chunk=on_chunk)


def read_chain(
    chain: list[ArchiveFile],
    report: ReadReport,
    *,
    lines: LineSource = local_lines,
    start_ns: int | None = None,
    on_file: Callable[[ArchiveFile], None] | None = None,
    known: frozenset[str] | None = None,
) -> Iterator[Record]:
    """Records of files that never overlap in time (one session's periods), in order, one file open at a time.

    Files whose period ended before `start_ns` are not opened, except the last of them: a disconnect or a
    stale feed it logged is the start of a gap that may reach into the window (a gap longer than a whole
    file before the window is not found). A missing period between two ws_raw files of a session becomes a
    `missing_file` gap, and so does the period after the chain's last file when its manifest names a next
    file (`rotated_to`) that is not among the `known` names (every file found, closed or open).
    """
    for index, item in enumerate(chain):
        following = chain[index + 2] if index + 2 < len(chain) else None
        if (
            start_ns is not None
            and following is not None
            and following.period_start_ns is not None
            and following.period_start_ns <= start_ns
        ):
            continue
        if index > 0:
            gap = _missing_between(chain[index - 1], item)
            if gap is not None:
                report.gaps += 1
                yield gap
        if on_file is not None:
            on_file(item)
        yield from read_file(item, report, lines=lines)
    if chain and known is not None:
        gap = _missing_after(chain[-1], known)
        if gap is not None:
            report.gaps += 1
            report.problems.append(
                FileProblem(
                    str(gap.row["expected_file"]),
                    f"missing: {chain[-1].name}'s manifest says the session went on in it",
                    skipped=True,
                )
            )
            yield gap


def _missing_between(before: ArchiveFile, after: ArchiveFile) -> Record | None:
    """A gap when the file after `before` in its session is not `after` (a period with no file)."""
    if before.kind != "ws_raw" or before.period_start_ns is None or after.period_start_ns is None:
        return None
    expected = (before.manifest or {}).get("rotated_to")
    ends = before.period_end_ns
    if isinstance(expected, str):
        if expected == after.name:
            return None
    elif ends is None or ends >= after.period_start_ns:
        return None
    end = after.period_start_ns
    start = ends if ends is not None else before.period_start_ns
    row = gap_row(
        min(start, end),
        end,
        "missing_file",
        session_id=before.session_id,
        after_file=before.name,
        expected_file=expected,
    )
    return gap_record(row, after.path)


def _missing_after(last: ArchiveFile, known: frozenset[str]) -> Record | None:
    """A gap for the period after a session's last file found, when its manifest names the next one and
    that file is nowhere in the read (deleted, lost, not copied)."""
    expected = (last.manifest or {}).get("rotated_to")
    if last.kind != "ws_raw" or not isinstance(expected, str) or expected in known:
        return None
    start, seconds = last.period_end_ns, last.period_seconds
    if start is None or seconds is None:
        return None
    row = gap_row(
        start,
        start + seconds * 1_000_000_000,
        "missing_file",
        session_id=last.session_id,
        after_file=last.name,
        expected_file=expected,
    )
    return gap_record(row, last.path)


def read_file(item: ArchiveFile, report: ReadReport, *, lines: LineSource = local_lines) -> Iterator[Record]:
    """Every readable record of one archive; what could not be read is a problem in `report`."""
    report.files_read += 1
    if item.kind and item.period_start_ns is not None and item.manifest is None:
        report.problems.append(
            FileProblem(item.path, "no manifest: closed without one or not found, unverified")
        )
    elif item.manifest is not None and item.manifest.get("bytes") not in (None, item.size) and item.size:
        report.problems.append(
            FileProblem(
                item.path, f"size {item.size} differs from its manifest's {item.manifest.get('bytes')}"
            )
        )
    bad_lines = first_bad = count = 0
    last_ns: int | None = None

    def counted(chunk: bytes) -> None:
        report.bytes_read += len(chunk)

    path, loads, decode_error = item.path, orjson.loads, orjson.JSONDecodeError
    try:
        for line in lines(item, counted):
            count += 1
            if not line:
                continue
            try:
                row = loads(line)
            except decode_error:
                row = None
            # the frame's own field first: the common case without a call (received_ns_of does the rest)
            ns = row.get("received_at_ns") if type(row) is dict else None
            if type(ns) is not int:
                ns = received_ns_of(row) if type(row) is dict else None
                if ns is None:
                    bad_lines += 1
                    first_bad = first_bad or count
                    continue
            last_ns = ns
            kind = row.get("record_type", "")
            if kind == "ws_frame":
                report.frames += 1
            elif type(kind) is not str:
                kind = str(kind)
            yield Record(ns, kind, row, path)
    except ArchiveError as exc:
        reason = str(exc).removeprefix(f"{item.path}: ")
        report.problems.append(FileProblem(item.path, reason, skipped=count == 0, lines_skipped=bad_lines))
        report.lines_skipped += bad_lines
        report.lines += count
        end = item.period_end_ns
        # from the last line read, or (nothing readable) the whole period the file was named for
        start = last_ns if last_ns is not None else item.period_start_ns if end is not None else None
        if start is not None:
            report.gaps += 1
            row = gap_row(
                start, max(end or start, start), "damaged_file", session_id=item.session_id, reason=reason
            )
            yield gap_record(row, item.path)
        return
    report.lines += count
    if bad_lines:
        report.lines_skipped += bad_lines
        what = f"{bad_lines} line(s) not a JSON record with a time (first at line {first_bad})"
        report.problems.append(FileProblem(item.path, what, lines_skipped=bad_lines))
