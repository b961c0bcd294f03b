"""`pmws books`: rebuild every token's L2 book from the archives and write analyst tables as Parquet.

`export_books` (the CLI's one call) opens the archives, `build_books` reads them in receive order through
`BookBuilder` (pmws/read/booksbuild.py: the books and each change's hash status) into `PartitionedParquet`
(pmws/read/parquet.py). Tables (pmws/read/tables.py, README): book_changes, trades, top_of_book,
book_snapshots, gaps (partitioned by date/hour of receive time), tokens (one file).
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmws.config import Config
from pmws.errors import ArchiveError
from pmws.read import Filters, Reader, ReadReport, open_archives
from pmws.read.booksbuild import BookBuilder
from pmws.read.parquet import PartitionedParquet
from pmws.read.tables import SCHEMAS, TOKEN_COLUMN, TOKENS_SCHEMA
from pmws.transfer.rclone import Rclone


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
    rclone = Rclone(config.upload.rclone_binary, config.upload.rclone_config or None)
    reader = open_archives(list(sources), filters=filters, manifest_dirs=list(manifest_dirs), rclone=rclone)
    if not reader.files and not reader.report.problems:
        raise ArchiveError(f"no archives (*.jsonl.gz) under {', '.join(map(str, sources))}")
    with progress(reader.report, len(reader.files)) as show:
        return build_books(
            reader,
            Path(config.books.output_dir),
            snapshot_interval_seconds=config.books.snapshot_interval_seconds,
            overwrite=overwrite,
            on_progress=show,
        )


def build_books(
    reader: Reader,
    output_dir: Path,
    *,
    snapshot_interval_seconds: float = 60.0,
    overwrite: bool = False,
    on_progress: Callable[[ReadReport], None] | None = None,
) -> BooksResult:
    """Read every record of `reader`, rebuild the books, write the tables under `output_dir`.

    ArchiveError if `output_dir` already holds tables (unless `overwrite`, which replaces them) or cannot
    be written. Damaged input is not an error: it is in `result.report.problems`.
    """
    _prepare(output_dir, overwrite=overwrite)
    sink = PartitionedParquet(output_dir, SCHEMAS)
    filters = reader.filters
    selected = _Selected(sink, filters.tokens, filters.slugs) if filters.tokens or filters.slugs else None
    builder = BookBuilder(selected or sink, snapshot_interval_seconds=snapshot_interval_seconds)
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
    sink.write_table(output_dir / "tokens" / "tokens.parquet", TOKENS_SCHEMA, tokens)
    if on_progress is not None:
        on_progress(reader.report)
    return BooksResult(
        output_dir,
        reader.report,
        dict(sink.rows, tokens=len(tokens)),
        len(sink.files),
        builder.tracker.to_json(),
        builder.divergences,
        builder.superseded,
        sink.bad_values,
    )


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
