"""Order-book state per token and Polymarket's 10-field book hash (PROTOCOL.md §5). Pure: no I/O.

Wire order (PROTOCOL.md §0.6, §3.1): bids ascending, asks descending, best price LAST. Prices and sizes are
kept as the exact strings received, because the hash is computed over them verbatim (§7); levels are keyed
by numeric price so ".48" and "0.48" are one level.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from math import isfinite
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
    if value.replace(".", "").isalnum():  # "0.48", "1790658661234", hex ids: the common case, one check
        return '"' + value + '"'
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


class Side:
    """One side's levels in ascending price order, each with its JSON fragment, and the side's joined text.

    Kept as parallel sorted lists (bisect), not dicts keyed by float: a change touches one position, and
    the text is one join, with no float hashing or sorting per change.
    """

    __slots__ = ("keys", "levels", "fragments", "descending", "_text")

    def __init__(self, levels: list[Level], *, descending: bool) -> None:
        by_price: dict[float, Level] = {}
        for level in levels:  # a repeated price: last wins
            try:
                key = float(level[0])
            except ValueError:
                continue
            if isfinite(key):
                by_price[key] = level
        self.keys = sorted(by_price)
        self.levels = [by_price[k] for k in self.keys]
        self.fragments = [_level_json(p, s) for p, s in self.levels]
        self.descending = descending
        self._text: str | None = None

    def set(self, key: float, price: str, size: str) -> None:
        """Set the level at `key` to `size` ("0" deletes it)."""
        keys = self.keys
        i = bisect_left(keys, key)
        found = i < len(keys) and keys[i] == key
        if _is_zero(size):
            if found:
                del keys[i], self.levels[i], self.fragments[i]
        elif found:
            self.levels[i] = (price, size)
            self.fragments[i] = _level_json(price, size)
        else:
            keys.insert(i, key)
            self.levels.insert(i, (price, size))
            self.fragments.insert(i, _level_json(price, size))
        self._text = None

    def wire(self) -> list[Level]:
        """Levels in wire order: bids ascending, asks descending (best last)."""
        return self.levels[::-1] if self.descending else list(self.levels)

    def text(self) -> str:
        """`[{"price":…,"size":…},…]` in wire order, as the hash needs it (rebuilt only after a change)."""
        text = self._text
        if text is None:
            fragments = reversed(self.fragments) if self.descending else self.fragments
            text = self._text = "[" + ",".join(fragments) + "]"
        return text


class RecentHashes:
    """The last `size` hashes of one book, kept as 64-bit prefixes in a ring of integers allocated once.

    A REST summary agrees with the feed when its hash is one of these. Fixed memory from the first update:
    a deque of 256 hex strings cost ~25 kB per token once full (20 MB for 800 tokens, filled over minutes,
    or hours for quiet tokens). 64 bits of a SHA-1 tell 256 hashes apart with no practical collision.
    """

    __slots__ = ("_ring", "_next", "latest")

    def __init__(self, size: int = 256) -> None:
        self._ring = array("Q", bytes(8 * size))
        self._next = 0
        self.latest: str | None = None  # the last hash in full (for records that name it)

    def append(self, hex_hash: str) -> None:
        key = _hash_key(hex_hash)
        if key:
            self.latest = hex_hash
            self._ring[self._next] = key
            self._next = (self._next + 1) % len(self._ring)

    def __contains__(self, hex_hash: object) -> bool:
        key = _hash_key(hex_hash) if isinstance(hex_hash, str) else 0
        return bool(key) and key in self._ring


def _hash_key(hex_hash: str) -> int:
    """The first 64 bits of a hex hash, never 0 (an empty slot); 0 for text that is not hex."""
    try:
        return int(hex_hash[:16], 16) | 1
    except ValueError:
        return 0


@dataclass
class BookState:
    """One token's L2 book as rebuilt from the feed, plus what the hash needs beyond levels.

    The hash is recomputed after every change: each side keeps its text ready (see `Side`), and the
    fields around the levels are kept as text until they change (the same bytes `book_hash` produces).
    """

    market: str
    asset_id: str
    min_order_size: str = ""
    neg_risk: bool = False
    tick_size: str = ""
    last_trade_price: str = ""
    timestamp: str = ""
    bids: Side = field(default_factory=lambda: Side([], descending=False))
    asks: Side = field(default_factory=lambda: Side([], descending=True))
    synced: bool = False
    recent_hashes: RecentHashes = field(default_factory=RecentHashes, repr=False)
    #: `{"market":…,"asset_id":…,"timestamp":` (market and asset never change)
    _prefix: str = field(default="", repr=False)
    #: the text after the asks, and the (min_order_size, tick_size, neg_risk, ltp) it was built from
    _suffix: tuple[tuple[str, str, bool, str], str] | None = field(default=None, repr=False)

    def load_snapshot(
        self, bids: list[Level], asks: list[Level], *, timestamp: str, tick_size: str | None = None
    ) -> None:
        """Replace every level from a `book` event or REST summary."""
        self.bids = Side(bids, descending=False)
        self.asks = Side(asks, descending=True)
        self.timestamp = timestamp
        if tick_size:
            self.tick_size = tick_size
        self.synced = True

    def apply_change(self, *, price: str, size: str, side: str, timestamp: str) -> None:
        """Apply one `price_change` entry: `size` is the new aggregate, "0" deletes (§3.2)."""
        try:
            key = float(price)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"price {price!r} is not a number") from exc
        if not isfinite(key):
            raise ValueError(f"price {price!r} is not a number")
        is_bid = side == "BUY" or side.upper() == "BUY"
        (self.bids if is_bid else self.asks).set(key, price, size)
        self.timestamp = timestamp

    def wire_bids(self) -> list[Level]:
        """Bids ascending, as on the wire."""
        return self.bids.wire()

    def wire_asks(self) -> list[Level]:
        """Asks descending, as on the wire."""
        return self.asks.wire()

    def best_bid(self) -> str | None:
        levels = self.bids.levels
        return levels[-1][0] if levels else None

    def best_ask(self) -> str | None:
        levels = self.asks.levels
        return levels[0][0] if levels else None

    def hash(
        self,
        *,
        last_trade_price: str | None = None,
        timestamp: str | None = None,
        tick_size: str | None = None,
        sides: tuple[str, str] | None = None,
    ) -> str:
        """The 10-field hash of the current state, or of an earlier one of this book: another ltp,
        timestamp, tick size, or `sides` (the bids' and asks' `Side.text()` as they were then).

        Same bytes as `book_hash`; the fields that rarely change are kept as ready-made text."""
        ltp = self.last_trade_price if last_trade_price is None else last_trade_price
        stamp = self.timestamp if timestamp is None else timestamp
        key = (self.min_order_size, self.tick_size if tick_size is None else tick_size, self.neg_risk, ltp)
        suffix = self._suffix
        if suffix is None or suffix[0] != key:
            suffix = self._suffix = (key, _suffix_text(*key))
        prefix = self._prefix or self._build_prefix()
        stamp_text = f'"{stamp}"' if stamp.isdigit() else _text(stamp)
        bids, asks = (self.bids.text(), self.asks.text()) if sides is None else sides
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


_NONZERO_LEAD = frozenset("123456789")


def _is_zero(text: str) -> bool:
    if text[:1] in _NONZERO_LEAD and text.replace(".", "", 1).isdigit():  # "2000", "12.5": most sizes
        return False
    try:
        return float(text) == 0.0
    except (TypeError, ValueError):
        return False
