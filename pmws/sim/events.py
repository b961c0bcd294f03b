"""Market-channel events, who may receive them, and how they are framed (PROTOCOL.md §2.5, §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pmws.sim.catalog import MarketSpec
from pmws.sim.orderbook import PRICE_TEXT


@dataclass(slots=True)
class Ev:
    """One event object plus its routing: the assets it concerns and whether it is a custom feature."""

    obj: dict[str, Any]
    assets: frozenset[str]
    custom: bool = False  # best_bid_ask / new_market / market_resolved (§3.6-3.8)
    broadcast: bool = False  # new_market: every custom subscriber, whatever its assets

    def for_assets(self, assets: set[str]) -> dict[str, Any] | None:
        """The event as a connection subscribed to `assets` sees it, or None if it concerns none of them."""
        if self.broadcast:
            return self.obj
        if self.assets.isdisjoint(assets):
            return None
        if self.assets <= assets or "price_changes" not in self.obj:
            return self.obj
        entries = [e for e in self.obj["price_changes"] if e["asset_id"] in assets]
        return {**self.obj, "price_changes": entries}


@dataclass(slots=True)
class Frame:
    """One websocket text frame: a single event object or a JSON array of events (§2.5)."""

    events: list[Ev]
    array: bool
    _payload: bytes | None = field(default=None, repr=False)

    def payload_for(self, assets: set[str], custom: bool) -> bytes | None:
        """Exact frame bytes for one connection, or None when nothing in it concerns the connection."""
        objs = []
        whole = True
        for ev in self.events:
            if ev.custom and not custom:
                whole = False
                continue
            obj = ev.for_assets(assets)
            if obj is None:
                whole = False
                continue
            whole = whole and obj is ev.obj
            objs.append(obj)
        if not objs:
            return None
        if whole:
            if self._payload is None:
                self._payload = _dumps(objs, self.array)
            return self._payload
        return _dumps(objs, self.array)


def _dumps(objs: list[dict[str, Any]], array: bool) -> bytes:
    """Compact JSON of one event, or of an array of events."""
    return orjson.dumps(objs if array or len(objs) > 1 else objs[0])


def last_trade_price(
    spec: MarketSpec, asset_id: str, *, price: str, side: str, size: str, timestamp: str
) -> dict[str, Any]:
    """`last_trade_price` in the documented key order (§3.5, docs_ws_last_trade_price.json)."""
    return {
        "asset_id": asset_id,
        "event_type": "last_trade_price",
        "fee_rate_bps": "0",
        "market": spec.condition_id,
        "price": price,
        "side": side,
        "size": size,
        "timestamp": timestamp,
    }


def best_bid_ask(spec: MarketSpec, asset_id: str, bid: int, ask: int, timestamp: str) -> dict[str, Any]:
    """`best_bid_ask` from prices in mills, "0"/"1" for an empty side (§3.6, docs_ws_best_bid_ask.json)."""
    return {
        "event_type": "best_bid_ask",
        "market": spec.condition_id,
        "asset_id": asset_id,
        "best_bid": PRICE_TEXT[bid],
        "best_ask": PRICE_TEXT[ask],
        "spread": PRICE_TEXT[ask - bid],
        "timestamp": timestamp,
    }


def tick_size_change(spec: MarketSpec, asset_id: str, old: str, new: str, timestamp: str) -> dict[str, Any]:
    """`tick_size_change` (§3.4), without the `side` field the old docs listed."""
    return {
        "event_type": "tick_size_change",
        "asset_id": asset_id,
        "market": spec.condition_id,
        "old_tick_size": old,
        "new_tick_size": new,
        "timestamp": timestamp,
    }


def new_market(spec: MarketSpec, description: str, timestamp: str) -> dict[str, Any]:
    """`new_market` with the documented fields (§3.7, docs_ws_new_market.json)."""
    return {
        "id": spec.market_id,
        "question": spec.question,
        "market": spec.condition_id,
        "slug": spec.slug,
        "description": description,
        "assets_ids": list(spec.token_ids),
        "outcomes": list(spec.outcomes),
        "event_message": {
            "id": spec.event_id,
            "ticker": spec.slug,
            "slug": spec.slug,
            "title": spec.question,
            "description": description,
        },
        "timestamp": timestamp,
        "event_type": "new_market",
    }


def market_resolved(spec: MarketSpec, winner: int, timestamp: str) -> dict[str, Any]:
    """`market_resolved` like the real BTC 5m capture (§3.8): `assets_ids`, null event_message, tags."""
    tags = ["Crypto", "Bitcoin", "Crypto Prices", "Recurring", "Up or Down", "Hide From New"]
    if spec.kind == "eth":
        tags[1] = "Ethereum"
    if spec.window:
        tags.append(spec.window.upper())
    return {
        "id": spec.market_id,
        "market": spec.condition_id,
        "assets_ids": list(spec.token_ids),
        "winning_asset_id": spec.token_ids[winner],
        "winning_outcome": spec.outcomes[winner],
        "event_message": None,
        "timestamp": timestamp,
        "event_type": "market_resolved",
        "tags": tags,
    }


def settlement_preview(market: str, timestamp: str) -> dict[str, Any]:
    """An event type clients do not know (nautilus mixes one into a fixture, §2.5 [S20])."""
    return {"event_type": "settlement_preview", "market": market, "price": "0.5", "timestamp": timestamp}
