"""Book rebuilding with hash verification over real captures (PROTOCOL.md §5.3)."""

from __future__ import annotations

import copy
from typing import Any

from pmws.book import book_hash
from pmws.tracker import PENDING_MAX, BookTracker
from tests.conftest import example


def burst() -> list[dict[str, Any]]:
    messages = example("ws_price_change_burst_captured_nautilus.json")
    assert isinstance(messages, list)
    return messages


def tracker_for(messages: list[dict[str, Any]]) -> BookTracker:
    tracker = BookTracker()
    for message in messages:
        for asset in {message.get("asset_id")} | {c["asset_id"] for c in message.get("price_changes", [])}:
            if asset:
                tracker.set_metadata(asset, "5", False)
    return tracker


def test_captured_book_verifies() -> None:
    book: Any = example("ws_book_captured_nautilus.json")
    tracker = BookTracker()
    tracker.set_metadata(book["asset_id"], "5", False)
    tracker.observe(book)
    assert tracker.counters.verified == 1 and tracker.counters.pending == 0


def test_trade_burst_waits_for_the_late_trade_price_instead_of_failing() -> None:
    messages = burst()
    tracker = tracker_for(messages)
    for message in messages:
        tracker.observe(message)
    counters = tracker.counters
    assert counters.verified == 47  # the initial book and 46 of 49 entries (the other asset has no book)
    assert counters.mismatched == 0
    assert counters.pending == 4  # three burst entries and the post-trade book share one hash
    book = messages[-1]
    trade = {
        "event_type": "last_trade_price",
        "asset_id": book["asset_id"],
        "price": "0.301",
        "market": book["market"],
        "timestamp": book["timestamp"],
        "side": "BUY",
        "size": "1",
    }
    tracker.observe(trade)
    assert counters.pending == 0 and counters.mismatched == 0
    assert counters.verified == 51 and counters.resolved_late == 4


def test_a_corrupted_change_is_counted_once_a_book_resyncs() -> None:
    messages = copy.deepcopy(burst())
    messages[5]["price_changes"][1]["size"] = "999999"  # the feed lied about one level
    tracker = tracker_for(messages)
    for message in messages:
        tracker.observe(message)
    assert tracker.counters.mismatched >= 1
    assert tracker.counters.resyncs == 1


def test_rest_comparison_agrees_defers_and_diverges() -> None:
    rest: Any = example("rest_book_empty_ask_captured_nautilus.json")
    tracker = BookTracker()
    tracker.set_metadata(rest["asset_id"], rest["min_order_size"], rest["neg_risk"])
    ws_book = {k: rest[k] for k in ("market", "asset_id", "timestamp", "hash", "bids", "asks", "tick_size")}
    tracker.observe({**ws_book, "event_type": "book"})
    assert tracker.counters.verified == 1
    assert tracker.compare_rest(rest) is None and tracker.rest_agree == 1
    newer = {**rest, "timestamp": str(int(rest["timestamp"]) + 5), "hash": "f" * 40}
    assert tracker.compare_rest(newer) is None and tracker.rest_deferred == 1
    change = {
        "event_type": "price_change",
        "market": rest["market"],
        "timestamp": str(int(rest["timestamp"]) + 9),
        "price_changes": [
            {"asset_id": rest["asset_id"], "price": "0.002", "size": "1", "side": "BUY", "hash": "x"}
        ],
    }
    divergences = tracker.observe(change)
    assert len(divergences) == 1 and tracker.rest_divergent == 1
    record = divergences[0].to_record()
    assert record["rest_hash"] == "f" * 40 and record["ws_top"]["best_bid"] == "0.002"


def test_a_pending_change_is_explained_by_the_book_as_it_was_then_not_as_it_is_at_the_trade() -> None:
    """Two trade-driven changes each carry the hash with the coming trade price (§5.3); the book moves on
    between them, so the first must be checked against the levels it was sent with."""
    market, asset = "0xm", "111"
    fields: dict[str, Any] = {
        "market": market,
        "asset_id": asset,
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
    }
    bids, asks = [("0.40", "10"), ("0.45", "5")], [("0.60", "7"), ("0.55", "3")]
    book = {
        "event_type": "book",
        "market": market,
        "asset_id": asset,
        "timestamp": "100",
        "tick_size": "0.01",
    }
    book |= {
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
    }
    book["hash"] = book_hash(**fields, timestamp="100", bids=bids, asks=asks, last_trade_price="")
    first_bids = [("0.40", "10"), ("0.42", "4"), ("0.45", "5")]
    second_asks = [("0.60", "7"), ("0.58", "2"), ("0.55", "3")]
    changes = [
        (
            "101",
            "0.42",
            "4",
            "BUY",
            book_hash(**fields, timestamp="101", bids=first_bids, asks=asks, last_trade_price="0.6"),
        ),
        (
            "102",
            "0.58",
            "2",
            "SELL",
            book_hash(**fields, timestamp="102", bids=first_bids, asks=second_asks, last_trade_price="0.6"),
        ),
    ]
    tracker = BookTracker()
    tracker.set_metadata(asset, "5", False)
    tracker.observe(book)
    for stamp, price, size, side, expected in changes:
        entry = {"asset_id": asset, "price": price, "size": size, "side": side, "hash": expected}
        tracker.observe(
            {"event_type": "price_change", "market": market, "timestamp": stamp, "price_changes": [entry]}
        )
    assert tracker.counters.pending == 2
    tracker.observe({"event_type": "last_trade_price", "market": market, "asset_id": asset, "price": "0.6"})
    assert tracker.counters.resolved_late == 2 and tracker.counters.pending == 0
    assert tracker.counters.mismatched == 0


def test_changes_that_never_verify_wait_at_most_pending_max_per_token_then_count_as_mismatched() -> None:
    """A token whose hashes never match and that never trades must not keep every change's book text."""
    book: Any = example("ws_book_captured_nautilus.json")
    asset = book["asset_id"]
    expired: list[tuple[str, str]] = []
    tracker = BookTracker(on_expired=lambda token, expected: expired.append((token, expected)))
    tracker.set_metadata(asset, "5", False)
    tracker.observe(book)
    extra = 44
    for index in range(PENDING_MAX + extra):
        entry = {"asset_id": asset, "price": "0.01", "size": str(index + 1), "side": "BUY"}
        tracker.apply_entry({**entry, "hash": f"{index:040x}"}, str(int(book["timestamp"]) + index + 1))
    assert len(tracker.pending[asset]) == PENDING_MAX == tracker.counters.pending
    assert tracker.counters.mismatched == extra
    assert expired == [(asset, f"{index:040x}") for index in range(extra)]  # the oldest first
    assert tracker.pending[asset][0].expected == f"{extra:040x}"


def test_a_book_that_carries_the_waiting_changes_keeps_at_most_pending_max() -> None:
    book: Any = example("ws_book_captured_nautilus.json")
    asset = book["asset_id"]
    tracker = BookTracker()
    tracker.set_metadata(asset, "5", False)
    tracker.observe(book)
    for index in range(PENDING_MAX):  # every change already carries the coming book's (post-trade) hash
        entry = {"asset_id": asset, "price": "0.01", "size": str(index + 1), "side": "BUY", "hash": "f" * 40}
        tracker.apply_entry(entry, str(int(book["timestamp"]) + index + 1))
    tracker.observe({**book, "hash": "f" * 40, "timestamp": str(int(book["timestamp"]) + 10_000)})
    assert len(tracker.pending[asset]) == PENDING_MAX == tracker.counters.pending
    assert tracker.counters.mismatched == 1


def trade_at(price: str, stamp: str) -> dict[str, Any]:
    first = burst()[0]
    return {"event_type": "last_trade_price", "asset_id": first["asset_id"], "market": first["market"]} | {
        "price": price,
        "timestamp": stamp,
        "side": "BUY",
        "size": "1",
    }


def group_start(messages: list[dict[str, Any]]) -> int:
    """Where the captured trade's price_change group starts (its entries carry the post-trade hash)."""
    return next(i for i, e in enumerate(messages) if e.get("timestamp") == "1790658827000")


def test_a_message_lost_inside_a_trade_group_is_not_verified_by_the_trade_nor_by_the_book() -> None:
    """The book that follows the trade matches the group's hash; it proves itself, not the changes that were
    applied to a book a lost message left wrong: they wait, and the next book calls them mismatched."""
    messages = burst()
    start = group_start(messages)
    lost = messages[: start - 1] + messages[start:]  # the message just before the group never arrived
    tracker = tracker_for(messages)
    for message in lost:
        tracker.observe(message)
    tracker.observe(trade_at("0.301", "1790658827088"))
    assert tracker.counters.pending > 0 and tracker.counters.resolved_late <= 1  # the book's own check only
    book = messages[-1]
    tracker.observe({**book, "timestamp": "1790658830000", "hash": "0" * 40})
    assert tracker.counters.mismatched >= 3 and tracker.counters.resyncs == 1
    assert all(p.from_book for p in tracker.pending[book["asset_id"]])  # only that book's own check waits


def test_a_group_whose_trade_price_came_first_verifies_every_entry() -> None:
    """The trade's `last_trade_price` arrived before its price_change group: the group's last entry verifies
    at once, and the earlier entries that carry the same (final) hash are explained by it."""
    messages = burst()
    start = group_start(messages)
    tracker = tracker_for(messages)
    for message in [*messages[:start], trade_at("0.301", "1790658827000"), *messages[start:]]:
        tracker.observe(message)
    assert tracker.counters.pending == 0 and tracker.counters.mismatched == 0
    assert tracker.counters.resolved_late >= 2


def test_an_entry_without_a_size_is_not_applied() -> None:
    book: Any = example("ws_book_captured_nautilus.json")
    tracker = BookTracker()
    tracker.set_metadata(book["asset_id"], "5", False)
    tracker.observe(book)
    before = tracker.books[book["asset_id"]].wire_bids()
    entry = {"asset_id": book["asset_id"], "price": "0.95", "side": "BUY", "hash": "x"}
    tracker.observe(
        {"event_type": "price_change", "market": book["market"], "timestamp": "1", "price_changes": [entry]}
    )
    assert tracker.books[book["asset_id"]].wire_bids() == before  # no ("0.95", "None") level, no crossed book
    assert tracker.counters.unverifiable == 1 and tracker.counters.pending == 0
