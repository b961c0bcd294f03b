"""`pmws sample` (checkpoint 010b): N markets, D seconds, websocket + REST checkpoints, manifest, gate.

The sample policy on the recorder shell `run` uses too (recorder.py): fixed markets on one websocket link
that fails fast, REST checkpoints, a deadline. Stopping (duration, Ctrl-C, SIGTERM, or an error) always
closes both archives, writes the manifest and runs the gate on what is on disk.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pmws import __version__
from pmws.archive.files import output_record, rebased, write_atomic, write_sample_manifest
from pmws.archive.writer import ArchiveWriter, GzipJsonlFile
from pmws.config import Config
from pmws.discover import discover, http_client, load_discovery
from pmws.envelope import record_line, utc_text
from pmws.errors import DiscoveryError, PmwsError
from pmws.feed import Link
from pmws.gate import GateOutcome, run_gate
from pmws.health import RestTotals
from pmws.layout import SamplePaths, discovery_latest, new_session_id, sample_paths
from pmws.lock import acquire
from pmws.manifest import SampleManifest
from pmws.markets import iso, select_markets, tracked_tokens
from pmws.pool import LinkPool
from pmws.protocol import Classified
from pmws.recorder import NoView, Shell, ViewFactory
from pmws.report import sample_report
from pmws.signals import stop_on_signals
from pmws.stats import FeedStats

#: How long stopping waits for the websocket link before cancelling it (what it got is kept).
LINK_STOP_SECONDS = 5.0


@dataclass
class SampleHandler:
    """Envelopes every frame into the ws_raw archive and counts it; lifecycle goes to the manifest."""

    writer: ArchiveWriter
    tracked: frozenset[str]
    stats: FeedStats = field(default_factory=FeedStats)
    connections: list[dict[str, Any]] = field(default_factory=list)

    def on_envelope(
        self, line: bytes, classified: Classified, received_ns: int, global_sequence: int
    ) -> None:
        self.writer.append(line, received_ns)
        self.stats.tally(classified, received_ns, self.tracked)

    def on_handed_over(self) -> None:
        self.stats.settle()

    def on_lifecycle(self, event: str, link: Link, details: dict[str, Any]) -> None:
        self.connections.append(
            {
                "event": event,
                "at_utc": utc_text(time.time_ns()),
                "connection_sequence": link.connection_sequence,
                "after_global_message_sequence": link.sequencer.messages,
                **details,
            }
        )

    async def wait_for_room(self) -> None:
        await self.writer.wait_for_room()

    def has_room(self) -> bool:
        return self.writer.has_room()

    def quiet_ok(self, link: Link, now: float) -> bool:
        return False  # a bounded sample has no REST coverage: a silent link is stale


@dataclass
class SampleOutcome:
    session_id: str
    paths: SamplePaths
    gate: GateOutcome
    stats: FeedStats
    rest: RestTotals
    error: PmwsError | None


async def run_sample(
    config: Config,
    *,
    view: ViewFactory = NoView,
    discover_first: bool = False,
    simulated: bool = False,
    stop: asyncio.Event | None = None,
) -> SampleOutcome:
    """Record one bounded sample and gate it; a second sample writing the same manifest/report stops first."""
    manifest, report = Path(config.sample.manifest_path), Path(config.sample.report_path)
    with (
        acquire([manifest.parent], owner=f"sample-{manifest.name}", session_id=None, command="pmws sample"),
        acquire([report.parent], owner=f"sample-{report.name}", session_id=None, command="pmws sample"),
    ):
        return await _run_sample(
            config, view=view, discover_first=discover_first, simulated=simulated, stop=stop
        )


async def _run_sample(
    config: Config,
    *,
    view: ViewFactory,
    discover_first: bool,
    simulated: bool,
    stop: asyncio.Event | None,
) -> SampleOutcome:
    settings = config.sample
    discovery_file = discovery_latest(config.discovery.output_dir, simulated=simulated)
    if discover_first:
        await discover(config, simulated=simulated)
    markets = load_discovery(discovery_file, simulated=simulated)
    started = datetime.now(UTC)
    selected = select_markets(
        markets, limit=settings.market_limit, now=started, run_seconds=settings.duration_seconds
    )
    if not selected:
        raise DiscoveryError(
            f"no market in {discovery_file} has Up and Down tokens "
            f"and a window outlasting a {settings.duration_seconds:g}s run; "
            "run `pmws discover` (or pass --discover)"
        )
    tokens = tracked_tokens(selected)
    session_id = new_session_id(started)
    paths = sample_paths(settings.output_dir, session_id, settings.manifest_path, settings.report_path)
    stop = stop or asyncio.Event()
    level = config.archive.compresslevel
    ws_writer = ArchiveWriter(
        GzipJsonlFile(paths.ws_raw, compresslevel=level),
        flush_interval=config.archive.flush_interval_seconds,
        max_buffered_bytes=config.archive.max_buffered_bytes,
    )
    rest_writer = ArchiveWriter(
        GzipJsonlFile(paths.rest_checkpoints, compresslevel=level),
        flush_interval=config.archive.flush_interval_seconds,
    )
    handler = SampleHandler(ws_writer, frozenset(t.token_id for t in tokens))
    pool = LinkPool(
        url=config.endpoints.ws_url,
        settings=config.websocket,
        handler=handler,
        session_id=session_id,
        stop_timeout=LINK_STOP_SECONDS,
        fail_fast=True,
    )
    shell = Shell(pool, stats=handler.stats, stop=stop, session_id=session_id)
    error: PmwsError | None = None
    stopped_by = "duration"
    with (
        stop_on_signals(stop) as signalled,
        view(
            lambda: shell.snapshot(f"pmws sample {session_id}", tokens), settings.live_refresh_seconds
        ) as shown,
    ):
        pool.start(0, tokens)
        async with http_client(config, timeout=config.rest.timeout_seconds) as client:
            rest_loop = shell.rest_loop(
                client,
                config,
                lambda: [t.token_id for t in tokens],
                interval=settings.rest_checkpoint_interval_seconds,
                write=lambda row: rest_writer.append(record_line(row)),
            )
            error = await shell.serve(
                [rest_loop], shown, deadline=time.monotonic() + settings.duration_seconds
            )
        if error is not None:
            stopped_by = "error"
        elif signalled:
            stopped_by = f"signal {signalled[0]}"
    ended, links = datetime.now(UTC), pool.totals()
    summaries = []
    errors = [str(error)] if error else []
    for kind, writer in (("ws_raw", ws_writer), ("rest_checkpoints", rest_writer)):
        try:
            summaries.append((kind, await writer.close()))
        except PmwsError as exc:
            errors.append(str(exc))
            error = error or exc
    details = {
        "checkpoint": "010b",
        "kind": "ws_raw_sample",
        "generator": f"pmws {__version__}",
        "simulated": simulated,
        "started_at_utc": iso(started),
        "ended_at_utc": iso(ended),
        "duration_seconds_requested": settings.duration_seconds,
        "duration_seconds_actual": round((ended - started).total_seconds(), 3),
        "stopped_by": stopped_by,
        "endpoints": vars(config.endpoints).copy(),
        "parameters": {
            "market_limit": settings.market_limit,
            "rest_checkpoint_interval_seconds": settings.rest_checkpoint_interval_seconds,
            "ping_interval_seconds": config.websocket.ping_interval_seconds,
            "stale_after_seconds": config.websocket.stale_after_seconds,
            "custom_feature_enabled": config.websocket.custom_feature_enabled,
        },
        "counts": handler.stats.to_json(),
        "connections": handler.connections,
        "connections_opened": pool.sequencer.connections,
        "reconnects": links["reconnects"],
        "stale_feed_events": links["stale_feed_events"],
        "rest": vars(shell.rest).copy(),
        "session_manifest_path": str(paths.session_manifest),
        "errors": errors,
    }
    selection = {
        "discovery_file": str(discovery_file),
        "markets": [m.to_json() for m in selected],
        "tokens": [t.to_json() for t in tokens],
    }
    outputs = [output_record(s, kind=k, manifest_path=paths.session_manifest) for k, s in summaries]
    manifest = SampleManifest(session_id, outputs, selection, str(paths.session_report), details=details)
    write_sample_manifest(paths.session_manifest, manifest)
    gate = run_gate(paths.session_manifest)
    publish_latest(gate, paths)
    return SampleOutcome(session_id, paths, gate, handler.stats, shell.rest, error)


def publish_latest(gate: GateOutcome, paths: SamplePaths) -> None:
    """Copy the gated session manifest and its report to the latest paths (`pmws gate` checks those).

    The session's own copies stay under `sessions/<session_id>/`, so the next sample replacing the latest
    never leaves this one's archives without a manifest (`pmws gate --session <id>`).
    """
    latest = rebased(gate.manifest, paths.manifest, report_path=paths.report)
    write_sample_manifest(paths.manifest, latest)
    write_atomic(paths.report, sample_report(latest.to_json()))
    gate.manifest_path, gate.report_path = paths.manifest, paths.report
