"""The `pmws` command line: options → Config → one library call → render → exit code.

One module per command (`pmws.cli.<command>`), what they share in `pmws.cli.base`; this module builds the
Typer app and registers them. Only the CLI turns a PmwsError into one red stderr line and an exit code
(`base.guarded`); tracebacks only with `--debug` or PMWS_DEBUG=1.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pmws import __version__
from pmws.cli.base import out
from pmws.cli.books import books_command
from pmws.cli.discover import discover_command
from pmws.cli.gate import gate_command
from pmws.cli.replay import replay_command
from pmws.cli.run import run_command
from pmws.cli.sample import sample_command
from pmws.cli.simulate import simulate_command
from pmws.cli.upload import upload_command
from pmws.cli.verify import verify_command

app = typer.Typer(
    name="pmws",
    help="Record Polymarket's public market websocket feed with REST /books checkpoints, verifiably.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # never print locals: they can hold remotes and credentials
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain help: no `<bool>` type column for flags
)


def _version(value: bool) -> None:
    if value:
        out.print(f"pmws {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Record Polymarket's public market websocket feed with REST /books checkpoints, verifiably."""


for name, command in (
    ("discover", discover_command),
    ("sample", sample_command),
    ("gate", gate_command),
    ("run", run_command),
    ("simulate", simulate_command),
    ("upload", upload_command),
    ("verify", verify_command),
    ("books", books_command),
    ("replay", replay_command),
):
    app.command(name)(command)


def main() -> None:
    """Console-script entry point."""
    app()
