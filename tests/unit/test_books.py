"""BookBuilder: hash status per change (verified, pending settled later, mismatched), REST resync, rows."""

from __future__ import annotations

from typing import Any

from pmws.book import book_hash
from pmws.read import Record
from pmws.read.booksbuild import BookBuilder
from pmws.tracker import PENDING_MAX

MARKET, TOKEN = "0xmarket", "T1"
S = 1_000_000_000


class Sink:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, table: str, hour: int, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)

    def hour_of(self, ns: int) -> int:
        return ns // (3600 * S)


def hash_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]], stamp: str, ltp: str = "") -> str:
    return book_hash(
        market=MARKET,
        asset_id=TOKEN,
        timestamp=stamp,
        bids=bids,
        asks=asks,
        min_order_size="5",
        tick_size="0.01",
        neg_risk=False,
        last_trade_price=ltp,
    )


def frame(ns: int, event: dict[str, Any], session: str = "s") -> Record:
    row = {"record_type": "ws_frame", "session_id": session, "json": event, "tokens_tracked": []}
    return Record(ns, "ws_frame", row, "f")


def book(
    ns: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], stamp: str, **extra: Any
) -> Record:
    event = {
        "event_type": "book",
        "market": MARKET,
        "asset_id": TOKEN,
        "timestamp": stamp,
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in asks],
        "tick_size": "0.01",
        "hash": hash_of(bids, asks, stamp),
        **extra,
    }
    return frame(ns, event)


def change(ns: int, price: str, size: str, side: str, stamp: str, expected: str) -> Record:
    entry = {"asset_id": TOKEN, "price": price, "size": size, "side": side, "hash": expected}
    return frame(
        ns, {"event_type": "price_change", "market": MARKET, "timestamp": stamp, "price_changes": [entry]}
    )


def builder() -> tuple[BookBuilder, Sink]:
    sink = Sink()
    built = BookBuilder(sink, snapshot_interval_seconds=0)
    built.tracker.set_metadata(TOKEN, "5", False)
    return built, sink


BIDS, ASKS = [("0.40", "10"), ("0.45", "20")], [("0.55", "30"), ("0.50", "40")]


def statuses(sink: Sink) -> list[tuple[str, str, bool]]:
    return [(str(r[5]), r[8], r[7]) for r in sink.rows["book_changes"]]


def test_a_pending_change_is_held_until_the_trade_verifies_it() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    after = [("0.40", "10"), ("0.45", "5")]
    # the entry's hash already includes the trade that is announced next (PROTOCOL.md §5.3)
    built.on_record(change(2 * S, "0.45", "5", "BUY", "2000", hash_of(after, ASKS, "2000", ltp="0.45")))
    assert all(status == "verified" for _, status, _ in statuses(sink))  # the pending row is held back
    assert len(sink.rows["book_changes"]) == 4
    trade = {"event_type": "last_trade_price", "asset_id": TOKEN, "market": MARKET, "price": "0.45"}
    built.on_record(frame(3 * S, {**trade, "size": "15", "side": "SELL", "timestamp": "2001"}))
    assert statuses(sink)[-1] == ("0.45", "verified", False)
    assert sink.rows["trades"][0][5:7] == ("0.45", "15")
    assert built.tracker.counters.resolved_late == 1


def test_a_change_the_next_book_contradicts_is_mismatched_and_the_book_resyncs() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    built.on_record(change(2 * S, "0.45", "5", "BUY", "2000", "0" * 40))
    built.on_record(book(3 * S, BIDS, ASKS, "3000"))
    rows = statuses(sink)
    assert ("0.45", "mismatched", False) in rows
    assert rows[-4:] == [(p, "verified", True) for p in ("0.40", "0.45", "0.50", "0.55")]
    assert built.tracker.counters.mismatched == 1


def test_top_of_book_carries_mid_and_spread_as_exact_decimals() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    after = [("0.40", "10"), ("0.45", "20"), ("0.47", "1")]
    built.on_record(change(2 * S, "0.47", "1", "BUY", "2000", hash_of(after, ASKS, "2000")))
    tops = [r[3:9] for r in sink.rows["top_of_book"]]
    assert tops == [
        ("0.45", "20", "0.50", "40", "0.475", "0.05"),
        ("0.47", "1", "0.50", "40", "0.485", "0.03"),
    ]


def test_a_rest_checkpoint_that_disagrees_resyncs_the_book_and_is_a_gap() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    built.on_record(rest_record(5 * S, [("0.30", "1")], "900"))  # older than the feed: compared now
    assert built.divergences == 1
    assert sink.rows["gaps"][0][2] == "book_diverged"
    resync = [r for r in sink.rows["book_changes"] if r[9] == "rest"]
    assert [(r[5], r[8]) for r in resync] == [(p, "verified") for p in ("0.30", "0.50", "0.55")]


def test_a_replica_event_older_than_the_other_replicas_book_is_not_applied_again() -> None:
    """Merged by receive time, A's change can come after the book B got on subscribing, which holds it."""
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))  # replica "s"
    after = [("0.40", "10"), ("0.45", "5")]
    late = change(3 * S, "0.45", "5", "BUY", "1500", hash_of(after, ASKS, "1500"))
    newer = book(2 * S, after, ASKS, "2000")
    newer.row["session_id"] = "other"  # replica "other" subscribed later: its book already holds the change
    built.on_record(newer)
    built.on_record(late)
    assert built.superseded == 1
    assert built.tracker.counters.mismatched == built.tracker.counters.pending == 0
    assert [r[8] for r in sink.rows["book_changes"]] == ["verified"] * 8


def test_a_pending_change_the_tracker_gives_up_is_mismatched_even_if_a_later_trade_would_explain_it() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    after = [("0.40", "10"), ("0.45", "5")]
    built.on_record(change(2 * S, "0.45", "5", "BUY", "2000", hash_of(after, ASKS, "2000", ltp="0.45")))
    for index in range(PENDING_MAX):  # hashes that never match: the first change is given up
        built.on_record(change(3 * S + index, "0.40", str(index + 1), "BUY", "3000", f"{index:040x}"))
    trade = {"event_type": "last_trade_price", "asset_id": TOKEN, "market": MARKET, "price": "0.45"}
    built.on_record(frame(4 * S, {**trade, "size": "15", "side": "SELL", "timestamp": "4000"}))
    built.finish()
    rows = statuses(sink)[4:]  # after the book's four levels
    assert rows[0] == ("0.45", "mismatched", False)  # not "verified" by the trade it waited for
    assert {status for _, status, _ in rows[1:]} == {"pending"}
    assert len(rows) == PENDING_MAX + 1
    assert built.tracker.counters.mismatched == 1 and built.tracker.counters.resolved_late == 0


def rest_record(ns: int, bids: list[tuple[str, str]], stamp: str) -> Record:
    summary = {
        "market": MARKET,
        "asset_id": TOKEN,
        "timestamp": stamp,
        "bids": [{"price": p, "size": s} for p, s in bids],
        "asks": [{"price": p, "size": s} for p, s in ASKS],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
        "hash": hash_of(bids, ASKS, stamp),
    }
    row = {"record_type": "rest_checkpoint", "ok": True, "response": {"raw_response_json": [summary]}}
    return Record(ns, "rest_checkpoint", row, "rest-file")


def test_a_rest_checkpoint_newer_than_the_feed_that_the_feed_never_matches_is_a_gap() -> None:
    """The usual case: REST is taken now, the feed's book is older; the comparison waits for the feed to
    move past the summary's time, and a divergence found then is still a `book_diverged` gap."""
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    built.on_record(rest_record(2 * S, [("0.30", "1")], "1500"))  # newer than the feed: put off
    assert "gaps" not in sink.rows
    after = [("0.40", "10"), ("0.45", "20"), ("0.46", "1")]
    built.on_record(change(3 * S, "0.46", "1", "BUY", "2000", hash_of(after, ASKS, "2000")))  # moves past it
    assert built.divergences == 1
    (gap,) = sink.rows["gaps"]
    assert (gap[0], gap[1], gap[2], gap[3]) == (
        3 * S,
        1 * S,
        "book_diverged",
        TOKEN,
    )  # end, start: last verified
    assert gap[6] == "f"  # the frame's archive file that showed it


def test_a_change_a_rest_resync_contradicts_is_mismatched_not_pending() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    built.on_record(change(2 * S, "0.45", "5", "BUY", "2000", "f" * 40))  # never matches: held as pending
    built.on_record(rest_record(5 * S, [("0.30", "1")], "1500"))  # older than the feed, disagrees: resync
    built.finish()
    rows = [(r[5], r[7], r[8], r[9]) for r in sink.rows["book_changes"]]
    assert ("0.45", False, "mismatched", "ws") in rows
    assert [r for r in rows if r[3] == "rest"] == [
        (p, True, "verified", "rest") for p in ("0.30", "0.50", "0.55")
    ]
    assert built.tracker.counters.mismatched == 1 and built.tracker.counters.pending == 0


def test_a_group_after_its_trade_price_is_verified_row_by_row_not_mismatched_by_the_next_book() -> None:
    built, sink = builder()
    built.on_record(book(1 * S, BIDS, ASKS, "1000"))
    trade = {"event_type": "last_trade_price", "asset_id": TOKEN, "market": MARKET, "price": "0.50"}
    built.on_record(frame(2 * S, {**trade, "size": "40", "side": "BUY", "timestamp": "2000"}))  # first
    final_asks = [("0.55", "25")]  # the group: the 0.50 ask is taken, then part of the 0.55 level
    final = hash_of(BIDS, final_asks, "2000", ltp="0.50")
    built.on_record(change(3 * S, "0.50", "0", "SELL", "2000", final))  # carries the group's final hash
    assert built.tracker.counters.pending == 1
    built.on_record(change(3 * S + 1, "0.55", "25", "SELL", "2000", final))  # verifies: explains the first
    built.on_record(book(4 * S, BIDS, final_asks, "4000", last_trade_price="0.50"))
    changes = [(r[5], r[6], r[8]) for r in sink.rows["book_changes"] if not r[7]]
    assert changes == [("0.50", "0", "verified"), ("0.55", "25", "verified")]
    assert built.tracker.counters.mismatched == 0
