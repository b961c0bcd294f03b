"""A recorder's health from values, pure: counters, `/metrics` samples, readiness, the live snapshot.

The recorder shell reads its links, feed stats and REST totals into these values; nothing here holds a
socket, reads a clock or prints (`now` is an argument), so every figure is unit-tested with numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pmws.coverage import Coverage, metric_samples
from pmws.envelope import TrackedToken
from pmws.stats import FeedStats
from pmws.tracker import HashCounters

#: Per-link counters, summed over live and retired links (the cumulative `counters` names).
LINK_COUNTERS = ("reconnects", "stale_feed_events", "pong_timeouts", "connect_failures")
#: Counters that go down as well as up: exported as gauges.
GAUGES = frozenset({"book_hash_pending"})
#: The counters the run view's footer shows, in this order.
SHOWN_COUNTERS = (
    "reconnects",
    "stale_feed_events",
    "parser_json_errors",
    "book_hash_verified",
    "book_hash_mismatched",
    "divergences",
)

Sample = dict[str, tuple[str, str, Any]]  # metric name → (kind, help, value or {labels: value})


@dataclass
class RestTotals:
    """REST `/books` checkpoints so far (a sample's manifest stores these four under `rest`)."""

    checkpoints: int = 0
    ok: int = 0
    failed: int = 0
    failed_attempts: int = 0


@dataclass
class LinkView:
    """One connection as health and the view see it, read at one moment."""

    slot: int
    state: str
    connection_sequence: int
    reconnects: int
    stale_events: int
    assets: int
    fresh: bool = False  # subscribed, and market data within the stale window (or quiet by REST)
    last_data_monotonic: float | None = None


@dataclass
class Snapshot:
    """Everything the view shows, gathered by the recorder shell."""

    title: str
    tokens: Sequence[TrackedToken]
    stats: FeedStats
    links: Sequence[LinkView]
    rest_ok: int
    rest_failed: int
    elapsed_seconds: float
    extra: dict[str, Any]
    token_states: dict[str, str] = field(default_factory=dict)  # token → live/quiet/blind/unverified


class HashSource(Protocol):
    """What the counters read from book verification (`tracker.BookTracker`, or `verifier.Verifier`)."""

    @property
    def counters(self) -> HashCounters: ...
    @property
    def rest_agree(self) -> int: ...
    @property
    def rest_divergent(self) -> int: ...


def counters(
    *,
    stats: FeedStats,
    links: Mapping[str, int],
    rest: RestTotals,
    tracker: HashSource,
    coverage: Coverage,
    discovery_failures: int,
) -> dict[str, int]:
    """Every cumulative counter of a run (`links` sums LINK_COUNTERS over live and retired links)."""
    hashes = tracker.counters
    return {
        "frames": stats.frames,
        "market_data_messages": stats.market_data_messages,
        **{name: links[name] for name in LINK_COUNTERS},
        "rest_checkpoints_ok": rest.ok,
        "rest_checkpoints_failed": rest.failed,
        "rest_attempts_failed": rest.failed_attempts,
        "parser_json_errors": stats.json_errors,
        "parser_unknown_shapes": stats.unknown_shapes,
        "parser_unknown_event_types": sum(stats.unknown_event_types.values()),
        "binary_frames": stats.binary_frames,
        "book_hash_verified": hashes.verified,
        "book_hash_mismatched": hashes.mismatched,
        "book_hash_pending": hashes.pending,
        "book_resyncs": hashes.resyncs,
        "rest_book_agree": tracker.rest_agree,
        "divergences": tracker.rest_divergent,
        "discovery_failures": discovery_failures,
        "token_blind_events": coverage.blind_events,
        "token_resubscribes": coverage.resubscribes,
        "token_resubscribe_reconnects": coverage.resubscribe_reconnects,
        "token_recoveries": coverage.recoveries,
    }


def metrics_sample(
    counts: Mapping[str, int],
    links: Sequence[LinkView],
    *,
    coverage: Coverage,
    labels: dict[str, tuple[str, str]],
    recorded_markets: int,
    latency_ms: Mapping[int, float | None],
    now: float,
) -> Sample:
    """The `/metrics` families: every counter, connections by state, coverage, ages and latency.

    `labels` maps each subscribed token to (market_slug, outcome); `latency_ms` maps a percentile (50, 99)
    to the receive-to-flush time; `now` is the monotonic clock the links' times are on.
    """
    out: Sample = {}
    for name, value in counts.items():
        kind = "gauge" if name in GAUGES else "counter"
        out[f"pmws_{name}"] = (kind, f"pmws {name.replace('_', ' ')}", value)
    states: dict[Any, float] = {}
    for link in links:
        key = (("state", link.state),)
        states[key] = states.get(key, 0) + 1
    out["pmws_connections"] = ("gauge", "connections by state", states or {(("state", "none"),): 0})
    out.update(metric_samples(coverage, labels, now))
    out["pmws_subscribed_assets"] = ("gauge", "assets subscribed", len(labels))
    out["pmws_recorded_markets"] = ("gauge", "markets recorded", recorded_markets)
    ages = [now - link.last_data_monotonic for link in links if link.last_data_monotonic is not None]
    out["pmws_seconds_since_market_data"] = (
        "gauge",
        "worst link's seconds since market data",
        max(ages) if ages else -1,
    )
    for q, ms in latency_ms.items():
        out[f"pmws_frame_to_disk_p{q}_ms"] = (
            "gauge",
            f"p{q} receive-to-flush ms (sampled frames)",
            ms or 0.0,
        )
    return out


def readiness(links: Sequence[LinkView]) -> tuple[bool, str]:
    """`/readyz`: ready once there is a connection and every one is subscribed and fresh."""
    if not links:
        return False, "no connection yet"
    stale = [link.slot for link in links if not link.fresh]
    if stale:
        return False, f"connections not subscribed or stale: {stale}"
    return True, f"{len(links)} connections subscribed and fresh"


def run_extra(counts: Mapping[str, int], *, current_file: str | None, coverage: Coverage) -> dict[str, Any]:
    """The run view's footer: a few counters, the open ws_raw file, tokens by coverage state."""
    extra: dict[str, Any] = {name: counts[name] for name in SHOWN_COUNTERS}
    extra["file"] = current_file or "-"
    extra["coverage"] = ",".join(f"{k}:{v}" for k, v in coverage.by_state().items() if v) or "-"
    return extra
