"""`pmws books`: verified order books from the archives, as Parquet tables partitioned by date/hour.

Exit codes: 0 when every input was read whole, 1 when anything was skipped (the summary says what) or the
output cannot be written, 2 for a usage or config error.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from pmws.cli.base import ConfigOption, DebugOption, err, from_config, guarded, out, print_line
from pmws.config import load_config
from pmws.errors import ConfigError
from pmws.read import Filters, ReadReport


def _moment(value: str | None, flag: str) -> int | None:
    """ISO-8601 (UTC when no offset) → epoch ns; ConfigError naming the flag."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{flag}: {value!r} is not an ISO-8601 time (e.g. 2026-11-24T01:00:00Z)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def books_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Archives or directories (`pmws run` or `pmws sample` output), local or rclone REMOTE:PATH.",
            show_default=from_config("run.output_dir"),
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Where the tables go.", show_default=from_config("books.output_dir")
        ),
    ] = None,
    snapshot_interval: Annotated[
        float | None,
        typer.Option(
            "--snapshot-interval",
            help="Seconds between full-depth book_snapshots (0: none).",
            show_default=from_config("books.snapshot_interval_seconds"),
        ),
    ] = None,
    manifest_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--manifest-dir",
            metavar="DIR",
            help="Where the archives' manifests are (repeatable).",
            show_default="beside PATH, and run.manifest_dir",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", metavar="TIME", help="From this receive time (ISO-8601, UTC).", show_default="all"
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end", metavar="TIME", help="Until this receive time (exclusive).", show_default="all"
        ),
    ] = None,
    token: Annotated[
        list[str] | None,
        typer.Option(
            "--token", metavar="TOKEN_ID", help="Only this token id (repeatable).", show_default="all"
        ),
    ] = None,
    slug: Annotated[
        list[str] | None,
        typer.Option(
            "--slug", metavar="SLUG", help="Only this market slug (repeatable).", show_default="all"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Processes sharing the tokens (0: one per core up to 4; 1 for small or remote input).",
            show_default=from_config("books.workers"),
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace tables already in the output.")
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Rebuild every token's order book from archives, with hash status, and write Parquet tables."""
    from pmws.books import export_books

    def action() -> int:
        cfg = load_config(
            config,
            overrides={
                "books.output_dir": output_dir,
                "books.snapshot_interval_seconds": snapshot_interval,
                "books.workers": workers,
            },
        )
        filters = Filters(
            start_ns=_moment(start, "--start"),
            end_ns=_moment(end, "--end"),
            tokens=frozenset(token or ()),
            slugs=frozenset(slug or ()),
        )
        target = Path(cfg.books.output_dir)
        result = export_books(
            cfg,
            list(paths or [Path(cfg.run.output_dir)]),
            filters=filters,
            manifest_dirs=list(manifest_dir or []) + [Path(cfg.run.manifest_dir)],
            overwrite=overwrite,
            progress=_progress,
        )
        rows = ", ".join(f"{name} {count}" for name, count in result.rows.items())
        hashes = result.hashes["hash"]
        print_line(out, f"wrote {result.files} Parquet files to {escape(str(target))}: {rows}")
        print_line(
            out,
            f"hashes: {hashes['verified']} verified, {hashes['pending']} pending, "
            f"{hashes['mismatched']} mismatched, {hashes['unverifiable']} unverifiable; "
            f"REST checkpoints: {result.hashes['rest_agree']} agree, {result.divergences} diverged; "
            f"{result.superseded} replica events already in a newer book",
        )
        print_line(out, f"read: {escape(result.report.summary())}")
        for problem in result.report.problems:
            print_line(err, f"[yellow]problem:[/yellow] {escape(str(problem))}")
        if result.bad_values:
            print_line(
                err, f"[yellow]problem:[/yellow] {result.bad_values} price/size value(s) not a decimal"
            )
        return 1 if result.skipped_anything else 0

    raise typer.Exit(guarded(debug, action))


class _progress:
    """A Rich progress bar (files, frames, MB/s) on a terminal; a plain line every few seconds elsewhere."""

    def __init__(self, report: ReadReport, files: int) -> None:
        self.report = report
        self.files = files
        self.started = time.monotonic()
        self.last_line = self.started
        self.bar: Progress | None = None
        self.task = TaskID(0)

    def __enter__(self) -> _progress:
        if sys.stdout.isatty():
            self.bar = Progress(
                TextColumn("files"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[frames]} frames  {task.fields[rate]} MB/s"),
                TimeElapsedColumn(),
                console=out,
            )
            self.bar.start()
            self.task = self.bar.add_task("books", total=self.files, frames=0, rate="0.0")
        return self

    def __call__(self, report: ReadReport) -> None:
        now = time.monotonic()
        rate = f"{report.bytes_read / 1e6 / max(now - self.started, 1e-9):.1f}"
        if self.bar is not None:
            self.bar.update(self.task, completed=report.files_read, frames=report.frames, rate=rate)
        elif now - self.last_line >= 5:
            self.last_line = now
            print_line(
                out, f"books: {report.files_read}/{self.files} files, {report.frames} frames, {rate} MB/s"
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.report.files_read)
            self.bar.stop()
