"""Rebuild every token's book from the feed and verify Polymarket's hashes as they arrive. Pure.

PROTOCOL.md §5.3: a `price_change` entry's hash is the 10-field hash after applying it; a `book` hash needs
`min_order_size`/`neg_risk` from metadata. During a trade the hash can already include a `last_trade_price`
that arrives later, so a mismatch first becomes *pending*; the next `last_trade_price` for that token may
resolve it (verified), the next `book` closes it (mismatched) and resyncs; at most PENDING_MAX wait per
token, the oldest beyond is mismatched. A mismatch never drops data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pmws.book import BookState, levels_of, summary_hash

#: What one hash check said (`BookTracker.apply_entry`; the `hash_status` of `pmws books` rows)
VERIFIED, PENDING, UNVERIFIED = "verified", "pending", "unverified"
#: Changes per token that may wait for a trade at once. A real wait lasts until the trade that follows within
#: milliseconds; a token whose hashes never match (a hash rule Polymarket changed, §5.2) and that trades
#: rarely would otherwise keep every change's book text until its next `book`. The oldest beyond this is
#: given up as mismatched.
PENDING_MAX = 256


@dataclass
class HashCounters:
    verified: int = 0
    mismatched: int = 0
    pending: int = 0  # currently waiting for a later last_trade_price
    resolved_late: int = 0
    unverifiable: int = 0  # no book yet, or no hash in the message
    resyncs: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class Pending:
    """A change whose hash did not match yet (a trade's `last_trade_price` may explain it, §5.3): the book
    as it was then, kept as its two sides' text (shared with the book, not copied)."""

    expected: str
    timestamp: str
    bids_text: str
    asks_text: str
    tick_size: str
    #: loaded from a `book`, not rebuilt from changes: it explains itself only, never the changes that
    #: carry the same hash (they may have been applied to a book a lost message left wrong)
    from_book: bool = False


@dataclass
class Divergence:
    """REST and the rebuilt book disagree: both hashes and tops of book."""

    asset_id: str
    rest_hash: str
    ws_hash: str | None
    rest_timestamp: str
    ws_timestamp: str | None
    rest_top: dict[str, str | None]
    ws_top: dict[str, str | None]

    def to_record(self) -> dict[str, Any]:
        return {"record_type": "divergence", **vars(self)}


@dataclass
class BookTracker:
    """Per-token books and hash verification for one recorder."""

    metadata: dict[str, tuple[str, bool]] = field(default_factory=dict)  # token → (min_order_size, neg_risk)
    books: dict[str, BookState] = field(default_factory=dict)
    counters: HashCounters = field(default_factory=HashCounters)
    pending: dict[str, list[Pending]] = field(default_factory=dict)
    rest_agree: int = 0
    rest_divergent: int = 0
    rest_deferred: int = 0
    #: REST summaries newer than the feed, by token, compared again as the feed moves on
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: False: rebuild the books only, compute no hash per change (`pmws replay` serves books, checks none)
    verify: bool = True
    #: Called with (token, expected hash) when a pending change is given up (PENDING_MAX)
    on_expired: Callable[[str, str], None] | None = None

    def set_metadata(self, token_id: str, min_order_size: str, neg_risk: bool) -> None:
        self.metadata[token_id] = (min_order_size, neg_risk)
        book = self.books.get(token_id)
        if book is not None:
            book.min_order_size, book.neg_risk = min_order_size, neg_risk

    def forget(self, token_id: str) -> None:
        """Drop a token that is no longer recorded."""
        self.metadata.pop(token_id, None)
        self.books.pop(token_id, None)
        self.counters.pending -= len(self.pending.pop(token_id, []))
        self.deferred.pop(token_id, None)

    def observe(self, event: dict[str, Any]) -> list[Divergence]:
        """Apply one feed event; returns divergences that a deferred REST comparison now shows."""
        kind = event.get("event_type")
        if kind == "book":
            asset = event.get("asset_id")
            if isinstance(asset, str):
                self._on_book(asset, event)
                return self.check_deferred(asset)
        elif kind == "price_change":
            self._on_price_change(event)
            if self.deferred:  # a REST summary waits for the feed to catch up (rare)
                return [d for a in _assets_of(event) for d in self.check_deferred(a)]
        elif kind == "last_trade_price":
            self._on_trade(event)
        elif kind == "tick_size_change":
            book = self.books.get(str(event.get("asset_id")))
            if book is not None and isinstance(event.get("new_tick_size"), str):
                book.tick_size = event["new_tick_size"]
        return []

    def _book(self, asset: str, market: str) -> BookState:
        book = self.books.get(asset)
        if book is None:
            mos, neg = self.metadata.get(asset, ("", False))
            book = BookState(market=market, asset_id=asset, min_order_size=mos, neg_risk=neg)
            self.books[asset] = book
        return book

    def _on_book(self, asset: str, event: dict[str, Any]) -> None:
        book = self._book(asset, str(event.get("market", "")))
        if isinstance(event.get("last_trade_price"), str):
            book.last_trade_price = event["last_trade_price"]
        book.load_snapshot(
            levels_of(event.get("bids")),
            levels_of(event.get("asks")),
            timestamp=str(event.get("timestamp", "")),
            tick_size=event.get("tick_size") if isinstance(event.get("tick_size"), str) else None,
        )
        expected = event.get("hash")
        earlier = self.pending.pop(asset, [])
        self._verify(book, expected, from_book=True)
        # Entries that already carried this book's (post-trade) hash wait with it for the trade (§5.3);
        # anything else the book does not explain was a real mismatch, and the book resyncs us.
        carried = [p for p in earlier if p.expected == expected]
        dropped = len(earlier) - len(carried)
        if carried:
            self._keep_at_most(asset, carried + self.pending.get(asset, []))
        if dropped:
            self.counters.pending -= dropped
            self.counters.mismatched += dropped
            self.counters.resyncs += 1

    def _on_price_change(self, event: dict[str, Any]) -> None:
        changes = event.get("price_changes")
        if not isinstance(changes, list):
            self.counters.unverifiable += 1  # legacy schema (§3.3): kept, not verified
            return
        timestamp = str(event.get("timestamp", ""))
        for change in changes:
            if isinstance(change, dict):
                self.apply_entry(change, timestamp)

    def apply_entry(self, change: dict[str, Any], timestamp: str) -> str:
        """Apply one `price_change` entry and check its hash: VERIFIED, PENDING or UNVERIFIED.

        (`observe` does this for each entry of an event; `pmws books` calls it per entry for each row's
        status.)"""
        book = self.books.get(str(change.get("asset_id")))
        price, size = change.get("price"), change.get("size")
        if book is None or not book.synced or price is None or size is None:
            self.counters.unverifiable += 1  # no book yet, or an entry without a level to set (not applied)
            return UNVERIFIED
        try:
            book.apply_change(
                price=str(price), size=str(size), side=str(change.get("side", "")), timestamp=timestamp
            )
        except ValueError:
            self.counters.unverifiable += 1
            return UNVERIFIED
        return self._verify(book, change.get("hash"))

    def _verify(self, book: BookState, expected: Any, *, from_book: bool = False) -> str:
        if not self.verify:
            return UNVERIFIED
        if not isinstance(expected, str) or not expected:
            self.counters.unverifiable += 1
            return UNVERIFIED
        actual = book.hash()
        book.recent_hashes.append(actual)
        if actual == expected:
            self.counters.verified += 1
            if not from_book and book.asset_id in self.pending:
                self._explained(book.asset_id, actual)
            return VERIFIED
        book.recent_hashes.append(expected)
        waiting = self.pending.setdefault(book.asset_id, [])
        text = (book.bids.text(), book.asks.text())
        waiting.append(Pending(expected, book.timestamp, *text, book.tick_size, from_book=from_book))
        self.counters.pending += 1
        self._keep_at_most(book.asset_id, waiting)
        return PENDING

    def _keep_at_most(self, asset: str, waiting: list[Pending]) -> None:
        """`waiting` becomes the token's pending list; the oldest beyond PENDING_MAX are mismatched."""
        self.pending[asset] = waiting
        while len(waiting) > PENDING_MAX:
            item = waiting.pop(0)
            self.counters.pending -= 1
            self.counters.mismatched += 1
            if self.on_expired is not None:
                self.on_expired(asset, item.expected)

    def _on_trade(self, event: dict[str, Any]) -> None:
        asset = str(event.get("asset_id"))
        price = event.get("price")
        book = self.books.get(asset)
        if book is None or not isinstance(price, str):
            return
        book.last_trade_price = price
        waiting = self.pending.pop(asset, [])
        own = [self._pending_hash(book, p, price) == p.expected for p in waiting]
        # A change rebuilt from the feed that this trade explains proves its group's hash (the group's
        # entries all carry the final state's hash); a `book` that it explains proves only itself.
        explained = {p.expected for p, ok in zip(waiting, own, strict=True) if ok and not p.from_book}
        still = [p for p, ok in zip(waiting, own, strict=True) if not ok and p.expected not in explained]
        self._resolved(len(waiting) - len(still))
        if still:
            self.pending[asset] = still
        book.recent_hashes.append(book.hash())

    def _explained(self, asset: str, hash_: str) -> None:
        """A change rebuilt from the feed verified with `hash_` (its trade price already applied, §5.3):
        the earlier changes of its group, waiting with the same hash, are explained too."""
        waiting = self.pending.pop(asset, [])
        still = [p for p in waiting if p.expected != hash_]
        self._resolved(len(waiting) - len(still))
        if still:
            self.pending[asset] = still

    def _resolved(self, count: int) -> None:
        self.counters.pending -= count
        self.counters.verified += count
        self.counters.resolved_late += count

    @staticmethod
    def _pending_hash(book: BookState, item: Pending, last_trade_price: str) -> str:
        return book.hash(
            last_trade_price=last_trade_price,
            timestamp=item.timestamp,
            tick_size=item.tick_size,
            sides=(item.bids_text, item.asks_text),
        )

    def compare_rest(self, summary: dict[str, Any]) -> Divergence | None:
        """Compare a REST `/books` summary with the rebuilt book (PROTOCOL.md §4, §5).

        Agree when the REST hash is one the feed produced recently; if REST is newer than the feed, defer
        until the feed catches up; otherwise a divergence.
        """
        asset = str(summary.get("asset_id", ""))
        rest_hash = str(summary.get("hash") or summary_hash(summary))
        mos, neg = str(summary.get("min_order_size", "")), bool(summary.get("neg_risk", False))
        if mos and asset not in self.metadata:
            self.set_metadata(asset, mos, neg)
        book = self.books.get(asset)
        if book is not None and rest_hash in book.recent_hashes:
            self.rest_agree += 1
            self.deferred.pop(asset, None)
            return None
        if book is None or _ms(summary.get("timestamp")) > _ms(book.timestamp):
            self.deferred[asset] = summary
            self.rest_deferred += 1
            return None
        return self._diverged(summary, book, rest_hash)

    def check_deferred(self, asset: str) -> list[Divergence]:
        """A REST summary that was newer than the feed, compared again now that `asset` moved on."""
        summary = self.deferred.get(asset)
        book = self.books.get(asset)
        if summary is None or book is None:
            return []
        rest_hash = str(summary.get("hash", ""))
        if rest_hash in book.recent_hashes:
            self.deferred.pop(asset)
            self.rest_agree += 1
            return []
        if _ms(book.timestamp) > _ms(summary.get("timestamp")):
            self.deferred.pop(asset)
            return [self._diverged(summary, book, rest_hash)]
        return []

    def _diverged(self, summary: dict[str, Any], book: BookState | None, rest_hash: str) -> Divergence:
        self.rest_divergent += 1
        rest_state = BookState(market="", asset_id="")
        rest_state.load_snapshot(levels_of(summary.get("bids")), levels_of(summary.get("asks")), timestamp="")
        return Divergence(
            asset_id=str(summary.get("asset_id", "")),
            rest_hash=rest_hash,
            ws_hash=book.hash() if book is not None else None,
            rest_timestamp=str(summary.get("timestamp", "")),
            ws_timestamp=book.timestamp if book is not None else None,
            rest_top=rest_state.top_of_book(),
            ws_top=book.top_of_book() if book is not None else {"best_bid": None, "best_ask": None},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.counters.to_json(),
            "rest_agree": self.rest_agree,
            "rest_divergent": self.rest_divergent,
            "rest_deferred": self.rest_deferred,
        }


def _assets_of(event: dict[str, Any]) -> list[str]:
    changes = event.get("price_changes")
    if not isinstance(changes, list):
        return []
    return list(dict.fromkeys(str(c.get("asset_id")) for c in changes if isinstance(c, dict)))


def _ms(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return -1
