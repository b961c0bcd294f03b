"""`pmws verify`: archives against their manifests, locally and with --remote on the remote.

Exit codes: 0 when every archive passed, 1 when any check failed, 2 for a config error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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
from pmws.transfer.verify import VerifyReport

VerifyRemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote", help="Also check the copies on this rclone REMOTE:PATH.", show_default="none: local only"
    ),
]


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
            print_line(console, f"[red]FAIL[/red] {escape(r.target.relative_path)}: {escape(problem)}")
    for problem in report.repair_problems:
        print_line(console, f"[red]not repaired[/red] {escape(problem)}")
    for manifest in report.repaired:
        print_line(console, f"[yellow]repaired[/yellow] {escape(manifest.relative_path)}: manifest written")
    print_line(console, f"{len(report.results)} archives, {len(report.failed)} failed")
    print_warnings(console, report.warnings)
