"""Reusable Annotated option types for every command, and how a flag's default shows in `--help`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmws.config import Config


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
