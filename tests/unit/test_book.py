"""The 10-field book hash and book rebuilding, against real captures (PROTOCOL.md §5)."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any

from pmws.book import BookState, RecentHashes, book_hash, levels_of, summary_hash
from tests.conftest import example


def test_rest_capture_hash_recomputes_exactly() -> None:
    summary = example("rest_book_empty_ask_captured_nautilus.json")
    assert isinstance(summary, dict)
    assert summary_hash(summary) == summary["hash"]


def test_ws_book_capture_verifies_with_metadata_from_discovery() -> None:
    book: Any = example("ws_book_captured_nautilus.json")
    state = BookState(
        market=book["market"],
        asset_id=book["asset_id"],
        min_order_size="5",
        neg_risk=False,
        last_trade_price=book["last_trade_price"],
    )
    state.load_snapshot(
        levels_of(book["bids"]),
        levels_of(book["asks"]),
        timestamp=book["timestamp"],
        tick_size=book["tick_size"],
    )
    assert state.hash() == book["hash"]
    # without the metadata the wire omits, the hash cannot match (why min_order_size/neg_risk are needed)
    state.min_order_size = ""
    assert state.hash() != book["hash"]


def test_book_keeps_wire_order_best_last() -> None:
    book: Any = example("ws_book_captured_nautilus.json")
    state = BookState(market="m", asset_id="a")
    state.load_snapshot(levels_of(book["bids"]), levels_of(book["asks"]), timestamp="1")
    assert state.wire_bids() == levels_of(book["bids"])
    assert state.wire_asks() == levels_of(book["asks"])
    assert state.best_bid() == "0.07" and state.best_ask() == "0.08"


def test_price_change_burst_replays_46_of_49_and_the_rest_wait_for_the_trade() -> None:
    messages: Any = example("ws_price_change_burst_captured_nautilus.json")
    books: dict[str, BookState] = {}
    verified, failed = 0, []
    for message in messages:
        if message["event_type"] == "book":
            state = books.setdefault(
                message["asset_id"], BookState(message["market"], message["asset_id"], "5")
            )
            if "last_trade_price" in message:
                state.last_trade_price = message["last_trade_price"]
            state.load_snapshot(
                levels_of(message["bids"]),
                levels_of(message["asks"]),
                timestamp=message["timestamp"],
                tick_size=message.get("tick_size"),
            )
            last_book = (state, message)
            continue
        for change in message["price_changes"]:
            state = books.get(change["asset_id"])
            if state is None:
                continue
            state.apply_change(
                price=change["price"],
                size=change["size"],
                side=change["side"],
                timestamp=message["timestamp"],
            )
            if state.hash() == change["hash"]:
                verified += 1
            else:
                failed.append(message["timestamp"])
    assert verified == 46
    assert set(failed) == {"1790658827000"}  # PROTOCOL.md §5.3: the trade burst carries the post-trade hash
    state, book = last_book
    assert state.hash() != book["hash"]
    assert state.hash(last_trade_price="0.301") == book["hash"]


def test_apply_change_zero_size_deletes_and_numeric_keys_merge_spellings() -> None:
    state = BookState(market="m", asset_id="a")
    state.load_snapshot([(".48", "30")], [("0.52", "10")], timestamp="1")
    state.apply_change(price="0.48", size="12", side="BUY", timestamp="2")
    assert state.wire_bids() == [("0.48", "12")]
    state.apply_change(price="0.52", size="0", side="SELL", timestamp="3")
    assert state.wire_asks() == [] and state.best_ask() is None


def test_book_hash_is_sensitive_to_every_field() -> None:
    base = {
        "market": "m",
        "asset_id": "a",
        "timestamp": "1",
        "bids": [("0.1", "1")],
        "asks": [("0.9", "1")],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
        "last_trade_price": "",
    }
    reference = book_hash(**base)  # type: ignore[arg-type]
    for key, value in [
        ("timestamp", "2"),
        ("neg_risk", True),
        ("tick_size", "0.001"),
        ("last_trade_price", "0.5"),
        ("bids", [("0.1", "2")]),
    ]:
        assert book_hash(**{**base, key: value}) != reference  # type: ignore[arg-type]


def test_incremental_hash_equals_the_reference_payload_after_every_change() -> None:
    book: Any = example("ws_book_captured_nautilus.json")
    state = BookState(market=book["market"], asset_id=book["asset_id"], min_order_size="5", tick_size="0.01")
    state.load_snapshot(levels_of(book["bids"]), levels_of(book["asks"]), timestamp="1")
    changes = [("0.5", "10", "SELL"), ("0.07", "0", "BUY"), ('0.0"5', "1", "BUY"), ("0.3", "7", "BUY")]
    refused = []
    for i, (price, size, side) in enumerate(changes):
        try:
            state.apply_change(price=price, size=size, side=side, timestamp=str(i))
        except ValueError:
            refused.append(price)
            continue
        reference = book_hash(
            market=state.market,
            asset_id=state.asset_id,
            timestamp=state.timestamp,
            bids=state.wire_bids(),
            asks=state.wire_asks(),
            min_order_size="5",
            tick_size="0.01",
            neg_risk=False,
            last_trade_price="",
        )
        assert state.hash() == reference
        assert state.hash(last_trade_price="0.4") != reference
    assert refused == ['0.0"5']  # only the malformed price; the three others were each checked above


def test_an_earlier_state_hashes_from_its_kept_side_texts_as_the_reference_does() -> None:
    """A pending change keeps the book's side texts; hashed later with a trade's price, after the book and
    its tick size moved on, it gives `book_hash` of the book as it was."""
    book: Any = example("ws_book_captured_nautilus.json")
    state = BookState(market=book["market"], asset_id=book["asset_id"], min_order_size="5", neg_risk=True)
    state.load_snapshot(
        levels_of(book["bids"]), levels_of(book["asks"]), timestamp=book["timestamp"], tick_size="0.01"
    )
    kept = (state.bids.text(), state.asks.text())
    then = {"bids": state.wire_bids(), "asks": state.wire_asks(), "timestamp": state.timestamp}
    state.apply_change(price="0.33", size="7", side="BUY", timestamp="1790000000999")
    state.tick_size = "0.001"
    fields: dict[str, Any] = {
        "market": book["market"],
        "asset_id": book["asset_id"],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": True,
        "last_trade_price": "0.52",
        **then,
    }
    earlier = state.hash(last_trade_price="0.52", timestamp=then["timestamp"], tick_size="0.01", sides=kept)
    assert earlier == book_hash(**fields)
    assert state.hash(last_trade_price="0.52") != earlier  # the book as it is now
    assert state.hash() == book_hash(  # and the cached suffix is not left on the earlier tick size
        **{
            **fields,
            "bids": state.wire_bids(),
            "asks": state.wire_asks(),
            "timestamp": "1790000000999",
            "tick_size": "0.001",
            "last_trade_price": "",
        }
    )


def test_string_fast_path_matches_json_dumps() -> None:
    import json

    from pmws.book import _text

    for value in [
        "0.5",
        "",
        "1790658661234",
        'a"b',
        "back\\slash",
        "tab\there",
        "é",
        "\u2028",
        "\x7f",
        "nl\n",
        "\u0663",  # an Arabic-Indic digit, "²", a title-case letter: alphanumeric, written as they are
        "²",
        "ǅ",
        "a.b..c",
        "0x1f",
        ".",
    ]:
        assert _text(value) == json.dumps(value, ensure_ascii=False)


def test_recent_hashes_remember_the_last_256_in_fixed_memory() -> None:
    recent = RecentHashes()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1_000):  # each hash made and handed over, as the tracker does
            recent.append(hashlib.sha1(str(i).encode()).hexdigest())
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000, grown  # a deque of 256 hex strings: ~25 kB per token once full
    hashes = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(1_000)]
    assert all(h in recent for h in hashes[-256:]) and not any(h in recent for h in hashes[:-256])
    assert "" not in recent and "0x0...." not in recent and "0" * 40 not in recent  # empty slots never match
    recent.append("0" * 40)
    assert "0" * 40 in recent
