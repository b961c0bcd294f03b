"""`pmws upload` and `pmws verify`: options → Config → one library call → a summary table → exit code.

Registered by `pmws.cli` (`app.command("upload")(upload_command)`, `app.command("verify")(verify_command)`).
Exit codes: 0 when every eligible file was uploaded and verified (verify: every archive passed), 1 when any
was refused, failed or not attempted (verify: any check failed), 2 for a config error.
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

from pmws.config import load_config
from pmws.options import ConfigOption, DebugOption, from_config
from pmws.transfer.remote import VERIFY_MODES
from pmws.transfer.upload import NO_MANIFEST, PROBLEMS, Action, UploadProgress, UploadReport
from pmws.transfer.verify import VerifyReport

out = Console()

RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote", help="rclone destination REMOTE:PATH (upload.remote).", show_default="upload.remote"
    ),
]
VerifyRemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote", help="Also check the copies on this rclone REMOTE:PATH.", show_default="none: local only"
    ),
]
VerifyModeOption = Annotated[
    str | None,
    typer.Option(
        "--verify-mode",
        help=f"{' | '.join(VERIFY_MODES)} (see docs/upload.md).",
        show_default=from_config("upload.verify_mode"),
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
    from pmws.cli import guarded
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


def verify_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Archives, directories (every archive under them) or manifests to check.",
            show_default="every manifest in --manifest-dir",
        ),
    ] = None,
    remote: VerifyRemoteOption = None,
    manifest_dir: Annotated[
        Path | None,
        typer.Option(
            "--manifest-dir",
            help="Per-file manifests of `pmws run`.",
            show_default=from_config("upload.manifest_dir"),
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="A `pmws sample` (checkpoint 010b) manifest.", show_default="none"),
    ] = None,
    config: ConfigOption = None,
    verify_mode: VerifyModeOption = None,
    repair_manifests: Annotated[
        bool,
        typer.Option(
            "--repair-manifests",
            help="First write a manifest for each closed archive without one that reads back strictly.",
        ),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Check archives against their manifests, locally and with --remote on the remote; exit 0 if all pass."""
    from pmws.cli import guarded
    from pmws.transfer.rclone import Rclone
    from pmws.transfer.verify import verify

    def action() -> int:
        cfg = load_config(
            config, overrides={"upload.manifest_dir": manifest_dir, "upload.verify_mode": verify_mode}
        )
        settings = cfg.upload
        report = verify(
            list(paths or []),
            manifest_dir=Path(settings.manifest_dir),
            remote=remote,
            sample_manifest=manifest,
            source=Path(settings.source),
            rclone=Rclone(settings.rclone_binary, settings.rclone_config or None) if remote else None,
            mode=settings.verify_mode,
            ledger_path=Path(settings.ledger_path),
            repair=repair_manifests,
        )
        render_verify(report, out)
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
            _line(console, f"[{colour}]{o.action}[/{colour}]: {escape(o.relative_path)}: {escape(o.detail)}")
    for path, reason in report.skipped:
        if reason == NO_MANIFEST:
            _line(
                console,
                f"[red]not eligible: {escape(path)} ({reason}; see pmws verify --repair-manifests)[/red]",
            )
        else:
            _line(console, f"[dim]not eligible: {escape(path)} ({reason})[/dim]")
    counts = ", ".join(f"{report.count(a)} {a}" for a in Action if report.count(a))
    _line(
        console,
        f"{len(report.outcomes)} eligible files, {sum(o.bytes for o in report.outcomes):,} bytes: "
        f"{counts or 'nothing to do'}; {report.deleted} deleted locally",
    )
    if report.cleanup:
        _line(console, f"[red]cleanup: {escape(report.cleanup)}[/red]")
    _warnings(console, report.warnings)
    if report.dry_run:
        _line(console, "[yellow]dry run: nothing was uploaded, written or deleted[/yellow]")


def render_verify(report: VerifyReport, console: Console) -> None:
    """The summary table (always), then every problem, one line each."""
    table = Table(
        title=escape("pmws verify" + (f" (remote {report.remote})" if report.remote else " (local)"))
    )
    for column in ("file", "local", "remote", "result"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        mark = "[green]ok[/green]" if r.ok else "[red]FAIL[/red]"
        table.add_row(escape(r.target.relative_path), r.local, r.remote, mark)
    console.print(table)
    for r in report.failed:
        for problem in r.problems:
            _line(console, f"[red]FAIL[/red] {escape(r.target.relative_path)}: {escape(problem)}")
    for problem in report.repair_problems:
        _line(console, f"[red]not repaired[/red] {escape(problem)}")
    for manifest in report.repaired:
        _line(
            console, f"[yellow]repaired[/yellow] {escape(str(manifest['relative_path']))}: manifest written"
        )
    _line(console, f"{len(report.results)} archives, {len(report.failed)} failed")
    _warnings(console, report.warnings)


def _warnings(console: Console, warnings: list[str]) -> None:
    for warning in warnings:
        _line(console, f"[yellow]warning:[/yellow] {escape(warning)}")


def _line(console: Console, text: str) -> None:
    """One line however long: paths and rclone messages are read (and grepped) whole."""
    console.print(text, highlight=False, soft_wrap=True)


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
