"""`pmws run`: record continuously until SIGTERM/SIGINT."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pmws.cli.base import (
    ConfigOption,
    DebugOption,
    NoLiveOption,
    SimulateOption,
    build_config,
    from_config,
    guarded,
    record,
)


def run_command(
    config: ConfigOption = None,
    shard_index: Annotated[
        int | None,
        typer.Option(help="This replica's shard (0-based).", show_default=from_config("run.shard_index")),
    ] = None,
    shard_count: Annotated[
        int | None,
        typer.Option(help="How many shards split the markets.", show_default=from_config("run.shard_count")),
    ] = None,
    simulate: SimulateOption = False,
    no_live: NoLiveOption = False,
    debug: DebugOption = False,
) -> None:
    """Record continuously until SIGTERM/SIGINT: rotated archives, manifests, counters, /metrics."""
    from pmws.run import run_recorder, summary_json

    def action() -> int:
        outcome = record(
            build_config(config, {"run.shard_index": shard_index, "run.shard_count": shard_count}),
            simulate=simulate,
            live=not no_live,
            start=lambda cfg, view: run_recorder(cfg, view=view, on_ready=_announce),
        )
        print(summary_json(outcome), flush=True)
        if outcome.error is not None:
            raise outcome.error
        return 0

    raise typer.Exit(guarded(debug, action))


def _announce(recorder: Any, server: Any) -> None:
    where = f"http://{recorder.config.metrics.host}:{server.port}" if server is not None else "disabled"
    print(f"[pmws] session {recorder.session_id} shard {recorder.shard}; metrics {where}", flush=True)
