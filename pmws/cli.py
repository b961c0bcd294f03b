"""The `pmws` command line: options → Config → one library call → render → exit code.

This is the only place a PmwsError becomes one red stderr line and an exit code; tracebacks only with
`--debug` or PMWS_DEBUG=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from pmws import __version__
from pmws.config import Config, load_config
from pmws.errors import PmwsError
from pmws.options import ConfigOption, DebugOption, from_config

app = typer.Typer(
    name="pmws",
    help="Record Polymarket's public market websocket feed with REST /books checkpoints, verifiably.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # never print locals: they can hold remotes and credentials
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain help: no `<bool>` type column for flags
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

SimulateOption = Annotated[
    bool,
    typer.Option(
        "--simulate", help="Start the built-in Polymarket simulator and point every endpoint at it."
    ),
]
NoLiveOption = Annotated[
    bool, typer.Option("--no-live", help="Plain periodic lines instead of the live table.")
]


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


def _debug_enabled(debug: bool) -> bool:
    return debug or os.environ.get("PMWS_DEBUG", "") not in ("", "0", "false")


def guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run `action`; a PmwsError becomes one red line and its exit code."""
    try:
        return action()
    except PmwsError as exc:
        if _debug_enabled(debug):
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


@app.command()
def discover(
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


@app.command()
def sample(
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

    def action() -> int:
        cfg = build_config(
            config,
            {
                "sample.market_limit": market_limit,
                "sample.duration_seconds": duration_seconds,
                "sample.rest_checkpoint_interval_seconds": rest_checkpoint_interval_seconds,
            },
        )
        with simulated(cfg, simulate):
            outcome = asyncio.run(
                run_sample(
                    cfg,
                    console=out,
                    live=not no_live,
                    discover_first=discover_first or simulate,
                    simulated=simulate,
                )
            )
        _print_gate(outcome.gate)
        out.print(f"manifest {outcome.gate.manifest_path}\nreport   {outcome.gate.report_path}")
        if outcome.error is not None:
            raise outcome.error
        return 0 if outcome.gate.verdict.value.endswith("PASS") else 1

    code = guarded(debug, action)
    raise typer.Exit(code)


@app.command()
def gate(
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
        _print_gate(outcome)
        return 0 if outcome.verdict.value.endswith("PASS") else 1

    raise typer.Exit(guarded(debug, action))


def _print_gate(outcome: Any) -> None:
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


@app.command()
def run(
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
        cfg = build_config(config, {"run.shard_index": shard_index, "run.shard_count": shard_count})
        with simulated(cfg, simulate):
            outcome = asyncio.run(run_recorder(cfg, console=out, live=not no_live, on_ready=_announce))
        print(summary_json(outcome), flush=True)
        if outcome.error is not None:
            raise outcome.error
        return 0

    raise typer.Exit(guarded(debug, action))


def _announce(recorder: Any, server: Any) -> None:
    where = f"http://{recorder.config.metrics.host}:{server.port}" if server is not None else "disabled"
    print(f"[pmws] session {recorder.session_id} shard {recorder.shard}; metrics {where}", flush=True)


OFF = "off"


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port for Gamma and CLOB (0 = any free port).")] = 0,
    ws_port: Annotated[int, typer.Option(help="Websocket port (0 = any free port).")] = 0,
    markets_per_window: Annotated[int, typer.Option(help="Markets listed per window length.")] = 3,
    record: Annotated[
        bool, typer.Option(help="Keep every sent frame in memory (off for benchmarks).")
    ] = True,
    rate: Annotated[
        float, typer.Option(help="Market-data frames per second (0 = as fast as possible).")
    ] = 20.0,
    write_config: Annotated[
        Path | None,
        typer.Option(help="Write a config file pointing at this simulator.", show_default="none"),
    ] = None,
    drop_after_frames: Annotated[
        int | None, typer.Option(help="Fault: drop each connection after N frames.", show_default=OFF)
    ] = None,
    silent: Annotated[bool, typer.Option(help="Fault: answer PONG but send no market data.")] = False,
    pong_only: Annotated[bool, typer.Option(help="Fault: send nothing but PONG.")] = False,
    non_json_every: Annotated[
        int | None, typer.Option(help="Fault: a non-JSON text frame every N frames.", show_default=OFF)
    ] = None,
    binary_every: Annotated[
        int | None, typer.Option(help="Fault: a binary frame every N frames.", show_default=OFF)
    ] = None,
    unknown_event_every: Annotated[
        int | None, typer.Option(help="Fault: an unknown event_type every N frames.", show_default=OFF)
    ] = None,
    books_status: Annotated[
        int | None,
        typer.Option(help="Fault: /books answers this HTTP status (429, 500).", show_default=OFF),
    ] = None,
    books_retry_after: Annotated[
        float | None, typer.Option(help="Fault: Retry-After seconds with 429.", show_default=OFF)
    ] = None,
    books_delay_seconds: Annotated[float, typer.Option(help="Fault: delay /books answers (timeouts).")] = 0.0,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate: serve the websocket as wss:// (Gamma/CLOB stay http).", show_default=OFF
        ),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="PEM private key for --tls-cert.", show_default="inside --tls-cert")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Checked like every command's config (a bad file exits 2), otherwise unused: the simulator "
            "takes its settings from these flags; --write-config writes a config pointing at it.",
            show_default="none",
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Run the local Polymarket simulator (Gamma, CLOB /books, market websocket) until Ctrl-C."""
    from pmws.config import Between, check_value
    from pmws.errors import ConfigError
    from pmws.sim import Faults, SimConfig, serve_forever

    def check_flags() -> None:
        for name, value, rule in (
            ("--port", port, Between(0, 65535)),
            ("--ws-port", ws_port, Between(0, 65535)),
            ("--markets-per-window", markets_per_window, Between(1, 1000)),
            ("--rate", rate, Between(0, 1_000_000)),
            ("--drop-after-frames", drop_after_frames, Between(1, 1e12)),
            ("--non-json-every", non_json_every, Between(1, 1e12)),
            ("--binary-every", binary_every, Between(1, 1e12)),
            ("--unknown-event-every", unknown_event_every, Between(1, 1e12)),
            ("--books-status", books_status, Between(100, 599)),
            ("--books-retry-after", books_retry_after, Between(0, 86400)),
            ("--books-delay-seconds", books_delay_seconds, Between(0, 86400)),
        ):
            check_value(name, value, rule)
        if tls_key is not None and tls_cert is None:
            raise ConfigError("--tls-key needs --tls-cert")
        if tls_cert is not None:
            from pmws.sim.tls import server_context

            try:
                server_context(tls_cert, tls_key)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ConfigError(f"--tls-cert/--tls-key: {reason}") from None

    def on_ready(sim: Any) -> None:
        out.print(f"gamma_url: {sim.gamma_url}\nclob_url: {sim.clob_url}\nws_url: {sim.ws_url}")
        if write_config is not None:
            from pmws.simconfig import write_sim_config

            write_sim_config(write_config, sim.gamma_url, sim.clob_url, sim.ws_url)
            out.print(f"wrote {write_config}")
        sys.stdout.flush()

    def action() -> None:
        build_config(config, {})
        check_flags()
        faults = Faults(
            drop_after_frames=drop_after_frames,
            silent=silent,
            pong_only=pong_only,
            send_non_json_every=non_json_every,
            send_binary_every=binary_every,
            send_unknown_event_every=unknown_event_every,
            books_status=books_status,
            books_retry_after=books_retry_after,
            books_delay_seconds=books_delay_seconds,
        )
        sim_config = SimConfig(
            rate_per_second=rate,
            markets_per_window=markets_per_window,
            record_frames=record,
            faults=faults,
            tls_cert=None if tls_cert is None else str(tls_cert),
            tls_key=None if tls_key is None else str(tls_key),
        )
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve_forever(sim_config, host, port, ws_port, on_ready))
        except OSError as exc:  # the address is taken, or not ours to bind
            raise ConfigError(
                f"cannot listen on {host} (--port {port}, --ws-port {ws_port}): {exc.strerror or exc}"
            ) from exc

    guarded(debug, action)


def _register_transfer_commands() -> None:
    """`upload` and `verify` live in pmws.cli_transfer (imported late: it imports `guarded` from here)."""
    from pmws.cli_transfer import upload_command, verify_command

    app.command("upload")(upload_command)
    app.command("verify")(verify_command)


_register_transfer_commands()


def main() -> None:
    """Console-script entry point."""
    app()
