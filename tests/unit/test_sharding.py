"""Shard assignment: every market exactly once, stable, ~1/N moves when a shard is added."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmws.config import load_config
from pmws.errors import ConfigError
from pmws.sharding import resolve_shard, shard_of

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


def test_resolve_shard_from_config_or_the_statefulset_ordinal() -> None:
    config = load_config(overrides={"run.shard_index": 1, "run.shard_count": 3})
    assert resolve_shard(config, {}) == (1, 3)
    by_host = load_config(overrides={"run.shard_count": 4, "run.shard_index_from_hostname": True})
    assert resolve_shard(by_host, {"HOSTNAME": "orderbooks-ws-recorder-3"}) == (3, 4)
    with pytest.raises(ConfigError, match="does not end in -<ordinal>"):
        resolve_shard(by_host, {"HOSTNAME": "recorder"})
    with pytest.raises(ConfigError, match=r"must be in 0\.\.3"):
        resolve_shard(by_host, {"HOSTNAME": "recorder-4"})
