"""`BookBuilder`: records in receive order → rows of the `pmws books` tables (pmws/read/tables.py).

The books are rebuilt by the tracker `pmws run` uses (tracker.py, book.py), one `price_change` entry at a
time so that each change carries its own hash status:

- `verified`: Polymarket's hash matches the rebuilt book;
- `pending`: it does not yet, and a later `last_trade_price` may explain it (PROTOCOL.md §5.3); a change
  whose status is still pending is held (per token, bounded) until that trade or the next `book` settles it
  as `verified` or `mismatched`, and only written as `pending` if nothing settled it;
- `mismatched`: the next `book` showed the rebuilt state was wrong (the book resyncs it);
- `unverified`: no hash to check, or no book yet for the token.

REST `/books` checkpoints in the archive are compared with the rebuilt book (`compare_rest`): a divergence
resyncs the token from the REST book (snapshot rows with `source = rest`) and adds a `book_diverged` gap
from the token's last verified change. A summary newer than the feed is compared once the feed moves past
it; a divergence found then is a `book_diverged` gap only (the summary is older than the book by then).
Rows go to a `RowSink` (the Parquet writer, or a filter before it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

import orjson

from pmws.read.parquet import HOUR_NS
from pmws.read.records import Record
from pmws.read.tables import STATUS_COLUMN
from pmws.tracker import PENDING, UNVERIFIED, VERIFIED, BookTracker, Divergence

MISMATCHED = "mismatched"
HELD_MAX = 10_000  # changes held per token while a hash is pending; beyond, written as pending
WINDOW = re.compile(r"-(\d+[mhd])-")


def _ms(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=1 << 16)  # tops repeat (a price grid): exact Decimal work once per pair
def _mid_and_spread(bid: str | None, ask: str | None) -> tuple[str | None, str | None]:
    if bid is None or ask is None:
        return None, None
    try:
        b, a = Decimal(bid), Decimal(ask)
    except ArithmeticError:
        return None, None
    return str((a + b) / 2), str(a - b)


class RowSink(Protocol):
    """Where table rows go (`PartitionedParquet`, or a filter in front of it)."""

    def add(self, table: str, hour: int, row: tuple[Any, ...]) -> None: ...

    def hour_of(self, ns: int) -> int: ...


@dataclass
class _Token:
    last_status: str = UNVERIFIED
    last_verified_ns: int | None = None
    top: tuple[Any, ...] | None = None
    changed_since_snapshot: bool = False
    held: list[list[Any]] = field(default_factory=list)  # [table, hour, row(list), expected hash]
    book_session: Any = None  # the session whose `book` the state was last loaded from


class BookBuilder:
    """Records in receive order → table rows (handed to `sink.add(table, hour, row)`).

    `shard=(k, n)`: build only every n-th token from the k-th in the order they first appear (and, for k = 0,
    the rows that name no token), so n builders in n processes over the same records (so the same order)
    write every row once, with the tokens (both outcomes of a market alternate) evenly shared.
    """

    def __init__(
        self, sink: RowSink, *, snapshot_interval_seconds: float, shard: tuple[int, int] = (0, 1)
    ) -> None:
        self.sink = sink
        self.shard_index, self.shard_count = shard
        self._mine: dict[str, bool] = {}
        self.tracker = BookTracker(on_expired=self._expired)
        self.snapshot_ns = int(snapshot_interval_seconds * 1e9)
        self.next_snapshot: int | None = None
        self.tokens: dict[str, _Token] = {}
        self.token_info: dict[str, list[Any]] = {}
        self.divergences = 0
        self.superseded = 0  # another replica's events already inside a newer `book`: not applied
        self._source = ""  # the archive file of the record being built

    # --- records --------------------------------------------------------------------------------------

    def on_record(self, record: Record) -> None:
        ns = record.received_ns
        self._source = record.source
        if self.snapshot_ns > 0:
            if self.next_snapshot is None:
                self.next_snapshot = ns - ns % self.snapshot_ns + self.snapshot_ns
            elif ns >= self.next_snapshot:
                self._snapshots(self.next_snapshot)
                self.next_snapshot = ns - ns % self.snapshot_ns + self.snapshot_ns
        kind = record.record_type
        if kind == "ws_frame":
            self._frame(record)
        elif kind == "rest_checkpoint":
            self._rest(record)
        elif kind == "gap":
            token = record.row.get("token_id")
            if self.mine(token) if isinstance(token, str) else self.shard_index == 0:
                self._gap(record.row, record.source)

    def mine(self, token: str) -> bool:
        """Whether this builder's shard holds `token` (always, unsharded)."""
        if self.shard_count == 1:
            return True
        owned = self._mine.get(token)
        if owned is None:  # tokens dealt in turn as first seen: every builder reads the same records
            owned = self._mine[token] = len(self._mine) % self.shard_count == self.shard_index
        return owned

    def set_metadata(self, record: Record) -> None:
        """Learn min_order_size/neg_risk (needed by the book hash) from a REST checkpoint."""
        for summary in _summaries(record.row):
            token, mos = summary.get("asset_id"), summary.get("min_order_size")
            if isinstance(token, str) and isinstance(mos, str) and token not in self.tracker.metadata:
                self.tracker.set_metadata(token, mos, bool(summary.get("neg_risk", False)))

    def _frame(self, record: Record) -> None:
        row = record.row
        ns = record.received_ns
        session = row.get("session_id")
        for token in row.get("tokens_tracked") or ():
            if isinstance(token, dict) and self.mine(str(token.get("token_id"))):
                self._token_seen(token, ns)
        parsed = row.get("json")
        events = parsed if isinstance(parsed, list) else (parsed,)
        for event in events:
            if isinstance(event, dict):
                self._event(event, ns, session)

    def _event(self, event: dict[str, Any], ns: int, session: Any) -> None:
        kind = event.get("event_type")
        if kind == "price_change":
            changes = event.get("price_changes")
            if not isinstance(changes, list):
                if self.shard_index == 0:  # legacy schema (§3.3): counted unverifiable by the tracker
                    self.tracker.observe(event)
                return
            stamp = event.get("timestamp")
            head = (ns, _ms(stamp), _str(event.get("market")), session)
            for change in changes:
                if isinstance(change, dict):
                    self._change(change, stamp, head)
        elif kind == "book":
            asset = event.get("asset_id")
            if isinstance(asset, str) and self.mine(asset):
                if self._superseded(asset, event.get("timestamp"), session):
                    return
                self._state(asset).book_session = session
                status = self._observe(asset, event, ns)
                self._settle(asset, MISMATCHED)
                self._book_rows(asset, ns, _ms(event.get("timestamp")), status, "ws", session)
        elif kind == "last_trade_price":
            asset = event.get("asset_id")
            if isinstance(asset, str) and self.mine(asset):
                self.tracker.observe(event)
                self._settle(asset, VERIFIED)
                self.sink.add(
                    "trades",
                    self.sink.hour_of(ns),
                    (
                        ns,
                        _ms(event.get("timestamp")),
                        asset,
                        _str(event.get("market")),
                        _str(event.get("side")),
                        _str(event.get("price")),
                        _str(event.get("size")),
                        _str(event.get("fee_rate_bps")),
                        session,
                    ),
                )
        elif kind == "tick_size_change":
            if self.mine(str(event.get("asset_id"))):
                self.tracker.observe(event)

    def _change(
        self, change: dict[str, Any], stamp: Any, head: tuple[int, int | None, str | None, Any]
    ) -> None:
        """One `price_change` entry, checked on its own so that its row carries its own hash status."""
        asset = change.get("asset_id")
        if not isinstance(asset, str) or not self.mine(asset):
            return
        ns, exchange_ms, market, session = head
        state = self.tokens.get(asset)
        if (
            state is not None
            and state.book_session not in (None, session)
            and self._superseded(asset, stamp, session)
        ):
            return
        tracker = self.tracker
        status = tracker.apply_entry(change, str(stamp))
        if tracker.deferred:  # a REST summary waits for the feed to catch up
            for divergence in tracker.check_deferred(asset):
                self._diverged_later(divergence, ns)
        state = self._marked(asset, status)
        if status == VERIFIED and state.held:  # it may prove held changes of its group (tracker._explained)
            self._settle(asset, VERIFIED)
        side = "bid" if change.get("side") == "BUY" else "ask"
        price, size = change.get("price"), change.get("size")
        row = (ns, exchange_ms, asset, market, side, price, size, False, status, "ws", session)
        expected = change.get("hash")
        self._out("book_changes", ns, row, state, status, expected)
        self._top(asset, state, ns, exchange_ms, status, expected)

    def _observe(self, asset: str, event: dict[str, Any], ns: int) -> str:
        """Apply one event to the tracker; the status its hash check gave."""
        counters = self.tracker.counters
        verified, pending = counters.verified, counters.pending
        for divergence in self.tracker.observe(event):
            self._diverged_later(divergence, ns)
        if counters.verified > verified:
            status = VERIFIED
        elif counters.pending > pending:
            status = PENDING
        else:
            status = UNVERIFIED
        self._marked(asset, status)
        return status

    def _marked(self, asset: str, status: str) -> _Token:
        """The token's state after a change its hash check gave `status` to."""
        state = self._state(asset)
        state.last_status = status
        state.changed_since_snapshot = True
        return state

    def _superseded(self, asset: str, stamp: Any, session: Any) -> bool:
        """An event of one replica older than the `book` another replica's connection started from.

        Two connections are two TCP streams: merged by receive time, a change replica A received can come
        after the `book` replica B got on subscribing, which already holds it. Applying it again would
        rewind the book; it is left out (counted), as the same session's own events never are.
        """
        state = self.tokens.get(asset)
        if state is None or state.book_session is None or state.book_session == session:
            return False
        book = self.tracker.books.get(asset)
        older = book is not None and _ms(stamp) is not None and (_ms(stamp) or 0) < (_ms(book.timestamp) or 0)
        self.superseded += older
        return older

    def _state(self, asset: str) -> _Token:
        state = self.tokens.get(asset)
        if state is None:
            state = self.tokens[asset] = _Token()
        return state

    # --- held rows: a pending hash settles later ----------------------------------------------------

    def _out(
        self, table: str, ns: int, row: tuple[Any, ...], state: _Token, status: str, expected: Any
    ) -> None:
        if status == PENDING or state.held:
            state.held.append([table, ns // HOUR_NS, list(row), expected if status == PENDING else None])
            if len(state.held) > HELD_MAX:
                self._release(state)
            return
        if status == VERIFIED:
            state.last_verified_ns = ns
        self.sink.add(table, ns // HOUR_NS, row)

    def _settle(self, asset: str, outcome: str) -> None:
        """After a trade or a book: held changes whose hash is no longer pending are `outcome`."""
        state = self.tokens.get(asset)
        if state is None or not state.held:
            return
        still = {p.expected for p in self.tracker.pending.get(asset, [])}
        status_at = STATUS_COLUMN
        for table, _, row, expected in state.held:
            if expected is not None and expected not in still:
                row[status_at[table]] = outcome
        if not still:
            self._release(state)

    def _expired(self, asset: str, expected: str) -> None:
        """The tracker gave up a pending change (PENDING_MAX): its held rows are mismatched, whatever the
        next trade says (unless a change still waiting carries the same hash)."""
        state = self.tokens.get(asset)
        if state is None or any(p.expected == expected for p in self.tracker.pending.get(asset, ())):
            return
        status_at = STATUS_COLUMN
        for held in state.held:
            if held[3] == expected:
                held[2][status_at[held[0]]] = MISMATCHED
                held[3] = None

    def _release(self, state: _Token) -> None:
        for table, hour, row, _ in state.held:
            self.sink.add(table, hour, tuple(row))
        state.held = []

    def finish(self) -> None:
        for state in self.tokens.values():
            self._release(state)

    # --- derived tables -----------------------------------------------------------------------------

    def _top(
        self, asset: str, state: _Token, ns: int, exchange_ms: int | None, status: str, expected: Any
    ) -> None:
        book = self.tracker.books.get(asset)
        if book is None:
            return
        bids, asks = book.bids.levels, book.asks.levels
        bid = bids[-1] if bids else (None, None)
        ask = asks[0] if asks else (None, None)
        top = (bid, ask)
        if top == state.top:
            return
        state.top = top
        mid, spread = _mid_and_spread(bid[0], ask[0])
        row = (ns, exchange_ms, asset, bid[0], bid[1], ask[0], ask[1], mid, spread, status)
        self._out("top_of_book", ns, row, state, status, expected)

    def _book_rows(
        self, asset: str, ns: int, exchange_ms: int | None, status: str, source: str, session: Any
    ) -> None:
        book = self.tracker.books.get(asset)
        if book is None:
            return
        hour = self.sink.hour_of(ns)
        expected = book.recent_hashes.latest if status == PENDING else None
        market = book.market
        state = self._state(asset)
        for side, levels in (("bid", book.bids.levels), ("ask", book.asks.levels)):
            for price, size in levels:
                row = (ns, exchange_ms, asset, market, side, price, size, True, status, source, session)
                self._out("book_changes", ns, row, state, status, expected)
        if not book.bids.levels and not book.asks.levels:  # an empty book still resets the levels
            empty = (ns, exchange_ms, asset, market, None, None, None, True, status, source, session)
            self.sink.add("book_changes", hour, empty)
        state.top = None
        self._top(asset, state, ns, exchange_ms, status, expected)

    def _snapshots(self, at_ns: int) -> None:
        hour = self.sink.hour_of(at_ns)
        for asset, state in self.tokens.items():
            book = self.tracker.books.get(asset)
            if book is None or not book.synced or not state.changed_since_snapshot:
                continue
            state.changed_since_snapshot = False
            stamp = _ms(book.timestamp)
            for side, levels in (("bid", book.bids.levels[::-1]), ("ask", book.asks.levels)):
                for level, (price, size) in enumerate(levels):
                    row = (at_ns, asset, side, level, price, size, state.last_status, stamp)
                    self.sink.add("book_snapshots", hour, row)

    def _rest(self, record: Record) -> None:
        self.set_metadata(record)
        ns = record.received_ns
        for summary in _summaries(record.row):
            asset = summary.get("asset_id")
            if not isinstance(asset, str) or not self.mine(asset):
                continue
            divergence = self.tracker.compare_rest(summary)
            if divergence is None:
                continue
            self.divergences += 1
            state = self._state(asset)
            start = state.last_verified_ns if state.last_verified_ns is not None else ns
            gap: dict[str, Any] = {"cause": "book_diverged", "token_id": asset}
            gap["rest_hash"] = divergence.rest_hash
            gap.update(ws_hash=divergence.ws_hash, start_ns=start, end_ns=ns)
            self._gap(gap, record.source)
            resync = {"event_type": "book", **summary}
            status = self._observe(asset, resync, ns)
            self._settle(asset, MISMATCHED)  # held changes the resync does not carry were wrong
            self._book_rows(
                asset, ns, _ms(summary.get("timestamp")), status, "rest", record.row.get("session_id")
            )

    def _diverged_later(self, divergence: Divergence, ns: int) -> None:
        """A REST summary newer than the feed when it came, that the feed then moved past without ever
        matching: a `book_diverged` gap from the token's last verified change (the book is not resynced from
        a summary now older than the feed; the next `book` or checkpoint does)."""
        self.divergences += 1
        asset = divergence.asset_id
        state = self._state(asset)
        start = state.last_verified_ns if state.last_verified_ns is not None else ns
        gap: dict[str, Any] = {"cause": "book_diverged", "token_id": asset, "rest_hash": divergence.rest_hash}
        gap.update(
            ws_hash=divergence.ws_hash, rest_timestamp=divergence.rest_timestamp, start_ns=start, end_ns=ns
        )
        self._gap(gap, self._source)

    def _gap(self, gap: dict[str, Any], source: str) -> None:
        end, start = int(gap["end_ns"]), int(gap["start_ns"])
        row = (
            end,
            start,
            _str(gap.get("cause")),
            _str(gap.get("token_id")),
            _str(gap.get("session_id")),
            _str(gap.get("shard")),
            source,
            orjson.dumps(gap, default=str).decode(),
        )
        self.sink.add("gaps", self.sink.hour_of(end), row)

    def _token_seen(self, token: dict[str, Any], ns: int) -> None:
        token_id = token.get("token_id")
        if not isinstance(token_id, str):
            return
        info = self.token_info.get(token_id)
        if info is not None:
            info[7] = ns
            return
        slug = _str(token.get("market_slug"))
        window = WINDOW.search(slug or "")
        self.token_info[token_id] = [
            token_id,
            slug,
            _str(token.get("condition_id")),
            _str(token.get("outcome")),
            window.group(1) if window else None,
            _str(token.get("end_time_utc")),
            ns,
            ns,
        ]

    def token_rows(self) -> list[tuple[Any, ...]]:
        return [tuple(info) for info in self.token_info.values()]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _summaries(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    response = row.get("response")
    books = response.get("raw_response_json") if isinstance(response, dict) else None
    if row.get("ok") and isinstance(books, list):
        yield from (b for b in books if isinstance(b, dict))
