"""`pmws simulate`: the local Polymarket simulator until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pmws.cli.base import DebugOption, build_config, guarded, out, serve_until_interrupted

OFF = "off"


def simulate_command(
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
    from pmws.config import check_value
    from pmws.errors import ConfigError
    from pmws.rules import Between
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
                raise ConfigError(f"--tls-cert/--tls-key: {reason}") from exc

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
        where = f"{host} (--port {port}, --ws-port {ws_port})"
        serve_until_interrupted(serve_forever(sim_config, host, port, ws_port, on_ready), where)

    guarded(debug, action)
