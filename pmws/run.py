"""`pmws run`: the long-running recorder (orderbooks-ws-recorder in Kubernetes).

Same hot path as `sample` (envelope → archive); adds rotation, rediscovery with subscribe/unsubscribe,
several connections, book-hash verification, REST divergence checks, metrics, and salvage on start. Gaps are
visible in the stream itself: lifecycle lines (connect, subscribe, disconnect, stale_feed, rotation …).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from rich.console import Console

from pmws.archive.rotating import RotatingArchive, repair_manifests, salvage_orphans
from pmws.archive.writer import LatencyStats
from pmws.config import Config
from pmws.coverage import ActionKind, Coverage, event_assets, metric_samples
from pmws.discover import http_client
from pmws.envelope import TrackedToken, record_line, utc_text
from pmws.errors import ArchiveError, ConfigError, PmwsError
from pmws.feed import Link, Sequencer
from pmws.gamma import fetch_btc_markets
from pmws.live import LinkView, LiveView, Snapshot
from pmws.lock import acquire
from pmws.markets import WINDOW_SECONDS, Market, filter_live
from pmws.metrics import HealthServer, RecorderCollector
from pmws.protocol import Classified, iter_events
from pmws.rest import checkpoint_books
from pmws.sharding import shard_label, shard_of
from pmws.signals import stop_on_signals
from pmws.stats import FeedStats
from pmws.subscriptions import plan_connections
from pmws.transfer.backlog import BacklogGauges, closed_bytes_sample
from pmws.verifier import Comparison, Verifier


def resolve_shard(config: Config, env: dict[str, str] | None = None) -> tuple[int, int]:
    """(index, count) from config, or the StatefulSet ordinal at the end of HOSTNAME (`…-3`)."""
    env = dict(os.environ) if env is None else env
    index, count = config.run.shard_index, config.run.shard_count
    if config.run.shard_index_from_hostname:
        host = env.get("HOSTNAME", "")
        match = re.search(r"-(\d+)$", host)
        if not match:
            raise ConfigError(f"run.shard_index_from_hostname: HOSTNAME {host!r} does not end in -<ordinal>")
        index = int(match.group(1))
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"run.shard_index {index} must be in 0..{count - 1} (run.shard_count {count})")
    return index, count


@dataclass
class RestTotals:
    checkpoints_ok: int = 0
    checkpoints_failed: int = 0
    attempts_failed: int = 0


@dataclass
class RunOutcome:
    session_id: str
    files_closed: int
    salvaged: list[dict[str, Any]]
    error: PmwsError | None
    counters: dict[str, int] = field(default_factory=dict)
    recovery: StartRecovery | None = None


@dataclass
class StartRecovery:
    """What a start found and fixed before recording: salvaged orphans, repaired manifests, problems."""

    salvaged: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)  # `.open` files of live sessions (other shards)
    problems: list[str] = field(default_factory=list)  # could not be recovered: left untouched

    def record(self) -> dict[str, Any]:
        """The `startup_recovery` lifecycle line (written first into the new session's stream)."""
        return {
            "record_type": "lifecycle",
            "event": "startup_recovery",
            "salvaged": [m.get("file") for m in self.salvaged],
            "repaired_manifests": [m.get("file") for m in self.repaired],
            "left_alone": self.left_alone,
            "problems": self.problems,
        }


class Recorder:
    """Everything one `pmws run` process owns."""

    def __init__(
        self,
        config: Config,
        *,
        stop: asyncio.Event,
        session_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config = config
        self.clock = clock
        self.stop = stop
        self.session_id = session_id
        self.shard_index, self.shard_count = resolve_shard(config)
        self.shard = shard_label(self.shard_index, self.shard_count)
        self.sequencer = Sequencer()
        self.stats = FeedStats()
        # run.verify_in_worker: every book hash verified in a worker process fed in frame order (verifier.py)
        self.tracker = Verifier(worker=config.run.verify_book_hashes and config.run.verify_in_worker)
        self._verifier_failure_recorded = False
        self.coverage = Coverage(resubscribe_timeout=config.websocket.resubscribe_timeout_seconds)
        self.rest = RestTotals()
        self.latency = LatencyStats()
        self.links: list[Link | None] = []
        self.link_tasks: dict[int, asyncio.Task[None]] = {}
        self.retired = {"reconnects": 0, "stale_feed_events": 0, "pong_timeouts": 0, "connect_failures": 0}
        self.recorded: dict[str, Market] = {}
        self.tokens: dict[str, TrackedToken] = {}
        self.resolved: set[str] = set()
        self.discovery_failures = 0
        self.rediscover_now = asyncio.Event()
        self.heartbeat = time.monotonic()
        self.started = time.monotonic()
        root = Path(config.run.output_dir)
        manifests = Path(config.run.manifest_dir)
        self.ws = self._archive(
            "ws_raw",
            root,
            manifests,
            on_open=self._file_opened,
            latency=self.latency,
            at_close=lambda: {
                "token_states_at_close": {str(k): n for k, n in self.coverage.by_state().items()}
            },
        )
        self.rest_archive = self._archive("rest_checkpoints", root, manifests)

    def _archive(self, kind: str, root: Path, manifests: Path, **extra: Any) -> RotatingArchive:
        return RotatingArchive(
            kind,
            root=root,
            manifest_dir=manifests,
            session_id=self.session_id,
            interval=self.config.run.rotate_interval_seconds,
            settings=self.config.archive,
            counters=self._synced_counters,
            shard=self.shard,
            **extra,
        )

    # --- counters ---------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Every cumulative counter (per-file manifests store their deltas)."""
        live = [link for link in self.links if link is not None]
        hashes = self.tracker.counters
        return {
            "frames": self.stats.frames,
            "market_data_messages": self.stats.market_data_messages,
            "reconnects": self.retired["reconnects"] + sum(link.reconnects for link in live),
            "stale_feed_events": self.retired["stale_feed_events"] + sum(link.stale_events for link in live),
            "pong_timeouts": self.retired["pong_timeouts"] + sum(link.pong_timeouts for link in live),
            "connect_failures": self.retired["connect_failures"]
            + sum(link.connect_failures for link in live),
            "rest_checkpoints_ok": self.rest.checkpoints_ok,
            "rest_checkpoints_failed": self.rest.checkpoints_failed,
            "rest_attempts_failed": self.rest.attempts_failed,
            "parser_json_errors": self.stats.json_errors,
            "parser_unknown_shapes": self.stats.unknown_shapes,
            "parser_unknown_event_types": sum(self.stats.unknown_event_types.values()),
            "binary_frames": self.stats.binary_frames,
            "book_hash_verified": hashes.verified,
            "book_hash_mismatched": hashes.mismatched,
            "book_hash_pending": hashes.pending,
            "book_resyncs": hashes.resyncs,
            "rest_book_agree": self.tracker.rest_agree,
            "divergences": self.tracker.rest_divergent,
            "discovery_failures": self.discovery_failures,
            "token_blind_events": self.coverage.blind_events,
            "token_resubscribes": self.coverage.resubscribes,
            "token_resubscribe_reconnects": self.coverage.resubscribe_reconnects,
            "token_recoveries": self.coverage.recoveries,
        }

    def _synced_counters(self) -> dict[str, int]:
        """The counters once the verifier has caught up: exact as of the last frame (a file's end)."""
        self.tracker.sync()
        return self.counters()

    def metrics_sample(self) -> dict[str, tuple[str, str, Any]]:
        counters = self.counters()
        gauges = {"book_hash_pending"}
        out: dict[str, tuple[str, str, Any]] = {}
        for name, value in counters.items():
            kind = "gauge" if name in gauges else "counter"
            out[f"pmws_{name}"] = (kind, f"pmws {name.replace('_', ' ')}", value)
        states: dict[Any, float] = {}
        for link in self.links:
            if link is not None:
                key = (("state", link.state.value),)
                states[key] = states.get(key, 0) + 1
        out["pmws_connections"] = ("gauge", "connections by state", states or {(("state", "none"),): 0})
        # This runs in the metrics thread while the loop changes these dicts: iterate over copies.
        labels = {t: (v.market_slug, v.outcome) for t, v in dict(self.tokens).items()}
        out.update(metric_samples(self.coverage, labels, time.monotonic()))
        out["pmws_subscribed_assets"] = ("gauge", "assets subscribed", len(self.tokens))
        out["pmws_recorded_markets"] = ("gauge", "markets recorded", len(self.recorded))
        ages = [
            time.monotonic() - link.last_data_monotonic
            for link in self.links
            if link is not None and link.last_data_monotonic is not None
        ]
        out["pmws_seconds_since_market_data"] = (
            "gauge",
            "worst link's seconds since market data",
            max(ages) if ages else -1,
        )
        for q in (50, 99):
            out[f"pmws_frame_to_disk_p{q}_ms"] = (
                "gauge",
                f"p{q} receive-to-flush ms (sampled frames)",
                self.latency.percentile(q / 100) or 0.0,
            )
        return out

    def ready(self) -> tuple[bool, str]:
        live = [link for link in self.links if link is not None]
        if not live:
            return False, "no connection yet"
        stale = [link.slot for link in live if not link.is_fresh()]
        if stale:
            return False, f"connections not subscribed or stale: {stale}"
        return True, f"{len(live)} connections subscribed and fresh"

    # --- the stream -------------------------------------------------------------------------------

    def on_envelope(
        self, line: bytes, classified: Classified, received_ns: int, global_sequence: int
    ) -> None:
        self.ws.append(line, received_ns, sequence=global_sequence, events=classified.event_types)
        self.stats.observe(classified, received_ns, self.tokens)
        if classified.parsed is not None:
            self._follow_events(classified, received_ns)

    def _follow_events(self, classified: Classified, received_ns: int) -> None:
        verify = self.config.run.verify_book_hashes
        parsed = classified.parsed
        now = time.monotonic()
        if verify:
            self.tracker.observe_frame(classified)
            for divergence in self.tracker.take_divergences():
                self._write_record(divergence.to_record(), received_ns)
        for event in (parsed,) if type(parsed) is dict else iter_events(parsed):
            kind = event.get("event_type")
            if verify:  # coverage compares REST with the rebuilt books: nothing to follow without them
                for asset in event_assets(event):
                    self.coverage.on_message(asset, now, is_book=kind == "book")
            if kind == "market_resolved" and isinstance(event.get("market"), str):
                self.resolved.add(event["market"])
                self.rediscover_now.set()
            elif kind == "new_market":
                self.rediscover_now.set()

    def on_lifecycle(self, event: str, link: Link, details: dict[str, Any]) -> None:
        record = {
            "event": event,
            "slot": link.slot,
            "connection_sequence": link.connection_sequence,
            **details,
        }
        self._write_record({"record_type": "lifecycle", **record}, time.time_ns())

    async def wait_for_room(self) -> None:
        await self.ws.wait_for_room()

    def has_room(self) -> bool:
        period = self.ws.current
        return period is not None and period.writer.has_room()

    def quiet_ok(self, link: Link, now: float) -> bool:
        within = self.config.websocket.stale_after_seconds
        return self.coverage.all_quiet(link.asset_ids, now, within=within)

    def _write_record(self, record: dict[str, Any], at_ns: int) -> None:
        full = {
            **record,
            "at_utc": utc_text(at_ns),
            "at_ns": at_ns,
            "session_id": self.session_id,
            "shard": self.shard,
            "after_global_message_sequence": self.sequencer.messages,
        }
        self.ws.append(record_line(full), at_ns, record_type=str(record["record_type"]))

    def _file_opened(self, archive: RotatingArchive) -> None:
        """First lines of every ws_raw file: the rotation and the subscription state right now."""
        now = time.time_ns()
        period = archive.current
        assert period is not None
        self._write_record(
            {"record_type": "lifecycle", "event": "rotation", "file": period.name.final.name}, now
        )
        for link in self.links:
            if link is not None:
                self._write_record(
                    {
                        "record_type": "lifecycle",
                        "event": "subscription_state",
                        "slot": link.slot,
                        "connection_sequence": link.connection_sequence,
                        "state": link.state.value,
                        "assets_ids": link.asset_ids,
                    },
                    now,
                )

    # --- markets and connections ------------------------------------------------------------------

    async def discover_once(self, client: Any) -> list[Market]:
        """Live BTC up/down markets of this shard that start within the subscribe-ahead horizon."""
        now = self.clock()
        cfg = self.config
        fetch = await fetch_btc_markets(
            client,
            cfg.endpoints.gamma_url,
            now=now,
            windows=cfg.discovery.windows,
            # a window starting within the horizon ends at most one window length after it
            lookahead_seconds=cfg.run.subscribe_ahead_seconds
            + max(WINDOW_SECONDS[w] for w in cfg.discovery.windows),
            page_limit=cfg.discovery.page_limit,
            max_pages=cfg.discovery.max_pages,
            request_timeout=cfg.discovery.request_timeout_seconds,
        )
        horizon = now + timedelta(seconds=cfg.run.subscribe_ahead_seconds)
        markets = filter_live(fetch.objects, now, windows=cfg.discovery.windows).markets
        return [
            m
            for m in markets
            if (m.start is None or m.start <= horizon)
            and shard_of(m.condition_id, self.shard_count) == self.shard_index
        ]

    def desired_markets(self, live: list[Market], now: datetime) -> dict[str, Market]:
        """Live markets, plus recorded ones Gamma stopped listing until resolved or past the grace."""
        grace = timedelta(seconds=self.config.run.post_end_grace_seconds)
        desired = {m.condition_id: m for m in live if m.condition_id not in self.resolved}
        for condition, market in self.recorded.items():
            if condition in desired or condition in self.resolved:
                continue
            if now < market.end + grace:
                desired[condition] = market
        return desired

    async def apply(self, desired: dict[str, Market]) -> None:
        """Subscribe new markets, unsubscribe gone ones, open/close connections as needed."""
        for market in desired.values():
            for token in market.tokens:
                self.tokens[token.token_id] = TrackedToken(
                    market.market_slug,
                    market.condition_id,
                    token.token_id,
                    token.outcome,
                    market.end_time_utc,
                )
                if market.min_order_size:
                    self.tracker.set_metadata(token.token_id, market.min_order_size, market.neg_risk)
        current = [link.asset_ids if link is not None else [] for link in self.links]
        ordered = sorted(desired.values(), key=lambda m: (m.end, m.market_slug))
        plan = plan_connections(
            current, [m.token_ids() for m in ordered], self.config.websocket.max_assets_per_connection
        )
        for slot, assets in enumerate(plan):
            tokens = tuple(self.tokens[a] for a in assets)
            link = self.links[slot] if slot < len(self.links) else None
            if link is None and tokens:
                self._start_link(slot, tokens)
            elif link is not None and not tokens:
                await self._retire_link(slot)
            elif link is not None and [t.token_id for t in tokens] != link.asset_ids:
                await link.set_tokens(tokens)
        gone = set(self.recorded) - set(desired)
        for condition in gone:
            for token in self.recorded[condition].tokens:
                self.tokens.pop(token.token_id, None)
                self.tracker.forget(token.token_id)
                self.stats.forget(token.token_id)
        self.coverage.track(self.tokens)
        self.recorded = dict(desired)

    def _start_link(self, slot: int, tokens: tuple[TrackedToken, ...]) -> None:
        while len(self.links) <= slot:
            self.links.append(None)
        link = Link(
            slot=slot,
            url=self.config.endpoints.ws_url,
            tokens=tokens,
            settings=self.config.websocket,
            handler=self,
            sequencer=self.sequencer,
            session_id=self.session_id,
            stop=asyncio.Event(),
            shard=self.shard,
        )
        self.links[slot] = link
        self.link_tasks[slot] = asyncio.create_task(link.run(), name=f"pmws-link-{slot}")

    async def _retire_link(self, slot: int) -> None:
        """Stop a link; past `run.shutdown_timeout_seconds` its task is cancelled (what it got is kept)."""
        link = self.links[slot]
        if link is None:
            return
        link.stop.set()
        task = self.link_tasks.pop(slot, None)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=self.config.run.shutdown_timeout_seconds)
        for key, value in (
            ("reconnects", link.reconnects),
            ("stale_feed_events", link.stale_events),
            ("pong_timeouts", link.pong_timeouts),
            ("connect_failures", link.connect_failures),
        ):
            self.retired[key] += value
        self.links[slot] = None

    # --- loops --------------------------------------------------------------------------------------

    async def discovery_loop(self, client: Any) -> None:
        interval = self.config.run.rediscover_interval_seconds
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rediscover_now.wait(), timeout=interval)
            self.rediscover_now.clear()
            if self.stop.is_set():
                return
            try:
                live = await self.discover_once(client)
            except PmwsError as exc:
                self.discovery_failures += 1
                self._write_record(
                    {"record_type": "lifecycle", "event": "discovery_failed", "reason": str(exc)},
                    time.time_ns(),
                )
                continue
            await self.apply(self.desired_markets(live, self.clock()))

    async def rest_loop(self, client: Any) -> None:
        interval = self.config.run.rest_checkpoint_interval_seconds
        sequence = 0
        while not self.stop.is_set():
            began = time.monotonic()
            token_ids = list(self.tokens)
            if token_ids:
                sequence += 1
                await self._checkpoint(client, token_ids, sequence)
            remaining = interval - (time.monotonic() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, remaining))

    async def _checkpoint(self, client: Any, token_ids: list[str], sequence: int) -> None:
        cfg = self.config
        checkpoint = await checkpoint_books(
            client,
            cfg.endpoints.clob_url,
            token_ids,
            session_id=self.session_id,
            checkpoint_sequence=sequence,
            max_attempts=cfg.rest.max_attempts,
            retry_max_seconds=min(cfg.rest.retry_max_seconds, cfg.run.rest_checkpoint_interval_seconds),
            timeout=cfg.rest.timeout_seconds,
            batch_size=cfg.rest.batch_size,
        )
        for row in checkpoint.rows:
            row["shard"] = self.shard
            self.rest_archive.append(record_line(row), time.time_ns(), record_type="rest_checkpoint")
            if not row.get("ok"):
                self.rest.attempts_failed += 1
        if checkpoint.books is None:
            self.rest.checkpoints_failed += 1
            return
        self.rest.checkpoints_ok += 1
        if cfg.run.verify_book_hashes:
            comparisons = await self.tracker.compare_rest(checkpoint.books)
            for comparison in comparisons:
                if comparison.divergence is not None:
                    self._write_record(comparison.divergence.to_record(), time.time_ns())
            await self._check_coverage(checkpoint.books, comparisons)

    async def _check_coverage(self, summaries: list[dict[str, Any]], comparisons: list[Comparison]) -> None:
        """Feed each REST summary to the coverage machine; resubscribe blind tokens (coverage.py)."""
        now = time.monotonic()
        for summary, comparison in zip(summaries, comparisons, strict=False):
            token = str(summary.get("asset_id", ""))
            rest_hash = comparison.rest_hash
            action = self.coverage.on_checkpoint(
                token,
                rest_hash,
                (rest_hash,) if comparison.feed_agrees else (),
                now,
                feed_hash=comparison.feed_hash,
            )
            link = self._link_of(token) if action is not None else None
            if action is None or link is None:
                continue
            market = self.tokens.get(token)
            self._write_record(
                {
                    "record_type": "lifecycle",
                    "event": "token_blind",
                    "slot": link.slot,
                    "connection_sequence": link.connection_sequence,
                    "token_id": token,
                    "market_slug": market.market_slug if market else None,
                    "outcome": market.outcome if market else None,
                    "rest_hash": action.rest_hash,
                    "feed_hash": action.feed_hash,
                    "last_message_age_seconds": action.last_message_age_seconds,
                    "last_agreeing_checkpoint_age_seconds": action.last_agreeing_checkpoint_age_seconds,
                },
                time.time_ns(),
            )
            await link.resubscribe([token])

    async def _coverage_due(self) -> None:
        """Reconnect links whose resubscribed token brought no fresh book within the bound."""
        for action in self.coverage.due(time.monotonic()):
            link = self._link_of(action.token_id)
            if action.kind is ActionKind.RECONNECT and link is not None:
                self.on_lifecycle("resubscribe_timeout", link, {"token_id": action.token_id})
                await link.reconnect("resubscribe_timeout")

    def _link_of(self, token: str) -> Link | None:
        return next((ln for ln in self.links if ln is not None and token in ln.asset_ids), None)

    async def rotation_loop(self) -> None:
        """Close files on time even when the feed is quiet; keep the health heartbeat."""
        while not self.stop.is_set():
            self.heartbeat = time.monotonic()
            if self.tracker.failed and not self._verifier_failure_recorded:
                self._verifier_failure_recorded = True  # verification went on in this process
                self._write_record(
                    {
                        "record_type": "lifecycle",
                        "event": "verifier_in_process",
                        "reason": self.tracker.failed,
                    },
                    time.time_ns(),
                )
            self.ws.roll_if_due()
            self.rest_archive.roll_if_due()
            await self._coverage_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=0.2)

    def snapshot(self) -> Snapshot:
        views = [
            LinkView(
                link.slot,
                link.state.value,
                link.connection_sequence,
                link.reconnects,
                link.stale_events,
                len(link.tokens),
            )
            for link in self.links
            if link is not None
        ]
        counters = self.counters()
        extra: dict[str, Any] = {
            k: counters[k]
            for k in (
                "reconnects",
                "stale_feed_events",
                "parser_json_errors",
                "book_hash_verified",
                "book_hash_mismatched",
                "divergences",
            )
        }
        current = self.ws.current_open_path
        extra["file"] = current.name if current else "-"
        extra["coverage"] = ",".join(f"{k}:{v}" for k, v in self.coverage.by_state().items() if v) or "-"
        return Snapshot(
            f"pmws run {self.session_id} shard {self.shard}",
            list(self.tokens.values()),
            self.stats,
            views,
            self.rest.checkpoints_ok,
            self.rest.checkpoints_failed,
            time.monotonic() - self.started,
            extra,
            {token: self.coverage.state(token).value for token in self.tokens},
        )

    async def shutdown(self) -> None:
        for slot in range(len(self.links)):
            if self.links[slot] is not None:
                self.links[slot].stop.set()  # type: ignore[union-attr]
        await asyncio.gather(*(self._retire_link(s) for s in range(len(self.links))), return_exceptions=True)


async def run_recorder(
    config: Config,
    *,
    console: Console,
    live: bool = False,
    stop: asyncio.Event | None = None,
    session_id: str | None = None,
    on_ready: Any = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunOutcome:
    """Record until stopped (SIGTERM/SIGINT or `stop`); salvage orphans first."""
    stop = stop or asyncio.Event()
    with stop_on_signals(stop):  # from the first moment: a SIGTERM during salvage still ends cleanly
        return await _record(
            config,
            console=console,
            live=live,
            stop=stop,
            session_id=session_id,
            on_ready=on_ready,
            clock=clock,
        )


async def _record(
    config: Config,
    *,
    console: Console,
    live: bool,
    stop: asyncio.Event,
    session_id: str | None,
    on_ready: Any,
    clock: Callable[[], datetime],
) -> RunOutcome:
    from pmws.layout import new_session_id

    root, manifests = Path(config.run.output_dir), Path(config.run.manifest_dir)
    session_id = session_id or new_session_id()
    index, count = resolve_shard(config)
    # The output lock comes before anything is touched (salvage, metrics port): a second recorder of the
    # same shard stops here, naming the first, instead of salvaging its live files.
    with acquire(
        [root, manifests],
        owner=f"run-shard-{index}of{count}",
        session_id=session_id,
        command="pmws run",
        session_root=root,
    ):
        _check_writable(root, manifests)
        recovery = recover_outputs(root, manifests, config)
        recorder = Recorder(config, stop=stop, session_id=session_id, clock=clock)
        server = _start_metrics(config, recorder)
        try:
            if on_ready is not None:
                on_ready(recorder, server)
            return await _serve(
                recorder, config, console=console, live=live, stop=stop, clock=clock, recovery=recovery
            )
        finally:
            recorder.tracker.close()  # after the archives closed (their counters synced): stop the worker
            if server is not None:
                server.stop()


def recover_outputs(root: Path, manifests: Path, config: Config) -> StartRecovery:
    """Salvage orphans whose writer is gone, then give manifest-less closed archives their manifest."""
    salvage = salvage_orphans(root, manifest_dir=manifests, settings=config.archive)
    repair = repair_manifests(root, manifests)
    return StartRecovery(
        salvaged=salvage.salvaged,
        repaired=repair.repaired,
        left_alone=[str(p) for p in salvage.live],
        problems=salvage.problems + repair.problems,
    )


async def _serve(
    recorder: Recorder,
    config: Config,
    *,
    console: Console,
    live: bool,
    stop: asyncio.Event,
    clock: Callable[[], datetime],
    recovery: StartRecovery,
) -> RunOutcome:
    error: PmwsError | None = None
    async with http_client(config, timeout=config.rest.timeout_seconds) as client:
        first = await recorder.discover_once(client)  # unreachable Gamma at start: one clear error
        with (
            LiveView(
                recorder.snapshot, live=live, interval=config.run.status_interval_seconds, console=console
            ) as view,
        ):
            recorder.ws.roll_if_due()
            recorder.rest_archive.roll_if_due()
            if recovery.salvaged or recovery.repaired or recovery.problems or recovery.left_alone:
                recorder._write_record(recovery.record(), time.time_ns())
            await recorder.apply(recorder.desired_markets(first, clock()))
            loops = [
                asyncio.create_task(c)
                for c in (
                    recorder.discovery_loop(client),
                    recorder.rest_loop(client),
                    recorder.rotation_loop(),
                )
            ]
            try:
                error = await _supervise(recorder, loops, view)
            finally:
                stop.set()
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
                await recorder.shutdown()
                for archive in (recorder.ws, recorder.rest_archive):
                    try:
                        await archive.close()
                    except ArchiveError as exc:
                        error = error or exc
    files = len(recorder.ws.closed_files) + len(recorder.rest_archive.closed_files)
    return RunOutcome(
        recorder.session_id, files, recovery.salvaged, error, recorder.counters(), recovery=recovery
    )


async def _supervise(recorder: Recorder, loops: list[asyncio.Task[None]], view: LiveView) -> PmwsError | None:
    """Until stop: refresh the view; an archive error or a crashed loop stops the recorder."""
    while not recorder.stop.is_set():
        view.refresh()
        for task in list(loops) + list(recorder.link_tasks.values()):
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if isinstance(exc, PmwsError):
                    return exc
                raise exc  # type: ignore[misc]
        for archive in (recorder.ws, recorder.rest_archive):
            if archive.errors:
                return ArchiveError(archive.errors[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.stop.wait(), timeout=0.25)
    return None


def _start_metrics(config: Config, recorder: Recorder) -> HealthServer | None:
    if not config.metrics.enabled:
        return None
    registry = CollectorRegistry()
    registry.register(RecorderCollector(recorder.metrics_sample))
    backlog = BacklogGauges(Path(config.run.output_dir), Path(config.upload.ledger_path))
    registry.register(RecorderCollector(backlog.sample))
    registry.register(RecorderCollector(lambda: closed_bytes_sample([recorder.ws, recorder.rest_archive])))
    try:
        server = HealthServer(
            config.metrics.host,
            config.metrics.port,
            registry,
            healthy=lambda: time.monotonic() - recorder.heartbeat < 10,
            ready=recorder.ready,
        )
    except OSError as exc:
        raise ConfigError(
            f"metrics.port {config.metrics.port}: cannot listen on {config.metrics.host} ({exc.strerror})"
        ) from exc
    return server.start()


def _check_writable(*directories: Path) -> None:
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".pmws-write-test-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ArchiveError(f"{directory}: not writable ({exc.strerror or exc})") from exc


def summary_json(outcome: RunOutcome) -> str:
    return orjson.dumps(
        {
            "session_id": outcome.session_id,
            "files_closed": outcome.files_closed,
            "salvaged": len(outcome.salvaged),
            "repaired_manifests": len(outcome.recovery.repaired) if outcome.recovery else 0,
            "recovery_problems": outcome.recovery.problems if outcome.recovery else [],
            "counters": outcome.counters,
        }
    ).decode()
