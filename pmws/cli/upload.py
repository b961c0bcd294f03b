"""`pmws upload`: options → Config → one library call → a summary table → exit code.

Exit codes: 0 when every eligible file was uploaded and verified, 1 when any was refused, failed or not
attempted, 2 for a config error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pmws.cli.base import (
    ConfigOption,
    DebugOption,
    VerifyModeOption,
    from_config,
    guarded,
    out,
    print_line,
    print_warnings,
)
from pmws.config import load_config
from pmws.transfer.upload import NO_MANIFEST, PROBLEMS, Action, UploadProgress, UploadReport

RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote", help="rclone destination REMOTE:PATH (upload.remote).", show_default="upload.remote"
    ),
]


def upload_command(
    config: ConfigOption = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            help="Archive root, the recorder's run.output_dir.",
            show_default=from_config("upload.source"),
        ),
    ] = None,
    remote: RemoteOption = None,
    cleanup_after_verify: Annotated[
        bool,
        typer.Option(
            "--cleanup-after-verify", help="Delete local archives whose remote copy verified in this run."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    verify_mode: VerifyModeOption = None,
    debug: DebugOption = False,
) -> None:
    """Upload closed archives and manifests with rclone, verify each remote copy, optionally clean up."""
    from pmws.transfer.upload import upload

    def action() -> int:
        cfg = load_config(
            config,
            overrides={"upload.source": source, "upload.remote": remote, "upload.verify_mode": verify_mode},
        )
        with _progress(out) as progress:
            report = upload(
                cfg.upload, dry_run=dry_run, cleanup_after_verify=cleanup_after_verify, progress=progress
            )
        render_upload(report, out)
        return 0 if report.ok else 1

    raise typer.Exit(guarded(debug, action))


def render_upload(report: UploadReport, console: Console) -> None:
    """The summary table (always), then every problem and what was not eligible, one line each."""
    table = Table(title=escape(f"pmws upload → {report.remote}"))
    for column in ("file", "bytes", "action", "verified", "local"):
        table.add_column(column, overflow="fold")
    for o in report.outcomes:
        colour = "red" if o.action in PROBLEMS else "green"
        local = "deleted" if o.deleted else "kept"
        table.add_row(
            escape(o.relative_path), f"{o.bytes:,}", f"[{colour}]{o.action}[/{colour}]", o.verified, local
        )
    console.print(table)
    for o in report.outcomes:
        if o.detail:
            colour = "red" if o.action in PROBLEMS else "yellow"
            print_line(
                console, f"[{colour}]{o.action}[/{colour}]: {escape(o.relative_path)}: {escape(o.detail)}"
            )
    for path, reason in report.skipped:
        if reason == NO_MANIFEST:
            print_line(
                console,
                f"[red]not eligible: {escape(path)} ({reason}; see pmws verify --repair-manifests)[/red]",
            )
        else:
            print_line(console, f"[dim]not eligible: {escape(path)} ({reason})[/dim]")
    counts = ", ".join(f"{report.count(a)} {a}" for a in Action if report.count(a))
    print_line(
        console,
        f"{len(report.outcomes)} eligible files, {sum(o.bytes for o in report.outcomes):,} bytes: "
        f"{counts or 'nothing to do'}; {report.deleted} deleted locally",
    )
    if report.cleanup:
        print_line(console, f"[red]cleanup: {escape(report.cleanup)}[/red]")
    print_warnings(console, report.warnings)
    if report.dry_run:
        print_line(console, "[yellow]dry run: nothing was uploaded, written or deleted[/yellow]")


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Callable[[UploadProgress], None] | None]:
    """Files and bytes done as Rich progress bars on a terminal; nothing otherwise."""
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        files = bars.add_task("files", total=None)
        data = bars.add_task("bytes", total=None)

        def update(p: UploadProgress) -> None:
            bars.update(files, total=p.files_total, completed=p.files_done)
            bars.update(data, total=p.bytes_total, completed=p.bytes_done)

        yield update
