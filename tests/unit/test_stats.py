"""FeedStats: `tally` + `settle` (the hot path) count exactly what `observe` counts, frame by frame."""

from __future__ import annotations

import random

import orjson

from pmws.protocol import classify_text
from pmws.stats import FeedStats


def frames(rng: random.Random, n: int) -> list[bytes]:
    """A mix of every shape: objects, arrays (some with one event, like an object), control, junk."""
    assets = ["A", "B", "C", "X"]  # X is never tracked
    kinds = ["book", "price_change", "last_trade_price", "best_bid_ask", "new_market", "mystery"]
    out: list[bytes] = []
    for _ in range(n):
        pick = rng.random()
        event = {"event_type": rng.choice(kinds), "asset_id": rng.choice(assets), "market": "0xm"}
        if pick < 0.55:
            out.append(orjson.dumps(event))
        elif pick < 0.7:  # one price_change naming two assets
            changes = [{"asset_id": a} for a in rng.sample(assets, 2)]
            out.append(orjson.dumps({"event_type": "price_change", "price_changes": changes}))
        elif pick < 0.85:
            out.append(orjson.dumps([event] if rng.random() < 0.5 else [event, event]))
        elif pick < 0.9:
            out.append(b"PONG")
        elif pick < 0.95:
            out.append(b"{not json")
        else:
            out.append(b"42")
    return out


def test_tallied_frames_settle_to_exactly_what_observing_each_counts() -> None:
    rng = random.Random(7)
    tracked: set[str] = {"A", "B"}
    seen, tallied = FeedStats(), FeedStats()
    stamps = iter(rng.randrange(10**9) for _ in range(10**6))  # unordered: the last frame wins, not the max
    for round_ in range(40):
        batch = [(classify_text(f), next(stamps)) for f in frames(rng, rng.randrange(1, 60))]
        for classified, ns in batch:
            seen.observe(classified, ns, tracked)
            tallied.tally(classified, ns, tracked)
        tallied.settle()  # the Intake settles after every hand-over; the tracked set changes only between
        if round_ % 7 == 3:
            tracked.add("C")
        if round_ % 11 == 5:
            tracked.discard("A")
            seen.forget("A")
            tallied.forget("A")
        assert tallied.to_json() == seen.to_json()
        assert {a: (s.last_received_ns, s.last_market_data_ns) for a, s in tallied.tokens.items()} == {
            a: (s.last_received_ns, s.last_market_data_ns) for a, s in seen.tokens.items()
        }
    assert seen.frames > 500 and seen.untracked_asset_events > 0 and seen.shapes["array"] > 0


def test_a_frame_observed_between_tallied_ones_keeps_the_order_of_arrival() -> None:
    stats = FeedStats()
    book = classify_text(b'{"event_type":"book","asset_id":"A"}')
    stats.tally(book, 5, {"A"})
    stats.observe(classify_text(b'{"event_type":"last_trade_price","asset_id":"A"}'), 9, {"A"})
    assert stats.tokens["A"].last_received_ns == 9  # the tallied book (earlier) does not overwrite it
    assert stats.tokens["A"].events == {"book": 1, "last_trade_price": 1}
    stats.tally(book, 11, {"A"})
    assert stats.frames == 2  # not settled yet: what the Intake's hand-over hook is for
    stats.settle()
    assert stats.frames == 3 and stats.tokens["A"].last_received_ns == 11


def test_a_new_tracked_set_settles_what_was_tallied_against_the_old_one() -> None:
    stats = FeedStats()
    frame = classify_text(b'{"event_type":"book","asset_id":"A"}')
    stats.tally(frame, 1, frozenset())
    stats.tally(frame, 2, frozenset({"A"}))
    stats.settle()
    assert stats.untracked_asset_events == 1 and stats.tokens["A"].events["book"] == 1
