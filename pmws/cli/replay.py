"""`pmws replay`: recorded archives served as Polymarket's market websocket, Gamma and /books."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pmws.cli.base import (
    ConfigOption,
    DebugOption,
    err,
    from_config,
    guarded,
    out,
    print_line,
    serve_until_interrupted,
)


def replay_command(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="DIR_OR_FILES",
            help="Archive files or directories (every *.jsonl.gz under them), local or rclone REMOTE:PATH, "
            "merged by receive time; two replicas of a shard play once.",
            show_default=from_config("run.output_dir"),
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Websocket port, ws://HOST:PORT/ws/market (0 = any free port).")
    ] = 0,
    http_port: Annotated[
        int, typer.Option(help="HTTP port for Gamma and CLOB /books (0 = any free port).")
    ] = 0,
    speed: Annotated[
        str, typer.Option(help="1 = recorded pace, N = N times faster, max = as fast as clients read.")
    ] = "1",
    start: Annotated[
        str | None,
        typer.Option(
            help="Replay from this ISO 8601 time (books rebuilt up to it).", show_default="the first record"
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Stop at this ISO 8601 time.", show_default="the last record")
    ] = None,
    shift_to: Annotated[
        str | None,
        typer.Option(
            help="Show the replay's first record at this time (ISO 8601, or now) in Gamma's endDate and "
            "eventStartTime, so clients that keep only live windows (pmws run) take old ones. Frames are "
            "never changed.",
            show_default="the archived times",
        ),
    ] = None,
    discovery: Annotated[
        Path | None,
        typer.Option(
            help="A `pmws discover` output file for Gamma's answers.", show_default="the archive's metadata"
        ),
    ] = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve archives as Polymarket's market websocket, with Gamma and /books, until Ctrl-C."""
    from pmws.config import check_value, load_config
    from pmws.replay.load import build_replay
    from pmws.replay.server import serve_replay
    from pmws.rules import Between
    from pmws.transfer.rclone import Rclone

    def problem(text: str) -> None:  # pmws.read's words: a damaged file, lines skipped, an `.open` file
        print_line(err, f"[yellow]problem:[/yellow] {escape(text)}")

    def on_ready(replay: Any) -> None:
        out.print(f"gamma_url: {replay.gamma_url}\nclob_url: {replay.clob_url}\nws_url: {replay.ws_url}")
        out.print(
            f"replaying {len(replay.files)} file(s), {len(replay.catalog.tokens)} token(s); "
            "waiting for a subscription"
        )
        sys.stdout.flush()
        asyncio.get_running_loop().create_task(_announce_end(replay))
        if replay.shift_to is not None:
            asyncio.get_running_loop().create_task(_announce_shift(replay))

    def action() -> None:
        cfg = load_config(config)  # remotes are read with upload.rclone_binary and upload.rclone_config
        for name, value in (("--port", port), ("--http-port", http_port)):
            check_value(name, value, Between(0, 65535))
        replay = build_replay(
            list(inputs or [Path(cfg.run.output_dir)]),
            speed=speed,
            start=start,
            end=end,
            discovery=discovery,
            on_problem=problem,
            manifest_dirs=[Path(cfg.run.manifest_dir)],
            rclone=Rclone(cfg.upload.rclone_binary, cfg.upload.rclone_config or None),
            shift_to=shift_to,
        )
        where = f"{host} (--port {port}, --http-port {http_port})"
        serve_until_interrupted(serve_replay(replay, host, port, http_port, on_ready), where)

    guarded(debug, action)


async def _announce_shift(replay: Any) -> None:
    """One line once the shift is anchored on the first record to play (`--shift-to`)."""
    await replay.ready.wait()
    out.print(f"gamma times shifted by {replay.shift_ns // 1_000_000_000:+d} s (--shift-to)")
    sys.stdout.flush()


async def _announce_end(replay: Any) -> None:
    """One line when the archive has been played out (the server keeps answering until Ctrl-C)."""
    await replay.finished.wait()
    stats = replay.stats
    out.print(
        f"replay finished: {stats.frames} frames, {stats.frames_sent} sent, {stats.problem_count} problem(s)"
    )
    sys.stdout.flush()
