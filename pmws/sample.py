"""`pmws sample` (checkpoint 010b): N markets, D seconds, websocket + REST checkpoints, manifest, gate.

One event loop runs the websocket link, the REST checkpoint loop and the view. Stopping (duration, Ctrl-C,
SIGTERM, or an error) always closes both archives, writes the manifest and runs the gate on what is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from pmws import __version__
from pmws.archive.writer import ArchiveWriter, GzipJsonlFile
from pmws.config import Config
from pmws.discover import discover, http_client, load_discovery
from pmws.envelope import TrackedToken, record_line, utc_text
from pmws.errors import DiscoveryError, PmwsError
from pmws.feed import Link, Sequencer
from pmws.gate import GateOutcome, run_gate
from pmws.layout import SamplePaths, discovery_latest, new_session_id, sample_paths
from pmws.live import LinkView, LiveView, Snapshot
from pmws.lock import acquire
from pmws.manifest import file_record, rebase_record, write_atomic, write_manifest
from pmws.markets import Market, iso, select_markets
from pmws.protocol import Classified
from pmws.report import sample_report
from pmws.rest import checkpoint_books
from pmws.signals import stop_on_signals
from pmws.stats import FeedStats


@dataclass
class RestCounters:
    checkpoints: int = 0
    ok: int = 0
    failed: int = 0
    failed_attempts: int = 0


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
        self.stats.observe(classified, received_ns, self.tracked)

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
    rest: RestCounters
    error: PmwsError | None


def tracked_tokens(markets: list[Market]) -> tuple[TrackedToken, ...]:
    return tuple(
        TrackedToken(m.market_slug, m.condition_id, t.token_id, t.outcome, m.end_time_utc)
        for m in markets
        for t in m.tokens
    )


async def run_sample(
    config: Config,
    *,
    console: Console,
    live: bool = True,
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
            config, console=console, live=live, discover_first=discover_first, simulated=simulated, stop=stop
        )


async def _run_sample(
    config: Config,
    *,
    console: Console,
    live: bool,
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
    link = Link(
        slot=0,
        url=config.endpoints.ws_url,
        tokens=tokens,
        settings=config.websocket,
        handler=handler,
        sequencer=Sequencer(),
        session_id=session_id,
        stop=stop,
        fail_fast=True,
    )
    rest = RestCounters()
    t0 = time.monotonic()

    def snapshot() -> Snapshot:
        view = LinkView(
            0,
            link.state.value,
            link.connection_sequence,
            link.reconnects,
            link.stale_events,
            len(tokens),
        )
        return Snapshot(
            f"pmws sample {session_id}",
            tokens,
            handler.stats,
            [view],
            rest.ok,
            rest.failed,
            time.monotonic() - t0,
            {},
        )

    error: PmwsError | None = None
    stopped_by = "duration"
    with (
        stop_on_signals(stop) as signalled,
        LiveView(snapshot, live=live, interval=settings.live_refresh_seconds, console=console) as view,
    ):
        link_task = asyncio.create_task(link.run(), name="pmws-link")
        rest_task = asyncio.create_task(
            _rest_loop(config, [t.token_id for t in tokens], rest_writer, rest, session_id, stop)
        )
        try:
            error = await _supervise(link_task, stop, settings.duration_seconds, view)
        finally:
            stop.set()
            await _finish(link_task, rest_task)
        if error is not None:
            stopped_by = "error"
        elif signalled:
            stopped_by = f"signal {signalled[0]}"
    ended = datetime.now(UTC)
    summaries = []
    errors = [str(error)] if error else []
    for kind, writer in (("ws_raw", ws_writer), ("rest_checkpoints", rest_writer)):
        try:
            summaries.append((kind, await writer.close()))
        except PmwsError as exc:
            errors.append(str(exc))
            error = error or exc
    manifest = {
        "checkpoint": "010b",
        "kind": "ws_raw_sample",
        "generator": f"pmws {__version__}",
        "session_id": session_id,
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
        "selection": {
            "discovery_file": str(discovery_file),
            "markets": [m.to_json() for m in selected],
            "tokens": [t.to_json() for t in tokens],
        },
        "counts": handler.stats.to_json(),
        "connections": handler.connections,
        "connections_opened": link.sequencer.connections,
        "reconnects": link.reconnects,
        "stale_feed_events": link.stale_events,
        "rest": vars(rest).copy(),
        "outputs": [file_record(s, kind=k, manifest_path=paths.session_manifest) for k, s in summaries],
        "report_path": str(paths.session_report),
        "session_manifest_path": str(paths.session_manifest),
        "errors": errors,
    }
    write_manifest(paths.session_manifest, manifest)
    gate = run_gate(paths.session_manifest)
    publish_latest(gate, paths)
    return SampleOutcome(session_id, paths, gate, handler.stats, rest, error)


def publish_latest(gate: GateOutcome, paths: SamplePaths) -> None:
    """Copy the gated session manifest and its report to the latest paths (`pmws gate` checks those).

    The session's own copies stay under `sessions/<session_id>/`, so the next sample replacing the latest
    never leaves this one's archives without a manifest (`pmws gate --session <id>`).
    """
    latest = dict(gate.manifest)
    latest["outputs"] = [rebase_record(r, paths.manifest) for r in latest.get("outputs", [])]
    latest["report_path"] = str(paths.report)
    write_manifest(paths.manifest, latest)
    write_atomic(paths.report, sample_report(latest))
    gate.manifest_path, gate.report_path = paths.manifest, paths.report


async def _supervise(
    link_task: asyncio.Task[None], stop: asyncio.Event, duration: float, view: LiveView
) -> PmwsError | None:
    """Wait for the duration, a stop signal, or the link failing; refresh the view meanwhile."""
    deadline = time.monotonic() + duration
    while not stop.is_set() and time.monotonic() < deadline:
        if link_task.done():
            exc = link_task.exception()
            if isinstance(exc, PmwsError):
                return exc
            if exc is not None:
                raise exc
            return None
        view.refresh()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(0.25, max(0.0, deadline - time.monotonic())))
    return None


async def _finish(link_task: asyncio.Task[None], rest_task: asyncio.Task[None]) -> None:
    rest_task.cancel()
    for task in (link_task, rest_task):
        with contextlib.suppress(asyncio.CancelledError, PmwsError):
            try:
                await asyncio.wait_for(task, timeout=5.0)
            except TimeoutError:
                task.cancel()


async def _rest_loop(
    config: Config,
    token_ids: list[str],
    writer: ArchiveWriter,
    counters: RestCounters,
    session_id: str,
    stop: asyncio.Event,
) -> None:
    """A `/books` checkpoint at start and every interval, in this event loop (async httpx)."""
    interval = config.sample.rest_checkpoint_interval_seconds
    async with http_client(config, timeout=config.rest.timeout_seconds) as client:
        while not stop.is_set():
            began = time.monotonic()
            counters.checkpoints += 1
            checkpoint = await checkpoint_books(
                client,
                config.endpoints.clob_url,
                token_ids,
                session_id=session_id,
                checkpoint_sequence=counters.checkpoints,
                max_attempts=config.rest.max_attempts,
                retry_max_seconds=min(config.rest.retry_max_seconds, interval),
                timeout=config.rest.timeout_seconds,
                batch_size=config.rest.batch_size,
            )
            for row in checkpoint.rows:
                writer.append(record_line(row))
                if not row.get("ok"):
                    counters.failed_attempts += 1
            if checkpoint.ok:
                counters.ok += 1
            else:
                counters.failed += 1
            remaining = interval - (time.monotonic() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, remaining))
