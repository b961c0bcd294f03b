"""Shard assignment: every market exactly once, stable, ~1/N moves when a shard is added."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pmws.sharding import shard_of

CONDITIONS = [f"0x{i:064x}" for i in range(4000)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=70), min_size=1, max_size=200, unique=True), st.integers(1, 16))
def test_every_market_on_exactly_one_shard(conditions: list[str], count: int) -> None:
    owners = {c: [s for s in range(count) if shard_of(c, count) == s] for c in conditions}
    assert all(len(v) == 1 for v in owners.values())


def test_covers_all_shards_evenly_for_1_to_16() -> None:
    for count in range(1, 17):
        sizes = [0] * count
        for condition in CONDITIONS:
            sizes[shard_of(condition, count)] += 1
        assert sum(sizes) == len(CONDITIONS)
        expected = len(CONDITIONS) / count
        assert min(sizes) > 0.75 * expected and max(sizes) < 1.25 * expected


def test_adding_a_shard_moves_about_one_in_n_plus_one() -> None:
    for count in range(1, 16):
        moved = sum(shard_of(c, count) != shard_of(c, count + 1) for c in CONDITIONS)
        share = moved / len(CONDITIONS)
        assert abs(share - 1 / (count + 1)) < 0.03, (count, share)
        # and every moved market moved to the new shard
        assert all(
            shard_of(c, count + 1) == count
            for c in CONDITIONS
            if shard_of(c, count) != shard_of(c, count + 1)
        )


def test_markets_coming_and_going_move_nothing_else() -> None:
    before = {c: shard_of(c, 5) for c in CONDITIONS[:100]}
    after = {c: shard_of(c, 5) for c in CONDITIONS[:100] + [f"new-{i}" for i in range(50)]}
    assert all(after[c] == s for c, s in before.items())
