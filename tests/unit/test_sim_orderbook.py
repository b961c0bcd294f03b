"""The simulator's book: wire strings, and its fast hash equals pmws.book's hash byte for byte (§5)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from pmws.book import BookState, levels_of, summary_hash
from pmws.sim.orderbook import BUY, SELL, TokenBook, ltp_text, price_text, size_text
from tests.conftest import example


def mills(text: str) -> int:
    return int(Decimal(text) * 1000)


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


@pytest.mark.parametrize(
    ("value", "text"),
    [(10, "0.01"), (500, "0.5"), (510, "0.51"), (513, "0.513"), (990, "0.99"), (1, "0.001")],
)
def test_price_text_has_one_spelling_per_price(value: int, text: str) -> None:
    assert price_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(500, "5"), (12050, "120.5"), (314972572, "3149725.72"), (5, "0.05")]
)
def test_size_text(value: int, text: str) -> None:
    assert size_text(value) == text


def test_ltp_keeps_three_decimals_like_the_capture() -> None:
    assert ltp_text(920) == "0.920"


def test_hash_of_the_real_ws_capture_is_reproduced() -> None:
    captured: Any = example("ws_book_captured_nautilus.json")
    book = TokenBook(captured["market"], captured["asset_id"], tick_mills=10, timestamp=captured["timestamp"])
    for level in captured["bids"]:
        book.set_level(BUY, mills(level["price"]), cents(level["size"]))
    for level in captured["asks"]:
        book.set_level(SELL, mills(level["price"]), cents(level["size"]))
    book.last_trade_price = captured["last_trade_price"]
    assert book.hash() == captured["hash"] == book.reference_hash()
    assert book.snapshot_event() == captured  # same fields, same values, same level order


def random_book(rng: random.Random) -> TokenBook:
    tick = rng.choice((1, 10))
    book = TokenBook(
        "0x" + "ab" * 32,
        str(rng.randrange(10**76, 10**78)),
        tick_mills=tick,
        timestamp=str(rng.randrange(10**12)),
    )
    for _ in range(rng.randint(0, 30)):
        side = rng.choice((BUY, SELL))
        price = rng.randrange(tick, 1000, tick)
        book.set_level(side, price, rng.choice((0, rng.randint(1, 10**9))))
    book.last_trade_price = rng.choice(("", ltp_text(rng.randrange(1, 1000))))
    book.neg_risk = rng.random() < 0.2
    return book


def test_fast_hash_equals_pmws_book_hash_on_random_books() -> None:
    rng = random.Random(1)
    for _ in range(500):
        book = random_book(rng)
        assert book.hash() == book.reference_hash()
        # and after incremental changes (the cached side JSON must be invalidated)
        book.set_level(BUY, 10, 123)
        book.set_level(SELL, 990, 0)
        book.timestamp = str(int(book.timestamp) + 1)
        assert book.hash() == book.reference_hash()


def test_summary_is_rest_shaped_and_rebuildable() -> None:
    book = random_book(random.Random(3))
    summary = book.summary()
    assert list(summary) == [
        "market", "asset_id", "timestamp", "hash", "bids", "asks",
        "min_order_size", "tick_size", "neg_risk", "last_trade_price",
    ]  # fmt: skip
    assert summary_hash(summary) == summary["hash"] == book.hash()
    state = BookState(market=book.market, asset_id=book.asset_id, min_order_size="5", neg_risk=book.neg_risk)
    state.last_trade_price = book.last_trade_price
    state.load_snapshot(
        levels_of(summary["bids"]),
        levels_of(summary["asks"]),
        timestamp=summary["timestamp"],
        tick_size=book.tick_size,
    )
    assert state.hash() == book.hash()


def test_empty_sides_report_zero_and_one() -> None:
    book = TokenBook("0x" + "00" * 32, "1", tick_mills=10, timestamp="1")
    assert book.top_texts() == ("0", "1")
    book.set_level(BUY, 450, 100)
    assert book.top_texts() == ("0.45", "1")
