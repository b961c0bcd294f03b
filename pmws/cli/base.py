"""What every command shares: the consoles, `guarded` (the one place a PmwsError becomes a red line and an
exit code), building the Config, `--simulate`, and the reusable Annotated option types."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pmws.config import Config, load_config
from pmws.errors import PmwsError
from pmws.transfer.remote import VERIFY_MODES

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def from_config(dotted: str) -> str:
    """The help's default for a flag that overrides a config key: the key and its built-in default."""
    section, key = dotted.split(".")
    return f"{dotted} = {getattr(getattr(Config(), section), key)}"


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (see config/*.example.yaml).",
        show_default="none: built-in defaults, PMWS_* variables",
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks (also PMWS_DEBUG=1).")]
SimulateOption = Annotated[
    bool,
    typer.Option(
        "--simulate", help="Start the built-in Polymarket simulator and point every endpoint at it."
    ),
]
NoLiveOption = Annotated[
    bool, typer.Option("--no-live", help="Plain periodic lines instead of the live table.")
]


VerifyModeOption = Annotated[
    str | None,
    typer.Option(
        "--verify-mode",
        help=f"{' | '.join(VERIFY_MODES)} (see docs/upload.md).",
        show_default=from_config("upload.verify_mode"),
    ),
]


def debug_enabled(debug: bool) -> bool:
    return debug or os.environ.get("PMWS_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run `action`; a PmwsError becomes one red line and its exit code."""
    try:
        return action()
    except PmwsError as exc:
        if debug_enabled(debug):
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None


def build_config(config: Path | None, overrides: dict[str, Any]) -> Config:
    return load_config(config, overrides=overrides)


@contextlib.contextmanager
def simulated(config: Config, enabled: bool) -> Iterator[None]:
    """With --simulate: run the simulator in a background thread and point every endpoint at it."""
    if not enabled:
        yield
        return
    from pmws.sim import Simulator

    handle = Simulator().run_in_thread()
    config.endpoints.gamma_url = handle.gamma_url
    config.endpoints.clob_url = handle.clob_url
    config.endpoints.ws_url = handle.ws_url
    err.print(
        f"[dim]simulator: gamma {handle.gamma_url}  clob {handle.clob_url}  ws {handle.ws_url}[/dim]",
        soft_wrap=True,
    )
    try:
        yield
    finally:
        handle.stop()


def print_gate(outcome: Any) -> None:
    """The gate checks as a table, then the verdict (shared by `sample` and `gate`)."""
    table = Table(title="gate checks")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in outcome.checks:
        mark = (
            "[green]PASS[/green]"
            if check.passed
            else ("[red]FAIL[/red]" if check.required else "[yellow]warn[/yellow]")
        )
        table.add_row(check.name, mark, check.detail)
    out.print(table)
    colour = "green" if outcome.verdict.value.endswith("PASS") else "red"
    out.print(f"[bold {colour}]{outcome.verdict.value}[/bold {colour}]")
    for problem in outcome.not_written:
        err.print(f"[yellow]note:[/yellow] not written: {problem}", highlight=False, soft_wrap=True)


def print_warnings(console: Console, warnings: list[str]) -> None:
    for warning in warnings:
        print_line(console, f"[yellow]warning:[/yellow] {escape(warning)}")


def print_line(console: Console, text: str) -> None:
    """One line however long: paths and rclone messages are read (and grepped) whole."""
    console.print(text, highlight=False, soft_wrap=True)


def record(
    config: Config,
    *,
    simulate: bool,
    live: bool,
    start: Callable[[Config, Any], Coroutine[Any, Any, T]],
) -> T:
    """Run a recorder (`sample`, `run`) to its end, shown on the terminal (`live.console_view`)."""
    from pmws.heap import steady_heap
    from pmws.live import console_view

    steady_heap()  # a recorder runs for months: no heap creep from its 1 MiB write batches
    with simulated(config, simulate):
        return asyncio.run(start(config, console_view(out, live=live)))


def serve_until_interrupted(main: Coroutine[Any, Any, Any], where: str) -> None:
    """Run a server (`simulate`, `replay`) until Ctrl-C; a port it cannot bind is a ConfigError (exit 2)."""
    from pmws.errors import ConfigError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main)
    except OSError as exc:  # the address is taken, or not ours to bind
        raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
