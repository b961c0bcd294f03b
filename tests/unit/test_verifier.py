"""Book-hash verification in a worker process: fed in order, never sampled, counters exact (issue 14)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pmws.protocol import classify_text
from pmws.tracker import BookTracker
from pmws.verifier import FLUSH_SECONDS, Verifier
from tests.conftest import example


def cycle() -> list[dict[str, Any]]:
    """The captured burst (book, 48 price_change, post-trade book) and the trade that explains it."""
    messages: Any = example("ws_price_change_burst_captured_nautilus.json")
    book = messages[-1]
    trade = {
        "event_type": "last_trade_price",
        "asset_id": book["asset_id"],
        "market": book["market"],
        "price": "0.301",
        "timestamp": book["timestamp"],
    }
    return [*messages, trade]


def assets(events: list[dict[str, Any]]) -> list[str]:
    found = {e.get("asset_id") for e in events} | {
        c["asset_id"] for e in events for c in e.get("price_changes", [])
    }
    return sorted(a for a in found if a)


def feed(verifier: Verifier, events: list[dict[str, Any]], rounds: int) -> None:
    for asset in assets(events):
        verifier.set_metadata(asset, "5", False)
    for _ in range(rounds):
        for event in events:
            verifier.observe_frame(classify_text(json.dumps(event, separators=(",", ":")).encode()))


def in_process(events: list[dict[str, Any]], rounds: int) -> dict[str, int]:
    tracker = BookTracker()
    for asset in assets(events):
        tracker.set_metadata(asset, "5", False)
    for _ in range(rounds):
        for event in events:
            tracker.observe(event)
    return tracker.counters.to_json()


def test_the_worker_counts_every_hash_exactly_as_in_process() -> None:
    events = cycle()

    async def run() -> tuple[dict[str, int], dict[str, int]]:
        worker, local = Verifier(worker=True), Verifier(worker=False)
        try:
            feed(worker, events, 40)  # 2,080 frames: several batches
            feed(local, events, 40)
            worker.sync()
            local.sync()
            return worker.counters.to_json(), local.counters.to_json()
        finally:
            worker.close()

    from_worker, from_local = asyncio.run(run())
    expected = in_process(events, 40)
    assert from_worker == from_local == expected
    assert expected["verified"] == 40 * 51 and expected["mismatched"] == 0 and expected["pending"] == 0


def test_in_process_frames_are_applied_in_batches_on_the_loop() -> None:
    """In this process too, frames wait for a batch (warm caches at a low rate): applied by the loop's
    timer, or at once by whatever needs the exact books (sync, a REST comparison)."""
    events = cycle()

    async def run() -> list[int]:
        verifier = Verifier(worker=False)
        feed(verifier, events, 1)
        seen = [verifier.counters.verified]  # still batched
        await asyncio.sleep(FLUSH_SECONDS * 5)
        seen.append(verifier.counters.verified)  # applied by the timer, nobody asked
        feed(verifier, events, 1)
        await verifier.compare_rest([])
        seen.append(verifier.counters.verified)  # applied before the comparison
        return seen

    assert asyncio.run(run()) == [0, 51, 102]


def test_without_an_event_loop_every_frame_is_applied_at_once() -> None:
    verifier = Verifier(worker=False)
    feed(verifier, cycle(), 1)
    assert verifier.counters.verified == 51


def test_a_rest_comparison_sees_every_frame_sent_before_it() -> None:
    rest: Any = example("rest_book_empty_ask_captured_nautilus.json")
    ws_book = {k: rest[k] for k in ("market", "asset_id", "timestamp", "hash", "bids", "asks", "tick_size")}

    async def run() -> tuple[Any, int, int]:
        verifier = Verifier(worker=True)
        try:
            verifier.set_metadata(rest["asset_id"], rest["min_order_size"], rest["neg_risk"])
            verifier.observe_frame(classify_text(json.dumps({**ws_book, "event_type": "book"}).encode()))
            (comparison,) = await verifier.compare_rest([rest])  # no sync: the frame is still batched
            return comparison, verifier.rest_agree, verifier.counters.verified
        finally:
            verifier.close()

    comparison, agree, verified = asyncio.run(run())
    assert comparison.divergence is None and comparison.feed_agrees and comparison.feed_hash == rest["hash"]
    assert agree == 1 and verified == 1


def test_a_dead_worker_hands_over_to_this_process_with_the_counters() -> None:
    events = cycle()

    async def run() -> tuple[Verifier, dict[str, int]]:
        verifier = Verifier(worker=True)
        feed(verifier, events, 10)
        verifier.sync()
        before = verifier.counters.to_json()
        assert verifier._proc is not None
        verifier._proc.kill()
        verifier._proc.wait()
        feed(verifier, events, 10)  # the next send finds the worker gone
        verifier.sync()
        await verifier.compare_rest([])
        return verifier, before

    verifier, before = asyncio.run(run())
    assert verifier.failed is not None and "verifier worker failed" in verifier.failed
    after = verifier.counters.to_json()
    assert before["verified"] == 10 * 51
    assert after["verified"] > before["verified"] and after["mismatched"] == 0  # verification went on


def test_forgotten_tokens_are_not_held_by_the_worker() -> None:
    events = cycle()

    async def run() -> tuple[set[str], set[str]]:
        verifier = Verifier(worker=True)
        feed(verifier, events, 1)
        held = verifier.held_tokens()
        for asset in assets(events):
            verifier.forget(asset)
        verifier.close()
        return held, verifier.held_tokens()

    held, after_close = asyncio.run(run())
    assert held == set(assets(events)) and after_close == set()


def test_the_fallback_tracker_keeps_the_metadata_the_worker_was_given() -> None:
    """min_order_size/neg_risk come once per token (discovery, REST); the hash needs them after a fallback."""
    events = cycle()

    async def run() -> dict[str, int]:
        verifier = Verifier(worker=True)
        feed(verifier, events, 1)
        verifier.sync()
        assert verifier._proc is not None
        verifier._proc.kill()
        verifier._proc.wait()
        for event in events:  # no set_metadata again: the recorder sent it before the worker died
            verifier.observe_frame(classify_text(json.dumps(event, separators=(",", ":")).encode()))
        verifier.sync()
        await verifier.compare_rest([])
        return verifier.counters.to_json()

    after = asyncio.run(run())
    assert after["verified"] == 2 * 51 and after["mismatched"] == 0
