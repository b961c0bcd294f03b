"""Which markets a run records: the shard and horizon filter, rediscovery's keep-until-resolved rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pmws.envelope import TrackedToken
from pmws.markets import Market, Token, desired_markets, lookahead_seconds, shard_markets, tracked_tokens
from pmws.sharding import shard_of

NOW = datetime(2026, 3, 12, 9, 20, tzinfo=UTC)


def market(condition: str, *, starts_in: float | None = 0, ends_in: float = 300) -> Market:
    start = None if starts_in is None else (NOW + timedelta(seconds=starts_in)).isoformat()
    return Market(
        market_slug=f"btc-updown-5m-{condition}",
        condition_id=condition,
        question="",
        window="5m",
        window_start_utc=start,
        end_time_utc=(NOW + timedelta(seconds=ends_in)).isoformat(),
        tokens=[Token(f"{condition}-up", "Up"), Token(f"{condition}-down", "Down")],
    )


def test_tracked_tokens_carry_their_market() -> None:
    a = market("0xa")
    assert tracked_tokens([a]) == (
        TrackedToken("btc-updown-5m-0xa", "0xa", "0xa-up", "Up", a.end_time_utc),
        TrackedToken("btc-updown-5m-0xa", "0xa", "0xa-down", "Down", a.end_time_utc),
    )


def test_lookahead_is_the_horizon_plus_the_longest_window() -> None:
    assert lookahead_seconds(3600, ["5m", "4h"]) == 3600 + 14400
    assert lookahead_seconds(0, ["5m"]) == 300


def test_horizon_keeps_started_near_and_undated_markets() -> None:
    now_, soon, late, undated = (
        market("0x1"),
        market("0x2", starts_in=60),
        market("0x3", starts_in=61),
        market("0x4", starts_in=None),
    )
    kept = shard_markets([now_, soon, late, undated], now=NOW, ahead_seconds=60, shard_index=0, shard_count=1)
    assert kept == [now_, soon, undated]


def test_each_market_lands_on_exactly_one_shard() -> None:
    markets = [market(f"0x{i:x}") for i in range(40)]
    shards = [
        shard_markets(markets, now=NOW, ahead_seconds=0, shard_index=i, shard_count=3) for i in range(3)
    ]
    assert sorted(m.condition_id for s in shards for m in s) == sorted(m.condition_id for m in markets)
    assert all(shard_of(m.condition_id, 3) == i for i, s in enumerate(shards) for m in s)
    assert all(shards)


def test_desired_keeps_unlisted_markets_until_resolved_or_past_the_grace() -> None:
    listed, gone_recent, gone_long, resolved = (
        market("0x1"),
        market("0x2", ends_in=-30),
        market("0x3", ends_in=-120),
        market("0x4"),
    )
    recorded = {m.condition_id: m for m in (gone_recent, gone_long, resolved)}
    desired = desired_markets(
        [listed, resolved], recorded=recorded, resolved={"0x4"}, now=NOW, grace_seconds=60
    )
    assert desired == {"0x1": listed, "0x2": gone_recent}


def test_gamma_listing_wins_over_the_recorded_copy() -> None:
    old, fresh = market("0x1", ends_in=-600), market("0x1", ends_in=300)
    assert desired_markets([fresh], recorded={"0x1": old}, resolved=set(), now=NOW, grace_seconds=0) == {
        "0x1": fresh
    }
