"""Spreading markets over connections with a per-connection cap."""

from __future__ import annotations

import pytest

from pmws.subscriptions import plan_connections


def test_fills_up_to_the_cap_and_keeps_markets_together() -> None:
    markets = [[f"{m}a", f"{m}b"] for m in range(5)]
    plan = plan_connections([], markets, capacity=4)
    assert [len(slot) for slot in plan] == [4, 4, 2]
    for market in markets:
        assert sum(set(market) <= set(slot) for slot in plan) == 1


def test_changes_only_what_changed() -> None:
    current = [["1a", "1b", "2a", "2b"], ["3a", "3b"]]
    plan = plan_connections(current, [["2a", "2b"], ["3a", "3b"], ["4a", "4b"]], capacity=4)
    assert plan[0][:2] == ["2a", "2b"] and plan[1][:2] == ["3a", "3b"]
    assert sorted(plan[0] + plan[1]) == ["2a", "2b", "3a", "3b", "4a", "4b"]


def test_emptied_slots_stay_in_place() -> None:
    assert plan_connections([["1a", "1b"], ["2a", "2b"]], [["2a", "2b"]], capacity=2) == [[], ["2a", "2b"]]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        plan_connections([], [], capacity=0)
