"""`pmws gate`: re-read a sample's outputs; exit 0 on WS_RAW_SAMPLE_PASS, 1 otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmws.cli.base import ConfigOption, DebugOption, build_config, from_config, guarded, print_gate


def gate_command(
    manifest: Annotated[
        Path | None,
        typer.Option(help="The sample manifest to check.", show_default=from_config("sample.manifest_path")),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(help="Check this session's own manifest (default: the latest sample's)."),
    ] = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Re-read a sample's outputs, recompute checksums; exit 0 on WS_RAW_SAMPLE_PASS, 1 otherwise."""
    from pmws.errors import ConfigError
    from pmws.gate import run_gate
    from pmws.layout import session_output

    def action() -> int:
        cfg = build_config(config, {})
        target = manifest or Path(cfg.sample.manifest_path)
        if session is not None:
            if manifest is not None:
                raise ConfigError("give --manifest or --session, not both")
            if not session or Path(session).name != session or session in (".", ".."):
                raise ConfigError(f"--session {session!r}: not a session id (e.g. 20261124T015000Z-3fa2c1)")
            target = session_output(cfg.sample.manifest_path, session)
        outcome = run_gate(target)
        print_gate(outcome)
        return 0 if outcome.verdict.value.endswith("PASS") else 1

    raise typer.Exit(guarded(debug, action))
