"""The replay's pure parts: the channel's server-side parsing, the catalog's Gamma objects, options."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pmws.channel import Operation, Subscription, parse_operation, parse_subscription
from pmws.errors import ConfigError
from pmws.markets import Market, Token, parse_market, rejection_reason
from pmws.replay.catalog import Catalog
from pmws.replay.http import ReplayApi
from pmws.replay.load import parse_instant, parse_speed
from pmws.sim.http import Request
from pmws.tracker import BookTracker

TRACKED = {
    "market_slug": "btc-updown-15m-1796094900",
    "condition_id": "0xc1",
    "end_time_utc": "2026-12-01T03:30:00Z",
}


def test_the_first_frame_must_be_a_market_subscription() -> None:
    assert parse_subscription('{"assets_ids":["1"],"type":"market"}') == Subscription(["1"], False, True)
    assert parse_subscription(
        '{"assets_ids":["1"],"type":"MARKET","initial_dump":false,"custom_feature_enabled":true}'
    ) == Subscription(["1"], True, False)
    for bad in (
        "PING",
        '{"assets_ids":["1"]}',
        '{"assets_ids":[1],"type":"market"}',
        b'{"type":"market"}',
        "[]",
    ):
        assert parse_subscription(bad) is None, bad


def test_operations_subscribe_and_unsubscribe() -> None:
    assert parse_operation('{"assets_ids":["1"],"operation":"unsubscribe"}') == Operation(
        "unsubscribe", Subscription(["1"], False, True)
    )
    assert parse_operation('{"assets_ids":["1"],"operation":"subscribe","initial_dump":false}') == Operation(
        "subscribe", Subscription(["1"], False, False)
    )
    for bad in ('{"assets_ids":["1"],"operation":"drop"}', '{"operation":"subscribe"}', "PING", "{"):
        assert parse_operation(bad) is None, bad


def test_gamma_objects_from_envelopes_and_checkpoints_parse_as_the_recorded_market() -> None:
    catalog = Catalog()
    catalog.add_tracked({**TRACKED, "token_id": "22", "outcome": "Down"})
    catalog.add_tracked({**TRACKED, "token_id": "11", "outcome": "Up"})
    for token in ("11", "22"):
        catalog.add_summary(
            {"asset_id": token, "min_order_size": "5", "tick_size": "0.01", "neg_risk": False}
        )
    [obj] = orjson.loads(orjson.dumps(catalog.gamma_markets()))  # what a client receives
    market = parse_market(obj)
    assert market.market_slug == TRACKED["market_slug"] and market.condition_id == "0xc1"
    assert market.tokens == [Token("11", "Up"), Token("22", "Down")]
    assert (market.window, market.window_start_utc, market.end_time_utc) == (
        "15m",
        "2026-12-01T03:15:00Z",
        "2026-12-01T03:30:00Z",
    )
    assert (market.min_order_size, market.tick_size, market.neg_risk) == ("5", "0.01", False)
    assert rejection_reason(obj, market, datetime(2026, 12, 1, 3, 20, tzinfo=UTC)) is None
    assert catalog.gamma_markets(slugs={"other"}) == []


def test_a_discovery_file_wins_over_the_envelopes() -> None:
    catalog = Catalog()
    tokens = [Token("11", "Up"), Token("22", "Down")]
    market = Market(
        "btc-updown-15m-1796094900",
        "0xc1",
        "Bitcoin Up or Down?",
        "15m",
        None,
        TRACKED["end_time_utc"],
        tokens,
        "5",
        "0.01",
        False,
        "77",
    )
    catalog.add_market(market)
    catalog.add_tracked({**TRACKED, "token_id": "11", "outcome": "Yes", "market_slug": "else"})
    [obj] = catalog.gamma_markets()
    assert (obj["id"], obj["question"], obj["slug"], obj["orderMinSize"]) == (
        "77",
        "Bitcoin Up or Down?",
        market.market_slug,
        5.0,
    )


def test_a_tracker_without_verification_rebuilds_the_same_books_and_hashes_nothing() -> None:
    book = {
        "event_type": "book",
        "asset_id": "1",
        "market": "0xc",
        "timestamp": "1",
        "hash": "h",
        "bids": [{"price": "0.4", "size": "1"}],
        "asks": [{"price": "0.6", "size": "2"}],
    }
    change = {
        "event_type": "price_change",
        "market": "0xc",
        "timestamp": "2",
        "price_changes": [{"asset_id": "1", "price": "0.45", "size": "3", "side": "BUY", "hash": "h2"}],
    }
    checking, rebuilding = BookTracker(), BookTracker(verify=False)
    for tracker in (checking, rebuilding):
        tracker.observe(book)
        tracker.observe(change)
    assert (
        rebuilding.books["1"].wire_bids() == checking.books["1"].wire_bids() == [("0.4", "1"), ("0.45", "3")]
    )
    assert checking.counters.pending == 2
    assert rebuilding.counters.to_json() == dict.fromkeys(checking.counters.to_json(), 0)
    assert rebuilding.books["1"].recent_hashes.latest is None


def test_speed_and_times() -> None:
    assert parse_speed("max") is None and parse_speed("MAX") is None
    assert parse_speed("1") == 1.0 and parse_speed("2.5") == 2.5
    for bad in ("0", "-1", "fast", "inf", "nan"):
        with pytest.raises(ConfigError, match="--speed"):
            parse_speed(bad)
    assert parse_instant("--start", None) is None
    assert parse_instant("--start", "2026-12-01T03:15:18.5Z") == 1_796_094_918_500_000_000
    assert parse_instant("--end", "2026-12-01T04:15:18.5+01:00") == 1_796_094_918_500_000_000


def api_with(markets: int) -> ReplayApi:
    """The replay's HTTP routes over `markets` 15m markets and one rebuilt book (token "t0-up")."""
    catalog = Catalog()
    for n in range(markets):
        for outcome in ("Up", "Down"):
            slug = f"btc-updown-15m-{1796094900 + 900 * n}"
            catalog.add_tracked(
                {
                    **TRACKED,
                    "market_slug": slug,
                    "condition_id": f"0x{n}",
                    "token_id": f"t{n}-{outcome.lower()}",
                    "outcome": outcome,
                }
            )
    tracker = BookTracker(verify=False)
    tracker.observe(
        {
            "event_type": "book",
            "asset_id": "t0-up",
            "market": "0x0",
            "timestamp": "5",
            "bids": [{"price": "0.4", "size": "1"}],
            "asks": [],
        }
    )
    return ReplayApi(catalog, tracker)


def call(
    api: ReplayApi, method: str, path: str, params: list[tuple[str, str]] | None = None, body: bytes = b""
) -> tuple[int, Any]:
    response = asyncio.run(api(Request(method, path, params or [], {}, body)))
    return response.status, orjson.loads(response.body)


def test_keyset_pages_every_archived_market_once() -> None:
    api, slugs, cursor = api_with(150), [], None
    while True:
        params = [("limit", "100")] + ([("after_cursor", cursor)] if cursor else [])
        status, page = call(api, "GET", "/gamma/markets/keyset", params)
        assert status == 200
        slugs += [m["slug"] for m in page["markets"]]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert len(slugs) == len(set(slugs)) == 150


def test_books_answer_the_rebuilt_books_and_refuse_bad_bodies() -> None:
    api = api_with(1)
    status, books = call(api, "POST", "/clob/books", body=b'[{"token_id":"t0-up"},{"token_id":"t0-down"}]')
    assert status == 200 and [(b["asset_id"], b["timestamp"], b["bids"]) for b in books] == [
        ("t0-up", "5", [{"price": "0.4", "size": "1"}])
    ]
    assert call(api, "GET", "/clob/book", [("token_id", "t0-down")])[0] == 404
    assert call(api, "GET", "/clob/book", [("token_id", "t0-up")])[1]["asset_id"] == "t0-up"
    for bad in (b"{", b'{"token_id":"t0-up"}', b'[{"id":1}]', orjson.dumps([{"token_id": "x"}] * 501)):
        assert call(api, "POST", "/clob/books", body=bad)[0] == 400, bad
    assert call(api, "GET", "/nowhere")[0] == 404
