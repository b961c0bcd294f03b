"""Order-book state per token and Polymarket's 10-field book hash (PROTOCOL.md §5). Pure: no I/O.

Wire order (PROTOCOL.md §0.6, §3.1): bids ascending, asks descending, best price LAST. Prices and sizes are
kept as the exact strings received, because the hash is computed over them verbatim (§7); levels are keyed
by numeric price so ".48" and "0.48" are one level.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Level = tuple[str, str]  # (price, size) exactly as on the wire


def book_hash(
    *,
    market: str,
    asset_id: str,
    timestamp: str,
    bids: list[Level],
    asks: list[Level],
    min_order_size: str,
    tick_size: str,
    neg_risk: bool,
    last_trade_price: str,
) -> str:
    """SHA-1 of the Go-ordered 10-field summary with `hash` blanked (PROTOCOL.md §5.1)."""
    payload = {
        "market": market,
        "asset_id": asset_id,
        "timestamp": timestamp,
        "hash": "",
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
        "min_order_size": min_order_size,
        "tick_size": tick_size,
        "neg_risk": neg_risk,
        "last_trade_price": last_trade_price,
    }
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _text(value: str) -> str:
    """A JSON string literal exactly as `json.dumps(..., ensure_ascii=False)` writes it.

    Prices, sizes, ids and timestamps never hold a quote, backslash or control character, so they are
    wrapped directly; anything else goes through json.dumps.
    """
    if '"' not in value and "\\" not in value and value.isprintable():
        return '"' + value + '"'
    return json.dumps(value, ensure_ascii=False)


def _level_json(price: str, size: str) -> str:
    return '{"price":' + _text(price) + ',"size":' + _text(size) + "}"


def summary_hash(summary: dict[str, Any]) -> str:
    """Recompute the hash of a REST `/books` summary from its own fields (PROTOCOL.md §4.3)."""
    return book_hash(
        market=str(summary.get("market", "")),
        asset_id=str(summary.get("asset_id", "")),
        timestamp=str(summary.get("timestamp", "")),
        bids=levels_of(summary.get("bids")),
        asks=levels_of(summary.get("asks")),
        min_order_size=str(summary.get("min_order_size", "")),
        tick_size=str(summary.get("tick_size", "")),
        neg_risk=bool(summary.get("neg_risk", False)),
        last_trade_price=str(summary.get("last_trade_price") or ""),
    )


def levels_of(raw: Any) -> list[Level]:
    """`[{"price","size"}]` → list of (price, size) strings, skipping malformed entries."""
    if not isinstance(raw, list):
        return []
    out: list[Level] = []
    for item in raw:
        if isinstance(item, dict) and "price" in item and "size" in item:
            out.append((str(item["price"]), str(item["size"])))
    return out


def _key(price: str) -> float:
    return float(price)


@dataclass
class BookState:
    """One token's L2 book as rebuilt from the feed, plus what the hash needs beyond levels.

    The hash is recomputed after every change, so each side keeps its levels' JSON fragments and the joined
    side text, rebuilt only when that side changes (the same bytes `book_hash` would produce).
    """

    market: str
    asset_id: str
    min_order_size: str = ""
    neg_risk: bool = False
    tick_size: str = ""
    last_trade_price: str = ""
    timestamp: str = ""
    bids: dict[float, Level] = field(default_factory=dict)
    asks: dict[float, Level] = field(default_factory=dict)
    synced: bool = False
    recent_hashes: deque[str] = field(default_factory=lambda: deque(maxlen=256))
    _fragments: dict[bool, dict[float, str]] = field(default_factory=lambda: {True: {}, False: {}})
    _side_json: dict[bool, str | None] = field(default_factory=lambda: {True: None, False: None})
    #: `{"market":…,"asset_id":…,"timestamp":` (market and asset never change)
    _prefix: str = field(default="", repr=False)
    #: the text after the asks, and the (min_order_size, tick_size, neg_risk, ltp) it was built from
    _suffix: tuple[tuple[str, str, bool, str], str] | None = field(default=None, repr=False)

    def load_snapshot(
        self, bids: list[Level], asks: list[Level], *, timestamp: str, tick_size: str | None = None
    ) -> None:
        """Replace every level from a `book` event or REST summary."""
        self.bids = {_key(p): (p, s) for p, s in bids if _is_number(p)}
        self.asks = {_key(p): (p, s) for p, s in asks if _is_number(p)}
        self._fragments = {
            True: {k: _level_json(*v) for k, v in self.bids.items()},
            False: {k: _level_json(*v) for k, v in self.asks.items()},
        }
        self._side_json = {True: None, False: None}
        self.timestamp = timestamp
        if tick_size:
            self.tick_size = tick_size
        self.synced = True

    def apply_change(self, *, price: str, size: str, side: str, timestamp: str) -> None:
        """Apply one `price_change` entry: `size` is the new aggregate, "0" deletes (§3.2)."""
        try:
            key = float(price)
        except (TypeError, ValueError):
            raise ValueError(f"price {price!r} is not a number") from None
        is_bid = side == "BUY" or side.upper() == "BUY"
        levels = self.bids if is_bid else self.asks
        fragments = self._fragments[is_bid]
        if _is_zero(size):
            levels.pop(key, None)
            fragments.pop(key, None)
        else:
            levels[key] = (price, size)
            fragments[key] = _level_json(price, size)
        self._side_json[is_bid] = None
        self.timestamp = timestamp

    def wire_bids(self) -> list[Level]:
        """Bids ascending, as on the wire."""
        return [self.bids[k] for k in sorted(self.bids)]

    def wire_asks(self) -> list[Level]:
        """Asks descending, as on the wire."""
        return [self.asks[k] for k in sorted(self.asks, reverse=True)]

    def best_bid(self) -> str | None:
        return self.bids[max(self.bids)][0] if self.bids else None

    def best_ask(self) -> str | None:
        return self.asks[min(self.asks)][0] if self.asks else None

    def _side(self, is_bid: bool) -> str:
        cached = self._side_json[is_bid]
        if cached is None:
            fragments = self._fragments[is_bid]
            cached = "[" + ",".join([fragments[k] for k in sorted(fragments, reverse=not is_bid)]) + "]"
            self._side_json[is_bid] = cached
        return cached

    def hash(self, *, last_trade_price: str | None = None, timestamp: str | None = None) -> str:
        """The 10-field hash of the current state (optionally with another ltp or timestamp).

        Same bytes as `book_hash`; the fields that rarely change are kept as ready-made text."""
        ltp = self.last_trade_price if last_trade_price is None else last_trade_price
        stamp = self.timestamp if timestamp is None else timestamp
        key = (self.min_order_size, self.tick_size, self.neg_risk, ltp)
        suffix = self._suffix
        if suffix is None or suffix[0] != key:
            suffix = self._suffix = (key, _suffix_text(*key))
        prefix = self._prefix or self._build_prefix()
        stamp_text = f'"{stamp}"' if stamp.isdigit() else _text(stamp)
        bids, asks = self._side(True), self._side(False)
        text = f'{prefix}{stamp_text},"hash":"","bids":{bids},"asks":{asks}{suffix[1]}'
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def _build_prefix(self) -> str:
        market, asset = _text(self.market), _text(self.asset_id)
        self._prefix = f'{{"market":{market},"asset_id":{asset},"timestamp":'
        return self._prefix

    def top_of_book(self) -> dict[str, str | None]:
        return {"best_bid": self.best_bid(), "best_ask": self.best_ask()}


def _suffix_text(min_order_size: str, tick_size: str, neg_risk: bool, last_trade_price: str) -> str:
    return (
        ',"min_order_size":'
        + _text(min_order_size)
        + ',"tick_size":'
        + _text(tick_size)
        + ',"neg_risk":'
        + ("true" if neg_risk else "false")
        + ',"last_trade_price":'
        + _text(last_trade_price)
        + "}"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0.0
    except (TypeError, ValueError):
        return False
