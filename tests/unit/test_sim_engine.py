"""The market model without sockets: every event verifies when replayed, books stay sane (§3, §5.3)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from pmws.book import BookState, levels_of
from pmws.sim.catalog import Catalog, MarketSpec
from pmws.sim.config import SimConfig
from pmws.sim.engine import Engine
from pmws.sim.events import Frame

NOW = 1_790_000_000.0


class Replay:
    """A client rebuilding books from frames, counting verified and mismatched hashes."""

    def __init__(self) -> None:
        self.books: dict[str, BookState] = {}
        self.verified = 0
        self.mismatched: list[str] = []
        self.last_ts: dict[str, int] = {}

    def frame(self, payload: bytes) -> list[dict[str, Any]]:
        parsed = orjson.loads(payload)
        events = parsed if isinstance(parsed, list) else [parsed]
        for event in events:
            self.event(event)
        return events

    def check(self, state: BookState, expected: str, what: str) -> None:
        if state.hash() == expected:
            self.verified += 1
        else:
            self.mismatched.append(what)

    def stream_ts(self, asset: str, ts: str) -> None:
        assert int(ts) > self.last_ts.get(asset, 0), f"timestamp not increasing for {asset}"
        self.last_ts[asset] = int(ts)

    def event(self, ev: dict[str, Any]) -> None:
        kind = ev["event_type"]
        if kind == "book":
            state = self.books.setdefault(
                ev["asset_id"], BookState(market=ev["market"], asset_id=ev["asset_id"], min_order_size="5")
            )
            state.load_snapshot(
                levels_of(ev["bids"]),
                levels_of(ev["asks"]),
                timestamp=ev["timestamp"],
                tick_size=ev.get("tick_size"),
            )
            if "last_trade_price" in ev:
                state.last_trade_price = ev["last_trade_price"]
            self.check(state, ev["hash"], "book")
            self.last_ts[ev["asset_id"]] = max(self.last_ts.get(ev["asset_id"], 0), int(ev["timestamp"]))
        elif kind == "price_change":
            for entry in ev["price_changes"]:
                self.stream_ts(entry["asset_id"], ev["timestamp"])
                state = self.books[entry["asset_id"]]
                state.apply_change(
                    price=entry["price"], size=entry["size"], side=entry["side"], timestamp=ev["timestamp"]
                )
                self.check(state, entry["hash"], "price_change")
            for entry in ev["price_changes"]:
                top = self.books[entry["asset_id"]].top_of_book()
                assert (entry["best_bid"], entry["best_ask"]) == (
                    top["best_bid"] or "0",
                    top["best_ask"] or "1",
                )
        elif kind == "last_trade_price":
            self.stream_ts(ev["asset_id"], ev["timestamp"])
            self.books[ev["asset_id"]].last_trade_price = ev["price"]
        elif kind == "tick_size_change":
            self.stream_ts(ev["asset_id"], ev["timestamp"])
            self.books[ev["asset_id"]].tick_size = ev["new_tick_size"]


def make_engine(**overrides: Any) -> tuple[Engine, list[MarketSpec]]:
    config = SimConfig(**overrides)
    catalog = Catalog(config.windows, config.markets_per_window, config.past_markets_per_window)
    engine = Engine(config, catalog, lambda: NOW)
    specs = [i.spec for i in catalog.listing(NOW) if i.accepting_orders and i.spec.kind == "btc"][:3]
    return engine, specs


def run(engine: Engine, specs: list[MarketSpec], actions: int) -> tuple[Replay, Counter[str]]:
    tokens = [t for s in specs for t in s.token_ids]
    replay = Replay()
    replay.frame(Frame(engine.snapshot(tokens), array=True).payload_for(set(tokens), True) or b"[]")
    engine.set_active(set(tokens))
    kinds: Counter[str] = Counter()
    for _ in range(actions):
        for frame in engine.next_frames():
            payload = frame.payload_for(set(tokens), True)
            assert payload is not None
            for event in replay.frame(payload):
                kinds[event["event_type"]] += 1
    return replay, kinds


def test_every_hash_verifies_through_trades_and_tick_changes() -> None:
    engine, specs = make_engine(trade_every=3, tick_change_every=17)
    replay, kinds = run(engine, specs, 3000)
    assert not replay.mismatched
    assert replay.verified > 6000
    assert {"book", "price_change", "last_trade_price", "tick_size_change", "best_bid_ask"} <= set(kinds)
    for spec in specs:  # the rebuilt books equal the REST summaries
        for token in spec.token_ids:
            book = engine.token_book(token)
            assert book is not None
            assert replay.books[token].hash() == book.summary()["hash"]


def test_books_stay_valid_mirrored_and_on_the_grid() -> None:
    engine, specs = make_engine(trade_every=4, tick_change_every=29)
    tokens = {t for s in specs for t in s.token_ids}
    engine.set_active(tokens)
    for _ in range(5000):
        engine.next_frames()
        for spec in specs:
            up, down = engine.market_book(spec).tokens
            tick = up.tick_mills
            assert up.bids and up.asks
            assert max(up.bids) < min(up.asks)
            assert all(p % tick == 0 and tick <= p <= 1000 - tick for p in [*up.bids, *up.asks])
            assert {1000 - p: s for p, s in up.bids.items()} == down.asks
            assert {1000 - p: s for p, s in up.asks.items()} == down.bids


def test_frames_batch_every_nth_and_filter_per_connection() -> None:
    engine, specs = make_engine(batch_array_every=3, trade_every=0)
    engine.set_active(set(specs[0].token_ids))
    frames = [f for _ in range(30) for f in engine.next_frames()]
    assert any(f.array and len(f.events) == 2 for f in frames)
    one = specs[0].token_ids[0]
    for frame in frames:
        payload = frame.payload_for({one}, custom=False)
        if payload is None:
            continue
        parsed = orjson.loads(payload)
        for event in parsed if isinstance(parsed, list) else [parsed]:
            assert event["event_type"] != "best_bid_ask"
            for entry in event.get("price_changes", []):
                assert entry["asset_id"] == one


def test_ended_windows_stop_trading_and_resolve_once() -> None:
    now = {"t": NOW}
    config = SimConfig(windows=["5m"])
    catalog = Catalog(config.windows, 2, 1)
    engine = Engine(config, catalog, lambda: now["t"])
    assert engine.lifecycle() == []  # the first look only learns what exists
    spec = next(i.spec for i in catalog.listing(NOW) if i.accepting_orders and i.spec.kind == "btc")
    engine.set_active(set(spec.token_ids))
    assert engine.next_frames()
    now["t"] = spec.end + 1
    frames = engine.lifecycle()
    kinds = [f.events[0].obj["event_type"] for f in frames]
    assert kinds.count("market_resolved") == 1 and "new_market" in kinds
    resolved = next(f.events[0].obj for f in frames if f.events[0].obj["event_type"] == "market_resolved")
    assert resolved["winning_asset_id"] in spec.token_ids
    assert spec.outcomes[spec.token_ids.index(resolved["winning_asset_id"])] == resolved["winning_outcome"]
    assert engine.lifecycle() == []
    assert engine.next_frames() == []  # nothing left to trade
