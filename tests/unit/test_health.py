"""Recorder health from values: counters, /metrics samples, readiness, the run view's footer (health.py)."""

from __future__ import annotations

from pmws.coverage import Coverage
from pmws.health import LinkView, RestTotals, counters, metrics_sample, readiness, run_extra
from pmws.protocol import classify_text
from pmws.stats import FeedStats
from pmws.tracker import BookTracker

LINKS = {"reconnects": 3, "stale_feed_events": 1, "pong_timeouts": 2, "connect_failures": 4}


def link(
    slot: int, state: str = "subscribed", *, fresh: bool = True, data_at: float | None = None
) -> LinkView:
    return LinkView(slot, state, 1, 0, 0, 2, fresh=fresh, last_data_monotonic=data_at)


def figures() -> dict[str, int]:
    stats = FeedStats()
    for payload in (b'{"event_type":"book","asset_id":"1"}', b"not json", b"PONG"):
        stats.observe(classify_text(payload), 1, {"1"})
    tracker = BookTracker()
    tracker.counters.verified, tracker.counters.pending = 5, 2
    tracker.rest_divergent = 1
    rest = RestTotals(checkpoints=4, ok=3, failed=1, failed_attempts=2)
    return counters(
        stats=stats,
        links=LINKS,
        rest=rest,
        tracker=tracker,
        coverage=Coverage(resubscribe_timeout=5.0),
        discovery_failures=6,
    )


def test_counters_name_every_source() -> None:
    counts = figures()
    assert counts["frames"] == 3 and counts["parser_json_errors"] == 1
    assert {k: counts[k] for k in LINKS} == LINKS
    assert (
        counts["rest_checkpoints_ok"],
        counts["rest_checkpoints_failed"],
        counts["rest_attempts_failed"],
    ) == (
        3,
        1,
        2,
    )
    assert (counts["book_hash_verified"], counts["book_hash_pending"], counts["divergences"]) == (5, 2, 1)
    assert counts["discovery_failures"] == 6
    assert list(counts)[:3] == ["frames", "market_data_messages", "reconnects"]  # the summary's order


def test_metrics_counters_and_gauges_connections_by_state_and_ages() -> None:
    links = [link(0, data_at=90.0), link(1, data_at=97.5), link(2, "backoff")]
    out = metrics_sample(
        figures(),
        links,
        coverage=Coverage(resubscribe_timeout=5.0),
        labels={"1": ("btc-updown-5m-1", "Up"), "2": ("btc-updown-5m-1", "Down")},
        recorded_markets=1,
        latency_ms={50: 1.5, 99: None},
        now=100.0,
    )
    assert out["pmws_frames"][:2] == ("counter", "pmws frames") and out["pmws_frames"][2] == 3
    assert out["pmws_book_hash_pending"][0] == "gauge"  # it goes down as books resync
    assert out["pmws_connections"][2] == {(("state", "subscribed"),): 2, (("state", "backoff"),): 1}
    assert out["pmws_seconds_since_market_data"][2] == 10.0  # the worst link
    assert out["pmws_subscribed_assets"][2] == 2 and out["pmws_recorded_markets"][2] == 1
    assert out["pmws_frame_to_disk_p50_ms"][2] == 1.5 and out["pmws_frame_to_disk_p99_ms"][2] == 0.0
    assert "pmws_tokens_by_state" in out


def test_metrics_before_any_connection() -> None:
    out = metrics_sample(
        figures(),
        [],
        coverage=Coverage(resubscribe_timeout=5.0),
        labels={},
        recorded_markets=0,
        latency_ms={},
        now=5.0,
    )
    assert out["pmws_connections"][2] == {(("state", "none"),): 0}
    assert out["pmws_seconds_since_market_data"][2] == -1


def test_ready_only_when_every_link_is_fresh() -> None:
    assert readiness([]) == (False, "no connection yet")
    assert readiness([link(0), link(1, fresh=False), link(2, "backoff", fresh=False)]) == (
        False,
        "connections not subscribed or stale: [1, 2]",
    )
    assert readiness([link(0), link(1)]) == (True, "2 connections subscribed and fresh")


def test_run_footer_shows_the_file_and_coverage() -> None:
    coverage = Coverage(resubscribe_timeout=5.0)
    coverage.track(["1", "2"])
    extra = run_extra(figures(), current_file=None, coverage=coverage)
    assert list(extra)[-2:] == ["file", "coverage"] and extra["divergences"] == 1
    assert extra["file"] == "-" and extra["coverage"] == "unverified:2"
    assert (
        run_extra(figures(), current_file="a.jsonl.gz.open", coverage=Coverage(resubscribe_timeout=5.0))[
            "coverage"
        ]
        == "-"
    )
