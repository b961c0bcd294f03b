"""One global order book per token: integer levels, wire strings and the 10-field hash (PROTOCOL.md §5).

Prices are kept as integer thousandths ("mills") and sizes as integer hundredths ("cents"); the wire strings
are derived from them, so a price always has one spelling ("0.5", "0.51", "0.513"). Bids are sent ascending
and asks descending, best last (§0 item 6, §3.1).

`TokenBook.hash()` is the hot path: it writes the same bytes `pmws.book.book_hash` would serialise (compact
JSON, Go field order, §5.1), with each side's JSON cached until it changes. The REST summary uses
`pmws.book.book_hash` itself, so a client rebuilding the book from the websocket and comparing with /books
checks the two against each other; tests/unit/test_sim_orderbook.py checks them byte for byte.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pmws.book import Level, book_hash

BUY, SELL = "BUY", "SELL"
ONE = 1000  # price 1.0 in mills


def _price_text(mills: int) -> str:
    """Mills to the shortest decimal text."""
    return f"{mills / ONE:.3f}".rstrip("0").rstrip(".")


PRICE_TEXT = tuple(_price_text(m) for m in range(ONE + 1))  # the hot path looks prices up
LTP_TEXT = tuple(f"{m / ONE:.3f}" for m in range(ONE + 1))


def price_text(mills: int) -> str:
    """Level price as on the wire: `0.5`, `0.51`, `0.513` (no trailing zeros)."""
    return PRICE_TEXT[mills]


def ltp_text(mills: int) -> str:
    """Last trade price with three decimals, like the captured `"0.920"` (§3.1)."""
    return LTP_TEXT[mills]


def size_text(cents: int) -> str:
    """Size as on the wire: `120.5`, `5`, `3149725.72`."""
    whole, frac = divmod(cents, 100)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac // 10}" if frac % 10 == 0 else f"{whole}.{frac:02d}"


def tick_text(tick_mills: int) -> str:
    """`0.01` or `0.001`."""
    return PRICE_TEXT[tick_mills]


def _level_json(mills: int, cents: int) -> str:
    """One level as compact JSON, the way `json.dumps` writes it."""
    return '{"price":"' + PRICE_TEXT[mills] + '","size":"' + size_text(cents) + '"}'


class TokenBook:
    """The L2 book of one token plus the fields its hash needs."""

    __slots__ = (
        "market", "asset_id", "bids", "asks", "tick_mills", "last_trade_price", "timestamp",
        "min_order_size", "neg_risk", "_prefix", "_bids_json", "_asks_json", "_fragments",
    )  # fmt: skip

    def __init__(self, market: str, asset_id: str, *, tick_mills: int, timestamp: str) -> None:
        self.market = market
        self.asset_id = asset_id
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.tick_mills = tick_mills
        self.last_trade_price = ""
        self.timestamp = timestamp
        self.min_order_size = "5"  # Gamma orderMinSize 5 (§6.2)
        self.neg_risk = False
        self._prefix = '{"market":"' + market + '","asset_id":"' + asset_id + '","timestamp":"'
        self._bids_json: str | None = None
        self._asks_json: str | None = None
        self._fragments: dict[tuple[str, int], str] = {}  # (side, price) -> that level's JSON

    def set_level(self, side: str, mills: int, cents: int) -> None:
        """New aggregate size at a level; 0 deletes it (§3.2)."""
        levels = self.bids if side == BUY else self.asks
        if cents > 0:
            levels[mills] = cents
            self._fragments[side, mills] = _level_json(mills, cents)
        else:
            levels.pop(mills, None)
            self._fragments.pop((side, mills), None)
        if side == BUY:
            self._bids_json = None
        else:
            self._asks_json = None

    def best_bid(self) -> int | None:
        """Highest bid in mills."""
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        """Lowest ask in mills."""
        return min(self.asks) if self.asks else None

    def top(self) -> tuple[int, int]:
        """(best bid, best ask) in mills; 0 / 1000 for an empty side."""
        return (max(self.bids) if self.bids else 0, min(self.asks) if self.asks else ONE)

    def top_texts(self) -> tuple[str, str]:
        """best_bid/best_ask strings; "0"/"1" for an empty side (§3.2, docs example)."""
        bids, asks = self.bids, self.asks
        return (PRICE_TEXT[max(bids)] if bids else "0", PRICE_TEXT[min(asks)] if asks else "1")

    @property
    def tick_size(self) -> str:
        """Tick as on the wire."""
        return tick_text(self.tick_mills)

    def wire_bids(self) -> list[Level]:
        """Bids ascending (best last)."""
        return [(price_text(m), size_text(self.bids[m])) for m in sorted(self.bids)]

    def wire_asks(self) -> list[Level]:
        """Asks descending (best last)."""
        return [(price_text(m), size_text(self.asks[m])) for m in sorted(self.asks, reverse=True)]

    def hash(self) -> str:
        """The 10-field hash of the current state, serialised exactly as `pmws.book.book_hash` does."""
        fragments = self._fragments
        if self._bids_json is None:
            self._bids_json = "[" + ",".join([fragments[BUY, m] for m in sorted(self.bids)]) + "]"
        if self._asks_json is None:
            asks = sorted(self.asks, reverse=True)
            self._asks_json = "[" + ",".join([fragments[SELL, m] for m in asks]) + "]"
        text = (
            self._prefix + self.timestamp + '","hash":"","bids":' + self._bids_json + ',"asks":'
            + self._asks_json + ',"min_order_size":"' + self.min_order_size + '","tick_size":"'
            + self.tick_size + '","neg_risk":' + ("true" if self.neg_risk else "false")
            + ',"last_trade_price":"' + self.last_trade_price + '"}'
        )  # fmt: skip
        return hashlib.sha1(text.encode()).hexdigest()

    def reference_hash(self) -> str:
        """The same hash computed by `pmws.book.book_hash`."""
        return book_hash(
            market=self.market,
            asset_id=self.asset_id,
            timestamp=self.timestamp,
            bids=self.wire_bids(),
            asks=self.wire_asks(),
            min_order_size=self.min_order_size,
            tick_size=self.tick_size,
            neg_risk=self.neg_risk,
            last_trade_price=self.last_trade_price,
        )

    def summary(self) -> dict[str, Any]:
        """REST `/book` summary in the documented field order (§4.3), hash by `pmws.book`."""
        return {
            "market": self.market,
            "asset_id": self.asset_id,
            "timestamp": self.timestamp,
            "hash": self.reference_hash(),
            "bids": [{"price": p, "size": s} for p, s in self.wire_bids()],
            "asks": [{"price": p, "size": s} for p, s in self.wire_asks()],
            "min_order_size": self.min_order_size,
            "tick_size": self.tick_size,
            "neg_risk": self.neg_risk,
            "last_trade_price": self.last_trade_price,
        }

    def snapshot_event(self) -> dict[str, Any]:
        """Initial-dump `book` in the captured key order (§3.1, ws_book_captured_nautilus.json)."""
        return {
            "market": self.market,
            "asset_id": self.asset_id,
            "timestamp": self.timestamp,
            "hash": self.hash(),
            "bids": [{"price": p, "size": s} for p, s in self.wire_bids()],
            "asks": [{"price": p, "size": s} for p, s in self.wire_asks()],
            "tick_size": self.tick_size,
            "event_type": "book",
            "last_trade_price": self.last_trade_price,
        }

    def post_trade_event(self) -> dict[str, Any]:
        """Post-trade `book`: no tick_size/last_trade_price, captured key order (§3.1, [C2])."""
        return {
            "market": self.market,
            "asset_id": self.asset_id,
            "bids": [{"price": p, "size": s} for p, s in self.wire_bids()],
            "asks": [{"price": p, "size": s} for p, s in self.wire_asks()],
            "hash": self.hash(),
            "timestamp": self.timestamp,
            "event_type": "book",
        }
