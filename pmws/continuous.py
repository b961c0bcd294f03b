"""The `run` recorder's policy on the shared shell: rediscovery, rotation, book verification, coverage.

Every frame goes to a rotating ws_raw archive; connection events, divergences and coverage actions are
lifecycle lines in the same stream, so gaps are visible in the data itself. Which markets to record and how
healthy the recorder is are pure functions (markets.py, health.py); this class feeds them values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pmws.archive.rotating import RotatingArchive
from pmws.archive.writer import LatencyStats
from pmws.config import Config
from pmws.coverage import ActionKind, Coverage
from pmws.envelope import TrackedToken, record_line, utc_text
from pmws.errors import ArchiveError, PmwsError
from pmws.feed import Link
from pmws.gamma import fetch_btc_markets
from pmws.health import Sample, Snapshot, counters, metrics_sample, readiness, run_extra
from pmws.markets import Market, desired_markets, filter_live, lookahead_seconds, shard_markets
from pmws.pool import LinkPool
from pmws.protocol import LIFECYCLE_EVENTS, Classified, FrameShape, iter_events
from pmws.recorder import Shell
from pmws.sharding import resolve_shard, shard_label
from pmws.stats import FeedStats
from pmws.subscriptions import plan_connections
from pmws.verifier import Verifier

#: Discoveries that `new_market` / `market_resolved` events ask for are at least this far apart
EVENT_REDISCOVER_MIN_SECONDS = 5.0


class Recorder:
    """Everything one `pmws run` process owns; the frame handler of its links."""

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
        self.session_id = session_id
        self.shard_index, self.shard_count = resolve_shard(config, os.environ)
        self.shard = shard_label(self.shard_index, self.shard_count)
        self.pool = LinkPool(
            url=config.endpoints.ws_url,
            settings=config.websocket,
            handler=self,
            session_id=session_id,
            stop_timeout=config.run.shutdown_timeout_seconds,
            shard=self.shard,
        )
        self.shell = Shell(self.pool, stats=FeedStats(), stop=stop, session_id=session_id)
        self.stop, self.stats, self.rest = stop, self.shell.stats, self.shell.rest
        # run.verify_in_worker: every book hash verified in a worker process fed in frame order (verifier.py)
        self.tracker = Verifier(worker=config.run.verify_book_hashes and config.run.verify_in_worker)
        self._verifier_failure_recorded = False
        self.coverage = Coverage(resubscribe_timeout=config.websocket.resubscribe_timeout_seconds)
        self.latency = LatencyStats()
        self.recorded: dict[str, Market] = {}
        self.tokens: dict[str, TrackedToken] = {}
        self.period_tokens: dict[str, TrackedToken] = {}  # tracked at any time in the current ws_raw file
        self.resolved: set[str] = set()
        self.discovery_failures = 0
        self.rediscover_now = asyncio.Event()
        self.heartbeat = time.monotonic()
        self._written_sequence = 0  # global sequence of the last frame written to the ws_raw archive
        self._connect_error: Any = None  # the last connect failure shown on stderr
        self.ws = self._archive(
            "ws_raw",
            on_open=self._file_opened,
            latency=self.latency,
            at_close=self._facts_at_close,
        )
        self.rest_archive = self._archive("rest_checkpoints")

    def _facts_at_close(self) -> dict[str, Any]:
        """A ws_raw manifest's state at its file's close: token states, and every token tracked in the file's
        period with its market (what `pmws replay` lists in Gamma without reading the file)."""
        tokens = sorted(self.period_tokens.values(), key=lambda t: t.token_id)
        self.period_tokens = dict(self.tokens)  # the next file starts with the tokens tracked now
        return {
            "token_states_at_close": {str(k): n for k, n in self.coverage.by_state().items()},
            "tokens_tracked": [token.to_json() for token in tokens],
        }

    def _archive(self, kind: str, **extra: Any) -> RotatingArchive:
        return RotatingArchive(
            kind,
            root=Path(self.config.run.output_dir),
            manifest_dir=Path(self.config.run.manifest_dir),
            session_id=self.session_id,
            interval=self.config.run.rotate_interval_seconds,
            settings=self.config.archive,
            counters=self._synced_counters,
            shard=self.shard,
            **extra,
        )

    def _synced_counters(self) -> dict[str, int]:
        """The counters once every frame read is handed over, tallied and verified: exact as of the last frame
        (a file's end; a rotation inside a hand-over comes here with that hand-over's tallies unsettled)."""
        self.pool.intake.flush()
        self.on_handed_over()
        self.tracker.sync()
        return self.counters()

    # --- health (health.py computes, this reads the values) ------------------------------------------

    def counters(self) -> dict[str, int]:
        """Every cumulative counter (per-file manifests store their deltas)."""
        return counters(
            stats=self.stats,
            links=self.pool.totals(),
            rest=self.rest,
            tracker=self.tracker,
            coverage=self.coverage,
            discovery_failures=self.discovery_failures,
        )

    def metrics_sample(self) -> Sample:
        # This runs in the metrics thread while the loop changes these dicts: iterate over copies.
        labels = {t: (v.market_slug, v.outcome) for t, v in dict(self.tokens).items()}
        return metrics_sample(
            self.counters(),
            self.pool.views(),
            coverage=self.coverage,
            labels=labels,
            recorded_markets=len(self.recorded),
            latency_ms={q: self.latency.percentile(q / 100) for q in (50, 99)},
            now=time.monotonic(),
        )

    def ready(self) -> tuple[bool, str]:
        return readiness(self.pool.views())

    def snapshot(self) -> Snapshot:
        current = self.ws.current_open_path
        extra = run_extra(
            self.counters(), current_file=current.name if current else None, coverage=self.coverage
        )
        states = {token: self.coverage.state(token).value for token in self.tokens}
        return self.shell.snapshot(
            f"pmws run {self.session_id} shard {self.shard}", list(self.tokens.values()), extra, states
        )

    def archive_error(self) -> PmwsError | None:
        if isinstance(self.pool.intake.error, PmwsError):  # a timed hand-over of frames failed
            return self.pool.intake.error
        for archive in (self.ws, self.rest_archive):
            if archive.errors:
                return ArchiveError(archive.errors[0])
        return None

    # --- the stream (FrameHandler) -------------------------------------------------------------------

    def on_envelope(
        self, line: bytes, classified: Classified, received_ns: int, global_sequence: int
    ) -> None:
        self.ws.append(line, received_ns, sequence=global_sequence, events=classified.event_types)
        self._written_sequence = global_sequence
        self.stats.tally(classified, received_ns, self.tokens)
        if classified.parsed is not None:
            self._follow_events(classified, received_ns)

    def _follow_events(self, classified: Classified, received_ns: int) -> None:
        if self.config.run.verify_book_hashes:
            self.tracker.observe_frame(classified)
            self.write_divergences(received_ns)
            # coverage compares REST with the rebuilt books: nothing to follow without them
            self.coverage.tally(classified.events)  # applied at the end of the hand-over
        if classified.shape is FrameShape.JSON_OTHER or not LIFECYCLE_EVENTS.isdisjoint(
            classified.event_types
        ):
            for event in iter_events(classified.parsed):
                kind = event.get("event_type")
                if kind == "market_resolved" and isinstance(event.get("market"), str):
                    self.resolved.add(event["market"])
                    self.rediscover_now.set()
                elif kind == "new_market":
                    self.rediscover_now.set()

    def write_divergences(self, at_ns: int, *, sync: bool = False) -> None:
        """Divergences the verifier found since the last call (it applies frames in batches, so one may
        surface after its frame: here at the next frame, the next rotation tick, or the shutdown)."""
        if sync:
            self.tracker.sync()
        for divergence in self.tracker.take_divergences():
            self.write_record(divergence.to_record(), at_ns)

    def on_handed_over(self) -> None:
        self.stats.settle()
        self.coverage.settle(time.monotonic())

    def on_lifecycle(self, event: str, link: Link, details: dict[str, Any]) -> None:
        if event == "connect_failed" and details.get("reason") != self._connect_error:
            # the archive has every attempt; a person watching needs to know why nothing arrives
            self._connect_error = details.get("reason")
            print(f"pmws run: connection {link.slot}: {self._connect_error}; retrying", file=sys.stderr)
        elif event == "subscribe":
            self._connect_error = None
        record = {
            "event": event,
            "slot": link.slot,
            "connection_sequence": link.connection_sequence,
            **details,
        }
        self.write_record({"record_type": "lifecycle", **record}, time.time_ns())

    async def wait_for_room(self) -> None:
        await self.ws.wait_for_room()

    def has_room(self) -> bool:
        period = self.ws.current
        return period is not None and period.writer.has_room()

    def quiet_ok(self, link: Link, now: float) -> bool:
        within = self.config.websocket.stale_after_seconds
        return self.coverage.all_quiet(link.asset_ids, now, within=within)

    def write_record(self, record: dict[str, Any], at_ns: int) -> None:
        """A non-frame record, after every frame read so far (the Intake hands them over first)."""
        self.pool.intake.flush()
        full = {
            **record,
            "at_utc": utc_text(at_ns),
            "at_ns": at_ns,
            "session_id": self.session_id,
            "shard": self.shard,
            # the last frame written before this record (inside a hand-over, later frames of the same batch
            # have been read but not written yet: they come after it)
            "after_global_message_sequence": self._written_sequence,
        }
        self.ws.append(record_line(full), at_ns, record_type=str(record["record_type"]))

    def _file_opened(self, archive: RotatingArchive) -> None:
        """First lines of every ws_raw file: the rotation and the subscription state right now."""
        now = time.time_ns()
        period = archive.current
        assert period is not None
        self.write_record(
            {"record_type": "lifecycle", "event": "rotation", "file": period.name.final.name}, now
        )
        for link in self.pool.live():
            self.write_record(
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

    # --- markets and connections ---------------------------------------------------------------------

    async def discover_once(self, client: httpx.AsyncClient) -> list[Market]:
        """Live BTC up/down markets of this shard that start within the subscribe-ahead horizon."""
        now, cfg = self.clock(), self.config
        fetch = await fetch_btc_markets(
            client,
            cfg.endpoints.gamma_url,
            now=now,
            windows=cfg.discovery.windows,
            lookahead_seconds=lookahead_seconds(cfg.run.subscribe_ahead_seconds, cfg.discovery.windows),
            page_limit=cfg.discovery.page_limit,
            max_pages=cfg.discovery.max_pages,
            request_timeout=cfg.discovery.request_timeout_seconds,
        )
        return shard_markets(
            filter_live(fetch.objects, now, windows=cfg.discovery.windows).markets,
            now=now,
            ahead_seconds=cfg.run.subscribe_ahead_seconds,
            shard_index=self.shard_index,
            shard_count=self.shard_count,
        )

    def desired(self, live: list[Market]) -> dict[str, Market]:
        return desired_markets(
            live,
            recorded=self.recorded,
            resolved=self.resolved,
            now=self.clock(),
            grace_seconds=self.config.run.post_end_grace_seconds,
        )

    async def apply(self, desired: dict[str, Market]) -> None:
        """Subscribe new markets, unsubscribe gone ones, open/close connections as needed."""
        self.pool.intake.flush()  # frames read so far are verified with the tokens' metadata as it was
        for market in desired.values():
            for token in market.tracked():
                self.tokens[token.token_id] = self.period_tokens[token.token_id] = token
            if market.min_order_size:
                for token_id in market.token_ids():
                    self.tracker.set_metadata(token_id, market.min_order_size, market.neg_risk)
        current = [link.asset_ids if link is not None else [] for link in self.pool.links]
        ordered = sorted(desired.values(), key=lambda m: (m.end, m.market_slug))
        plan = plan_connections(
            current, [m.token_ids() for m in ordered], self.config.websocket.max_assets_per_connection
        )
        await self.pool.follow([tuple(self.tokens[a] for a in assets) for assets in plan])
        for condition in set(self.recorded) - set(desired):
            for token_id in self.recorded[condition].token_ids():
                self.tokens.pop(token_id, None)
                self.tracker.forget(token_id)
                self.stats.forget(token_id)
        self.coverage.track(self.tokens)
        self.recorded = dict(desired)

    # --- loops ---------------------------------------------------------------------------------------

    async def discovery_loop(self, client: httpx.AsyncClient) -> None:
        interval = self.config.run.rediscover_interval_seconds
        least = min(interval, EVENT_REDISCOVER_MIN_SECONDS)  # a burst of new_market events: one discovery
        finished = time.monotonic()
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rediscover_now.wait(), timeout=interval)
            if self.rediscover_now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=least - (time.monotonic() - finished))
            self.rediscover_now.clear()
            if self.stop.is_set():
                return
            try:
                live = await self.discover_once(client)
            except PmwsError as exc:
                self.discovery_failures += 1
                self.write_record(
                    {"record_type": "lifecycle", "event": "discovery_failed", "reason": str(exc)},
                    time.time_ns(),
                )
                continue
            finally:
                finished = time.monotonic()
            await self.apply(self.desired(live))

    def rest_loop(self, client: httpx.AsyncClient) -> Coroutine[Any, Any, None]:
        """The shell's REST checkpoint loop over the subscribed tokens; rows stamped with the shard."""
        return self.shell.rest_loop(
            client,
            self.config,
            lambda: list(self.tokens),
            interval=self.config.run.rest_checkpoint_interval_seconds,
            write=self._write_rest_row,
            on_books=self._check_books,
        )

    def _write_rest_row(self, row: dict[str, Any]) -> None:
        row["shard"] = self.shard
        self.rest_archive.append(record_line(row), time.time_ns(), record_type="rest_checkpoint")

    async def _check_books(self, books: list[dict[str, Any]]) -> None:
        """Compare REST books with the rebuilt ones, then feed coverage (resubscribing blind tokens)."""
        if not self.config.run.verify_book_hashes:
            return
        self.pool.intake.flush()  # the books as of every frame read before the answer
        comparisons = await self.tracker.compare_rest(books)
        for comparison in comparisons:
            if comparison.divergence is not None:
                self.write_record(comparison.divergence.to_record(), time.time_ns())
        now = time.monotonic()
        for summary, comparison in zip(books, comparisons, strict=False):
            token = str(summary.get("asset_id", ""))
            rest_hash = comparison.rest_hash
            action = self.coverage.on_checkpoint(
                token,
                rest_hash,
                (rest_hash,) if comparison.feed_agrees else (),
                now,
                feed_hash=comparison.feed_hash,
            )
            link = self.pool.link_of(token) if action is not None else None
            if action is None or link is None:
                continue
            market = self.tokens.get(token)
            self.write_record(
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

    async def rotation_loop(self) -> None:
        """Close files on time even when the feed is quiet; keep the health heartbeat; coverage deadlines."""
        while not self.stop.is_set():
            self.heartbeat = time.monotonic()
            with contextlib.suppress(PmwsError):  # a failed hand-over is raised by supervision instead
                self.pool.intake.flush()  # before rotating: frames read before the period's end stay in it
            if self.tracker.failed and not self._verifier_failure_recorded:
                self._verifier_failure_recorded = True  # verification went on in this process
                self.write_record(
                    {
                        "record_type": "lifecycle",
                        "event": "verifier_in_process",
                        "reason": self.tracker.failed,
                    },
                    time.time_ns(),
                )
            self.ws.roll_if_due()
            self.rest_archive.roll_if_due()
            self.write_divergences(time.time_ns())
            for action in self.coverage.due(time.monotonic()):
                link = self.pool.link_of(action.token_id)
                if action.kind is ActionKind.RECONNECT and link is not None:
                    self.on_lifecycle("resubscribe_timeout", link, {"token_id": action.token_id})
                    await link.reconnect("resubscribe_timeout")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=0.2)
