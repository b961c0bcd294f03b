"""`pmws books`: rebuild every token's L2 book from the archives and write analyst tables as Parquet.

`export_books` (the CLI's one call) opens the archives, `build_books` reads them in receive order through
`BookBuilder` (pmws/read/booksbuild.py: the books and each change's hash status) into `PartitionedParquet`
(pmws/read/parquet.py). Tables (pmws/read/tables.py, README): book_changes, trades, top_of_book,
book_snapshots, gaps (partitioned by date/hour of receive time), tokens (one file).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pmws.config import Config
from pmws.errors import ArchiveError, ConfigError
from pmws.read import Filters, Reader, ReadReport, open_archives
from pmws.read.booksbuild import BookBuilder
from pmws.read.files import local_lines
from pmws.read.parquet import PartitionedParquet
from pmws.read.tables import SCHEMAS, TOKEN_COLUMN, TOKENS_SCHEMA
from pmws.transfer.rclone import Rclone

AUTO_WORKERS_MIN_BYTES = 32_000_000  # below, starting processes costs more than it saves


@dataclass
class BooksResult:
    output_dir: Path
    report: ReadReport
    rows: dict[str, int]
    files: int
    hashes: dict[str, Any]
    divergences: int
    superseded: int
    bad_values: int

    @property
    def skipped_anything(self) -> bool:
        return self.report.skipped_anything or self.bad_values > 0


Progress = Callable[[ReadReport, int], AbstractContextManager[Callable[[ReadReport], None]]]


def export_books(
    config: Config,
    sources: Sequence[Path | str],
    *,
    filters: Filters,
    manifest_dirs: Sequence[Path],
    overwrite: bool,
    progress: Progress,
) -> BooksResult:
    """`pmws books`: open the archives (local or rclone remote), rebuild the books, write the tables.

    `progress(report, files)` gives the callback that shows the read's progress (the CLI's bar or lines).
    """
    if filters.start_ns is not None and filters.end_ns is not None and filters.start_ns >= filters.end_ns:
        raise ConfigError("--start must be before --end")
    rclone = Rclone(config.upload.rclone_binary, config.upload.rclone_config or None)
    reader = open_archives(list(sources), filters=filters, manifest_dirs=list(manifest_dirs), rclone=rclone)
    where = ", ".join(map(str, sources))
    if not reader.files:  # nothing readable: the output (and any tables already there) is left alone
        why = "; ".join(str(p) for p in reader.report.problems[:3])
        raise ArchiveError(f"no archives (*.jsonl.gz) under {where}" + (f" ({why})" if why else ""))
    if not reader.covers_window():
        raise ArchiveError(f"no archive under {where} covers the --start/--end window")
    with progress(reader.report, len(reader.files)) as show:
        return build_books(
            reader,
            Path(config.books.output_dir),
            snapshot_interval_seconds=config.books.snapshot_interval_seconds,
            overwrite=overwrite,
            on_progress=show,
            workers=auto_workers(reader, config.books.workers),
        )


def build_books(
    reader: Reader,
    output_dir: Path,
    *,
    snapshot_interval_seconds: float = 60.0,
    overwrite: bool = False,
    on_progress: Callable[[ReadReport], None] | None = None,
    workers: int = 1,
) -> BooksResult:
    """Read every record of `reader`, rebuild the books, write the tables under `output_dir`.

    `workers` > 1 splits the tokens between that many processes (`BookBuilder` shards): each reads the
    archives and builds its share of the tokens into files tagged `-w<k>`, so every token's rows are in one
    file, in receive order. ArchiveError if `output_dir` already holds tables (unless `overwrite`, which
    replaces them) or cannot be written. Damaged input is not an error: it is in `result.report.problems`.
    """
    _prepare(output_dir, overwrite=overwrite)
    if workers > 1:
        parts = _in_workers(reader, output_dir, snapshot_interval_seconds, workers, on_progress)
        vars(reader.report).update(vars(parts[0].report))  # every worker read the same records
    else:
        parts = [_build_part(reader, output_dir, snapshot_interval_seconds, (0, 1), on_progress)]
    tokens = sorted((row for part in parts for row in part.tokens), key=lambda row: (row[6], row[0]))
    sink = PartitionedParquet(output_dir, {})
    sink.write_table(output_dir / "tokens" / "tokens.parquet", TOKENS_SCHEMA, tokens)
    sink.close()
    if on_progress is not None:
        on_progress(reader.report)
    rows: dict[str, int] = {}
    for part in parts:
        for table, count in part.rows.items():
            rows[table] = rows.get(table, 0) + count
    return BooksResult(
        output_dir,
        reader.report,
        dict(rows, tokens=len(tokens)),
        sum(part.files for part in parts) + 1,
        _sum_counts([part.hashes for part in parts]),
        sum(part.divergences for part in parts),
        sum(part.superseded for part in parts),
        sum(part.bad_values for part in parts),
    )


def auto_workers(reader: Reader, setting: int) -> int:
    """`books.workers`: as set, or for 0 (auto) one per core up to 4 for local archives over 32 MB, else 1
    (each worker reads the archives: a remote would be downloaded once per worker)."""
    if setting > 0:
        return setting
    if reader.lines is not local_lines or sum(f.size for f in reader.files) < AUTO_WORKERS_MIN_BYTES:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class _Part:
    """What one builder made (the whole job, or one worker's share of the tokens)."""

    report: ReadReport
    rows: dict[str, int]
    files: int
    hashes: dict[str, Any]
    divergences: int
    superseded: int
    bad_values: int
    tokens: list[tuple[Any, ...]]


def _build_part(
    reader: Reader,
    output_dir: Path,
    snapshot_interval_seconds: float,
    shard: tuple[int, int],
    on_progress: Callable[[ReadReport], None] | None,
) -> _Part:
    tag = f"-w{shard[0]}" if shard[1] > 1 else ""
    sink = PartitionedParquet(output_dir, SCHEMAS, file_tag=tag)
    filters = reader.filters
    selected = _Selected(sink, filters.tokens, filters.slugs) if filters.tokens or filters.slugs else None
    builder = BookBuilder(selected or sink, snapshot_interval_seconds=snapshot_interval_seconds, shard=shard)
    if selected is not None:
        selected.info = builder.token_info
    _learn_metadata(reader, builder)
    count = 0
    with _fewer_collections():
        for record in reader:
            builder.on_record(record)
            count += 1
            if on_progress is not None and count % 5000 == 0:
                on_progress(reader.report)
        builder.finish()
        sink.close()
    tokens = [r for r in builder.token_rows() if selected is None or selected.wanted(r[0])]
    return _Part(
        reader.report,
        dict(sink.rows),
        len(sink.files),
        builder.tracker.to_json(),
        builder.divergences,
        builder.superseded,
        sink.bad_values,
        tokens,
    )


def _in_workers(
    reader: Reader,
    output_dir: Path,
    snapshot_interval_seconds: float,
    count: int,
    on_progress: Callable[[ReadReport], None] | None,
) -> list[_Part]:
    """`_build_part` for each shard in its own process; worker 0 reports progress. A worker that fails
    or dies fails the build (ArchiveError, or the worker's own error)."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    messages: Any = context.Queue()
    shared = replace(reader, on_file=None)  # callbacks stay in this process
    processes = [
        context.Process(
            target=_worker,
            args=(shared, output_dir, snapshot_interval_seconds, (index, count), messages),
            name=f"pmws-books-{index}",
            daemon=True,
        )
        for index in range(count)
    ]
    for process in processes:
        process.start()
    parts: dict[int, _Part] = {}
    try:
        while len(parts) < count:
            try:
                kind, index, payload = messages.get(timeout=0.5)
            except queue.Empty:
                for index, process in enumerate(processes):
                    if index not in parts and not process.is_alive():
                        raise ArchiveError(
                            f"pmws books: worker {index} of {count} died (exit code {process.exitcode})"
                        ) from None
                continue
            if kind == "done":
                parts[index] = payload
            elif kind == "failed":
                raise payload
            elif on_progress is not None:
                on_progress(payload)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return [parts[index] for index in range(count)]


def _worker(
    reader: Reader,
    output_dir: Path,
    snapshot_interval_seconds: float,
    shard: tuple[int, int],
    messages: Any,
) -> None:
    index = shard[0]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers

    def progress(report: ReadReport) -> None:
        messages.put(("progress", index, report))

    try:
        part = _build_part(
            reader, output_dir, snapshot_interval_seconds, shard, progress if index == 0 else None
        )
    except Exception as exc:  # sent back whole when it pickles (PmwsError does), else as text
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"pmws books worker {index}: {exc!r}")
        messages.put(("failed", index, exc))
        return
    messages.put(("done", index, part))


def _sum_counts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters of several trackers (nested dicts of ints) added up."""
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = (
                _sum_counts([total.get(key, {}), value])
                if isinstance(value, dict)
                else (total.get(key, 0) + value)
            )
    return total


class _Selected:
    """The sink for `--token`/`--slug`: frames that concern a selected token may carry other tokens' changes
    (both outcomes of a market): their rows are left out here; rows that name no token (gaps) are kept."""

    def __init__(self, sink: PartitionedParquet, tokens: frozenset[str], slugs: frozenset[str]) -> None:
        self.sink, self.tokens, self.slugs = sink, tokens, slugs
        self.info: dict[str, list[Any]] = {}

    def hour_of(self, ns: int) -> int:
        return self.sink.hour_of(ns)

    def wanted(self, token: Any) -> bool:
        if token is None or token in self.tokens:
            return True
        info = self.info.get(token)
        return info is not None and info[1] in self.slugs

    def add(self, table: str, hour: int, row: tuple[Any, ...]) -> None:
        if self.wanted(row[TOKEN_COLUMN[table]]):
            self.sink.add(table, hour, row)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector 100 times less often while books are built.

    Every line becomes a tree of dicts and lists that reference counting frees (JSON has no cycles), but
    each allocation counts towards the collector's next pass, and each pass walks the records still held
    (the merge window, rows waiting for Parquet): about a tenth of the run's time. Cycles, if any, are
    still collected; the thresholds are restored after.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 1) * 100, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _learn_metadata(reader: Reader, builder: BookBuilder) -> None:
    """min_order_size/neg_risk per token from the REST checkpoint files, before the first `book`."""
    rest = [f for f in reader.files if f.kind == "rest_checkpoints"]
    if not rest:
        return
    quiet = Reader(rest, Filters(record_types=frozenset({"rest_checkpoint"})), lines=reader.lines)
    for record in quiet:
        builder.set_metadata(record)


def _prepare(output_dir: Path, *, overwrite: bool) -> None:
    tables = [*SCHEMAS, "tokens"]
    existing = [output_dir / t for t in tables if (output_dir / t).exists()]
    if existing and not overwrite:
        raise ArchiveError(f"{output_dir} already holds book tables ({existing[0].name}/): pass --overwrite")
    for path in existing:
        shutil.rmtree(path)
