"""`pmws discover`: find the live BTC up/down markets on Gamma and write the discovery file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pmws.cli.base import (
    ConfigOption,
    DebugOption,
    SimulateOption,
    build_config,
    from_config,
    guarded,
    out,
    simulated,
)


def discover_command(
    config: ConfigOption = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Where the discovery file goes.", show_default=from_config("discovery.output_dir")),
    ] = None,
    simulate: SimulateOption = False,
    debug: DebugOption = False,
) -> None:
    """Find active BTC up/down markets on Gamma; write data/discovery/polymarket_btc_markets_latest.json."""
    from pmws.discover import discover as run_discover

    def action() -> None:
        cfg = build_config(config, {"discovery.output_dir": output_dir})
        with simulated(cfg, simulate):
            outcome = asyncio.run(run_discover(cfg, simulated=simulate))
        table = Table(title=f"{len(outcome.result.markets)} live BTC up/down markets")
        for column in ("slug", "window", "ends (UTC)", "Up token", "Down token"):
            table.add_column(column)
        for market in outcome.result.markets[:50]:
            by_label = {t.outcome.lower(): t.token_id for t in market.tokens}
            table.add_row(
                market.market_slug,
                market.window,
                market.end_time_utc,
                _short(by_label.get("up")),
                _short(by_label.get("down")),
            )
        out.print(table)
        result = outcome.result
        out.print(
            f"seen {result.seen} objects; skipped {result.skipped_not_btc} not BTC up/down, "
            f"{result.skipped_malformed} malformed, not live {result.skipped_not_live}; "
            f"{outcome.requests} requests ({outcome.failed_requests} failed)"
        )
        out.print(f"wrote {outcome.latest_path}")

    guarded(debug, action)


def _short(token: str | None) -> str:
    return "-" if not token else f"{token[:8]}…{token[-6:]}"
