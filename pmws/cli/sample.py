"""`pmws sample`: record a bounded sample (checkpoint 010b), then gate it."""

from __future__ import annotations

from typing import Annotated

import typer

from pmws.cli.base import (
    ConfigOption,
    DebugOption,
    NoLiveOption,
    SimulateOption,
    build_config,
    from_config,
    guarded,
    out,
    print_gate,
    record,
)


def sample_command(
    config: ConfigOption = None,
    market_limit: Annotated[
        int | None,
        typer.Option(
            help="How many markets (both tokens each), 1-250.",
            show_default=from_config("sample.market_limit"),
        ),
    ] = None,
    duration_seconds: Annotated[
        float | None,
        typer.Option(help="How long to record.", show_default=from_config("sample.duration_seconds")),
    ] = None,
    rest_checkpoint_interval_seconds: Annotated[
        float | None,
        typer.Option(
            help="Seconds between REST /books checkpoints (first at start), at least 1.",
            show_default=from_config("sample.rest_checkpoint_interval_seconds"),
        ),
    ] = None,
    discover_first: Annotated[
        bool, typer.Option("--discover", help="Refresh the discovery file first.")
    ] = False,
    simulate: SimulateOption = False,
    no_live: NoLiveOption = False,
    debug: DebugOption = False,
) -> None:
    """Record a bounded sample (checkpoint 010b): websocket + REST checkpoints, manifest, report, gate."""
    from pmws.sample import run_sample

    overrides = {
        "sample.market_limit": market_limit,
        "sample.duration_seconds": duration_seconds,
        "sample.rest_checkpoint_interval_seconds": rest_checkpoint_interval_seconds,
    }

    def action() -> int:
        outcome = record(
            build_config(config, overrides),
            simulate=simulate,
            live=not no_live,
            start=lambda cfg, view: run_sample(
                cfg, view=view, discover_first=discover_first or simulate, simulated=simulate
            ),
        )
        print_gate(outcome.gate)
        out.print(f"manifest {outcome.gate.manifest_path}\nreport   {outcome.gate.report_path}")
        if outcome.error is not None:
            raise outcome.error
        return 0 if outcome.gate.verdict.value.endswith("PASS") else 1

    code = guarded(debug, action)
    raise typer.Exit(code)
